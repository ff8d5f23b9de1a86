/**
 * The participant's routes (design.md section 4), as data: one entry per
 * route, with the schemas express checks requests with and GET /openapi.json
 * describes. The prepare body's `ops` is the resource's own schema, so a
 * PostgreSQL participant documents its `{op:"sql", text, params?}`.
 */
import { z } from 'zod';
import { defineRoute, type AnyRouteSpec, type ResponseSpec, type RouteSpec } from '../shared/http/route-table.ts';
import { BATCH_MESSAGES_MAX, BATCH_STREAM_CONTENT_TYPE, batchLineSchema, batchSchema, decisionSchema, heuristicSchema, inDoubtEntrySchema, LIMITS, OUTCOMES, PEER_INQUIRIES_BATCH_MAX, peerInquiriesBatchSchema, prepareSchema, str, txIdSchema, type Schema } from '../shared/schemas.ts';
import type { DecisionRequest, PrepareRequest, TxId } from '../shared/types.ts';

const txIdParams = z.strictObject({ txId: txIdSchema });

const txStateReply = z
  .strictObject({
    txId: z.string(),
    state: z.enum(['prepared', 'committed', 'aborted', 'unknown']),
    since: z.number().optional().meta({ description: 'When it reached this state, in milliseconds since the epoch.' }),
    heuristic: z.enum(OUTCOMES).optional().meta({ description: 'An operator settled it by hand, with this outcome.' }),
  })
  .meta({ title: 'BranchState' });

