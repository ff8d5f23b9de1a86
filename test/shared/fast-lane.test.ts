/**
 * The fast lane (shared/http/fast-lane.ts) over real HTTP: one base app served
 * twice, by a server whose lane is open and by one whose lane is off, and the
 * same requests sent to both. Every answer must be the same bytes (status,
 * content type, length, Retry-After, body) and be counted the same in
 * `twopc_http_requests_total`; the plain requests must not reach express on the
 * lane's server, and every other request must.
 */
import http from 'node:http';
import express from 'express';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TwopcError } from '../../shared/errors.ts';
import { createBaseApp, finishApp, listen, sendAnswer, type Listening } from '../../shared/http/app.ts';
import { fastLaneOf, mountFast, type FastRoute } from '../../shared/http/fast-lane.ts';
import { createCoordinatorApp } from '../../coordinator/server.ts';
import { createParticipant } from '../../participant/library.ts';
import { createParticipantApp } from '../../participant/server.ts';
import { CrashPoints } from '../../shared/crash.ts';
import { startCoordinator } from '../../coordinator/main.ts';
import { Cleanup, participant, stubCoordinator, tempDir } from '../participant/fixtures.ts';
import { defineRoute, mountRoute } from '../../shared/http/route-table.ts';
import type { Logger } from '../../shared/logger.ts';
import { silentLogger } from '../../shared/logger.ts';
import { Metrics } from '../../shared/metrics.ts';

const TOKEN = 'sekrit';
const LIMIT = 1024;

const echoRoute = defineRoute({
  method: 'post',
  path: '/v1/echo',
  tag: 'test',
  summary: 'Echoes `say`; `fail` makes it fail as asked.',
  body: z.strictObject({ say: z.string().max(200), fail: z.enum(['conflict', 'unknown', 'busy']).optional() }),
  responses: { 200: { description: 'The echo.' } },
});

interface Answer {
  readonly status: number;
  /** Every header but Date. */
  readonly headers: Record<string, unknown>;
  readonly body: string;
}

interface Sent {
  readonly path?: string;
  readonly body?: string;
  readonly headers?: Record<string, string>;
  /** Without a Content-Length (chunked). */
  readonly chunked?: boolean;
}

function post(url: string, sent: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = sent.body ?? '';
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      authorization: `Bearer ${TOKEN}`,
      ...(sent.chunked === true ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
      ...sent.headers,
    };
    for (const [name, value] of Object.entries(headers)) if (value === '') delete headers[name];
    const req = http.request(`${url}${sent.path ?? '/v1/echo'}`, { method: 'POST', headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const { date: _date, ...headers } = res.headers;
        resolve({ status: res.statusCode ?? 0, headers, body: text });
      });
    });
    req.on('error', reject);
    if (sent.chunked === true) {
      req.write(body.slice(0, 3));
      req.end(body.slice(3));
    } else req.end(body);
  });
}

interface Served {
  readonly lane: Listening;
  readonly noLane: Listening;
  readonly metrics: Metrics;
  readonly errors: unknown[];
  /** Requests that reached express, on each server. */
  readonly reached: { lane: number; noLane: number };
}

/** The base app with the echo route mounted in express and on the lane, served with and without the lane. */
async function serve(): Promise<Served> {
  const metrics = new Metrics();
  const errors: unknown[] = [];
  const logger: Logger = Object.assign(Object.create(silentLogger()) as Logger, { error: (obj: unknown) => void errors.push(obj) });
  const app = createBaseApp({ role: 'participant', name: 'p', token: TOKEN, bodyLimitBytes: LIMIT, isRecovering: () => false, metrics, logger });
  const reached = { lane: 0, noLane: 0 };
  let laneUrl = '';
  // Every request express serves enters through app.handle (the app's front is its first layer).
  const handle = (app as unknown as { handle: (req: http.IncomingMessage, ...rest: unknown[]) => unknown }).handle.bind(app);
  Object.assign(app, {
    handle: (req: http.IncomingMessage, ...rest: unknown[]) => {
      if (`http://${req.headers.host ?? ''}` === laneUrl) reached.lane++;
      else reached.noLane++;
      return handle(req, ...rest);
    },
  });
  const echo: FastRoute<{ say: string; fail?: 'conflict' | 'unknown' | 'busy' }> = {
    spec: echoRoute,
    handler: ({ body }, _req, res) => {
      if (body.fail === 'conflict') throw new TwopcError('conflict', `Cannot echo "${body.say}".`);
      if (body.fail === 'unknown') throw new Error('a bug');
      if (body.fail === 'busy') return sendAnswer(res, 503, { error: { code: 'unavailable', message: 'busy' } });
      sendAnswer(res, 200, { said: body.say });
    },
  };
  mountRoute(app, echo.spec, echo.handler);
  mountFast(app, echo);
  finishApp(app, logger);
  const lane = await listen(app, 0);
  laneUrl = lane.url;
  const noLane = await listen(app, 0, '127.0.0.1', { fastLane: false });
  return { lane, noLane, metrics, errors, reached };
}

