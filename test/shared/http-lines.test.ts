/**
 * `postLines`, the call every batch to a participant takes (shared/http/client.ts), against a
 * real node:http server on 127.0.0.1: the headers it sends (the client's token among them), each
 * line handed over as it arrives, decoded whole across chunks, an answer that is not a stream read
 * whole, and the TransportErrors of the contract: unreachable,
 * timed out, cut short. A line the reader refuses rejects the call with the reader's own error.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonText, TransportError, createHttpClient, type HttpClient } from '../../shared/http/client.ts';
import { listenForTest } from '../helpers/server.ts';

const LINES = 'application/x-ndjson';
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A server that hands each request (with its body) to `handle`. */
async function serve(handle: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<string> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += String(c)));
    req.on('end', () => handle(req, body, res));
  });
  return listenForTest(server, closers);
}

function client(token?: string): HttpClient {
  const c = createHttpClient(token === undefined ? {} : { token });
  closers.push(async () => c.close());
  return c;
}

describe('postLines', () => {
  it('sends the body, the token and both accepted types, and hands over each line of a streamed answer', async () => {
    let seen: { headers: http.IncomingHttpHeaders; body: string } | undefined;
    const url = await serve((req, body, res) => {
      seen = { headers: req.headers, body };
      res.writeHead(200, { 'content-type': LINES });
      res.write('{"i":1}\n{"i"');
      res.end(':0}\n');
    });
    const lines: string[] = [];
    const result = await client('s3cret').postLines(`${url}/v1/2pc/batch`, new JsonText('{"messages":[]}'), { timeoutMs: 10_000, linesType: LINES, onLine: (l) => lines.push(l) });
    expect(result).toEqual({ status: 200, data: undefined, streamed: true });
    expect(lines).toEqual(['{"i":1}', '{"i":0}']);
    expect(seen?.body).toBe('{"messages":[]}');
    expect(seen?.headers.authorization).toBe('Bearer s3cret');
    expect(seen?.headers['content-type']).toBe('application/json');
    expect(seen?.headers.accept).toBe(`${LINES}, application/json`);
  });

  it('reads an answer that is not a stream whole: JSON parsed, anything else as text, every status', async () => {
    const url = await serve((req, _body, res) => {
      if (req.url === '/json') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"not_found","message":"no"}}');
      } else {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('bad gateway');
      }
    });
    const c = client();
    const opts = { timeoutMs: 10_000, linesType: LINES, onLine: () => expect.fail('no line expected') };
    expect(await c.postLines(`${url}/json`, new JsonText('{}'), opts)).toEqual({ status: 404, data: { error: { code: 'not_found', message: 'no' } }, streamed: false });
    expect(await c.postLines(`${url}/text`, new JsonText('{}'), opts)).toEqual({ status: 502, data: 'bad gateway', streamed: false });
  });

  it("rejects with the reader's own error when it refuses a line, and reads no further", async () => {
    const url = await serve((_req, _body, res) => {
      res.writeHead(200, { 'content-type': LINES });
      res.write('{"i":0}\n');
      // The rest never comes: the call must end on the refusal, not wait for it.
    });
    const refused = new Error('a line for another transaction');
    const lines: string[] = [];
    const call = client().postLines(`${url}/b`, new JsonText('{}'), {
      timeoutMs: 60_000,
      linesType: LINES,
      onLine: (l) => {
        lines.push(l);
        throw refused;
      },
    });
    await expect(call).rejects.toBe(refused);
    expect(lines).toEqual(['{"i":0}']);
  });

  it('decodes a character whose bytes arrive in two chunks whole, in a streamed answer and in one read whole', async () => {
    const line = Buffer.from('{"key":"zoë"}\n');
    // Split inside the two bytes of "ë"; the second part follows once the first has been read.
    const cut = line.indexOf(Buffer.from('ë')) + 1;
    const url = await serve((req, _body, res) => {
      res.writeHead(200, { 'content-type': req.url === '/stream' ? LINES : 'application/json' });
      res.write(line.subarray(0, cut));
      setTimeout(() => res.end(line.subarray(cut)), 50);
    });
    const c = client();
    const lines: string[] = [];
    const streamed = await c.postLines(`${url}/stream`, new JsonText('{}'), { timeoutMs: 10_000, linesType: LINES, onLine: (l) => lines.push(l) });
    expect(streamed.streamed).toBe(true);
    expect(lines).toEqual(['{"key":"zoë"}']);
    const whole = await c.postLines(`${url}/whole`, new JsonText('{}'), { timeoutMs: 10_000, linesType: LINES, onLine: () => expect.fail('no line expected') });
    expect(whole).toEqual({ status: 200, data: { key: 'zoë' }, streamed: false });
  });

  it('fails as unreachable when nothing listens, as timeout when the answer does not end in time, as reset when it is cut', async () => {
    const closed = await serve(() => undefined);
    await closers.pop()?.();
    const c = client();
    const opts = { linesType: LINES, onLine: () => undefined };
    await expect(c.postLines(`${closed}/b`, new JsonText('{}'), { ...opts, timeoutMs: 10_000 })).rejects.toMatchObject({ name: 'TransportError', code: 'unreachable' });

    const silent = await serve((_req, _body, res) => {
      res.writeHead(200, { 'content-type': LINES });
      res.write('{"i":0}\n');
    });
    const late = c.postLines(`${silent}/b`, new JsonText('{}'), { ...opts, timeoutMs: 50 });
    await expect(late).rejects.toBeInstanceOf(TransportError);
    await expect(late).rejects.toMatchObject({ code: 'timeout' });

    const cut = await serve((_req, _body, res) => {
      res.writeHead(200, { 'content-type': LINES });
      res.write('{"i":0}\n{"i":');
      setImmediate(() => res.socket?.destroy());
    });
    await expect(c.postLines(`${cut}/b`, new JsonText('{}'), { ...opts, timeoutMs: 10_000 })).rejects.toMatchObject({ name: 'TransportError', code: 'reset' });
  });
});
