/**
 * A participant any express app can embed, to put its own state under
 * two-phase commit:
 *
 *   const participant = createParticipant({ name: 'inventory', dataDir, coordinatorUrl, resource: myResource });
 *   app.use(participant.router);            // mounts /v1/2pc/*
 *   const { url } = await listen(app, 0);
 *   await participant.start({ selfUrl: url });  // opens the WAL and recovers
 *
 * The router can be mounted before `start`: requests that arrive during
 * recovery wait for it (bounded), then run. `stop` checkpoints, waits for
 * queued effects and closes the WAL.
 */
import type { Router } from 'express';
import { systemClock, Timers, type Clock } from '../shared/clock.ts';
import { CrashPoints } from '../shared/crash.ts';
import { TwopcError } from '../shared/errors.ts';
import { EXIT_CODES } from '../shared/exit-codes.ts';
import { createHttpClient } from '../shared/http/client.ts';
import { silentLogger, type Logger } from '../shared/logger.ts';
import { Metrics } from '../shared/metrics.ts';
import type { TxId } from '../shared/types.ts';
import { parseServiceUrl } from '../shared/urls.ts';
import { openFileLog } from '../wal/file-log.ts';
import type { FileLogOptions, SyncPolicy } from '../wal/options.ts';
import { createParticipantRouter } from './adapters/routes.ts';
import type { FastRoute } from '../shared/http/fast-lane.ts';
import type { ParticipantRoutes } from './api.ts';
import type { InDoubtView, ParticipantConfig, ParticipantState } from './core/index.ts';
import { KvStore } from './resources/kv.ts';
import { coreKeysOf, type Resource } from './resources/resource.ts';
import { TrustedPeers } from './runtime/peers.ts';
import { ParticipantRuntime } from './runtime/runtime.ts';

/** An embedded participant's WAL syncs off its host's event loop unless asked (`wal.blockingSyncMsMax`). */
export const EMBEDDED_BLOCKING_SYNC_MS_MAX = 0;

export interface CreateParticipantOptions {
  readonly name: string;
  /** The participant's WAL directory (created when missing). */
  readonly dataDir: string;
  /**
   * The coordinator's base URL: outcome inquiries go here, never to the URL a prepare names,
   * and its `GET /v1/participants` says which peers to trust (see runtime/peers.ts).
   */
  readonly coordinatorUrl: string;
  /**
   * With an HA coordinator group (`twopc coordinator --etcd ... --group ...`): the other members'
   * base URLs. Inquiries go to whichever member answers, and each is trusted like `coordinatorUrl`.
   */
  readonly otherCoordinatorUrls?: readonly string[];
  /** Peers trusted by configuration, besides those the coordinator vouches for. */
  readonly peers?: readonly string[];
  /** The state under 2PC; the built-in key-value store when omitted. */
  readonly resource?: Resource;
  /** WAL sync policy; 'group' by default. */
  readonly fsync?: SyncPolicy;
  /** Required on inbound /v1/2pc requests, and sent on inquiries to the coordinator and peers. */
  readonly token?: string;
  /** How long a prepare waits for a locked key before voting no. */
  readonly lockWaitMs?: number;
  /** Whether crash points may be armed (the standalone server also exposes /v1/chaos). */
  readonly chaos?: boolean;
  readonly logger?: Logger;
  /** This participant's URL as the coordinator lists it; also settable in `start`. */
  readonly selfUrl?: string;
  /**
   * Serve `POST /v1/2pc/batch`, where a coordinator sends many messages in one request (default).
   * False leaves only the one-message routes; a batching coordinator then falls back to them.
   */
  readonly batching?: boolean;

