/**
 * Issue 7 on real processes: a prepare that reuses a txId for other work
 * (item 2), whom a participant calls and with what credentials (item 4), and
 * how hard in-doubt transactions lean on their coordinator (item 5).
 * Each of these failed against the code before the issue was fixed.
 */
import fs from 'node:fs';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeProcess, type ProcessCluster } from '../../scenarios/harness.ts';
import { freePorts } from '../../scenarios/ports.ts';
import { listen, type Listening } from '../../shared/http/app.ts';
import { startCluster, tempDir } from '../helpers/cluster.ts';
import { call, eventually } from '../helpers/http.ts';

const TOKEN = 'hardening-token';
const auth = { authorization: `Bearer ${TOKEN}` };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function cluster(prefix: string, options: { token?: string } = {}): Promise<ProcessCluster> {
  const c = await startCluster(prefix, options);
  cleanups.push(c.teardown);
  return c.cluster;
}

/** An HTTP server that records every request it gets and answers 404: a URL nobody should call. */
async function recorder(): Promise<Listening & { seen: { method: string; path: string; authorization?: string }[] }> {
  const seen: { method: string; path: string; authorization?: string }[] = [];
  const app = express();
  app.use((req, res) => {
    seen.push({ method: req.method, path: req.originalUrl, ...(req.headers.authorization !== undefined && { authorization: req.headers.authorization }) });
    res.status(404).json({});
  });
  const l = await listen(app, 0);
  cleanups.push(() => l.close());
  return Object.assign(l, { seen });
}

const prepare = (node: { url: string }, body: object, headers: Record<string, string> = {}) =>
  call('POST', `${node.url}/v1/2pc/prepare`, body, { headers });

describe('a prepare that reuses a txId for other work (issue 7, item 2)', () => {
  it('is refused with a 409; the first branch keeps its vote and only its work is committed', async () => {
    const c = await cluster('other-work');
    const p1 = c.participant('p1');
    const base = { txId: 'tx-77-1', coordinator: c.coordinator.url, participants: [p1.url] };
    expect((await prepare(p1, { ...base, ops: [{ op: 'put', key: 'a', value: 1 }] })).body).toEqual({ vote: 'yes' });

    const second = await prepare(p1, { ...base, ops: [{ op: 'put', key: 'b', value: 2 }] });
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ error: { code: 'conflict', message: expect.stringContaining('different ops') as unknown } });
    // A true retry is still a duplicate.
    expect((await prepare(p1, { ...base, ops: [{ op: 'put', key: 'a', value: 1 }] })).body).toEqual({ vote: 'yes' });

    expect((await call('POST', `${p1.url}/v1/2pc/commit`, { txId: 'tx-77-1' })).body).toEqual({ txId: 'tx-77-1', state: 'committed' });
    expect((await call('GET', `${p1.url}/v1/kv`)).body).toEqual({ entries: { a: 1 } });
    // And after the commit, a prepare for other work is still not answered "yes".
    expect((await prepare(p1, { ...base, ops: [{ op: 'put', key: 'b', value: 2 }] })).status).toBe(409);
  });
});

describe('whom a participant calls (issue 7, item 4)', () => {
  it('never calls a URL a prepare names unless its coordinator vouches for it, and never sends it the token', async () => {
    const c = await cluster('untrusted-peer', { token: TOKEN });
    const evil = await recorder();
    const [p1, p2] = [c.participant('p1'), c.participant('p2')];
    // A prepare (authenticated: the token is all it takes) naming a stranger as both coordinator and peer.
    const body = { txId: 'tx-78-1', coordinator: evil.url, participants: [p1.url, evil.url, p2.url], ops: [{ op: 'put', key: 'k', value: 1 }] };
    expect((await prepare(p1, body, auth)).body).toEqual({ vote: 'yes' });

    // The coordinator dies, so p1, in doubt, asks its peers: p2 (vouched for) never voted and promises no.
    await c.coordinator.kill();
    const settled = await eventually(
      'p1 settles through its trusted peer',
      async () => {
        const r = await call('GET', `${p1.url}/v1/2pc/transactions/tx-78-1`, undefined, { headers: auth });
        return r.body.state === 'aborted' ? r.body : undefined;
      },
      30_000,
    );
    expect(settled).toMatchObject({ state: 'aborted' });
    expect((await call('GET', `${p2.url}/v1/2pc/transactions/tx-78-1`, undefined, { headers: auth })).body).toMatchObject({ state: 'aborted' });
    expect(evil.seen).toEqual([]);
    const log = fs.readFileSync(p1.spec.logFile, 'utf8');
    expect(log).toContain('peers.untrusted');
    expect(log).toContain(evil.url);
  });
});

describe('in-doubt transactions and their coordinator (issue 7, item 5)', () => {
  it('inquiries about many in-doubt transactions share requests instead of sending one each', async () => {
    // A coordinator stand-in that never decides: every in-doubt transaction keeps asking.
    const asked = new Map<string, number>();
    let requests = 0;
    const app = express();
    app.post('/v1/outcomes', express.json(), (req, res) => {
      requests++;
      const txIds = (req.body as { txIds: string[] }).txIds;
      for (const id of txIds) asked.set(id, (asked.get(id) ?? 0) + 1);
      res.json({ outcomes: Object.fromEntries(txIds.map((id) => [id, 'pending'])) });
    });
    app.get('/v1/transactions/:txId/outcome', (req, res) => {
      requests++;
      asked.set(req.params.txId, (asked.get(req.params.txId) ?? 0) + 1);
      res.json({ outcome: 'pending' });
    });
    app.get('/v1/participants', (_req, res) => res.json({ participants: [] }));
    const coordinator = await listen(app, 0);
    cleanups.push(() => coordinator.close());

    const dataDir = await tempDir('inquiry-batching');
    cleanups.push(() => fs.promises.rm(dataDir, { recursive: true, force: true }));
    const [port] = (await freePorts(1)) as [number];
    const p = new NodeProcess({
      name: 'p1',
      role: 'participant',
      port,
      logFile: `${dataDir}/p1.log`,
      args: ['--name', 'p1', '--port', String(port), '--data', `${dataDir}/p1`, '--coordinator', coordinator.url],
    });
    cleanups.push(() => p.stop());
    await p.start();

    const inDoubt = 300;
    for (let i = 0; i < inDoubt; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, inDoubt - i) }, (_, j) =>
          prepare(p, { txId: `tx-79-${i + j + 1}`, coordinator: coordinator.url, participants: [p.url], ops: [{ op: 'put', key: `k${i + j}`, value: 1 }] }),
        ),
      );
    }
    // Every transaction has asked at least three times (the first after the decision wait, then backing off).
    await eventually('every in-doubt transaction asked three times', async () => (asked.size === inDoubt && [...asked.values()].every((n) => n >= 3) ? true : undefined), 60_000);
    const inquiries = [...asked.values()].reduce((a, b) => a + b, 0);
    // One request per inquiry before; now many inquiries share each request.
    expect(requests).toBeLessThan(inquiries / 5);
  });
});
