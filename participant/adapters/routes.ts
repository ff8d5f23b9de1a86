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
 *   POST /v1/2pc/batch                            {messages:[{type, body}]} -> {replies:[{txId?, status, body}]}
 *                                                 or, with Accept: application/x-ndjson, lines {i, txId?, status, body} as each settles
 *                                                 (many protocol messages in one request; each answered as its own route would)
 *   GET  /v1/2pc/transactions/:txId               {txId, state, since?, heuristic?}
 *   GET  /v1/2pc/transactions?state=prepared      {transactions: [...]}  (the in-doubt list; each entry
 *                                                 gains `resource` when the resource can say how it holds it)
 *   POST /v1/2pc/transactions/:txId/heuristic     {outcome}
 *   POST /v1/2pc/transactions/:txId/inquiry       {from?}  (a peer's cooperative-termination inquiry)
 *   POST /v1/2pc/inquiries                        {txIds, from?} -> {states: {txId: {txId, state, since?, heuristic?}}}
 *                                                 (many peer inquiries in one request; each answered as the single route would)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { opsDigest } from '../../shared/digest.ts';
import { TwopcError } from '../../shared/errors.ts';
import { internalError } from '../../shared/http/answers.ts';
import { BODY_LIMIT_BYTES_DEFAULT, requireToken, sendAnswer, sendError, tokenAllows, toTwopcError } from '../../shared/http/app.ts';
import { plainJsonFirst } from '../../shared/http/body.ts';
import type { FastRoute } from '../../shared/http/fast-lane.ts';
import { mountRoute } from '../../shared/http/route-table.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Metrics } from '../../shared/metrics.ts';
import { BATCH_STREAM_CONTENT_TYPE, batchMessageSchema, parseAt, prepareSchema, type BatchMessage } from '../../shared/schemas.ts';
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
  /** Serve `POST /v1/2pc/batch` and `POST /v1/2pc/inquiries` (default true); without them callers fall back to the single routes. */
  readonly batching?: boolean;
  /** Counts protocol requests and messages (`participant_2pc_requests_total`, `participant_2pc_messages_total`). */
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

/**
 * How long a batch's answer may wait for its slowest message. Each message is bounded already
 * (a lock wait, the resource's prepare timeout); this only keeps a request from hanging on a
 * bug. A message still unanswered then gets a 503, which a coordinator reads as "no answer".
 */
export const BATCH_REPLY_WAIT_MS_MAX = 30_000;

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
  /** The hot routes, also mounted in the router: a standalone server puts them on its fast lane (../../shared/http/fast-lane.ts). */
  readonly fast: readonly FastRoute[];
}