  // ---- for tests, tuning and the harness --------------------------------------------------
  /** Further core settings: decision wait, inquiry backoff, limits. */
  readonly core?: Omit<ParticipantConfig, 'keysOf' | 'selfUrl' | 'lockWaitMs'>;
  readonly clock?: Clock;
  readonly metrics?: Metrics;
  readonly crashPoints?: CrashPoints;
  /** Fail-stop hook, after the fatal log line. Default: exit the process with code 1. */
  readonly onFatal?: (error: unknown) => void;
  readonly checkpointEveryRecords?: number;
  readonly checkpointIntervalMs?: number;
  /**
   * Options of the participant's WAL (wal/options.ts). One differs from the WAL's own default: an
   * embedded participant shares its host's event loop, so its fdatasyncs stay in libuv's thread
   * pool (`blockingSyncMsMax: 0`) unless this sets it; `twopc participant` sets the WAL's 10 ms.
   */
  readonly wal?: Omit<FileLogOptions, 'syncPolicy'>;
  readonly bodyLimitBytes?: number;
}

export interface Participant {
  /** The /v1/2pc routes; mount with `app.use(participant.router)`. */
  readonly router: Router;
  /**
   * The table those routes are built from, with this resource's op schema: add
   * `routeList(participant.routes)` to the host app's OpenAPI document.
   */
  readonly routes: ParticipantRoutes;
  /**
   * The hot routes (the protocol routes: prepare, commit, abort, batch), also in `router`: the standalone server answers their plain
   * requests past express (../shared/http/fast-lane.ts). A host app needs nothing from this.
   */
  readonly fastRoutes: readonly FastRoute[];
  /** Opens the WAL and recovers. Requests wait for it. */
  start(options?: { selfUrl?: string }): Promise<void>;
  /** Checkpoints, drains queued effects, closes the WAL. Idempotent. */
  stop(): Promise<void>;
  readonly recovering: boolean;
  /** Resolves once `start` has finished recovering. */
  ready(): Promise<void>;
  readonly resource: Resource;
  readonly metrics: Metrics;
  readonly crashPoints: CrashPoints;
  /** The in-doubt transactions, longest-blocked first. */
  inDoubt(): InDoubtView[];
  /** Which transaction holds the lock on `key`, if any. */
  lockHolder(key: string): TxId | undefined;
  /** The core's state, for tests. Undefined before `start`. */
  readonly coreState: ParticipantState | undefined;
}

const defaultOnFatal = (): void => {
  process.exit(EXIT_CODES.failStop);
};

