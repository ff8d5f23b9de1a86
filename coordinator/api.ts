/**
 * The coordinator's routes (design.md section 4), as data: one entry per
 * route, with the schemas express checks requests with (./server.ts mounts
 * each with its handler) and GET /openapi.json describes.
 */
import { z } from 'zod';
import { defineRoute, type AnyRouteSpec } from '../shared/http/route-table.ts';
import { createTransactionSchema, emptySchema, enlistSchema, OUTCOMES, outcomesBatchSchema, participantsInDoubtSchema, txIdSchema } from '../shared/schemas.ts';
import { TX_PHASES, type TxPhase } from './core/index.ts';

const txIdParams = z.strictObject({ txId: txIdSchema });

const vote = z.enum(['yes', 'no', 'read-only']);
const reportedOutcome = z.enum([...OUTCOMES, 'heuristic-mixed']).meta({ description: '`heuristic-mixed`: an operator settled a branch by hand against the decision.' });

const branchView = z.strictObject({
  participant: z.string(),
  vote: vote.optional(),
  acked: z.boolean().meta({ description: 'The participant acknowledged the outcome, or needs no acknowledgement (read-only, voted no).' }),
});

const txView = z
  .strictObject({
    txId: z.string(),
    state: z.enum(TX_PHASES as [TxPhase, ...TxPhase[]]),
    outcome: reportedOutcome.optional(),
    reason: z.string().optional(),
    onePhase: z.literal(true).optional(),
    inDoubt: z.literal(true).optional(),
    createdAt: z.number().meta({ description: 'Milliseconds since the epoch.' }),
    branches: z.array(branchView),
  })
  .meta({ title: 'Transaction' });

const outcomeReport = z
  .strictObject({
    txId: z.string(),
    outcome: reportedOutcome,
    applied: z.boolean().optional().meta({ description: 'Every participant acked within the reply bound (default 2 s), so a read there sees the outcome.' }),
    reason: z.string().optional(),
    branches: z.array(branchView),
  })
  .meta({ title: 'OutcomeReport' });

export const beginOrRunRoute = defineRoute({
  method: 'post',
  path: '/v1/transactions',
  tag: 'transactions',
  summary: 'Begins an interactive transaction, or (with `branches`) runs one whole.',
  description: 'The outcome is final once its decision is durable. The reply waits for phase-2 acks up to a bound: `applied:true` means every participant acked.',
  body: createTransactionSchema,
  bodyOptional: true,
  responses: {
    200: { description: 'Ran whole: the outcome.', schema: outcomeReport },
    201: { description: 'Begun.', schema: z.strictObject({ txId: z.string(), state: z.literal('active') }) },
    400: { description: 'Bad body, an unknown participant, or a timeout above the coordinator maximum.' },
    503: { description: 'Recovering, or too many transactions in flight.' },
  },
});

export const enlistRoute = defineRoute({
  method: 'post',
  path: '/v1/transactions/:txId/branches',
  tag: 'transactions',
  summary: 'Enlists a branch in an active transaction (idempotent).',
  params: txIdParams,
  body: enlistSchema,
  responses: {
    200: { description: 'The transaction with the branch.', schema: txView },
    404: { description: 'Unknown transaction.' },
    409: { description: 'The transaction is no longer active.' },
  },
});

export const commitRoute = defineRoute({
  method: 'post',
  path: '/v1/transactions/:txId/commit',
  tag: 'transactions',
  summary: 'Commits an interactive transaction: prepares every branch, decides, and reports the outcome.',
  params: txIdParams,
  body: emptySchema,
  bodyOptional: true,
  responses: {
    200: { description: 'The outcome.', schema: outcomeReport },
    404: { description: 'Unknown transaction.' },
    409: { description: 'The transaction is already aborted or aborting.' },
  },
});

