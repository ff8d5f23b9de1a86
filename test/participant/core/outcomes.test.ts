import { describe, expect, it } from 'vitest';
import { getOutcome, mayHaveForgotten, noOutcomes, outcomeCount, outcomeEntries, outcomesFrom, putOutcome } from '../../../participant/core/outcomes.ts';
import type { OutcomeEntry } from '../../../participant/core/types.ts';
import { asTxId } from '../../../shared/types.ts';
import { tx } from './helpers.ts';

const entry = (at: number): OutcomeEntry => ({ outcome: 'committed', at });

describe('the bounded outcome memory', () => {
  it('a small memory is one exact FIFO: it forgets the oldest first', () => {
    let o = noOutcomes(3);
    for (let i = 1; i <= 5; i++) o = putOutcome(o, tx(i), entry(i));
    expect(outcomeCount(o)).toBe(3);
    expect(getOutcome(o, tx(2))).toBeUndefined();
    expect(getOutcome(o, tx(3))).toEqual(entry(3));
    expect(outcomeEntries(o).map(([id]) => id)).toEqual([tx(3), tx(4), tx(5)]);
  });

  it('a large memory is one exact FIFO too: exactly the most recent, in settle order', () => {
    let o = noOutcomes(1_024);
    for (let i = 0; i < 3_000; i++) o = putOutcome(o, tx(i), entry(i));
    expect(outcomeCount(o)).toBe(1_024);
    expect(getOutcome(o, tx(1_975))).toBeUndefined();
    expect(outcomeEntries(o).map(([id]) => id)).toEqual(Array.from({ length: 1_024 }, (_, i) => tx(1_976 + i)));
    expect(o.forgotten).toEqual({ any: true, highest: [1, 1_975] });
  });

  it('never changes a memory someone still holds', () => {
    const a = putOutcome(noOutcomes(8), tx(1), entry(1));
    const b = putOutcome(a, tx(2), entry(2));
    expect(getOutcome(a, tx(2))).toBeUndefined();
    expect(getOutcome(b, tx(2))).toEqual(entry(2));
  });

  it('re-setting an id replaces it and makes it the newest', () => {
    let o = putOutcome(noOutcomes(2), tx(1), entry(1));
    o = putOutcome(o, tx(2), entry(2));
    o = putOutcome(o, tx(1), { outcome: 'aborted', at: 3 });
    expect(outcomeEntries(o)).toEqual([
      [tx(2), entry(2)],
      [tx(1), { outcome: 'aborted', at: 3 }],
    ]);
  });

  it('builds the same memory in bulk (recovery) as one by one', () => {
    const items = Array.from({ length: 2_000 }, (_, i) => [tx(i), entry(i)] as const);
    let one = noOutcomes(512);
    for (const [id, e] of items) one = putOutcome(one, id, e);
    const bulk = outcomesFrom(items, 512);
    expect(outcomeEntries(bulk)).toEqual(outcomeEntries(one));
    expect(bulk.forgotten).toEqual(one.forgotten);
    // And from its own listing, as a checkpoint restores it.
    expect(outcomeEntries(outcomesFrom(outcomeEntries(one), 512, one.forgotten))).toEqual(outcomeEntries(one));
  });

  it('keeps a horizon of what it forgot, so "no record" is evidence only above it', () => {
    let o = noOutcomes(3);
    expect(mayHaveForgotten(o, tx(1))).toBe(false);
    // Settled out of id order: 5, 2, 9, then 3 and 4 push 5 and 2 out.
    for (const n of [5, 2, 9, 3, 4]) o = putOutcome(o, tx(n), entry(n));
    expect(o.forgotten).toEqual({ any: true, highest: [1, 5] });
    expect(mayHaveForgotten(o, tx(1))).toBe(true);
    expect(mayHaveForgotten(o, tx(5))).toBe(true);
    expect(mayHaveForgotten(o, tx(6))).toBe(false);
    expect(mayHaveForgotten(o, asTxId('tx-2-1'))).toBe(false);
    // An id that cannot be ordered gets the cautious answer once anything was forgotten.
    expect(mayHaveForgotten(o, asTxId('order-77'))).toBe(true);
    expect(mayHaveForgotten(noOutcomes(3), asTxId('order-77'))).toBe(false);
    // Recovery rebuilds the same horizon.
    expect(outcomesFrom([5, 2, 9, 3, 4].map((n) => [tx(n), entry(n)] as const), 3).forgotten).toEqual(o.forgotten);
  });
});
