import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPrng } from '../../scenarios/prng.ts';
import { batchCarries, routeOf, startFaultProxy, validateRules, type FaultProxy, type FaultRule } from '../../scenarios/proxy.ts';

/** Bounds for every wait in this file, so a broken proxy fails the test instead of hanging it. */
const CLIENT_TIMEOUT_MS = 5_000;
const POLL_LIMIT_MS = 5_000;
const POLL_MS = 10;
/** tsx compiles on first load; a leaked 30 s timer in the fixture would overrun this. */
const CHILD_EXIT_LIMIT_MS = 20_000;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURE = path.join(ROOT, 'test', 'scenarios', 'fixtures', 'proxy-exit.ts');

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

interface Target {
  readonly url: string;
  readonly seen: Seen[];
  close(): Promise<void>;
}

/** A tiny real service that records what reaches it and answers 201 with a marker header. */
async function startTarget(): Promise<Target> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      const body = JSON.stringify({ n: seen.length, url: req.url });
      res.writeHead(201, { 'content-type': 'application/json', 'x-target': 'seen' });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

type Reply =
  | { readonly ok: true; readonly status: number; readonly headers: http.IncomingHttpHeaders; readonly body: string }
  | { readonly ok: false; readonly error: string };

/** One request on its own connection; resolves with the answer or the socket error, never rejects. */
function send(
  base: string,
  path: string,
  options: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve) => {
    const req = http.request(`${base}${path}`, {
      method: options.method ?? 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', ...options.headers },
    });
    req.setTimeout(CLIENT_TIMEOUT_MS, () => req.destroy(new Error('client-timeout')));
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ ok: false, error: error.code ?? error.message }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (error: NodeJS.ErrnoException) => resolve({ ok: false, error: error.code ?? error.message }));
      res.on('end', () =>
        resolve({ ok: true, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.end(options.body ?? (options.method === 'GET' ? undefined : '{}'));
  });
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + POLL_LIMIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** `until` for tests that fake setTimeout: turns the event loop with setImmediate instead of sleeping. */
async function untilTurns(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + POLL_LIMIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * Runs `fn` with setTimeout on a fake clock, so the proxy's holds last exactly as long as the test
 * advances time: machine load can neither cut a hold short nor stretch one. HTTP sockets keep their
 * own (real) timers.
 */
async function withFakeTimeouts(fn: () => Promise<void>): Promise<void> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  try {
    await fn();
  } finally {
    vi.useRealTimers();
  }
}

const always = (fault: FaultRule['fault'], match: FaultRule['match'] = {}, extra: Partial<FaultRule> = {}): FaultRule => ({
  match,
  fault,
  probability: 1,
  ...extra,
});

let target: Target;
let proxy: FaultProxy | undefined;

beforeEach(async () => {
  target = await startTarget();
});
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  await target.close();
});

async function proxyWith(rules: FaultRule[], extra: { seed?: number; maxBodyBytes?: number; maxHeldRequests?: number } = {}) {
  proxy = await startFaultProxy({ target: target.url, seed: extra.seed ?? 1, rules, ...extra });
  return proxy;
}

