/**
 * Reconciling the WAL with a resource that keeps prepared work of its own
 * (participant/core/reconcile.ts), both ways, and a resource that takes its
 * own locks. Issue 8: "the Resource port must change first".
 */
import { describe, expect, it } from 'vitest';
import { checkpointOf, getTx, reconcileQuestions, step, type ParticipantEffect, type ParticipantRecord, type ResourceRecovery } from '../../../participant/core/index.ts';
import { COORD, P1, P2, decide, fresh, kinds, prepare, preparedWith, run, tx, withoutLogs, yes } from './helpers.ts';

const put = (key: string, value: unknown) => ({ op: 'put', key, value }) as const;
const prepared = (n: number, data: unknown = { n }, keys: string[] = []): ParticipantRecord => ({
  type: 'PREPARED',
  txId: tx(n),
  coordinator: COORD,
  participants: [P1, P2],
  keys,
  data,
  at: 500,
});
const recover = (records: ParticipantRecord[], resource?: ResourceRecovery, state = fresh({ keysOf: undefined })) =>
  step(state, { type: 'recover', now: 10_000, records, ...(resource !== undefined && { resource }) });
const resourceCalls = (effects: readonly ParticipantEffect[]) => effects.filter((e) => e.kind === 'resourceCommit' || e.kind === 'resourceAbort');
const logSteps = (effects: readonly ParticipantEffect[]) => effects.flatMap((e) => (e.kind === 'log' ? [e.step] : []));

describe('reconcile at recovery: prepared in the resource', () => {
  it('an orphan (prepared in the resource, no record here) is rolled back and remembered aborted, forced', () => {
    const r = recover([], { prepared: [tx(1)], outcomes: [] });
    const reason = 'prepared in the resource, but the participant stopped before its PREPARED record was durable; rolled back at recovery';
    expect(withoutLogs(r.effects)).toEqual([
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 10_000, reason }, sync: true },
      { kind: 'resourceAbort', txId: tx(1), data: undefined },
    ]);
    expect(logSteps(r.effects)).toContain('orphan-rolled-back');
    expect(getTx(r.state, tx(1)).state).toBe('aborted');
    // The coordinator's abort is answered, and a late duplicate prepare votes no.
    expect(withoutLogs(step(r.state, decide('abort', tx(1))).effects)).toEqual([
      { kind: 'reply', requestId: `abort-${tx(1)}`, status: 200, body: { txId: tx(1), state: 'aborted' }, txId: tx(1) },
    ]);
    expect(withoutLogs(step(r.state, prepare(tx(1), [put('k', 1)])).effects)).toEqual([
      { kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'no', reason } },
    ]);
  });

  it('in doubt here and held there: in doubt, asking the coordinator, nothing called', () => {
    const r = recover([prepared(1)], { prepared: [tx(1)], outcomes: [] });
    expect(resourceCalls(r.effects)).toEqual([]);
    expect(r.effects).toContainEqual({ kind: 'inquire', txId: tx(1), coordinator: COORD });
    expect(getTx(r.state, tx(1)).state).toBe('prepared');
    // The decision then reaches the resource as usual.
    expect(resourceCalls(step(r.state, decide('commit', tx(1))).effects)).toEqual([{ kind: 'resourceCommit', txId: tx(1), data: { n: 1 }, keys: [] }]);
  });

  it('settled here and still held there: the replay runs; a settled branch that is not held is not called', () => {
    const records: ParticipantRecord[] = [
      prepared(1),
      prepared(2),
      prepared(3),
      { type: 'COMMITTED', txId: tx(1), at: 600 },
      { type: 'ABORTED', txId: tx(2), at: 610 },
      { type: 'COMMITTED', txId: tx(3), at: 620 },
    ];
    // tx1 and tx2 are still prepared in the resource (the crash came before the apply); tx3 was applied.
    const r = recover(records, { prepared: [tx(1), tx(2)], outcomes: [[tx(3), 'committed']] });
    expect(resourceCalls(r.effects)).toEqual([
      { kind: 'resourceCommit', txId: tx(1), data: { n: 1 } },
      { kind: 'resourceAbort', txId: tx(2), data: { n: 2 } },
    ]);
    expect(kinds(withoutLogs(r.effects))).toEqual(['resourceCommit', 'resourceAbort']);
  });

  it('settled before the checkpoint and still held: finished without its data, which went with the old segments', () => {
    const s = run(preparedWith(tx(1), [put('a', 1)]), decide('commit', tx(1))).state;
    const snapshot = checkpointOf(s, null);
    const r = step(fresh({ keysOf: undefined }), { type: 'recover', now: 10_000, snapshot, records: [], resource: { prepared: [tx(1)], outcomes: [] } });
    expect(resourceCalls(r.effects)).toEqual([{ kind: 'resourceCommit', txId: tx(1), data: undefined }]);
  });

  it('an orphan this participant may have forgotten is left prepared and reported, never guessed', () => {
    let s = fresh({ outcomesMax: 1, keysOf: undefined });
    for (const n of [1, 2]) s = run(s, decide('abort', tx(n))).state;
    const snapshot = checkpointOf(s, null);
    const r = step(fresh({ outcomesMax: 1, keysOf: undefined }), { type: 'recover', now: 10_000, snapshot, records: [], resource: { prepared: [tx(1)], outcomes: [] } });
    expect(resourceCalls(r.effects)).toEqual([]);
    expect(logSteps(r.effects)).toContain('orphan-unknown');
  });
});

