/**
 * The services' axios adapter (shared/http/node-adapter.ts) against a real node:http server on
 * 127.0.0.1: what it puts on the wire (method, path, headers, the body's bytes and length), what it
 * hands back to axios (JSON parsed by axios's transform, text, bytes, a stream at its headers), and
 * each way a call fails as axios's own adapter fails it: a status `validateStatus` refuses, a
 * timeout, a refused connection, the caller's abort, an answer too long or cut short. An option it
 * does not carry out is refused before anything reaches the server.
 */
import { getEventListeners } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import axios, { AxiosError, AxiosHeaders, type AxiosInstance, type CreateAxiosDefaults } from 'axios';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeHttpAdapter } from '../../shared/http/node-adapter.ts';
import { listenForTest } from '../helpers/server.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A server that records each request whole and hands it to `handle`. */
async function serve(handle: (seen: Seen, res: ServerResponse, req: IncomingMessage) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(s);
      handle(s, res, req);
    });
  });
  return { url: await listenForTest(server, closers), seen };
}

function client(defaults: CreateAxiosDefaults = {}): AxiosInstance {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  closers.push(async () => agent.destroy());
  return axios.create({ adapter: nodeHttpAdapter, httpAgent: agent, proxy: false, ...defaults });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Resolves with what `promise` rejected with; fails the test if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<AxiosError> {
  try {
    await promise;
  } catch (error) {
    expect(axios.isAxiosError(error)).toBe(true);
    return error as AxiosError;
  }
  return expect.fail('the call resolved');
}

describe('the services axios adapter: what goes on the wire', () => {
  it('sends the method, path and query, the headers, and the body with its byte length', async () => {
    const { url, seen } = await serve((_s, res) => json(res, 201, { ok: true }));
    const res = await client({ headers: { authorization: 'Bearer t0ken' } }).post(`${url}/v1/x?y=1`, { name: 'zoë' }, { headers: { 'x-extra': 'e' } });
    expect(res.status).toBe(201);
    expect(res.data).toEqual({ ok: true });
    expect(res.headers['content-type']).toBe('application/json');
    const s = seen[0]!;
    expect(s.method).toBe('POST');
    expect(s.url).toBe('/v1/x?y=1');
    expect(s.body.toString('utf8')).toBe('{"name":"zoë"}');
    // The byte length, not the character count: "ë" is two bytes.
    expect(s.headers['content-length']).toBe(String(Buffer.byteLength('{"name":"zoë"}')));
    expect(s.headers['content-type']).toBe('application/json');
    expect(s.headers.authorization).toBe('Bearer t0ken');
    expect(s.headers['x-extra']).toBe('e');
    expect(s.headers['accept-encoding']).toBeUndefined();
  });

  it('sends a Buffer and a typed array as their bytes, and a GET with no body', async () => {
    const { url, seen } = await serve((_s, res) => json(res, 200, {}));
    const c = client();
    await c.post(`${url}/buf`, Buffer.from('{"a":1}'), { headers: { 'content-type': 'application/json' } });
    // Axios's request transform hands a typed array over as its ArrayBuffer.
    await c.post(`${url}/typed`, new Uint8Array([2, 250, 251]), { headers: { 'content-type': 'application/octet-stream' } });
    await c.get(`${url}/get`);
    expect(seen.map((s) => [s.method, s.url, [...s.body]])).toEqual([
      ['POST', '/buf', [...Buffer.from('{"a":1}')]],
      ['POST', '/typed', [2, 250, 251]],
      ['GET', '/get', []],
    ]);
    expect(seen[1]!.headers['content-length']).toBe('3');
    expect(seen[2]!.headers['content-length']).toBeUndefined();
  });

  it('reaches an IPv6 literal: bracketed in the URL, unbracketed to node', async (ctx) => {
    const server = http.createServer((_req, res) => json(res, 200, { v6: true }));
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(0, '::1', () => resolve(true));
    });
    if (!listening) ctx.skip('this machine has no IPv6 loopback');
    closers.push(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    const port = (server.address() as AddressInfo).port;
    expect((await client().get(`http://[::1]:${port}/x`)).data).toEqual({ v6: true });
  });

  it('refuses the options it does not carry out, and a body it cannot send, before any request is made', async () => {
    const { url, seen } = await serve((_s, res) => json(res, 200, {}));
    const c = client();
    const withCredentials = url.replace('http://', 'http://user:secret@');
    for (const config of [
      { baseURL: url, url: '/x' },
      { url: `${url}/x`, params: { a: 1 } },
      { url: `${url}/x`, auth: { username: 'u', password: 'p' } },
      { url: `${withCredentials}/x` },
      { url: `${url}/x`, proxy: { host: '127.0.0.1', port: 9 } },
      { url: `${url}/x`, socketPath: '/tmp/none.sock' },
    ]) {
      const error = await rejection(c.request({ method: 'get', ...config }));
      expect(error.code).toBe(AxiosError.ERR_BAD_OPTION);
    }
    const streamed = await rejection(c.post(`${url}/x`, Readable.from(['a', 'b'])));
    expect(streamed.code).toBe(AxiosError.ERR_BAD_OPTION);
    expect((await rejection(c.get('ftp://127.0.0.1/x'))).code).toBe(AxiosError.ERR_BAD_REQUEST);
    expect((await rejection(c.get('not a url'))).code).toBe(AxiosError.ERR_INVALID_URL);
    expect(seen).toEqual([]);
  });

  it('refuses a call whose signal is already aborted, before any request is made', async () => {
    const { url, seen } = await serve((_s, res) => json(res, 200, {}));
    // Axios itself checks the signal before it calls an adapter; this is the adapter's own check.
    const call = nodeHttpAdapter({ url: `${url}/x`, method: 'get', headers: new AxiosHeaders(), signal: AbortSignal.abort() });
    expect(axios.isCancel(await rejection(call))).toBe(true);
    expect(seen).toEqual([]);
  });
});

