/**
 * The soaks' nemesis, once: the bank workload both soaks run, their cycle loop (a fault phase,
 * then a quiet period, a quiescent total read every few cycles) until N kills were made or the
 * time ran out, killing victims together, and the heal-and-judge tail. Each soak brings its own
 * fault phase and its victim picker: the chaos soak kills any node of a single coordinator's
 * cluster behind fault proxies (scenarios/soak.ts); the failover soak kills the leader, the
 * follower, a participant or an etcd member of an HA group (scenarios/failover-soak.ts).
 *
 * The random draws stay in each soak's fault phase, in its own order, so a seed replays the
 * faults it did before this loop was shared.
 */
import { BankClient, type BankCluster } from './bank-client.ts';
import { checkBank, reportChecks } from './checker.ts';
import { sleep } from './kit.ts';
import { createPrng, type Prng } from './prng.ts';
import { check, type ScenarioCheck } from './scenario.ts';
import type { BankOptions } from './workloads/bank.ts';

export const SOAK_BANK: BankOptions = { participants: ['p1', 'p2', 'p3'], accountsPerParticipant: 5, openingBalance: 100 };
const AMOUNT_MAX = 40;
const CONCURRENCY = 4;
const TRANSFERS_MAX = 200_000;
const COMMIT_TIMEOUT_MS = 10_000;
export const KILLS_DEFAULT = 20;
const DURATION_MIN_MS = 60_000;
const READ_EVERY_CYCLES = 3;
const READ_WAIT_MS = 15_000;
const HEAL_WAIT_MS = 120_000;
/** A progress line every this many cycles. */
const SAY_EVERY_CYCLES = 10;
/** The delay between a SIGKILL and the restart, in ms. */
export const DOWN_MS: readonly [number, number] = [0, 1_500];

export interface Nemesis {
  kills: number;
  /** Kills by the label of each victim (a node's name, or a kind such as "leader"). */
  killsBy: Record<string, number>;
  pauses: number;
  cycles: number;
}

/** A process (or etcd member) the nemesis can kill and start again. */
export interface Victim {
  readonly label: string;
  kill(): Promise<unknown>;
  start(): Promise<void>;
}

/** How long a soak of `killsTarget` kills may run when no --duration is given. */
export function soakDurationMs(killsTarget: number, durationPerKillMs: number): number {
  return Math.max(DURATION_MIN_MS, killsTarget * durationPerKillMs);
}

/** The soaks' bank client, its interleaving drawn from the seed after the nemesis's. */
export function soakClient(c: BankCluster, seed: number): BankClient {
  return new BankClient(c, { bank: SOAK_BANK, rng: createPrng(seed + 1), concurrency: CONCURRENCY, transfersMax: TRANSFERS_MAX, amountMax: AMOUNT_MAX, commitTimeoutMs: COMMIT_TIMEOUT_MS });
}

/** SIGKILLs `victims` together, counts them, waits `downMs`, and starts them again together. */
export async function killTogether(victims: readonly Victim[], downMs: number, n: Nemesis): Promise<void> {
  await Promise.all(victims.map((v) => v.kill()));
  for (const v of victims) {
    n.kills++;
    n.killsBy[v.label] = (n.killsBy[v.label] ?? 0) + 1;
  }
  await sleep(downMs);
  await Promise.all(victims.map((v) => v.start()));
}

export interface CycleOptions {
  readonly n: Nemesis;
  readonly client: BankClient;
  readonly rng: Prng;
  readonly killsTarget: number;
  readonly started: number;
  readonly durationMs: number;
  readonly quietMs: readonly [number, number];
  readonly say: (line: string) => void;
  /** One fault phase; it leaves every node running again (the quiet period begins after it). */
  readonly faultPhase: () => Promise<void>;
}

/** Fault phase, quiet period, a quiescent read every READ_EVERY_CYCLES, until the kills are made or the time is up. */
export async function runCycles(o: CycleOptions): Promise<void> {
  const { n, client } = o;
  const deadline = o.started + o.durationMs;
  while (n.kills < o.killsTarget && Date.now() < deadline) {
    n.cycles++;
    await o.faultPhase();
    await sleep(o.rng.int(...o.quietMs));
    if (n.cycles % READ_EVERY_CYCLES === 0) await client.quiescentRead(READ_WAIT_MS);
    if (n.cycles % SAY_EVERY_CYCLES === 0) {
      o.say(`  cycle ${n.cycles}: kills ${n.kills}/${o.killsTarget}, pauses ${n.pauses}, transfers ${client.transfersStarted}, ${Math.round((Date.now() - o.started) / 1000)} s`);
    }
  }
}

/**
 * With the client stopped and every node running again: waits (bounded) until nothing is in
 * doubt anywhere, reads the total once more and judges the whole history. Also returns the
 * figures both soaks report; each adds its own.
 */
export async function healAndJudge(c: BankCluster, client: BankClient, n: Nemesis, killsTarget: number, seed: number) {
  const healStart = Date.now();
  const converged = await c.waitSettled(HEAL_WAIT_MS, { coordinator: true });
  const convergeMs = Date.now() - healStart;
  await client.quiescentRead(READ_WAIT_MS);
  const final = await client.observe();
  const report = checkBank({ opening: client.opening, history: client.history, reads: client.reads, final });
  const checks: ScenarioCheck[] = reportChecks(report);
  checks.push(check('converged after the heal phase', converged, `${convergeMs} ms`));
  checks.push(check('kills made', n.kills >= killsTarget, `${n.kills} of ${killsTarget}`));
  const figures: Record<string, number | string> = {
    seed,
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
  };
  return { report, final, checks, convergeMs, figures };
}
