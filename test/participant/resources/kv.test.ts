import { describe, expect, it } from 'vitest';
import { KvStore } from '../../../participant/resources/kv.ts';
import { parse } from '../../../shared/schemas.ts';
import { asTxId, type Op } from '../../../shared/types.ts';

const t = asTxId('tx-1-1');

function storeWith(entries: Record<string, unknown>): KvStore {
  const kv = new KvStore();
  kv.restore({ entries: Object.entries(entries) });
  return kv;
}

describe('the key-value resource', () => {
  it('computes final values at prepare and applies them only at commit', () => {
    const kv = storeWith({ a: 10, s: 'x' });
    const ops: Op[] = [
      { op: 'add', key: 'a', amount: -3, min: 0 },
      { op: 'add', key: 'new', amount: 5 },
      { op: 'put', key: 'p', value: { deep: [1, 2] } },
      { op: 'delete', key: 's' },
      { op: 'read', key: 'a' },
    ];
    const r = kv.prepare(t, ops);
    expect(r).toEqual({
      vote: 'yes',
      data: {
        writes: [
          { key: 'a', value: 7 },
          { key: 'new', value: 5 },
          { key: 'p', value: { deep: [1, 2] } },
          { key: 's', deleted: true },
        ],
      },
    });
    expect(kv.entries()).toEqual({ a: 10, s: 'x' });
    kv.commit(t, r.data);
    expect(kv.entries()).toEqual({ a: 7, new: 5, p: { deep: [1, 2] } });
    // Idempotent: recovery may apply it twice.
    kv.commit(t, r.data);
    expect(kv.entries()).toEqual({ a: 7, new: 5, p: { deep: [1, 2] } });
  });

  it("sees the transaction's own earlier ops", () => {
    const kv = new KvStore();
    const r = kv.prepare(t, [
      { op: 'put', key: 'a', value: 1 },
      { op: 'add', key: 'a', amount: 2 },
      { op: 'delete', key: 'a' },
      { op: 'add', key: 'a', amount: 4 },
    ]);
    expect(r).toEqual({ vote: 'yes', data: { writes: [{ key: 'a', value: 4 }] } });
  });

  it('votes no below min, counting a missing key as 0', () => {
    expect(new KvStore().prepare(t, [{ op: 'add', key: 'a', amount: -1, min: 0 }])).toEqual({
      vote: 'no',
      reason: 'add on key a would leave -1, below min 0',
    });
    expect(storeWith({ a: 1 }).prepare(t, [{ op: 'add', key: 'a', amount: -1, min: 0 }]).vote).toBe('yes');
  });

  it('votes no on add to a non-number', () => {
    expect(storeWith({ a: 'ten' }).prepare(t, [{ op: 'add', key: 'a', amount: 1 }])).toEqual({
      vote: 'no',
      reason: 'add on key a: its value is not a number ("ten")',
    });
  });

  it('votes read-only for reads only, and for no ops at all', () => {
    expect(new KvStore().prepare(t, [{ op: 'read', key: 'a' }])).toEqual({ vote: 'read-only' });
    expect(new KvStore().prepare(t, [])).toEqual({ vote: 'read-only' });
  });

  it('round-trips a snapshot, whatever the keys', () => {
    const kv = storeWith({ __proto__x: 1, constructor: 2 });
    kv.commit(t, { writes: [{ key: '__proto__', value: 3 }] });
    const copy = new KvStore();
    copy.restore(JSON.parse(JSON.stringify(kv.snapshot())));
    expect(copy.get('__proto__')).toEqual({ found: true, value: 3 });
    expect(copy.size).toBe(3);
  });

  it('refuses a malformed snapshot or commit data loudly', () => {
    expect(() => new KvStore().restore({ nope: 1 })).toThrow(/not \{ entries/);
    expect(() => new KvStore().commit(t, { writes: 'x' })).toThrow(/commit data/);
  });

  it('validates ops with the shared schema: unknown fields and wrong types are 400s', () => {
    const kv = new KvStore();
    expect(() => parse(kv.opsSchema, [{ op: 'add', key: 'a', amount: '1' }])).toThrow(/\[0\]\.amount/);
    expect(() => parse(kv.opsSchema, [{ op: 'put', key: 'a', value: 1, extra: true }])).toThrow(/Unknown field/);
    expect(kv.keysOf(parse(kv.opsSchema, [{ op: 'read', key: 'a' }, { op: 'delete', key: 'b' }]))).toEqual(['a', 'b']);
  });
});
