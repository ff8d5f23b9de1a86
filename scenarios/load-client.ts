/**
 * The bench's load generator's HTTP client: JSON POSTs over node:http keep-alive
 * sockets, nothing else. The bench's clients stand for the users, who may call
 * the coordinator with any client; the bench's floor counts each round trip as a
 * bare node:http one (bench-probes.ts), so the transactions' own hop into the
 * coordinator is sent the same way. `twopc bench --load-client axios` sends it
 * through the services' client (shared/http/client.ts) instead, which cost the
 * bench process 1.7-1.9x the CPU per transfer, on the same two cores as the
 * nodes it measures (docs/performance.md, "The bench's clients on bare node:http").
 *
 * An answer resolves `{ status, data }` with its JSON body; no answer (a
 * refused or reset connection, a timeout, an answer too large or not JSON)
 * rejects. No retry: a transfer that fails is counted as an error.
 */
import http from 'node:http';
import { createHttpClient, keepAliveAgentOptions } from '../shared/http/client.ts';
import type { LoadClientKind } from './bench-cli.ts';

export type { LoadClientKind } from './bench-cli.ts';

/** The largest answer read: a coordinator's answer to one transaction is well under a kilobyte. */
export const LOAD_ANSWER_BYTES_MAX = 1024 * 1024;

export interface LoadClient {
  post<T>(url: string, body: unknown): Promise<{ readonly status: number; readonly data: T }>;
  close(): void;
}

export interface LoadClientOptions {
  /** Sockets kept open to the coordinator: the bench's concurrency. */
  readonly socketsMax: number;
  /** Each request's whole exchange, answer included. */
  readonly timeoutMs: number;
}

/** `kind` unset: bare node:http, bench-cli.ts's LOAD_CLIENT_DEFAULT (a type-only import here keeps the CLI's registry out of this module). */
export function createLoadClient(kind: LoadClientKind | undefined, options: LoadClientOptions): LoadClient {
  if (kind === 'axios') {
    const client = createHttpClient({ timeoutMs: options.timeoutMs, socketsPerHostMax: options.socketsMax });
    return { post: (url, body) => client.post(url, body), close: () => client.close() };
  }
  return nodeLoadClient(options);
}

function nodeLoadClient({ socketsMax, timeoutMs }: LoadClientOptions): LoadClient {
  // The services' socket policy: among other things an idle socket is closed before the server
  // would close it, since a transfer written on a closing socket fails and is not sent again.
  const agent = new http.Agent(keepAliveAgentOptions(socketsMax));
  return {
    post: <T>(url: string, body: unknown) =>
      new Promise<{ status: number; data: T }>((resolve, reject) => {
        const text = JSON.stringify(body);
        const fail = (err: Error) => {
          clearTimeout(timer);
          reject(err);
        };
        const req = http.request(
          url,
          { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } },
          (res) => {
            const chunks: Buffer[] = [];
            let bytes = 0;
            res.on('data', (chunk: Buffer) => {
              bytes += chunk.length;
              if (bytes > LOAD_ANSWER_BYTES_MAX) req.destroy(new Error(`the answer from ${url} passed ${LOAD_ANSWER_BYTES_MAX} bytes`));
              else chunks.push(chunk);
            });
            res.on('end', () => {
              clearTimeout(timer);
              const raw = Buffer.concat(chunks).toString('utf8');
              try {
                resolve({ status: res.statusCode ?? 0, data: (raw === '' ? undefined : JSON.parse(raw)) as T });
              } catch {
                reject(new Error(`the answer from ${url} (${res.statusCode}) is not JSON: ${raw.slice(0, 200)}`));
              }
            });
            res.on('error', fail);
          },
        );
        const timer = setTimeout(() => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
        req.on('error', fail);
        req.end(text);
      }),
    close: () => agent.destroy(),
  };
}