describe('reconcile at recovery: gone from the resource', () => {
  it('in doubt here, committed there: a commit decision settles it as usual', () => {
    const r = recover([prepared(1)], { prepared: [], outcomes: [[tx(1), 'committed']] });
    expect(logSteps(r.effects)).toContain('branch-gone');
    const c = step(r.state, decide('commit', tx(1)));
    expect(c.effects).toContainEqual({ kind: 'persist', record: { type: 'COMMITTED', txId: tx(1), at: 2_000 }, sync: true });
    expect(getTx(c.state, tx(1))).toEqual({ txId: tx(1), state: 'committed', since: 2_000 });
    expect(c.state.branchesGone?.size ?? 0).toBe(0);
  });

  it('in doubt here, committed there, and the decision is abort: reported as heuristic, forced, no resource call', () => {
    const r = recover([prepared(1)], { prepared: [], outcomes: [[tx(1), 'committed']] });
    const a = step(r.state, decide('abort', tx(1)));
    expect(withoutLogs(a.effects)).toEqual([
      { kind: 'cancelTimer', id: `inquire:${tx(1)}` },
      { kind: 'persist', record: { type: 'HEURISTIC', txId: tx(1), outcome: 'committed', at: 2_000 }, sync: true },
      { kind: 'reply', requestId: `abort-${tx(1)}`, status: 200, body: { txId: tx(1), state: 'committed', heuristic: 'committed' }, txId: tx(1) },
    ]);
    expect(logSteps(a.effects)).toContain('heuristic-hazard');
    expect(getTx(a.state, tx(1))).toEqual({ txId: tx(1), state: 'committed', since: 2_000, heuristic: 'committed' });
  });

  it('in doubt here, no trace there (or no outcomeOf), and the outcome learned is commit: reported as heuristic abort', () => {
    for (const outcomes of [[[tx(1), 'unknown']] as const, []]) {
      const r = recover([prepared(1)], { prepared: [], outcomes });
      const c = step(r.state, { type: 'outcomeLearned', now: 3_000, txId: tx(1), outcome: 'committed' });
      expect(withoutLogs(c.effects)).toEqual([
        { kind: 'cancelTimer', id: `inquire:${tx(1)}` },
        { kind: 'persist', record: { type: 'HEURISTIC', txId: tx(1), outcome: 'aborted', at: 3_000 }, sync: true },
      ]);
      expect(getTx(c.state, tx(1)).heuristic).toBe('aborted');
      // An abort decision agrees with it: settled the ordinary way.
      expect(getTx(step(r.state, decide('abort', tx(1))).state, tx(1))).toEqual({ txId: tx(1), state: 'aborted', since: 2_000 });
    }
  });

  it('an operator deciding against what the resource did gets what the resource did', () => {
    const r = recover([prepared(1)], { prepared: [], outcomes: [[tx(1), 'committed']] });
    const h = step(r.state, { type: 'heuristic', requestId: 'op', now: 4_000, txId: tx(1), outcome: 'aborted' });
    expect(resourceCalls(h.effects)).toEqual([]);
    expect(getTx(h.state, tx(1))).toEqual({ txId: tx(1), state: 'committed', since: 4_000, heuristic: 'committed' });
  });

  it('committed here, no trace of the commit there: a lost commit, recorded and reported as heuristic', () => {
    const records: ParticipantRecord[] = [prepared(1), { type: 'COMMITTED', txId: tx(1), at: 600 }, prepared(2), { type: 'COMMITTED', txId: tx(2), at: 610 }];
    const r = recover(records, { prepared: [], outcomes: [[tx(1), 'unknown'], [tx(2), 'committed']] });
    expect(withoutLogs(r.effects)).toEqual([
      { kind: 'persist', record: { type: 'HEURISTIC', txId: tx(1), outcome: 'aborted', at: 10_000 }, sync: true },
    ]);
    expect(logSteps(r.effects)).toContain('heuristic-hazard');
    expect(getTx(r.state, tx(1))).toMatchObject({ state: 'aborted', heuristic: 'aborted' });
    expect(getTx(r.state, tx(2))).toEqual({ txId: tx(2), state: 'committed', since: 610 });
    // The coordinator's retried commit hears the heuristic, so it reports heuristic-mixed.
    expect(withoutLogs(step(r.state, decide('commit', tx(1))).effects)).toEqual([
      { kind: 'reply', requestId: `commit-${tx(1)}`, status: 200, body: { txId: tx(1), state: 'aborted', heuristic: 'aborted' }, txId: tx(1) },
    ]);
  });

  it('asks outcomeOf about exactly the in-doubt and committed branches the resource does not hold', () => {
    const records: ParticipantRecord[] = [
      prepared(1),
      prepared(2),
      { type: 'COMMITTED', txId: tx(2), at: 600 },
      prepared(3),
      { type: 'ABORTED', txId: tx(3), at: 610 },
      { type: 'COMMITTED', txId: tx(4), at: 620, data: {}, onePhase: true },
      prepared(5),
    ];
    expect(reconcileQuestions(undefined, records, [tx(5)])).toEqual([tx(1), tx(2), tx(4)]);
    const s = preparedWith(tx(9), [put('z', 1)]);
    expect(reconcileQuestions(checkpointOf(s, null), [], [])).toEqual([tx(9)]);
  });

  it('without a resource answer (a resource that keeps nothing prepared) recovery replays exactly as before', () => {
    const records: ParticipantRecord[] = [prepared(1), { type: 'COMMITTED', txId: tx(1), at: 600 }];
    expect(resourceCalls(recover(records).effects)).toEqual([{ kind: 'resourceCommit', txId: tx(1), data: { n: 1 } }]);
  });
});

