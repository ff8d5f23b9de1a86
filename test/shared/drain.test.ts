/**
 * `listen(...).close()` drains: requests in flight finish and are answered,
 * nothing new is taken, idle keep-alive connections do not hold it up, and a
 * request that never finishes is cut at `drainMsMax`.
 */
import http from 'node:http';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, type Listening } from '../../shared/http/app.ts';

let open: Listening | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});

/** An app whose /slow route answers only when `release` is called; /fast answers at once. */
function gatedApp(): { app: express.Express; arrived: Promise<void>; release: () => void } {
  const app = express();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let arrive!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  app.get('/slow', (_req, res) => {
    arrive();
    void gate.then(() => res.json({ done: true }));
  });
  app.get('/fast', (_req, res) => res.json({ fast: true }));
  return { app, arrived, release };
}

function get(url: string, agent?: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: agent ?? false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

describe('listen().close() drains', () => {
  it('answers the request in flight, refuses new connections, and is not held up by idle keep-alive sockets', async () => {
    const { app, arrived, release } = gatedApp();
    const l = await listen(app, 0);
    open = l;
    // An idle keep-alive connection, as a peer's pool leaves one.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    expect((await get(`${l.url}/fast`, agent)).status).toBe(200);

    const inFlight = get(`${l.url}/slow`);
    await arrived;
    let closed = false;
    const closing = l.close().then(() => (closed = true));
    // The listener is gone: a new connection is refused, so nothing new starts.
    await expect(get(`${l.url}/fast`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(closed).toBe(false);

    release();
    expect(await inFlight).toEqual({ status: 200, body: JSON.stringify({ done: true }) });
    await closing;
    expect(closed).toBe(true);
    agent.destroy();
  });

  it('cuts a request still in flight after drainMsMax', async () => {
    const { app, arrived } = gatedApp();
    const l = await listen(app, 0, '127.0.0.1', { limits: { drainMsMax: 50 } });
    open = l;
    const stuck = get(`${l.url}/slow`);
    await arrived;
    await l.close();
    await expect(stuck).rejects.toMatchObject({ code: 'ECONNRESET' });
  });
});
