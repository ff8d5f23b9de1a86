/**
 * `twopc coordinator`: one coordinator with its own WAL, talking only to the
 * participants it was given.
 *
 * It listens before it recovers, so /healthz answers `recovering: true` and
 * outcome inquiries answer "pending" while the WAL is read; its URL is known
 * only once it listens (port 0 picks one), and every prepare carries it.
 */
import { Timers, systemClock, waitAtMost } from '../shared/clock.ts';
import { CrashPoints, crashPointAtStart } from '../shared/crash.ts';
import { TwopcError } from '../shared/errors.ts';
import { EXIT_CODES } from '../shared/exit-codes.ts';
import { checkParticipants, parseServiceUrl } from '../shared/urls.ts';
import { listen } from '../shared/http/app.ts';
import type { ServerLimits } from '../shared/http/limits.ts';
import { createHttpClient } from '../shared/http/client.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { Metrics } from '../shared/metrics.ts';
import type { ProtocolVariant } from '../shared/types.ts';
import { chaosWalFs } from '../shared/fsync-fault.ts';
import { openFileLog } from '../wal/file-log.ts';
import type { FileLogOptions, SyncPolicy } from '../wal/options.ts';
import { batchLimitsFor } from './adapters/batches.ts';
import { createHttpTransport } from './adapters/http-transport.ts';
import { CONFIG_DEFAULTS, type CoordinatorConfig } from './core/index.ts';
import { CoordinatorRuntime, isOutcomeInquiry, pendingAnswer, type Answer, type ClientRequest } from './runtime/runtime.ts';
import { createCoordinatorApp, type CoordinatorTarget } from './server.ts';
import { openInDoubtSurvey } from './in-doubt.ts';

export interface StartCoordinatorOptions {
  readonly name?: string;
  readonly port: number;
  readonly host?: string;
  /**
   * The base URL others reach this coordinator by, when it is not the one it listens on (a
   * container listening on 0.0.0.0 is reached by its service name). It is the `coordinator`
   * of every prepare and, in an HA group, the leader URL a follower names.
   */
  readonly advertiseUrl?: string;
  readonly dataDir: string;
  /** name -> base URL: the only participants this coordinator talks to; two names for one URL are a ConfigError. */
  readonly participants: Readonly<Record<string, string>>;
  readonly fsync: SyncPolicy;
  /** Required of clients, and sent to participants (one cluster, one token). */
  readonly token?: string;
  readonly chaos?: boolean;
  readonly protocol?: ProtocolVariant;
  /** The live lab's URL (`twopc cluster` passes it): the dashboard links to it. */
  readonly labUrl?: string;
  readonly logger?: Logger;
  /** A crash point to arm at start; defaults to TWOPC_CRASH_AT with --chaos. */
  readonly crashAt?: string;
  /** Fail-stop hook; exits the process by default. */
  readonly onFatal?: (error: unknown) => void;
  /** Core tuning for tests and demos (timeouts, reply wait, backoff, limits). */
  readonly core?: Partial<Omit<CoordinatorConfig, 'name' | 'selfUrl' | 'participants' | 'protocol'>>;
  /** HTTP server bounds (connections, request timeouts); shared/http/limits.ts has the defaults. */
  readonly http?: Partial<ServerLimits>;
  /** WAL tuning (segment size...); the sync policy comes from `fsync`. */
  readonly wal?: Omit<FileLogOptions, 'syncPolicy'>;
  /** A checkpoint after this many records (bounds WAL growth). */
  readonly checkpointEveryRecords?: number;
  /** How long a client request that arrives during recovery waits for it before a 503. */
  readonly recoveryWaitMs?: number;
  /**
   * Messages bound for one participant while requests to it are in flight share the next
   * request (`POST /v1/2pc/batch`). On by default; false is one request per message (`--no-batching`).
   */
  readonly batching?: boolean;
}

export interface RunningCoordinator {
  readonly url: string;
  readonly port: number;
  /** The runtime, for tests and embedding. */
  readonly runtime: CoordinatorRuntime;
  close(): Promise<void>;
}

