/**
 * The axios adapter the services' HTTP client uses: one node:http (or node:https) request per
 * call, over the agents in the call's config, and nothing else.
 *
 * Why not axios's own http adapter: it is written for every use axios has (redirects, proxies,
 * decompression, upload and download progress, form data, streamed bodies both ways), and it
 * pays for them on every call. In the services' own calls (small JSON bodies to peers on keep-alive
 * sockets) that was the largest single item in a busy coordinator's CPU profile: axios's client
 * CPU per request was 212 µs with its own adapter, 143 µs with this one and 69 µs for bare
 * node:http (docs/performance.md, "An axios adapter of our own"). Axios itself stays the client:
 * its config merging, headers, request and response transforms (JSON in, JSON out), errors and
 * `validateStatus` all run as before; only the last step, putting bytes on a socket, is this file.
 *
 * What it does, from the config axios hands it:
 * - `url`, absolute, http: or https:, with the matching `httpAgent` or `httpsAgent`;
 * - a body that is a string, a Buffer, a typed array or an ArrayBuffer (what axios's request
 *   transforms give for JSON), sent with its Content-Length; or none;
 * - `timeout` (ms, 0 for none) bounds the exchange from the request to the answer's last byte,
 *   or to its headers when `responseType` is 'stream'; it fails as axios's own does, ETIMEDOUT
 *   under `transitional.clarifyTimeoutError`, else ECONNABORTED;
 * - `signal` gives the call up (CanceledError), and, once a streamed answer is handed over,
 *   cuts that stream;
 * - `responseType` 'stream' hands the answer over at its headers; 'arraybuffer' gives its
 *   bytes; anything else gives its text (`responseEncoding`, utf8 by default), which axios's
 *   response transform then parses as JSON where it is JSON;
 * - `maxContentLength` (ANSWER_BYTES_DEFAULT_MAX when not set) bounds an answer read whole;
 * - `validateStatus`, applied as axios's own adapters apply it (a refused streamed answer is
 *   drained, so its socket goes back to the agent).
 *
 * What it refuses with ERR_BAD_OPTION, rather than ignoring: `baseURL`, `params`, `auth` or
 * credentials in the URL, a proxy, `socketPath`, and a body it cannot send as bytes (a stream,
 * form data). It follows no redirect and asks for no compression (it sends no Accept-Encoding).
 * A call whose signal is already aborted is refused (CanceledError) before any request is made.
 */
import http from 'node:http';
import https from 'node:https';
import { AxiosError, CanceledError, type AxiosAdapter, type AxiosResponse, type InternalAxiosRequestConfig } from 'axios';

/** Bytes of one answer read whole, when the config sets no `maxContentLength`. */
export const ANSWER_BYTES_DEFAULT_MAX = 8 * 1024 * 1024;

/** The first option set in `config` that this adapter does not carry out, if any. */
function unsupportedOption(config: InternalAxiosRequestConfig): string | undefined {
  if (config.baseURL) return 'baseURL';
  if (config.params !== undefined && config.params !== null) return 'params';
  if (config.auth) return 'auth';
  if (config.proxy) return 'proxy';
  if (config.socketPath) return 'socketPath';
  return undefined;
}

