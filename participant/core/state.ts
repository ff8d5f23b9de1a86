/**
 * Building blocks every transition uses: a step accumulator (the next state
 * plus the effects so far, local to one `step` call), the lock table, and the
 * remembered outcomes. The input state is never mutated: the tables are
 * persistent maps (shared/persistent-map.ts), where a change makes a new version
 * that shares everything it did not touch, so a state a caller kept stays
 * exactly as it was, and a step costs what it touches, not what the tables hold.
 * (Copying whole Maps, as before, cost O(transactions) a change; handing the old
 * state over to be mutated would cost less still, but the simulator and the
 * tests keep old states and step from them again; see docs/performance.md,
 * "Core step cost".) A state built by hand with plain Maps (a test) is
 * converted once, on its first change.
 */
import { TwopcError, type ErrorCode } from '../../shared/errors.ts';
import { PersistentMap } from '../../shared/persistent-map.ts';
import { trimUrl, type TxId } from '../../shared/types.ts';
import { noOutcomes, putOutcome } from './outcomes.ts';
import {
  CONFIG_DEFAULTS,
  type LiveTx,
  type OutcomeEntry,
  type ParticipantConfig,
  type ParticipantEffect,
  type ParticipantState,
  type PendingTx,
  type RequestId,
  type ResolvedConfig,
} from './types.ts';

/** A resource that takes its own locks: the core locks nothing for it. */
const noCoreLocks = (): readonly string[] => [];

export function resolveConfig(config: ParticipantConfig): ResolvedConfig {
  const c: ResolvedConfig = {
    ...CONFIG_DEFAULTS,
    ...withoutUndefined(config),
    keysOf: config.keysOf ?? noCoreLocks,
    selfUrl: config.selfUrl === undefined ? undefined : trimUrl(config.selfUrl),
  };
  for (const [name, value] of Object.entries(c)) {
    if (name === 'keysOf' || name === 'selfUrl') continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new Error(`Expected \`${name}\` to be a non-negative integer, got ${String(value)}.`);
    }
  }
  if (c.outcomesMax < 1) throw new Error('Expected `outcomesMax` to be at least 1.');
  if (typeof c.keysOf !== 'function') throw new Error('Expected `keysOf` to be a function.');
  return c;
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function initialState(config: ParticipantConfig): ParticipantState {
  const c = resolveConfig(config);
  const txs = PersistentMap.empty<TxId, LiveTx>();
  return { config: c, txs, locks: PersistentMap.empty(), waiting: [], outcomes: noOutcomes(c.outcomesMax), inDoubt: { txs, count: 0 } };
}

/** One step's working copy: the state so far and the effects so far, in order. */
export interface Acc {
  s: ParticipantState;
  readonly fx: ParticipantEffect[];
}

export const lockTimerId = (txId: TxId): string => `lock:${txId}`;
export const inquiryTimerId = (txId: TxId): string => `inquire:${txId}`;

// ---- effects --------------------------------------------------------------------

/** With `txId`, the reply waits for that transaction's resource call in flight (its apply), not for anyone else's. */
export function reply(acc: Acc, requestId: RequestId, status: number, body: unknown, txId?: TxId): void {
  acc.fx.push(txId === undefined ? { kind: 'reply', requestId, status, body } : { kind: 'reply', requestId, status, body, txId });
}

export function replyError(acc: Acc, requestId: RequestId, code: ErrorCode, message: string): void {
  const e = new TwopcError(code, message);
  reply(acc, requestId, e.status, e.toBody());
}

export function log(acc: Acc, step: string, txId?: TxId, fields?: Record<string, unknown>): void {
  acc.fx.push(fields === undefined ? { kind: 'log', step, ...(txId && { txId }) } : { kind: 'log', step, ...(txId && { txId }), fields });
}

export function crashPoint(acc: Acc, point: string): void {
  acc.fx.push({ kind: 'crashPoint', point });
}

// ---- state updates ----------------------------------------------------------------

/** Transactions prepared here and waiting for the decision: O(1) for the core's own states. */
export function inDoubtCount(s: ParticipantState): number {
  if (s.inDoubt !== undefined && s.inDoubt.txs === s.txs) return s.inDoubt.count;
  let n = 0;
  for (const tx of s.txs.values()) if (tx.phase === 'prepared') n++;
  return n;
}

const inDoubtDelta = (before: LiveTx | undefined, after: LiveTx | undefined): number =>
  (after?.phase === 'prepared' ? 1 : 0) - (before?.phase === 'prepared' ? 1 : 0);

