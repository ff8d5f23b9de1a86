/**
 * A bounded memory of settled outcomes, as a persistent (never mutated) value.
 *
 * Entries live in generations of a fixed size. Adding copies only the current
 * generation; when it is full it is frozen and a new one begins, and beyond
 * `generations` the oldest is dropped whole. So a step costs at most one copy
 * of `generationSize` entries however large the memory is, and old states stay
 * valid for whoever holds them (the simulator, tests).
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
import type { TxId } from '../../shared/types.ts';
import type { OutcomeEntry } from './types.ts';

/** What has been forgotten: anything at all, and the highest coordinator-ordered id among it. */
export interface ForgetHorizon {
  readonly any: boolean;
  /** [epoch, seq] of the highest `tx-<epoch>-<seq>` id dropped, if any. */
  readonly highest?: readonly [number, number];
}

export interface RecentOutcomes {
  readonly current: ReadonlyMap<TxId, OutcomeEntry>;
  /** Frozen generations, newest first. */
  readonly older: readonly ReadonlyMap<TxId, OutcomeEntry>[];
  readonly forgotten: ForgetHorizon;
}

export const nothingForgotten: ForgetHorizon = { any: false };
export const emptyOutcomes: RecentOutcomes = { current: new Map(), older: [], forgotten: nothingForgotten };

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
  const hit = o.current.get(txId);
  if (hit !== undefined) return hit;
  for (const gen of o.older) {
    const e = gen.get(txId);
    if (e !== undefined) return e;
  }
  return undefined;
}

export function putOutcome(
  o: RecentOutcomes,
  txId: TxId,
  entry: OutcomeEntry,
  generationSize: number,
  generations: number,
): RecentOutcomes {
  // A newer generation shadows an older entry for the same id, so a replaced entry needs no removal.
  if (o.current.has(txId) || o.current.size < generationSize) {
    return { ...o, current: new Map(o.current).set(txId, entry) };
  }
  const all = [o.current, ...o.older];
  const kept = all.slice(0, Math.max(0, generations - 1));
  const dropped = all.slice(kept.length);
  const forgotten = dropped.length === 0 ? o.forgotten : forget(o.forgotten, dropped.flatMap((g) => [...g.keys()]));
  return { current: new Map([[txId, entry]]), older: kept, forgotten };
}

/** Every remembered entry, oldest first, without shadowed duplicates. */
export function outcomeEntries(o: RecentOutcomes): (readonly [TxId, OutcomeEntry])[] {
  const seen = new Set<TxId>();
  const newestFirst: (readonly [TxId, OutcomeEntry])[] = [];
  for (const gen of [o.current, ...o.older]) {
    const inGen = [...gen].reverse();
    for (const [txId, e] of inGen) {
      if (seen.has(txId)) continue;
      seen.add(txId);
      newestFirst.push([txId, e]);
    }
  }
  return newestFirst.reverse();
}

export function outcomeCount(o: RecentOutcomes): number {
  return o.older.reduce((n, g) => n + g.size, o.current.size);
}

/** Builds the memory from entries in settle order (oldest first) in one pass, for recovery. */
export function outcomesFrom(
  entries: Iterable<readonly [TxId, OutcomeEntry]>,
  generationSize: number,
  generations: number,
  forgotten: ForgetHorizon = nothingForgotten,
): RecentOutcomes {
  const gens: Map<TxId, OutcomeEntry>[] = [new Map()];
  let horizon = forgotten;
  for (const [txId, entry] of entries) {
    let current = gens[gens.length - 1] as Map<TxId, OutcomeEntry>;
    if (!current.has(txId) && current.size >= generationSize) {
      current = new Map();
      gens.push(current);
      // Older generations than the bound would be dropped anyway; drop them now to bound memory.
      if (gens.length > generations) horizon = forget(horizon, (gens.shift() as Map<TxId, OutcomeEntry>).keys());
    }
    current.set(txId, entry);
  }
  const newestFirst = gens.reverse();
  return { current: newestFirst[0] ?? new Map(), older: newestFirst.slice(1), forgotten: horizon };
}
