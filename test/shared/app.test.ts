import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrashPoints } from '../../shared/crash.ts';
import { TwopcError } from '../../shared/errors.ts';
import { createBaseApp, finishApp, listen, requireToken, resolveServerLimits, type Listening } from '../../shared/http/app.ts';
import { RETRY_AFTER_S, SERVER_LIMITS_DEFAULT } from '../../shared/http/limits.ts';
import { Metrics } from '../../shared/metrics.ts';
import { createTransactionSchema, parse } from '../../shared/schemas.ts';
import { RawConnection } from '../helpers/raw-http.ts';

let node: Listening;
const killed: string[] = [];
const crashPoints = new CrashPoints({ kill: (p) => killed.push(p) });

beforeAll(async () => {
  const app = createBaseApp({
    role: 'coordinator',
    name: 'c',
    token: 'sekrit',
    chaos: true,
    bodyLimitBytes: 1024,
    isRecovering: () => false,
    metrics: new Metrics(),
    crashPoints,
  });
  app.post('/echo', (req, res) => {
    res.json(parse(createTransactionSchema, req.body));
  });
  finishApp(app);
  node = await listen(app, 0);
});
afterAll(() => node.close());

const auth = { authorization: 'Bearer sekrit', 'content-type': 'application/json' };
async function post(path: string, body: string, headers: Record<string, string> = auth) {
  const res = await fetch(node.url + path, { method: 'POST', headers, body });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
}

describe('base app', () => {
  it('serves /healthz without a token and wants one elsewhere', async () => {
    const health = await fetch(`${node.url}/healthz`);
    expect(await health.json()).toMatchObject({ ok: true, role: 'coordinator', name: 'c', recovering: false });
    const noAuth = await post('/echo', '{}', { 'content-type': 'application/json' });
    expect(noAuth.status).toBe(401);
    expect(noAuth.body.error?.code).toBe('unauthorized');
  });

  it('answers malformed JSON, wrong content types, over-size bodies and unknown routes with a clear 4xx', async () => {
    const malformed = await post('/echo', '{"timeoutMs": 5,');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error?.message).toMatch(/Malformed JSON/);
    const text = await post('/echo', 'hello', { authorization: 'Bearer sekrit', 'content-type': 'text/plain' });
    expect(text.status).toBe(400);
    expect(text.body.error?.message).toMatch(/application\/json/);
    const big = await post('/echo', JSON.stringify({ timeoutMs: 1, pad: 'x'.repeat(4096) }));
    expect(big.status).toBe(413);
    expect(big.body.error?.code).toBe('payload_too_large');
    const unknown = await post('/nope', '{}');
    expect(unknown.status).toBe(404);
    const wrongType = await post('/echo', '{"timeoutMs":"soon"}');
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error?.message).toContain('timeoutMs');
  });

  it('arms only known crash points of its own role', async () => {
    expect((await post('/v1/chaos/crash-at', '{"point":"coordinator.nope"}')).status).toBe(400);
    expect((await post('/v1/chaos/crash-at', '{"point":"participant.after-prepare-logged"}')).status).toBe(400);
    const ok = await post('/v1/chaos/crash-at', '{"point":"coordinator.after-decision-logged"}');
    expect(ok.status).toBe(200);
    crashPoints.reach('coordinator.after-prepare-sent');
    expect(killed).toEqual([]);
    crashPoints.reach('coordinator.after-decision-logged');
    expect(killed).toEqual(['coordinator.after-decision-logged']);
  });
});

describe('crash point at start', () => {
  it('reads TWOPC_CRASH_AT only with --chaos; an explicit choice wins', async () => {
    const { crashPointAtStart } = await import('../../shared/crash.ts');
    const env = { TWOPC_CRASH_AT: 'coordinator.after-decision-logged' };
    expect(crashPointAtStart(false, undefined, env)).toBeUndefined();
    expect(crashPointAtStart(true, undefined, env)).toBe('coordinator.after-decision-logged');
    expect(crashPointAtStart(true, undefined, {})).toBeUndefined();
    expect(crashPointAtStart(false, 'participant.after-prepare-logged', env)).toBe('participant.after-prepare-logged');
  });
});

