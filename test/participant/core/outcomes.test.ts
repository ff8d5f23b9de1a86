import { describe, expect, it } from 'vitest';
import { emptyOutcomes, getOutcome, mayHaveForgotten, outcomeCount, outcomeEntries, outcomesFrom, putOutcome } from '../../../participant/core/outcomes.ts';
import { asTxId } from '../../../shared/types.ts';
import type { OutcomeEntry } from '../../../participant/core/types.ts';
import { tx } from './helpers.ts';

const entry = (at: number): OutcomeEntry => ({ outcome: 'committed', at });

describe('the bounded outcome memory', () => {
  it('forgets the oldest generation as a whole once the bound is reached', () => {
    let o = emptyOutcomes;
    for (let i = 1; i <= 7; i++) o = putOutcome(o, tx(i), entry(i), 2, 3);
    // Generations of 2, at most 3: {1,2} was dropped when {7} began.
    expect(outcomeCount(o)).toBe(5);
    expect(getOutcome(o, tx(1))).toBeUndefined();
    expect(getOutcome(o, tx(2))).toBeUndefined();
    expect(getOutcome(o, tx(3))).toEqual(entry(3));
    expect(getOutcome(o, tx(7))).toEqual(entry(7));
    expect(outcomeEntries(o).map(([id]) => id)).toEqual([tx(3), tx(4), tx(5), tx(6), tx(7)]);
  });

  it('never changes a memory someone still holds', () => {
    const a = putOutcome(emptyOutcomes, tx(1), entry(1), 2, 3);
    const b = putOutcome(a, tx(2), entry(2), 2, 3);
    expect(getOutcome(a, tx(2))).toBeUndefined();
    expect(getOutcome(b, tx(2))).toEqual(entry(2));
    expect(outcomeCount(emptyOutcomes)).toBe(0);
  });

  it('a newer entry shadows an older one for the same id, and the listing shows it once', () => {
    let o = putOutcome(emptyOutcomes, tx(1), entry(1), 1, 4);
    o = putOutcome(o, tx(2), entry(2), 1, 4);
    o = putOutcome(o, tx(1), { outcome: 'aborted', at: 3 }, 1, 4);
    expect(getOutcome(o, tx(1))).toEqual({ outcome: 'aborted', at: 3 });
    expect(outcomeEntries(o)).toEqual([
      [tx(2), entry(2)],
      [tx(1), { outcome: 'aborted', at: 3 }],
    ]);
  });

  it('builds the same memory in bulk (recovery) as one by one', () => {
    const items = Array.from({ length: 9 }, (_, i) => [tx(i), entry(i)] as const);
    let one = emptyOutcomes;
    for (const [id, e] of items) one = putOutcome(one, id, e, 2, 3);
    const bulk = outcomesFrom(items, 2, 3);
    expect(outcomeEntries(bulk)).toEqual(outcomeEntries(one));
    expect(outcomeCount(bulk)).toBe(outcomeCount(one));
  });

  it('keeps a horizon of what it forgot, so "no record" is evidence only above it', () => {
    let o = emptyOutcomes;
    expect(mayHaveForgotten(o, tx(1))).toBe(false);
    // Settled out of id order: 5, 2, 9, then 3 and 4 push the first generation {5, 2} out.
    for (const n of [5, 2, 9, 3, 4]) o = putOutcome(o, tx(n), entry(n), 2, 2);
    expect(o.forgotten).toEqual({ any: true, highest: [1, 5] });
    expect(mayHaveForgotten(o, tx(1))).toBe(true);
    expect(mayHaveForgotten(o, tx(5))).toBe(true);
    expect(mayHaveForgotten(o, tx(6))).toBe(false);
    expect(mayHaveForgotten(o, asTxId('tx-2-1'))).toBe(false);
    // An id that cannot be ordered gets the cautious answer once anything was forgotten.
    expect(mayHaveForgotten(o, asTxId('order-77'))).toBe(true);
    expect(mayHaveForgotten(emptyOutcomes, asTxId('order-77'))).toBe(false);
    // Recovery rebuilds the same horizon.
    expect(outcomesFrom(outcomeEntries(o), 2, 2, o.forgotten).forgotten).toEqual(o.forgotten);
    expect(outcomesFrom([5, 2, 9, 3, 4].map((n) => [tx(n), entry(n)] as const), 2, 2).forgotten).toEqual(o.forgotten);
  });
});
