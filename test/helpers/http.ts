/**
 * JSON over HTTP for tests, every call bounded by a timeout: the services' own
 * client (shared/http/client.ts) for well-formed calls, and bare fetch only for
 * what a test sends raw on purpose (malformed bodies, methods the client lacks).
 */
import { createHttpClient } from '../../shared/http/client.ts';
import { jsonBody } from '../../scenarios/kit.ts';

export interface Answer<T = Record<string, unknown>> {
  readonly status: number;
  readonly body: T;
}

const CALL_TIMEOUT_MS = 15_000;
const client = createHttpClient({ timeoutMs: CALL_TIMEOUT_MS });

export async function call<T = Record<string, unknown>>(
  method: string,
  url: string,
  body?: unknown,
  options: { headers?: Record<string, string>; raw?: string; timeoutMs?: number } = {},
): Promise<Answer<T>> {
  if (options.raw === undefined && (method === 'GET' || method === 'POST')) {
    const opts = { timeoutMs: options.timeoutMs ?? CALL_TIMEOUT_MS, ...(options.headers !== undefined && { headers: options.headers }) };
    const res = method === 'GET' ? await client.get<unknown>(url, opts) : await client.post<unknown>(url, body, opts);
    return { status: res.status, body: jsonBody(res.data) as T };
  }
  const payload = options.raw ?? (body === undefined ? undefined : JSON.stringify(body));
  const res = await fetch(url, {
    method,
    headers: { ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers },
    body: payload,
    signal: AbortSignal.timeout(options.timeoutMs ?? CALL_TIMEOUT_MS),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed as T };
}

export const get = <T = Record<string, unknown>>(url: string) => call<T>('GET', url);
export const post = <T = Record<string, unknown>>(url: string, body?: unknown) => call<T>('POST', url, body ?? {});

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}
