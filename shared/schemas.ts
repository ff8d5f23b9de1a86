/**
 * The contract's request bodies as zod schemas: data that express validates
 * with (shared/http/route-table.ts) and that the OpenAPI document is generated
 * from (shared/http/openapi.ts), so the check and its description cannot drift.
 * Every body the services accept passes through `parse` before it reaches a
 * core, so bad input becomes a 400 with a message naming the field, and never
 * a WAL write.
 *
 * Objects are strict: an unknown field is an error (a typo'd `timeoutMS` must
 * not silently fall back to a default).
 */
import { z } from 'zod';
import { badRequest } from './errors.ts';
import { issueText, pathText, sentenceOf } from './schema-errors.ts';
import type { CreateTransactionRequest, DecisionRequest, Op, PrepareRequest, TxId } from './types.ts';

export { z };

/** A schema of inbound data that parses to `T`. Resources give theirs for their ops. */
export type Schema<T> = z.ZodType<T>;

/** Size limits for inbound data; each is enforced with a clear message. */
export const LIMITS = {
  keyLengthMax: 256,
  stringLengthMax: 4096,
  opsPerBranchMax: 256,
  branchesPerTxMax: 32,
  participantsMax: 64,
  txIdLengthMax: 128,
  valueBytesMax: 16_384,
} as const;

/** The options of a parse whose issues are to be worded: our messages, and the input kept for them. */
const WORDED = { error: issueText, reportInput: true } as const;

/**
 * `schema.safeParse(value)`, with the issues worded by `issueText` when it fails. Valid input is
 * parsed without options: zod takes its fast path only then (a batch's commit message 0.26 µs
 * against 4.0 µs with them), and options change only the issues, never the data. Invalid input
 * is parsed again with them, so a bad body gets exactly the message it always got.
 */
function checked<T>(schema: Schema<T>, value: unknown): ReturnType<Schema<T>['safeParse']> {
  const fast = schema.safeParse(value);
  return fast.success ? fast : schema.safeParse(value, WORDED);
}

/**
 * Checks `value` against `schema`; throws a TwopcError('bad_request') whose
 * message names the first bad field (`root` names the value itself: `body`,
 * or a parameter's name).
 */
export function parse<T>(schema: Schema<T>, value: unknown, root = 'body'): T {
  const result = checked(schema, value);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  throw badRequest(first === undefined ? `Expected \`${root}\` to be valid.` : sentenceOf(first, root));
}

/**
 * As `parse`, for a value found at `at` inside a larger body (a batch's `messages[1]`): the
 * message names the field from the body's root, so one bad message says which one it is.
 */
export function parseAt<T>(schema: Schema<T>, value: unknown, at: readonly (string | number)[]): T {
  const result = checked(schema, value);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  throw badRequest(first === undefined ? `Expected \`${pathText(at)}\` to be valid.` : sentenceOf({ ...first, path: [...at, ...first.path] }, pathText(at)));
}

/** A string bounded in length: every string the services accept has a maximum. */
export const str = (maxLength: number = LIMITS.stringLengthMax, minLength = 0): z.ZodString =>
  minLength > 0 ? z.string().min(minLength).max(maxLength) : z.string().max(maxLength);

/** Any JSON value, present and bounded in serialized size. */
export const jsonValue = (bytesMax: number = LIMITS.valueBytesMax): z.ZodType<unknown> =>
  z.unknown().superRefine((value, ctx) => {
    if (value === undefined) return;
    const size = Buffer.byteLength(JSON.stringify(value));
    if (size > bytesMax) ctx.addIssue({ code: 'custom', message: `to be at most ${bytesMax} bytes of JSON, got ${size}`, input: value });
  });

// ---- The contract's bodies ----------------------------------------------------------

const TX_ID_PATTERN = /^[A-Za-z0-9._:-]+$/;
export const txIdSchema = str(LIMITS.txIdLengthMax, 1)
  .regex(TX_ID_PATTERN)
  .meta({ description: 'A transaction id, unique across coordinator restarts: `tx-<epoch>-<seq>`.' }) as unknown as z.ZodType<TxId>;

const key = str(LIMITS.keyLengthMax, 1);
const amount = z.number().min(-1e15).max(1e15);

