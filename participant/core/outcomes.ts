/**
 * A bounded memory of settled outcomes, as a persistent (never mutated) value.
 *
 * Entries live in generations of a fixed size. Adding copies only the current
 * generation; when it is full it is frozen and a new one begins, and beyond
 * `generations` the oldest is dropped whole. So a step costs at most one copy
 * of `generationSize` entries however large the memory is, and old states stay
 * valid for whoever holds them (the simulator, tests).
 *
 * Why remember outcomes at all: duplicates of commit/abort must get the same
 * answer, a late PREPARE after an ABORT must vote no (the tombstone), and a
 * peer's inquiry must get the truth. Why forget: memory is bounded. A
 * forgotten outcome degrades safely: a duplicate commit then gets a 404, a
 * forgotten tombstone lets a very late prepare vote yes, and that transaction
 * then learns "aborted" from the coordinator's presumed-abort answer.
 */
import type { TxId } from '../../shared/types.ts';
import type { OutcomeEntry } from './types.ts';

export interface RecentOutcomes {
  readonly current: ReadonlyMap<TxId, OutcomeEntry>;
  /** Frozen generations, newest first. */
  readonly older: readonly ReadonlyMap<TxId, OutcomeEntry>[];
}

export const emptyOutcomes: RecentOutcomes = { current: new Map(), older: [] };

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
    return { current: new Map(o.current).set(txId, entry), older: o.older };
  }
  return { current: new Map([[txId, entry]]), older: [o.current, ...o.older].slice(0, Math.max(0, generations - 1)) };
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
): RecentOutcomes {
  const gens: Map<TxId, OutcomeEntry>[] = [new Map()];
  for (const [txId, entry] of entries) {
    let current = gens[gens.length - 1] as Map<TxId, OutcomeEntry>;
    if (!current.has(txId) && current.size >= generationSize) {
      current = new Map();
      gens.push(current);
      // Older generations than the bound would be dropped anyway; drop them now to bound memory.
      if (gens.length > generations) gens.shift();
    }
    current.set(txId, entry);
  }
  const newestFirst = gens.reverse();
  return { current: newestFirst[0] ?? new Map(), older: newestFirst.slice(1) };
}
