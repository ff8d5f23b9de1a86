/**
 * Which participant effects run beside the driver's queue, and on which lanes
 * (participant/core/lanes.ts): the driver orders calls that share a lane, so a wrong lane is
 * an apply that overtakes the previous holder's, or an ack that leaves before its apply.
 */
import { describe, expect, it } from 'vitest';
import { effectLanes } from '../../../participant/core/lanes.ts';
import { tx } from './helpers.ts';

describe('effectLanes', () => {
  it("a live transaction's resource calls wait for that transaction and for each of its keys", () => {
    for (const kind of ['resourcePrepare', 'resourceCommit', 'resourceAbort'] as const) {
      const e = kind === 'resourcePrepare' ? { kind, txId: tx(1), ops: [], keys: ['a', 'b'] } : { kind, txId: tx(1), data: undefined, keys: ['a', 'b'] };
      expect(effectLanes(e), kind).toStrictEqual([`tx:${tx(1)}`, 'key:a', 'key:b']);
    }
  });

  it('lanes of different transactions and keys differ, and a key named like a transaction is another lane', () => {
    const a = effectLanes({ kind: 'resourceCommit', txId: tx(1), data: undefined, keys: [tx(2)] });
    const b = effectLanes({ kind: 'resourceCommit', txId: tx(2), data: undefined, keys: ['x'] });
    expect(a).toStrictEqual([`tx:${tx(1)}`, `key:${tx(2)}`]);
    expect(b).toStrictEqual([`tx:${tx(2)}`, 'key:x']);
  });

  it("recovery's replays (no keys) run in queue order", () => {
    expect(effectLanes({ kind: 'resourceCommit', txId: tx(1), data: undefined })).toBeUndefined();
    expect(effectLanes({ kind: 'resourceAbort', txId: tx(1), data: undefined })).toBeUndefined();
  });

  it("a reply about a transaction waits for that transaction's call; any other reply and every other effect does not", () => {
    expect(effectLanes({ kind: 'reply', requestId: 'r', status: 200, body: {}, txId: tx(1) })).toStrictEqual([`tx:${tx(1)}`]);
    expect(effectLanes({ kind: 'reply', requestId: 'r', status: 200, body: {} })).toBeUndefined();
    expect(effectLanes({ kind: 'inquire', txId: tx(1), coordinator: 'http://c' })).toBeUndefined();
    expect(effectLanes({ kind: 'persist', record: { type: 'COMMITTED', txId: tx(1), at: 1 }, sync: true })).toBeUndefined();
    expect(effectLanes({ kind: 'setTimer', id: `inquire:${tx(1)}`, ms: 1 })).toBeUndefined();
  });
});