export function createParticipantRouter(options: RouterOptions): ParticipantRouter {
  const router = express.Router();
  // A standalone server answers the hot routes below past this router (the fast lane): a middleware
  // added here must also be brought along by those routes (as the token check is, by `allows`).
  if (options.token !== undefined) router.use('/v1/2pc', requireToken(options.token));
  // A host app may not parse JSON; when it already did, this is a no-op. A plain JSON body is read by plainJsonFirst.
  const limitBytes = options.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT;
  router.use('/v1/2pc', plainJsonFirst(limitBytes, express.json({ limit: limitBytes, strict: false })));

  const routes = participantRoutes(options.resource.opsSchema);
  const waitMs = options.recoveryWaitMs ?? 10_000;

  const handle = (res: Response, make: (requestId: string, now: number) => ParticipantEvent, annotate?: (body: unknown) => Promise<unknown>) =>
    (options.isReady?.() === true ? Promise.resolve() : untilReady(options.ready, waitMs))
      .then(() => options.target.request(make))
      .then(async (answer) => sendAnswer(res, answer.status, answer.status === 200 && annotate ? await annotate(answer.body) : answer.body));
  const resource = options.resource;
  const annotateInDoubt = describesPrepared(resource) ? (body: unknown) => annotateList(resource, body) : undefined;

  const message = batchMessageSchema(prepareSchema(options.resource.opsSchema));
  // Each series is looked up once here, not per request: these counters are on the hot path.
  const metrics = options.metrics;
  const seriesOf = (name: string, help: string, label: string, values: readonly string[]) => {
    if (metrics === undefined) return new Map<string, { inc(by?: number): void }>();
    const counter = metrics.counterFor(name, help, [label]);
    return new Map(values.map((v) => [v, metrics.child(counter, v)]));
  };
  const requestsBy = seriesOf('participant_2pc_requests_total', 'Protocol requests received (prepare, commit, abort, batch, inquiries), by route.', 'route', ['prepare', 'commit', 'abort', 'batch', 'inquiries']);
  const messagesBy = seriesOf('participant_2pc_messages_total', 'Protocol messages received, alone or in a batch, by type.', 'type', ['prepare', 'commit', 'abort', 'invalid']);
  const counted = (name: 'requests' | 'messages', label: Record<string, string>, by = 1) =>
    (name === 'requests' ? requestsBy.get(label.route ?? '') : messagesBy.get(label.type ?? ''))?.inc(by);

  /** One protocol message through the runtime: the single routes and each message of a batch take this same path. */
  const run = async (m: BatchMessage): Promise<Answer> => {
    if (options.isReady?.() !== true) await untilReady(options.ready, waitMs);
    if (m.type !== 'prepare') return options.target.request((requestId, now) => ({ type: m.type, requestId, now, txId: m.body.txId }));
    const body = options.vetPeers === undefined ? m.body : { ...m.body, participants: await options.vetPeers(m.body.participants, m.body.txId) };
    const digest = opsDigest(body.ops ?? []);
    return options.target.request((requestId, now) => prepareEvent(body, requestId, now, digest));
  };

  // The protocol's routes, each also on a standalone server's fast lane (../../shared/http/fast-lane.ts).
  const fast: FastRoute[] = [];
  const allows = options.token === undefined ? {} : { allows: tokenAllows(options.token) };
  const mountHot = <B>(route: FastRoute<B>): void => {
    mountRoute(router, route.spec, route.handler);
    fast.push(route as FastRoute);
  };
  mountHot({
    spec: routes.prepare,
    ...allows,
    handler: async ({ body }, _req, res) => {
      counted('requests', { route: 'prepare' });
      counted('messages', { type: 'prepare' });
      const answer = await run({ type: 'prepare', body });
      sendAnswer(res, answer.status, answer.body);
    },
  });
  for (const type of ['commit', 'abort'] as const) {
    mountHot({
      spec: routes[type],
      ...allows,
      handler: async ({ body }, _req, res) => {
        counted('requests', { route: type });
        counted('messages', { type });
        const answer = await run({ type, body });
        sendAnswer(res, answer.status, answer.body);
      },
    });
  }

  if (options.batching !== false) {
    mountHot<{ readonly messages: readonly unknown[] }>({
      spec: routes.batch,
      ...allows,
      handler: async ({ body: { messages } }, req, res) => {
        counted('requests', { route: 'batch' });
        // Counted once per type and batch, not once per message: this is the hot path.
        const types = new Map<string, number>();
        for (const m of messages) {
          const type = (m as { type?: unknown } | null)?.type;
          const label = type === 'prepare' || type === 'commit' || type === 'abort' ? type : 'invalid';
          types.set(label, (types.get(label) ?? 0) + 1);
        }
        for (const [type, n] of types) counted('messages', { type }, n);
        if (options.isReady?.() !== true) await untilReady(options.ready, waitMs);
        const pending = messages.map((raw, i) => replyTo(raw, i));
        if (acceptsStream(req)) return streamReplies(res, pending, BATCH_REPLY_WAIT_MS_MAX);
        sendAnswer(res, 200, { replies: await repliesWithin(pending, BATCH_REPLY_WAIT_MS_MAX) });
      },
    });
  }

  /** A batch's message: checked by its single route's schema, run, and answered as that route would have answered. */
  async function replyTo(raw: unknown, i: number): Promise<BatchReply> {
    let txId: string | undefined;
    try {
      const m = parseAt(message, raw, ['messages', i]);
      txId = m.body.txId;
      const answer = await run(m);
      return { txId, status: answer.status, body: answer.body };
    } catch (error) {
      const known = toTwopcError(error);
      if (known === undefined) options.logger?.error({ err: error, step: 'batch.message-failed', txId }, 'unhandled error in a batched message');
      const e = known ?? internalError();
      return { ...(txId !== undefined && { txId }), status: e.status, body: e.toBody() };
    }
  }

  mountRoute(router, routes.list, ({ query }, _req, res) =>
    handle(res, (requestId, now) => ({ type: 'listTx', requestId, now, state: query.state ?? 'prepared' }), annotateInDoubt),
  );
  mountRoute(router, routes.get, ({ params: { txId } }, _req, res) => handle(res, (requestId, now) => ({ type: 'getTx', requestId, now, txId })));
  mountRoute(router, routes.heuristic, ({ params: { txId }, body: { outcome } }, _req, res) =>
    handle(res, (requestId, now) => ({ type: 'heuristic', requestId, now, txId, outcome })),
  );
  mountRoute(router, routes.inquiry, ({ params: { txId } }, _req, res) => handle(res, (requestId, now) => ({ type: 'peerInquiry', requestId, now, txId })));
  // Peers' inquiries, batched (../runtime/peer-inquiries.ts): each id goes through the core as the
  // single inquiry route's would, so a not-yet-voted id is aborted here exactly as it would be there.
  // Absent with `batching: false`, like the batch route: askers then fall back to the single route.
  if (options.batching !== false) {
    mountRoute(router, routes.inquiries, async ({ body: { txIds } }, _req, res) => {
      counted('requests', { route: 'inquiries' });
      if (options.isReady?.() !== true) await untilReady(options.ready, waitMs);
      const ids = [...new Set(txIds)];
      const answers = await Promise.allSettled(ids.map((txId) => options.target.request((requestId, now) => ({ type: 'peerInquiry', requestId, now, txId }))));
      const states: Record<string, unknown> = {};
      ids.forEach((txId, i) => {
        const a = answers[i];
        // A refused id (503: too many requests waiting) is left out; the asker counts it unanswered.
        if (a?.status === 'fulfilled' && a.value.status === 200) states[txId] = a.value.body;
      });
      sendAnswer(res, 200, { states });
    });
  }

  // Errors of these routes become the contract's JSON errors even in a host app without our error handler.
  router.use('/v1/2pc', (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const known = toTwopcError(err);
    if (known !== undefined) return sendError(res, known);
    next(err);
  });
  return { router, routes, fast };
}

