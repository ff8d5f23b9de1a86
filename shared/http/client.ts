/**
 * The services' HTTP client: axios over keep-alive agents, a per-call timeout,
 * and p-retry for calls the caller marks as safe to repeat.
 *
 * Any HTTP answer resolves `{ status, data }`: a 409 or a 503 is information
 * for the protocol, not an exception. Only "no answer at all" rejects, as a
 * TransportError, because then the caller cannot tell whether the request
 * landed and must treat the outcome as unknown.
 */
import http from 'node:http';
import https from 'node:https';
import axios, { AxiosError, type AxiosInstance } from 'axios';
import pRetry, { AbortError } from 'p-retry';
import { SERVER_LIMITS_DEFAULT } from './limits.ts';

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

export interface HttpClient {
  post<T>(url: string, body: unknown, options?: CallOptions): Promise<HttpResult<T>>;
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
 */
export function withRetries<T>(
  url: string,
  attempt: () => Promise<HttpResult<T>>,
  opts: RetryOptions & { readonly isFinal?: (error: unknown) => boolean },
): Promise<HttpResult<T>> {
  const retries = Math.min(opts.retries ?? 0, RETRIES_MAX);
  if (retries === 0) return attempt();
  let last5xx: HttpResult<T> | undefined;
  return pRetry(
    async () => {
      let result: HttpResult<T>;
      try {
        result = await attempt();
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

export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const maxSockets = options.socketsPerHostMax ?? 64;
  // Keep-alive, no Nagle delay, and the most recently used socket first (lifo): it is the one
  // least likely to have been closed by the server meanwhile, and the others idle out.
  const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: IDLE_SOCKET_MS, scheduling: 'lifo', noDelay: true } as const;
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);
  const instance: AxiosInstance = axios.create({
    httpAgent,
    httpsAgent,
    timeout: options.timeoutMs ?? 2_000,
    // Every status resolves: the protocol reads 4xx/5xx answers itself.
    validateStatus: () => true,
    // Keep the client local-only and predictable: no proxies from the environment.
    proxy: false,
    maxRedirects: 0,
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

  return {
    post: (url, body, opts = {}) => call('post', url, body, opts),
    get: (url, opts = {}) => call('get', url, undefined, opts),
    close: () => {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
