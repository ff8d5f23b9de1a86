/**
 * The bench's load client (scenarios/load-client.ts) against a real node:http server on
 * loopback: both kinds answer a POST with its status and JSON body, and the bare one
 * rejects whatever is not an answer (refused, too slow, too large, not JSON).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLoadClient, LOAD_ANSWER_BYTES_MAX } from '../../scenarios/load-client.ts';

const TIMEOUT_MS = 300;
let server: http.Server;
let base: string;
const seen: { url: string; contentType: string | undefined; body: string }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', contentType: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
      if (req.url === '/conflict') return void res.writeHead(409, { 'content-type': 'application/json' }).end('{"error":"busy"}');
      if (req.url === '/text') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('not json');
      if (req.url === '/empty') return void res.writeHead(204).end();
      if (req.url === '/slow') return void setTimeout(() => res.end('{}'), TIMEOUT_MS * 5).unref();
      if (req.url === '/large') return void res.end(`"${'x'.repeat(LOAD_ANSWER_BYTES_MAX + 10)}"`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ outcome: 'committed', echo: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('the bench load client', () => {
  for (const kind of ['node', 'axios'] as const) {
    it(`${kind}: posts the body as JSON and resolves the status with the parsed answer, a 409 included`, async () => {
      const client = createLoadClient(kind, { socketsMax: 2, timeoutMs: 5_000 });
      try {
        const body = { ops: [{ participant: 'p1', op: 'add', key: 'a', by: -1, min: 0 }], note: 'é' };
        const ok = await client.post<{ outcome: string; echo: unknown }>(`${base}/v1/transactions`, body);
        expect(ok).toEqual({ status: 200, data: { outcome: 'committed', echo: body } });
        expect(seen.at(-1)).toMatchObject({ url: '/v1/transactions', contentType: 'application/json' });
        expect(await client.post(`${base}/conflict`, {})).toEqual({ status: 409, data: { error: 'busy' } });
      } finally {
        client.close();
      }
    });
  }

  it('node: rejects an answer that is not JSON, one too large, one too slow, and a refused connection', async () => {
    const client = createLoadClient('node', { socketsMax: 2, timeoutMs: TIMEOUT_MS });
    try {
      await expect(client.post(`${base}/text`, {})).rejects.toThrow(/\(200\) is not JSON: not json/);
      await expect(client.post(`${base}/large`, {})).rejects.toThrow(`passed ${LOAD_ANSWER_BYTES_MAX} bytes`);
      const t0 = performance.now();
      await expect(client.post(`${base}/slow`, {})).rejects.toThrow(`within ${TIMEOUT_MS} ms`);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      // An empty answer is no body, not an error.
      expect(await client.post(`${base}/empty`, {})).toEqual({ status: 204, data: undefined });
    } finally {
      client.close();
    }
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refused = createLoadClient('node', { socketsMax: 1, timeoutMs: TIMEOUT_MS });
    try {
      await expect(refused.post(`http://127.0.0.1:${port}/`, {})).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      refused.close();
    }
  });
});