const valid = JSON.stringify({ say: 'hello' });

/** `twopc_http_requests_total`, series by series. */
async function requestCounts(metrics: Metrics): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await metrics.render()).split('\n')) {
    if (line.startsWith('twopc_http_requests_total{')) out.set(line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** What one request added to the counts: its series and how much. A response is counted when it finishes, so this waits (up to 2 s) for a count to move. */
async function countedBy(metrics: Metrics, send: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await requestCounts(metrics);
  await send();
  for (let i = 0; i < 200; i++) {
    const after = await requestCounts(metrics);
    const added: Record<string, number> = {};
    for (const [series, n] of after) if (n !== (before.get(series) ?? 0)) added[series] = n - (before.get(series) ?? 0);
    if (Object.keys(added).length > 0) return added;
    await new Promise((r) => setTimeout(r, 10));
  }
  return {};
}

/** Requests the lane takes: each answered without express. */
const TAKEN: readonly (readonly [string, Sent])[] = [
  ['a valid body', { body: valid }],
  ['a valid body, charset utf-8', { body: valid, headers: { 'content-type': 'application/json; charset=utf-8' } }],
  ['an empty body (a 400: `say` is missing)', { body: '' }],
  ['malformed JSON', { body: '{"say": ' }],
  ['a field of the wrong type', { body: JSON.stringify({ say: 7 }) }],
  ['an unknown field', { body: JSON.stringify({ say: 'x', extra: true }) }],
  ['a handler that throws a TwopcError', { body: JSON.stringify({ say: 'x', fail: 'conflict' }) }],
  ['a handler that throws something else (a 500)', { body: JSON.stringify({ say: 'x', fail: 'unknown' }) }],
  ['a 503 answer (with Retry-After)', { body: JSON.stringify({ say: 'x', fail: 'busy' }) }],
];

/** Requests the lane passes on: express answers them, on both servers. */
const PASSED_ON: readonly (readonly [string, Sent])[] = [
  ['no token', { body: valid, headers: { authorization: '' } }],
  ['a wrong token', { body: valid, headers: { authorization: 'Bearer nope' } }],
  ['a body over the limit', { body: JSON.stringify({ say: 'x'.repeat(LIMIT) }) }],
  ['a chunked body (no length)', { body: valid, chunked: true }],
  ['a `+json` type', { body: valid, headers: { 'content-type': 'application/merge-patch+json' } }],
  ['a text body', { body: 'hello', headers: { 'content-type': 'text/plain' } }],
  ['a compressed body', { body: valid, headers: { 'content-encoding': 'gzip' } }],
  ['a query string', { body: valid, path: '/v1/echo?x=1' }],
  ['a trailing slash', { body: valid, path: '/v1/echo/' }],
  ['another route', { body: valid, path: '/v1/other' }],
];

describe('the fast lane', () => {
  let served: Served;
  beforeAll(async () => {
    served = await serve();
    return async () => {
      await served.lane.close();
      await served.noLane.close();
    };
  });

  /** The same request to both servers: both answers, and what each added to the request counts. */
  async function both(sent: Sent) {
    let viaLane: Answer | undefined;
    let viaExpress: Answer | undefined;
    const countedLane = await countedBy(served.metrics, async () => (viaLane = await post(served.lane.url, sent)));
    const countedExpress = await countedBy(served.metrics, async () => (viaExpress = await post(served.noLane.url, sent)));
    return { viaLane, viaExpress, countedLane, countedExpress };
  }

  it.each(TAKEN)('answers %s as express does, and counts it alike, without express', async (_name, sent) => {
    const before = { ...served.reached };
    const { viaLane, viaExpress, countedLane, countedExpress } = await both(sent);
    expect(viaLane).toEqual(viaExpress);
    expect(countedLane).toEqual(countedExpress);
    expect(Object.values(countedLane)).toEqual([1]);
    expect(served.reached.lane - before.lane).toBe(0);
    expect(served.reached.noLane - before.noLane).toBe(1);
  });

  it.each(PASSED_ON)('passes %s on to express, which answers and counts it', async (_name, sent) => {
    const before = { ...served.reached };
    const { viaLane, viaExpress, countedLane, countedExpress } = await both(sent);
    expect(viaLane).toEqual(viaExpress);
    expect(countedLane).toEqual(countedExpress);
    expect(served.reached.lane - before.lane).toBe(1);
    expect(served.reached.noLane - before.noLane).toBe(1);
  });

  it('gets the refusals it passes on from express: 401, 413, 415 and 404', async () => {
    const status = async (sent: Sent) => (await post(served.lane.url, sent)).status;
    expect(await status({ body: valid, headers: { authorization: '' } })).toBe(401);
    expect(await status({ body: JSON.stringify({ say: 'x'.repeat(LIMIT) }) })).toBe(413);
    expect(await status({ body: 'hello', headers: { 'content-type': 'text/plain' } })).toBe(400);
    expect(await status({ body: valid, path: '/v1/other' })).toBe(404);
  });

  it('answers what the route says, and logs a handler failure it does not know', async () => {
    expect(await post(served.lane.url, { body: valid })).toMatchObject({ status: 200, body: '{"said":"hello"}' });
    const failed = await post(served.lane.url, { body: JSON.stringify({ say: 'x', fail: 'unknown' }) });
    expect(failed.status).toBe(500);
    expect(JSON.parse(failed.body)).toEqual({ error: { code: 'internal', message: 'Internal error; see the server log.' } });
    expect(served.errors.length).toBeGreaterThanOrEqual(2);
    expect(served.errors.at(-1)).toMatchObject({ method: 'POST' });
  });

  it('counts by route template once the body is read, and a body refused before routing as unmatched', async () => {
    expect(await countedBy(served.metrics, () => post(served.lane.url, { body: valid }))).toEqual({ 'twopc_http_requests_total{route="/v1/echo",method="POST",status="200"}': 1 });
    expect(await countedBy(served.metrics, () => post(served.lane.url, { body: JSON.stringify({ say: 7 }) }))).toEqual({
      'twopc_http_requests_total{route="/v1/echo",method="POST",status="400"}': 1,
    });
    expect(await countedBy(served.metrics, () => post(served.lane.url, { body: '{"say": ' }))).toEqual({ 'twopc_http_requests_total{route="unmatched",method="POST",status="400"}': 1 });
  });
});

describe('mountFast', () => {
  const base = () => createBaseApp({ role: 'coordinator', name: 'c', isRecovering: () => false, metrics: new Metrics() });
  const handler = () => undefined;

  it('takes only a POST route without parameters or a query and with a body schema, once', () => {
    const app = base();
    const get = defineRoute({ method: 'get', path: '/v1/x', tag: 't', summary: 's', responses: {} });
    const withParam = defineRoute({ method: 'post', path: '/v1/x/:id', tag: 't', summary: 's', body: z.object({}), responses: {} });
    const noBody = defineRoute({ method: 'post', path: '/v1/x', tag: 't', summary: 's', responses: {} });
    expect(() => mountFast(app, { spec: get as never, handler })).toThrow(/POST route without parameters/);
    expect(() => mountFast(app, { spec: withParam as never, handler })).toThrow(/POST route without parameters/);
    expect(() => mountFast(app, { spec: noBody as never, handler })).toThrow(/POST route without parameters/);
    mountFast(app, { spec: echoRoute, handler });
    expect(() => mountFast(app, { spec: echoRoute, handler })).toThrow(/already on the fast lane/);
  });

  it('refuses an app that has no lane (one not made by createBaseApp)', () => {
    expect(() => mountFast(express(), { spec: echoRoute, handler })).toThrow(/createBaseApp/);
  });
});

describe('the services', () => {
  it('put their hot routes on the lane: a participant its protocol routes, the coordinator its whole transactions', () => {
    const metrics = new Metrics();
    const participant = createParticipant({ name: 'p', dataDir: '/nonexistent/never-started', coordinatorUrl: 'http://127.0.0.1:9', metrics });
    const pApp = createParticipantApp({ name: 'p', participant, metrics, crashPoints: new CrashPoints(), logger: silentLogger() });
    expect([...(fastLaneOf(pApp)?.paths() ?? [])].sort()).toEqual(['/v1/2pc/abort', '/v1/2pc/batch', '/v1/2pc/commit', '/v1/2pc/prepare']);
    const unbatched = createParticipant({ name: 'q', dataDir: '/nonexistent/never-started', coordinatorUrl: 'http://127.0.0.1:9', batching: false });
    const uApp = createParticipantApp({ name: 'q', participant: unbatched, metrics: new Metrics(), crashPoints: new CrashPoints(), logger: silentLogger() });
    expect([...(fastLaneOf(uApp)?.paths() ?? [])].sort()).toEqual(['/v1/2pc/abort', '/v1/2pc/commit', '/v1/2pc/prepare']);
    const cApp = createCoordinatorApp({
      name: 'c',
      metrics: new Metrics(),
      participants: {},
      target: { recovering: false, request: () => Promise.reject(new Error('not in this test')) },
      surveyInDoubt: () => Promise.reject(new Error('not in this test')),
    });
    expect(fastLaneOf(cApp)?.paths()).toEqual(['/v1/transactions']);
  });
});

describe('the services on real ports', () => {
  const cleanup = new Cleanup();
  const reached = new Map<string, number>();
  const handle = (express.application as unknown as { handle: (req: http.IncomingMessage, ...rest: unknown[]) => unknown }).handle;
  beforeAll(() => {
    // Every request an express app serves enters through its app.handle; apps copy it from here when made.
    Object.assign(express.application, {
      handle(this: unknown, req: http.IncomingMessage, ...rest: unknown[]) {
        reached.set(req.headers.host ?? '', (reached.get(req.headers.host ?? '') ?? 0) + 1);
        return handle.call(this, req, ...rest);
      },
    });
    return async () => {
      Object.assign(express.application, { handle });
      await cleanup.run();
    };
  });

  /** A POST to a service: its status, whether express served it, and what it added to `twopc_http_requests_total`. */
  async function send(url: string, path: string, body: string, contentType = 'application/json') {
    const host = new URL(url).host;
    const counts = async () => {
      const text = await new Promise<string>((resolve, reject) =>
        http.get(`${url}/metrics`, { agent: false }, (res) => {
          let t = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (t += c));
          res.on('end', () => resolve(t));
        }).on('error', reject),
      );
      return new Map(text.split('\n').filter((l) => l.startsWith('twopc_http_requests_total{') && l.includes('method="POST"')).map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))] as const));
    };
    const countsBefore = await counts();
    const before = reached.get(host) ?? 0;
    const answer = await post(url, { path, body, headers: { 'content-type': contentType, authorization: '' } });
    const viaExpress = (reached.get(host) ?? 0) - before;
    let added: Record<string, number> = {};
    for (let i = 0; i < 200 && Object.keys(added).length === 0; i++) {
      const after = await counts();
      added = Object.fromEntries([...after].filter(([k, n]) => n !== (countsBefore.get(k) ?? 0)).map(([k, n]) => [k, n - (countsBefore.get(k) ?? 0)]));
      if (Object.keys(added).length === 0) await new Promise((r) => setTimeout(r, 10));
    }
    return { status: answer.status, viaExpress, added };
  }

  it('a standalone participant answers its plain protocol requests past express, and counts an error under its route either way', async () => {
    const stub = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: stub.url });
    expect(await send(p.url, '/v1/2pc/commit', JSON.stringify({ txId: 'tx-never-prepared' }))).toMatchObject({ status: 404, viaExpress: 0 });
    const bad = JSON.stringify({ txId: 7 });
    const series = 'twopc_http_requests_total{route="/v1/2pc/commit",method="POST",status="400"}';
    expect(await send(p.url, '/v1/2pc/commit', bad)).toEqual({ status: 400, viaExpress: 0, added: { [series]: 1 } });
    expect(await send(p.url, '/v1/2pc/commit', bad, 'application/merge-patch+json')).toEqual({ status: 400, viaExpress: 1, added: { [series]: 1 } });
  });

  it('a standalone coordinator answers a plain POST /v1/transactions past express', async () => {
    const dataDir = await tempDir('lane-coordinator');
    const coordinator = await startCoordinator({ port: 0, dataDir, participants: { p1: 'http://127.0.0.1:9' }, fsync: 'always', logger: silentLogger(), onFatal: () => undefined });
    cleanup.add(() => coordinator.close());
    const series = 'twopc_http_requests_total{route="/v1/transactions",method="POST",status="201"}';
    expect(await send(coordinator.url, '/v1/transactions', '{}')).toEqual({ status: 201, viaExpress: 0, added: { [series]: 1 } });
    expect(await send(coordinator.url, '/v1/transactions', '{}', 'application/merge-patch+json')).toEqual({ status: 201, viaExpress: 1, added: { [series]: 1 } });
  });
});
