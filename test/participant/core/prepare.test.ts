import { describe, expect, it } from 'vitest';
import { getTx, step } from '../../../participant/core/index.ts';
import { KvStore } from '../../../participant/resources/kv.ts';
import { COORD, P1, P2, P3, fresh, kinds, persists, prepare, run, timer, tx, withoutLogs, yes } from './helpers.ts';

describe('phase 1: prepare', () => {
  it('locks the keys, asks the resource, then forces PREPARED before the YES vote', () => {
    const s0 = fresh();
    const r1 = step(s0, prepare(tx(1), [{ op: 'add', key: 'a', amount: -5 }]));
    expect(r1.effects).toEqual([{ kind: 'resourcePrepare', txId: tx(1), ops: [{ op: 'add', key: 'a', amount: -5 }], keys: ['a'] }]);
    expect(r1.state.locks.get('a')).toBe(tx(1));

    const data = { writes: [{ key: 'a', value: 5 }] };
    const r2 = step(r1.state, yes(tx(1), data, 1_010));
    expect(r2.effects).toEqual([
      // The resource holds prepared work that no record names yet: a crash here leaves an orphan.
      { kind: 'crashPoint', point: 'participant.after-resource-prepared' },
      {
        kind: 'persist',
        record: { type: 'PREPARED', txId: tx(1), coordinator: COORD, participants: [P1, P2, P3], keys: ['a'], data, at: 1_010 },
        sync: true,
      },
      { kind: 'crashPoint', point: 'participant.after-prepare-logged' },
      { kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'yes' } },
      { kind: 'setTimer', id: `inquire:${tx(1)}`, ms: 1_000 },
      { kind: 'log', step: 'vote-yes', txId: tx(1), fields: { keys: ['a'] } },
    ]);
    expect(getTx(r2.state, tx(1))).toEqual({ txId: tx(1), state: 'prepared', since: 1_010 });
    expect(r2.state.locks.get('a')).toBe(tx(1));
  });

  it('votes no when an add would fall below min, logging ABORTED lazily and releasing the lock', () => {
    const kv = new KvStore();
    kv.commit(tx(0), { writes: [{ key: 'a', value: 3 }] });
    const ops = [{ op: 'add', key: 'a', amount: -5, min: 0 }] as const;
    const r1 = step(fresh(), prepare(tx(1), ops));
    const answer = kv.prepare(tx(1), ops);
    expect(answer).toEqual({ vote: 'no', reason: 'add on key a would leave -2, below min 0' });

    const r2 = step(r1.state, { type: 'resourcePrepared', now: 1_010, txId: tx(1), ...answer });
    expect(r2.effects).toEqual([
      { kind: 'crashPoint', point: 'participant.before-abort-logged' },
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 1_010, reason: answer.reason }, sync: false },
      { kind: 'crashPoint', point: 'participant.after-abort-logged' },
      { kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'no', reason: answer.reason } },
      { kind: 'log', step: 'vote-no', txId: tx(1), fields: { reason: answer.reason } },
    ]);
    expect(r2.state.locks.size).toBe(0);
    expect(r2.state.txs.size).toBe(0);
    expect(getTx(r2.state, tx(1))).toEqual({ txId: tx(1), state: 'aborted', since: 1_010 });
  });

  it('a branch of reads only votes read-only, logs nothing and frees its locks', () => {
    const ops = [{ op: 'read', key: 'a' }] as const;
    const r1 = step(fresh(), prepare(tx(1), ops));
    const r2 = step(r1.state, { type: 'resourcePrepared', now: 1_010, txId: tx(1), ...new KvStore().prepare(tx(1), ops) });
    expect(r2.effects).toEqual([
      { kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'read-only' } },
      { kind: 'log', step: 'vote-read-only', txId: tx(1) },
    ]);
    expect(r2.state.locks.size).toBe(0);
    expect(getTx(r2.state, tx(1)).state).toBe('unknown');
  });

  it('one-phase: prepares and commits in one step, forcing COMMITTED with the data', () => {
    const data = { writes: [{ key: 'a', value: 1 }] };
    const r1 = step(fresh(), prepare(tx(1), [{ op: 'put', key: 'a', value: 1 }], { onePhase: true, participants: [P1] }));
    const r2 = step(r1.state, yes(tx(1), data));
    expect(withoutLogs(r2.effects)).toEqual([
      { kind: 'crashPoint', point: 'participant.after-resource-prepared' },
      { kind: 'crashPoint', point: 'participant.before-commit-logged' },
      { kind: 'persist', record: { type: 'COMMITTED', txId: tx(1), at: 1_010, data, onePhase: true }, sync: true },
      { kind: 'crashPoint', point: 'participant.after-commit-logged' },
      { kind: 'resourceCommit', txId: tx(1), data, keys: ['a'] },
      { kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'yes', state: 'committed' }, txId: tx(1) },
    ]);
    expect(r2.state.locks.size).toBe(0);
    expect(getTx(r2.state, tx(1)).state).toBe('committed');

    // Its retry gets the same answer and writes nothing.
    const dup = step(r2.state, prepare(tx(1), [{ op: 'put', key: 'a', value: 1 }], { onePhase: true, requestId: 'again' }));
    expect(withoutLogs(dup.effects)).toEqual([{ kind: 'reply', requestId: 'again', status: 200, body: { vote: 'yes', state: 'committed' } }]);
  });

  it('refuses too many keys with a 400 and records nothing', () => {
    const s = fresh({ keysPerTxMax: 2 });
    const r = step(
      s,
      prepare(tx(1), [
        { op: 'read', key: 'a' },
        { op: 'read', key: 'b' },
        { op: 'read', key: 'c' },
      ]),
    );
    expect(r.effects).toEqual([
      {
        kind: 'reply',
        requestId: `prep-${tx(1)}`,
        status: 400,
        body: { error: { code: 'bad_request', message: 'Expected at most 2 keys per transaction, got 3.' } },
      },
    ]);
    expect(r.state).toBe(s);
  });

  it('never mutates the state it is given', () => {
    const s0 = fresh();
    const s1 = run(s0, prepare(tx(1), [{ op: 'put', key: 'a', value: 1 }]), yes(tx(1))).state;
    const frozenLocks = [...s1.locks];
    const frozenTxs = [...s1.txs.keys()];
    run(s1, { type: 'commit', requestId: 'c', now: 3_000, txId: tx(1) }, prepare(tx(2), [{ op: 'put', key: 'a', value: 2 }]));
    expect([...s1.locks]).toEqual(frozenLocks);
    expect([...s1.txs.keys()]).toEqual(frozenTxs);
    expect(s0.txs.size).toBe(0);
  });
});

