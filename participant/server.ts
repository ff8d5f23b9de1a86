/**
 * The standalone participant's express app: the shared base (JSON with a size
 * limit, bearer token, /healthz, /metrics, chaos routes), the /v1/2pc routes
 * of the embedded participant, and the key-value reads (with the key-value resource).
 */
import type { Express } from 'express';
import type { CrashPoints } from '../shared/crash.ts';
import { createBaseApp, finishApp } from '../shared/http/app.ts';
import { mountFast } from '../shared/http/fast-lane.ts';
import type { Logger } from '../shared/logger.ts';
import type { Metrics } from '../shared/metrics.ts';
import { createKvRouter } from './adapters/kv-routes.ts';
import { KV_ROUTES, routeList } from './api.ts';
import type { Participant } from './library.ts';
import type { KvStore } from './resources/kv.ts';

export interface ParticipantAppOptions {
  readonly name: string;
  readonly participant: Participant;
  /** The key-value store, when that is the resource: its reads are served at /v1/kv. */
  readonly kv?: KvStore;
  readonly metrics: Metrics;
  readonly crashPoints: CrashPoints;
  readonly logger: Logger;
  readonly token?: string;
  readonly chaos?: boolean;
}

export function createParticipantApp(options: ParticipantAppOptions): Express {
  const { participant } = options;
  const app = createBaseApp({
    role: 'participant',
    name: options.name,
    ...(options.token !== undefined && { token: options.token }),
    chaos: options.chaos === true,
    isRecovering: () => participant.recovering,
    metrics: options.metrics,
    crashPoints: options.crashPoints,
    logger: options.logger,
    routes: () => [...routeList(participant.routes), ...(options.kv === undefined ? [] : KV_ROUTES)],
  });
  app.use(participant.router);
  for (const route of participant.fastRoutes) mountFast(app, route);
  const kv = options.kv;
  if (kv !== undefined) app.use(createKvRouter({ kv, lockHolder: (key) => participant.lockHolder(key), ready: () => participant.ready() }));
  finishApp(app, options.logger);
  return app;
}
