/**
 * PostgreSQL under 2PC on real processes (issue 8, "must show" 1, 2 and 3): a real
 * coordinator, two participants each on its own PostgreSQL database
 * (`--resource postgres --pg-url`), and a key-value participant, with SIGKILLs at
 * named crash points. The blocking is shown in the database itself: a prepared
 * branch holds its row locks, and another session's UPDATE waits on them
 * (pg_stat_activity says so; pg_blocking_pids names the prepared transaction, pid 0).
 *
 * Needs the server scripts/ci-postgres.sh prepares (TWOPC_TEST_PG_URL); without it
 * these tests fail, saying how to start it.
 */
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ProcessCluster } from '../../scenarios/harness.ts';
import { postgresUnavailable, preparedIn, sql, TempDatabase } from '../../scenarios/postgres.ts';
import { startCluster } from '../helpers/cluster.ts';
import { call, eventually, get, post } from '../helpers/http.ts';

let c: ProcessCluster;
let teardown: (() => Promise<void>) | undefined;
const dbs: TempDatabase[] = [];
let bankA: TempDatabase;
let bankB: TempDatabase;

const ACCOUNTS_DDL = 'CREATE TABLE accounts (id text PRIMARY KEY, balance integer NOT NULL CHECK (balance >= 0))';

let unavailable: Error | undefined;

beforeAll(async () => {
  unavailable = await postgresUnavailable();
  if (unavailable) return;
  bankA = await TempDatabase.create('it_bank_a');
  dbs.push(bankA);
  bankB = await TempDatabase.create('it_bank_b');
  dbs.push(bankB);
  await sql(bankA.url, `${ACCOUNTS_DDL}; INSERT INTO accounts VALUES ('alice', 100)`);
  await sql(bankB.url, `${ACCOUNTS_DDL}; INSERT INTO accounts VALUES ('bob', 100)`);
  const pgArgs: Record<string, readonly string[]> = {
    p1: ['--resource', 'postgres', '--pg-url', bankA.url, '--pg-lock-timeout-ms', '500'],
    p2: ['--resource', 'postgres', '--pg-url', bankB.url, '--pg-lock-timeout-ms', '500'],
  };
  ({ cluster: c, teardown } = await startCluster('postgres', { participantArgsOf: (name) => pgArgs[name] ?? [] }));
  const opened = await post(`${c.coordinator.url}/v1/transactions`, { branches: [{ participant: 'p3', ops: [{ op: 'put', key: 'carol', value: 100 }] }] });
  expect(opened.body.outcome).toBe('committed');
}, 120_000);

afterAll(async () => {
  await teardown?.();
  for (const db of dbs) await db.drop();
});

// Without PostgreSQL every test fails, saying how to start it.
beforeEach(() => {
  if (unavailable) throw unavailable;
});

const debit = (id: string, amount: number) => ({ op: 'sql', text: 'UPDATE accounts SET balance = balance - $1 WHERE id = $2', params: [amount, id] });
const credit = (id: string, amount: number) => ({ op: 'sql', text: 'UPDATE accounts SET balance = balance + $1 WHERE id = $2', params: [amount, id] });

async function balance(db: TempDatabase, id: string): Promise<number> {
  return (await sql<{ balance: number }>(db.url, 'SELECT balance FROM accounts WHERE id = $1', [id]))[0]?.balance ?? NaN;
}
async function kv(key: string): Promise<unknown> {
  return (await get(`${c.participant('p3').url}/v1/kv/${key}`)).body.value;
}
async function balances(): Promise<[number, number, unknown]> {
  return [await balance(bankA, 'alice'), await balance(bankB, 'bob'), await kv('carol')];
}
async function nothingPrepared(): Promise<void> {
  expect(await preparedIn(bankA.url)).toEqual([]);
  expect(await preparedIn(bankB.url)).toEqual([]);
}

