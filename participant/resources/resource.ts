/**
 * The Resource port: what a service implements to put its own state under
 * two-phase commit. The participant core owns locking and the protocol; the
 * resource only validates, computes and applies.
 *
 * Lifecycle of one transaction, as the runtime drives it:
 *   validateOps (on the HTTP edge, before anything is logged)
 *   → keysOf (the core locks exactly these keys, exclusively)
 *   → prepare (called with those locks held; no other transaction touches the keys
 *      until commit or abort)
 *   → commit(data) or abort(data), with the `data` prepare returned, which the
 *      participant logged in its PREPARED record.
 *
 * Recovery calls restore(snapshot) with the last checkpoint's snapshot, then
 * replays commit/abort for every outcome logged after it. So commit and abort
 * must be idempotent: a crash can fall between the log record and the apply.
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

export interface Resource<Op = unknown> {
  /** Checks the `ops` of a prepare body; throws a TwopcError('bad_request') naming the bad field. */
  readonly opsSchema: Schema<readonly Op[]>;
  /** The keys the ops touch. Pure and deterministic: the core calls it and recovery relies on it. */
  keysOf(ops: readonly Op[]): readonly string[];
  /** Validates under locks already held and computes the commit data. Must not change committed state. */
  prepare(txId: TxId, ops: readonly Op[]): PrepareResult | Promise<PrepareResult>;
  /** Applies a committed transaction. Idempotent. A throw is fatal: the participant stops and recovers. */
  commit(txId: TxId, data: unknown): void | Promise<void>;
  /** Forgets a prepared transaction. Idempotent. */
  abort(txId: TxId, data: unknown): void | Promise<void>;
  /** The committed state, as JSON, for a checkpoint. Called with no commit in progress. */
  snapshot(): unknown;
  /** Replaces the committed state with a checkpoint's snapshot. Called before any replay. */
  restore(snapshot: unknown): void | Promise<void>;
}
