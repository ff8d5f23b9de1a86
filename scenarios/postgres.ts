/**
 * PostgreSQL for tests, scenarios and the bench:
 *
 * - the shared server CI provides (scripts/ci-postgres.sh), found through
 *   TWOPC_TEST_PG_URL; each user makes its own database with a unique name and
 *   drops it afterwards, rolling back any prepared transaction left in it;
 * - a server of our own (initdb into a temp directory, a free port), for a
 *   scenario that restarts PostgreSQL: restarting the shared one would break
 *   every other test using it at that moment.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './ports.ts';

/** The server scripts/ci-postgres.sh prepares: peer authentication as root over the unix socket. */
export const PG_URL_DEFAULT = 'postgresql://root@localhost:5432/postgres?host=/var/run/postgresql';
export const PG_SETUP_HINT = 'start it with `sudo scripts/ci-postgres.sh` (CI runs it from .ci/run), or point TWOPC_TEST_PG_URL at a server with max_prepared_transactions > 0';

/** How long one admin statement may take (CREATE DATABASE copies a template). */
const ADMIN_STATEMENT_TIMEOUT_MS = 60_000;
const CONNECT_TIMEOUT_MS = 5_000;

/** The maintenance database URL of the shared test server. */
export function testPgUrl(): string {
  return process.env.TWOPC_TEST_PG_URL ?? PG_URL_DEFAULT;
}

/** The same server, another database. */
export function databaseUrl(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withClient<T>(url: string, run: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, statement_timeout: ADMIN_STATEMENT_TIMEOUT_MS });
  // A server that goes away while this client is open must not take the process with it.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Fails, with how to start it, when the server is not there or cannot prepare
 * transactions. Tests call it first: CI always provides PostgreSQL, so its
 * absence is a failure, never a skip.
 */
export async function requirePostgres(url: string = testPgUrl()): Promise<void> {
  let prepared: string;
  try {
    prepared = await withClient(url, async (c) => (await c.query<{ m: string }>(`SELECT current_setting('max_prepared_transactions') AS m`)).rows[0]?.m ?? '0');
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${url} (${error instanceof Error ? error.message : String(error)}): ${PG_SETUP_HINT}`);
  }
  if (Number(prepared) < 1) throw new Error(`PostgreSQL at ${url} has max_prepared_transactions = ${prepared}: ${PG_SETUP_HINT}`);
}

/**
 * The same check, as a value: a test file's beforeAll keeps it and every test's
 * beforeEach throws it, so each test fails (rather than being skipped) without a server.
 */
export async function postgresUnavailable(url: string = testPgUrl()): Promise<Error | undefined> {
  return requirePostgres(url).then(
    () => undefined,
    (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
  );
}

export interface PreparedRow {
  readonly gid: string;
  readonly prepared: Date;
}

/** The transactions PostgreSQL holds prepared in the database `url` names. */
export async function preparedIn(url: string): Promise<PreparedRow[]> {
  return withClient(url, async (c) => (await c.query<PreparedRow>('SELECT gid, prepared FROM pg_prepared_xacts WHERE database = current_database() ORDER BY prepared')).rows);
}

/** Rolls back every prepared transaction of that database (ROLLBACK PREPARED runs only inside its own database). */
export async function rollbackAllPrepared(url: string): Promise<number> {
  return withClient(url, async (c) => {
    const rows = (await c.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE database = current_database()')).rows;
    for (const r of rows) await c.query(`ROLLBACK PREPARED ${pg.escapeLiteral(r.gid)}`).catch(() => undefined);
    return rows.length;
  });
}

/** Runs statements in a database (one connection, autocommit). */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
  return withClient(url, async (c) => (await c.query<R>(text, params)).rows);
}

/** A database of one test or scenario run on a shared server; drop() leaves nothing behind, prepared transactions included. */
export class TempDatabase {
  private constructor(
    readonly serverUrl: string,
    readonly name: string,
  ) {}

  get url(): string {
    return databaseUrl(this.serverUrl, this.name);
  }

  static async create(prefix: string, serverUrl: string = testPgUrl()): Promise<TempDatabase> {
    const safe = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30);
    const name = `twopc_${safe}_${process.pid}_${randomBytes(4).toString('hex')}`;
    await withClient(serverUrl, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
    return new TempDatabase(serverUrl, name);
  }

  async drop(): Promise<void> {
    await rollbackAllPrepared(this.url).catch(() => undefined);
    await withClient(this.serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(this.name)} WITH (FORCE)`));
  }
}

