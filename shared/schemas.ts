/**
 * A small strict validator for inbound JSON. Every body the services accept
 * passes through `parse` before it reaches a core, so bad input becomes a 400
 * with a message naming the field, and never a WAL write.
 *
 * Objects are strict: an unknown field is an error (a typo'd `timeoutMS` must
 * not silently fall back to a default).
 */
import { badRequest } from './errors.ts';
import type { CreateTransactionRequest, DecisionRequest, Op, PrepareRequest, TxId } from './types.ts';

export type Schema<T> = (value: unknown, path: string) => T;

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

const where = (path: string): string => (path === '' ? 'body' : path);

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

export function parse<T>(schema: Schema<T>, value: unknown): T {
  return schema(value, '');
}

export const str =
  (opts: { maxLength?: number; minLength?: number; pattern?: RegExp } = {}): Schema<string> =>
  (v, path) => {
    if (typeof v !== 'string') throw badRequest(`Expected \`${where(path)}\` to be a string, got ${describe(v)}.`);
    const max = opts.maxLength ?? LIMITS.stringLengthMax;
    if (v.length > max) throw badRequest(`Expected \`${where(path)}\` to be at most ${max} characters.`);
    if (v.length < (opts.minLength ?? 0)) throw badRequest(`Expected \`${where(path)}\` to be at least ${opts.minLength} characters.`);
    if (opts.pattern && !opts.pattern.test(v)) throw badRequest(`Expected \`${where(path)}\` to match ${opts.pattern}.`);
    return v;
  };

export const num =
  (opts: { min?: number; max?: number; integer?: boolean } = {}): Schema<number> =>
  (v, path) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`Expected \`${where(path)}\` to be a finite number, got ${describe(v)}.`);
    if (opts.integer && !Number.isSafeInteger(v)) throw badRequest(`Expected \`${where(path)}\` to be an integer.`);
    if (opts.min !== undefined && v < opts.min) throw badRequest(`Expected \`${where(path)}\` to be >= ${opts.min}.`);
    if (opts.max !== undefined && v > opts.max) throw badRequest(`Expected \`${where(path)}\` to be <= ${opts.max}.`);
    return v;
  };

export const int = (opts: { min?: number; max?: number } = {}): Schema<number> => num({ ...opts, integer: true });

export const bool: Schema<boolean> = (v, path) => {
  if (typeof v !== 'boolean') throw badRequest(`Expected \`${where(path)}\` to be a boolean, got ${describe(v)}.`);
  return v;
};

export const literal =
  <const L extends string>(...options: L[]): Schema<L> =>
  (v, path) => {
    if (typeof v !== 'string' || !(options as string[]).includes(v)) {
      throw badRequest(`Expected \`${where(path)}\` to be one of ${options.map((o) => `"${o}"`).join(', ')}, got ${describe(v)}.`);
    }
    return v as L;
  };

/** Any JSON value, bounded in serialized size. */
export const jsonValue =
  (maxBytes: number = LIMITS.valueBytesMax): Schema<unknown> =>
  (v, path) => {
    if (v === undefined) throw badRequest(`Expected \`${where(path)}\` to be present.`);
    const size = Buffer.byteLength(JSON.stringify(v));
    if (size > maxBytes) throw badRequest(`Expected \`${where(path)}\` to be at most ${maxBytes} bytes of JSON, got ${size}.`);
    return v;
  };

export const array =
  <T>(item: Schema<T>, opts: { max: number; min?: number }): Schema<T[]> =>
  (v, path) => {
    if (!Array.isArray(v)) throw badRequest(`Expected \`${where(path)}\` to be an array, got ${describe(v)}.`);
    if (v.length > opts.max) throw badRequest(`Expected \`${where(path)}\` to have at most ${opts.max} items, got ${v.length}.`);
    if (v.length < (opts.min ?? 0)) throw badRequest(`Expected \`${where(path)}\` to have at least ${opts.min} items.`);
    return v.map((x, i) => item(x, `${path}[${i}]`));
  };

