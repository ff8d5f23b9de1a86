/**
 * The coordinator's HTTP surface (design.md section 4), on top of the shared
 * base app (auth, /healthz, /metrics, chaos, errors).
 *
 *   POST /v1/transactions                      {timeoutMs?, branches?}  begin (201) or run whole (200)
 *   POST /v1/transactions/:txId/branches       {participant, ops}       enlist (idempotent)
 *   POST /v1/transactions/:txId/commit         {}                       200 OutcomeReport
 *   POST /v1/transactions/:txId/abort          {}                       200 {txId, outcome:"aborted"}
 *   GET  /v1/transactions/:txId                                         {txId, state, outcome?, branches}
 *   GET  /v1/transactions/:txId/outcome                                 {outcome} for participants' inquiries
 *   POST /v1/outcomes                          {txIds}                  {outcomes: {txId: outcome}}, the same, batched
 *   GET  /v1/transactions?state=...                                     {transactions, total}
 *   GET  /v1/participants                                               {participants: [{name, url}]}
 *   GET  /v1/participants/in-doubt                                      {askedAt, participants: [{name, url, reachable, transactions?, error?}]}
 *   GET  /                                                              the dashboard (a static page: no token needed)
 *
 * Each route is an entry of ./api.ts: its path parameters, query and body are
 * checked from that table before they reach the core (bad input is a 4xx
 * naming the field, never a WAL write), and GET /openapi.json describes it.
 */
import type { ServerResponse } from 'node:http';
import type { CreateTransactionRequest } from '../shared/types.ts';
import type { Express } from 'express';
import { createBaseApp, finishApp, sendAnswer, type BaseAppOptions } from '../shared/http/app.ts';
import { mountFast, type FastRoute } from '../shared/http/fast-lane.ts';
import { mountRoute } from '../shared/http/route-table.ts';
import {
  abortRoute,
  beginOrRunRoute,
  commitRoute,
  COORDINATOR_ROUTES,
  dashboardRoute,
  enlistRoute,
  getOutcomeRoute,
  getTxRoute,
  listRoute,
  outcomesRoute,
  participantsInDoubtRoute,
  participantsRoute,
} from './api.ts';
import { dashboardHtml } from './dashboard.ts';
import type { ParticipantsInDoubt } from './in-doubt.ts';
import type { Answer, ClientRequest } from './runtime/runtime.ts';

/** What the routes need from the runtime. */
export interface CoordinatorTarget {
  request(req: ClientRequest): Promise<Answer>;
  readonly recovering: boolean;
}

export type CoordinatorAppOptions = Omit<BaseAppOptions, 'role' | 'isRecovering' | 'publicPaths' | 'routes'> & {
  readonly target: CoordinatorTarget;
  /** name → base URL: what GET /v1/participants vouches for, so participants know whom to trust as peers. */
  readonly participants: Readonly<Record<string, string>>;
  /** The live lab's URL when `twopc cluster` runs this coordinator: the dashboard links to it. */
  readonly labUrl?: string;
  /** Asks every participant for its in-doubt list (./in-doubt.ts), for the dashboard. */
  readonly surveyInDoubt: () => Promise<ParticipantsInDoubt>;
};

export function createCoordinatorApp(options: CoordinatorAppOptions): Express {
  const { target } = options;
  // The dashboard page holds no data, so it is served without the token: the page reads the
  // token from its URL fragment (/#token=T) and sends it on every API call it makes.
  const publicPaths = COORDINATOR_ROUTES.filter((r) => r.public === true).map((r) => r.path);
  const app = createBaseApp({ ...options, role: 'coordinator', isRecovering: () => target.recovering, publicPaths, routes: () => COORDINATOR_ROUTES });

  const answer = async (res: ServerResponse, req: ClientRequest): Promise<void> => {
    const a = await target.request(req);
    sendAnswer(res, a.status, a.body);
  };

  const dashboard = dashboardHtml(options.labUrl);
  mountRoute(app, dashboardRoute, (_input, _req, res) => {
    res.type('html').send(dashboard);
  });

  // The coordinator's authenticated word on who its participants are: a participant asks its
  // peers only when they are listed here (or in its own configuration); see participant/runtime/peers.ts.
  const participantList = { participants: Object.entries(options.participants).map(([name, url]) => ({ name, url })) };
  mountRoute(app, participantsRoute, (_input, _req, res) => {
    res.json(participantList);
  });

  mountRoute(app, participantsInDoubtRoute, async (_input, _req, res) => {
    res.json(await options.surveyInDoubt());
  });

  // The route every whole transaction takes: also on the fast lane (../shared/http/fast-lane.ts).
  const beginOrRun: FastRoute<CreateTransactionRequest> = {
    spec: beginOrRunRoute,
    handler: ({ body }, _req, res) => {
      const timeout = body.timeoutMs === undefined ? {} : { timeoutMs: body.timeoutMs };
      if (body.branches === undefined) return answer(res, { type: 'begin', ...timeout });
      return answer(res, { type: 'runWhole', branches: body.branches, ...timeout });
    },
  };
  mountRoute(app, beginOrRun.spec, beginOrRun.handler);
  mountFast(app, beginOrRun);

  mountRoute(app, enlistRoute, ({ params: { txId }, body: { participant, ops } }, _req, res) => answer(res, { type: 'enlist', txId, participant, ops }));
  mountRoute(app, commitRoute, ({ params: { txId } }, _req, res) => answer(res, { type: 'commit', txId }));
  mountRoute(app, abortRoute, ({ params: { txId } }, _req, res) => answer(res, { type: 'abort', txId }));
  mountRoute(app, getOutcomeRoute, ({ params: { txId } }, _req, res) => answer(res, { type: 'getOutcome', txId }));

  // Participants' inquiries, batched: one request answers many in-doubt transactions (see
  // participant/runtime/inquiries.ts). Each id is answered exactly as the single route would.
  mountRoute(app, outcomesRoute, async ({ body: { txIds } }, _req, res) => {
    const ids = [...new Set(txIds)];
    // One request for the whole batch (one core step, not one per id). A refused one (too many
    // requests in flight, stopping) is answered "pending" for every id: the participant asks again.
    const a = await target.request({ type: 'getOutcomes', txIds: ids }).catch(() => undefined);
    const answered = a?.status === 200 ? (a.body as { outcomes?: Record<string, unknown> }).outcomes : undefined;
    const outcomes: Record<string, unknown> = {};
    for (const txId of ids) outcomes[txId] = answered?.[txId] ?? 'pending';
    res.json({ outcomes });
  });

  mountRoute(app, getTxRoute, ({ params: { txId } }, _req, res) => answer(res, { type: 'getTx', txId }));
  mountRoute(app, listRoute, ({ query: { state } }, _req, res) => answer(res, { type: 'list', ...(state === undefined ? {} : { state }) }));

  finishApp(app, options.logger);
  return app;
}
