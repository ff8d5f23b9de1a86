/**
 * The services' HTTP client: axios over keep-alive agents, a per-call timeout,
 * and p-retry for calls the caller marks as safe to repeat. Axios puts its
 * requests on the wire through our own adapter (node-adapter.ts): plain
 * node:http, at a third less CPU per request than axios's own http adapter.
 *
 * Any HTTP answer resolves `{ status, data }`: a 409 or a 503 is information
 * for the protocol, not an exception. Only "no answer at all" rejects, as a
 * TransportError, because then the caller cannot tell whether the request
 * landed and must treat the outcome as unknown.
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import axios, { AxiosError, type AxiosInstance } from 'axios';
import pRetry, { AbortError } from 'p-retry';
import { SERVER_LIMITS_DEFAULT } from './limits.ts';
import { ANSWER_BYTES_DEFAULT_MAX, nodeHttpAdapter } from './node-adapter.ts';

export type TransportErrorCode = 'timeout' | 'unreachable' | 'reset';

export class TransportError extends Error {
  constructor(
    readonly code: TransportErrorCode,
    message: string,
    readonly url: string,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

export interface HttpResult<T> {
  readonly status: number;
  readonly data: T;
}

/** How an idempotent call is repeated: extra attempts after the first, on transport errors and 5xx. */
export interface RetryOptions {
  readonly retries?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Gives up the call (and any retry) when aborted; the call rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

export interface CallOptions extends RetryOptions {
  readonly timeoutMs?: number;
  /** Extra request headers for this call (the client's token is sent on every call already). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * A request body already serialized as JSON, sent as it is. A caller that must know a
 * body's size before sending it (a batch kept under the server's body limit) serializes
 * each part once, instead of once to measure and again to send.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

export interface HttpClientOptions {
  readonly token?: string;
  readonly timeoutMs?: number;
  /** Sockets kept per peer. */
  readonly socketsPerHostMax?: number;
}

/** How `postLines` reads a newline-delimited answer. */
export interface LinesOptions {
  /** The whole exchange, lines included, ends within this long (no retries: a streamed call is not repeated). */
  readonly timeoutMs: number;
  /** The content type that marks a streamed answer, also sent as the preferred one in Accept. */
  readonly linesType: string;
  /** Called with each line as it arrives; throwing stops the reading and rejects the call with that error. */
  readonly onLine: (line: string) => void;
}

/** The answer to `postLines`: streamed (its lines went to `onLine`, `data` is undefined) or whole (status and JSON body). */
export interface LinesResult extends HttpResult<unknown> {
  readonly streamed: boolean;
}

export interface HttpClient {
  post<T>(url: string, body: unknown, options?: CallOptions): Promise<HttpResult<T>>;
  /**
   * POSTs `body` and, when the answer is a 200 of `linesType`, hands each of its lines to `onLine`
   * as it arrives; any other answer is read whole. Rejects with a TransportError when the answer
   * stops before its end (a cut connection, the timeout): the lines read by then stay delivered.
   */
  postLines(url: string, body: JsonText, options: LinesOptions): Promise<LinesResult>;
  get<T>(url: string, options?: CallOptions): Promise<HttpResult<T>>;
  close(): void;
}

const RETRIES_MAX = 10;

/**
 * An idle keep-alive socket is closed after this long, a second before our servers close
 * theirs (SERVER_LIMITS_DEFAULT.keepAliveTimeoutMs): a request written on a socket the server
 * is closing fails with a reset, and a prepare that fails is not sent again.
 */
export const IDLE_SOCKET_MS = SERVER_LIMITS_DEFAULT.keepAliveTimeoutMs - 1_000;

/**
 * Runs `attempt`, and again, up to `retries` more times, while it throws or answers a 5xx
 * (p-retry, with jittered backoff). After the last attempt a 5xx still answers with its status;
 * only silence rejects. An error `isFinal` says will not change on a retry is thrown at once.
 *
 * The first attempt runs before p-retry is set up, and p-retry only for a call whose first attempt
 * failed: most calls succeed at once, and p-retry's set-up per call (its options copied and
 * checked, an async loop, the signal checked around the attempt) was 1.3% of a busy coordinator's
 * CPU, one call per commit and abort. p-retry's own first attempt then replays that first outcome,
 * so the backoff after it and every retry after that are exactly p-retry's.
 */
export function withRetries<T>(
  url: string,
  attempt: () => Promise<HttpResult<T>>,
  opts: RetryOptions & { readonly isFinal?: (error: unknown) => boolean },
): Promise<HttpResult<T>> {
  const retries = Math.min(opts.retries ?? 0, RETRIES_MAX);
  if (retries === 0) return attempt();
  const first = attempt();
  return first.then(
    (result) => {
      if (result.status < 500) {
        // As p-retry does after an attempt that succeeded: the caller's abort still wins.
        opts.signal?.throwIfAborted();
        return result;
      }
      return retrying(url, first, attempt, retries, opts);
    },
    () => retrying(url, first, attempt, retries, opts),
  );
}

/** p-retry, from a first attempt already made (`first`, which failed): it is replayed as p-retry's own first. */
function retrying<T>(
  url: string,
  first: Promise<HttpResult<T>>,
  attempt: () => Promise<HttpResult<T>>,
  retries: number,
  opts: RetryOptions & { readonly isFinal?: (error: unknown) => boolean },
): Promise<HttpResult<T>> {
  let last5xx: HttpResult<T> | undefined;
  let replay = true;
  return pRetry(
    async () => {
      let result: HttpResult<T>;
      try {
        const next = replay ? first : attempt();
        replay = false;
        result = await next;
      } catch (error) {
        last5xx = undefined;
        throw opts.isFinal?.(error) === true ? new AbortError(error instanceof Error ? error : String(error)) : error;
      }
      if (result.status >= 500) {
        last5xx = result;
        throw new Error(`HTTP ${result.status} from ${url}`);
      }
      return result;
    },
    {
      retries,
      minTimeout: opts.retryMinMs ?? 50,
      maxTimeout: opts.retryMaxMs ?? 1_000,
      randomize: true,
      shouldRetry: ({ error }) => !(error instanceof AbortError),
      ...(opts.signal !== undefined && { signal: opts.signal }),
    },
  ).catch((error: unknown) => {
    // After the last retry, a 5xx still answers with its status; only silence (or the caller's abort) rejects.
    if (opts.signal?.aborted !== true && last5xx !== undefined) return last5xx;
    throw error;
  });
}

function classify(error: unknown, url: string): TransportError {
  const e = error as AxiosError;
  const code = e.code ?? '';
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === AxiosError.ETIMEDOUT) {
    return new TransportError('timeout', `no answer from ${url} in time`, url);
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'EAI_AGAIN') {
    return new TransportError('unreachable', `${url} is unreachable (${code})`, url);
  }
  return new TransportError('reset', `connection to ${url} failed (${code || e.message})`, url);
}