type Field<T> = { schema: Schema<T>; optional: boolean };
export const optional = <T>(schema: Schema<T>): Field<T | undefined> => ({ schema: schema as Schema<T | undefined>, optional: true });

type Shape = Record<string, Schema<unknown> | Field<unknown>>;
type Out<S extends Shape> = {
  [K in keyof S as S[K] extends Field<unknown> ? never : K]: S[K] extends Schema<infer T> ? T : never;
} & {
  [K in keyof S as S[K] extends Field<unknown> ? K : never]?: S[K] extends Field<infer T> ? Exclude<T, undefined> : never;
};

const isField = (x: Schema<unknown> | Field<unknown>): x is Field<unknown> => typeof x !== 'function';

/** A strict object: unknown fields are rejected, `undefined`-valued optionals are dropped. */
export const object =
  <S extends Shape>(shape: S): Schema<Out<S>> =>
  (v, path) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw badRequest(`Expected \`${where(path)}\` to be an object, got ${describe(v)}.`);
    }
    const input = v as Record<string, unknown>;
    for (const k of Object.keys(input)) {
      if (!Object.hasOwn(shape, k)) {
        const known = Object.keys(shape).join(', ');
        throw badRequest(`Unknown field \`${path === '' ? k : `${path}.${k}`}\` (allowed: ${known}).`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const [k, spec] of Object.entries(shape)) {
      const p = path === '' ? k : `${path}.${k}`;
      const field = isField(spec) ? spec : { schema: spec, optional: false };
      if (!Object.hasOwn(input, k) || input[k] === undefined) {
        if (!field.optional) throw badRequest(`Missing field \`${p}\`.`);
        continue;
      }
      out[k] = field.schema(input[k], p);
    }
    return out as Out<S>;
  };

/** A discriminated union on a string field: picks the branch by the tag, so errors name the right shape. */
export const tagged =
  <T>(tag: string, branches: Record<string, Schema<T>>): Schema<T> =>
  (v, path) => {
    const t = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[tag] : undefined;
    if (typeof t !== 'string' || !Object.hasOwn(branches, t)) {
      const p = path === '' ? tag : `${path}.${tag}`;
      throw badRequest(`Expected \`${p}\` to be one of ${Object.keys(branches).map((b) => `"${b}"`).join(', ')}, got ${describe(t)}.`);
    }
    return (branches[t] as Schema<T>)(v, path);
  };

// ---- The contract's bodies ----------------------------------------------------------

export const txIdSchema: Schema<TxId> = (v, path) =>
  str({ minLength: 1, maxLength: LIMITS.txIdLengthMax, pattern: /^[A-Za-z0-9._:-]+$/ })(v, path) as TxId;

const key = str({ minLength: 1, maxLength: LIMITS.keyLengthMax });
const amount = num({ min: -1e15, max: 1e15 });

export const opSchema: Schema<Op> = tagged<Op>('op', {
  put: object({ op: literal('put'), key, value: jsonValue() }) as Schema<Op>,
  delete: object({ op: literal('delete'), key }) as Schema<Op>,
  add: object({ op: literal('add'), key, amount, min: optional(amount) }) as Schema<Op>,
  read: object({ op: literal('read'), key }) as Schema<Op>,
});

export const opsSchema: Schema<Op[]> = array(opSchema, { max: LIMITS.opsPerBranchMax });

const url = str({ minLength: 1, maxLength: 2048, pattern: /^https?:\/\/[^\s]+$/ });
// Shape only: the largest timeout is the coordinator's configured txTimeoutMsMax, which its core checks, so the 400 names the value in force.
const timeoutMs = int({ min: 1 });

/** Bytes of JSON one op of another resource may have at the coordinator (a SQL statement with its params). */
const foreignOpBytesMax = 64 * 1024;
const opName = str({ minLength: 1, maxLength: 64, pattern: /^[A-Za-z][A-Za-z0-9_.-]*$/ });

/**
 * An op as the coordinator checks it. The coordinator does not know which resource a
 * participant has: key-value ops (put, delete, add, read) are checked in full here; any
 * other op (a PostgreSQL participant's `sql`, an embedding service's own ops) is checked
 * for shape and size only, and in full by the participant's resource when it prepares
 * (a bad one is a 400 there, and the transaction aborts with its message).
 */
export const branchOpSchema: Schema<Op> = (v, path) => {
  const tag = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>).op : undefined;
  if (typeof tag === 'string' && Object.hasOwn({ put: 1, delete: 1, add: 1, read: 1 }, tag)) return opSchema(v, path);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest(`Expected \`${where(path)}\` to be an object, got ${describe(v)}.`);
  opName(tag, path === '' ? 'op' : `${path}.op`);
  jsonValue(foreignOpBytesMax)(v, path);
  return v as Op;
};

