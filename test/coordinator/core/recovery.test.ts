import { describe, expect, it } from 'vitest';
import { initialState, snapshotOf, step } from '../../../coordinator/core/index.ts';
import type { CoordinatorRecord } from '../../../coordinator/core/index.ts';
import { asTxId } from '../../../shared/types.ts';
import { Harness, baseConfig, decisionMsg, noLogs, only, persisted, put, ref, replyOf } from './helpers.ts';

const t1 = asTxId('tx-1-1');
const t2 = asTxId('tx-1-2');
const t3 = asTxId('tx-2-1');

describe('recovery', () => {
  it('takes the max epoch + 1, forces BOOT, and re-sends decided-but-unfinished transactions', () => {
    const entries: CoordinatorRecord[] = [
      { type: 'BOOT', epoch: 1 },
      { type: 'DECISION', txId: t1, outcome: 'committed', participants: [ref('p1'), ref('p2')] },
      { type: 'DECISION', txId: t2, outcome: 'committed', participants: [ref('p1')] },
      { type: 'END', txId: t2 },
      { type: 'BOOT', epoch: 2 },
      { type: 'DECISION', txId: t3, outcome: 'aborted', participants: [ref('p3')] },
    ];
    const state = initialState(baseConfig);
    const { state: after, effects } = step(state, { type: 'recover', now: 5, entries });
    expect(noLogs(effects)).toEqual([
      { kind: 'persist', record: { type: 'BOOT', epoch: 3 }, sync: true },
      decisionMsg(t1, 'p1', 'commit'),
      decisionMsg(t1, 'p2', 'commit'),
      decisionMsg(t3, 'p3', 'abort'),
    ]);
    expect(after.recovering).toBe(false);
    expect([...after.txs.keys()]).toEqual([t1, t3]);

    // New transactions carry the new epoch, so ids never repeat across restarts.
    const h = new Harness({}, null);
    h.state = after;
    const b = h.rid();
    expect(replyOf(h.feed({ type: 'begin', requestId: b }), b).body).toEqual({ txId: 'tx-3-1', state: 'active' });

    // The resent decision completes as usual: END once every participant acked.
    h.feed({ type: 'decisionAcked', txId: t1, participant: 'p1' });
    expect(persisted(h.feed({ type: 'decisionAcked', txId: t1, participant: 'p2' }))).toEqual([{ record: { type: 'END', txId: t1 }, sync: false }]);
  });

  it('aborts a transaction that was collecting votes when the coordinator stopped (presumed nothing)', () => {
    const entries: CoordinatorRecord[] = [
      { type: 'BOOT', epoch: 1 },
      { type: 'COLLECTING', txId: t1, participants: [ref('p1'), ref('p2')] },
      { type: 'COLLECTING', txId: t2, participants: [ref('p1'), ref('p3')] },
      { type: 'DECISION', txId: t2, outcome: 'committed', participants: [ref('p1'), ref('p3')] },
    ];
    const h = new Harness({ protocol: 'presumed-nothing' }, { entries });
    const effects = h.feed({ type: 'getTx', requestId: 'x', txId: t1 });
    expect(replyOf(effects, 'x').body).toMatchObject({ state: 'aborting', outcome: 'aborted', reason: 'the coordinator restarted before deciding' });

    const fresh = step(initialState({ ...baseConfig, protocol: 'presumed-nothing' }), { type: 'recover', now: 0, entries });
    expect(persisted(fresh.effects)).toEqual([
      { record: { type: 'BOOT', epoch: 2 }, sync: true },
      { record: { type: 'DECISION', txId: t1, outcome: 'aborted', participants: [ref('p1'), ref('p2')] }, sync: true },
    ]);
    expect(only(fresh.effects, 'send')).toEqual([decisionMsg(t2, 'p1', 'commit'), decisionMsg(t2, 'p3', 'commit')].concat([decisionMsg(t1, 'p1', 'abort'), decisionMsg(t1, 'p2', 'abort')]));
  });

  it('answers outcome inquiries while recovering without presuming anything', () => {
    const h = new Harness({}, null);
    const ask = h.rid();
    expect(replyOf(h.feed({ type: 'getOutcome', requestId: ask, txId: 'tx-1-1' }), ask).body).toEqual({ outcome: 'pending' });
    const batch = h.rid();
    expect(replyOf(h.feed({ type: 'getOutcomes', requestId: batch, txIds: ['tx-1-1', 'tx-1-2'] }), batch).body).toEqual({ outcomes: { 'tx-1-1': 'pending', 'tx-1-2': 'pending' } });
    const begin = h.rid();
    expect(replyOf(h.feed({ type: 'begin', requestId: begin }), begin)).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
  });

  it('a checkpoint snapshot carries what recovery needs: epoch, decided-unfinished, collecting', () => {
    const h = new Harness({ protocol: 'presumed-nothing' });
    const a = h.runWhole([
      { participant: 'p1', ops: [put('a', 1)] },
      { participant: 'p2', ops: [put('b', 1)] },
    ]);
    h.feed({ type: 'prepareResult', txId: a.txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId: a.txId, participant: 'p2', vote: 'yes' });
    h.feed({ type: 'decisionAcked', txId: a.txId, participant: 'p1' });
    const b = h.runWhole([
      { participant: 'p2', ops: [put('c', 1)] },
      { participant: 'p3', ops: [put('d', 1)] },
    ]);
    const snapshot = snapshotOf(h.state);
    expect(snapshot).toEqual({
      version: 1,
      epoch: 1,
      decided: [{ txId: a.txId, outcome: 'committed', participants: [ref('p2')] }],
      collecting: [{ txId: b.txId, participants: [ref('p2'), ref('p3')] }],
    });

    // Recovering from the snapshot alone re-sends to p2 and aborts the collecting transaction.
    const r = step(initialState({ ...baseConfig, protocol: 'presumed-nothing' }), { type: 'recover', now: 0, entries: [], snapshot });
    expect(persisted(r.effects).map((p) => p.record)).toEqual([
      { type: 'BOOT', epoch: 2 },
      { type: 'DECISION', txId: b.txId, outcome: 'aborted', participants: [ref('p2'), ref('p3')] },
    ]);
    expect(only(r.effects, 'send').map((s) => [s.to, s.message.type])).toEqual([
      ['p2', 'commit'],
      ['p2', 'abort'],
      ['p3', 'abort'],
    ]);
  });

  it('a second recover event is ignored', () => {
    const h = new Harness();
    const before = h.state;
    expect(h.feed({ type: 'recover', entries: [{ type: 'BOOT', epoch: 7 }] })).toEqual([]);
    expect(h.state).toBe(before);
  });
});