export async function startCoordinator(options: StartCoordinatorOptions): Promise<RunningCoordinator> {
  const name = options.name ?? 'coordinator';
  // Before anything listens or opens: a list where two names reach one participant would
  // send it two prepares under one txId (issue 7), so it is refused here with a ConfigError.
  const participants = checkParticipants(options.participants);
  const advertiseUrl = options.advertiseUrl === undefined ? undefined : parseServiceUrl(options.advertiseUrl, '--advertise-url');
  const logger = options.logger ?? createLogger({ role: 'coordinator', name, sync: options.chaos === true });
  const metrics = new Metrics();
  const crashAt = crashPointAtStart(options.chaos === true, options.crashAt);
  const crashPoints = new CrashPoints(crashAt ? { armed: crashAt } : {});
  const onFatal =
    options.onFatal ??
    (() => {
      // Fail-stop: no more acks for anything; a restart recovers from the WAL.
      process.exit(EXIT_CODES.failStop);
    });

  // The routes are live before recovery ends: inquiries are answered at once ("pending" until
  // the WAL is read), and client requests wait for recovery, so a caller that only polled
  // /healthz for a 200 is not refused.
  let runtime: CoordinatorRuntime | undefined;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const recoveryWaitMs = options.recoveryWaitMs ?? 10_000;
  const target: CoordinatorTarget = {
    get recovering() {
      return runtime?.recovering ?? true;
    },
    async request(req: ClientRequest): Promise<Answer> {
      if (!isOutcomeInquiry(req) && (runtime === undefined || runtime.recovering)) {
        await waitAtMost(ready, recoveryWaitMs);
      }
      if (runtime) return runtime.request(req);
      if (isOutcomeInquiry(req)) return pendingAnswer(req);
      throw new TwopcError('unavailable', 'The coordinator is recovering.');
    },
  };
  const inDoubt = openInDoubtSurvey(options.participants, options.token);
  const app = createCoordinatorApp({
    name,
    target,
    surveyInDoubt: inDoubt.survey,
    participants: options.participants,
    metrics,
    crashPoints,
    logger,
    ...(options.token !== undefined && { token: options.token }),
    ...(options.chaos !== undefined && { chaos: options.chaos }),
    ...(options.labUrl !== undefined && { labUrl: options.labUrl }),
  });
  const listening = await listen(app, options.port, options.host ?? '127.0.0.1', { limits: options.http ?? {}, metrics, logger });

  const prepareTimeoutMs = options.core?.prepareTimeoutMs ?? CONFIG_DEFAULTS.prepareTimeoutMs;
  const http = createHttpClient({ ...(options.token !== undefined && { token: options.token }), timeoutMs: prepareTimeoutMs });
  const timers = new Timers();
  let log: Awaited<ReturnType<typeof openFileLog>>['log'] | undefined;
  try {
    // Chaos only: TWOPC_FAIL_FSYNC_AFTER=n injects an fsync failure (shared/fsync-fault.ts).
    const chaosFs = chaosWalFs(options.chaos === true);
    const opened = await openFileLog(options.dataDir, {
      owner: `coordinator ${name}`,
      onSync: metrics.observeWalSync,
      ...options.wal,
      ...(chaosFs !== undefined && { fs: chaosFs }),
      syncPolicy: options.fsync,
    });
    log = opened.log;
    if (opened.recovered.tornTail) logger.warn({ step: 'wal.torn-tail', ...opened.recovered.tornTail }, 'cut a torn tail off the WAL');
    runtime = new CoordinatorRuntime({
      config: {
        ...options.core,
        name,
        selfUrl: advertiseUrl ?? listening.url,
        participants,
        protocol: options.protocol ?? 'presumed-abort',
      },
      log,
      recovered: opened.recovered,
      transport: createHttpTransport({
        http,
        prepareTimeoutMs,
        batching: options.batching ?? true,
        batch: batchLimitsFor(options.core),
        metrics,
        logger,
      }),
      clock: systemClock,
      timers,
      crashPoints,
      logger,
      metrics,
      onFatal,
      ...(options.checkpointEveryRecords !== undefined && { checkpointEveryRecords: options.checkpointEveryRecords }),
    });
    await runtime.start();
    markReady();
  } catch (error) {
    await listening.close();
    await log?.close().catch(() => undefined);
    http.close();
    inDoubt.close();
    throw error;
  }
  const running = runtime;
  logger.info(
    { step: 'listening', url: listening.url, participants, protocol: options.protocol ?? 'presumed-abort' },
    `coordinator ${name} at ${listening.url}`,
  );

  let closing: Promise<void> | undefined;
  return {
    url: listening.url,
    port: listening.port,
    runtime: running,
    close: () => {
      closing ??= (async () => {
        await listening.close();
        await running.stop();
        await log?.close().catch((error: unknown) => logger.error({ err: error, step: 'wal.close-failed' }));
        http.close();
        inDoubt.close();
      })();
      return closing;
    },
  };
}
