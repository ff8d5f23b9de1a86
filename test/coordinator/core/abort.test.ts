import { describe, expect, it } from 'vitest';
import type { CoordinatorEffect } from '../../../coordinator/core/index.ts';
import { Harness, decisionMsg, noLogs, only, persisted, put, ref, replyOf } from './helpers.ts';
import type { TxId } from '../../../shared/types.ts';

const twoBranches = [
  { participant: 'p1', ops: [put('a', 1)] },
  { participant: 'p2', ops: [put('b', 2)] },
];

interface Case {
  readonly name: string;
  /** Drives phase 1 to the abort; returns the effects of the deciding step. */
  readonly drive: (h: Harness, txId: TxId) => readonly CoordinatorEffect[];
  readonly targets: ('p1' | 'p2')[];
  readonly reason: string;
}

const cases: Case[] = [
  {
    name: 'a no vote',
    drive: (h, txId) => {
      h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
      return h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'no', reason: 'b below min' });
    },
    targets: ['p1'],
    reason: 'p2 voted no: b below min',
  },
  {
    name: 'a no vote that comes first (the silent branch may be prepared, so it hears the abort too)',
    drive: (h, txId) => h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'no' }),
    targets: ['p2'],
    reason: 'p1 voted no',
  },
  {
    name: 'a prepare timeout',
    drive: (h, txId) => {
      h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
      return h.feed({ type: 'timer', id: `${txId}/prepare` });
    },
    targets: ['p1', 'p2'],
    reason: 'no vote from p2 within 1000 ms',
  },
  {
    name: 'an unreachable participant',
    drive: (h, txId) => {
      h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
      return h.feed({ type: 'prepareFailed', txId, participant: 'p2', error: 'unreachable', message: 'ECONNREFUSED' });
    },
    targets: ['p1', 'p2'],
    reason: 'p2 did not answer the prepare (unreachable: ECONNREFUSED)',
  },
  {
    name: 'a 5xx from a participant',
    drive: (h, txId) => h.feed({ type: 'prepareFailed', txId, participant: 'p1', error: 'server-error', message: 'HTTP 503' }),
    targets: ['p1', 'p2'],
    reason: 'p1 did not answer the prepare (server-error: HTTP 503)',
  },
];

describe('abort in phase 1', () => {
  it.each(cases)('aborts on $name: lazy DECISION, abort to every branch that may be prepared', ({ drive, targets, reason }) => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole(twoBranches);
    const effects = drive(h, txId);
    expect(noLogs(effects).filter((e) => e.kind !== 'crashPoint' || e.point !== 'coordinator.after-prepare-sent')).toEqual([
      { kind: 'cancelTimer', id: `${txId}/prepare` },
      { kind: 'crashPoint', point: 'coordinator.before-decision-logged' },
      // Presumed abort: the abort need not be forced; a participant that asks hears "aborted" anyway.
      { kind: 'persist', record: { type: 'DECISION', txId, outcome: 'aborted', participants: targets.map(ref) }, sync: false },
      { kind: 'crashPoint', point: 'coordinator.after-decision-logged' },
      ...targets.map((p) => decisionMsg(txId, p, 'abort')),
      { kind: 'setTimer', id: `${txId}/reply`, ms: 2_000 },
    ]);

    const acks = targets.map((p) => h.feed({ type: 'decisionAcked', txId, participant: p }));
    expect(only(acks[0] ?? [], 'crashPoint')[0]).toEqual({ kind: 'crashPoint', point: 'coordinator.after-first-abort-sent' });
    const last = acks[acks.length - 1] ?? [];
    expect(persisted(last)).toEqual([{ record: { type: 'END', txId }, sync: false }]);
    expect(replyOf(last, requestId)).toMatchObject({ status: 200, body: { txId, outcome: 'aborted', applied: true, reason } });
  });

  it('a late vote after the abort changes nothing', () => {
    const h = new Harness();
    const { txId } = h.runWhole(twoBranches);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'no' });
    const before = h.state;
    expect(h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' })).toEqual([]);
    expect(h.state).toBe(before);
  });

  it('writes nothing when every voter said no', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole([{ participant: 'p1', ops: [put('a', 1)] }, { participant: 'p2', ops: [put('b', 1)] }, { participant: 'p3', ops: [put('c', 1)] }]);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'read-only' });
    const effects = h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'no' });
    // p3 has not voted and may be prepared, so it must hear the abort: the DECISION lists only p3.
    expect(persisted(effects)).toEqual([{ record: { type: 'DECISION', txId, outcome: 'aborted', participants: [ref('p3')] }, sync: false }]);
    const last = h.feed({ type: 'decisionAcked', txId, participant: 'p3' });
    expect(replyOf(last, requestId).body).toMatchObject({
      outcome: 'aborted',
      branches: [
        { participant: 'p1', vote: 'read-only', acked: true },
        { participant: 'p2', vote: 'no', acked: true },
        { participant: 'p3', acked: true },
      ],
    });
  });
});