describe('fault proxy: plain forwarding', () => {
  it('forwards method, path, query, headers and body, and returns status, headers and body', async () => {
    const p = await proxyWith([]);
    const reply = await send(p.url, '/v1/2pc/prepare?x=1', {
      body: '{"txId":"t1"}',
      headers: { authorization: 'Bearer sekrit', 'x-trace': 'abc' },
    });
    expect(reply).toMatchObject({ ok: true, status: 201, headers: { 'x-target': 'seen' } });
    expect(reply.ok && JSON.parse(reply.body)).toEqual({ n: 1, url: '/v1/2pc/prepare?x=1' });
    expect(target.seen).toHaveLength(1);
    expect(target.seen[0]).toMatchObject({
      method: 'POST',
      url: '/v1/2pc/prepare?x=1',
      body: '{"txId":"t1"}',
      headers: { authorization: 'Bearer sekrit', 'x-trace': 'abc', host: new URL(target.url).host },
    });
    const stats = p.stats();
    expect(stats).toMatchObject({ received: 1, forwarded: 1, upstreamErrors: 0, held: 0 });
    expect(stats.routes.prepare).toMatchObject({ received: 1, forwarded: 1 });
    expect(Object.values(stats.faults).every((n) => n === 0)).toBe(true);
    expect(p.history()).toEqual([{ seq: 1, method: 'POST', path: '/v1/2pc/prepare?x=1', route: 'prepare', fault: 'none' }]);
  });

  it('forwards a GET without a body', async () => {
    const p = await proxyWith([]);
    const reply = await send(p.url, '/v1/transactions/tx-9/outcome', { method: 'GET' });
    expect(reply).toMatchObject({ ok: true, status: 201 });
    expect(target.seen[0]).toMatchObject({ method: 'GET', url: '/v1/transactions/tx-9/outcome', body: '' });
    expect(p.stats().routes.outcome.forwarded).toBe(1);
  });

  it('labels routes by the 2PC step in the path', () => {
    expect(routeOf('POST', '/v1/2pc/prepare')).toBe('prepare');
    expect(routeOf('POST', '/v1/2pc/commit')).toBe('commit');
    expect(routeOf('POST', '/v1/2pc/abort/')).toBe('abort');
    expect(routeOf('GET', '/v1/transactions/abc/outcome')).toBe('outcome');
    expect(routeOf('POST', '/v1/outcomes')).toBe('outcome');
    expect(routeOf('GET', '/v1/2pc/transactions/abc/inquiry')).toBe('inquiry');
    expect(routeOf('GET', '/v1/2pc/transactions/abc')).toBe('inquiry');
    expect(routeOf('GET', '/v1/2pc/transactions?state=prepared')).toBe('other');
    expect(routeOf('POST', '/v1/2pc/transactions/abc/heuristic')).toBe('other');
    expect(routeOf('POST', '/v1/transactions/abc/commit')).toBe('other');
    expect(routeOf('GET', '/healthz')).toBe('other');
  });

  it('answers 502 when the target is unreachable, and counts it', async () => {
    await target.close();
    const p = await proxyWith([]);
    const reply = await send(p.url, '/v1/2pc/commit');
    expect(reply).toMatchObject({ ok: true, status: 502 });
    expect(reply.ok && JSON.parse(reply.body).error.code).toBe('bad_gateway');
    expect(p.stats()).toMatchObject({ received: 1, forwarded: 1, upstreamErrors: 1 });
    expect(p.stats().routes.commit.upstreamErrors).toBe(1);
    // Re-open a target so afterEach has something to close.
    target = await startTarget();
  });

  it('refuses an over-size body with 413 and never forwards it', async () => {
    const p = await proxyWith([], { maxBodyBytes: 1024 });
    const reply = await send(p.url, '/v1/2pc/prepare', { body: JSON.stringify({ pad: 'x'.repeat(4096) }) });
    expect(reply).toMatchObject({ ok: true, status: 413 });
    expect(reply.ok && JSON.parse(reply.body).error.code).toBe('payload_too_large');
    expect(target.seen).toHaveLength(0);
    expect(p.stats()).toMatchObject({ received: 1, forwarded: 0, tooLarge: 1 });
  });
});

