/**
 * A small seeded pseudo-random generator (mulberry32) for chaos tooling:
 * the fault proxy, scenarios and the simulator draw from it so that a run
 * with the same seed and the same sequence of draws makes the same choices.
 * It is not cryptographic; it only has to be fast, portable and replayable.
 *
 * It holds its state in a closure, never in a module variable, so two
 * generators never disturb each other's sequence.
 */

export interface Prng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both ends included. */
  int(min: number, max: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

const TWO_POW_32 = 2 ** 32;

/**
 * Folds any safe integer (negative and above 2^32 included) into the 32-bit
 * state, so seeds such as `Date.now()` printed by a failing run replay exactly.
 */
function seedState(seed: number): number {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const low = seed >>> 0;
  const high = Math.floor(seed / TWO_POW_32) >>> 0;
  return (low ^ Math.imul(high, 0x9e3779b9)) >>> 0;
}

export function createPrng(seed: number): Prng {
  let state = seedState(seed);

  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / TWO_POW_32;
  };

  const int = (min: number, max: number): number => {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min > max) {
      throw new RangeError(`int(min, max) needs integers with min <= max, got ${min}, ${max}`);
    }
    return min + Math.floor(next() * (max - min + 1));
  };

  const pick = <T>(items: readonly T[]): T => {
    if (items.length === 0) throw new RangeError('pick() needs a non-empty array');
    // The index is in range by construction; the cast only satisfies noUncheckedIndexedAccess.
    return items[int(0, items.length - 1)] as T;
  };

  return { next, int, pick };
}