export const abortRoute = defineRoute({
  method: 'post',
  path: '/v1/transactions/:txId/abort',
  tag: 'transactions',
  summary: 'Aborts a transaction that has not decided commit.',
  params: txIdParams,
  body: emptySchema,
  bodyOptional: true,
  responses: {
    200: { description: 'Aborted.', schema: z.strictObject({ txId: z.string(), outcome: z.literal('aborted') }) },
    404: { description: 'Unknown transaction.' },
    409: { description: 'The transaction is already committed, or commits in one phase.' },
  },
});

export const getTxRoute = defineRoute({
  method: 'get',
  path: '/v1/transactions/:txId',
  tag: 'transactions',
  summary: "A transaction's state, outcome and branches.",
  params: txIdParams,
  responses: { 200: { description: 'The transaction.', schema: txView }, 404: { description: 'Unknown transaction.' } },
});

export const getOutcomeRoute = defineRoute({
  method: 'get',
  path: '/v1/transactions/:txId/outcome',
  tag: '2pc',
  summary: "A transaction's outcome, for participants' inquiries (an unknown id is presumed aborted).",
  params: txIdParams,
  responses: { 200: { description: 'The outcome.', schema: z.strictObject({ outcome: z.enum([...OUTCOMES, 'pending']) }) } },
});

export const outcomesRoute = defineRoute({
  method: 'post',
  path: '/v1/outcomes',
  tag: '2pc',
  summary: 'The outcomes of many transactions at once: participants batch their inquiries.',
  body: outcomesBatchSchema,
  responses: {
    200: {
      description: 'Each id answered as GET /v1/transactions/:txId/outcome would (`pending` when the lookup was refused).',
      schema: z.strictObject({ outcomes: z.record(z.string(), z.enum([...OUTCOMES, 'pending'])) }),
    },
  },
});

export const listRoute = defineRoute({
  method: 'get',
  path: '/v1/transactions',
  tag: 'transactions',
  summary: 'Lists recent transactions, optionally by state.',
  query: z.strictObject({ state: z.enum(TX_PHASES as [TxPhase, ...TxPhase[]]).optional() }),
  responses: {
    200: { description: 'The transactions (at most the configured list bound) and how many matched.', schema: z.strictObject({ transactions: z.array(txView), total: z.int() }) },
  },
});

export const participantsRoute = defineRoute({
  method: 'get',
  path: '/v1/participants',
  tag: '2pc',
  summary: "The coordinator's participants by name: whom a participant may trust as a peer.",
  responses: {
    200: { description: 'The participants.', schema: z.strictObject({ participants: z.array(z.strictObject({ name: z.string(), url: z.string() })) }) },
  },
});

export const participantsInDoubtRoute = defineRoute({
  method: 'get',
  path: '/v1/participants/in-doubt',
  tag: 'ops',
  summary: "Every participant's in-doubt list, asked now: the dashboard's view of who is blocked, and for how long.",
  description:
    'The coordinator asks each participant (GET /v1/2pc/transactions?state=prepared, with its own token), each within 2 s and a few at once; concurrent calls share one survey. A participant that does not answer is reported `reachable:false`, with why.',
  responses: { 200: { description: 'One report per configured participant, in configuration order.', schema: participantsInDoubtSchema } },
});

export const dashboardRoute = defineRoute({
  method: 'get',
  path: '/',
  tag: 'ops',
  summary: 'The dashboard, a static page that reads the API with the token from its URL fragment.',
  public: true,
  responses: { 200: { description: 'The page.', contentType: 'text/html' } },
});

/** Every coordinator route, for its OpenAPI document. */
export const COORDINATOR_ROUTES: readonly AnyRouteSpec[] = [
  beginOrRunRoute,
  enlistRoute,
  commitRoute,
  abortRoute,
  getTxRoute,
  getOutcomeRoute,
  outcomesRoute,
  listRoute,
  participantsRoute,
  participantsInDoubtRoute,
  dashboardRoute,
];