describe('fault proxy: each fault does what it says', () => {
  it('drop-request: the caller sees a reset and the target never sees the request', async () => {
    const p = await proxyWith([always('drop-request')]);
    const reply = await send(p.url, '/v1/2pc/prepare');
    expect(reply.ok).toBe(false);
    expect(target.seen).toHaveLength(0);
    expect(p.stats()).toMatchObject({ received: 1, forwarded: 0 });
    expect(p.stats().routes.prepare.faults['drop-request']).toBe(1);
  });

  it('drop-response: the target processes the request, the caller sees a reset', async () => {
    const p = await proxyWith([always('drop-response')]);
    const reply = await send(p.url, '/v1/2pc/commit', { body: '{"txId":"t7"}' });
    expect(reply.ok).toBe(false);
    expect(target.seen.map((s) => s.body)).toEqual(['{"txId":"t7"}']);
    expect(p.stats()).toMatchObject({ received: 1, forwarded: 1 });
    expect(p.stats().routes.commit.faults['drop-response']).toBe(1);
  });

  it('duplicate: the target sees the request twice, the caller gets one answer (the first)', async () => {
    const p = await proxyWith([always('duplicate', {}, { delayMs: [5, 5] })]);
    const reply = await send(p.url, '/v1/2pc/abort', { body: '{"txId":"t3"}' });
    expect(reply).toMatchObject({ ok: true, status: 201 });
    expect(reply.ok && JSON.parse(reply.body).n).toBe(1);
    await until('the second copy', () => target.seen.length === 2);
    expect(target.seen.map((s) => s.body)).toEqual(['{"txId":"t3"}', '{"txId":"t3"}']);
    expect(p.stats()).toMatchObject({ received: 1, forwarded: 2 });
    expect(p.stats().routes.abort.faults.duplicate).toBe(1);
  });

  it('delay: the target sees the request only after the hold drawn from delayMs, then the caller gets the answer', () =>
    withFakeTimeouts(async () => {
      const p = await proxyWith([always('delay', {}, { delayMs: [10, 30] })]);
      let replied = false;
      const reply = send(p.url, '/v1/2pc/prepare').then((r) => ((replied = true), r));
      await untilTurns('the request to be held', () => p.stats().held === 1);
      const [decision] = p.history();
      expect(decision?.fault).toBe('delay');
      const delayMs = decision?.delayMs ?? -1;
      expect(delayMs).toBeGreaterThanOrEqual(10);
      expect(delayMs).toBeLessThanOrEqual(30);
      // One millisecond short of the hold: still held, the target has seen nothing.
      await vi.advanceTimersByTimeAsync(delayMs - 1);
      expect(p.stats().held).toBe(1);
      expect(target.seen).toHaveLength(0);
      expect(replied).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await reply).toMatchObject({ ok: true, status: 201 });
      expect(target.seen).toHaveLength(1);
      expect(p.stats()).toMatchObject({ held: 0, forwarded: 1 });
      expect(p.stats().faults.delay).toBe(1);
    }));

  it('reorder: a held request is overtaken by a later one', () =>
    withFakeTimeouts(async () => {
      const p = await proxyWith([always('reorder', { bodyIncludes: '"first"' }, { delayMs: [1_500, 1_500] })]);
      const first = send(p.url, '/v1/2pc/commit', { body: '{"txId":"first"}' });
      // Send the second only once the first is known to be held, so the order is not left to chance.
      await untilTurns('the first request to be held', () => p.stats().held === 1);
      const second = await send(p.url, '/v1/2pc/commit', { body: '{"txId":"second"}' });
      expect(second).toMatchObject({ ok: true, status: 201 });
      // The first is still held however long the second took: its hold runs on the fake clock.
      expect(target.seen.map((s) => s.body)).toEqual(['{"txId":"second"}']);
      await vi.advanceTimersByTimeAsync(1_500);
      expect(await first).toMatchObject({ ok: true, status: 201 });
      expect(target.seen.map((s) => s.body)).toEqual(['{"txId":"second"}', '{"txId":"first"}']);
      expect(p.stats().faults.reorder).toBe(1);
    }));

  it('hang: the request gets no answer until heal(), which releases it and clears the rules', async () => {
    const p = await proxyWith([always('hang')]);
    const hung = send(p.url, '/v1/2pc/prepare');
    await until('the request to hang', () => p.stats().held === 1);
    expect(target.seen).toHaveLength(0);
    p.heal();
    expect((await hung).ok).toBe(false);
    expect(p.stats()).toMatchObject({ held: 0, hangsReleased: 1, forwarded: 0 });
    expect(p.stats().faults.hang).toBe(1);
    const after = await send(p.url, '/v1/2pc/prepare');
    expect(after).toMatchObject({ ok: true, status: 201 });
    expect(target.seen).toHaveLength(1);
  });

  it('error-503: the caller gets 503 unavailable and the target never sees the request', async () => {
    const p = await proxyWith([always('error-503')]);
    const reply = await send(p.url, '/v1/2pc/commit');
    expect(reply).toMatchObject({ ok: true, status: 503 });
    expect(reply.ok && JSON.parse(reply.body)).toEqual({ error: { code: 'unavailable', message: 'injected by proxy' } });
    expect(target.seen).toHaveLength(0);
    expect(p.stats()).toMatchObject({ received: 1, forwarded: 0 });
    expect(p.stats().routes.commit.faults['error-503']).toBe(1);
  });

  it('past maxHeldRequests a holding fault turns into a plain forward, counted', async () => {
    const p = await proxyWith([always('hang')], { maxHeldRequests: 1 });
    const hung = send(p.url, '/v1/2pc/prepare');
    await until('the first request to hang', () => p.stats().held === 1);
    const second = await send(p.url, '/v1/2pc/prepare');
    expect(second).toMatchObject({ ok: true, status: 201 });
    expect(p.stats()).toMatchObject({ overCapacity: 1, held: 1 });
    expect(p.history()[1]).toMatchObject({ fault: 'none', overCapacity: true });
    await p.close();
    expect((await hung).ok).toBe(false);
  });
});

