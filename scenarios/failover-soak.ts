/**
 * `twopc scenario run failover-soak [--seed S] [--kills N] [--duration D]`: the
 * bank workload on an HA cluster (scenarios/ha-kit.ts: three etcd members, two
 * coordinators of one group, three participants) while a nemesis runs cycles of
 *
 *   fault phase:  SIGKILL of the leader, the follower, a participant, or one
 *                 etcd member (always the same one of three: a quorum stays),
 *                 in turn so each kind is hit, with a restart after a random
 *                 delay; now and then the leader SIGSTOPped past its lease and
 *                 resumed while the other member leads (fencing);
 *   quiet period: everything running again; every third one ends with a
 *                 quiescent total read;
 *
 * until N kills were made or D ran out (CI: 20 kills; a longer run with
 * `--kills 200` or TWOPC_FAILOVER_SOAK_KILLS). Then the heal phase: stop the
 * client, restart everything, wait (bounded) until nothing is in doubt, and
 * judge the history with the checker (scenarios/checker.ts): acked lost 0,
 * split 0, in doubt 0, total unchanged.
 */
import { BankClient, failureReasons } from './bank-client.ts';
import { checkBank, reportChecks } from './checker.ts';
import { HaCluster } from './ha-kit.ts';
import { sleep } from './kit.ts';
import { createPrng } from './prng.ts';
import { check, result, type ScenarioCheck, type ScenarioContext, type ScenarioResult } from './scenario.ts';
import type { BankOptions } from './workloads/bank.ts';

const BANK: BankOptions = { participants: ['p1', 'p2', 'p3'], accountsPerParticipant: 5, openingBalance: 100 };
const AMOUNT_MAX = 40;
const CONCURRENCY = 4;
const TRANSFERS_MAX = 200_000;
const KILLS_DEFAULT = 20;
const DURATION_PER_KILL_MS = 10_000;
const DURATION_MIN_MS = 60_000;
/** A short lease keeps CI's run short; the mechanism is the same at 2 s. */
const LEASE_MS = 1_000;
const READ_EVERY_CYCLES = 3;
const READ_WAIT_MS = 15_000;
const HEAL_WAIT_MS = 120_000;
const DOWN_MS: readonly [number, number] = [0, 1_500];
const QUIET_MS: readonly [number, number] = [300, 1_000];
/** One cycle in this many pauses the leader past its lease. */
const PAUSE_EVERY_CYCLES = 4;
/** The etcd member the nemesis kills: one of three, so a quorum always remains. */
const ETCD_VICTIM = 1;
const KINDS = ['leader', 'follower', 'participant', 'etcd'] as const;

interface Nemesis {
  kills: number;
  killsBy: Record<string, number>;
  pauses: number;
  cycles: number;
}

type Kind = (typeof KINDS)[number];

/** The process (or etcd member) that `kind` names now; the leader is asked for, never assumed. */
async function victimOf(c: HaCluster, kind: Kind, pick: <T>(xs: readonly T[]) => T): Promise<{ kill(): Promise<unknown>; start(): Promise<void> } | undefined> {
  if (kind === 'etcd') return c.etcd.members[ETCD_VICTIM];
  if (kind === 'participant') return pick(c.participants);
  const leader = await c.leader(15_000);
  return kind === 'leader' ? leader : c.coordinators.find((x) => x !== leader);
}

/** SIGKILLs the victims of `kinds` together, waits `downMs`, and restarts them together. */
async function killTogether(c: HaCluster, kinds: readonly Kind[], pick: <T>(xs: readonly T[]) => T, downMs: number, n: Nemesis): Promise<void> {
  const victims: { kind: Kind; v: { kill(): Promise<unknown>; start(): Promise<void> } }[] = [];
  for (const kind of kinds) {
    const v = await victimOf(c, kind, pick);
    if (v !== undefined && !victims.some((x) => x.v === v)) victims.push({ kind, v });
  }
  await Promise.all(victims.map((x) => x.v.kill()));
  for (const { kind } of victims) {
    n.kills++;
    n.killsBy[kind] = (n.killsBy[kind] ?? 0) + 1;
  }
  await sleep(downMs);
  await Promise.all(victims.map((x) => x.v.start()));
}

/** The leader stopped past its lease, resumed once the other member leads (or the wait runs out). */
async function pauseLeader(c: HaCluster, n: Nemesis): Promise<void> {
  const leader = await c.leader(15_000);
  if (leader === undefined) return;
  leader.pause();
  n.pauses++;
  await sleep(c.leaseMs);
  await c.leader(15_000);
  leader.resume();
}

