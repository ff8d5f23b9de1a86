/**
 * The coordinator's own HTTP API: the contract's routes, bad input as clear
 * 4xx (never a WAL write), token auth, and recovery across a restart.
 */
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { delay, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { openFileLog } from '../../../wal/file-log.ts';
import { Cluster, transfer } from './helpers.ts';

const server = setupServer();
let cluster: Cluster | undefined;

beforeAll(() => server.listen({ onUnhandledRequest: 'bypass' }));
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
  server.resetHandlers();
});
afterAll(() => server.close());

/** The records in a stopped coordinator's WAL (plus the checkpoint's LSN). */
async function walRecords(dir: string): Promise<{ checkpointLsn: number | undefined; types: number[] }> {
  const { log, recovered } = await openFileLog(dir, { syncPolicy: 'always' });
  await log.close();
  return { checkpointLsn: recovered.checkpoint?.lsn, types: recovered.entries.map((e) => e.type) };
}

describe('the interactive API', () => {
  it('begins, enlists (idempotently), commits, and shows the transaction', async () => {
    cluster = await Cluster.start(server);
    const begun = await cluster.post('/v1/transactions');
    expect(begun).toEqual({ status: 201, body: { txId: 'tx-1-1', state: 'active' } });
    const branch = { participant: 'http://p1.test', ops: [{ op: 'put', key: 'k', value: 'v' }] };
    expect((await cluster.post('/v1/transactions/tx-1-1/branches', branch)).status).toBe(200);
    const retried = await cluster.post('/v1/transactions/tx-1-1/branches', branch);
    expect(retried.body.branches).toEqual([{ participant: 'p1', acked: false }]);
    await cluster.post('/v1/transactions/tx-1-1/branches', { participant: 'p2', ops: [{ op: 'delete', key: 'k' }] });

    const committed = await cluster.post('/v1/transactions/tx-1-1/commit', {});
    expect(committed.body).toMatchObject({ txId: 'tx-1-1', outcome: 'committed', applied: true });
    // The retried enlist did not double the ops.
    expect(cluster.callsTo('p1', 'prepare')[0]?.body.ops).toEqual(branch.ops);
    expect((await cluster.get('/v1/transactions/tx-1-1')).body).toMatchObject({
      txId: 'tx-1-1',
      state: 'committed',
      outcome: 'committed',
      branches: [
        { participant: 'p1', vote: 'yes', acked: true },
        { participant: 'p2', vote: 'yes', acked: true },
      ],
    });
    expect((await cluster.get('/v1/transactions?state=committed')).body).toMatchObject({ total: 1, transactions: [{ txId: 'tx-1-1' }] });
    expect((await cluster.post('/v1/transactions/tx-1-1/abort')).status).toBe(409);
  });

  it('aborts an active transaction without a body', async () => {
    cluster = await Cluster.start(server);
    await cluster.post('/v1/transactions', { timeoutMs: 20_000 });
    expect(await cluster.post('/v1/transactions/tx-1-1/abort')).toEqual({ status: 200, body: { txId: 'tx-1-1', outcome: 'aborted' } });
  });

  it('answers outcome inquiries: unknown ids are presumed aborted', async () => {
    cluster = await Cluster.start(server);
    expect(await cluster.get('/v1/transactions/tx-9-9/outcome')).toEqual({ status: 200, body: { outcome: 'aborted' } });
  });

  it('answers batched outcome inquiries in one answer, each id as the single route does', async () => {
    cluster = await Cluster.start(server);
    const branch = { participant: 'p1', ops: [{ op: 'put', key: 'k', value: 'v' }] };
    await cluster.post('/v1/transactions');
    await cluster.post('/v1/transactions/tx-1-1/branches', branch);
    expect((await cluster.post('/v1/transactions/tx-1-1/commit', {})).body).toMatchObject({ outcome: 'committed' });
    const batched = await cluster.post('/v1/outcomes', { txIds: ['tx-1-1', 'tx-9-9', 'tx-1-1'] });
    expect(batched).toEqual({ status: 200, body: { outcomes: { 'tx-1-1': 'committed', 'tx-9-9': 'aborted' } } });
    expect((await cluster.get('/v1/transactions/tx-1-1/outcome')).body).toEqual({ outcome: 'committed' });
  });

  it('serves the dashboard, which reads the list API', async () => {
    cluster = await Cluster.start(server);
    const res = await fetch(`${cluster.coordinator.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toContain("fetch('/v1/transactions'");
  });

  it('healthz reports the role and that recovery is done', async () => {
    cluster = await Cluster.start(server);
    expect((await cluster.get('/healthz')).body).toMatchObject({ ok: true, role: 'coordinator', name: 'coordinator', recovering: false });
  });
});

describe('bad input is a clear 4xx and never reaches the WAL', () => {
  it.each<[string, string, unknown, number, string]>([
    ['unknown field', '/v1/transactions', { timeoutMS: 5 }, 400, 'Unknown field `timeoutMS`'],
    ['wrong type', '/v1/transactions', { timeoutMs: 'soon' }, 400, 'Expected `timeoutMs` to be a finite number'],
    ['unknown participant', '/v1/transactions', { branches: [{ participant: 'http://evil.test', ops: [] }] }, 400, 'Unknown participant "http://evil.test"'],
    // Ops of other resources (sql, a service's own) pass through to the participant, which checks them; their shape is checked here.
    ['bad op', '/v1/transactions', { branches: [{ participant: 'p1', ops: [{ op: 7, key: 'k' }] }] }, 400, 'Expected `branches[0].ops[0].op` to be a string'],
    ['bad key-value op', '/v1/transactions', { branches: [{ participant: 'p1', ops: [{ op: 'add', key: 'k', amount: 'x' }] }] }, 400, 'Expected `branches[0].ops[0].amount`'],
    ['malformed JSON', '/v1/transactions', '{"branches": [', 400, 'Malformed JSON'],
    ['a body on commit', '/v1/transactions/tx-1-1/commit', { force: true }, 400, 'Unknown field `force`'],
    ['unknown transaction', '/v1/transactions/tx-7-7/commit', {}, 404, 'Unknown transaction tx-7-7.'],
    ['bad transaction id', '/v1/transactions/a%20b/commit', {}, 400, 'Expected `txId` to match'],
    ['enlist in an unknown transaction', '/v1/transactions/tx-7-7/branches', { participant: 'p1', ops: [] }, 404, 'Unknown transaction'],
  ])('%s', async (_name, pathname, body, status, message) => {
    cluster = await Cluster.start(server);
    const res = await cluster.post(pathname, body);
    expect(res.status).toBe(status);
    expect(res.body.error.message).toContain(message);
    expect(cluster.calls).toEqual([]);
  });

  it('a list filter that is not a state is a 400', async () => {
    cluster = await Cluster.start(server);
    const res = await cluster.get('/v1/transactions?state=done');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('bad_request');
  });

  it('writes only BOOT for a stream of bad requests', async () => {
    cluster = await Cluster.start(server);
    for (let i = 0; i < 20; i++) await cluster.post('/v1/transactions', { branches: [{ participant: `p${i + 3}`, ops: [] }] });
    const dir = cluster.dir;
    await cluster.close(true);
    cluster = undefined;
    const wal = await walRecords(dir);
    // BOOT (code 11) only; a checkpoint on stop may already cover it.
    expect(wal.types.every((t) => t === 11)).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('with a token, every route but /healthz needs it', async () => {
    cluster = await Cluster.start(server, {}, { token: 's3cret' });
    expect((await cluster.post('/v1/transactions')).status).toBe(401);
    expect((await cluster.get('/v1/transactions/tx-1-1/outcome')).status).toBe(401);
    expect((await cluster.get('/healthz')).status).toBe(200);
    expect((await cluster.post('/v1/transactions', undefined, { authorization: 'Bearer s3cret' })).status).toBe(201);
  });

  it('chaos routes exist only with chaos on', async () => {
    cluster = await Cluster.start(server);
    expect((await cluster.get('/v1/chaos/points')).status).toBe(404);
    await cluster.close();
    cluster = await Cluster.start(server, {}, { chaos: true });
    const points = await cluster.get('/v1/chaos/points');
    expect(points.body.points.map((p: { name: string }) => p.name)).toContain('coordinator.after-decision-logged');
  });
});

describe('recovery across a restart', () => {
  it('re-sends a decided commit that was never acknowledged, and ids continue in a new epoch', async () => {
    let acking = false;
    const hang = async (body: Record<string, unknown>) => {
      // Until the restart, p2 never answers the commit: the coordinator stops with it unacked.
      if (!acking) await delay(2_000);
      return HttpResponse.json({ txId: body.txId, state: 'committed' });
    };
    cluster = await Cluster.start(server, { p2: { commit: hang } }, { core: { replyWaitMs: 50 } });
    const res = await cluster.post('/v1/transactions', transfer());
    expect(res.body).toMatchObject({ outcome: 'committed', applied: false });
    const dir = cluster.dir;
    await cluster.close(true);

    acking = true;
    cluster = await Cluster.start(server, { p2: { commit: hang } }, { dir });
    const done = await cluster.waitFor('/v1/transactions/tx-1-1', (b) => b.state === 'committed');
    expect(done).toMatchObject({ state: 'committed', outcome: 'committed' });
    // Only p2 was still owed the decision.
    expect(cluster.callsTo('p2', 'commit')).toHaveLength(1);
    expect(cluster.callsTo('p1', 'commit')).toHaveLength(0);
    expect((await cluster.post('/v1/transactions')).body).toEqual({ txId: 'tx-2-1', state: 'active' });
  });
});
