/**
 * Phase 2 as an operator reads it: the exact log lines of a decision, a re-send, a heuristic
 * acknowledgement and the END, and the timer ids the runtime hands back. Operators debug
 * in-doubt transactions from these lines, so a dropped field is a bug they would meet.
 */
import { describe, expect, it } from 'vitest';
import { parseTimerId, timerId } from '../../../coordinator/core/decision.ts';
import { initialState, step } from '../../../coordinator/core/index.ts';
import type { CoordinatorEffect, CoordinatorRecord } from '../../../coordinator/core/index.ts';
import { asTxId } from '../../../shared/types.ts';
import { Harness, baseConfig, only, put, ref, replyOf } from './helpers.ts';

const two = [
  { participant: 'p1', ops: [put('a', 1)] },
  { participant: 'p2', ops: [put('b', 1)] },
];
const logs = (effects: readonly CoordinatorEffect[]) => only(effects, 'log');

describe('timer ids', () => {
  it('parse back exactly what timerId built, and nothing else', () => {
    expect(parseTimerId(timerId('tx-1-1', 'timeout'))).toStrictEqual({ txId: 'tx-1-1', kind: 'timeout' });
    expect(parseTimerId(timerId('tx-1-1', 'resend', 'p2'))).toStrictEqual({ txId: 'tx-1-1', kind: 'resend', participant: 'p2' });
    for (const bad of ['garbage', 'tx-1-1/timeouts', 'x/tx-1-1/timeout', '/timeout', 'tx-1-1/later']) expect(parseTimerId(bad), bad).toBeUndefined();
  });
});

describe('the lines phase 2 logs', () => {
  it('a commit: decision logged (forced), each send, each ack, END', () => {
    const h = new Harness();
    const { txId } = h.runWhole(two);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    const decided = h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    expect(logs(decided).filter((l) => l.step.startsWith('decision'))).toStrictEqual([
      { kind: 'log', step: 'decision.logged', txId, fields: { outcome: 'committed', forced: true } },
      { kind: 'log', step: 'decision.sent', txId, fields: { participant: 'p1', decision: 'commit' } },
      { kind: 'log', step: 'decision.sent', txId, fields: { participant: 'p2', decision: 'commit' } },
    ]);
    // The client is waiting: a reply timer bounds how long it waits for the acks.
    expect(only(decided, 'setTimer')).toStrictEqual([{ kind: 'setTimer', id: timerId(txId, 'reply'), ms: baseConfig.replyWaitMs }]);

    // p2's commit fails once and is re-sent: the re-send names its attempt.
    h.feed({ type: 'decisionFailed', txId, participant: 'p2', error: 'timeout' });
    const resent = h.feed({ type: 'timer', id: timerId(txId, 'resend', 'p2') });
    expect(logs(resent)).toContainEqual({ kind: 'log', step: 'decision.sent', txId, fields: { participant: 'p2', decision: 'commit', attempt: 1 } });

    const ack1 = h.feed({ type: 'decisionAcked', txId, participant: 'p1' });
    expect(logs(ack1)).toStrictEqual([{ kind: 'log', step: 'ack', txId, fields: { participant: 'p1' } }]);
    const ack2 = h.feed({ type: 'decisionAcked', txId, participant: 'p2', heuristic: 'committed' });
    // A heuristic that agrees with the decision is reported on the ack line, and is not "mixed".
    expect(logs(ack2)).toStrictEqual([
      { kind: 'log', step: 'ack', txId, fields: { participant: 'p2', heuristic: 'committed' } },
      { kind: 'log', step: 'end.logged', txId, fields: { forced: false } },
    ]);
    expect(h.state.finished.get(txId)).toMatchObject({ outcome: 'committed', heuristicMixed: false });
  });

  it('a heuristic that disagrees is logged as mixed, naming the participant, the decision and the heuristic', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole(two);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    const ack = h.feed({ type: 'decisionAcked', txId, participant: 'p1', heuristic: 'aborted' });
    expect(logs(ack)).toStrictEqual([
      { kind: 'log', step: 'ack', txId, fields: { participant: 'p1', heuristic: 'aborted' } },
      { kind: 'log', step: 'heuristic.mixed', txId, fields: { participant: 'p1', decision: 'committed', heuristic: 'aborted' } },
    ]);
    const done = h.feed({ type: 'decisionAcked', txId, participant: 'p2' });
    expect(replyOf(done, requestId).body).toMatchObject({ outcome: 'heuristic-mixed' });
  });

  it('an abort with a reason logs it; a decision nobody needs says so; recovery sets no reply timer', () => {
    const h = new Harness();
    const a = h.runWhole(two);
    const no = h.feed({ type: 'prepareResult', txId: a.txId, participant: 'p1', vote: 'no', reason: 'lock' });
    expect(logs(no)).toContainEqual({ kind: 'log', step: 'decision.logged', txId: a.txId, fields: { outcome: 'aborted', forced: false, reason: 'p1 voted no: lock' } });

    const b = h.runWhole(two);
    h.feed({ type: 'prepareResult', txId: b.txId, participant: 'p1', vote: 'read-only' });
    const ro = h.feed({ type: 'prepareResult', txId: b.txId, participant: 'p2', vote: 'read-only' });
    expect(logs(ro)).toContainEqual({ kind: 'log', step: 'decision', txId: b.txId, fields: { outcome: 'committed', targets: 0 } });

    const entries: CoordinatorRecord[] = [{ type: 'COLLECTING', txId: asTxId('tx-1-1'), participants: [ref('p1')] }];
    const r = step(initialState({ ...baseConfig, protocol: 'presumed-nothing' }), { type: 'recover', now: 0, entries });
    expect(only(r.effects, 'setTimer')).toEqual([]);
    expect(logs(r.effects)[0]).toStrictEqual({ kind: 'log', step: 'recovered', fields: { epoch: 1, resending: 0, aborting: 1, records: 1 } });
  });

  it('a step that changes nothing hands back the very same state', () => {
    const h = new Harness();
    const { txId } = h.runWhole(two);
    const before = h.state;
    h.feed({ type: 'getTx', requestId: 'q', txId });
    expect(h.state).toBe(before);
  });
});
