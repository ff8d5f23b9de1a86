/**
 * HA scenarios on real processes (issue 10):
 *
 *   coordinator-failover   the leader dies right after logging COMMIT while every participant
 *                          is prepared; the standby takes over from etcd and every participant
 *                          settles without the old leader ever coming back. Beside it, the same
 *                          crash with a single coordinator, which blocks until it restarts.
 */
import { check, result, type ScenarioCheck, type ScenarioContext, type ScenarioResult } from './scenario.ts';
import { HaCluster } from './ha-kit.ts';
import { ScenarioCluster, sleep, waitFor } from './kit.ts';
import { COORDINATOR_LANE } from './timeline.ts';

const CRASH_WAIT_MS = 15_000;
const SETTLE_WAIT_MS = 45_000;
/**
 * How long the single coordinator stays down before it is restarted: what an operator or a
 * supervisor takes. Its participants' blocked time is this plus the restart; the HA group's does
 * not depend on it, because the old leader never comes back.
 */
const SINGLE_COORDINATOR_DOWN_MS = 5_000;
/** What the issue allows the standby: blocked at most one lease TTL plus this. */
const FAILOVER_SLACK_MS = 2_000;

const put = (participant: string, key: string, value: unknown) => ({ participant, ops: [{ op: 'put', key, value }] });
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Per participant: from its YES vote to its commit, read from its log (both stamped by that node's clock). */
function blockedMs(lines: (name: string, step: string) => { time?: number }[], names: readonly string[]): Record<string, number | undefined> {
  const out: Record<string, number | undefined> = {};
  for (const n of names) {
    const voted = lines(n, 'vote-yes')[0]?.time;
    const settled = lines(n, 'committed')[0]?.time;
    out[n] = voted !== undefined && settled !== undefined ? settled - voted : undefined;
  }
  return out;
}

const maxOf = (m: Record<string, number | undefined>): number | undefined => {
  const vs = Object.values(m);
  return vs.every((v) => v !== undefined) ? Math.max(...(vs as number[])) : undefined;
};

async function waitCommitted(names: readonly string[], txState: (n: string) => Promise<string | undefined>): Promise<boolean> {
  const done = await waitFor(async () => ((await Promise.all(names.map(txState))).every((s) => s === 'committed') ? true : undefined), SETTLE_WAIT_MS, 100);
  return done === true;
}

export async function coordinatorFailover(ctx: ScenarioContext): Promise<ScenarioResult> {
  const say = ctx.log;
  const checks: ScenarioCheck[] = [];
  const figures: Record<string, number | string> = {};
  const ha = await haFailover(ctx, checks, figures);
  say('');
  say(`4. The same crash with a single coordinator, restarted after ${secs(SINGLE_COORDINATOR_DOWN_MS)} down:`);
  await singleCoordinator(ctx, checks, figures);
  const single = figures.singleBlockedMsMax;
  say('');
  say(`Blocked (YES vote to commit, slowest participant): HA group ${ha === undefined ? '?' : secs(ha)}; single coordinator ${typeof single === 'number' ? secs(single) : '?'} (grows with its down time).`);
  return result('coordinator-failover', checks, figures);
}

/** The HA half; returns the slowest participant's blocked time. */
async function haFailover(ctx: ScenarioContext, checks: ScenarioCheck[], figures: Record<string, number | string>): Promise<number | undefined> {
  const say = ctx.log;
  const c = await HaCluster.start({ prefix: 'failover', keepData: ctx.keepData === true });
  try {
    const names = c.names;
    figures.leaseMs = c.leaseMs;
    const leader = await c.leader();
    if (leader === undefined) {
      checks.push(check('a leader is elected', false, 'no coordinator leads'));
      return undefined;
    }
    const standby = c.coordinators.find((x) => x !== leader);
    say(`1. etcd, coordinators ${c.coordinators.map((x) => x.name).join(' and ')} (group "failover", lease ${secs(c.leaseMs)}), participants ${names.join(', ')}.`);
    say(`   ${leader.name} leads; ${standby?.name ?? '?'} follows. ${leader.name} is armed to die right after its COMMIT decision is in etcd.`);
    await c.arm(leader, 'coordinator.after-decision-logged');
    const reply = await c.runTx(leader, names.map((n) => put(n, `order-${n}`, 'shipped')), 8_000);
    const exit = await c.waitExit(leader, CRASH_WAIT_MS);
    const downAt = Date.now();
    checks.push(check('the leader died after logging its decision', exit?.signal === 'SIGKILL' && !reply.ok, `exit ${JSON.stringify(exit ?? null)}`));
    const lists = await Promise.all(names.map((n) => c.inDoubt(n)));
    const txId = lists[0]?.[0]?.txId;
    say(`2. The client hears nothing; ${txId ?? '?'} is prepared at ${lists.filter((l) => l?.some((t) => t.txId === txId)).length} of ${names.length} participants.`);
    checks.push(check('every participant is prepared', txId !== undefined && lists.every((l) => l?.some((t) => t.txId === txId)), JSON.stringify(lists)));
    if (txId === undefined) return undefined;

    say(`3. ${standby?.name ?? '?'} waits for the lease to expire, wins the election, reads the log in etcd and resends COMMIT.`);
    const newLeader = await c.leader(SETTLE_WAIT_MS);
    const committed = await waitCommitted(names, (n) => c.txState(n, txId));
    const took = newLeader === undefined ? undefined : c.steps(newLeader.name, undefined, 'ha.elected').at(-1)?.time;
    if (took !== undefined) figures.takeoverMs = took - downAt;
    checks.push(check('the standby takes over', newLeader !== undefined && newLeader === standby, `leader now: ${newLeader?.name ?? 'none'}`));
    checks.push(check('every participant commits without the old leader restarting', committed && !leader.running, committed ? `committed at ${names.join(', ')}; ${leader.name} still down` : 'not committed everywhere in time'));
    const values = await Promise.all(names.map(async (n) => (await c.kvKey(n, `order-${n}`))?.value));
    checks.push(check('the committed values are applied', values.every((v) => v === 'shipped'), JSON.stringify(values)));

    await sleep(200); // pino writes asynchronously: let the last log lines land.
    const blocked = blockedMs((n, step) => c.steps(n, txId, step), names);
    for (const n of names) say(`   ${n}: committed after ${blocked[n] === undefined ? '?' : secs(blocked[n] as number)} in doubt`);
    const worst = maxOf(blocked);
    if (worst !== undefined) figures.haBlockedMsMax = worst;
    const bound = c.leaseMs + FAILOVER_SLACK_MS;
    checks.push(check(`blocked at most one lease plus ${secs(FAILOVER_SLACK_MS)} (${secs(bound)})`, worst !== undefined && worst <= bound, `slowest participant blocked ${worst ?? '?'} ms`));
    return worst;
  } finally {
    await c.close();
    if (ctx.keepData) ctx.log(`data and node logs kept in ${c.dataDir}`);
  }
}

/** The single-coordinator half: the same crash point, down for SINGLE_COORDINATOR_DOWN_MS, then restarted. */
async function singleCoordinator(ctx: ScenarioContext, checks: ScenarioCheck[], figures: Record<string, number | string>): Promise<void> {
  const c = await ScenarioCluster.start({ prefix: 'failover-single', seed: ctx.seed, keepData: ctx.keepData === true });
  try {
    const names = c.names;
    await c.arm(COORDINATOR_LANE, 'coordinator.after-decision-logged');
    await c.runTx(names.map((n) => put(n, `order-${n}`, 'shipped')), 8_000);
    await c.waitCrash(COORDINATOR_LANE, CRASH_WAIT_MS, 'coordinator.after-decision-logged');
    const txId = (await c.inDoubt(names[0] as string))?.[0]?.txId;
    if (txId === undefined) {
      checks.push(check('single coordinator: its participants are prepared', false, 'nothing in doubt'));
      return;
    }
    await sleep(SINGLE_COORDINATOR_DOWN_MS);
    const stillPrepared = (await Promise.all(names.map((n) => c.txState(n, txId)))).every((s) => s === 'prepared');
    checks.push(check('single coordinator: its participants stay prepared while it is down', stillPrepared, `after ${SINGLE_COORDINATOR_DOWN_MS} ms down`));
    await c.start(COORDINATOR_LANE);
    const committed = await waitCommitted(names, (n) => c.txState(n, txId));
    await sleep(200);
    const blocked = blockedMs((n, step) => c.steps(n, txId, step), names);
    for (const n of names) ctx.log(`   ${n}: committed after ${blocked[n] === undefined ? '?' : secs(blocked[n] as number)} in doubt`);
    const worst = maxOf(blocked);
    if (worst !== undefined) figures.singleBlockedMsMax = worst;
    figures.singleDownMs = SINGLE_COORDINATOR_DOWN_MS;
    checks.push(check('single coordinator: its participants commit only after it restarts', committed, committed ? 'committed after the restart' : 'not committed in time'));
  } finally {
    await c.close();
  }
}
