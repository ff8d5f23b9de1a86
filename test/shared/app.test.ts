import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrashPoints } from '../../shared/crash.ts';
import { createBaseApp, finishApp, listen, type Listening } from '../../shared/http/app.ts';
import { Metrics } from '../../shared/metrics.ts';
import { createTransactionSchema, parse } from '../../shared/schemas.ts';

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
