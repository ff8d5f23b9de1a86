/**
 * `twopc scenario run bank-postgres [--seed S] [--kills N] [--duration D]`: the bank
 * workload over two PostgreSQL databases and a key-value participant, while a
 * nemesis SIGKILLs the coordinator and the participants, and PostgreSQL itself is
 * crashed and restarted once while transactions are prepared in it.
 *
 *   p1  --resource postgres, database bank_a (accounts acct-p1-*)
 *   p2  --resource postgres, database bank_b (accounts acct-p2-*)
 *   p3  the key-value store               (accounts acct-p3-*)
 *
 * The PostgreSQL server is the scenario's own (initdb into a temp directory, a free
 * port; scenarios/postgres.ts), so restarting it breaks nobody else's tests. The
 * restart is `pg_ctl restart -m immediate`: no shutdown checkpoint, a crash that
 * prepared transactions must survive. It comes at half the kills, right after the
 * coordinator was killed at `coordinator.after-decision-logged`, so there are
 * branches prepared and in doubt in the databases when it happens.
 *
 * Then the heal phase, and the checker (scenarios/checker.ts) on the history and
 * the final balances, read from PostgreSQL (committed rows) and /v1/kv; and two
 * checks of the databases themselves: the total over all three is unchanged, and
 * nothing is left in pg_prepared_xacts.
 */
import { BankClient, failureReasons, infoOutcomes, type BankBranch } from './bank-client.ts';
import { checkBank, reportChecks } from './checker.ts';
import { restartDown, ScenarioCluster, sleep, waitFor } from './kit.ts';
import { OwnPostgres, preparedIn, sql } from './postgres.ts';
import { createPrng } from './prng.ts';
import { check, result, type ScenarioCheck, type ScenarioContext, type ScenarioResult } from './scenario.ts';
import { accounts, type BankOptions } from './workloads/bank.ts';

const BANK: BankOptions = { participants: ['p1', 'p2', 'p3'], accountsPerParticipant: 5, openingBalance: 100 };
const DATABASES: Readonly<Record<string, string>> = { p1: 'bank_a', p2: 'bank_b' };
const AMOUNT_MAX = 40;
const CONCURRENCY = 4;
const TRANSFERS_MAX = 100_000;
const KILLS_DEFAULT = 12;
/** Per kill, when no --duration is given: a restart of a tsx process takes seconds on a busy machine. */
const DURATION_PER_KILL_MS = 15_000;
const DURATION_MIN_MS = 90_000;
const DOWN_MS: readonly [number, number] = [0, 1_500];
const QUIET_MS: readonly [number, number] = [300, 1_500];
const READ_EVERY_CYCLES = 3;
const READ_WAIT_MS = 15_000;
const HEAL_WAIT_MS = 120_000;
const CRASH_WAIT_MS = 30_000;
/** How long to wait for a branch to be prepared in PostgreSQL before the restart goes ahead anyway. */
const PREPARED_WAIT_MS = 15_000;
/** A participant whose database is restarting exits at start (68, EXIT_CODES.databaseUnreachable): a few tries, a pause between. */
const RESTART_ATTEMPTS_MAX = 5;
const RESTART_RETRY_MS = 1_000;
const PG_LOCK_TIMEOUT_MS = 500;

const UPSERT = 'INSERT INTO accounts (id, balance) VALUES ($2, $1) ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance';
const ADD = 'UPDATE accounts SET balance = balance + $1 WHERE id = $2';

/** The bank's key-value ops for a PostgreSQL participant: `put` opens an account, `add` moves money (the CHECK stands for `min: 0`). */
export function bankBranchAsSql(b: BankBranch): BankBranch {
  if (DATABASES[b.participant] === undefined) return b;
  return {
    participant: b.participant,
    ops: b.ops.map((o) => {
      const op = o as { op: string; key: string; value?: number; amount?: number };
      if (op.op === 'put') return { op: 'sql', text: UPSERT, params: [op.value, op.key] };
      if (op.op === 'add') return { op: 'sql', text: ADD, params: [op.amount, op.key] };
      throw new Error(`the bank has no ${op.op} op for PostgreSQL`);
    }),
  };
}

interface Nemesis {
  kills: number;
  killsBy: Record<string, number>;
  cycles: number;
  restartFailures: number;
  pgRestarts: number;
  preparedAtPgRestart: number;
}

/** Starts a node that is down, retrying a failed start, said out loud (kit.ts restartDown). */
const restart = (c: ScenarioCluster, name: string, n: Nemesis, say: (line: string) => void): Promise<void> =>
  restartDown(c, name, {
    attemptsMax: RESTART_ATTEMPTS_MAX,
    retryMs: RESTART_RETRY_MS,
    onFailure: (attempt, message) => {
      n.restartFailures++;
      say(`  restart of ${name} failed (attempt ${attempt}): ${message}`);
    },
  });

async function preparedCount(pgServer: OwnPostgres): Promise<number> {
  let n = 0;
  for (const db of Object.values(DATABASES)) n += (await preparedIn(pgServer.url(db))).length;
  return n;
}