/** One reply of a batch: the status and body the message's single route would have sent, and whose message it answers. */
interface BatchReply {
  readonly txId?: string;
  readonly status: number;
  readonly body: unknown;
}

/**
 * Every reply, once all have come or `waitMs` has passed; a message unanswered by then gets a 503.
 * Its work may still finish: exactly as for a single request whose caller gave up.
 */
async function repliesWithin(replies: readonly Promise<BatchReply>[], waitMs: number): Promise<BatchReply[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<BatchReply>((resolve) => {
    timer = setTimeout(() => {
      // Built only when it is needed: an Error captures a stack, and this ran once per batch (0.7% of a participant's CPU at load).
      const late = new TwopcError('unavailable', `No reply within ${waitMs} ms; the outcome of this message is unknown.`);
      resolve({ status: late.status, body: late.toBody() });
    }, waitMs);
    timer.unref();
  });
  try {
    return await Promise.all(replies.map((r) => Promise.race([r, deadline])));
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the caller asked for the batch's answer as a stream of lines (a coordinator that reads them as they come). */
function acceptsStream(req: IncomingMessage): boolean {
  return req.headers.accept?.includes(BATCH_STREAM_CONTENT_TYPE) === true;
}

/**
 * Answers a batch as a stream: one line `{i, txId?, status, body}` per message as soon as it is
 * settled, in completion order, so a message waiting for a lock holds back no other message's
 * reply (with one JSON answer, the whole batch waited for its slowest message). Replies settled
 * in the same turn (one group commit's) go out as one write. A message unanswered after `waitMs`
 * gets a 503 line, as in the JSON answer; the response ends once every message has its line.
 */
async function streamReplies(res: ServerResponse, replies: readonly Promise<BatchReply>[], waitMs: number): Promise<void> {
  // As express's res.status(200).set('content-type', ...) wrote it (the type has no charset to add).
  res.statusCode = 200;
  res.setHeader('content-type', BATCH_STREAM_CONTENT_TYPE);
  let buffered = '';
  let flushQueued = false;
  const flush = () => {
    flushQueued = false;
    // A caller that gave up (its own timeout) closed the connection: its lines have nowhere to go.
    if (buffered !== '' && !res.destroyed && !res.writableEnded) res.write(buffered);
    buffered = '';
  };
  const written = new Set<number>();
  const line = (i: number, r: BatchReply) => {
    if (written.has(i)) return;
    written.add(i);
    buffered += `${JSON.stringify({ i, ...r })}\n`;
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(flush);
    }
  };
  await repliesWithin(
    replies.map((r, i) => r.then((reply) => (line(i, reply), reply))),
    waitMs,
  ).then((all) => all.forEach((reply, i) => line(i, reply)));
  flush();
  if (!res.destroyed && !res.writableEnded) res.end();
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