export const branchSchema = object({ participant: str({ minLength: 1, maxLength: 2048 }), ops: array(branchOpSchema, { max: LIMITS.opsPerBranchMax }) });

export const createTransactionSchema: Schema<CreateTransactionRequest> = object({
  timeoutMs: optional(timeoutMs),
  branches: optional(array(branchSchema, { min: 1, max: LIMITS.branchesPerTxMax })),
});

export const enlistSchema = branchSchema;

/** Commit and abort requests from a client carry no body (or an empty object). */
export const emptySchema = object({});

/**
 * A participant validates ops with its resource's own schema (the built-in KV
 * uses `opsSchema`), so `ops` is checked for shape here and for content there.
 */
export const prepareSchema = (ops: Schema<readonly unknown[]> = opsSchema): Schema<PrepareRequest> =>
  object({
    txId: txIdSchema,
    coordinator: url,
    participants: array(url, { max: LIMITS.participantsMax }),
    ops: optional(ops),
    onePhase: optional(bool),
    protocol: optional(literal('presumed-abort', 'presumed-nothing', 'presumed-commit')),
  }) as Schema<PrepareRequest>;

export const decisionSchema: Schema<DecisionRequest> = object({ txId: txIdSchema });

/** Ids one `POST /v1/outcomes` may ask about; participants batch their inquiries up to it. */
export const OUTCOMES_BATCH_MAX = 256;
export const outcomesBatchSchema = object({ txIds: array(txIdSchema, { max: OUTCOMES_BATCH_MAX }) });

export const heuristicSchema = object({ outcome: literal('committed', 'aborted') });

export const crashAtSchema = object({ point: str({ minLength: 1, maxLength: 128 }) });

// ---- Batches of protocol messages (POST /v1/2pc/batch) ------------------------------

/** Messages one `POST /v1/2pc/batch` may carry; coordinators batch up to it. */
export const BATCH_MESSAGES_MAX = 256;

/** Any JSON value: each message of a batch is checked on its own, so one bad message is its own 400, not the batch's. */
const unchecked: Schema<unknown> = (v) => v;

/** The envelope only: a malformed envelope is a 400 for the whole request. */
export const batchSchema = object({ messages: array(unchecked, { min: 1, max: BATCH_MESSAGES_MAX }) });

export type BatchMessage = { readonly type: 'prepare'; readonly body: PrepareRequest } | { readonly type: 'commit' | 'abort'; readonly body: DecisionRequest };

/** One message of a batch: its type, and the body its single route takes, checked by that route's schema. */
export const batchMessageSchema = (prepare: Schema<PrepareRequest>): Schema<BatchMessage> =>
  tagged<BatchMessage>('type', {
    prepare: object({ type: literal('prepare'), body: prepare }),
    commit: object({ type: literal('commit'), body: decisionSchema }),
    abort: object({ type: literal('abort'), body: decisionSchema }),
  });