export const KV_OP_NAMES = ['put', 'delete', 'add', 'read'] as const;

/** The built-in key-value resource's ops. */
export const opSchema: Schema<Op> = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('put'), key, value: jsonValue() }).meta({ title: 'PutOp' }),
  z.strictObject({ op: z.literal('delete'), key }).meta({ title: 'DeleteOp' }),
  z.strictObject({ op: z.literal('add'), key, amount, min: amount.optional() }).meta({ title: 'AddOp', description: 'A missing key is 0; votes no when the result would fall below `min`.' }),
  z.strictObject({ op: z.literal('read'), key }).meta({ title: 'ReadOp' }),
]);

export const opsSchema: Schema<Op[]> = z.array(opSchema).max(LIMITS.opsPerBranchMax);

const url = str(2048, 1).regex(/^https?:\/\/[^\s]+$/);
// Shape only: the largest timeout is the coordinator's configured txTimeoutMsMax, which its core checks, so the 400 names the value in force.
const timeoutMs = z.int().min(1);

/** Bytes of JSON one op of another resource may have at the coordinator (a SQL statement with its params). */
const foreignOpBytesMax = 64 * 1024;
/** Any op name but the key-value ones, which are checked in full. */
const foreignOpName = str(64, 1).regex(new RegExp(`^(?!(?:${KV_OP_NAMES.join('|')})$)[A-Za-z][A-Za-z0-9_.-]*$`), { abort: true });

/**
 * An op of another resource as the coordinator checks it. The coordinator does
 * not know which resource a participant has: key-value ops are checked in full;
 * any other op (a PostgreSQL participant's `sql`, an embedding service's own
 * ops) is checked for shape and size only, and in full by the participant's
 * resource when it prepares (a bad one is a 400 there, and the transaction
 * aborts with its message).
 */
const foreignOpSchema = z
  .looseObject({ op: foreignOpName })
  .superRefine((value, ctx) => {
    const size = Buffer.byteLength(JSON.stringify(value));
    if (size > foreignOpBytesMax) ctx.addIssue({ code: 'custom', message: `to be at most ${foreignOpBytesMax} bytes of JSON, got ${size}`, input: value });
  })
  .meta({ title: 'ResourceOp', description: "Another resource's op (e.g. PostgreSQL's `{op:\"sql\", text, params?}`): checked in full by the participant's resource." });

/** An op in a branch: a key-value op, or another resource's. */
export const branchOpSchema = z.union([opSchema, foreignOpSchema]) as unknown as Schema<Op>;

export const branchSchema = z.strictObject({
  participant: str(2048, 1).meta({ description: "A participant's name (p1) or URL, as listed in the coordinator's --participants." }),
  ops: z.array(branchOpSchema).max(LIMITS.opsPerBranchMax),
});

export const createTransactionSchema: Schema<CreateTransactionRequest> = z.strictObject({
  timeoutMs: timeoutMs.optional(),
  branches: z.array(branchSchema).min(1).max(LIMITS.branchesPerTxMax).optional(),
});

export const enlistSchema = branchSchema;

/** Commit and abort requests from a client carry no body (or an empty object). */
export const emptySchema = z.strictObject({});

export const PROTOCOL_VARIANTS = ['presumed-abort', 'presumed-nothing', 'presumed-commit'] as const;

/**
 * A participant validates ops with its resource's own schema (the built-in KV
 * uses `opsSchema`), so a PostgreSQL participant's prepare documents `sql` ops.
 */
export const prepareSchema = (ops: Schema<readonly unknown[]> = opsSchema): Schema<PrepareRequest> =>
  z.strictObject({
    txId: txIdSchema,
    coordinator: url,
    participants: z.array(url).max(LIMITS.participantsMax),
    ops: ops.optional(),
    onePhase: z.boolean().optional(),
    protocol: z.enum(PROTOCOL_VARIANTS).optional(),
  }) as unknown as Schema<PrepareRequest>;

export const decisionSchema: Schema<DecisionRequest> = z.strictObject({ txId: txIdSchema });

/** Ids one `POST /v1/outcomes` may ask about; participants batch their inquiries up to it. */
export const OUTCOMES_BATCH_MAX = 256;
export const outcomesBatchSchema = z.strictObject({ txIds: z.array(txIdSchema).max(OUTCOMES_BATCH_MAX) });

