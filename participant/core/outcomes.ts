/**
 * A bounded memory of settled outcomes, as a persistent (never mutated) value:
 * exactly the most recent `outcomesMax`, oldest forgotten first.
 *
 * It is one insertion-ordered persistent map (shared/persistent-map.ts): adding
 * an outcome, and forgetting the oldest, costs O(log n) and shares the rest, so
 * the cost does not grow with what is remembered, and old states stay valid for
 * whoever holds them (the simulator, tests). (Before, ids were hashed over up to
 * 256 FIFO buckets, each copied whole on every add, and the memory held only
 * roughly the most recent.)
 *
 * Why remember: duplicates of commit/abort must get the same answer, a late
 * PREPARE after an ABORT must vote no (the tombstone), and a peer's inquiry
 * must get the truth. Why forget: memory is bounded.
 *
 * Forgetting must never turn into a wrong answer. "No record" is evidence that
 * this participant never voted yes only for ids it cannot have forgotten. So
 * the memory keeps a horizon: the highest `tx-<epoch>-<seq>` id it has dropped
 * (coordinator ids grow monotonically). An unknown id at or below the horizon
 * may have been settled here and forgotten: a prepare for it votes no, and a
 * peer's inquiry gets "unknown" rather than a tombstone. Ids of another shape
 * cannot be ordered, so once anything was forgotten they get the same caution.
 */
import { PersistentMap } from '../../shared/persistent-map.ts';
import type { TxId } from '../../shared/types.ts';
import type { OutcomeEntry } from './types.ts';

/** What has been forgotten: anything at all, and the highest coordinator-ordered id among it. */
export interface ForgetHorizon {
  readonly any: boolean;
  /** [epoch, seq] of the highest `tx-<epoch>-<seq>` id dropped, if any. */
  readonly highest?: readonly [number, number];
}

export interface RecentOutcomes {
  /** Settled outcomes, oldest first. */
  readonly entries: PersistentMap<TxId, OutcomeEntry>;
  /** At most this many are remembered. */
  readonly max: number;
  readonly forgotten: ForgetHorizon;
}

export const nothingForgotten: ForgetHorizon = { any: false };
export function noOutcomes(outcomesMax: number): RecentOutcomes {
  return { entries: PersistentMap.empty(), max: Math.max(1, outcomesMax), forgotten: nothingForgotten };
}

const ORDERED_ID = /^tx-(\d{1,15})-(\d{1,15})$/;

function orderOf(txId: string): readonly [number, number] | undefined {
  const m = ORDERED_ID.exec(txId);
  return m === null ? undefined : [Number(m[1]), Number(m[2])];
}

const atOrBelow = (a: readonly [number, number], b: readonly [number, number]): boolean => a[0] < b[0] || (a[0] === b[0] && a[1] <= b[1]);

function forget(h: ForgetHorizon, dropped: Iterable<TxId>): ForgetHorizon {
  let highest = h.highest;
  let any = h.any;
  for (const txId of dropped) {
    any = true;
    const o = orderOf(txId);
    if (o !== undefined && (highest === undefined || !atOrBelow(o, highest))) highest = o;
  }
  return highest === undefined ? { any } : { any, highest };
}

/** True when `txId` may have settled here and been forgotten, so "no record" proves nothing. */
export function mayHaveForgotten(o: RecentOutcomes, txId: TxId): boolean {
  if (!o.forgotten.any) return false;
  const id = orderOf(txId);
  if (id === undefined) return true;
  return o.forgotten.highest !== undefined && atOrBelow(id, o.forgotten.highest);
}

export function getOutcome(o: RecentOutcomes, txId: TxId): OutcomeEntry | undefined {
  return o.entries.get(txId);
}

/** Remembers `entry` as the newest (an id already known moves to the end), forgetting the oldest beyond the bound. */
export function putOutcome(o: RecentOutcomes, txId: TxId, entry: OutcomeEntry): RecentOutcomes {
  let entries = o.entries.delete(txId).set(txId, entry);
  const dropped: TxId[] = [];
  // One in, so at most one out; more only when a smaller bound is applied to a larger memory.
  for (let oldest = entries.first(); oldest !== undefined && entries.size > o.max; oldest = entries.first()) {
    entries = entries.dropFirst();
    dropped.push(oldest[0]);
  }
  return { entries, max: o.max, forgotten: dropped.length === 0 ? o.forgotten : forget(o.forgotten, dropped) };
}

/** Every remembered entry, oldest first. */
export function outcomeEntries(o: RecentOutcomes): (readonly [TxId, OutcomeEntry])[] {
  return [...o.entries];
}

export function outcomeCount(o: RecentOutcomes): number {
  return o.entries.size;
}

/** Builds the memory from entries in settle order, for recovery: the same memory as adding them one by one. */
export function outcomesFrom(
  entries: Iterable<readonly [TxId, OutcomeEntry]>,
  outcomesMax: number,
  forgotten: ForgetHorizon = nothingForgotten,
): RecentOutcomes {
  let o: RecentOutcomes = { ...noOutcomes(outcomesMax), forgotten };
  for (const [txId, entry] of entries) o = putOutcome(o, txId, entry);
  return o;
}
