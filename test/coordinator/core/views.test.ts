/**
 * What clients read: GET /v1/transactions/:txId (txView), the list, and the outcome report,
 * compared whole at each phase, so a missing, extra or wrong field fails.
 */
import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, initialState, resolveConfig } from '../../../coordinator/core/index.ts';
import { PersistentMap } from '../../../shared/persistent-map.ts';
import { Harness, put, replyOf } from './helpers.ts';

const two = [
  { participant: 'p1', ops: [put('a', 1)] },
  { participant: 'p2', ops: [put('b', 1)] },
];

function view(h: Harness, txId: string): unknown {
  const rid = h.rid();
  return replyOf(h.feed({ type: 'getTx', requestId: rid, txId }), rid).body;
}

describe('transaction views', () => {
  it('an interactive transaction, just begun, has no outcome and no branches', () => {
    const h = new Harness();
    const rid = h.rid();
    const { txId } = replyOf(h.feed({ type: 'begin', requestId: rid }), rid).body as { txId: string };
    expect(view(h, txId)).toStrictEqual({ txId, state: 'active', createdAt: 1_000, branches: [] });
  });

  it('follows the votes, then the acknowledgements; a read-only branch needs none once decided', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole(two);
    expect(view(h, txId)).toStrictEqual({
      txId,
      state: 'preparing',
      createdAt: 1_000,
      branches: [
        { participant: 'p1', acked: false },
        { participant: 'p2', acked: false },
      ],
    });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'read-only' });
    // Not decided yet: the read-only branch is not yet "acked".
    expect(view(h, txId)).toMatchObject({ state: 'preparing', branches: [{ participant: 'p1', acked: false }, { participant: 'p2', vote: 'read-only', acked: false }] });
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    expect(view(h, txId)).toStrictEqual({
      txId,
      state: 'committing',
      outcome: 'committed',
      createdAt: 1_000,
      branches: [
        { participant: 'p1', vote: 'yes', acked: false },
        { participant: 'p2', vote: 'read-only', acked: true },
      ],
    });
    const done = h.feed({ type: 'decisionAcked', txId, participant: 'p1' });
    expect(replyOf(done, requestId)).toStrictEqual({
      status: 200,
      body: {
        txId,
        outcome: 'committed',
        applied: true,
        branches: [
          { participant: 'p1', vote: 'yes', acked: true },
          { participant: 'p2', vote: 'read-only', acked: true },
        ],
      },
    });
    expect(view(h, txId)).toStrictEqual({
      txId,
      state: 'committed',
      outcome: 'committed',
      createdAt: 1_000,
      branches: [
        { participant: 'p1', vote: 'yes', acked: true },
        { participant: 'p2', vote: 'read-only', acked: true },
      ],
    });
  });

  it('an abort carries its reason; a heuristic acknowledgement that disagrees makes the outcome heuristic-mixed', () => {
    const h = new Harness();
    const a = h.runWhole(two);
    h.feed({ type: 'prepareResult', txId: a.txId, participant: 'p1', vote: 'no', reason: 'lock' });
    expect(view(h, a.txId)).toStrictEqual({
      txId: a.txId,
      state: 'aborting',
      outcome: 'aborted',
      reason: 'p1 voted no: lock',
      createdAt: 1_000,
      branches: [
        { participant: 'p1', vote: 'no', acked: true },
        { participant: 'p2', acked: false },
      ],
    });

    const b = h.runWhole(two);
    h.feed({ type: 'prepareResult', txId: b.txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId: b.txId, participant: 'p2', vote: 'yes' });
    h.feed({ type: 'decisionAcked', txId: b.txId, participant: 'p1', heuristic: 'aborted' });
    const done = h.feed({ type: 'decisionAcked', txId: b.txId, participant: 'p2' });
    expect(replyOf(done, b.requestId).body).toMatchObject({ outcome: 'heuristic-mixed', applied: true });
    expect(view(h, b.txId)).toMatchObject({ state: 'committed', outcome: 'heuristic-mixed' });
  });

  it('an aborted transaction ends in phase aborted once every target acknowledged', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole(two);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'no' });
    const done = h.feed({ type: 'decisionAcked', txId, participant: 'p1' });
    expect(replyOf(done, requestId).body).toMatchObject({ outcome: 'aborted', applied: true });
    expect(view(h, txId)).toStrictEqual({
      txId,
      state: 'aborted',
      outcome: 'aborted',
      reason: 'p2 voted no',
      createdAt: 1_000,
      branches: [
        { participant: 'p1', vote: 'yes', acked: true },
        { participant: 'p2', vote: 'no', acked: true },
      ],
    });
  });

  it('a one-phase transaction says so, and so does one in doubt', () => {
    const h = new Harness();
    const { txId } = h.runWhole([{ participant: 'p1', ops: [put('a', 1)] }]);
    expect(view(h, txId)).toStrictEqual({ txId, state: 'preparing', onePhase: true, createdAt: 1_000, branches: [{ participant: 'p1', acked: false }] });
    h.feed({ type: 'prepareFailed', txId, participant: 'p1', error: 'timeout' });
    expect(view(h, txId)).toStrictEqual({ txId, state: 'preparing', onePhase: true, inDoubt: true, createdAt: 1_000, branches: [{ participant: 'p1', acked: false }] });
  });
});