export function setTx(acc: Acc, tx: LiveTx): void {
  const txs = PersistentMap.from(acc.s.txs).set(tx.txId, tx);
  const count = inDoubtCount(acc.s) + inDoubtDelta(acc.s.txs.get(tx.txId), tx);
  acc.s = { ...acc.s, txs, inDoubt: { txs, count } };
}

export function deleteTx(acc: Acc, txId: TxId): void {
  const before = acc.s.txs.get(txId);
  if (before === undefined) return;
  const txs = PersistentMap.from(acc.s.txs).delete(txId);
  const inDoubt = { txs, count: inDoubtCount(acc.s) + inDoubtDelta(before, undefined) };
  // The wait queue is bounded (waitingPreparesMax) and usually empty.
  acc.s = { ...acc.s, txs, inDoubt, waiting: acc.s.waiting.includes(txId) ? acc.s.waiting.filter((id) => id !== txId) : acc.s.waiting };
  if (acc.s.branchesGone?.has(txId) === true) {
    acc.s = { ...acc.s, branchesGone: PersistentMap.from(acc.s.branchesGone).delete(txId) };
  }
}

export function remember(acc: Acc, txId: TxId, entry: OutcomeEntry): void {
  acc.s = { ...acc.s, outcomes: putOutcome(acc.s.outcomes, txId, entry) };
}

// ---- locks ----------------------------------------------------------------------

/** Transactions that hold (or are about to hold) locks: everything live but the waiters. */
export function lockingCount(s: ParticipantState): number {
  return s.txs.size - s.waiting.length;
}

/**
 * Why `txId` cannot take `keys` now: a key held by another transaction, or a
 * key an earlier waiter is queued for (so a newcomer never overtakes a waiter
 * on the same key: FIFO per key). Undefined when nothing stands in the way.
 */
export function lockConflict(s: ParticipantState, txId: TxId, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const holder = s.locks.get(k);
    if (holder !== undefined && holder !== txId) return `key ${k} locked by ${holder}`;
  }
  for (const w of s.waiting) {
    if (w === txId) break;
    const waiter = s.txs.get(w);
    const k = waiter?.keys.find((key) => keys.includes(key));
    if (k !== undefined) return `key ${k} queued for ${w}`;
  }
  return undefined;
}

function acquire(acc: Acc, txId: TxId, keys: readonly string[]): void {
  let locks = PersistentMap.from(acc.s.locks);
  for (const k of keys) locks = locks.set(k, txId);
  acc.s = { ...acc.s, locks };
}

function release(acc: Acc, txId: TxId, keys: readonly string[]): void {
  let locks = PersistentMap.from(acc.s.locks);
  for (const k of keys) if (locks.get(k) === txId) locks = locks.delete(k);
  acc.s = { ...acc.s, locks };
}

/** Locks are taken and the resource is asked to prepare under them. */
export function startPrepare(acc: Acc, tx: PendingTx): void {
  acquire(acc, tx.txId, tx.keys);
  setTx(acc, { ...tx, phase: 'preparing' });
  acc.fx.push({ kind: 'resourcePrepare', txId: tx.txId, ops: tx.ops, keys: tx.keys });
}

/**
 * Releases a transaction's locks and lets the waiters in, in arrival order. A
 * waiter is admitted when all its keys are free, no earlier waiter still wants
 * one of them, and the locking-transaction limit allows.
 */
export function releaseAndAdmit(acc: Acc, txId: TxId, keys: readonly string[]): void {
  release(acc, txId, keys);
  admitWaiters(acc);
}

export function admitWaiters(acc: Acc): void {
  if (acc.s.waiting.length === 0) return;
  const wantedEarlier = new Set<string>();
  const stillWaiting: TxId[] = [];
  let locking = lockingCount(acc.s);
  for (const id of acc.s.waiting) {
    const tx = acc.s.txs.get(id);
    if (tx === undefined || tx.phase !== 'waiting') continue;
    const free = tx.keys.every((k) => !acc.s.locks.has(k) && !wantedEarlier.has(k));
    if (free && locking < acc.s.config.lockingTxsMax) {
      locking++;
      acc.fx.push({ kind: 'cancelTimer', id: lockTimerId(id) });
      startPrepare(acc, tx);
      log(acc, 'lock-acquired', id, { keys: tx.keys });
    } else {
      stillWaiting.push(id);
      for (const k of tx.keys) wantedEarlier.add(k);
    }
  }
  acc.s = { ...acc.s, waiting: stillWaiting };
}
