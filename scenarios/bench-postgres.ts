/**
 * `twopc bench --resource postgres`: the bench's transfers on PostgreSQL participants.
 * Each participant gets a database of its own, made for the run on the server
 * `--pg-url` (or TWOPC_TEST_PG_URL) names and dropped after it; the accounts are
 * rows of `accounts (id, balance CHECK (balance >= 0))`, a debit is an UPDATE the
 * CHECK guards, as `add` with `min: 0` is on the key-value store.
 *
 * The machine figures gain PostgreSQL's own floor, measured in the same run: a bare
 * round trip, and a bare BEGIN / UPDATE / PREPARE TRANSACTION / COMMIT PREPARED cycle.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { benchBank, summarize, type BenchOptions, type BenchTarget, type LatencySummary } from './bench.ts';
import { requirePostgres, sql, TempDatabase, testPgUrl } from './postgres.ts';
import { accounts } from './workloads/bank.ts';

const ROUND_TRIP_SAMPLES = 300;
const PREPARE_CYCLE_SAMPLES = 100;

const UPDATE_BALANCE = 'UPDATE accounts SET balance = balance + $1 WHERE id = $2';

/** A key-value transfer's `add` ops as SQL on the accounts table; the CHECK stands for `min: 0`. */
export function sqlTransfer(body: { branches: { participant: string; ops: unknown[] }[] }): unknown {
  return {
    branches: body.branches.map((b) => ({
      participant: b.participant,
      ops: b.ops.map((o) => {
        const add = o as { op: string; key: string; amount: number };
        if (add.op !== 'add') throw new Error(`bench transfers are adds, got ${add.op}`);
        return { op: 'sql', text: UPDATE_BALANCE, params: [add.amount, add.key] };
      }),
    })),
  };
}

export async function postgresTarget(options: BenchOptions, log: (line: string) => void): Promise<BenchTarget> {
  const serverUrl = options.pgUrl ?? testPgUrl();
  await requirePostgres(serverUrl);
  const names = Array.from({ length: options.participants }, (_, i) => `p${i + 1}`);
  const bank = benchBank(names, options.concurrency);
  const dbs = new Map<string, TempDatabase>();
  try {
    for (const name of names) {
      const db = await TempDatabase.create(`bench_${name}`, serverUrl);
      dbs.set(name, db);
      const rows = accounts(bank).filter((a) => a.participant === name);
      await sql(db.url, 'CREATE TABLE accounts (id text PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))');
      await sql(db.url, 'INSERT INTO accounts SELECT unnest($1::text[]), $2', [rows.map((a) => a.key), bank.openingBalance]);
    }
  } catch (error) {
    for (const db of dbs.values()) await db.drop().catch(() => undefined);
    throw error;
  }
  log(`PostgreSQL databases for ${names.join(', ')} on ${serverUrl}`);
  const first = dbs.get('p1') as TempDatabase;
  return {
    resource: 'postgres',
    participantArgsOf: (name) => ['--resource', 'postgres', '--pg-url', (dbs.get(name) as TempDatabase).url],
    // The accounts were funded by the INSERT above.
    fund: async () => undefined,
    transfer: (t) => sqlTransfer(t.body),
    machine: () => measurePostgres(first.url),
    close: async () => {
      for (const db of dbs.values()) await db.drop();
    },
  };
}

/** PostgreSQL's floor on this machine: what one branch costs the database without twopc around it. */
async function measurePostgres(url: string): Promise<Record<string, LatencySummary>> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('CREATE TABLE bench_probe (id int PRIMARY KEY, n bigint NOT NULL); INSERT INTO bench_probe VALUES (1, 0)');
    const roundTrips: number[] = [];
    for (let i = 0; i < ROUND_TRIP_SAMPLES; i++) {
      const t0 = performance.now();
      await client.query('SELECT 1');
      roundTrips.push(performance.now() - t0);
    }
    const cycles: number[] = [];
    for (let i = 0; i < PREPARE_CYCLE_SAMPLES; i++) {
      const gid = `bench-probe-${process.pid}-${i}`;
      const t0 = performance.now();
      await client.query('BEGIN');
      await client.query('UPDATE bench_probe SET n = n + 1 WHERE id = 1');
      await client.query(`PREPARE TRANSACTION ${pg.escapeLiteral(gid)}`);
      await client.query(`COMMIT PREPARED ${pg.escapeLiteral(gid)}`);
      cycles.push(performance.now() - t0);
    }
    return { 'round trip': summarize(roundTrips), 'prepare+commit': summarize(cycles) };
  } finally {
    await client.end().catch(() => undefined);
  }
}