/**
 * Kills the coordinator right after a decision is logged (branches stay prepared in the
 * databases), waits until PostgreSQL holds something prepared, crashes and restarts
 * PostgreSQL, then brings the coordinator back.
 */
async function restartPostgresWhilePrepared(c: ScenarioCluster, pgServer: OwnPostgres, n: Nemesis, say: (line: string) => void): Promise<void> {
  const armed = await c.arm('coordinator', 'coordinator.after-decision-logged');
  const exit = armed ? await c.waitCrash('coordinator', CRASH_WAIT_MS, 'crash point after-decision-logged') : undefined;
  if (exit) {
    n.kills++;
    n.killsBy.coordinator = (n.killsBy.coordinator ?? 0) + 1;
  } else {
    say('  the coordinator did not reach its crash point in time; restarting PostgreSQL under the running workload');
  }
  const prepared = (await waitFor(async () => ((await preparedCount(pgServer)) > 0 ? preparedCount(pgServer) : undefined), PREPARED_WAIT_MS, 20)) ?? 0;
  n.preparedAtPgRestart = prepared;
  c.mark('coordinator', 'note', `PostgreSQL restart (${prepared} prepared)`);
  say(`  restarting PostgreSQL (immediate: a crash) with ${prepared} transaction(s) prepared in it`);
  await pgServer.restart('immediate');
  n.pgRestarts++;
  const after = await preparedCount(pgServer);
  say(`  PostgreSQL is back; ${after} transaction(s) still prepared in it`);
  await restart(c, 'coordinator', n, say);
}

async function databaseBalances(pgServer: OwnPostgres, participant: string): Promise<Record<string, unknown> | undefined> {
  const db = DATABASES[participant];
  if (db === undefined) return undefined;
  try {
    const rows = await sql<{ id: string; balance: number }>(pgServer.url(db), 'SELECT id, balance FROM accounts');
    return Object.fromEntries(rows.map((r) => [r.id, r.balance]));
  } catch {
    return undefined;
  }
}

