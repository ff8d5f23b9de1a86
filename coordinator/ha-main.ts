/**
 * `twopc coordinator ... --etcd URLS --group NAME`: a coordinator that is one
 * member of an HA group (./ha.ts). The HTTP surface is the single
 * coordinator's; the decision log is the group's, in etcd, so `--data` holds
 * no WAL here.
 */
import { CrashPoints, crashPointAtStart } from '../shared/crash.ts';
import { checkParticipants } from '../shared/urls.ts';
import { listen } from '../shared/http/app.ts';
import { createHttpClient } from '../shared/http/client.ts';
import { createLogger } from '../shared/logger.ts';
import { Metrics } from '../shared/metrics.ts';
import { CONFIG_DEFAULTS } from './core/index.ts';
import { HaMember, type HaOptions } from './ha.ts';
import { advertisedUrlOf } from './ha-options.ts';
import { openInDoubtSurvey } from './in-doubt.ts';
import type { StartCoordinatorOptions } from './main.ts';
import { isOutcomeInquiry, pendingAnswer, type Answer, type ClientRequest } from './runtime/runtime.ts';
import { createCoordinatorApp, type CoordinatorTarget } from './server.ts';

export interface RunningHaCoordinator {
  readonly url: string;
  readonly port: number;
  readonly member: HaMember;
  close(): Promise<void>;
}

export async function startHaCoordinator(options: Omit<StartCoordinatorOptions, 'dataDir' | 'fsync' | 'wal'> & { readonly ha: HaOptions }): Promise<RunningHaCoordinator> {
  const name = options.name ?? 'coordinator';
  const participants = checkParticipants(options.participants);
  // Before anything listens: the URL this member registers must be one the others can reach.
  const host = options.host ?? '127.0.0.1';
  const advertiseUrl = advertisedUrlOf(host, options.advertiseUrl);
  const logger = options.logger ?? createLogger({ role: 'coordinator', name, sync: options.chaos === true });
  const metrics = new Metrics();
  const crashAt = crashPointAtStart(options.chaos === true, options.crashAt);
  const crashPoints = new CrashPoints(crashAt ? { armed: crashAt } : {});

  // The routes are live at once; until the member exists (it needs the URL it listens on),
  // inquiries are "pending" and client requests a 503, as during a single coordinator's recovery.
  const started: { member?: HaMember } = {};
  const target: CoordinatorTarget = {
    get recovering() {
      return started.member?.recovering ?? true;
    },
    request(req: ClientRequest): Promise<Answer> {
      if (started.member) return started.member.request(req);
      if (isOutcomeInquiry(req)) return Promise.resolve(pendingAnswer(req));
      return Promise.resolve({ status: 503, body: { error: { code: 'not_leader', message: 'This coordinator is starting.' } } });
    },
  };
  // Any member, leader or not, shows the participants' in-doubt lists on its read-only page.
  const inDoubt = openInDoubtSurvey(participants, options.token);
  const app = createCoordinatorApp({
    name,
    target,
    participants,
    surveyInDoubt: inDoubt.survey,
    metrics,
    crashPoints,
    logger,
    ...(options.token !== undefined && { token: options.token }),
    ...(options.chaos !== undefined && { chaos: options.chaos }),
  });
  const listening = await listen(app, options.port, host, { limits: options.http ?? {}, metrics, logger });
  const prepareTimeoutMs = options.core?.prepareTimeoutMs ?? CONFIG_DEFAULTS.prepareTimeoutMs;
  const http = createHttpClient({ ...(options.token !== undefined && { token: options.token }), timeoutMs: prepareTimeoutMs });
  const running = new HaMember({
    ha: options.ha,
    name,
    selfUrl: advertiseUrl ?? listening.url,
    participants,
    protocol: options.protocol ?? 'presumed-abort',
    ...(options.core !== undefined && { core: options.core }),
    http,
    prepareTimeoutMs,
    batching: options.batching ?? true,
    crashPoints,
    logger,
    metrics,
    recoveryWaitMs: options.recoveryWaitMs ?? 10_000,
    ...(options.checkpointEveryRecords !== undefined && { checkpointEveryRecords: options.checkpointEveryRecords }),
    // Chaos only: a leader that trusts nothing but etcd's fencing (the fencing test).
    ...(options.chaos === true && process.env.TWOPC_CHAOS_HA_BLIND_LEADER === '1' && { blindLeader: true }),
  });
  started.member = running;
  running.start();
  logger.info({ step: 'listening', url: listening.url, participants, group: options.ha.group }, `coordinator ${name} at ${listening.url} (HA group ${options.ha.group}, advertised as ${advertiseUrl ?? listening.url})`);

  let closing: Promise<void> | undefined;
  return {
    url: listening.url,
    port: listening.port,
    member: running,
    close: () => {
      closing ??= (async () => {
        await listening.close();
        await running.close();
        http.close();
        inDoubt.close();
      })();
      return closing;
    },
  };
}