/** The request body as bytes or text, or `null` when its type is not one this adapter sends. */
function bodyOf(data: unknown): string | Buffer | undefined | null {
  if (data === undefined || data === null) return undefined;
  if (typeof data === 'string' || Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return null;
}

export const nodeHttpAdapter: AxiosAdapter = (config) =>
  new Promise<AxiosResponse>((resolve, reject) => {
    const option = unsupportedOption(config);
    if (option !== undefined) {
      reject(new AxiosError(`the services' HTTP adapter does not support the option ${option}`, AxiosError.ERR_BAD_OPTION, config));
      return;
    }
    let url: URL;
    try {
      url = new URL(config.url ?? '');
    } catch {
      reject(new AxiosError(`not an absolute URL: ${String(config.url)}`, AxiosError.ERR_INVALID_URL, config));
      return;
    }
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') {
      reject(new AxiosError(`unsupported protocol ${url.protocol}`, AxiosError.ERR_BAD_REQUEST, config));
      return;
    }
    if (url.username !== '' || url.password !== '') {
      reject(new AxiosError("the services' HTTP adapter does not send credentials from the URL", AxiosError.ERR_BAD_OPTION, config));
      return;
    }
    const body = bodyOf(config.data);
    if (body === null) {
      reject(new AxiosError("the services' HTTP adapter sends only a string, a Buffer or an ArrayBuffer as a body", AxiosError.ERR_BAD_OPTION, config));
      return;
    }
    const headers = config.headers.toJSON() as http.OutgoingHttpHeaders;
    if (body !== undefined) headers['Content-Length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.length;

    const signal = config.signal;
    if (signal?.aborted === true) {
      reject(new CanceledError(undefined, config));
      return;
    }
    const stream = config.responseType === 'stream';
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const req = (secure ? https : http).request({
      protocol: url.protocol,
      // An IPv6 literal comes bracketed in a URL, and unbracketed to node.
      hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      method: (config.method ?? 'get').toUpperCase(),
      headers,
      agent: secure ? config.httpsAgent : config.httpAgent,
    });
    // Once settled, a late error of the request (the socket cut after a timeout) has nothing left to reject.
    req.on('error', (error) => fail(AxiosError.from(error, undefined, config, req)));

    const onAbort = (): void => {
      fail(new CanceledError(undefined, config, req));
      // After a streamed answer was handed over, this cuts it: its reader sees the stream fail.
      req.destroy();
    };
    const stopWatching = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener?.('abort', onAbort);
    };
    function fail(error: AxiosError): void {
      if (settled) return;
      settled = true;
      stopWatching();
      reject(error);
    }
    function answer(response: AxiosResponse): void {
      if (settled) return;
      const validate = config.validateStatus;
      if (response.status !== 0 && typeof validate === 'function' && !validate(response.status)) {
        const code = response.status >= 400 && response.status < 500 ? AxiosError.ERR_BAD_REQUEST : AxiosError.ERR_BAD_RESPONSE;
        fail(new AxiosError(`Request failed with status code ${response.status}`, code, config, req, response));
        // A refused stream is read by nobody: drained, its socket goes back to the agent.
        if (stream) (response.data as http.IncomingMessage).resume();
        return;
      }
      settled = true;
      clearTimeout(timer);
      // A streamed answer stays cancellable until it closes; any other is over.
      if (stream) (response.data as http.IncomingMessage).once('close', stopWatching);
      else stopWatching();
      resolve(response);
    }

    signal?.addEventListener?.('abort', onAbort, { once: true });
    const timeoutMs = config.timeout ?? 0;
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        const code = config.transitional?.clarifyTimeoutError === true ? AxiosError.ETIMEDOUT : AxiosError.ECONNABORTED;
        fail(new AxiosError(config.timeoutErrorMessage ?? `timeout of ${timeoutMs}ms exceeded`, code, config, req));
        req.destroy();
      }, timeoutMs);
    }

    req.on('response', (res) => {
      const base = { status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, config, request: req };
      if (stream) {
        answer({ ...base, data: res } as AxiosResponse);
        return;
      }
      const max = config.maxContentLength !== undefined && config.maxContentLength > 0 ? config.maxContentLength : ANSWER_BYTES_DEFAULT_MAX;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > max) {
          fail(new AxiosError(`maxContentLength size of ${max} exceeded`, AxiosError.ERR_BAD_RESPONSE, config, req));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
        const data = config.responseType === 'arraybuffer' ? bytes : bytes.toString((config.responseEncoding ?? 'utf8') as BufferEncoding);
        answer({ ...base, data } as AxiosResponse);
      });
      // An answer cut before its end: node fails the response with 'aborted' (ECONNRESET).
      res.on('error', (error) => fail(AxiosError.from(error, 'ECONNRESET', config, req)));
    });
    req.end(body);
  });
