/**
 * `twopc participant`: one participant with the built-in key-value resource or
 * a PostgreSQL database (`--resource postgres --pg-url URL`), listening on its
 * own port with its own WAL.
 *
 * It listens before it recovers, so /healthz answers `recovering: true`
 * meanwhile and requests wait for recovery; the URL it listens on is also its
 * own identity among the peers a prepare lists.
 */
import { CrashPoints, crashPointAtStart } from '../shared/crash.ts';
import { chaosWalFs } from '../shared/fsync-fault.ts';
import { listen } from '../shared/http/app.ts';
import type { ServerLimits } from '../shared/http/limits.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { Metrics } from '../shared/metrics.ts';
import { parseServiceUrl } from '../shared/urls.ts';
import { BLOCKING_SYNC_MS_MAX_DEFAULT, type SyncPolicy } from '../wal/options.ts';
import { createParticipant, type CreateParticipantOptions } from './library.ts';
import { KvStore } from './resources/kv.ts';
import { checkPostgresUrl, createPostgresResource, EXIT_INVALID_CONFIG, PostgresStartError, type PostgresResourceOptions } from './resources/postgres.ts';
import type { Resource } from './resources/resource.ts';
import { createParticipantApp } from './server.ts';

export interface StartParticipantOptions {
  readonly name: string;
  readonly port: number;
  readonly host?: string;
  readonly dataDir: string;
  /** The coordinator's base URL; a malformed one is a ConfigError. */
  readonly coordinatorUrl: string;
  /** The other members of an HA coordinator group (`--coordinator URL,URL,...` after the first). */
  readonly otherCoordinatorUrls?: readonly string[];
  /** Peers trusted by configuration (see runtime/peers.ts). */
  readonly peers?: readonly string[];
  readonly fsync: SyncPolicy;
  readonly token?: string;
  readonly chaos?: boolean;
  readonly lockWaitMs?: number;
  /** HTTP server bounds (connections, request timeouts); shared/http/limits.ts has the defaults. */
  readonly http?: Partial<ServerLimits>;
  /** The state under 2PC: the built-in key-value store (default) or a PostgreSQL database. */
  readonly resource?: ResourceKind;
  /** The database, with `resource: 'postgres'`. */
  readonly pgUrl?: string;
  /** PostgreSQL tuning (lock_timeout, pool size, ...), with `resource: 'postgres'`. */
  readonly postgres?: Partial<Omit<PostgresResourceOptions, 'name' | 'url' | 'pool'>>;
  readonly logger?: Logger;
  /** A crash point to arm at start; defaults to TWOPC_CRASH_AT with --chaos. */
  readonly crashAt?: string;
  /** Fail-stop hook; exits the process by default. */
  readonly onFatal?: CreateParticipantOptions['onFatal'];
  /** Core tuning for tests and demos (decision wait, inquiry backoff, limits). */
  readonly core?: CreateParticipantOptions['core'];
  /** Serve `POST /v1/2pc/batch` (default); false is one request per message only (`--no-batching`). */
  readonly batching?: boolean;
  /** The WAL's `blockingSyncMsMax` (`--wal-blocking-sync-ms`); the WAL's default when unset. */
  readonly walBlockingSyncMsMax?: number;
}