describe('client and timeout aborts', () => {
  it('a client abort of an active transaction writes and sends nothing', () => {
    const h = new Harness();
    h.feed({ type: 'begin', requestId: h.rid() });
    const e = h.rid();
    h.feed({ type: 'enlist', requestId: e, txId: 'tx-1-1', participant: 'p1', ops: [put('a', 1)] });
    const a = h.rid();
    const effects = h.feed({ type: 'abort', requestId: a, txId: 'tx-1-1' });
    expect(noLogs(effects)).toEqual([
      { kind: 'cancelTimer', id: 'tx-1-1/timeout' },
      { kind: 'reply', requestId: a, status: 200, body: { txId: 'tx-1-1', outcome: 'aborted' } },
    ]);
  });

  it('a client abort during phase 1 decides abort at once; the waiting commit hears it', () => {
    const h = new Harness();
    h.feed({ type: 'begin', requestId: h.rid() });
    const txId = 'tx-1-1' as TxId;
    h.feed({ type: 'enlist', requestId: h.rid(), txId, participant: 'p1', ops: [put('a', 1)] });
    h.feed({ type: 'enlist', requestId: h.rid(), txId, participant: 'p2', ops: [put('b', 1)] });
    const c = h.rid();
    h.feed({ type: 'commit', requestId: c, txId });
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    const a = h.rid();
    const effects = h.feed({ type: 'abort', requestId: a, txId });
    expect(persisted(effects)).toEqual([{ record: { type: 'DECISION', txId, outcome: 'aborted', participants: [ref('p1'), ref('p2')] }, sync: false }]);
    expect(replyOf(effects, a)).toEqual({ status: 200, body: { txId, outcome: 'aborted' } });
    h.feed({ type: 'decisionAcked', txId, participant: 'p1' });
    const last = h.feed({ type: 'decisionAcked', txId, participant: 'p2' });
    expect(replyOf(last, c).body).toMatchObject({ outcome: 'aborted', reason: 'aborted by the client' });
  });

  it('an abort after the commit decision is a 409, and a commit after an abort reports aborted', () => {
    const h = new Harness();
    const { txId } = h.runWhole(twoBranches);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    const a = h.rid();
    expect(replyOf(h.feed({ type: 'abort', requestId: a, txId }), a)).toMatchObject({ status: 409, body: { error: { code: 'conflict' } } });

    const h2 = new Harness();
    h2.feed({ type: 'begin', requestId: h2.rid() });
    h2.feed({ type: 'abort', requestId: h2.rid(), txId: 'tx-1-1' });
    const c = h2.rid();
    expect(replyOf(h2.feed({ type: 'commit', requestId: c, txId: 'tx-1-1' }), c)).toMatchObject({ status: 200, body: { outcome: 'aborted' } });
  });

  it('an active transaction left alone past its timeout is aborted; a late commit hears why', () => {
    const h = new Harness();
    const b = h.rid();
    expect(only(h.feed({ type: 'begin', requestId: b, timeoutMs: 500 }), 'setTimer')).toEqual([{ kind: 'setTimer', id: 'tx-1-1/timeout', ms: 500 }]);
    h.feed({ type: 'enlist', requestId: h.rid(), txId: 'tx-1-1', participant: 'p1', ops: [put('a', 1)] });
    const expired = h.feed({ type: 'timer', id: 'tx-1-1/timeout' });
    expect(persisted(expired)).toEqual([]);
    expect(only(expired, 'send')).toEqual([]);
    const c = h.rid();
    expect(replyOf(h.feed({ type: 'commit', requestId: c, txId: 'tx-1-1' }), c).body).toMatchObject({
      outcome: 'aborted',
      reason: 'timed out while active (not committed within its timeout)',
    });
  });
});