// ---- a server of our own ---------------------------------------------------------------------

/** Prepared transactions our own server allows: the scenario's concurrency is far below. */
const OWN_PREPARED_XACTS_MAX = 64;
const OWN_CONNECTIONS_MAX = 100;
const PG_CTL_TIMEOUT_S = 60;

/** The directory of initdb/pg_ctl: TWOPC_PG_BIN, else the newest /usr/lib/postgresql/N/bin, else pg_config's. */
export function postgresBinDir(): string {
  const fromEnv = process.env.TWOPC_PG_BIN;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (newest !== undefined) return path.join(root, newest, 'bin');
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`cannot find PostgreSQL's initdb (set TWOPC_PG_BIN): ${PG_SETUP_HINT}`);
  }
}

/** PostgreSQL refuses to run as root: as root, our server runs as the `postgres` user. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root, but there is no `postgres` user to run our own PostgreSQL server as');
  }
}

function run(bin: string, args: readonly string[], user: { uid: number; gid: number } | undefined, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], ...(user ?? {}), env: { ...process.env, LC_ALL: 'C' } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4_000)));
    child.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4_000)));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(bin)} ${args.join(' ')} exited ${code}: ${output.trim()}`))));
  });
}

/**
 * A PostgreSQL server in a temp directory on a free loopback port, with trust
 * authentication for user postgres on 127.0.0.1 only, prepared transactions on.
 * `restart('immediate')` is a crash of the server: prepared transactions survive it.
 */
export class OwnPostgres {
  private stopped = false;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly user: { uid: number; gid: number } | undefined,
  ) {}

  get serverUrl(): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/postgres`;
  }

  url(database: string): string {
    return databaseUrl(this.serverUrl, database);
  }

  get logFile(): string {
    return path.join(this.dir, 'server.log');
  }

  static async start(prefix: string): Promise<OwnPostgres> {
    const bin = postgresBinDir();
    const user = serverUser();
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), `twopc-pg-${prefix}-`));
    const data = path.join(dir, 'data');
    await fs.promises.mkdir(data, { mode: 0o700 });
    if (user) for (const d of [dir, data]) await fs.promises.chown(d, user.uid, user.gid);
    const server = new OwnPostgres(dir, await freePort(), bin, user);
    try {
      await run(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], user, dir);
      const conf = [
        `listen_addresses = '127.0.0.1'`,
        `port = ${server.port}`,
        `unix_socket_directories = '${dir}'`,
        `max_prepared_transactions = ${OWN_PREPARED_XACTS_MAX}`,
        `max_connections = ${OWN_CONNECTIONS_MAX}`,
      ].join('\n');
      await fs.promises.appendFile(path.join(data, 'postgresql.conf'), `\n# twopc scenario server\n${conf}\n`);
      await server.pgCtl(['start', '-l', server.logFile]);
      await requirePostgres(server.serverUrl);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  private pgCtl(args: readonly string[]): Promise<void> {
    return run(path.join(this.bin, 'pg_ctl'), ['-D', path.join(this.dir, 'data'), '-w', '-t', String(PG_CTL_TIMEOUT_S), ...args], this.user, this.dir);
  }

  async createDatabase(name: string): Promise<string> {
    await withClient(this.serverUrl, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
    return this.url(name);
  }

  /** `immediate` stops without a shutdown checkpoint (a crash); the server recovers from its WAL on start. */
  async restart(mode: 'fast' | 'immediate' = 'immediate'): Promise<void> {
    await this.pgCtl(['restart', '-m', mode, '-l', this.logFile]);
  }

  /** Stops the server and removes its directory (unless `keepFiles`, for a look at its log). */
  async stop(options: { keepFiles?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (fs.existsSync(path.join(this.dir, 'data', 'postmaster.pid'))) await this.pgCtl(['stop', '-m', 'fast']).catch(() => this.pgCtl(['stop', '-m', 'immediate']).catch(() => undefined));
    if (options.keepFiles !== true) await fs.promises.rm(this.dir, { recursive: true, force: true });
  }
}