describe('PostgreSQL participants on real processes', () => {
  it('commits across two PostgreSQL databases and a key-value participant', async () => {
    const [a, b, k] = await balances();
    const res = await post(`${c.coordinator.url}/v1/transactions`, {
      branches: [
        { participant: 'p1', ops: [debit('alice', 30)] },
        { participant: 'p2', ops: [credit('bob', 20)] },
        { participant: 'p3', ops: [{ op: 'add', key: 'carol', amount: 10 }] },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'committed', applied: true });
    expect(await balances()).toEqual([a - 30, b + 20, (k as number) + 10]);
    await nothingPrepared();
  });

  it("aborts everywhere on an overdraft, with PostgreSQL's reason in the coordinator's answer", async () => {
    const before = await balances();
    const res = await post(`${c.coordinator.url}/v1/transactions`, {
      branches: [
        { participant: 'p1', ops: [debit('alice', 1_000)] },
        { participant: 'p2', ops: [credit('bob', 1_000)] },
        { participant: 'p3', ops: [{ op: 'add', key: 'carol', amount: 1_000 }] },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.outcome).toBe('aborted');
    expect(String(res.body.reason)).toContain('new row for relation "accounts" violates check constraint "accounts_balance_check" (SQLSTATE 23514)');
    expect(res.body.branches).toEqual(expect.arrayContaining([expect.objectContaining({ participant: 'p1', vote: 'no' })]));
    expect(await balances()).toEqual(before);
    await nothingPrepared();
  });

  it('rolls the PostgreSQL branches back when the key-value participant votes no', async () => {
    const before = await balances();
    const res = await post(`${c.coordinator.url}/v1/transactions`, {
      branches: [
        { participant: 'p1', ops: [credit('alice', 5)] },
        { participant: 'p2', ops: [credit('bob', 5)] },
        { participant: 'p3', ops: [{ op: 'add', key: 'carol', amount: -10_000, min: 0 }] },
      ],
    });
    expect(res.body.outcome).toBe('aborted');
    expect(res.body.branches).toEqual(expect.arrayContaining([expect.objectContaining({ participant: 'p3', vote: 'no' })]));
    // A PostgreSQL branch that prepared before the NO arrived is rolled back by the ABORT; one that had not votes no to a tombstone.
    const txId = String(res.body.txId);
    for (const name of ['p1', 'p2']) {
      await eventually(`${name} has nothing of ${txId} in doubt`, async () => {
        const state = (await get(`${c.participant(name).url}/v1/2pc/transactions/${txId}`)).body.state;
        return state === 'aborted' || state === 'unknown' ? true : undefined;
      });
    }
    expect(await balances()).toEqual(before);
    await nothingPrepared();
  });

  it("refuses a bad SQL op at the participant, and the transaction aborts with the participant's message", async () => {
    const res = await post(`${c.coordinator.url}/v1/transactions`, {
      branches: [
        { participant: 'p1', ops: [{ op: 'sql', text: 'COMMIT' }] },
        { participant: 'p2', ops: [credit('bob', 1)] },
      ],
    });
    expect(res.body.outcome).toBe('aborted');
    expect(String(res.body.reason)).toMatch(/run inside the branch's transaction/);
    await nothingPrepared();
  });

  it('coordinator SIGKILLed after its decision: the branches stay prepared in PostgreSQL, block an UPDATE, and commit after its restart', async () => {
    const [a, b] = await balances();
    const armed = await post(`${c.coordinator.url}/v1/chaos/crash-at`, { point: 'coordinator.after-decision-logged' });
    expect(armed.status).toBe(200);
    await call(
      'POST',
      `${c.coordinator.url}/v1/transactions`,
      { branches: [{ participant: 'p1', ops: [debit('alice', 10)] }, { participant: 'p2', ops: [credit('bob', 10)] }] },
      { timeoutMs: 10_000 },
    ).catch(() => undefined);
    expect((await c.coordinator.waitExit()).signal).toBe('SIGKILL');

    // In doubt at both participants, and prepared in both databases, named by the participant's gid.
    const listed = await get<{ transactions: { txId: string; resource?: { gid: string; preparedAt: string; ageMs: number } }[] }>(
      `${c.participant('p1').url}/v1/2pc/transactions?state=prepared`,
    );
    expect(listed.body.transactions).toHaveLength(1);
    const entry = listed.body.transactions[0] as (typeof listed.body.transactions)[number];
    const txId = entry.txId;
    expect(entry.resource).toMatchObject({ gid: `twopc:p1:${txId}`, ageMs: expect.any(Number) });
    expect(Date.parse(String(entry.resource?.preparedAt))).not.toBeNaN();
    expect((await preparedIn(bankA.url)).map((p) => p.gid)).toEqual([`twopc:p1:${txId}`]);
    expect((await preparedIn(bankB.url)).map((p) => p.gid)).toEqual([`twopc:p2:${txId}`]);

    // Another session's UPDATE of alice's row waits on the prepared branch's row lock.
    const probe = new pg.Client({ connectionString: bankA.url, application_name: 'twopc-blocked-probe', lock_timeout: 120_000, statement_timeout: 120_000 });
    probe.on('error', () => undefined);
    await probe.connect();
    try {
      const update = probe.query(`UPDATE accounts SET balance = balance + 1 WHERE id = 'alice'`);
      update.catch(() => undefined);
      const waiting = await eventually('the UPDATE waits on a lock', async () => {
        const rows = await sql<{ wait_event_type: string | null; blockers: number[] }>(
          bankA.url,
          `SELECT wait_event_type, pg_blocking_pids(pid) AS blockers FROM pg_stat_activity WHERE application_name = 'twopc-blocked-probe' AND state = 'active'`,
        );
        return rows[0]?.wait_event_type === 'Lock' ? rows[0] : undefined;
      });
      // PostgreSQL shows a prepared transaction that blocks a session as pid 0.
      expect(waiting.blockers).toEqual([0]);
      // Still waiting while the coordinator is down: the branch is in doubt and holds its lock.
      expect(await balance(bankA, 'alice')).toBe(a);

      await c.coordinator.start();
      const updated = await update;
      expect(updated.rowCount).toBe(1);
    } finally {
      await probe.end().catch(() => undefined);
    }

    for (const name of ['p1', 'p2']) {
      await eventually(`${name} has settled ${txId}`, async () => {
        const res = await get(`${c.participant(name).url}/v1/2pc/transactions/${txId}`);
        return res.body.state === 'committed' ? true : undefined;
      });
    }
    // The decided result in both databases (and the probe's +1 after it), nothing left prepared.
    expect(await balance(bankA, 'alice')).toBe(a - 10 + 1);
    expect(await balance(bankB, 'bob')).toBe(b + 10);
    await nothingPrepared();
  });

  it('participant SIGKILLed between PREPARE TRANSACTION and its PREPARED record: after its restart the orphan is rolled back', async () => {
    const [a, b, k] = await balances();
    const p1 = c.participant('p1');
    const armed = await post(`${p1.url}/v1/chaos/crash-at`, { point: 'participant.after-resource-prepared' });
    expect(armed.status).toBe(200);
    const res = await call(
      'POST',
      `${c.coordinator.url}/v1/transactions`,
      { branches: [{ participant: 'p1', ops: [debit('alice', 7)] }, { participant: 'p2', ops: [credit('bob', 7)] }] },
      { timeoutMs: 30_000 },
    );
    expect((await p1.waitExit()).signal).toBe('SIGKILL');
    // The participant never voted: the coordinator aborts.
    expect(res.body.outcome).toBe('aborted');
    const txId = String(res.body.txId);

    // While p1 is down, PostgreSQL holds its branch prepared: an orphan no WAL record speaks for.
    expect((await preparedIn(bankA.url)).map((p) => p.gid)).toEqual([`twopc:p1:${txId}`]);

    await p1.start();
    await nothingPrepared();
    expect(await balances()).toEqual([a, b, k]);
    expect((await get(`${p1.url}/v1/2pc/transactions/${txId}`)).body).toMatchObject({ state: 'aborted' });
    // A late prepare of the same transaction votes no: the participant remembers it aborted.
    const late = await post(`${p1.url}/v1/2pc/prepare`, { txId, coordinator: c.coordinator.url, participants: [p1.url], ops: [debit('alice', 7)] });
    expect(late.body).toMatchObject({ vote: 'no' });
    expect(await preparedIn(bankA.url)).toEqual([]);
  });
});
