/**
 * `twopc scenario run crash-points`: every named crash point, on the commit
 * path and on the abort path (scenarios/crash-plan.ts), on one cluster of
 * real processes reused case after case with a fresh transaction each time.
 *
 * One case: arm the point on its node, run a transaction with a branch on
 * p1, p2 and p3, wait for the node to SIGKILL itself, restart it, wait until
 * nothing is in doubt anywhere, then check:
 *   - the node died at the point (SIGKILL by itself), and its WAL holds
 *     exactly what the point says (read before the restart),
 *   - agreement: every participant ends with the same outcome,
 *   - the outcome is the one this point must lead to (commit once the
 *     decision is durable, presumed abort before),
 *   - an outcome the client was told is the outcome every participant has,
 *   - nothing is in doubt after recovery,
 *   - nothing applied twice or lost: each participant's counter equals the
 *     sum of the amounts of the transactions that committed.
 * It prints `crash points X/X, cases Y/Y, acked lost 0`.
 */
import { finalOutcome } from './checker.ts';
import { caseBranches, caseKey, crashPlan, NO_VOTER, PLAN_PARTICIPANTS, pointsRecovered, summaryLine, walProblems, type CrashCase } from './crash-plan.ts';
import { COORDINATOR_RECORD_CODES } from '../coordinator/runtime/records.ts';
import { PARTICIPANT_RECORD_CODES } from '../participant/runtime/records.ts';
import { inspectWal } from '../wal/inspect.ts';
import { ScenarioCluster, waitFor } from './kit.ts';
import { check, result, type ScenarioCheck, type ScenarioContext, type ScenarioResult } from './scenario.ts';
import { createProgress } from './progress.ts';

const CRASH_WAIT_MS = 15_000;
const TX_TIMEOUT_MS = 15_000;
/** Recovery of a case: the restarted node's inquiries back off, so allow a while. */
const SETTLE_WAIT_MS = 60_000;
const TIMELINE_EVENTS_MAX = 2_000;
/** Records are small JSON; a preview this long is the whole payload. */
const PREVIEW_CHARS_MAX = 65_536;

interface CaseReport {
  readonly c: CrashCase;
  readonly ok: boolean;
  readonly ackedLost: boolean;
  readonly detail: string;
  readonly ms: number;
}

const RECORD_NAMES = new Map<number, string>(
  [...Object.entries(COORDINATOR_RECORD_CODES), ...Object.entries(PARTICIPANT_RECORD_CODES)].map(([name, code]) => [code, name]),
);

/** The records of a (dead) node's WAL, by type name and txId. Read-only: the WAL is not opened for writing. */
async function walRecords(dir: string): Promise<{ type: string; txId?: string }[]> {
  const report = await inspectWal(dir, { previewChars: PREVIEW_CHARS_MAX });
  return report.entries.map((e) => {
    let txId: string | undefined;
    try {
      const v = JSON.parse(e.preview) as { txId?: unknown };
      if (typeof v.txId === 'string') txId = v.txId;
    } catch {
      // Not JSON (a shortened preview): no txId.
    }
    return { type: RECORD_NAMES.get(e.type) ?? `type ${e.type}`, ...(txId ? { txId } : {}) };
  });
}

/** Transaction ids any participant has logged, to find the one a case created when the client got no answer. */
function txIdsLogged(c: ScenarioCluster): Set<string> {
  const ids = new Set<string>();
  for (const n of PLAN_PARTICIPANTS) for (const l of c.logLines(n)) if (l.txId) ids.add(l.txId);
  return ids;
}

