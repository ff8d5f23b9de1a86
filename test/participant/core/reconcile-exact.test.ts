/**
 * Reconciling at recovery (participant/core/reconcile.ts), with whole effect lists: what an
 * operator reads in the log lines (orphans, branches gone, lost commits, the summary's counts),
 * which recovery effects survive the reconciling (an in-doubt transaction still asks its
 * coordinator), and the HEURISTIC records the other reconcile tests do not cover.
 */
import { describe, expect, it } from 'vitest';
import { checkpointOf, reconcileQuestions, step, type ParticipantEffect, type ParticipantRecord } from '../../../participant/core/index.ts';
import { COORD, P1, P2, decide, fresh, preparedWith, run, tx } from './helpers.ts';

const prepared = (n: number): ParticipantRecord => ({ type: 'PREPARED', txId: tx(n), coordinator: COORD, participants: [P1, P2], keys: [], data: { n }, at: 500 });
const log = (stepName: string, txId: string | undefined, fields: Record<string, unknown>): ParticipantEffect =>
  (txId === undefined ? { kind: 'log', step: stepName, fields } : { kind: 'log', step: stepName, txId, fields }) as ParticipantEffect;
const inDoubt = (n: number): ParticipantEffect[] => [
  log('in-doubt', tx(n), { keys: [], coordinator: COORD, preparedAt: 500 }),
  { kind: 'inquire', txId: tx(n), coordinator: COORD },
];

