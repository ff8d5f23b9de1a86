/**
 * The participant's HTTP surface as an express Router, so the standalone
 * server and any service embedding a participant mount the same routes.
 *
 * Each route is an entry of ../api.ts (the prepare body's ops are the
 * resource's own schema): bodies, path parameters and queries are checked from
 * that table, so bad input is a 4xx naming the field and never reaches the
 * core or the WAL, and the same table is the OpenAPI description.
 *
 *   POST /v1/2pc/prepare                          {txId, coordinator, participants, ops?, onePhase?}
 *   POST /v1/2pc/commit | /v1/2pc/abort           {txId}
 *   GET  /v1/2pc/transactions/:txId               {txId, state, since?, heuristic?}
 *   GET  /v1/2pc/transactions?state=prepared      {transactions: [...]}  (the in-doubt list; each entry
 *                                                 gains `resource` when the resource can say how it holds it)
 *   POST /v1/2pc/transactions/:txId/heuristic     {outcome}
 *   POST /v1/2pc/transactions/:txId/inquiry       {from?}  (a peer's cooperative-termination inquiry)
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { opsDigest } from '../../shared/digest.ts';
import { TwopcError } from '../../shared/errors.ts';
import { BODY_LIMIT_BYTES_DEFAULT, requireToken, sendAnswer, sendError, toTwopcError } from '../../shared/http/app.ts';
import { mountRoute } from '../../shared/http/route-table.ts';
import { participantRoutes, type ParticipantRoutes } from '../api.ts';
import { prepareEvent, type ParticipantEvent } from '../core/index.ts';
import type { TxId } from '../../shared/types.ts';
import type { Resource } from '../resources/resource.ts';
import type { Answer } from '../runtime/runtime.ts';

/** What the routes need from the runtime. */
export interface RouteTarget {
  request(make: (requestId: string, now: number) => ParticipantEvent): Promise<Answer>;
}

export interface RouterOptions {
  readonly target: RouteTarget;
  readonly resource: Resource;
  /** When set, every route here needs `Authorization: Bearer <token>`. */
  readonly token?: string;
  readonly bodyLimitBytes?: number;
  /** How long a request may wait for a participant that is still recovering. */
  readonly recoveryWaitMs?: number;
  /** Resolves once recovery is done; requests arriving before wait for it, up to recoveryWaitMs. */
  readonly ready: () => Promise<void>;
  /** True once recovery is done, so requests skip the wait. */
  readonly isReady?: () => boolean;
  /**
   * Cuts a prepare's peer list to the peers this participant trusts (see
   * ../runtime/peers.ts), before the core or the WAL sees it. Absent: the list is kept.
   */
  readonly vetPeers?: (participants: readonly string[], txId: TxId) => Promise<readonly string[]>;
}

/**
 * A resource that keeps prepared branches itself can describe them (PostgreSQL: the gid and
 * how long pg_prepared_xacts has held it). Optional and read-only: the list is the core's,
 * this only annotates it.
 */
interface DescribesPrepared {
  inspectPrepared(): Promise<ReadonlyMap<string, object>>;
}

function describesPrepared(r: object): r is DescribesPrepared {
  return typeof (r as Partial<DescribesPrepared>).inspectPrepared === 'function';
}

/** Adds each in-doubt branch's description by the resource; a resource that cannot answer now is said, not fatal. */
async function annotateList(resource: DescribesPrepared, body: unknown): Promise<unknown> {
  const list = body as { transactions?: { txId: string }[] };
  if (!Array.isArray(list.transactions)) return body;
  try {
    const held = await resource.inspectPrepared();
    return { ...list, transactions: list.transactions.map((t) => ({ ...t, ...(held.has(t.txId) && { resource: held.get(t.txId) }) })) };
  } catch (error) {
    return { ...list, resourceError: error instanceof Error ? error.message : String(error) };
  }
}
/** The router, and the table it was built from (for an OpenAPI document). */
export interface ParticipantRouter {
  readonly router: Router;
  readonly routes: ParticipantRoutes;
}

export function createParticipantRouter(options: RouterOptions): ParticipantRouter {
  const router = express.Router();
  if (options.token !== undefined) router.use('/v1/2pc', requireToken(options.token));
  // A host app may not parse JSON; when it already did, this is a no-op.
  router.use('/v1/2pc', express.json({ limit: options.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT, strict: false }));

  const routes = participantRoutes(options.resource.opsSchema);
  const waitMs = options.recoveryWaitMs ?? 10_000;

  const handle = (res: Response, make: (requestId: string, now: number) => ParticipantEvent, annotate?: (body: unknown) => Promise<unknown>) =>
    (options.isReady?.() === true ? Promise.resolve() : untilReady(options.ready, waitMs))
      .then(() => options.target.request(make))
      .then(async (answer) => sendAnswer(res, answer.status, answer.status === 200 && annotate ? await annotate(answer.body) : answer.body));
  const resource = options.resource;
  const annotateInDoubt = describesPrepared(resource) ? (body: unknown) => annotateList(resource, body) : undefined;

  mountRoute(router, routes.prepare, async ({ body: parsed }, _req, res) => {
    const body = options.vetPeers === undefined ? parsed : { ...parsed, participants: await options.vetPeers(parsed.participants, parsed.txId) };
    const digest = opsDigest(body.ops ?? []);
    return handle(res, (requestId, now) => prepareEvent(body, requestId, now, digest));
  });
  for (const type of ['commit', 'abort'] as const) {
    mountRoute(router, routes[type], ({ body: { txId } }, _req, res) => handle(res, (requestId, now) => ({ type, requestId, now, txId })));
  }
  mountRoute(router, routes.list, ({ query }, _req, res) =>
    handle(res, (requestId, now) => ({ type: 'listTx', requestId, now, state: query.state ?? 'prepared' }), annotateInDoubt),
  );
  mountRoute(router, routes.get, ({ params: { txId } }, _req, res) => handle(res, (requestId, now) => ({ type: 'getTx', requestId, now, txId })));
  mountRoute(router, routes.heuristic, ({ params: { txId }, body: { outcome } }, _req, res) =>
    handle(res, (requestId, now) => ({ type: 'heuristic', requestId, now, txId, outcome })),
  );
  mountRoute(router, routes.inquiry, ({ params: { txId } }, _req, res) => handle(res, (requestId, now) => ({ type: 'peerInquiry', requestId, now, txId })));

  // Errors of these routes become the contract's JSON errors even in a host app without our error handler.
  router.use('/v1/2pc', (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const known = toTwopcError(err);
    if (known !== undefined) return sendError(res, known);
    next(err);
  });
  return { router, routes };
}

async function untilReady(ready: () => Promise<void>, waitMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TwopcError('unavailable', 'The participant is still recovering; try again.')), waitMs);
  });
  try {
    await Promise.race([ready(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