async function runCase(c: ScenarioCluster, cs: CrashCase, amount: number, expected: Record<string, number>, known: Set<string>): Promise<CaseReport> {
  const t0 = Date.now();
  const problems: string[] = [];
  const armed = await c.arm(cs.node, cs.point);
  if (!armed) problems.push(`could not arm ${cs.point} on ${cs.node}`);
  const reply = await c.runTx(caseBranches(cs.path, amount), TX_TIMEOUT_MS);
  const exit = await c.waitCrash(cs.node, CRASH_WAIT_MS, cs.point);
  const died = exit?.signal === 'SIGKILL';
  if (!died) {
    problems.push(`${cs.node} did not die at the point (${exit ? JSON.stringify(exit) : 'still running'})`);
    // Disarm the only way there is: a restart.
    await c.node(cs.node).stop();
  }

  const told = reply.ok && reply.status === 200 && typeof reply.body.outcome === 'string' ? String(reply.body.outcome) : undefined;
  let txId = reply.ok && typeof reply.body.txId === 'string' ? reply.body.txId : undefined;
  if (txId === undefined) {
    // The client got no answer: the case's transaction is the one id the participants logged that no earlier case used.
    const fresh = await waitFor(async () => {
      const ids = [...txIdsLogged(c)].filter((id) => !known.has(id));
      return ids.length > 0 ? ids : undefined;
    }, 5_000, 100);
    if (fresh?.length === 1) txId = fresh[0];
    else problems.push(`cannot tell the case's transaction from the logs (${fresh?.length ?? 0} new ids)`);
  }
  if (txId !== undefined && died) problems.push(...walProblems(cs.point, await walRecords(c.walDir(cs.node)), txId));

  await c.start(cs.node);
  if (txId !== undefined) known.add(txId);
  for (const id of txIdsLogged(c)) known.add(id);

  const settled = await c.waitSettled(SETTLE_WAIT_MS, { coordinator: true });
  if (!settled) problems.push(`still in doubt ${SETTLE_WAIT_MS} ms after the restart`);

  let ackedLost = false;
  if (txId !== undefined) {
    const states: Record<string, string> = {};
    for (const n of PLAN_PARTICIPANTS) states[n] = (await c.txState(n, txId)) ?? 'no answer';
    const outcome = finalOutcome(states, PLAN_PARTICIPANTS);
    if (outcome === 'split') problems.push(`split outcome ${JSON.stringify(states)}`);
    if (outcome === 'in-doubt') problems.push(`in doubt ${JSON.stringify(states)}`);
    if (outcome !== cs.expected) problems.push(`ended ${outcome}, expected ${cs.expected} ${JSON.stringify(states)}`);
    if (told !== undefined && told !== outcome) {
      ackedLost = true;
      problems.push(`the client was told ${told}, the participants say ${JSON.stringify(states)}`);
    }
    if (outcome === 'committed') for (const n of PLAN_PARTICIPANTS) expected[n] = (expected[n] ?? 0) + amount;
  }
  for (const n of PLAN_PARTICIPANTS) {
    const kv = await c.kv(n);
    const counter = kv?.counter ?? 0;
    if (counter !== (expected[n] ?? 0)) problems.push(`${n} counter is ${String(counter)}, expected ${expected[n]}`);
    if (n === NO_VOTER && (kv?.guard ?? 0) !== 0) problems.push(`${n} guard is ${String(kv?.guard)}, expected 0`);
  }
  const detail = problems.length === 0 ? `${txId}: ${cs.expected} everywhere${told ? ` (client told ${told})` : ' (client got no answer)'}, recovered in ${((Date.now() - t0) / 1000).toFixed(1)} s` : problems.join('; ');
  return { c: cs, ok: problems.length === 0, ackedLost, detail, ms: Date.now() - t0 };
}

export async function runCrashPoints(ctx: ScenarioContext): Promise<ScenarioResult> {
  const plan = crashPlan();
  // The bar counts the plan's cases; each narration line first erases it, and the next case redraws it.
  const progress = createProgress({ label: 'crash-points cases', total: plan.length, json: ctx.json });
  const say = (line: string): void => {
    progress.finish();
    ctx.log(line);
  };
  const started = Date.now();
  const c = await ScenarioCluster.start({ prefix: 'crash-points', seed: ctx.seed, keepData: ctx.keepData === true });
  const reports: CaseReport[] = [];
  const checks: ScenarioCheck[] = [];
  let timeline: ReturnType<ScenarioCluster['timeline']> | undefined;
  try {
    const expected: Record<string, number> = {};
    const known = new Set<string>();
    let amount = 0;
    for (const [i, cs] of plan.entries()) {
      progress.update(i);
      if (!cs.applicable) {
        say(`n/a   ${cs.path.padEnd(6)} ${cs.point}: ${cs.why}`);
        checks.push(check(`${cs.path} ${cs.point}`, true, `not applicable: ${cs.why}`));
        continue;
      }
      amount += 1;
      const r = await runCase(c, cs, amount, expected, known);
      reports.push(r);
      say(`${r.ok ? 'ok   ' : 'FAIL '} ${cs.path.padEnd(6)} ${cs.point} on ${cs.node}: ${r.detail}`);
      checks.push(check(`${cs.path} ${cs.point}`, r.ok, r.detail));
    }
    // Read before close(): the node logs go with the data directory.
    if (ctx.timeline) timeline = c.timeline({ eventsMax: TIMELINE_EVENTS_MAX });
  } finally {
    progress.finish();
    await c.close();
    if (ctx.keepData) say(`data and node logs kept in ${c.dataDir}`);
  }
  const passed = new Set(reports.filter((r) => r.ok).map((r) => caseKey(r.c)));
  const { pointsOk, points } = pointsRecovered(plan, passed);
  const ackedLost = reports.filter((r) => r.ackedLost).length;
  const line = summaryLine({ pointsOk, points, casesOk: passed.size, cases: reports.length, ackedLost });
  say(line);
  checks.push(check('every point crashed and recovered', pointsOk === points, line));
  return result('crash-points', checks, {
    summary: line,
    points,
    pointsOk,
    cases: reports.length,
    casesOk: passed.size,
    notApplicable: plan.filter((x) => !x.applicable).length,
    ackedLost,
    durationMs: Date.now() - started,
    slowestCaseMs: Math.max(0, ...reports.map((r) => r.ms)),
  }, { ...(timeline ? { timeline } : {}), lanes: c.lanes });
}