describe('fault proxy: rule matching', () => {
  it('matches method, path prefix and body; the first matching rule wins; probability 0 never fires', async () => {
    const p = await proxyWith([
      always('error-503', { method: 'get', pathPrefix: '/v1/transactions/' }),
      always('drop-request', { pathPrefix: '/v1/2pc/commit', bodyIncludes: 'tx-bad' }),
      { match: {}, fault: 'drop-request', probability: 0 },
    ]);
    expect(await send(p.url, '/v1/transactions/t/outcome', { method: 'GET' })).toMatchObject({ ok: true, status: 503 });
    expect(await send(p.url, '/v1/transactions/t/outcome', { method: 'POST' })).toMatchObject({ ok: true, status: 201 });
    expect((await send(p.url, '/v1/2pc/commit', { body: '{"txId":"tx-bad"}' })).ok).toBe(false);
    expect(await send(p.url, '/v1/2pc/commit', { body: '{"txId":"tx-good"}' })).toMatchObject({ ok: true, status: 201 });
    expect(p.history().map((d) => d.fault)).toEqual(['error-503', 'none', 'drop-request', 'none']);
    p.setRules([]);
    expect(await send(p.url, '/v1/transactions/t/outcome', { method: 'GET' })).toMatchObject({ ok: true, status: 201 });
    expect(target.seen).toHaveLength(3);
  });

  it('applies a rule for a single route to a batch carrying that message, and counts the batch under it', async () => {
    const p = await proxyWith([always('drop-request', { pathPrefix: '/v1/2pc/commit' })]);
    const batch = (...types: string[]) => JSON.stringify({ messages: types.map((type, i) => ({ type, body: { txId: `tx-1-${i}` } })) });
    expect((await send(p.url, '/v1/2pc/batch', { body: batch('abort', 'commit') })).ok).toBe(false);
    expect(await send(p.url, '/v1/2pc/batch', { body: batch('prepare', 'prepare') })).toMatchObject({ ok: true, status: 201 });
    expect(await send(p.url, '/v1/2pc/batch', { body: '{"messages":' })).toMatchObject({ ok: true, status: 201 });
    expect(p.history().map((d) => d.fault)).toEqual(['drop-request', 'none', 'none']);
    expect(p.stats().routes.abort.faults['drop-request']).toBe(1);
    expect(p.stats().routes.prepare.forwarded).toBe(1);
    expect(target.seen.map((r) => r.url)).toEqual(['/v1/2pc/batch', '/v1/2pc/batch']);
    expect(batchCarries('POST', '/v1/2pc/batch', Buffer.from(batch('commit', 'abort')))).toEqual(['commit', 'abort']);
    expect(batchCarries('POST', '/v1/2pc/commit', Buffer.from(batch('commit')))).toEqual([]);
  });

  it('rejects rules it cannot apply, naming the field', () => {
    const bad = (rule: unknown) => () => validateRules([rule as FaultRule]);
    expect(bad({ match: {}, fault: 'explode', probability: 1 })).toThrow(/rules\[0\]\.fault/);
    expect(bad({ match: {}, fault: 'delay', probability: 1.5 })).toThrow(/probability/);
    expect(bad({ match: {}, fault: 'delay', probability: 1, delayMs: [50, 10] })).toThrow(/delayMs/);
    expect(bad({ match: {}, fault: 'delay', probability: 1, delayMs: [0, 10_000_000] })).toThrow(/delayMs/);
    expect(bad({ match: { method: 5 }, fault: 'hang', probability: 1 })).toThrow(/match\.method/);
    expect(() => validateRules(Array.from({ length: 101 }, () => always('hang')))).toThrow(/at most/);
  });
});