/** The `/v1/2pc` routes of a participant whose resource checks ops with `opsSchema`. */
export function participantRoutes(opsSchema: Schema<readonly unknown[]>) {
  const prepare = defineRoute<undefined, undefined, PrepareRequest>({
    method: 'post',
    path: '/v1/2pc/prepare',
    tag: '2pc',
    summary: 'Phase 1: prepares a branch and votes. A YES vote is durable before it is sent.',
    description: '`participants` lists every branch URL, so an in-doubt participant can ask its peers. With `onePhase` it prepares and commits in one step.',
    body: prepareSchema(opsSchema),
    responses: {
      200: {
        description: 'The vote.',
        schema: z.strictObject({
          vote: z.enum(['yes', 'no', 'read-only']),
          reason: z.string().optional(),
          state: z.enum(['prepared', 'committed', 'aborted', 'unknown']).optional().meta({ description: 'Only for one-phase prepares: the outcome here.' }),
        }),
      },
      400: { description: "Bad body, or ops the resource refuses (the message names the field)." },
      409: { description: 'The txId was already prepared here with different ops.' },
      503: { description: 'Recovering, or too many prepares of this txId.' },
    },
  });
  const decisionResponses = (type: 'commit' | 'abort'): Record<number, ResponseSpec> => {
    const out: Record<number, ResponseSpec> = {
      200: { description: 'The branch state here.', schema: txStateReply },
      409: { description: 'The branch is settled the other way here.' },
    };
    if (type === 'commit') out[404] = { description: 'Never prepared here, or long forgotten.' };
    return out;
  };
  const decision = (type: 'commit' | 'abort') =>
    defineRoute<undefined, undefined, DecisionRequest>({
      method: 'post',
      path: `/v1/2pc/${type}`,
      tag: '2pc',
      summary: type === 'commit' ? 'Phase 2: commits a prepared branch (idempotent).' : 'Phase 2: aborts a branch (idempotent; leaves a tombstone for a late prepare).',
      body: decisionSchema,
      responses: decisionResponses(type),
    });
  const batch = defineRoute<undefined, undefined, { messages: unknown[] }>({
    method: 'post',
    path: '/v1/2pc/batch',
    tag: '2pc',
    summary: 'Many protocol messages (prepare, commit, abort) in one request; each is answered as its own route would answer it.',
    description: `Each message is \`{type: "prepare"|"commit"|"abort", body}\`, \`body\` what that route takes; 1 to ${BATCH_MESSAGES_MAX} messages. A malformed envelope is a 400 for the request; a malformed message gets its own 400 reply. Absent when the participant runs with \`--no-batching\` (a coordinator then falls back to the single routes).`,
    body: batchSchema,
    responses: {
      200: {
        description: `One reply per message, in order: the status and body its single route would have sent. With \`Accept: ${BATCH_STREAM_CONTENT_TYPE}\`, the replies stream instead, one JSON line per message as soon as it is settled, in completion order.`,
        schema: z.strictObject({
          replies: z.array(z.strictObject({ txId: z.string().optional(), status: z.int(), body: z.unknown() })),
        }),
        alternatives: [
          {
            contentType: BATCH_STREAM_CONTENT_TYPE,
            schema: batchLineSchema,
            description: 'Each line of the stream (newline-delimited JSON): message `i` of the batch (from 0), its transaction id when it had a readable one, and its reply. Every message gets exactly one line; a message still unanswered after 30 s gets a 503 line.',
          },
        ],
      },
      400: { description: 'A malformed envelope (not 1 to 256 messages).' },
    },
  });
  const list = defineRoute<undefined, { state?: 'prepared' }, undefined>({
    method: 'get',
    path: '/v1/2pc/transactions',
    tag: '2pc',
    summary: 'The in-doubt list: branches prepared here and waiting for an outcome, longest-blocked first.',
    query: z.strictObject({ state: z.literal('prepared').optional() }),
    responses: {
      200: {
        description: 'The in-doubt branches, with how long each has blocked and the keys it holds.',
        schema: z.strictObject({ transactions: z.array(inDoubtEntrySchema), resourceError: z.string().optional() }),
      },
    },
  });
  const get = defineRoute<{ txId: TxId }, undefined, undefined>({
    method: 'get',
    path: '/v1/2pc/transactions/:txId',
    tag: '2pc',
    summary: "A branch's state here.",
    params: txIdParams,
    responses: { 200: { description: 'The state (`unknown`: never voted here).', schema: txStateReply } },
  });
  const heuristic = defineRoute<{ txId: TxId }, undefined, { outcome: 'committed' | 'aborted' }>({
    method: 'post',
    path: '/v1/2pc/transactions/:txId/heuristic',
    tag: 'operator',
    summary: 'An operator settles an in-doubt branch by hand; it is logged and reported as heuristic.',
    params: txIdParams,
    body: heuristicSchema,
    responses: {
      200: { description: 'Settled.', schema: txStateReply },
      404: { description: 'No in-doubt branch with this id.' },
      409: { description: 'Not in doubt: already settled, or not voted yet.' },
    },
  });
  const inquiry = defineRoute<{ txId: TxId }, undefined, { from?: string }>({
    method: 'post',
    path: '/v1/2pc/transactions/:txId/inquiry',
    tag: '2pc',
    summary: "A peer's cooperative-termination inquiry: what this participant knows of the outcome.",
    params: txIdParams,
    body: z.strictObject({ from: str(2048).optional() }),
    bodyOptional: true,
    responses: { 200: { description: 'What is known here.', schema: txStateReply } },
  });
  const inquiries = defineRoute<undefined, undefined, { txIds: TxId[]; from?: string }>({
    method: 'post',
    path: '/v1/2pc/inquiries',
    tag: '2pc',
    summary: "Many peers' cooperative-termination inquiries in one request; each id is answered as `POST /v1/2pc/transactions/:txId/inquiry` would answer it.",
    description: `1 to ${PEER_INQUIRIES_BATCH_MAX} ids. An id this participant cannot answer now (too many requests waiting) is left out of \`states\`; the asker counts it unanswered and asks again. Older participants lack this route (404); askers then fall back to the single route.`,
    body: peerInquiriesBatchSchema,
    responses: {
      200: { description: 'What is known here of each answered id, keyed by id.', schema: z.strictObject({ states: z.record(z.string(), txStateReply) }) },
      400: { description: `Not 1 to ${PEER_INQUIRIES_BATCH_MAX} well-formed ids.` },
    },
  });
  return { prepare, commit: decision('commit'), abort: decision('abort'), batch, list, get, heuristic, inquiry, inquiries };
}

export type ParticipantRoutes = ReturnType<typeof participantRoutes>;

/** The built-in key-value resource's reads. */
export const kvListRoute = defineRoute({
  method: 'get',
  path: '/v1/kv',
  tag: 'kv',
  summary: 'The committed key-value state.',
  responses: { 200: { description: 'Every committed entry.', schema: z.strictObject({ entries: z.record(z.string(), z.unknown()) }) } },
});

export const kvGetRoute = defineRoute({
  method: 'get',
  path: '/v1/kv/:key',
  tag: 'kv',
  summary: "A key's committed value, and the transaction that holds its lock.",
  params: z.strictObject({ key: str(LIMITS.keyLengthMax, 1) }),
  responses: {
    200: {
      description: '`value` is absent when the key does not exist.',
      schema: z.strictObject({ key: z.string(), value: z.unknown().optional(), lockedBy: z.string().optional() }),
    },
  },
});

export const KV_ROUTES: readonly AnyRouteSpec[] = [kvListRoute, kvGetRoute];

/** The table as a list, for an OpenAPI document. */
export const routeList = (routes: ParticipantRoutes): readonly RouteSpec<unknown, unknown, unknown>[] => Object.values(routes) as AnyRouteSpec[];