export async function runFailoverSoak(ctx: ScenarioContext): Promise<ScenarioResult> {
  const say = ctx.log;
  const killsTarget = ctx.kills ?? (Number(process.env.TWOPC_FAILOVER_SOAK_KILLS) || KILLS_DEFAULT);
  const durationMs = ctx.durationMs ?? Math.max(DURATION_MIN_MS, killsTarget * DURATION_PER_KILL_MS);
  const rng = createPrng(ctx.seed);
  const started = Date.now();
  const c = await HaCluster.start({ prefix: 'failover-soak', etcdMembers: 3, leaseMs: LEASE_MS, keepData: ctx.keepData === true });
  let client: BankClient | undefined;
  try {
    await c.leader();
    c.trackLeader();
    client = new BankClient(c, { bank: BANK, rng: createPrng(ctx.seed + 1), concurrency: CONCURRENCY, transfersMax: TRANSFERS_MAX, amountMax: AMOUNT_MAX, commitTimeoutMs: 10_000 });
    await client.open();
    say(`failover-soak: seed ${ctx.seed}, ${killsTarget} kills within ${Math.round(durationMs / 1000)} s, lease ${LEASE_MS} ms, 3 etcd members, 2 coordinators, 3 participants`);
    client.start();
    const n: Nemesis = { kills: 0, killsBy: {}, pauses: 0, cycles: 0 };
    const deadline = started + durationMs;
    while (n.kills < killsTarget && Date.now() < deadline) {
      n.cycles++;
      // Each kind in turn, and most cycles a second victim of another kind at the same moment.
      const kinds: Kind[] = [KINDS[(n.cycles - 1) % KINDS.length] as Kind];
      if (rng.next() < 0.7) kinds.push(rng.pick(KINDS.filter((k) => k !== kinds[0])));
      await killTogether(c, kinds, (xs) => rng.pick(xs), rng.int(...DOWN_MS), n);
      if (n.cycles % PAUSE_EVERY_CYCLES === 0) await pauseLeader(c, n);
      await sleep(rng.int(...QUIET_MS));
      if (n.cycles % READ_EVERY_CYCLES === 0) await client.quiescentRead(READ_WAIT_MS);
      if (n.cycles % 10 === 0) say(`  cycle ${n.cycles}: kills ${n.kills}/${killsTarget}, pauses ${n.pauses}, transfers ${client.transfersStarted}, ${Math.round((Date.now() - started) / 1000)} s`);
    }
    await client.stop();
    for (const x of c.nodes) if (!x.running) await x.start();
    const healStart = Date.now();
    const converged = await c.waitSettled(HEAL_WAIT_MS, { coordinator: true });
    const convergeMs = Date.now() - healStart;
    await client.quiescentRead(READ_WAIT_MS);
    const final = await client.observe();
    const report = checkBank({ opening: client.opening, history: client.history, reads: client.reads, final });
    await sleep(200); // pino writes asynchronously: let the last log lines land.
    const blocked = c.inDoubtMs().sort((a, b) => a - b);
    const checks: ScenarioCheck[] = reportChecks(report);
    checks.push(check('converged after the heal phase', converged, `${convergeMs} ms`));
    checks.push(check('kills made', n.kills >= killsTarget, `${n.kills} of ${killsTarget}`));
    checks.push(check('every kind of node was killed', KINDS.every((k) => (n.killsBy[k] ?? 0) > 0) || n.kills < KINDS.length, JSON.stringify(n.killsBy)));
    const figures: Record<string, number | string> = {
      seed: ctx.seed,
      kills: n.kills,
      killsBy: Object.entries(n.killsBy).sort().map(([k, v]) => `${k}:${v}`).join(' '),
      pauses: n.pauses,
      cycles: n.cycles,
      transfers: client.history.length,
      ok: report.counts.ok,
      fail: report.counts.fail,
      info: report.counts.info,
      committed: report.committed,
      ackedCommitsLost: report.ackedCommitsLost,
      ackedAbortsCommitted: report.ackedAbortsCommitted,
      splitOutcomes: report.splitOutcomes,
      inDoubtAtEnd: report.inDoubtAtEnd,
      total: report.finalTotal,
      expectedTotal: report.expectedTotal,
      convergeMs,
      inDoubtSamples: blocked.length,
      inDoubtMsP99: blocked[Math.floor(blocked.length * 0.99)] ?? 0,
      inDoubtMsMax: blocked.at(-1) ?? 0,
      durationMs: Date.now() - started,
    };
    say(`failover-soak: kills ${n.kills} (${figures.killsBy}), leader pauses ${n.pauses}; transfers ${client.history.length}: ok ${report.counts.ok}, fail ${report.counts.fail}, info ${report.counts.info}`);
    say(
      `  acked lost ${report.ackedCommitsLost + report.ackedAbortsCommitted}, split ${report.splitOutcomes}, in doubt at end ${report.inDoubtAtEnd}; ` +
        `total ${report.finalTotal}/${report.expectedTotal}; converged in ${convergeMs} ms; ${Math.round((Date.now() - started) / 1000)} s in all`,
    );
    say(`  in doubt (YES vote to outcome, ${blocked.length} participant branches): p99 ${figures.inDoubtMsP99} ms, longest ${figures.inDoubtMsMax} ms`);
    say(`  not ok, by reason: ${failureReasons(client.history)}`);
    for (const v of report.violations.slice(0, 10)) say(`  violation: ${v}`);
    return result('failover-soak', checks, figures);
  } finally {
    await client?.stop();
    await c.close();
    if (ctx.keepData) say(`data and node logs kept in ${c.dataDir}`);
  }
}