describe('token exemptions and server limits (issue 7, items 5 and 6)', () => {
  it('opens only GETs of the public paths, matched in full, and /healthz', async () => {
    const { default: express } = await import('express');
    const app = createBaseApp({ role: 'coordinator', name: 'c', token: 'sekrit', isRecovering: () => false, metrics: new Metrics(), publicPaths: ['/'] });
    app.get('/', (_req, res) => {
      res.type('html').send('<p>page</p>');
    });
    const mounted = express.Router();
    mounted.use('/prefix', requireToken('sekrit'));
    mounted.get('/prefix/healthz', (_req, res) => {
      res.json({ leaked: true });
    });
    app.use(mounted);
    finishApp(app);
    const l = await listen(app, 0);
    try {
      expect((await fetch(`${l.url}/`)).status).toBe(200);
      expect((await fetch(`${l.url}/`, { method: 'POST' })).status).toBe(401);
      expect((await fetch(`${l.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${l.url}/healthz`)).status).toBe(200);
      // A router's own token check does not open `<prefix>/healthz`.
      expect((await fetch(`${l.url}/prefix/healthz`)).status).toBe(401);
    } finally {
      await l.close();
    }
  });

  it('puts Retry-After on every 503', async () => {
    const app = createBaseApp({ role: 'participant', name: 'p', isRecovering: () => true, metrics: new Metrics() });
    app.get('/busy', () => {
      throw new TwopcError('unavailable', 'busy');
    });
    app.get('/bad', () => {
      throw new TwopcError('bad_request', 'bad');
    });
    finishApp(app);
    const l = await listen(app, 0);
    try {
      const busy = await fetch(`${l.url}/busy`);
      expect(busy.status).toBe(503);
      expect(busy.headers.get('retry-after')).toBe(String(RETRY_AFTER_S));
      expect((await fetch(`${l.url}/bad`)).headers.get('retry-after')).toBeNull();
    } finally {
      await l.close();
    }
  });

  it("answers what Node's parser refuses with the contract's JSON error, then closes", async () => {
    const l = await listen(createBaseApp({ role: 'participant', name: 'p', isRecovering: () => false, metrics: new Metrics() }), 0);
    try {
      const port = l.port;
      const huge = await RawConnection.open(port);
      huge.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`);
      await huge.until(() => false, 10_000).catch(() => undefined);
      expect(huge.received).toMatch(/^HTTP\/1\.1 431 /);
      expect(huge.received).toContain('"code":"headers_too_large"');
      expect(huge.ended).toMatchObject({ by: 'server' });
      const broken = await RawConnection.open(port);
      broken.write('NOT HTTP AT ALL\r\n\r\n');
      await broken.until(() => false, 10_000).catch(() => undefined);
      expect(broken.received).toMatch(/^HTTP\/1\.1 400 /);
      expect(broken.received).toContain('"code":"bad_request"');
      expect(broken.ended).toMatchObject({ by: 'server' });
    } finally {
      await l.close();
    }
  });

  it('applies the limits to the server, a request bound lowering the headers bound', async () => {
    const l = await listen(createBaseApp({ role: 'participant', name: 'p', isRecovering: () => false, metrics: new Metrics() }), 0, '127.0.0.1', {
      limits: { requestTimeoutMs: 1_000, connectionsMax: 7 },
    });
    try {
      expect(l.server.requestTimeout).toBe(1_000);
      expect(l.server.headersTimeout).toBe(1_000);
      expect(l.server.keepAliveTimeout).toBe(SERVER_LIMITS_DEFAULT.keepAliveTimeoutMs);
      expect(l.server.maxConnections).toBe(7);
    } finally {
      await l.close();
    }
    expect(resolveServerLimits()).toEqual(SERVER_LIMITS_DEFAULT);
    expect(() => resolveServerLimits({ connectionsMax: 0 })).toThrow('Expected `connectionsMax` to be a positive integer, got 0.');
  });
});
