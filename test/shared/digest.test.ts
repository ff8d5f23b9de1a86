import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, opsDigest } from '../../shared/digest.ts';

/** The digest as every WAL record written before holds it: the first 22 characters of the whole hash's base64url text. */
const digestAsWritten = (ops: readonly unknown[]): string =>
  createHash('sha256').update(canonicalJson(ops)).digest('base64url').slice(0, 22);

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
});
