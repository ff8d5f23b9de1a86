/**
 * `twopc participant`: one participant with the built-in key-value resource,
 * listening on its own port with its own WAL.
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
import type { SyncPolicy } from '../wal/options.ts';
import { createParticipant, type CreateParticipantOptions } from './library.ts';
import { KvStore } from './resources/kv.ts';
import { createParticipantApp } from './server.ts';

export interface StartParticipantOptions {
  readonly name: string;
  readonly port: number;
  readonly host?: string;
  readonly dataDir: string;
  /** The coordinator's base URL; a malformed one is a ConfigError. */
  readonly coordinatorUrl: string;
  /** Peers trusted by configuration (see runtime/peers.ts). */
  readonly peers?: readonly string[];
  readonly fsync: SyncPolicy;
  readonly token?: string;
  readonly chaos?: boolean;
  readonly lockWaitMs?: number;
  /** HTTP server bounds (connections, request timeouts); shared/http/limits.ts has the defaults. */
  readonly http?: Partial<ServerLimits>;
  readonly logger?: Logger;
  /** A crash point to arm at start; defaults to TWOPC_CRASH_AT with --chaos. */
  readonly crashAt?: string;
  /** Fail-stop hook; exits the process by default. */
  readonly onFatal?: CreateParticipantOptions['onFatal'];
  /** Core tuning for tests and demos (decision wait, inquiry backoff, limits). */
  readonly core?: CreateParticipantOptions['core'];
}

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
  const kv = new KvStore();
  const chaosFs = chaosWalFs(options.chaos === true);
  const participant = createParticipant({
    name: options.name,
    dataDir: options.dataDir,
    coordinatorUrl,
    ...(options.peers !== undefined && { peers: options.peers }),
    resource: kv,
    fsync: options.fsync,
    logger,
    metrics,
    crashPoints,
    ...(options.token !== undefined && { token: options.token }),
    ...(options.chaos !== undefined && { chaos: options.chaos }),
    ...(options.lockWaitMs !== undefined && { lockWaitMs: options.lockWaitMs }),
    ...(options.onFatal !== undefined && { onFatal: options.onFatal }),
    ...(options.core !== undefined && { core: options.core }),
    // Chaos only: TWOPC_FAIL_FSYNC_AFTER=n injects an fsync failure (shared/fsync-fault.ts).
    ...(chaosFs !== undefined && { wal: { fs: chaosFs } }),
  });
  const app = createParticipantApp({
    name: options.name,
    participant,
    kv,
    metrics,
    crashPoints,
    logger,
    ...(options.token !== undefined && { token: options.token }),
    ...(options.chaos !== undefined && { chaos: options.chaos }),
  });
  const listening = await listen(app, options.port, options.host ?? '127.0.0.1', { limits: options.http ?? {}, metrics, logger });
  try {
    await participant.start({ selfUrl: listening.url });
  } catch (error) {
    await listening.close();
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
      })();
      return closing;
    },
  };
}
