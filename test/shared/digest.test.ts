import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { canonicalJson, opsDigest } from '../../shared/digest.ts';

/** The canonical text as the first form built it (every digest in a WAL so far comes from it): the oracle. */
function canonicalJsonAsWritten(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJsonAsWritten).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJsonAsWritten(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The digest as every WAL record written before holds it: the first 22 characters of the whole hash's base64url text. */
const digestAsWritten = (ops: readonly unknown[]): string =>
  createHash('sha256').update(canonicalJsonAsWritten(ops)).digest('base64url').slice(0, 22);

/** A small deterministic generator (mulberry32), so a failure names its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Keys that sort differently by code unit than by code point or locale, need escaping, or look like indices. */
const KEYS = ['key', 'amount', 'op', 'min', 'a', 'B', 'b', '10', '9', '', 'é', 'ë', '\uD83D\uDE00', '\uFF61', '"q"', 'tab\t', '\\', 'z-1', '__proto__x'];
const LEAVES: unknown[] = [0, -0, 1, -1, 1.5, 1e21, Number.NaN, Number.POSITIVE_INFINITY, '', 'text', 'ünï\u2028', '\uD800', true, false, null, undefined];

function randomValue(next: () => number, depth: number): unknown {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  const r = next();
  if (depth <= 0 || r < 0.45) return pick(LEAVES);
  const n = Math.floor(next() * 5);
  if (r < 0.7) return Array.from({ length: n }, () => randomValue(next, depth - 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) o[pick(KEYS)] = randomValue(next, depth - 1);
  return o;
}

/** A full collection, made callable in this process (vitest does not start node with --expose-gc). */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Digests kept to weigh them: enough that the heap's noise (a few KB) is under 1 byte a digest. */
const DIGESTS_WEIGHED = 20_000;
/**
 * A flat 22-character string takes 40 bytes and its slot in the array 8; a 22-character slice
 * of the 43-character text takes about 97 with its parent. The bound sits between.
 */
const DIGEST_BYTES_MAX = 70;

describe('canonicalJson', () => {
  it("gives the first form's text for 5,000 random values: escaped, unicode and index-like keys, undefined members, -0, NaN", () => {
    for (let seed = 1; seed <= 5_000; seed++) {
      const value = randomValue(prng(seed), 4);
      expect([seed, canonicalJson(value)]).toEqual([seed, canonicalJsonAsWritten(value)]);
    }
  });

  it('sorts keys by UTF-16 code unit, drops undefined members, and writes what JSON cannot as null', () => {
    expect(canonicalJson({ b: 1, a: [undefined, () => 1, { d: undefined, c: 'x' }], '\uFF61': 2, '\uD83D\uDE00': 3 })).toBe(
      '{"a":[null,null,{"c":"x"}],"b":1,"\uD83D\uDE00":3,"\uFF61":2}',
    );
    expect(canonicalJson({ 10: 'ten', 9: 'nine', x: null })).toBe('{"10":"ten","9":"nine","x":null}');
    // JSON.parse makes "__proto__" an own key, as a request body would carry it.
    const parsed: unknown = JSON.parse('[{"__proto__":{"b":1,"a":2},"op":"x"},{"constructor":"c","toString":"t"}]');
    expect(canonicalJson(parsed)).toBe('[{"__proto__":{"a":2,"b":1},"op":"x"},{"constructor":"c","toString":"t"}]');
    expect(canonicalJson(parsed)).toBe(canonicalJsonAsWritten(parsed));
  });

  it('keeps a hole in an array empty, as the first form did', () => {
    const holed = [1, , 2];
    expect(canonicalJson(holed)).toBe('[1,,2]');
    expect(canonicalJson(holed)).toBe(canonicalJsonAsWritten(holed));
  });
});

describe('opsDigest', () => {
  it('keeps the value written before, down to the 22nd character (it carries bits of the 17th byte)', () => {
    // The 22nd character takes 2 bits of the 16th byte and 4 of the 17th: encoding only 16 bytes
    // would get it wrong for most inputs, so many inputs must all agree.
    for (let i = 0; i < 2_000; i++) {
      const ops = [{ key: `acct-${i}`, delta: -i }, { key: `acct-${i + 1}`, delta: i }];
      expect(opsDigest(ops)).toBe(digestAsWritten(ops));
    }
  });

  it('names the same ops by the same 22 base64url characters, whatever the key order', () => {
    const d = opsDigest([{ key: 'a', delta: 1 }]);
    expect(d).toBe('Qv__cFoT9x1hzZ0jJsO8EK');
    expect(opsDigest([{ delta: 1, key: 'a' }])).toBe(d);
    expect(d).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(opsDigest([{ key: 'a', delta: 2 }])).not.toBe(d);
  });

  it('keeps no more than its own 22 characters alive (a slice would hold the whole 43-character text)', () => {
    const gc = collector();
    const kept: string[] = new Array<string>(DIGESTS_WEIGHED).fill('');
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < DIGESTS_WEIGHED; i++) kept[i] = opsDigest([{ key: `weighed-${i}`, delta: i }]);
    gc();
    const bytesPerDigest = (process.memoryUsage().heapUsed - before) / DIGESTS_WEIGHED;
    expect(kept.every((d) => d.length === 22)).toBe(true);
    expect(bytesPerDigest).toBeLessThan(DIGEST_BYTES_MAX);
  });
});