/**
 * Reads `stream` to its end as UTF-8 text, handing each piece to `onText` as it arrives. The text is
 * decoded across chunks, so a character whose bytes arrive in two chunks comes whole (decoding each
 * chunk on its own turned it into two replacement characters). Rejects with a TransportError when
 * the answer stops before its end or passes ANSWER_BYTES_DEFAULT_MAX bytes (the adapter's bound for
 * an answer read whole: one bound for every answer, streamed or not; a batch's 256 replies are far
 * below it), and with `onText`'s own error when it throws; either way the stream is destroyed and
 * nothing more is read.
 */
function readText(stream: Readable, url: string, onText: (text: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const decoder = new StringDecoder('utf8');
    let bytes = 0;
    let done = false;
    const stop = (error?: unknown): void => {
      if (done) return;
      done = true;
      if (error === undefined) {
        resolve();
        return;
      }
      stream.destroy();
      reject(error);
    };
    const hand = (text: string): boolean => {
      try {
        if (text !== '') onText(text);
        return true;
      } catch (error) {
        stop(error);
        return false;
      }
    };
    stream.on('data', (chunk: Buffer) => {
      if (done) return;
      bytes += chunk.length;
      if (bytes > ANSWER_BYTES_DEFAULT_MAX) {
        stop(new TransportError('reset', `the answer from ${url} passed ${ANSWER_BYTES_DEFAULT_MAX} bytes`, url));
        return;
      }
      hand(decoder.write(chunk));
    });
    // An answer that ends inside a character ends with a replacement character: not a whole line, so cut short.
    stream.once('end', () => {
      if (hand(decoder.end())) stop();
    });
    stream.on('error', (error) => stop(new TransportError('reset', `the answer from ${url} was cut short (${error.message})`, url)));
    // Closed without its end and without an error: cut short all the same. Every answer closes, so
    // the error is built only when it is one (its stack was 1.4% of a busy coordinator's CPU).
    stream.once('close', () => {
      if (!done) stop(new TransportError('reset', `the answer from ${url} was cut short`, url));
    });
  });
}

/** Hands each complete line of `stream` to `onLine`; an answer that stops mid-line, or mid-stream, is cut short. */
async function readLines(stream: Readable, onLine: (line: string) => void, url: string): Promise<void> {
  let rest = '';
  await readText(stream, url, (text) => {
    rest += text;
    let start = 0;
    let end = rest.indexOf('\n');
    while (end >= 0) {
      const line = rest.slice(start, end);
      start = end + 1;
      if (line.trim() !== '') onLine(line);
      end = rest.indexOf('\n', start);
    }
    rest = rest.slice(start);
  });
  if (rest.trim() !== '') throw new TransportError('reset', `the answer from ${url} was cut short mid-line`, url);
}

