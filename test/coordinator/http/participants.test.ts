/**
 * The coordinator against misbehaving participants (msw fakes): votes no, time
 * out, answer 503 then succeed, drop the connection, settle by hand. Every case
 * runs with batching on (messages share POST /v1/2pc/batch) and off.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { delay, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { Cluster, PARTICIPANTS, ack, transfer } from './helpers.ts';

const server = setupServer();
let cluster: Cluster | undefined;

beforeAll(() => server.listen({ onUnhandledRequest: 'bypass' }));
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
  server.resetHandlers();
});
afterAll(() => server.close());

describe.each([true, false])('coordinator over HTTP with fake participants (batching: %s)', (batching) => {
  it('commits: every participant gets a prepare naming the coordinator and all branches, then a commit', async () => {
    cluster = await Cluster.start(server, {}, { batching });
    const res = await cluster.post('/v1/transactions', transfer());
    expect(res).toEqual({
      status: 200,
      body: {
        txId: 'tx-1-1',
        outcome: 'committed',
        applied: true,
        branches: [
          { participant: 'p1', vote: 'yes', acked: true },
          { participant: 'p2', vote: 'yes', acked: true },
        ],
      },
    });
    const [prepare] = cluster.callsTo('p1', 'prepare');
    expect(prepare?.body).toEqual({
      txId: 'tx-1-1',
      coordinator: cluster.coordinator.url,
      participants: [PARTICIPANTS.p1, PARTICIPANTS.p2],
      ops: [{ op: 'add', key: 'alice', amount: -10, min: 0 }],
    });
    expect(cluster.callsTo('p1', 'commit').map((c) => c.body)).toEqual([{ txId: 'tx-1-1' }]);
    expect(cluster.callsTo('p2', 'commit').map((c) => c.body)).toEqual([{ txId: 'tx-1-1' }]);
    expect((await cluster.get('/v1/transactions/tx-1-1/outcome')).body).toEqual({ outcome: 'committed' });
  });

  it('aborts on a no vote: the yes voter hears abort, the no voter is left alone', async () => {
    cluster = await Cluster.start(server, { p1: { prepare: () => HttpResponse.json({ vote: 'no', reason: 'alice below min' }) } }, { batching });
    const res = await cluster.post('/v1/transactions', transfer());
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'aborted', applied: true, reason: 'p1 voted no: alice below min' });
    await cluster.waitFor('/v1/transactions/tx-1-1', (b) => b.state === 'aborted');
    expect(cluster.callsTo('p1', 'abort')).toEqual([]);
    expect(cluster.callsTo('p2', 'abort').map((c) => c.body)).toEqual([{ txId: 'tx-1-1' }]);
    expect(cluster.callsTo('p1', 'commit').concat(cluster.callsTo('p2', 'commit'))).toEqual([]);
  });

  it('aborts when a participant does not vote in time, and tells it so', async () => {
    cluster = await Cluster.start(server, {
      p2: {
        prepare: async () => {
          await delay(1_500);
          return HttpResponse.json({ vote: 'yes' });
        },
      },
    }, { batching });
    const res = await cluster.post('/v1/transactions', transfer());
    expect(res.body).toMatchObject({ outcome: 'aborted' });
    expect(res.body.reason).toMatch(/p2/);
    // p2 may be prepared by the time its answer would have come, so it must hear the abort.
    await cluster.waitFor('/v1/transactions/tx-1-1', (b) => b.state === 'aborted');
    expect(cluster.callsTo('p2', 'abort')).toHaveLength(1);
    expect(cluster.callsTo('p1', 'abort')).toHaveLength(1);
  });

  it('aborts when a participant drops the connection on prepare', async () => {
    cluster = await Cluster.start(server, { p2: { prepare: () => HttpResponse.error() } }, { batching });
    const res = await cluster.post('/v1/transactions', transfer());
    expect(res.body).toMatchObject({ outcome: 'aborted' });
    expect(res.body.reason).toMatch(/^p2 did not answer the prepare/);
  });

  it('retries a commit answered 503, then succeeds', async () => {
    cluster = await Cluster.start(server, {
      p2: { commit: (body, nth) => (nth === 1 ? HttpResponse.json({ error: { code: 'unavailable', message: 'recovering' } }, { status: 503 }) : ack(body)) },
    }, { batching });
    const res = await cluster.post('/v1/transactions', transfer());
    expect(res.body).toMatchObject({ outcome: 'committed', applied: true });
    expect(cluster.callsTo('p2', 'commit')).toHaveLength(2);
  });

  it('keeps re-sending a commit through a long outage; the client hears applied:false, then the acks arrive', async () => {
    // Each delivery makes 3 attempts (p-retry); 7 failures span three deliveries and the core's backoff.
    cluster = await Cluster.start(server, { p2: { commit: (body, nth) => (nth <= 7 ? HttpResponse.error() : ack(body)) } }, { batching, core: { replyWaitMs: 50 } });
    const res = await cluster.post('/v1/transactions', transfer());
    expect(res.body).toMatchObject({ outcome: 'committed', applied: false });
    const done = await cluster.waitFor('/v1/transactions/tx-1-1', (b) => b.state === 'committed');
    expect(done).toMatchObject({ state: 'committed', branches: [{ acked: true }, { acked: true }] });
    expect(cluster.callsTo('p2', 'commit')).toHaveLength(8);
  });

  it('commits a single branch in one phase: no commit message at all', async () => {
    cluster = await Cluster.start(server, { p1: { prepare: () => HttpResponse.json({ vote: 'yes', state: 'committed' }) } }, { batching });
    const res = await cluster.post('/v1/transactions', { branches: [{ participant: 'p1', ops: [{ op: 'put', key: 'k', value: 1 }] }] });
    expect(res.body).toMatchObject({ outcome: 'committed', applied: true });
    expect(cluster.callsTo('p1', 'prepare')[0]?.body).toMatchObject({ onePhase: true });
    expect(cluster.callsTo('p1', 'commit')).toEqual([]);
  });

  it('reports heuristic-mixed when a participant was settled by hand the other way', async () => {
    cluster = await Cluster.start(server, {
      p2: { commit: (body) => HttpResponse.json({ txId: body.txId, state: 'aborted', heuristic: 'aborted' }) },
    }, { batching });
    const res = await cluster.post('/v1/transactions', transfer());
    expect(res.body).toMatchObject({ outcome: 'heuristic-mixed' });
    expect((await cluster.get('/v1/transactions/tx-1-1')).body).toMatchObject({ state: 'committed', outcome: 'heuristic-mixed' });
  });
});
