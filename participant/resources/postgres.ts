/**
 * A PostgreSQL database under two-phase commit, with PostgreSQL's own 2PC:
 *
 *   prepare  BEGIN; SET LOCAL lock_timeout, statement_timeout; the branch's ops in order;
 *            a marker row for the branch; PREPARE TRANSACTION gid. The connection goes
 *            back to the pool: the prepared transaction lives in the server, holding its
 *            row locks, across a crash of this process or of the server.
 *   commit   COMMIT PREPARED gid. Idempotent: a gid PostgreSQL no longer holds is
 *            "already committed" when its marker row exists (the marker committed with
 *            the branch), and an error ("never prepared") when it does not.
 *   abort    ROLLBACK PREPARED gid. Idempotent: an unknown gid is a no-op.
 *   recover  the gids in pg_prepared_xacts under this participant's namespace.
 *
 * A SQL error or violated constraint in prepare rolls the branch back and votes NO with
 * PostgreSQL's message; a lock wait over lock_timeout votes NO naming the lock wait.
 * Nothing stays prepared after a NO. The resource takes its own locks (PostgreSQL's
 * row locks), so the participant core locks nothing for it (`locking: 'resource'`).
 *
 * Ops: `{op: "sql", text, params?}` (one statement each; transaction control is
 * refused), and, for a service that embeds the library, domain ops of its own that
 * run their queries inside the branch's transaction (`createPostgresResource({ ops })`).
 *
 * The database is its own durable state: a checkpoint stores only a descriptor of it,
 * and restore changes nothing (what committed is in the database; what is prepared is
 * in pg_prepared_xacts; commit and abort replays are idempotent).
 */
import pg from 'pg';
import { jsonValue, LIMITS, str, z, type Schema } from '../../shared/schemas.ts';
import type { TxId } from '../../shared/types.ts';
import { GID_PREFIX_DEFAULT, gidNamespace, gidOf, txIdOfGid } from './postgres-gid.ts';
import { EXIT_DATABASE_UNREACHABLE, EXIT_INVALID_CONFIG, isTransient, PostgresStartError, sqlState, VoteNo, voteNoReason } from './postgres-errors.ts';
import type { PrepareResult, Resource } from './resource.ts';

export { EXIT_DATABASE_UNREACHABLE, EXIT_INVALID_CONFIG, PostgresStartError, VoteNo } from './postgres-errors.ts';

// ---- ops -------------------------------------------------------------------------------

export interface SqlOp {
  readonly op: 'sql';
  readonly text: string;
  readonly params?: readonly unknown[];
}

/** Any op of a PostgreSQL resource: `sql`, or a domain op the embedding service defined. */
export interface PostgresOp {
  readonly op: string;
}

/** The branch's transaction, as a domain op sees it: one statement per call, in the branch's order. */
export interface BranchSql {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params?: readonly unknown[]): Promise<pg.QueryResult<R>>;
}

/** A service's own op: validated by `schema`, run inside the branch's transaction by `run`. */
export interface DomainOp<O extends PostgresOp> {
  /**
   * One op of this kind, its `op` field included, as a zod object whose `op` is a literal
   * (`z.strictObject({ op: z.literal('reserve'), ... })`): it checks the op (a 400 naming the
   * field) and documents it in the participant's OpenAPI document.
   */
  readonly schema: Schema<O>;
  /**
   * Runs the op's queries in the branch's transaction. Throw `new VoteNo(reason)` to vote no
   * with a reason of your own; a SQL error votes no with PostgreSQL's message. Either way the
   * branch is rolled back. Do not end the transaction (no COMMIT or ROLLBACK): twopc does.
   */
  run(sql: BranchSql, op: O, branch: { readonly txId: TxId }): Promise<void>;
}

/** Typed helper for a domain op: `defineOp<ReserveOp>({ schema, run })`. */
export const defineOp = <O extends PostgresOp>(def: DomainOp<O>): DomainOp<O> => def;

/** One SQL statement's bounds: a branch is small work, not a migration. */
export const SQL_TEXT_CHARS_MAX = 16_384;
export const SQL_PARAMS_MAX = 100;

/** Statements that end or start a transaction: inside a branch they would commit or lose work behind twopc's back. */
const TRANSACTION_CONTROL = /^(?:BEGIN|START|COMMIT|END|ROLLBACK|ABORT|PREPARE\s+TRANSACTION)\b/i;