describe('the transaction list', () => {
  it('is newest first, filters by state, is bounded by listMax, and counts everything that matched', () => {
    const h = new Harness({ listMax: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      h.now = 1_000 + i;
      const rid = h.rid();
      ids.push((replyOf(h.feed({ type: 'begin', requestId: rid }), rid).body as { txId: string }).txId);
    }
    h.now = 2_000;
    const { txId: running } = h.runWhole(two);
    const list = (state?: 'active' | 'preparing') => {
      const rid = h.rid();
      return replyOf(h.feed({ type: 'list', requestId: rid, ...(state ? { state } : {}) }), rid).body as { transactions: { txId: string }[]; total: number };
    };
    expect(list()).toMatchObject({ total: 4 });
    expect(list().transactions.map((t) => t.txId)).toEqual([running, ids[2]]);
    expect(list('active').transactions.map((t) => t.txId)).toEqual([ids[2], ids[1]]);
    expect(list('active').total).toBe(3);
    expect(list('preparing')).toStrictEqual({
      transactions: [{ txId: running, state: 'preparing', createdAt: 2_000, branches: [{ participant: 'p1', acked: false }, { participant: 'p2', acked: false }] }],
      total: 1,
    });
  });
});

describe('configuration and participant names', () => {
  it('fills the defaults, keeps what is given (an undefined option takes the default), and trims URLs', () => {
    const c = resolveConfig({ name: 'c', selfUrl: 'http://c.test/', participants: { p1: 'http://p1.test/', p2: 'http://p2.test' }, replyWaitMs: 7, listMax: undefined });
    expect(c).toStrictEqual({ ...CONFIG_DEFAULTS, name: 'c', replyWaitMs: 7, selfUrl: 'http://c.test', participants: { p1: 'http://p1.test', p2: 'http://p2.test' } });
    expect(initialState({ name: 'c', selfUrl: 'http://c.test', participants: {} })).toStrictEqual({
      config: { ...CONFIG_DEFAULTS, name: 'c', selfUrl: 'http://c.test', participants: {} },
      recovering: true,
      epoch: 0,
      nextSeq: 1,
      txs: PersistentMap.empty(),
      finished: PersistentMap.empty(),
    });
  });

  it('takes a branch by configured name or by URL (trailing slash or not), and nothing else', () => {
    const h = new Harness();
    const branchTo = (participant: string) => {
      const { requestId, effects } = h.runWhole([{ participant, ops: [put('a', 1)] }]);
      const sent = effects.filter((e) => e.kind === 'send');
      return sent.length > 0 ? sent.map((e) => (e.kind === 'send' ? [e.to, e.url] : [])) : replyOf(effects, requestId).status;
    };
    expect(branchTo('p2')).toEqual([['p2', 'http://p2.test']]);
    expect(branchTo('http://p3.test/')).toEqual([['p3', 'http://p3.test']]);
    expect(branchTo('http://p1.test')).toEqual([['p1', 'http://p1.test']]);
    // Own properties only: a name like "toString" is not a participant.
    expect(branchTo('toString')).toBe(400);
    expect(branchTo('http://elsewhere.test')).toBe(400);
  });
});