export async function runBankPostgres(ctx: ScenarioContext): Promise<ScenarioResult> {
  const say = ctx.log;
  const killsTarget = ctx.kills ?? KILLS_DEFAULT;
  const durationMs = ctx.durationMs ?? Math.max(DURATION_MIN_MS, killsTarget * DURATION_PER_KILL_MS);
  const rng = createPrng(ctx.seed);
  const started = Date.now();
  const pgServer = await OwnPostgres.start('bank-postgres');
  let c: ScenarioCluster | undefined;
  let client: BankClient | undefined;
  try {
    for (const [participant, db] of Object.entries(DATABASES)) {
      await pgServer.createDatabase(db);
      await sql(pgServer.url(db), 'CREATE TABLE accounts (id text PRIMARY KEY, balance integer NOT NULL CHECK (balance >= 0))');
      say(`bank-postgres: ${participant} on PostgreSQL database ${db} at ${pgServer.serverUrl}`);
    }
    const pgArgs = (name: string) => {
      const db = DATABASES[name];
      return db === undefined ? [] : ['--resource', 'postgres', '--pg-url', pgServer.url(db), '--pg-lock-timeout-ms', String(PG_LOCK_TIMEOUT_MS)];
    };
    c = await ScenarioCluster.start({ prefix: 'bank-postgres', seed: ctx.seed, keepData: ctx.keepData === true, participantArgsOf: pgArgs });
    const cluster = c;
    client = new BankClient(cluster, {
      bank: BANK,
      rng: createPrng(ctx.seed + 1),
      concurrency: CONCURRENCY,
      transfersMax: TRANSFERS_MAX,
      amountMax: AMOUNT_MAX,
      commitTimeoutMs: 10_000,
      mapBranch: bankBranchAsSql,
      balancesOf: async (p) => (DATABASES[p] !== undefined ? databaseBalances(pgServer, p) : cluster.kv(p)),
    });
    await client.open();
    say(`bank-postgres: seed ${ctx.seed}, ${killsTarget} kills and one PostgreSQL restart within ${Math.round(durationMs / 1000)} s, ${accounts(BANK).length} accounts`);
    client.start();

    const n: Nemesis = { kills: 0, killsBy: {}, cycles: 0, restartFailures: 0, pgRestarts: 0, preparedAtPgRestart: 0 };
    const names = cluster.nodes.map((x) => x.name);
    const deadline = started + durationMs;
    while ((n.kills < killsTarget || n.pgRestarts === 0) && Date.now() < deadline) {
      n.cycles++;
      if (n.pgRestarts === 0 && n.kills >= Math.floor(killsTarget / 2)) {
        await restartPostgresWhilePrepared(cluster, pgServer, n, say);
      } else {
        // Often two or three at once: restarts run in parallel, and a coordinator and a
        // participant down together is a case of its own.
        const victims = new Set([rng.pick(names)]);
        if (rng.next() < 0.6) victims.add(rng.pick(names));
        if (rng.next() < 0.3) victims.add(rng.pick(names));
        await Promise.all([...victims].map((v) => cluster.kill(v)));
        n.kills += victims.size;
        for (const v of victims) n.killsBy[v] = (n.killsBy[v] ?? 0) + 1;
        await sleep(rng.int(...DOWN_MS));
      }
      await Promise.all(names.map((v) => restart(cluster, v, n, say)));
      await sleep(rng.int(...QUIET_MS));
      if (n.cycles % READ_EVERY_CYCLES === 0) await client.quiescentRead(READ_WAIT_MS);
      if (n.cycles % 5 === 0) say(`  cycle ${n.cycles}: kills ${n.kills}/${killsTarget}, PostgreSQL restarts ${n.pgRestarts}, transfers ${client.transfersStarted}, ${Math.round((Date.now() - started) / 1000)} s`);
    }
    const faultPhaseMs = Date.now() - started;

    // ---- heal phase
    await client.stop();
    await Promise.all(names.map((v) => restart(cluster, v, n, say)));
    const healStart = Date.now();
    const converged = await cluster.waitSettled(HEAL_WAIT_MS, { coordinator: true });
    const preparedLeft = (await waitFor(async () => ((await preparedCount(pgServer)) === 0 ? 0 : undefined), HEAL_WAIT_MS - (Date.now() - healStart), 200)) ?? (await preparedCount(pgServer));
    const convergeMs = Date.now() - healStart;
    await client.quiescentRead(READ_WAIT_MS);
    const final = await client.observe();
    const report = checkBank({ opening: client.opening, history: client.history, reads: client.reads, final });

    let total = 0;
    for (const p of BANK.participants) for (const v of Object.values(final.balances[p] ?? {})) total += typeof v === 'number' ? v : NaN;
    const openingTotal = accounts(BANK).length * BANK.openingBalance;
    const checks: ScenarioCheck[] = reportChecks(report);
    checks.push(check('total over both databases and the key-value store unchanged', total === openingTotal, `${total} (opened with ${openingTotal})`));
    checks.push(check('nothing left in pg_prepared_xacts', preparedLeft === 0, `${preparedLeft} prepared transaction(s) left in ${Object.values(DATABASES).join(', ')}`));
    checks.push(check('converged after the heal phase', converged, `${convergeMs} ms`));
    checks.push(check('kills made', n.kills >= killsTarget, `${n.kills} of ${killsTarget} within ${Math.round(durationMs / 1000)} s`));
    checks.push(check('PostgreSQL restarted while transactions were prepared', n.pgRestarts === 1 && n.preparedAtPgRestart > 0, `${n.pgRestarts} restart(s), ${n.preparedAtPgRestart} prepared at the time`));
    const figures: Record<string, number | string> = {
      seed: ctx.seed,
      kills: n.kills,
      killsBy: Object.entries(n.killsBy).sort().map(([k, v]) => `${k}:${v}`).join(' '),
      pgRestarts: n.pgRestarts,
      preparedAtPgRestart: n.preparedAtPgRestart,
      cycles: n.cycles,
      restartFailures: n.restartFailures,
      transfers: client.history.length,
      ok: report.counts.ok,
      fail: report.counts.fail,
      info: report.counts.info,
      infoCommitted: report.counts.infoCommitted,
      infoAborted: report.counts.infoAborted,
      committed: report.committed,
      quiescentReads: report.reads.quiescent,
      wrongTotalReads: report.reads.wrongTotal,
      negativeBalances: report.negativeBalances,
      ackedCommitsLost: report.ackedCommitsLost,
      ackedAbortsCommitted: report.ackedAbortsCommitted,
      splitOutcomes: report.splitOutcomes,
      inDoubtAtEnd: report.inDoubtAtEnd,
      preparedLeft,
      total,
      expectedTotal: openingTotal,
      convergeMs,
      faultPhaseMs,
      durationMs: Date.now() - started,
    };
    say(
      `bank-postgres: kills ${n.kills} (${figures.killsBy}), PostgreSQL restarts ${n.pgRestarts} (${n.preparedAtPgRestart} prepared); transfers ${client.history.length}: ` +
        `ok ${report.counts.ok}, fail ${report.counts.fail}, info ${report.counts.info} ${JSON.stringify(infoOutcomes(client.history, final))}`,
    );
    say(`  total ${total}/${openingTotal}; prepared left ${preparedLeft}; in doubt at end ${report.inDoubtAtEnd}; converged in ${convergeMs} ms; ${Math.round((Date.now() - started) / 1000)} s in all`);
    say(`  not ok, by reason: ${failureReasons(client.history)}`);
    for (const v of report.violations.slice(0, 10)) say(`  violation: ${v}`);
    const timeline = ctx.timeline ? cluster.timeline({ marksOnly: true, eventsMax: 3_000 }) : undefined;
    return result('bank-postgres', checks, figures, { ...(timeline ? { timeline } : {}), lanes: cluster.lanes });
  } finally {
    await client?.stop();
    await c?.close();
    if (ctx.keepData) say(`data and node logs kept in ${c?.dataDir ?? '(not started)'}; PostgreSQL's log was in ${pgServer.logFile}`);
    await pgServer.stop({ keepFiles: ctx.keepData === true });
  }
}
