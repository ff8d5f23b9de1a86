/**
 * The PostgreSQL resource against a real server (scripts/ci-postgres.sh; TWOPC_TEST_PG_URL):
 * PostgreSQL's own PREPARE TRANSACTION / COMMIT PREPARED / ROLLBACK PREPARED under the
 * Resource port, with its idempotence, its NO votes, and recovery's view of prepared branches.
 * Each test file has its own database, dropped at the end with anything left prepared in it.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from '../../../shared/schemas.ts';
import { asTxId, type TxId } from '../../../shared/types.ts';
import { GID_BYTES_MAX } from '../../../participant/resources/postgres-gid.ts';
import {
  createPostgresResource,
  defineOp,
  EXIT_DATABASE_UNREACHABLE,
  EXIT_INVALID_CONFIG,
  PostgresStartError,
  VoteNo,
  type PostgresResource,
  type PostgresResourceOptions,
} from '../../../participant/resources/postgres.ts';
import { z } from '../../../shared/schemas.ts';
import { postgresUnavailable, preparedIn, rollbackAllPrepared, sql, TempDatabase } from '../../../scenarios/postgres.ts';
import { deadUrl } from '../fixtures.ts';

let db: TempDatabase | undefined;
let unavailable: Error | undefined;
const open: PostgresResource[] = [];

beforeAll(async () => {
  unavailable = await postgresUnavailable();
  if (unavailable) return;
  db = await TempDatabase.create('resource');
  await sql(db.url, 'CREATE TABLE accounts (id text PRIMARY KEY, balance integer NOT NULL CHECK (balance >= 0))');
});
afterAll(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
  await db?.drop();
});
beforeEach(async () => {
  // Without PostgreSQL every test fails, saying how to start it.
  if (unavailable) throw unavailable;
  // Each test starts from the same balances.
  await sql(url(), `DELETE FROM accounts; INSERT INTO accounts VALUES ('a', 100), ('b', 0)`);
});
afterEach(async () => {
  // ...and leaves nothing prepared, even when it failed half-way.
  await Promise.all(open.splice(0).map((r) => r.close()));
  if (db) await rollbackAllPrepared(db.url);
});

const url = (): string => (db as TempDatabase).url;

async function resource(name: string, extra: Partial<PostgresResourceOptions> = {}): Promise<PostgresResource> {
  const r = createPostgresResource({ name, url: url(), lockTimeoutMs: 200, ...extra } as PostgresResourceOptions);
  open.push(r);
  await r.start();
  return r;
}

const balances = async () => Object.fromEntries((await sql<{ id: string; balance: number }>(url(), 'SELECT id, balance FROM accounts ORDER BY id')).map((r) => [r.id, r.balance]));
const transfer = (amount: number) => [
  { op: 'sql', text: 'UPDATE accounts SET balance = balance - $1 WHERE id = $2', params: [amount, 'a'] },
  { op: 'sql', text: 'UPDATE accounts SET balance = balance + $1 WHERE id = $2', params: [amount, 'b'] },
];
const tx = (s: string): TxId => asTxId(s);
const gids = async () => (await preparedIn(url())).map((p) => p.gid);

describe('PostgreSQL resource: prepare, commit, abort', () => {
  it('prepares with PREPARE TRANSACTION, holds the change invisible until COMMIT PREPARED, and commits idempotently', async () => {
    const r = await resource('p1');
    const ops = parse(r.opsSchema, transfer(30));
    const prepared = await r.prepare(tx('tx-1-1'), ops);
    expect(prepared).toEqual({ vote: 'yes', data: { gid: 'twopc:p1:tx-1-1' } });
    expect(await gids()).toEqual(['twopc:p1:tx-1-1']);
    expect(await balances()).toEqual({ a: 100, b: 0 });

    await r.commit(tx('tx-1-1'), prepared.data);
    expect(await balances()).toEqual({ a: 70, b: 30 });
    expect(await gids()).toEqual([]);
    expect(await r.outcomeOf(tx('tx-1-1'))).toBe('committed');
    // A replay after a crash: PostgreSQL no longer holds it, the marker says it committed.
    await r.commit(tx('tx-1-1'), prepared.data);
    await r.commit(tx('tx-1-1'), undefined);
    expect(await balances()).toEqual({ a: 70, b: 30 });
  });

  it('aborts with ROLLBACK PREPARED, idempotently, and an abort of an unknown transaction is a no-op', async () => {
    const r = await resource('p1');
    const prepared = await r.prepare(tx('tx-2-1'), parse(r.opsSchema, transfer(30)));
    expect(prepared.vote).toBe('yes');
    await r.abort(tx('tx-2-1'), prepared.data);
    await r.abort(tx('tx-2-1'), prepared.data);
    await r.abort(tx('tx-2-404'), undefined);
    expect(await balances()).toEqual({ a: 100, b: 0 });
    expect(await gids()).toEqual([]);
    expect(await r.outcomeOf(tx('tx-2-1'))).toBe('unknown');
  });

  it('refuses to commit a branch that never prepared, and says so', async () => {
    const r = await resource('p1');
    await expect(r.commit(tx('tx-3-1'), undefined)).rejects.toThrow(/cannot commit tx-3-1: PostgreSQL holds no prepared transaction twopc:p1:tx-3-1 and no marker row/);
  });

  it('votes no with PostgreSQL\'s message on a CHECK violation, and leaves nothing prepared', async () => {
    const r = await resource('p1');
    const vote = await r.prepare(tx('tx-4-1'), parse(r.opsSchema, transfer(101)));
    expect(vote.vote).toBe('no');
    expect(vote.reason).toMatch(/^PostgreSQL: new row for relation "accounts" violates check constraint "accounts_balance_check" \(SQLSTATE 23514\)/);
    expect(await gids()).toEqual([]);
    expect(await balances()).toEqual({ a: 100, b: 0 });
    expect(await r.outcomeOf(tx('tx-4-1'))).toBe('unknown');
  });

  it('votes no naming the lock wait when a prepared branch holds the row past lock_timeout', async () => {
    const r = await resource('p1');
    const first = await r.prepare(tx('tx-5-1'), parse(r.opsSchema, transfer(10)));
    expect(first.vote).toBe('yes');
    const second = await r.prepare(tx('tx-5-2'), parse(r.opsSchema, transfer(5)));
    expect(second.vote).toBe('no');
    expect(second.reason).toMatch(/^lock wait over lock_timeout \(200 ms\): another transaction holds the lock; PostgreSQL: canceling statement due to lock timeout/);
    expect(await gids()).toEqual(['twopc:p1:tx-5-1']);
    await r.commit(tx('tx-5-1'), first.data);
    expect(await balances()).toEqual({ a: 90, b: 10 });
  });

  it('votes no on any SQL error, and read-only on a branch that changes nothing', async () => {
    const r = await resource('p1');
    const bad = await r.prepare(tx('tx-6-1'), parse(r.opsSchema, [{ op: 'sql', text: 'UPDATE nowhere SET x = 1' }]));
    expect(bad).toEqual({ vote: 'no', reason: 'PostgreSQL: relation "nowhere" does not exist (SQLSTATE 42P01)' });
    const two = await r.prepare(tx('tx-6-2'), parse(r.opsSchema, [{ op: 'sql', text: `UPDATE accounts SET balance = 1 WHERE id = 'a'; UPDATE accounts SET balance = 1 WHERE id = 'b'` }]));
    expect(two.vote).toBe('no');
    expect(two.reason).toMatch(/cannot insert multiple commands into a prepared statement/);
    expect(await r.prepare(tx('tx-6-3'), parse(r.opsSchema, [{ op: 'sql', text: 'SELECT balance FROM accounts' }]))).toEqual({ vote: 'read-only' });
    expect(await gids()).toEqual([]);
    expect(await balances()).toEqual({ a: 100, b: 0 });
  });

  it('checks ops with clear messages, and refuses transaction control inside a branch', async () => {
    const r = await resource('p1');
    const rejects = (ops: unknown) => {
      try {
        parse(r.opsSchema, ops);
      } catch (error) {
        return (error as Error).message;
      }
      return 'accepted';
    };
    expect(rejects([{ op: 'sql' }])).toBe('Missing field `[0].text`.');
    expect(rejects([{ op: 'sql', text: 'SELECT 1', params: 'x' }])).toBe('Expected `[0].params` to be an array, got string "x".');
    expect(rejects([{ op: 'put', key: 'k', value: 1 }])).toBe('Expected `[0].op` to be one of "sql", got string "put".');
    expect(rejects([{ op: 'sql', text: 'SELECT 1', extra: 1 }])).toMatch(/Unknown field `\[0\]\.extra`/);
    for (const text of ['COMMIT', '  commit;', '/* x */ ROLLBACK', '-- hi\nBEGIN', 'prepare  transaction \'x\'', 'END', 'abort']) {
      expect(rejects([{ op: 'sql', text }]), text).toMatch(/Expected `\[0\]\.text` to run inside the branch's transaction/);
    }
    expect(rejects([{ op: 'sql', text: 'UPDATE accounts SET balance = 0 WHERE id = $1', params: ['a'] }])).toBe('accepted');
  });

  it('lists only its own prepared branches when two participants share one database, and settles only its own', async () => {
    const p1 = await resource('p1');
    const p2 = await resource('p2');
    const longName = `service-${'x'.repeat(300)}`;
    const p3 = await resource(longName);
    const longTx = tx(`tx-${'9'.repeat(125)}`);
    expect((await p1.prepare(tx('tx-7-1'), parse(p1.opsSchema, [{ op: 'sql', text: `UPDATE accounts SET balance = 1 WHERE id = 'a'` }]))).vote).toBe('yes');
    expect((await p2.prepare(tx('tx-7-1'), parse(p2.opsSchema, [{ op: 'sql', text: `UPDATE accounts SET balance = 2 WHERE id = 'b'` }]))).vote).toBe('yes');
    expect((await p3.prepare(longTx, parse(p3.opsSchema, [{ op: 'sql', text: `INSERT INTO accounts VALUES ('c', 3)` }]))).vote).toBe('yes');
    expect(await p1.recoverPrepared()).toEqual(['tx-7-1']);
    expect(await p2.recoverPrepared()).toEqual(['tx-7-1']);
    expect(await p3.recoverPrepared()).toEqual([longTx]);
    for (const g of await gids()) expect(Buffer.byteLength(g)).toBeLessThanOrEqual(GID_BYTES_MAX);

    const ages = await p1.inspectPrepared();
    expect([...ages.keys()]).toEqual(['tx-7-1']);
    expect(ages.get(tx('tx-7-1'))).toMatchObject({ gid: 'twopc:p1:tx-7-1', ageMs: expect.any(Number) });
    expect(Number.isNaN(Date.parse(ages.get(tx('tx-7-1'))?.preparedAt ?? ''))).toBe(false);

    await p1.commit(tx('tx-7-1'), undefined);
    await p2.abort(tx('tx-7-1'), undefined);
    await p3.commit(longTx, undefined);
    expect(await balances()).toEqual({ a: 1, b: 0, c: 3 });
    expect(await p1.outcomeOf(tx('tx-7-1'))).toBe('committed');
    expect(await p2.outcomeOf(tx('tx-7-1'))).toBe('unknown');
    expect(await p3.outcomeOf(longTx)).toBe('committed');
    expect(await gids()).toEqual([]);
  });

  it('runs a service\'s domain ops inside the branch, with their own NO votes', async () => {
    type Debit = { op: 'debit'; id: string; amount: number };
    const debit = defineOp<Debit>({
      schema: z.strictObject({ op: z.literal('debit'), id: z.string().min(1).max(64), amount: z.int().min(1) }),
      run: async (q, op) => {
        const row = (await q.query<{ balance: number }>('SELECT balance FROM accounts WHERE id = $1 FOR UPDATE', [op.id])).rows[0];
        if (row === undefined) throw new VoteNo(`no account ${op.id}`);
        if (row.balance < op.amount) throw new VoteNo(`account ${op.id} has ${row.balance}, ${op.amount} wanted`);
        await q.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [op.amount, op.id]);
      },
    });
    const r = await resource('svc', { ops: { debit } });
    expect(() => parse(r.opsSchema, [{ op: 'sql', text: 'SELECT 1' }])).toThrow('Expected `[0].op` to be one of "debit", got string "sql".');
    expect(() => parse(r.opsSchema, [{ op: 'debit', id: 'a', amount: 0 }])).toThrow('Expected `[0].amount` to be >= 1.');
    expect(await r.prepare(tx('tx-8-1'), parse(r.opsSchema, [{ op: 'debit', id: 'a', amount: 500 }]))).toEqual({ vote: 'no', reason: 'account a has 100, 500 wanted' });
    expect(await r.prepare(tx('tx-8-2'), parse(r.opsSchema, [{ op: 'debit', id: 'zz', amount: 5 }]))).toEqual({ vote: 'no', reason: 'no account zz' });
    const ok = await r.prepare(tx('tx-8-3'), parse(r.opsSchema, [{ op: 'debit', id: 'a', amount: 40 }, { op: 'debit', id: 'a', amount: 60 }]));
    expect(ok.vote).toBe('yes');
    expect(await gids()).toEqual(['twopc:svc:tx-8-3']);
    await r.commit(tx('tx-8-3'), ok.data);
    expect(await balances()).toEqual({ a: 0, b: 0 });
  });

  it("prunes its own marker rows past the retention at start, and nobody else's", async () => {
    const r = await resource('p1');
    const p = await r.prepare(tx('tx-10-1'), parse(r.opsSchema, transfer(1)));
    await r.commit(tx('tx-10-1'), p.data);
    await sql(url(), `INSERT INTO twopc_branches (gid, participant, tx_id, prepared_at) VALUES
      ('twopc:p1:tx-10-0', 'p1', 'tx-10-0', now() - interval '8 days'), ('twopc:p2:tx-10-0', 'p2', 'tx-10-0', now() - interval '8 days')`);
    await resource('p1');
    const left = await sql<{ gid: string }>(url(), 'SELECT gid FROM twopc_branches ORDER BY gid');
    expect(left.map((m) => m.gid)).toEqual(expect.arrayContaining(['twopc:p1:tx-10-1', 'twopc:p2:tx-10-0']));
    expect(left.map((m) => m.gid)).not.toContain('twopc:p1:tx-10-0');
  });

  it('does not let a domain op end the branch\'s transaction', async () => {
    type Sneaky = { op: 'sneaky' };
    const sneaky = defineOp<Sneaky>({
      schema: z.strictObject({ op: z.literal('sneaky') }),
      run: async (q) => {
        await q.query(`UPDATE accounts SET balance = 7 WHERE id = 'a'`);
        await q.query('/* done */ COMMIT');
      },
    });
    const r = await resource('svc', { ops: { sneaky } });
    const vote = await r.prepare(tx('tx-9-1'), [{ op: 'sneaky' }]);
    expect(vote).toEqual({ vote: 'no', reason: "a domain op tried to end the branch's transaction (/* done */ COMMIT): that is twopc's to do" });
    expect(await balances()).toEqual({ a: 100, b: 0 });
    expect(await gids()).toEqual([]);
  });
});

describe('PostgreSQL resource: start', () => {
  it('refuses a malformed URL (exit 64) and an unreachable server (exit 68) with one clear line', async () => {
    expect(() => createPostgresResource({ name: 'p', url: 'mysql://x@y/z' })).toThrow(PostgresStartError);
    try {
      createPostgresResource({ name: 'p', url: 'not a url' });
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ exitCode: EXIT_INVALID_CONFIG, message: expect.stringMatching(/^--pg-url must be postgres:\/\//) });
    }
    const port = new URL(await deadUrl()).port;
    const r = createPostgresResource({ name: 'p', url: `postgresql://u:secret@127.0.0.1:${port}/db`, connectTimeoutMs: 2_000 });
    open.push(r);
    const error = await r.start().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(PostgresStartError);
    expect(error).toMatchObject({ exitCode: EXIT_DATABASE_UNREACHABLE });
    expect((error as Error).message).toMatch(new RegExp(`^cannot connect to PostgreSQL at postgresql://u:\\*\\*\\*@127.0.0.1:${port}/db: .*ECONNREFUSED`));
    expect((error as Error).message).not.toContain('secret');
  });
});
