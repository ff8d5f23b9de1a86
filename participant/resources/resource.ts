/**
 * The Resource port: what a service implements to put its own state under
 * two-phase commit. The participant core owns the protocol; the resource
 * validates, computes and applies. Locks are the core's (`locking: 'core'`,
 * exclusive locks on `keysOf(ops)`) or the resource's own (`locking:
 * 'resource'`, e.g. a database's row locks).
 *
 * Lifecycle of one transaction, as the runtime drives it:
 *   validateOps (on the HTTP edge, before anything is logged)
 *   → keysOf (with core locking: the core locks exactly these keys, exclusively)
 *   → prepare (with core locking, called with those locks held; no other
 *      transaction touches the keys until commit or abort)
 *   → commit(data) or abort(data), with the `data` prepare returned, which the
 *      participant logged in its PREPARED record.
 *
 * Recovery calls restore(snapshot) with the last checkpoint's snapshot, then
 * replays commit/abort for every outcome logged after it. So commit and abort
 * must be idempotent: a crash can fall between the log record and the apply.
 *
 * A resource that keeps prepared work outside the participant (a database with
 * PREPARE TRANSACTION) also implements `recoverPrepared` and `outcomeOf`: at
 * start-up recovery reconciles what the resource holds with the WAL, both ways
 * (participant/core/reconcile.ts). Only the branches it holds prepared are
 * then committed or rolled back, and `data` is undefined for a branch whose
 * PREPARED record went with an old log segment.
 */
import type { Schema } from '../../shared/schemas.ts';
import type { TxId, Vote } from '../../shared/types.ts';

export interface PrepareResult {
  /** `read-only`: nothing to commit here; the participant logs nothing and skips phase 2. */
  readonly vote: Vote;
  /** Why the vote is no; the coordinator reports it to the client. */
  readonly reason?: string;
  /**
   * What commit (or abort) needs, e.g. the computed final values. Logged in
   * the PREPARED record, so it must be JSON and should be small.
   */
  readonly data?: unknown;
}

/** What a resource knows of a branch it no longer holds prepared. */
export type ResourceOutcome = 'committed' | 'unknown';

export interface Resource<Op = unknown> {
  /** Checks the `ops` of a prepare body; throws a TwopcError('bad_request') naming the bad field. */
  readonly opsSchema: Schema<readonly Op[]>;
  /**
   * Who locks. 'core' (default when absent): the core takes exclusive locks on keysOf(ops) before prepare.
   * 'resource': the core takes no locks; the resource's prepare takes its own (e.g. PostgreSQL row locks
   * with lock_timeout) and a lock wait that times out is a NO vote naming the reason.
   */
  readonly locking?: 'core' | 'resource';
  /** The keys the ops touch. Required when locking is 'core'. Pure and deterministic. */
  keysOf?(ops: readonly Op[]): readonly string[];
  /** Validates (under the core's locks, or taking its own) and computes the commit data. Must not change committed state. */
  prepare(txId: TxId, ops: readonly Op[]): PrepareResult | Promise<PrepareResult>;
  /** Applies a prepared branch. Idempotent: commit of a branch already committed is a no-op. A throw is fatal. */
  commit(txId: TxId, data: unknown): void | Promise<void>;
  /** Rolls back a prepared branch. Idempotent: abort of a branch never prepared (unknown here) is a no-op. */
  abort(txId: TxId, data: unknown): void | Promise<void>;
  /** The committed state, as JSON, for a checkpoint. Called with no commit in progress. */
  snapshot(): unknown;
  /** Replaces the committed state with a checkpoint's snapshot. Called before any replay. */
  restore(snapshot: unknown): void | Promise<void>;
  /**
   * XA recover, for a resource that keeps prepared work outside the participant (a database).
   * Absent: the resource holds nothing prepared across a crash (the key-value store and in-memory resources).
   * Called once at start-up, before recovery: the txIds of the branches this participant holds prepared in the
   * resource now (only this participant's: a database may be shared by several participants).
   */
  recoverPrepared?(): Promise<readonly TxId[]>;
  /**
   * For a branch the WAL says is prepared or committed but the resource no longer holds prepared:
   * did it commit in the resource ('committed', e.g. a marker row written inside the branch's transaction),
   * or is there no trace of it ('unknown': never prepared, or rolled back)? Absent: a branch in doubt counts as
   * 'unknown', and a branch the WAL says committed goes unchecked (a lost commit cannot be told from an applied one).
   */
  outcomeOf?(txId: TxId): Promise<ResourceOutcome>;
}

/**
 * The keysOf the core locks by: the resource's own when it leaves locking to the core (the default),
 * undefined when it takes its own locks. Throws, naming the fix, when the core should lock and cannot.
 */
export function coreKeysOf<Op>(resource: Resource<Op>): ((ops: readonly unknown[]) => readonly string[]) | undefined {
  if (resource.locking === 'resource') return undefined;
  if (resource.locking !== undefined && resource.locking !== 'core') {
    throw new TypeError(`Expected the resource's locking to be 'core' or 'resource', got ${JSON.stringify(resource.locking)}.`);
  }
  const keysOf = resource.keysOf;
  if (typeof keysOf !== 'function') {
    throw new TypeError("Expected the resource to have keysOf(ops), since it leaves locking to the core (set locking: 'resource' if it takes its own locks).");
  }
  return (ops) => keysOf.call(resource, ops as readonly Op[]);
}
