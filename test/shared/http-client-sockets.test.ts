/**
 * The services' HTTP client keeps a reused socket as it is: its TCP keep-alive is set when the
 * socket is new, not again on every request (shared/http/client.ts `TCP_KEEPALIVE_DELAY_MS`).
 * axios's own http adapter and node's agent each set the keep-alive delay on a socket; with two
 * different delays, every request changed it twice and node made two setsockopt calls. The
 * services' adapter (shared/http/node-adapter.ts) sets none; the agent's setting stays. This counts the calls that
 * reach the socket's handle (node skips those that would change nothing) over many requests on
 * one socket: a real server on 127.0.0.1, the real client.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient, JsonText } from '../../shared/http/client.ts';

const REQUESTS = 20;

type KeepAliveSetter = (enable?: boolean, delay?: number) => unknown;
interface Handle {
  setKeepAlive?: KeepAliveSetter;
}

let server: http.Server;
let url: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/**
 * Runs `work` while counting the keep-alive system calls of every client socket it uses: each
 * socket's handle is wrapped the first time node's `Socket.setKeepAlive` sees it.
 */
async function countingKeepAliveCalls(work: () => Promise<void>): Promise<{ calls: number; sockets: number }> {
  const original = net.Socket.prototype.setKeepAlive;
  const handles = new WeakSet<object>();
  let calls = 0;
  let sockets = 0;
  net.Socket.prototype.setKeepAlive = function (this: net.Socket & { _handle?: Handle | null }, enable?: boolean, delay?: number) {
    const handle = this._handle;
    const native = handle?.setKeepAlive;
    if (handle && native && !handles.has(handle)) {
      handles.add(handle);
      sockets++;
      handle.setKeepAlive = (...args) => {
        calls++;
        return native.apply(handle, args);
      };
    }
    return original.call(this, enable, delay);
  };
  try {
    await work();
  } finally {
    net.Socket.prototype.setKeepAlive = original;
  }
  return { calls, sockets };
}

describe('the HTTP client on a reused socket', () => {
  it('sets TCP keep-alive once per socket, not on every request', async () => {
    const client = createHttpClient({ timeoutMs: 5_000, socketsPerHostMax: 1 });
    try {
      const counted = await countingKeepAliveCalls(async () => {
        for (let i = 0; i < REQUESTS; i++) {
          const res = await client.post<{ ok: boolean }>(`${url}/x`, { i });
          expect(res).toEqual({ status: 200, data: { ok: true } });
        }
        for (let i = 0; i < REQUESTS; i++) {
          const res = await client.postLines(`${url}/y`, new JsonText(`{"i":${i}}`), { timeoutMs: 5_000, linesType: 'application/x-ndjson', onLine: () => {} });
          expect(res).toMatchObject({ status: 200, streamed: false, data: { ok: true } });
        }
      });
      // One socket carried all of it, and the agent set its keep-alive on it (sockets counts the
      // sockets setKeepAlive was called on). The delay is set when the socket connects; no request
      // changed it after that. Once, each request set it twice (axios's adapter, then the agent).
      expect(counted.sockets).toBe(1);
      expect(counted.calls).toBeLessThanOrEqual(1);
    } finally {
      client.close();
    }
  });
});
