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
 *   GET  /                                                              the dashboard (a static page: no token needed)
 *
 * Every body, path parameter and query is checked with shared/schemas.ts before
 * it reaches the core: bad input is a 4xx naming the field, never a WAL write.
 */
import type { Express, Request, Response } from 'express';
import { asyncRoute, createBaseApp, finishApp, sendAnswer, type BaseAppOptions } from '../shared/http/app.ts';
import { createTransactionSchema, emptySchema, enlistSchema, literal, object, optional, outcomesBatchSchema, parse, txIdSchema } from '../shared/schemas.ts';
import { TX_PHASES, type TxPhase } from './core/index.ts';
import { DASHBOARD_HTML } from './dashboard.ts';
import type { Answer, ClientRequest } from './runtime/runtime.ts';

/** What the routes need from the runtime. */
export interface CoordinatorTarget {
  request(req: ClientRequest): Promise<Answer>;
  readonly recovering: boolean;
}

export type CoordinatorAppOptions = Omit<BaseAppOptions, 'role' | 'isRecovering' | 'publicPaths'> & {
  readonly target: CoordinatorTarget;
  /** name → base URL: what GET /v1/participants vouches for, so participants know whom to trust as peers. */
  readonly participants: Readonly<Record<string, string>>;
};

const listQuerySchema = object({ state: optional(literal<TxPhase>(...TX_PHASES)) });

/** Commit and abort take no body; an empty one, or `{}`, is fine. */
const bodyOrEmpty = (req: Request): unknown => req.body ?? {};

export function createCoordinatorApp(options: CoordinatorAppOptions): Express {
  const { target } = options;
  // The dashboard page holds no data, so it is served without the token: the page reads the
  // token from its URL fragment (/#token=T) and sends it on every API call it makes.
  const app = createBaseApp({ ...options, role: 'coordinator', isRecovering: () => target.recovering, publicPaths: ['/'] });

  const answer = async (res: Response, req: ClientRequest): Promise<void> => {
    const a = await target.request(req);
    sendAnswer(res, a.status, a.body);
  };
  const txIdOf = (req: Request): string => txIdSchema(req.params.txId, 'txId');

  app.get('/', (_req, res) => {
    res.type('html').send(DASHBOARD_HTML);
  });

  // The coordinator's authenticated word on who its participants are: a participant asks its
  // peers only when they are listed here (or in its own configuration); see participant/runtime/peers.ts.
  const participantList = { participants: Object.entries(options.participants).map(([name, url]) => ({ name, url })) };
  app.get('/v1/participants', (_req, res) => {
    res.json(participantList);
  });

  app.post(
    '/v1/transactions',
    asyncRoute((req, res) => {
      const body = parse(createTransactionSchema, bodyOrEmpty(req));
      const timeout = body.timeoutMs === undefined ? {} : { timeoutMs: body.timeoutMs };
      if (body.branches === undefined) return answer(res, { type: 'begin', ...timeout });
      return answer(res, { type: 'runWhole', branches: body.branches, ...timeout });
    }),
  );

  app.post(
    '/v1/transactions/:txId/branches',
    asyncRoute((req, res) => {
      const txId = txIdOf(req);
      const { participant, ops } = parse(enlistSchema, req.body);
      return answer(res, { type: 'enlist', txId, participant, ops });
    }),
  );

  for (const type of ['commit', 'abort'] as const) {
    app.post(
      `/v1/transactions/:txId/${type}`,
      asyncRoute((req, res) => {
        const txId = txIdOf(req);
        parse(emptySchema, bodyOrEmpty(req));
        return answer(res, { type, txId });
      }),
    );
  }

  app.get(
    '/v1/transactions/:txId/outcome',
    asyncRoute((req, res) => answer(res, { type: 'getOutcome', txId: txIdOf(req) })),
  );

  // Participants' inquiries, batched: one request answers many in-doubt transactions (see
  // participant/runtime/inquiries.ts). Each id is answered exactly as the single route would.
  app.post(
    '/v1/outcomes',
    asyncRoute(async (req, res) => {
      const { txIds } = parse(outcomesBatchSchema, req.body);
      const ids = [...new Set(txIds)];
      // A refused lookup (too many requests in flight) is answered "pending": the participant asks again.
      const answers = await Promise.allSettled(ids.map((txId) => target.request({ type: 'getOutcome', txId })));
      const outcomes: Record<string, unknown> = {};
      ids.forEach((txId, i) => {
        const a = answers[i];
        outcomes[txId] = a?.status === 'fulfilled' && a.value.status === 200 ? (a.value.body as { outcome?: unknown }).outcome : 'pending';
      });
      res.json({ outcomes });
    }),
  );

  app.get(
    '/v1/transactions/:txId',
    asyncRoute((req, res) => answer(res, { type: 'getTx', txId: txIdOf(req) })),
  );

  app.get(
    '/v1/transactions',
    asyncRoute((req, res) => {
      const { state } = parse(listQuerySchema, { ...req.query });
      return answer(res, { type: 'list', ...(state === undefined ? {} : { state }) });
    }),
  );

  finishApp(app, options.logger);
  return app;
}