async function readAll(stream: Readable, url: string): Promise<string> {
  let text = '';
  await readText(stream, url, (piece) => {
    text += piece;
  });
  return text;
}

/** A body as axios would have given it: parsed JSON where it is JSON, else the text. */
function jsonOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * The TCP keep-alive probe delay on our sockets, which the agent sets each time it takes a socket
 * back (`keepAliveMsecs`). Node's `setKeepAlive` skips the system call when nothing changes, so
 * a socket is set once, when it is new. (Axios's own http adapter set 60 s on every request's
 * socket, beside the agent's 1 s default: two setsockopt calls per request, 2% of a busy
 * coordinator's CPU, until both were 60 s; our adapter sets nothing itself.)
 */
export const TCP_KEEPALIVE_DELAY_MS = 60_000;

/**
 * The services' socket policy for an agent of `maxSockets` per peer: keep-alive, no Nagle delay,
 * idle sockets closed a second before our servers close theirs (IDLE_SOCKET_MS), and the most
 * recently used socket first (lifo): it is the one least likely to have been closed by the server
 * meanwhile, and the others idle out. The bench's bare load client (scenarios/load-client.ts) uses
 * it too.
 */
export function keepAliveAgentOptions(maxSockets: number) {
  return {
    keepAlive: true,
    keepAliveMsecs: TCP_KEEPALIVE_DELAY_MS,
    maxSockets,
    maxFreeSockets: maxSockets,
    timeout: IDLE_SOCKET_MS,
    scheduling: 'lifo',
    noDelay: true,
  } as const;
}

export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const agentOptions = keepAliveAgentOptions(options.socketsPerHostMax ?? 64);
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);
  const instance: AxiosInstance = axios.create({
    httpAgent,
    httpsAgent,
    timeout: options.timeoutMs ?? 2_000,
    // Every status resolves: the protocol reads 4xx/5xx answers itself.
    validateStatus: () => true,
    // Keep the client local-only and predictable: no proxies from the environment, no redirects.
    // Our adapter carries out neither; these say so to anyone who swaps it for axios's own.
    proxy: false,
    maxRedirects: 0,
    // It also bounds an answer read whole (ANSWER_BYTES_DEFAULT_MAX, 8 MiB), as readText does a streamed one.
    adapter: nodeHttpAdapter,
    headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
    transitional: { clarifyTimeoutError: true },
  });

  async function call<T>(method: 'get' | 'post', url: string, body: unknown, opts: CallOptions): Promise<HttpResult<T>> {
    const once = async (): Promise<HttpResult<T>> => {
      try {
        const raw = body instanceof JsonText;
        const headers = { ...opts.headers, ...(raw && { 'content-type': 'application/json' }) };
        const res = await instance.request<T>({
          method,
          url,
          // A Buffer passes axios's request transforms untouched; a string would be parsed again to check it.
          data: raw ? Buffer.from(body.text) : body,
          headers,
          timeout: opts.timeoutMs ?? options.timeoutMs ?? 2_000,
          ...(opts.signal !== undefined && { signal: opts.signal }),
        });
        return { status: res.status, data: res.data };
      } catch (error) {
        // The caller gave up: that is its own decision, not a failure of the peer.
        if (opts.signal?.aborted === true) throw opts.signal.reason;
        throw classify(error, url);
      }
    };
    return withRetries(url, once, opts);
  }

  async function postLines(url: string, body: JsonText, opts: LinesOptions): Promise<LinesResult> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new TransportError('timeout', `no whole answer from ${url} within ${opts.timeoutMs} ms`, url)), opts.timeoutMs);
    try {
      const res = await instance.request<Readable>({
        method: 'post',
        url,
        data: Buffer.from(body.text),
        headers: { 'content-type': 'application/json', accept: `${opts.linesType}, application/json` },
        responseType: 'stream',
        // The timer above bounds the whole exchange; the adapter's timeout would stop at a stream's headers.
        timeout: 0,
        signal: controller.signal,
      });
      const type = String(res.headers['content-type'] ?? '');
      if (res.status === 200 && type.startsWith(opts.linesType)) {
        await readLines(res.data, opts.onLine, url);
        return { status: res.status, data: undefined, streamed: true };
      }
      return { status: res.status, data: jsonOrText(await readAll(res.data, url)), streamed: false };
    } catch (error) {
      if (controller.signal.aborted) throw controller.signal.reason;
      if (error instanceof TransportError || !axios.isAxiosError(error)) throw error;
      throw classify(error, url);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    postLines,
    post: (url, body, opts = {}) => call('post', url, body, opts),
    get: (url, opts = {}) => call('get', url, undefined, opts),
    close: () => {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