describe('recovery, record by record', () => {
  it('rebuilds a re-sent transaction exactly: decided, logged, every listed participant a target', () => {
    const entries: CoordinatorRecord[] = [
      { type: 'DECISION', txId: t1, outcome: 'committed', participants: [ref('p1'), ref('p2')] },
      { type: 'DECISION', txId: t2, outcome: 'aborted', participants: [ref('p3')] },
    ];
    const { state, effects } = step(initialState(baseConfig), { type: 'recover', now: 77, entries });
    expect(only(effects, 'log').slice(0, 2)).toEqual([
      { kind: 'log', step: 'recovered', fields: { epoch: 1, resending: 2, aborting: 0, records: 2 } },
      { kind: 'log', step: 'decision.sent', txId: t1, fields: { participant: 'p1', decision: 'commit' } },
    ]);
    const branch = (name: 'p1' | 'p2' | 'p3', vote?: 'yes') => ({
      participant: name,
      url: ref(name).url,
      ops: [],
      enlistments: [],
      target: true,
      acked: false,
      attempts: 0,
      ...(vote ? { vote } : {}),
    });
    const common = { createdAt: 77, onePhase: false, inDoubt: false, collecting: false, logged: true, prepareTimeoutMs: 0, heuristicMixed: false, waiters: [], replyReleased: true, reason: 'recovered from the WAL' };
    expect(state.txs.get(t1)).toStrictEqual({ txId: t1, phase: 'committing', outcome: 'committed', branches: [branch('p1', 'yes'), branch('p2', 'yes')], ...common });
    expect(state.txs.get(t2)).toStrictEqual({ txId: t2, phase: 'aborting', outcome: 'aborted', branches: [branch('p3')], ...common });
  });

  it('a decision owed to nobody (every participant acked before the checkpoint) is closed with END at once', () => {
    const snapshot = { version: 1 as const, epoch: 4, decided: [{ txId: t1, outcome: 'committed' as const, participants: [] }], collecting: [] };
    const { state, effects } = step(initialState(baseConfig), { type: 'recover', now: 0, entries: [], snapshot });
    expect(persisted(effects)).toEqual([
      { record: { type: 'BOOT', epoch: 5 }, sync: true },
      { record: { type: 'END', txId: t1 }, sync: false },
    ]);
    expect(only(effects, 'send')).toEqual([]);
    expect(state.txs.size).toBe(0);
    expect(state.finished.get(t1)).toMatchObject({ phase: 'committed', outcome: 'committed' });
  });

  it('takes the higher of the snapshot epoch and the BOOT records after it', () => {
    const recoverEpoch = (snapshotEpoch: number, boots: number[]) =>
      step(initialState(baseConfig), {
        type: 'recover',
        now: 0,
        entries: boots.map((epoch) => ({ type: 'BOOT' as const, epoch })),
        snapshot: { version: 1, epoch: snapshotEpoch, decided: [], collecting: [] },
      }).state.epoch;
    expect(recoverEpoch(6, [3])).toBe(7);
    expect(recoverEpoch(2, [3, 5, 4])).toBe(6);
    expect(step(initialState(baseConfig), { type: 'recover', now: 0, entries: [] }).state.epoch).toBe(1);
  });

  it('END closes a COLLECTING record and a DECISION alike: nothing to re-send or abort', () => {
    const entries: CoordinatorRecord[] = [
      { type: 'COLLECTING', txId: t1, participants: [ref('p1'), ref('p2')] },
      { type: 'END', txId: t1 },
      { type: 'DECISION', txId: t2, outcome: 'aborted', participants: [ref('p1')] },
      { type: 'END', txId: t2 },
    ];
    const { state, effects } = step(initialState({ ...baseConfig, protocol: 'presumed-nothing' }), { type: 'recover', now: 0, entries });
    expect(noLogs(effects)).toEqual([{ kind: 'persist', record: { type: 'BOOT', epoch: 1 }, sync: true }]);
    expect(state.txs.size).toBe(0);
  });

  it('a COLLECTING record from the snapshot is aborted, unless a DECISION after the snapshot settled it', () => {
    const snapshot = {
      version: 1 as const,
      epoch: 1,
      decided: [],
      collecting: [
        { txId: t1, participants: [ref('p1')] },
        { txId: t2, participants: [ref('p2')] },
      ],
    };
    const entries: CoordinatorRecord[] = [{ type: 'DECISION', txId: t2, outcome: 'committed', participants: [ref('p2')] }];
    const { effects } = step(initialState({ ...baseConfig, protocol: 'presumed-nothing' }), { type: 'recover', now: 0, entries, snapshot });
    expect(only(effects, 'send').map((e) => [e.to, e.message.type, e.message.body.txId])).toEqual([
      ['p2', 'commit', t2],
      ['p1', 'abort', t1],
    ]);
  });

  it('a snapshot lists only what is owed: acked branches and settled transactions are left out', () => {
    const h = new Harness();
    const a = h.runWhole([
      { participant: 'p1', ops: [put('a', 1)] },
      { participant: 'p2', ops: [put('b', 1)] },
      { participant: 'p3', ops: [put('c', 1)] },
    ]);
    h.feed({ type: 'prepareResult', txId: a.txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId: a.txId, participant: 'p2', vote: 'read-only' });
    h.feed({ type: 'prepareResult', txId: a.txId, participant: 'p3', vote: 'yes' });
    h.feed({ type: 'decisionAcked', txId: a.txId, participant: 'p3' });
    // Under presumed abort nothing is logged before the decision: an undecided transaction is not in the snapshot.
    h.runWhole([
      { participant: 'p1', ops: [put('x', 1)] },
      { participant: 'p2', ops: [put('y', 1)] },
    ]);
    expect(snapshotOf(h.state)).toStrictEqual({
      version: 1,
      epoch: 1,
      decided: [{ txId: a.txId, outcome: 'committed', participants: [ref('p1')] }],
      collecting: [],
    });
  });

  it('a COLLECTING record that lists nobody is closed with END on recovery', () => {
    const entries: CoordinatorRecord[] = [{ type: 'COLLECTING', txId: t1, participants: [] }];
    const { state, effects } = step(initialState({ ...baseConfig, protocol: 'presumed-nothing' }), { type: 'recover', now: 0, entries });
    expect(persisted(effects)).toEqual([
      { record: { type: 'BOOT', epoch: 1 }, sync: true },
      { record: { type: 'END', txId: t1 }, sync: false },
    ]);
    expect(state.txs.size).toBe(0);
    expect(state.finished.get(t1)).toMatchObject({ phase: 'aborted', outcome: 'aborted' });
  });
});