export function createParticipant(options: CreateParticipantOptions): Participant {
  if (typeof options.name !== 'string' || options.name.length === 0) throw new TypeError('Expected `name` to be a non-empty string.');
  if (typeof options.dataDir !== 'string' || options.dataDir.length === 0) throw new TypeError('Expected `dataDir` to be a non-empty string.');
  if (typeof options.coordinatorUrl !== 'string') throw new TypeError('Expected `coordinatorUrl` to be the coordinator\'s base URL.');
  // Inquiries go only here (runtime/peers.ts says why); a bad URL is a ConfigError, exit 64 from the CLI.
  const coordinatorUrl = parseServiceUrl(options.coordinatorUrl, 'coordinatorUrl');
  const otherCoordinatorUrls = (options.otherCoordinatorUrls ?? []).map((u) => parseServiceUrl(u, 'otherCoordinatorUrls'));
  const resource = options.resource ?? new KvStore();
  // A resource that can be neither locked by the core nor locks for itself is refused here, not at start.
  coreKeysOf(resource);
  const logger = options.logger ?? silentLogger();
  const metrics = options.metrics ?? new Metrics();
  const crashPoints = options.crashPoints ?? new CrashPoints();
  const clock = options.clock ?? systemClock;

  let runtime: ParticipantRuntime | undefined;
  let closeLog: (() => Promise<void>) | undefined;
  let selfUrl = options.selfUrl;
  const http = createHttpClient({ ...(options.token !== undefined && { token: options.token }), timeoutMs: 2_000 });
  const peers = new TrustedPeers({
    coordinators: [coordinatorUrl, ...otherCoordinatorUrls],
    ...(options.peers !== undefined && { peers: options.peers }),
    http,
    logger,
    now: () => clock.now(),
  });
  let starting = false;
  let stopped = false;

  let markReady!: () => void;
  let failReady!: (error: unknown) => void;
  const readyPromise = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  // A failed start is reported by start() itself; waiting requests get a 503 from ready().
  readyPromise.catch(() => undefined);
  const ready = () =>
    readyPromise.catch(() => {
      throw new TwopcError('unavailable', 'The participant failed to start; see its log.');
    });

  const { router, routes, fast } = createParticipantRouter({
    resource,
    ready,
    isReady: () => runtime !== undefined && !runtime.recovering,
    vetPeers: async (participants, txId) => {
      const { trusted, dropped } = await peers.vet(participants, selfUrl);
      if (dropped.length > 0) {
        logger.warn({ txId, step: 'peers.untrusted', dropped }, 'a prepare named peers this participant does not trust; it will never contact them');
      }
      return trusted;
    },
    ...(options.token !== undefined && { token: options.token }),
    ...(options.bodyLimitBytes !== undefined && { bodyLimitBytes: options.bodyLimitBytes }),
    batching: options.batching ?? true,
    metrics,
    logger,
    target: {
      request: (make) => {
        if (runtime === undefined) return Promise.reject(new TwopcError('unavailable', 'The participant has not started.'));
        return runtime.request(make);
      },
    },
  });

  return {
    router,
    routes,
    fastRoutes: fast,
    resource,
    metrics,
    crashPoints,
    ready,
    get recovering() {
      return runtime?.recovering ?? true;
    },
    get coreState() {
      return runtime?.coreState;
    },
    inDoubt: () => runtime?.inDoubt() ?? [],
    lockHolder: (key) => runtime?.lockHolder(key),

    async start(startOptions = {}) {
      if (starting) throw new Error('participant.start() called twice');
      starting = true;
      try {
        const { log, recovered } = await openFileLog(options.dataDir, {
          owner: `participant ${options.name}`,
          onSync: metrics.observeWalSync,
          blockingSyncMsMax: EMBEDDED_BLOCKING_SYNC_MS_MAX,
          ...options.wal,
          syncPolicy: options.fsync ?? 'group',
        });
        closeLog = () => log.close();
        if (recovered.tornTail !== undefined) logger.warn({ step: 'wal.torn-tail', ...recovered.tornTail }, 'cut a torn tail off the WAL');
        selfUrl = startOptions.selfUrl ?? options.selfUrl;
        runtime = new ParticipantRuntime({
          name: options.name,
          log,
          recovered,
          resource,
          http,
          clock,
          timers: new Timers(),
          crashPoints,
          logger,
          metrics,
          core: {
            ...options.core,
            ...(options.lockWaitMs !== undefined && { lockWaitMs: options.lockWaitMs }),
            ...(selfUrl !== undefined && { selfUrl }),
          },
          coordinatorUrl,
          ...(otherCoordinatorUrls.length > 0 && { otherCoordinatorUrls }),
          ...(options.checkpointEveryRecords !== undefined && { checkpointEveryRecords: options.checkpointEveryRecords }),
          ...(options.checkpointIntervalMs !== undefined && { checkpointIntervalMs: options.checkpointIntervalMs }),
          onFatal: options.onFatal ?? defaultOnFatal,
        });
        // Learn the coordinator's participant list while recovering, so the first prepare after a
        // start does not wait a round trip for it (bounded by the refresh timeout; never throws).
        const learning = peers.refresh();
        await runtime.start();
        await learning;
        logger.info({ step: 'started', inDoubt: runtime.inDoubt().length, lastLsn: log.lastLsn }, 'participant ready');
        markReady();
      } catch (error) {
        failReady(error);
        await closeLog?.().catch(() => undefined);
        http.close();
        throw error;
      }
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      await runtime?.stop();
      // After a fail-stop the log is poisoned and may refuse to close cleanly; stopping must still finish.
      await closeLog?.().catch((error: unknown) => logger.warn({ err: error, step: 'wal.close-failed' }));
      http.close();
    },
  };
}