export const RESOURCE_KINDS = ['kv', 'postgres'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

export interface RunningParticipant {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startParticipant(options: StartParticipantOptions): Promise<RunningParticipant> {
  const coordinatorUrl = parseServiceUrl(options.coordinatorUrl, 'coordinator URL');
  const logger = options.logger ?? createLogger({ role: 'participant', name: options.name, sync: options.chaos === true });
  const metrics = new Metrics();
  const crashAt = crashPointAtStart(options.chaos === true, options.crashAt);
  const crashPoints = new CrashPoints(crashAt ? { armed: crashAt } : {});
  const opened = await openResource(options, logger);
  const { resource, kv } = opened;
  const chaosFs = chaosWalFs(options.chaos === true);
  const participant = createParticipant({
    name: options.name,
    dataDir: options.dataDir,
    coordinatorUrl,
    ...(options.otherCoordinatorUrls !== undefined && { otherCoordinatorUrls: options.otherCoordinatorUrls }),
    ...(options.peers !== undefined && { peers: options.peers }),
    resource,
    fsync: options.fsync,
    logger,
    metrics,
    crashPoints,
    ...(options.token !== undefined && { token: options.token }),
    ...(options.chaos !== undefined && { chaos: options.chaos }),
    ...(options.lockWaitMs !== undefined && { lockWaitMs: options.lockWaitMs }),
    ...(options.onFatal !== undefined && { onFatal: options.onFatal }),
    ...(options.core !== undefined && { core: options.core }),
    ...(options.batching !== undefined && { batching: options.batching }),
    // A process of its own: its fdatasyncs block its event loop as the WAL's default says (the
    // library keeps an embedded one's in the thread pool). Chaos only: TWOPC_FAIL_FSYNC_AFTER=n
    // injects an fsync failure (shared/fsync-fault.ts).
    wal: { blockingSyncMsMax: options.walBlockingSyncMsMax ?? BLOCKING_SYNC_MS_MAX_DEFAULT, ...(chaosFs !== undefined && { fs: chaosFs }) },
  });
  const app = createParticipantApp({
    name: options.name,
    participant,
    ...(kv !== undefined && { kv }),
    metrics,
    crashPoints,
    logger,
    ...(options.token !== undefined && { token: options.token }),
    ...(options.chaos !== undefined && { chaos: options.chaos }),
  });
  let listening: Awaited<ReturnType<typeof listen>> | undefined;
  try {
    listening = await listen(app, options.port, options.host ?? '127.0.0.1', { limits: options.http ?? {}, metrics, logger });
    await participant.start({ selfUrl: listening.url });
  } catch (error) {
    await listening?.close();
    await opened.close();
    throw error;
  }
  logger.info({ step: 'listening', url: listening.url, coordinator: coordinatorUrl }, `participant ${options.name} at ${listening.url}`);
  let closing: Promise<void> | undefined;
  return {
    url: listening.url,
    port: listening.port,
    close: () => {
      closing ??= (async () => {
        await listening.close();
        await participant.stop();
        await opened.close();
      })();
      return closing;
    },
  };
}

interface OpenedResource {
  readonly resource: Resource;
  /** The key-value store, whose reads the server adds (GET /v1/kv); absent for PostgreSQL. */
  readonly kv?: KvStore;
  close(): Promise<void>;
}

/**
 * The resource the options name, ready to use. A PostgreSQL database is reached
 * and checked here, before the WAL is opened, so a wrong --pg-url or a database
 * that is down stops the start with one line (PostgresStartError, its exit code).
 */
async function openResource(options: StartParticipantOptions, logger: Logger): Promise<OpenedResource> {
  const kind = options.resource ?? 'kv';
  if (kind === 'kv') {
    if (options.pgUrl !== undefined) throw new PostgresStartError('--pg-url is for --resource postgres; this participant uses the key-value store', EXIT_INVALID_CONFIG);
    const kv = new KvStore();
    return { resource: kv, kv, close: async () => undefined };
  }
  if (kind !== 'postgres') throw new PostgresStartError(`--resource must be kv or postgres, got "${String(kind)}"`, EXIT_INVALID_CONFIG);
  if (options.pgUrl === undefined || options.pgUrl === '') {
    throw new PostgresStartError('--resource postgres needs --pg-url postgres://user@host:port/database (or TWOPC_PG_URL)', EXIT_INVALID_CONFIG);
  }
  checkPostgresUrl(options.pgUrl);
  const pg = createPostgresResource({
    ...options.postgres,
    name: options.name,
    url: options.pgUrl,
    onError: (error, context) => logger.warn({ step: `postgres.${context}-error`, err: error.message }, `PostgreSQL ${context} error`),
  });
  try {
    await pg.start();
  } catch (error) {
    await pg.close().catch(() => undefined);
    throw error;
  }
  return { resource: pg, close: () => pg.close() };
}
