/**
 * The PostgreSQL resource runs the Resource acceptance suite (./resource-port.suite.ts)
 * against a real server (scripts/ci-postgres.sh; TWOPC_TEST_PG_URL): idempotence, replays,
 * recoverPrepared/outcomeOf, its own row locks, and a real participant runtime crashed at
 * every point between "PREPARE TRANSACTION returned" and "ack sent", with the orphan
 * rolled back at recovery. Each harness gets a database of its own, dropped afterwards
 * with anything left prepared in it; "after a crash" is a new resource with a new pool,
 * the old one's connections closed as the process's death would close them.
 */
import { createPostgresResource, type PostgresOp, type PostgresResource } from '../../../participant/resources/postgres.ts';
import { requirePostgres, sql, TempDatabase } from '../../../scenarios/postgres.ts';
import { describeResourcePort } from './resource-port.suite.ts';

/** Short, so the "second branch on a locked row votes no" case does not wait long. */
const LOCK_TIMEOUT_MS = 200;

describeResourcePort<PostgresOp, PostgresResource>('PostgreSQL', async () => {
  await requirePostgres();
  const db = await TempDatabase.create('port');
  await sql(db.url, 'CREATE TABLE counters (key text PRIMARY KEY, n integer NOT NULL CHECK (n >= 0))');
  const opened: PostgresResource[] = [];
  const open = async () => {
    const r = createPostgresResource({ name: 'p', url: db.url, lockTimeoutMs: LOCK_TIMEOUT_MS });
    opened.push(r);
    await r.start();
    return r;
  };
  const closeAll = async () => {
    for (const r of opened.splice(0)) await r.close();
  };
  return {
    open,
    afterCrash: async () => {
      // The dead process's connections are gone; its prepared transactions stay in the server.
      await closeAll();
      return open();
    },
    add: (key, amount) => [
      { op: 'sql', text: 'INSERT INTO counters (key, n) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET n = counters.n + EXCLUDED.n', params: [key, amount] } as PostgresOp,
    ],
    refused: (key) => [{ op: 'sql', text: 'INSERT INTO counters (key, n) VALUES ($1, -1)', params: [key] } as PostgresOp],
    read: async (r, key) => (await r.pool.query<{ n: number }>('SELECT n FROM counters WHERE key = $1', [key])).rows[0]?.n ?? 0,
    dispose: async () => {
      await closeAll();
      await db.drop();
    },
  };
});