/** The text after leading whitespace and comments, where a statement's first keyword is. */
function statementStart(text: string): string {
  let s = text;
  for (;;) {
    const next = s.replace(/^\s+/, '').replace(/^--[^\n]*(?:\n|$)/, '').replace(/^\/\*[\s\S]*?\*\//, '');
    if (next === s) return s;
    s = next;
  }
}

const sqlText = str(SQL_TEXT_CHARS_MAX, 1).superRefine((text, ctx) => {
  if (TRANSACTION_CONTROL.test(statementStart(text))) {
    ctx.addIssue({ code: 'custom', input: text, message: "to run inside the branch's transaction: BEGIN, COMMIT, ROLLBACK, END, ABORT and PREPARE TRANSACTION are twopc's to issue" });
  }
});

export const sqlOpSchema: Schema<SqlOp> = z
  .strictObject({
    op: z.literal('sql'),
    text: sqlText.meta({ description: 'One SQL statement, run inside the branch\'s transaction; $1, $2... are `params`.' }),
    params: z.array(jsonValue()).max(SQL_PARAMS_MAX).optional(),
  })
  .meta({ title: 'SqlOp' });

// ---- options -----------------------------------------------------------------------------

export interface PostgresResourceOptions {
  /** The participant's name: the namespace of its gids, so participants can share a database. */
  readonly name: string;
  /** postgres://user:password@host:port/database (or ?host=/socket/dir). Either this or `pool`. */
  readonly url?: string;
  /** A pool the service already has; the resource does not end it on close. */
  readonly pool?: pg.Pool;
  /** Domain ops by name (the `op` field); each runs its own queries inside the branch's transaction. */
  readonly ops?: Readonly<Record<string, DomainOp<PostgresOp>>>;
  /** Accept `{op:"sql"}`. Default: true without domain ops, false with them (a service rarely wants raw SQL from outside). */
  readonly rawSql?: boolean;
  /** Connections in the pool; a branch holds one from BEGIN to PREPARE TRANSACTION. */
  readonly poolConnectionsMax?: number;
  /** Branches that may wait for a pooled connection; past it a prepare votes no at once. */
  readonly poolWaitingMax?: number;
  /** How long a connect (or a wait for a pooled connection) may take. */
  readonly connectTimeoutMs?: number;
  /** An idle pooled connection is closed after this long. */
  readonly idleTimeoutMs?: number;
  /** SET LOCAL lock_timeout for each branch: a row lock wait past it votes no. */
  readonly lockTimeoutMs?: number;
  /** SET LOCAL statement_timeout for each branch's statements. */
  readonly statementTimeoutMs?: number;
  /** How long commit and abort retry through a restarting server before the error is fatal. */
  readonly settleRetryMsMax?: number;
  readonly opsPerBranchMax?: number;
  /** The marker table (created when missing). */
  readonly markerTable?: string;
  readonly gidPrefix?: string;
  /** Marker rows older than this are pruned (at start, and every `markerPruneEveryCommits` commits). */
  readonly markerRetentionMs?: number;
  /**
   * Errors nobody waits for, to log: an idle pooled connection the server dropped ('connection'),
   * a background rollback of a branch whose PREPARE TRANSACTION went unanswered that failed ('cleanup').
   */
  readonly onError?: (error: Error, context: 'connection' | 'cleanup') => void;
}

export const POSTGRES_DEFAULTS = {
  poolConnectionsMax: 10,
  poolWaitingMax: 256,
  connectTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  lockTimeoutMs: 1_000,
  statementTimeoutMs: 5_000,
  settleRetryMsMax: 30_000,
  markerTable: 'twopc_branches',
  markerRetentionMs: 7 * 24 * 3_600_000,
} as const;

const MARKER_PRUNE_EVERY_COMMITS = 10_000;
const MARKER_PRUNE_ROWS_MAX = 10_000;
const SETTLE_BACKOFF_MS_MIN = 50;
const SETTLE_BACKOFF_MS_MAX = 1_000;
const URL_PATTERN = /^postgres(?:ql)?:\/\/\S*$/;

/** What `GET /v1/2pc/transactions?state=prepared` adds to an in-doubt branch. */
export interface PreparedInDatabase {
  readonly gid: string;
  /** pg_prepared_xacts.prepared, ISO 8601. */
  readonly preparedAt: string;
  /** How long PostgreSQL has held it prepared (its locks with it), by the server's clock. */
  readonly ageMs: number;
}

/** A checkpoint's record of the resource: only where the state lives. */
export interface PostgresSnapshot {
  readonly resource: 'postgres';
  readonly database: string | undefined;
  readonly namespace: string;
}

interface CommitData {
  readonly gid: string;
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** Checks a --pg-url before anything connects: one clear message for a malformed one. */
export function checkPostgresUrl(url: string): void {
  let parsed: URL | undefined;
  try {
    parsed = URL_PATTERN.test(url) ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined) {
    const shown = url.replace(/:[^:@/]*@/, ':***@').slice(0, 200);
    throw new PostgresStartError(`--pg-url must be postgres://user[:password]@host[:port]/database, got "${shown}"`, EXIT_INVALID_CONFIG);
  }
  if (parsed.pathname.length <= 1) throw new PostgresStartError(`--pg-url names no database: ${redactUrl(url)}`, EXIT_INVALID_CONFIG);
}

const positiveInt = (name: string, v: number | undefined, fallback: number): number => {
  const n = v ?? fallback;
  if (!Number.isSafeInteger(n) || n < 1) throw new TypeError(`Expected \`${name}\` to be a positive integer, got ${String(v)}.`);
  return n;
};

// ---- the resource ---------------------------------------------------------------------------

export class PostgresResource implements Resource<PostgresOp> {
  readonly locking = 'resource' as const;
  readonly opsSchema: Schema<readonly PostgresOp[]>;
  readonly pool: pg.Pool;
  readonly namespace: string;
  private readonly ownsPool: boolean;
  private readonly domainOps: ReadonlyMap<string, DomainOp<PostgresOp>>;
  private readonly rawSql: boolean;
  private readonly table: string;
  private readonly lockTimeoutMs: number;
  private readonly statementTimeoutMs: number;
  private readonly poolWaitingMax: number;
  private readonly settleRetryMsMax: number;
  private readonly markerRetentionMs: number;
  private database: string | undefined;
  private commitsSincePrune = 0;
  private closed = false;

  constructor(private readonly o: PostgresResourceOptions) {
    if ((o.url === undefined) === (o.pool === undefined)) throw new TypeError('Expected exactly one of `url` and `pool`.');
    this.namespace = gidNamespace(o.name, o.gidPrefix ?? GID_PREFIX_DEFAULT);
    this.lockTimeoutMs = positiveInt('lockTimeoutMs', o.lockTimeoutMs, POSTGRES_DEFAULTS.lockTimeoutMs);
    this.statementTimeoutMs = positiveInt('statementTimeoutMs', o.statementTimeoutMs, POSTGRES_DEFAULTS.statementTimeoutMs);
    this.poolWaitingMax = positiveInt('poolWaitingMax', o.poolWaitingMax, POSTGRES_DEFAULTS.poolWaitingMax);
    this.settleRetryMsMax = positiveInt('settleRetryMsMax', o.settleRetryMsMax, POSTGRES_DEFAULTS.settleRetryMsMax);
    this.markerRetentionMs = positiveInt('markerRetentionMs', o.markerRetentionMs, POSTGRES_DEFAULTS.markerRetentionMs);
    this.table = pg.escapeIdentifier(o.markerTable ?? POSTGRES_DEFAULTS.markerTable);

    const domain = new Map(Object.entries(o.ops ?? {}));
    const rawSql = o.rawSql ?? domain.size === 0;
    if (rawSql && domain.has('sql')) throw new TypeError('A domain op may not be named "sql" while raw SQL ops are on.');
    if (!rawSql && domain.size === 0) throw new TypeError('Expected domain ops when raw SQL ops are off.');
    this.domainOps = domain;
    this.rawSql = rawSql;
    const schemas = [...(rawSql ? [sqlOpSchema] : []), ...[...domain.values()].map((def) => def.schema)] as unknown as [z.ZodObject, ...z.ZodObject[]];
    this.opsSchema = z.array(z.discriminatedUnion('op', schemas)).max(o.opsPerBranchMax ?? LIMITS.opsPerBranchMax) as unknown as Schema<readonly PostgresOp[]>;

    this.ownsPool = o.pool === undefined;
    if (o.url !== undefined) checkPostgresUrl(o.url);
    this.pool =
      o.pool ??
      new pg.Pool({
        connectionString: o.url,
        max: positiveInt('poolConnectionsMax', o.poolConnectionsMax, POSTGRES_DEFAULTS.poolConnectionsMax),
        connectionTimeoutMillis: positiveInt('connectTimeoutMs', o.connectTimeoutMs, POSTGRES_DEFAULTS.connectTimeoutMs),
        idleTimeoutMillis: positiveInt('idleTimeoutMs', o.idleTimeoutMs, POSTGRES_DEFAULTS.idleTimeoutMs),
        application_name: `twopc:${o.name}`.slice(0, 63),
        keepAlive: true,
      });
    // An idle connection that the server drops emits 'error' on the pool; unhandled, it would kill the process.
    this.pool.on('error', (error) => o.onError?.(error, 'connection'));
  }

  /**
   * Connects, checks that the server allows prepared transactions, and creates the
   * marker table when missing. Throws a PostgresStartError (one line, an exit code).
   */
  async start(): Promise<void> {
    const where = this.o.url !== undefined ? redactUrl(this.o.url) : 'the given pool';
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw new PostgresStartError(`cannot connect to PostgreSQL at ${where}: ${error instanceof Error ? error.message : String(error)}`, EXIT_DATABASE_UNREACHABLE);
    }
    try {
      const settings = await client.query<{ database: string; prepared_max: string }>(
        `SELECT current_database() AS database, current_setting('max_prepared_transactions') AS prepared_max`,
      );
      const row = settings.rows[0];
      if (row === undefined || Number(row.prepared_max) < 1) {
        throw new PostgresStartError(
          `PostgreSQL at ${where} has max_prepared_transactions = ${row?.prepared_max ?? '?'}, so PREPARE TRANSACTION is disabled: set it (e.g. 100) and restart the server (scripts/ci-postgres.sh does)`,
          EXIT_DATABASE_UNREACHABLE,
        );
      }
      this.database = row.database;
      await this.createMarkerTable(client);
      await this.pruneMarkers(client);
    } catch (error) {
      client.release(true);
      if (error instanceof PostgresStartError) throw error;
      throw new PostgresStartError(`cannot prepare PostgreSQL at ${where} for twopc: ${error instanceof Error ? error.message : String(error)}`, EXIT_DATABASE_UNREACHABLE);
    }
    client.release();
  }

  /** Ends the pool when the resource made it. Prepared branches stay in the server. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsPool) await this.pool.end();
  }

  private async createMarkerTable(client: pg.PoolClient): Promise<void> {
    // Two participants starting on one database at once would race in CREATE TABLE IF NOT EXISTS.
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [this.table]);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.table} (
           gid text PRIMARY KEY,
           participant text NOT NULL,
           tx_id text NOT NULL,
           prepared_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  gidOf(txId: TxId): string {
    return gidOf(this.namespace, txId);
  }

  // ---- phase 1 -------------------------------------------------------------------------

  async prepare(txId: TxId, ops: readonly PostgresOp[]): Promise<PrepareResult> {
    const gid = this.gidOf(txId);
    if (this.pool.waitingCount >= this.poolWaitingMax) {
      return { vote: 'no', reason: `${this.poolWaitingMax} branches are already waiting for a PostgreSQL connection` };
    }
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      return { vote: 'no', reason: voteNoReason(error, this.reasonContext) };
    }
    let broken: unknown;
    // A checked-out connection that the server drops between statements emits 'error'; unheard, it would kill the process.
    const onClientError = (error: Error) => {
      broken = error;
    };
    client.on('error', onClientError);
    try {
      return await this.prepareOn(client, txId, gid, ops);
    } catch (error) {
      broken ??= error;
      return await this.rollBackFailed(client, gid, error);
    } finally {
      client.off('error', onClientError);
      // A connection that failed mid-branch is closed rather than handed to the next branch.
      client.release(broken !== undefined && isTransient(broken) ? (broken as Error) : undefined);
    }
  }

  private get reasonContext() {
    return { lockTimeoutMs: this.lockTimeoutMs, statementTimeoutMs: this.statementTimeoutMs };
  }

  private async prepareOn(client: pg.PoolClient, txId: TxId, gid: string, ops: readonly PostgresOp[]): Promise<PrepareResult> {
    await client.query('BEGIN');
    // SET LOCAL by set_config(..., true): bounds for this branch only, and a marker of the
    // transaction block itself, which any COMMIT or ROLLBACK inside the ops would reset.
    await client.query(`SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true), set_config('twopc.branch', $3, true)`, [
      `${this.lockTimeoutMs}ms`,
      `${this.statementTimeoutMs}ms`,
      gid,
    ]);
    const sql = branchSql(client);
    for (const op of ops) {
      const def = this.domainOps.get(op.op);
      if (def !== undefined) {
        await def.run(sql, op, { txId });
      } else if (op.op === 'sql' && this.rawSql) {
        const s = op as SqlOp;
        await sql.query(s.text, s.params ?? []);
      } else {
        // The ops schema admits no such op; only a caller that skipped it gets here.
        throw new Error(`no op "${op.op}" on this PostgreSQL resource`);
      }
    }
    const state = await client.query<{ branch: string | null; xid: string | null }>(
      `SELECT current_setting('twopc.branch', true) AS branch, pg_current_xact_id_if_assigned()::text AS xid`,
    );
    const row = state.rows[0];
    if (row?.branch !== gid) {
      await client.query('ROLLBACK');
      return { vote: 'no', reason: "the branch's ops ended its transaction (a COMMIT or ROLLBACK inside them); what they did is outside twopc" };
    }
    if (row.xid === null) {
      // Nothing written and no row locked: nothing to commit or hold. Phase 2 skips this participant.
      await client.query('ROLLBACK');
      return { vote: 'read-only' };
    }
    await client.query(`INSERT INTO ${this.table} (gid, participant, tx_id) VALUES ($1, $2, $3)`, [gid, this.o.name, txId]);
    await client.query(`PREPARE TRANSACTION ${pg.escapeLiteral(gid)}`);
    return { vote: 'yes', data: { gid } satisfies CommitData };
  }

  /**
   * Rolls a failed branch back and votes no. When the connection died (a server restart), the
   * branch may or may not have reached PREPARE TRANSACTION: the vote is no at once, and
   * ROLLBACK PREPARED on a fresh connection, retried while the server comes back, makes sure
   * nothing stays prepared (an unknown gid is fine; the gid is never prepared again, since the
   * participant remembers the NO).
   */
  private async rollBackFailed(client: pg.PoolClient, gid: string, error: unknown): Promise<PrepareResult> {
    const reason = voteNoReason(error, this.reasonContext);
    if (!isTransient(error)) {
      await client.query('ROLLBACK').catch(() => undefined);
      return { vote: 'no', reason };
    }
    void this.settle(`ROLLBACK PREPARED of ${gid} after a lost connection`, () => this.rollbackPrepared(gid)).catch((e: unknown) =>
      this.o.onError?.(e instanceof Error ? e : new Error(String(e)), 'cleanup'),
    );
    return { vote: 'no', reason };
  }

  // ---- phase 2 -------------------------------------------------------------------------

  async commit(txId: TxId, data: unknown): Promise<void> {
    const gid = this.branchGid(txId, data);
    await this.settle(`COMMIT PREPARED of ${gid}`, async () => {
      try {
        await this.pool.query(`COMMIT PREPARED ${pg.escapeLiteral(gid)}`);
      } catch (error) {
        if (sqlState(error) !== '42704') throw error;
        // PostgreSQL holds no such prepared transaction: committed before (the marker says so), or never prepared.
        if (await this.markerExists(gid)) return;
        throw new Error(
          `cannot commit ${txId}: PostgreSQL holds no prepared transaction ${gid} and no marker row of it, so it never prepared here or was rolled back outside twopc`,
        );
      }
    });
    if (++this.commitsSincePrune >= MARKER_PRUNE_EVERY_COMMITS) {
      this.commitsSincePrune = 0;
      // Housekeeping, not the commit: a failure is reported, never fatal.
      await this.pruneMarkers().catch((e: unknown) => this.o.onError?.(e instanceof Error ? e : new Error(String(e)), 'cleanup'));
    }
  }

  async abort(txId: TxId, data: unknown): Promise<void> {
    await this.settle(`ROLLBACK PREPARED of ${txId}`, () => this.rollbackPrepared(this.branchGid(txId, data)));
  }

  private async rollbackPrepared(gid: string): Promise<void> {
    try {
      await this.pool.query(`ROLLBACK PREPARED ${pg.escapeLiteral(gid)}`);
    } catch (error) {
      // Never prepared, already rolled back, or voted no: nothing to undo.
      if (sqlState(error) !== '42704') throw error;
    }
  }

  /** The gid the branch prepared under: from its PREPARED record when there is one (an orphan has none). */
  private branchGid(txId: TxId, data: unknown): string {
    const d = data as Partial<CommitData> | null | undefined;
    return typeof d?.gid === 'string' && d.gid !== '' ? d.gid : this.gidOf(txId);
  }

  /**
   * Retries a commit or abort through a restarting server or a dropped connection,
   * bounded by settleRetryMsMax; any other error, or one past the bound, is thrown
   * (and is fatal to the participant, which recovers on restart).
   */
  private async settle(what: string, run: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + this.settleRetryMsMax;
    for (let backoffMs = SETTLE_BACKOFF_MS_MIN; ; backoffMs = Math.min(backoffMs * 2, SETTLE_BACKOFF_MS_MAX)) {
      try {
        return await run();
      } catch (error) {
        // 55006: another session is finishing the same prepared transaction right now.
        const retry = isTransient(error) || sqlState(error) === '55006';
        if (!retry || Date.now() + backoffMs > deadline || this.closed) {
          throw new Error(`${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
      }
    }
  }

  // ---- recovery ------------------------------------------------------------------------

  /** This participant's branches PostgreSQL holds prepared now (XA recover). */
  async recoverPrepared(): Promise<readonly TxId[]> {
    return [...(await this.inspectPrepared()).keys()];
  }

  /** 'committed' when the branch's marker row committed; 'unknown' when there is no trace (never prepared, or rolled back). */
  async outcomeOf(txId: TxId): Promise<'committed' | 'unknown'> {
    return (await this.markerExists(this.gidOf(txId))) ? 'committed' : 'unknown';
  }

  /** This participant's prepared branches with their age in PostgreSQL, for the in-doubt list. */
  async inspectPrepared(): Promise<ReadonlyMap<TxId, PreparedInDatabase>> {
    const res = await this.pool.query<{ gid: string; prepared: Date; age_ms: string }>(
      `SELECT gid, prepared, floor(extract(epoch FROM clock_timestamp() - prepared) * 1000)::bigint AS age_ms
         FROM pg_prepared_xacts
        WHERE database = current_database() AND left(gid, length($1)) = $1
        ORDER BY prepared`,
      [this.namespace],
    );
    const out = new Map<TxId, PreparedInDatabase>();
    for (const r of res.rows) {
      const txId = txIdOfGid(this.namespace, r.gid);
      if (txId !== undefined) out.set(txId, { gid: r.gid, preparedAt: r.prepared.toISOString(), ageMs: Math.max(0, Number(r.age_ms)) });
    }
    return out;
  }

  private async markerExists(gid: string): Promise<boolean> {
    const res = await this.pool.query(`SELECT 1 FROM ${this.table} WHERE gid = $1`, [gid]);
    return (res.rowCount ?? 0) > 0;
  }

  /**
   * Drops this participant's old marker rows, a bounded batch at a time. A marker is read only
   * when a commit is replayed or reconciled after a crash, long before the retention runs out.
   */
  private async pruneMarkers(on: pg.Pool | pg.PoolClient = this.pool): Promise<void> {
    await on.query(
      `DELETE FROM ${this.table} WHERE gid IN (
         SELECT gid FROM ${this.table} WHERE participant = $1 AND prepared_at < now() - make_interval(secs => $2) LIMIT $3)`,
      [this.o.name, this.markerRetentionMs / 1000, MARKER_PRUNE_ROWS_MAX],
    );
  }

  // ---- checkpoints ---------------------------------------------------------------------

  snapshot(): PostgresSnapshot {
    return { resource: 'postgres', database: this.database, namespace: this.namespace };
  }

  /**
   * Nothing to restore: the database is its own durable state. What committed is in its
   * tables, what is prepared is in pg_prepared_xacts, and the commits and aborts recovery
   * replays after this are idempotent.
   */
  restore(): void {}
}

/** The branch's connection as domain ops use it: one statement per call (extended protocol refuses several). */
function branchSql(client: pg.PoolClient): BranchSql {
  return {
    query: <R extends pg.QueryResultRow>(text: string, params: readonly unknown[] = []) => {
      if (TRANSACTION_CONTROL.test(statementStart(text))) {
        return Promise.reject(new VoteNo(`a domain op tried to end the branch's transaction (${text.slice(0, 40)}): that is twopc's to do`));
      }
      return client.query<R>({ text, values: [...params], queryMode: 'extended' } as pg.QueryConfig);
    },
  };
}

export function createPostgresResource(options: PostgresResourceOptions): PostgresResource {
  return new PostgresResource(options);
}
