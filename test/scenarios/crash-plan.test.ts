import { describe, expect, it } from 'vitest';
import { CRASH_POINTS } from '../../shared/crash-points.ts';
import { caseBranches, caseKey, crashPlan, pointsRecovered, summaryLine, walProblems, WAL_AT_POINT } from '../../scenarios/crash-plan.ts';

describe('crash-point plan', () => {
  const plan = crashPlan();

  it('lists every point on both paths, and every point is reachable on at least one', () => {
    const points = Object.keys(CRASH_POINTS);
    expect(plan).toHaveLength(points.length * 2);
    for (const p of points) {
      expect(plan.filter((c) => c.point === p).map((c) => c.path)).toEqual(['commit', 'abort']);
      expect(plan.some((c) => c.point === p && c.applicable)).toBe(true);
    }
    expect(Object.keys(WAL_AT_POINT).sort()).toEqual([...points].sort());
  });

  it('names the points a path cannot reach, with the reason', () => {
    const na = plan.filter((c) => !c.applicable).map((c) => caseKey(c));
    expect(na).toEqual([
      'commit:coordinator.after-first-abort-sent',
      'commit:participant.before-abort-logged',
      'commit:participant.after-abort-logged',
      'abort:coordinator.after-first-commit-sent',
      'abort:participant.before-commit-logged',
      'abort:participant.after-commit-logged',
    ]);
    for (const c of plan.filter((x) => !x.applicable)) expect(c.why).not.toBe(CRASH_POINTS[c.point]);
  });

  it('arms coordinator points on the coordinator and participant points on p2', () => {
    for (const c of plan) expect(c.node).toBe(c.point.startsWith('coordinator.') ? 'coordinator' : 'p2');
  });

  it('expects commit only once the decision is durable, and abort on the abort path', () => {
    const committed = plan.filter((c) => c.applicable && c.expected === 'committed').map((c) => caseKey(c));
    expect(committed).toEqual([
      'commit:coordinator.after-decision-logged',
      'commit:coordinator.after-first-commit-sent',
      'commit:coordinator.before-end-logged',
      'commit:participant.before-commit-logged',
      'commit:participant.after-commit-logged',
    ]);
    expect(plan.filter((c) => c.path === 'abort').every((c) => c.expected === 'aborted')).toBe(true);
  });

  it('builds a branch per participant, with a no vote at p3 on the abort path', () => {
    expect(caseBranches('commit', 7)).toEqual([
      { participant: 'p1', ops: [{ op: 'add', key: 'counter', amount: 7 }] },
      { participant: 'p2', ops: [{ op: 'add', key: 'counter', amount: 7 }] },
      { participant: 'p3', ops: [{ op: 'add', key: 'counter', amount: 7 }] },
    ]);
    expect(caseBranches('abort', 2)[2]).toEqual({
      participant: 'p3',
      ops: [
        { op: 'add', key: 'counter', amount: 2 },
        { op: 'add', key: 'guard', amount: -1, min: 0 },
      ],
    });
  });

  it('counts a point as recovered only when all its applicable cases passed', () => {
    const passed = new Set(plan.filter((c) => c.applicable).map((c) => caseKey(c)));
    expect(pointsRecovered(plan, passed)).toEqual({ pointsOk: 12, points: 12 });
    passed.delete('abort:coordinator.after-decision-logged');
    expect(pointsRecovered(plan, passed)).toEqual({ pointsOk: 11, points: 12 });
    expect(summaryLine({ pointsOk: 10, points: 11, casesOk: 15, cases: 16, ackedLost: 0 })).toBe('crash points 10/11, cases 15/16, acked lost 0');
  });

  it('checks the WAL against what each point says is written', () => {
    const wal = [
      { type: 'PREPARED', txId: 'tx-1' },
      { type: 'COMMITTED', txId: 'tx-1' },
      { type: 'PREPARED', txId: 'tx-2' },
    ];
    expect(walProblems('participant.after-commit-logged', wal, 'tx-1')).toEqual([]);
    expect(walProblems('participant.before-commit-logged', wal, 'tx-2')).toEqual([]);
    expect(walProblems('participant.after-resource-prepared', wal, 'tx-3')).toEqual([]);
    expect(walProblems('participant.after-resource-prepared', wal, 'tx-2')).toEqual([
      'PREPARED for tx-2 is already in the WAL at participant.after-resource-prepared',
    ]);
    expect(walProblems('participant.before-commit-logged', wal, 'tx-1')).toEqual([
      'COMMITTED for tx-1 is already in the WAL at participant.before-commit-logged',
    ]);
    expect(walProblems('coordinator.after-decision-logged', [{ type: 'BOOT' }], 'tx-1')).toEqual([
      'DECISION for tx-1 is missing from the WAL at coordinator.after-decision-logged',
    ]);
  });
});