describe('fault proxy: seeded choices are reproducible', () => {
  const REQUESTS = 50;

  async function run(seed: number): Promise<number[]> {
    const p = await startFaultProxy({ target: target.url, seed, rules: [{ match: {}, fault: 'error-503', probability: 0.5 }] });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const reply = await send(p.url, '/v1/2pc/prepare');
        statuses.push(reply.ok ? reply.status : 0);
      }
      expect(p.history().map((d) => (d.fault === 'none' ? 201 : 503))).toEqual(statuses);
      return statuses;
    } finally {
      await p.close();
    }
  }

  it('the same seed gives the same fault sequence over 50 requests, and it is the PRNG sequence', async () => {
    const a = await run(42);
    const b = await run(42);
    expect(b).toEqual(a);
    const prng = createPrng(42);
    expect(a).toEqual(Array.from({ length: REQUESTS }, () => (prng.next() < 0.5 ? 503 : 201)));
    expect(a).toContain(503);
    expect(a).toContain(201);
    const other = await run(43);
    expect(other).not.toEqual(a);
    // Only the requests the proxy let through reached the target.
    const passed = (statuses: number[]) => statuses.filter((s) => s === 201).length;
    expect(target.seen).toHaveLength(passed(a) * 2 + passed(other));
  });
});

describe('seeded PRNG', () => {
  it('replays the same sequence for the same seed and differs across seeds', () => {
    const draw = (seed: number) => {
      const prng = createPrng(seed);
      return Array.from({ length: 20 }, () => prng.next());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    expect(draw(2 ** 40 + 7)).not.toEqual(draw(7));
    expect(draw(-7)).not.toEqual(draw(7));
  });

  it('stays in range: next in [0, 1), int inclusive at both ends, pick from the array', () => {
    const prng = createPrng(123);
    const ints = new Set<number>();
    for (let i = 0; i < 2_000; i++) {
      const x = prng.next();
      expect(x >= 0 && x < 1).toBe(true);
      const n = prng.int(3, 6);
      expect(Number.isInteger(n) && n >= 3 && n <= 6).toBe(true);
      ints.add(n);
    }
    expect([...ints].sort()).toEqual([3, 4, 5, 6]);
    expect(prng.int(9, 9)).toBe(9);
    expect(['a', 'b', 'c']).toContain(prng.pick(['a', 'b', 'c']));
  });

  it('rejects seeds and arguments it cannot honour', () => {
    expect(() => createPrng(1.5)).toThrow(RangeError);
    expect(() => createPrng(Number.NaN)).toThrow(RangeError);
    expect(() => createPrng(1).int(5, 4)).toThrow(RangeError);
    expect(() => createPrng(1).pick([])).toThrow(RangeError);
  });
});

describe('fault proxy: close()', () => {
  const settleLoop = async () => {
    for (let turn = 0; turn < 3; turn++) await new Promise((r) => setImmediate(r));
  };
  const countOf = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length;

  it('releases held and hung requests and leaves no sockets or servers behind', async () => {
    // Handles closed by earlier tests leave libuv's list one loop turn after their close callbacks.
    await settleLoop();
    const before = { servers: countOf('TCPServerWrap'), sockets: countOf('TCPSocketWrap') };
    const p = await startFaultProxy({
      target: target.url,
      seed: 9,
      rules: [
        always('hang', { bodyIncludes: 'hang' }),
        always('delay', { bodyIncludes: 'slow' }, { delayMs: [30_000, 30_000] }),
        always('duplicate', { bodyIncludes: 'twice' }, { delayMs: [30_000, 30_000] }),
      ],
    });
    const hung = send(p.url, '/v1/2pc/prepare', { body: '"hang"' });
    const slow = send(p.url, '/v1/2pc/prepare', { body: '"slow"' });
    const twice = await send(p.url, '/v1/2pc/prepare', { body: '"twice"' });
    expect(twice).toMatchObject({ ok: true, status: 201 });
    await until('three held requests', () => p.stats().held === 3);
    await p.close();
    expect((await hung).ok).toBe(false);
    expect((await slow).ok).toBe(false);
    // The delayed request and the duplicate's second copy were cancelled, never forwarded.
    expect(target.seen).toHaveLength(1);
    expect(p.stats().held).toBe(0);
    await until('sockets to close', () => countOf('TCPSocketWrap') <= before.sockets);
    await settleLoop();
    expect(countOf('TCPServerWrap')).toBe(before.servers);
    // close() is idempotent.
    await p.close();
  });

  it('leaves nothing that keeps a process alive: a child that holds requests and closes exits on its own', async () => {
    // Timers are counted per process, and vitest's own come and go, so the check
    // that no timer survives close() is that a process of our own exits by itself.
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_EXIT_LIMIT_MS);
    try {
      const code = await exit;
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(stdout)).toEqual({
        heldBeforeClose: 3,
        twice: 'status:200',
        hung: expect.stringMatching(/^error:/) as unknown,
        slow: expect.stringMatching(/^error:/) as unknown,
        heldAfterClose: 0,
      });
    } finally {
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