describe('the services axios adapter: the answer', () => {
  it('gives text that is not JSON as text, and bytes when asked for an arraybuffer', async () => {
    const { url } = await serve((s, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(s.url === '/text' ? 'plain words' : Buffer.from([1, 2, 3]));
    });
    const c = client();
    expect((await c.get(`${url}/text`)).data).toBe('plain words');
    const bytes = await c.get(`${url}/bytes`, { responseType: 'arraybuffer' });
    expect([...(bytes.data as Buffer)]).toEqual([1, 2, 3]);
  });

  it('applies validateStatus as axios does: a refused 4xx is ERR_BAD_REQUEST, a 5xx ERR_BAD_RESPONSE, each with its answer', async () => {
    const { url } = await serve((s, res) => json(res, s.url === '/missing' ? 404 : 503, { error: s.url }));
    const strict = client();
    const missing = await rejection(strict.get(`${url}/missing`));
    expect(missing.code).toBe(AxiosError.ERR_BAD_REQUEST);
    expect(missing.response?.status).toBe(404);
    expect(missing.response?.data).toEqual({ error: '/missing' });
    const down = await rejection(strict.get(`${url}/down`));
    expect(down.code).toBe(AxiosError.ERR_BAD_RESPONSE);
    expect(down.response?.status).toBe(503);
    // Every status resolves where validateStatus says so (the services' client).
    const lenient = client({ validateStatus: () => true });
    expect((await lenient.get(`${url}/down`)).status).toBe(503);
  });

  it('hands a streamed answer over at its headers, before its body is complete', async () => {
    let finish: (() => void) | undefined;
    const { url } = await serve((_s, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('{"i":1}\n');
      finish = () => res.end('{"i":2}\n');
    });
    const res = await client().get<Readable>(`${url}/s`, { responseType: 'stream' });
    expect(res.status).toBe(200);
    expect(finish).toBeDefined();
    const read = (async () => {
      let text = '';
      for await (const chunk of res.data) text += String(chunk);
      return text;
    })();
    finish!();
    expect(await read).toBe('{"i":1}\n{"i":2}\n');
  });

  it('drains a streamed answer that validateStatus refuses, so its socket serves the next call', async () => {
    const sockets = new Set<unknown>();
    const { url } = await serve((s, res, req) => {
      sockets.add(req.socket);
      if (s.url === '/missing') json(res, 404, { error: 'x'.repeat(100_000) });
      else json(res, 200, { ok: true });
    });
    // One socket only: a refused stream left unread would hold it, and the next call would time out waiting for it.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    closers.push(async () => agent.destroy());
    const c = axios.create({ adapter: nodeHttpAdapter, httpAgent: agent, timeout: 2_000 });
    const refused = await rejection(c.get(`${url}/missing`, { responseType: 'stream' }));
    expect(refused.response?.status).toBe(404);
    expect((await c.get(`${url}/ok`)).data).toEqual({ ok: true });
    expect(sockets.size).toBe(1);
  });

  it('refuses an answer longer than maxContentLength', async () => {
    const { url } = await serve((_s, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('x'.repeat(5_000));
    });
    const error = await rejection(client({ maxContentLength: 1_000 }).get(`${url}/big`));
    expect(error.code).toBe(AxiosError.ERR_BAD_RESPONSE);
    expect(error.message).toMatch(/maxContentLength/);
    expect((await client({ maxContentLength: 10_000 }).get(`${url}/big`)).data).toHaveLength(5_000);
  });
});

