/**
 * The crash-point enumeration plan: every named crash point
 * (shared/crash-points.ts) on the commit path and on the abort path, with the
 * node it is armed on and whether the path reaches it. Pure, so the plan is
 * unit-tested apart from the processes that run it.
 *
 * The transaction has a branch on each of p1, p2 and p3. On the abort path p3
 * votes no (an `add` below its `min`), and p1 and p2 vote yes. Participant
 * points are armed on p2: it votes yes on both paths, so it is prepared when
 * the decision reaches it.
 */
import { CRASH_POINTS, type CrashPoint } from '../shared/crash-points.ts';

export type CrashPath = 'commit' | 'abort';

export interface CrashCase {
  readonly point: CrashPoint;
  readonly path: CrashPath;
  /** The node armed: `coordinator` or a participant's name. */
  readonly node: string;
  /** False when the path never reaches the point; such a case is listed, not run. */
  readonly applicable: boolean;
  /** Why the point fires on this path, or why it cannot. */
  readonly why: string;
  /** The outcome every participant must end with after recovery. */
  readonly expected: 'committed' | 'aborted';
}

/** The participant whose crash points are armed; it votes yes on both paths. */
export const CRASHING_PARTICIPANT = 'p2';
/** The participant that votes no on the abort path. */
export const NO_VOTER = 'p3';
export const PLAN_PARTICIPANTS = ['p1', 'p2', 'p3'] as const;

const NOT_ON_PATH: Readonly<Record<CrashPath, Readonly<Partial<Record<CrashPoint, string>>>>> = {
  commit: {
    'coordinator.after-first-abort-sent': 'every vote is yes, so no ABORT is ever sent',
    'participant.before-abort-logged': 'p2 votes yes and the decision is commit, so it never aborts',
    'participant.after-abort-logged': 'p2 votes yes and the decision is commit, so it never aborts',
  },
  abort: {
    'coordinator.after-first-commit-sent': 'p3 votes no, so no COMMIT is ever sent',
    'participant.before-commit-logged': 'the decision is abort, so p2 never commits',
    'participant.after-commit-logged': 'the decision is abort, so p2 never commits',
  },
};

/**
 * On the commit path, a crash before the COMMIT decision is durable ends in
 * abort: the coordinator has no decision after its restart (presumed abort),
 * or p2 died before its vote reached the coordinator (before or after its
 * resource prepared: recovery rolls back what the resource prepared). From the forced
 * DECISION on, the outcome is commit. The abort path always aborts.
 */
const ABORTS_ON_COMMIT_PATH: ReadonlySet<CrashPoint> = new Set<CrashPoint>([
  'coordinator.after-prepare-sent',
  'coordinator.before-decision-logged',
  'participant.after-resource-prepared',
  'participant.after-prepare-logged',
]);

export function crashPlan(): CrashCase[] {
  const cases: CrashCase[] = [];
  for (const path of ['commit', 'abort'] as const) {
    for (const [name, when] of Object.entries(CRASH_POINTS) as [CrashPoint, string][]) {
      const notHere = NOT_ON_PATH[path][name];
      cases.push({
        point: name,
        path,
        node: name.startsWith('coordinator.') ? 'coordinator' : CRASHING_PARTICIPANT,
        applicable: notHere === undefined,
        why: notHere ?? when,
        expected: path === 'commit' && !ABORTS_ON_COMMIT_PATH.has(name) ? 'committed' : 'aborted',
      });
    }
  }
  return cases;
}

/**
 * The transaction of one case: `amount` added to a counter on every
 * participant; on the abort path p3's branch also takes 1 from a key that is
 * 0, below its min of 0, so p3 votes no. Distinct amounts per case make a
 * transaction applied twice show up in the sums.
 */
export function caseBranches(path: CrashPath, amount: number): { participant: string; ops: unknown[] }[] {
  return PLAN_PARTICIPANTS.map((participant) => ({
    participant,
    ops: [
      { op: 'add', key: 'counter', amount },
      ...(path === 'abort' && participant === NO_VOTER ? [{ op: 'add', key: 'guard', amount: -1, min: 0 }] : []),
    ],
  }));
}

/** The line the contract asks for: `crash points X/X, cases Y/Y, acked lost 0`. */
export function summaryLine(s: { pointsOk: number; points: number; casesOk: number; cases: number; ackedLost: number }): string {
  return `crash points ${s.pointsOk}/${s.points}, cases ${s.casesOk}/${s.cases}, acked lost ${s.ackedLost}`;
}

/**
 * A point counts as crashed-and-recovered when every applicable case of it
 * passed, and at least one was applicable.
 */
export function pointsRecovered(cases: readonly CrashCase[], passed: ReadonlySet<string>): { pointsOk: number; points: number } {
  const points = [...new Set(cases.map((c) => c.point))];
  const pointsOk = points.filter((p) => {
    const run = cases.filter((c) => c.point === p && c.applicable);
    return run.length > 0 && run.every((c) => passed.has(caseKey(c)));
  }).length;
  return { pointsOk, points: points.length };
}

export const caseKey = (c: Pick<CrashCase, 'point' | 'path'>): string => `${c.path}:${c.point}`;

/**
 * What the crashed node's WAL must hold for the case's transaction when the
 * process dies at each point: the records the point's description says are
 * written, and those it says are not yet. Read from the dead node's log
 * directory before it restarts, this checks that the point fired where it
 * claims to, not merely that recovery coped with wherever it fired.
 */
export const WAL_AT_POINT: Readonly<Record<CrashPoint, { readonly present: readonly string[]; readonly absent: readonly string[] }>> = {
  'coordinator.after-prepare-sent': { present: [], absent: ['DECISION', 'END'] },
  'coordinator.before-decision-logged': { present: [], absent: ['DECISION', 'END'] },
  'coordinator.after-decision-logged': { present: ['DECISION'], absent: ['END'] },
  'coordinator.after-first-commit-sent': { present: ['DECISION'], absent: ['END'] },
  'coordinator.after-first-abort-sent': { present: ['DECISION'], absent: ['END'] },
  'coordinator.before-end-logged': { present: ['DECISION'], absent: ['END'] },
  'participant.after-resource-prepared': { present: [], absent: ['PREPARED', 'COMMITTED', 'ABORTED'] },
  'participant.after-prepare-logged': { present: ['PREPARED'], absent: ['COMMITTED', 'ABORTED'] },
  'participant.before-commit-logged': { present: ['PREPARED'], absent: ['COMMITTED', 'ABORTED'] },
  'participant.after-commit-logged': { present: ['PREPARED', 'COMMITTED'], absent: ['ABORTED'] },
  'participant.before-abort-logged': { present: ['PREPARED'], absent: ['COMMITTED', 'ABORTED'] },
  'participant.after-abort-logged': { present: ['PREPARED', 'ABORTED'], absent: ['COMMITTED'] },
};

/** Problems with the WAL found at a crash point, as sentences; empty when it matches WAL_AT_POINT. */
export function walProblems(point: CrashPoint, records: readonly { readonly type: string; readonly txId?: string }[], txId: string): string[] {
  const mine = new Set(records.filter((r) => r.txId === txId).map((r) => r.type));
  const want = WAL_AT_POINT[point];
  return [
    ...want.present.filter((t) => !mine.has(t)).map((t) => `${t} for ${txId} is missing from the WAL at ${point}`),
    ...want.absent.filter((t) => mine.has(t)).map((t) => `${t} for ${txId} is already in the WAL at ${point}`),
  ];
}