/**
 * Ids one `POST /v1/2pc/inquiries` may ask a peer about; participants batch their peer inquiries up
 * to it, as they batch outcome inquiries to the coordinator.
 */
export const PEER_INQUIRIES_BATCH_MAX = 256;
export const peerInquiriesBatchSchema = z.strictObject({
  txIds: z.array(txIdSchema).min(1).max(PEER_INQUIRIES_BATCH_MAX),
  from: str(2048).optional(),
});

export const OUTCOMES = ['committed', 'aborted'] as const;
export const heuristicSchema = z.strictObject({ outcome: z.enum(OUTCOMES) });

export const crashAtSchema = z.strictObject({ point: str(128, 1) });

// ---- Batches of protocol messages (POST /v1/2pc/batch) ------------------------------

/** Messages one `POST /v1/2pc/batch` may carry; coordinators batch up to it. */
export const BATCH_MESSAGES_MAX = 256;

/** The envelope only: a malformed envelope is a 400 for the whole request; each message is checked on its own, so one bad message is its own 400, not the batch's. */
export const batchSchema = z.strictObject({ messages: z.array(z.unknown()).min(1).max(BATCH_MESSAGES_MAX) });

export type BatchMessage = { readonly type: 'prepare'; readonly body: PrepareRequest } | { readonly type: 'commit' | 'abort'; readonly body: DecisionRequest };

/** One message of a batch: its type, and the body its single route takes, checked by that route's schema. */
export const batchMessageSchema = (prepare: Schema<PrepareRequest>): Schema<BatchMessage> =>
  z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('prepare'), body: prepare }),
    z.strictObject({ type: z.literal('commit'), body: decisionSchema }),
    z.strictObject({ type: z.literal('abort'), body: decisionSchema }),
  ]) as unknown as Schema<BatchMessage>;

/**
 * A batch's answer streamed as it settles (a request that accepts this type): one JSON line per
 * message, `{i, txId?, status, body}`, in the order the messages settle, so a message that waits
 * (a prepare held in a lock wait) holds back no other message's reply.
 */
export const BATCH_STREAM_CONTENT_TYPE = 'application/x-ndjson';

/** One line of a streamed batch answer: message `i` of the batch (from 0), answered as its single route would have answered. */
export const batchLineSchema = z.strictObject({
  i: z.int().min(0).max(BATCH_MESSAGES_MAX - 1),
  txId: z.string().optional(),
  status: z.int().min(100).max(599),
  body: z.unknown(),
});

export type BatchLine = z.infer<typeof batchLineSchema>;

/** One branch a participant has prepared and not yet settled: an entry of its in-doubt list (GET /v1/2pc/transactions?state=prepared). */
export const inDoubtEntrySchema = z
  .strictObject({
  txId: z.string(),
  state: z.literal('prepared'),
  since: z.number(),
  blockedMs: z.number().meta({ description: 'How long it has blocked its keys.' }),
  keys: z.array(z.string()),
  coordinator: z.string(),
  participants: z.array(z.string()),
  inquiries: z.int(),
  blocked: z.string().optional(),
  resource: z.looseObject({}).optional().meta({ description: 'How the resource holds it (PostgreSQL: its gid and age).' }),
  })
  .meta({ title: 'InDoubtBranch' });

/**
 * The coordinator's survey of its participants' in-doubt lists (GET /v1/participants/in-doubt),
 * for the read-only dashboard where no cluster process serves the lab. A participant that did
 * not answer is reported as unreachable, with why, instead of failing the survey.
 */
export const participantsInDoubtSchema = z
  .strictObject({
    askedAt: z.number().meta({ description: 'When the survey began, in milliseconds since the epoch.' }),
    participants: z.array(
      z.strictObject({
        name: z.string(),
        url: z.string(),
        reachable: z.boolean(),
        transactions: z.array(inDoubtEntrySchema).optional().meta({ description: 'Its in-doubt list, when it answered.' }),
        error: z.string().optional().meta({ description: 'Why it is unreachable, or what it answered instead of its list.' }),
      }),
    ),
  })
  .meta({ title: 'ParticipantsInDoubt' });
