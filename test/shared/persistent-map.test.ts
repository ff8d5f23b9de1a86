import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashKey, PersistentMap } from '../../shared/persistent-map.ts';

/**
 * Pairs of keys whose 32-bit hashes are equal; they exercise the collision nodes. A transaction id
 * hashes by its sequence number plus its epoch times a constant, modulo 2^32, so epoch 1's
 * sequence number 5 + 1,640,531,535 lands where epoch 0's 5 does.
 */
const COLLIDING = [
  ['tx-0-5', 'tx-1-1640531540'],
  ['tx-0-6', 'tx-1-1640531541'],
] as const;

type Op =
  | { readonly op: 'set'; readonly key: string; readonly value: number }
  | { readonly op: 'delete'; readonly key: string }
  | { readonly op: 'dropFirst'; readonly key?: undefined };

/** Small key sets so that sets, overwrites and deletes of the same key are frequent; plus the colliding keys. */
const key = fc.oneof(
  fc.integer({ min: 0, max: 40 }).map((n) => `k${n}`),
  fc.constantFrom(...COLLIDING.flat()),
  fc.integer({ min: 0, max: 3_000 }).map((n) => `tx-1-${n}`),
);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('set' as const), key, value: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
  // The bounded histories' eviction: it must equal deleting the first key, collisions included.
  { weight: 1, arbitrary: fc.constant({ op: 'dropFirst' as const }) },
);

function expectSame(p: PersistentMap<string, number>, m: ReadonlyMap<string, number>): void {
  expect(p.size).toBe(m.size);
  expect([...p]).toEqual([...m]);
  expect([...p.keys()]).toEqual([...m.keys()]);
  expect([...p.values()]).toEqual([...m.values()]);
  for (const k of m.keys()) expect(p.get(k)).toBe(m.get(k));
  expect(p.first()).toEqual(m.size === 0 ? undefined : [...m][0]);
}

describe('PersistentMap', () => {
  it('the colliding keys really collide (else the collision nodes go untested)', () => {
    for (const [a, b] of COLLIDING) expect(hashKey(a)).toBe(hashKey(b));
  });

  it('behaves as a JavaScript Map, insertion order included, and every old version stays as it was', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        let p = PersistentMap.empty<string, number>();
        const m = new Map<string, number>();
        const versions: [PersistentMap<string, number>, Map<string, number>][] = [];
        for (const o of ops) {
          if (o.op === 'set') {
            p = p.set(o.key, o.value);
            m.set(o.key, o.value);
          } else if (o.op === 'delete') {
            p = p.delete(o.key);
            m.delete(o.key);
          } else {
            const oldest = m.keys().next();
            p = p.dropFirst();
            if (oldest.done !== true) m.delete(oldest.value);
          }
          if (o.key !== undefined) expect(p.has(o.key)).toBe(m.has(o.key));
          versions.push([p, new Map(m)]);
        }
        expectSame(p, m);
        for (const [old, model] of versions) expectSame(old, model);
      }),
      { numRuns: 200 },
    );
  });

  it('gives consecutive transaction ids one path down to the last level (the histories copy one hot path)', () => {
    // The trie takes the hash's low bits first, and the last level's index is the top 5 bits: 32
    // consecutive ids (an aligned block, shifted by the epoch's offset) take at most two paths
    // above it, where a scattering hash gives nearly every id its own.
    for (const [epoch, base] of [[0, 0], [3, 32_000], [7, 987_654_321_000]] as const) {
      const hashes = Array.from({ length: 32 }, (_, i) => hashKey(`tx-${epoch}-${base + i}`));
      expect(new Set(hashes.map((h) => h & 0x07ffffff)).size).toBeLessThanOrEqual(2);
      expect(new Set(hashes).size).toBe(32);
    }
    // Anything else is hashed as a string: near-identical keys scatter.
    expect(new Set(['k1', 'k2', 'k3', 'tx-1-2/a', 'tx-1-3/a'].map((k) => hashKey(k) & 0x1f)).size).toBeGreaterThan(1);
  });

  it('answers absent keys, including a colliding key whose partner is present', () => {
    const [a, b] = COLLIDING[0];
    const p = PersistentMap.empty<string, number>().set(a, 1);
    expect(p.get(b)).toBeUndefined();
    expect(p.has(b)).toBe(false);
    expect(p.delete(b)).toBe(p);
    const both = p.set(b, 2);
    expect([both.get(a), both.get(b)]).toEqual([1, 2]);
    expect([...both.delete(a)]).toEqual([[b, 2]]);
  });

  it('keeps a bounded FIFO history through many generations of its order trie (oldest out, newest in)', () => {
    // 40,000 sequence numbers take the order trie to four levels, and the oldest are dropped as it grows.
    const keep = 100;
    let p = PersistentMap.empty<string, number>();
    for (let i = 0; i < 40_000; i++) {
      p = p.set(`tx-1-${i}`, i);
      if (p.size > keep) p = p.delete((p.first() as readonly [string, number])[0]);
    }
    expect(p.size).toBe(keep);
    expect(p.first()).toEqual(['tx-1-39900', 39_900]);
    expect([...p.values()]).toEqual(Array.from({ length: keep }, (_, i) => 39_900 + i));
  });

  it('a change that changes nothing returns the same map; an overwrite keeps the key in its place', () => {
    const p = PersistentMap.from<string, number>([
      ['a', 1],
      ['b', 2],
    ]);
    expect(p.set('a', 1)).toBe(p);
    expect(p.delete('zz')).toBe(p);
    expect([...p.set('a', 3)]).toEqual([
      ['a', 3],
      ['b', 2],
    ]);
    expect([...p.delete('a').set('a', 4)]).toEqual([
      ['b', 2],
      ['a', 4],
    ]);
    expect(PersistentMap.from(p)).toBe(p);
    expect(p.delete('a').delete('b')).toBe(PersistentMap.empty());
  });

  it('reads as a ReadonlyMap: forEach and the iterators', () => {
    const p = PersistentMap.from(new Map([['x', 1], ['y', 2]]));
    const seen: string[] = [];
    p.forEach((v, k, map) => seen.push(`${k}=${v}:${map.size}`));
    expect(seen).toEqual(['x=1:2', 'y=2:2']);
    expect(Object.prototype.toString.call(p)).toBe('[object PersistentMap]');
  });
});
