import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { canonicalJson, opsDigest } from '../../shared/digest.ts';

/** The digest as every WAL record written before holds it: the first 22 characters of the whole hash's base64url text. */
const digestAsWritten = (ops: readonly unknown[]): string =>
  createHash('sha256').update(canonicalJson(ops)).digest('base64url').slice(0, 22);

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