describe('phase 1: lock waits', () => {
  const put = (key: string, value: unknown) => ({ op: 'put', key, value }) as const;

  it('waits up to lockWaitMs for a held lock, then votes no naming the holder', () => {
    const s1 = run(fresh(), prepare(tx(1), [put('k', 1)]), yes(tx(1))).state;
    const r2 = step(s1, prepare(tx(2), [put('k', 2)], { now: 1_100 }));
    expect(r2.effects).toEqual([
      { kind: 'setTimer', id: `lock:${tx(2)}`, ms: 100 },
      { kind: 'log', step: 'lock-wait', txId: tx(2), fields: { reason: `key k locked by ${tx(1)}`, lockWaitMs: 100 } },
    ]);
    expect(r2.state.waiting).toEqual([tx(2)]);

    const r3 = step(r2.state, timer(`lock:${tx(2)}`, 1_200));
    const reason = `key k locked by ${tx(1)}`;
    expect(r3.effects).toEqual([
      { kind: 'crashPoint', point: 'participant.before-abort-logged' },
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(2), at: 1_200, reason }, sync: false },
      { kind: 'crashPoint', point: 'participant.after-abort-logged' },
      { kind: 'reply', requestId: `prep-${tx(2)}`, status: 200, body: { vote: 'no', reason } },
      { kind: 'log', step: 'vote-no', txId: tx(2), fields: { reason } },
      { kind: 'cancelTimer', id: `lock:${tx(2)}` },
    ]);
    expect(r3.state.waiting).toEqual([]);
    expect(r3.state.locks.get('k')).toBe(tx(1));
  });

  it('releasing a lock wakes the waiter after the holder has been applied', () => {
    const data1 = { writes: [{ key: 'k', value: 1 }] };
    const s1 = run(fresh(), prepare(tx(1), [put('k', 1)]), yes(tx(1), data1)).state;
    const s2 = step(s1, prepare(tx(2), [put('k', 2)])).state;
    const r3 = step(s2, { type: 'commit', requestId: 'c1', now: 1_050, txId: tx(1) });
    expect(withoutLogs(r3.effects)).toEqual([
      { kind: 'cancelTimer', id: `inquire:${tx(1)}` },
      { kind: 'crashPoint', point: 'participant.before-commit-logged' },
      { kind: 'persist', record: { type: 'COMMITTED', txId: tx(1), at: 1_050 }, sync: true },
      { kind: 'crashPoint', point: 'participant.after-commit-logged' },
      { kind: 'resourceCommit', txId: tx(1), data: data1, keys: ['k'] },
      { kind: 'reply', requestId: 'c1', status: 200, body: { txId: tx(1), state: 'committed' }, txId: tx(1) },
      { kind: 'cancelTimer', id: `lock:${tx(2)}` },
      // Laned on k behind tx1's apply (core/lanes.ts), so it reads the committed value.
      { kind: 'resourcePrepare', txId: tx(2), ops: [put('k', 2)], keys: ['k'] },
    ]);
    expect(r3.state.locks.get('k')).toBe(tx(2));
    expect(r3.state.waiting).toEqual([]);
    expect(r3.state.txs.get(tx(2))?.phase).toBe('preparing');
  });

  it('keeps FIFO per key: a newcomer on a free key does not overtake an earlier waiter for it', () => {
    // tx1 holds a; tx2 waits for a and b; tx3 wants only b, which is free but promised to tx2.
    const s1 = run(fresh(), prepare(tx(1), [put('a', 1)]), yes(tx(1))).state;
    const s2 = step(s1, prepare(tx(2), [put('a', 2), put('b', 2)])).state;
    const r3 = step(s2, prepare(tx(3), [put('b', 3)]));
    expect(kinds(r3.effects)).toEqual(['setTimer', 'log']);
    expect(r3.effects[1]).toMatchObject({ fields: { reason: `key b queued for ${tx(2)}` } });
    expect(r3.state.waiting).toEqual([tx(2), tx(3)]);

    // When tx1 aborts, tx2 gets both keys and tx3 keeps waiting.
    const r4 = step(r3.state, { type: 'abort', requestId: 'a1', now: 1_050, txId: tx(1) });
    expect(r4.effects.filter((e) => e.kind === 'resourcePrepare')).toEqual([
      { kind: 'resourcePrepare', txId: tx(2), ops: [put('a', 2), put('b', 2)], keys: ['a', 'b'] },
    ]);
    expect(r4.state.waiting).toEqual([tx(3)]);
  });

  it('with lockWaitMs 0 votes no at once', () => {
    const s1 = run(fresh({ lockWaitMs: 0 }), prepare(tx(1), [put('k', 1)]), yes(tx(1))).state;
    const r2 = step(s1, prepare(tx(2), [put('k', 2)]));
    expect(r2.effects).toContainEqual({ kind: 'reply', requestId: `prep-${tx(2)}`, status: 200, body: { vote: 'no', reason: `key k locked by ${tx(1)}` } });
    expect(kinds(r2.effects)).not.toContain('setTimer');
    expect(r2.state.txs.has(tx(2))).toBe(false);
  });

  it('bounds the wait queue: beyond it a prepare votes no and nothing is logged', () => {
    let s = run(fresh({ waitingPreparesMax: 1 }), prepare(tx(1), [put('k', 1)]), yes(tx(1))).state;
    s = step(s, prepare(tx(2), [put('k', 2)])).state;
    const r = step(s, prepare(tx(3), [put('k', 3)]));
    expect(r.effects).toEqual([
      {
        kind: 'reply',
        requestId: `prep-${tx(3)}`,
        status: 200,
        body: { vote: 'no', reason: `key k locked by ${tx(1)}, and 1 prepares are already waiting` },
      },
    ]);
    expect(persists(r.effects)).toEqual([]);
  });

  it('bounds the transactions holding locks: beyond it a prepare waits, then votes no saying why', () => {
    const s1 = step(fresh({ lockingTxsMax: 1 }), prepare(tx(1), [put('a', 1)])).state;
    const r2 = step(s1, prepare(tx(2), [put('b', 1)]));
    expect(r2.state.waiting).toEqual([tx(2)]);
    const r3 = step(r2.state, timer(`lock:${tx(2)}`, 1_100));
    expect(r3.effects).toContainEqual({
      kind: 'reply',
      requestId: `prep-${tx(2)}`,
      status: 200,
      body: { vote: 'no', reason: '1 transactions already hold locks here' },
    });
  });
});
