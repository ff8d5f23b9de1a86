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
import { failureReasons, type BankClient } from './bank-client.ts';
import { HaCluster } from './ha-kit.ts';
import { sleep } from './kit.ts';
import { DOWN_MS, healAndJudge, KILLS_DEFAULT, killTogether, runCycles, soakClient, soakDurationMs, type Nemesis, type Victim } from './nemesis.ts';
import { createPrng, type Prng } from './prng.ts';
import { check, result, type ScenarioContext, type ScenarioResult } from './scenario.ts';

const DURATION_PER_KILL_MS = 10_000;
/** A short lease keeps CI's run short; the mechanism is the same at 2 s. */
const LEASE_MS = 1_000;
const QUIET_MS: readonly [number, number] = [300, 1_000];
/** One cycle in this many pauses the leader past its lease. */
const PAUSE_EVERY_CYCLES = 4;
/** The etcd member the nemesis kills: one of three, so a quorum always remains. */
const ETCD_VICTIM = 1;
const KINDS = ['leader', 'follower', 'participant', 'etcd'] as const;

type Kind = (typeof KINDS)[number];
type Killable = Omit<Victim, 'label'>;

/** The process (or etcd member) that `kind` names now; the leader is asked for, never assumed. */
async function victimOf(c: HaCluster, kind: Kind, rng: Prng): Promise<Killable | undefined> {
  if (kind === 'etcd') return c.etcd.members[ETCD_VICTIM];
  if (kind === 'participant') return rng.pick(c.participants);
  const leader = await c.leader(15_000);
  return kind === 'leader' ? leader : c.coordinators.find((x) => x !== leader);
}

/** The victims of `kinds`, each process once, labelled by its kind. */
async function victimsOf(c: HaCluster, kinds: readonly Kind[], rng: Prng): Promise<Victim[]> {
  const victims: { label: Kind; v: Killable }[] = [];
  for (const kind of kinds) {
    const v = await victimOf(c, kind, rng);
    if (v !== undefined && !victims.some((x) => x.v === v)) victims.push({ label: kind, v });
  }
  return victims.map(({ label, v }) => ({ label, kill: () => v.kill(), start: () => v.start() }));
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
  const durationMs = ctx.durationMs ?? soakDurationMs(killsTarget, DURATION_PER_KILL_MS);
  const rng = createPrng(ctx.seed);
  const started = Date.now();
  const c = await HaCluster.start({ prefix: 'failover-soak', etcdMembers: 3, leaseMs: LEASE_MS, keepData: ctx.keepData === true });
  let client: BankClient | undefined;
  try {
    await c.leader();
    c.trackLeader();
    client = soakClient(c, ctx.seed);
    await client.open();
    say(`failover-soak: seed ${ctx.seed}, ${killsTarget} kills within ${Math.round(durationMs / 1000)} s, lease ${LEASE_MS} ms, 3 etcd members, 2 coordinators, 3 participants`);
    client.start();
    const n: Nemesis = { kills: 0, killsBy: {}, pauses: 0, cycles: 0 };
    const faultPhase = async (): Promise<void> => {
      // Each kind in turn, and most cycles a second victim of another kind at the same moment.
      const kinds: Kind[] = [KINDS[(n.cycles - 1) % KINDS.length] as Kind];
      if (rng.next() < 0.7) kinds.push(rng.pick(KINDS.filter((k) => k !== kinds[0])));
      const downMs = rng.int(...DOWN_MS); // Drawn before the victims, as it always was: a seed replays its faults.
      await killTogether(await victimsOf(c, kinds, rng), downMs, n);
      if (n.cycles % PAUSE_EVERY_CYCLES === 0) await pauseLeader(c, n);
    };
    await runCycles({ n, client, rng, killsTarget, started, durationMs, quietMs: QUIET_MS, say, faultPhase });
    await client.stop();
    for (const x of c.nodes) if (!x.running) await x.start();
    const { report, checks, convergeMs, figures: common } = await healAndJudge(c, client, n, killsTarget, ctx.seed);
    await sleep(200); // pino writes asynchronously: let the last log lines land.
    const blocked = c.inDoubtMs().sort((a, b) => a - b);
    checks.push(check('every kind of node was killed', KINDS.every((k) => (n.killsBy[k] ?? 0) > 0) || n.kills < KINDS.length, JSON.stringify(n.killsBy)));
    const figures: Record<string, number | string> = {
      ...common,
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