describe('a resource that takes its own locks', () => {
  it('the core takes no locks: two prepares that the ops would have made conflict both reach the resource at once', () => {
    const s0 = fresh({ keysOf: undefined });
    const r1 = step(s0, prepare(tx(1), [put('k', 1)]));
    const r2 = step(r1.state, prepare(tx(2), [put('k', 2)]));
    expect(r1.effects).toEqual([{ kind: 'resourcePrepare', txId: tx(1), ops: [put('k', 1)], keys: [] }]);
    expect(r2.effects).toEqual([{ kind: 'resourcePrepare', txId: tx(2), ops: [put('k', 2)], keys: [] }]);
    expect(r2.state.locks.size).toBe(0);
    expect(r2.state.waiting).toEqual([]);
  });

  it("its lock timeout is a NO vote with the resource's reason", () => {
    const reason = 'canceling statement due to lock timeout';
    const s = step(fresh({ keysOf: undefined }), prepare(tx(1), [put('k', 1)])).state;
    const r = step(s, { type: 'resourcePrepared', now: 1_010, txId: tx(1), vote: 'no', reason });
    expect(r.effects).toContainEqual({ kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'no', reason } });
    expect(r.effects).toContainEqual({ kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 1_010, reason }, sync: false });
  });

  it('a prepared transaction holds nothing in the core; its commit carries no keys', () => {
    const s = run(fresh({ keysOf: undefined }), prepare(tx(1), [put('k', 1)]), yes(tx(1), { n: 1 })).state;
    expect(s.locks.size).toBe(0);
    expect(resourceCalls(step(s, decide('commit', tx(1))).effects)).toEqual([{ kind: 'resourceCommit', txId: tx(1), data: { n: 1 }, keys: [] }]);
  });
});