describe('reconcile at recovery, exactly', () => {
  it('an orphan, a branch gone, a lost commit and a held in-doubt branch: every effect and line, and the counts', () => {
    // tx1: prepared in the resource only (an orphan). tx2: in doubt here, the resource committed it.
    // tx3: committed here, the resource has no trace of it. tx4: in doubt here and held there.
    const records: ParticipantRecord[] = [prepared(2), prepared(3), { type: 'COMMITTED', txId: tx(3), at: 600 }, prepared(4)];
    const r = step(fresh({ keysOf: undefined }), {
      type: 'recover',
      now: 10_000,
      records,
      resource: { prepared: [tx(1), tx(4)], outcomes: [[tx(2), 'committed'], [tx(3), 'unknown']] },
    });
    const orphanReason = 'prepared in the resource, but the participant stopped before its PREPARED record was durable; rolled back at recovery';
    expect(r.effects).toStrictEqual([
      ...inDoubt(2),
      ...inDoubt(4),
      log('recovered', undefined, { fromCheckpoint: false, records: 4, inDoubt: 2, outcomes: 1 }),
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 10_000, reason: orphanReason }, sync: true },
      { kind: 'resourceAbort', txId: tx(1), data: undefined },
      log('orphan-rolled-back', tx(1), { reason: orphanReason }),
      log('branch-gone', tx(2), { resource: 'committed', message: 'in doubt here, but the resource no longer holds its prepared branch' }),
      { kind: 'persist', record: { type: 'HEURISTIC', txId: tx(3), outcome: 'aborted', at: 10_000 }, sync: true },
      log('heuristic-hazard', tx(3), {
        decision: 'committed',
        resource: 'unknown',
        message: 'the WAL says committed, but the resource has no trace of the commit: it was lost outside the protocol',
      }),
      log('reconciled', undefined, { heldPrepared: 2, orphans: 1, branchesGone: 1, lostCommits: 1 }),
    ]);
  });

  it('a branch gone without an answer from the resource reads as no trace', () => {
    const r = step(fresh({ keysOf: undefined }), { type: 'recover', now: 10_000, records: [prepared(2)], resource: { prepared: [], outcomes: [] } });
    expect(r.effects.filter((e) => e.kind === 'log' && (e.step === 'branch-gone' || e.step === 'reconciled'))).toStrictEqual([
      log('branch-gone', tx(2), { resource: 'unknown', message: 'in doubt here, but the resource no longer holds its prepared branch' }),
      log('reconciled', undefined, { heldPrepared: 0, orphans: 0, branchesGone: 1, lostCommits: 0 }),
    ]);
  });

  it('with nothing gone, the state keeps no table of gone branches', () => {
    const r = step(fresh({ keysOf: undefined }), { type: 'recover', now: 10_000, records: [prepared(2)], resource: { prepared: [tx(2)], outcomes: [] } });
    expect(r.state.branchesGone).toBeUndefined();
  });

  it('an orphan that may have been forgotten is reported with its message, and counted as no orphan', () => {
    let s = fresh({ outcomesMax: 1, keysOf: undefined });
    for (const n of [1, 2]) s = run(s, decide('abort', tx(n))).state;
    const r = step(fresh({ outcomesMax: 1, keysOf: undefined }), {
      type: 'recover',
      now: 10_000,
      snapshot: checkpointOf(s, null),
      records: [],
      resource: { prepared: [tx(1)], outcomes: [] },
    });
    expect(r.effects.filter((e) => e.kind === 'log' && e.step !== 'recovered')).toStrictEqual([
      log('orphan-unknown', tx(1), { message: 'prepared in the resource, and too old for this participant to know its outcome; left prepared' }),
      log('reconciled', undefined, { heldPrepared: 1, orphans: 0, branchesGone: 0, lostCommits: 0 }),
    ]);
  });

  it('a branch aborted before the checkpoint and still held is rolled back (one committed is committed)', () => {
    const aborted = run(preparedWith(tx(1), [{ op: 'put', key: 'a', value: 1 }]), decide('abort', tx(1))).state;
    const r = step(fresh({ keysOf: undefined }), {
      type: 'recover',
      now: 10_000,
      snapshot: checkpointOf(aborted, null),
      records: [],
      resource: { prepared: [tx(1)], outcomes: [] },
    });
    expect(r.effects.filter((e) => e.kind === 'resourceCommit' || e.kind === 'resourceAbort')).toStrictEqual([
      { kind: 'resourceAbort', txId: tx(1), data: undefined },
    ]);
  });

  it("asks about an operator's heuristic commit, not about a heuristic abort; a lost heuristic commit is reported", () => {
    const records: ParticipantRecord[] = [
      prepared(1),
      { type: 'HEURISTIC', txId: tx(1), outcome: 'committed', at: 600 },
      prepared(2),
      { type: 'HEURISTIC', txId: tx(2), outcome: 'aborted', at: 610 },
    ];
    expect(reconcileQuestions(undefined, records, [])).toStrictEqual([tx(1)]);
    const r = step(fresh({ keysOf: undefined }), { type: 'recover', now: 10_000, records, resource: { prepared: [], outcomes: [[tx(1), 'unknown']] } });
    expect(r.effects.filter((e) => e.kind === 'persist')).toStrictEqual([
      { kind: 'persist', record: { type: 'HEURISTIC', txId: tx(1), outcome: 'aborted', at: 10_000 }, sync: true },
    ]);
  });

  it('a decision against what the resource did: the heuristic-hazard line names both, and how the decision came', () => {
    const recovered = (said: 'committed' | 'unknown') =>
      step(fresh({ keysOf: undefined }), { type: 'recover', now: 10_000, records: [prepared(1)], resource: { prepared: [], outcomes: [[tx(1), said]] } }).state;
    const hazard = (effects: readonly ParticipantEffect[]) => effects.filter((e) => e.kind === 'log' && e.step === 'heuristic-hazard');
    expect(hazard(step(recovered('committed'), decide('abort', tx(1), 'a1')).effects)).toStrictEqual([
      log('heuristic-hazard', tx(1), {
        decision: 'aborted',
        resource: 'committed',
        via: 'coordinator',
        message: "the decision is aborted, but the resource's branch is committed",
      }),
    ]);
    expect(hazard(step(recovered('unknown'), { type: 'outcomeLearned', now: 11_000, txId: tx(1), outcome: 'committed' }).effects)).toStrictEqual([
      log('heuristic-hazard', tx(1), {
        decision: 'committed',
        resource: 'unknown',
        via: 'inquiry',
        message: "the decision is committed, but the resource's branch is gone without trace",
      }),
    ]);
    // An operator settling it by hand against the resource: the line says it was the operator.
    const byHand = step(recovered('committed'), { type: 'heuristic', requestId: 'h', now: 12_000, txId: tx(1), outcome: 'aborted' });
    expect(hazard(byHand.effects)).toStrictEqual([
      log('heuristic-hazard', tx(1), {
        decision: 'aborted',
        resource: 'committed',
        via: 'operator',
        message: "the decision is aborted, but the resource's branch is committed",
      }),
    ]);
  });
});