describe('the services axios adapter: no answer', () => {
  it('times out as axios does (ETIMEDOUT when clarified, else ECONNABORTED) and closes the connection', async () => {
    const closed: string[] = [];
    const { url } = await serve((s, _res, req) => req.socket.on('close', () => closed.push(s.url)));
    const clarified = await rejection(client({ timeout: 100, transitional: { clarifyTimeoutError: true } }).get(`${url}/a`));
    expect(clarified.code).toBe(AxiosError.ETIMEDOUT);
    expect(clarified.message).toBe('timeout of 100ms exceeded');
    const plain = await rejection(client({ timeout: 100 }).get(`${url}/b`));
    expect(plain.code).toBe(AxiosError.ECONNABORTED);
    await expect.poll(() => closed.sort()).toEqual(['/a', '/b']);
  });

  it('rejects with the socket error code when nothing listens', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const error = await rejection(client({ timeout: 5_000 }).get(`http://127.0.0.1:${port}/x`));
    expect(error.code).toBe('ECONNREFUSED');
  });

  it("gives the call up on the caller's abort, before the answer and while a streamed answer is read", async () => {
    const { url } = await serve((s, res) => {
      if (s.url === '/stream') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.write('{"i":1}\n');
      }
      // Otherwise: no answer at all.
    });
    const c = client({ timeout: 10_000 });
    const early = new AbortController();
    const call = c.get(`${url}/silent`, { signal: early.signal });
    setTimeout(() => early.abort(), 50);
    expect(axios.isCancel(await rejection(call))).toBe(true);

    const late = new AbortController();
    const res = await c.get<Readable>(`${url}/stream`, { responseType: 'stream', signal: late.signal });
    const chunks: string[] = [];
    const read = (async () => {
      for await (const chunk of res.data) {
        chunks.push(String(chunk));
        late.abort();
      }
    })();
    await expect(read).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(chunks).toEqual(['{"i":1}\n']);
  });

  it('leaves no listener on a signal shared by many calls, answered, refused and timed out', async () => {
    const { url } = await serve((s, res) => {
      if (s.url === '/ok') json(res, 200, {});
      else if (s.url === '/missing') json(res, 404, {});
      // '/silent' gets no answer.
    });
    const shared = new AbortController();
    const c = client({ timeout: 100 });
    for (let i = 0; i < 20; i++) await c.get(`${url}/ok`, { signal: shared.signal });
    for (let i = 0; i < 3; i++) await rejection(c.get(`${url}/missing`, { signal: shared.signal }));
    for (let i = 0; i < 3; i++) expect((await rejection(c.get(`${url}/silent`, { signal: shared.signal }))).code).toBe(AxiosError.ECONNABORTED);
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(0);
  });

  it('rejects an answer cut short before its end with ECONNRESET', async () => {
    const { url } = await serve((_s, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const error = await rejection(client({ timeout: 10_000 }).get(`${url}/cut`));
    expect(error.code).toBe('ECONNRESET');
  });
});
