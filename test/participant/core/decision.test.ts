import { describe, expect, it } from 'vitest';
import { getTx, step } from '../../../participant/core/index.ts';
import { decide, fresh, persists, prepare, preparedWith, run, tx, withoutLogs, yes } from './helpers.ts';

const put = (key: string, value: unknown) => ({ op: 'put', key, value }) as const;
const data = { writes: [{ key: 'k', value: 1 }] };

describe('phase 2 and idempotence', () => {
  it('abort of a prepared transaction: lazy ABORTED, resourceAbort, release, ack', () => {
    const s = preparedWith(tx(1), [put('k', 1)], data);
    const r = step(s, decide('abort', tx(1)));
    expect(withoutLogs(r.effects)).toEqual([
      { kind: 'cancelTimer', id: `inquire:${tx(1)}` },
      { kind: 'crashPoint', point: 'participant.before-abort-logged' },
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 2_000 }, sync: false },
      { kind: 'crashPoint', point: 'participant.after-abort-logged' },
      // The apply carries its keys, so the driver may run it beside other transactions' calls;
      // the ack names its transaction, so it waits for that apply.
      { kind: 'resourceAbort', txId: tx(1), data, keys: ['k'] },
      { kind: 'reply', requestId: `abort-${tx(1)}`, status: 200, body: { txId: tx(1), state: 'aborted' }, txId: tx(1) },
    ]);
    expect(r.state.locks.size).toBe(0);
  });

  it('a duplicate prepare of a prepared transaction votes yes again without relogging', () => {
    const s = preparedWith(tx(1), [put('k', 1)], data);
    const r = step(s, prepare(tx(1), [put('k', 1)], { requestId: 'retry' }));
    expect(r.effects).toEqual([{ kind: 'reply', requestId: 'retry', status: 200, body: { vote: 'yes' } }]);
  });

  it('a duplicate prepare while the resource works joins the first and hears the same vote', () => {
    const s1 = step(fresh(), prepare(tx(1), [put('k', 1)])).state;
    const r2 = step(s1, prepare(tx(1), [put('k', 1)], { requestId: 'retry' }));
    expect(r2.effects).toEqual([]);
    const r3 = step(r2.state, yes(tx(1), data));
    expect(persists(r3.effects)).toHaveLength(1);
    expect(r3.effects.filter((e) => e.kind === 'reply')).toEqual([
      { kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'yes' } },
      { kind: 'reply', requestId: 'retry', status: 200, body: { vote: 'yes' } },
    ]);
  });

  it('bounds the requests waiting on one vote', () => {
    let s = step(fresh({ prepareRequestsPerTxMax: 2 }), prepare(tx(1), [put('k', 1)])).state;
    s = step(s, prepare(tx(1), [put('k', 1)], { requestId: 'r2' })).state;
    const r = step(s, prepare(tx(1), [put('k', 1)], { requestId: 'r3' }));
    expect(r.effects).toEqual([
      { kind: 'reply', requestId: 'r3', status: 503, body: { error: { code: 'unavailable', message: `Too many concurrent prepares of ${tx(1)} (max 2).` } } },
    ]);
  });

  it('a duplicate prepare after a no vote votes no again with the same reason', () => {
    const s = run(fresh(), prepare(tx(1), [put('k', 1)]), { type: 'resourcePrepared', now: 1_010, txId: tx(1), vote: 'no', reason: 'nope' }).state;
    const r = step(s, prepare(tx(1), [put('k', 1)], { requestId: 'again' }));
    expect(withoutLogs(r.effects)).toEqual([{ kind: 'reply', requestId: 'again', status: 200, body: { vote: 'no', reason: 'nope' } }]);
  });

  it('duplicate commit and duplicate abort get the same answer and write nothing', () => {
    const committed = run(preparedWith(tx(1), [put('k', 1)], data), decide('commit', tx(1))).state;
    const c2 = step(committed, decide('commit', tx(1), 'again'));
    expect(c2.effects).toEqual([{ kind: 'reply', requestId: 'again', status: 200, body: { txId: tx(1), state: 'committed' }, txId: tx(1) }]);

    const aborted = run(preparedWith(tx(1), [put('k', 1)], data), decide('abort', tx(1))).state;
    const a2 = step(aborted, decide('abort', tx(1), 'again'));
    expect(a2.effects).toEqual([{ kind: 'reply', requestId: 'again', status: 200, body: { txId: tx(1), state: 'aborted' }, txId: tx(1) }]);
  });

  it('a contrary decision is a protocol violation: 409, logged, and the state never flips', () => {
    const committed = run(preparedWith(tx(1), [put('k', 1)], data), decide('commit', tx(1))).state;
    const r = step(committed, decide('abort', tx(1), 'bad'));
    expect(r.effects).toEqual([
      { kind: 'log', step: 'protocol-violation', txId: tx(1), fields: { message: 'abort for a transaction committed here' } },
      { kind: 'reply', requestId: 'bad', status: 409, body: { error: { code: 'conflict', message: `${tx(1)} is committed here; refusing to abort it.` } } },
    ]);
    expect(getTx(r.state, tx(1)).state).toBe('committed');

    const aborted = run(preparedWith(tx(1), [put('k', 1)], data), decide('abort', tx(1))).state;
    const r2 = step(aborted, decide('commit', tx(1), 'bad'));
    expect(r2.effects.map((e) => (e.kind === 'reply' ? e.status : e.kind))).toEqual(['log', 409]);
    expect(getTx(r2.state, tx(1)).state).toBe('aborted');
  });

  it('a commit for a transaction never prepared here is a 404', () => {
    const r = step(fresh(), decide('commit', tx(9)));
    expect(r.effects).toEqual([
      {
        kind: 'reply',
        requestId: `commit-${tx(9)}`,
        status: 404,
        body: { error: { code: 'not_found', message: `No prepared transaction ${tx(9)} here (never prepared, or long forgotten).` } },
      },
    ]);
  });

  it('a commit before this participant voted is refused with a 409', () => {
    const s = step(fresh(), prepare(tx(1), [put('k', 1)])).state;
    const r = step(s, decide('commit', tx(1)));
    expect(r.effects.find((e) => e.kind === 'reply')).toMatchObject({ status: 409 });
    expect(r.state.txs.get(tx(1))?.phase).toBe('preparing');
  });

  it('an abort before its prepare leaves a tombstone, so the late prepare votes no', () => {
    const r1 = step(fresh(), decide('abort', tx(1)));
    const reason = 'aborted before this participant was asked to prepare';
    expect(withoutLogs(r1.effects)).toEqual([
      { kind: 'crashPoint', point: 'participant.before-abort-logged' },
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 2_000, reason }, sync: true },
      { kind: 'crashPoint', point: 'participant.after-abort-logged' },
      { kind: 'reply', requestId: `abort-${tx(1)}`, status: 200, body: { txId: tx(1), state: 'aborted' }, txId: tx(1) },
    ]);
    const r2 = step(r1.state, prepare(tx(1), [put('k', 1)], { now: 2_100 }));
    expect(withoutLogs(r2.effects)).toEqual([{ kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'no', reason } }]);
    expect(r2.state.locks.size).toBe(0);
  });

  it('an abort while the prepare waits for a lock: the prepare hears no, the waiter leaves the queue', () => {
    const s1 = preparedWith(tx(1), [put('k', 1)], data);
    const s2 = step(s1, prepare(tx(2), [put('k', 2)])).state;
    const r = step(s2, decide('abort', tx(2)));
    const reason = 'aborted by the coordinator before the vote';
    expect(withoutLogs(r.effects)).toEqual([
      { kind: 'crashPoint', point: 'participant.before-abort-logged' },
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(2), at: 2_000, reason }, sync: false },
      { kind: 'crashPoint', point: 'participant.after-abort-logged' },
      { kind: 'reply', requestId: `prep-${tx(2)}`, status: 200, body: { vote: 'no', reason } },
      { kind: 'cancelTimer', id: `lock:${tx(2)}` },
      { kind: 'reply', requestId: `abort-${tx(2)}`, status: 200, body: { txId: tx(2), state: 'aborted' }, txId: tx(2) },
    ]);
    expect(r.state.waiting).toEqual([]);
    expect(r.state.txs.has(tx(2))).toBe(false);
  });

  it('an abort while the resource prepares keeps the locks until the resource answers, then undoes it', () => {
    const s1 = step(fresh(), prepare(tx(1), [put('k', 1)])).state;
    const s2 = step(s1, decide('abort', tx(1))).state;
    expect(s2.locks.get('k')).toBe(tx(1));
    expect(getTx(s2, tx(1)).state).toBe('aborted');
    // Another prepare on k must wait: the resource may still be working on tx1.
    const s3 = step(s2, prepare(tx(2), [put('k', 2)])).state;
    expect(s3.waiting).toEqual([tx(2)]);

    const r = step(s3, yes(tx(1), data, 2_050));
    expect(withoutLogs(r.effects)).toEqual([
      { kind: 'resourceAbort', txId: tx(1), data, keys: ['k'] },
      { kind: 'cancelTimer', id: `lock:${tx(2)}` },
      // Laned on k, behind tx1's undo: the resource never works on two transactions of one key at once.
      { kind: 'resourcePrepare', txId: tx(2), ops: [put('k', 2)], keys: ['k'] },
    ]);
    expect(persists(r.effects)).toEqual([]);
    expect(r.state.locks.get('k')).toBe(tx(2));
  });

  it('ignores a resource answer for a transaction it no longer knows', () => {
    const s = fresh();
    const r = step(s, yes(tx(5)));
    expect(r.effects).toEqual([{ kind: 'log', step: 'stale-resource-answer', txId: tx(5), fields: { vote: 'yes' } }]);
    expect(r.state).toBe(s);
  });

  describe('under presumed commit (the prepare said so): every abort record is forced before it is acted on', () => {
    // Found by the simulator (twopc simulate --seed 239 --protocol presumed-commit): the coordinator
    // forgets an abort once acked, so a lost ABORTED would later be "learned" as committed.
    it('an abort of a prepared transaction forces ABORTED before the ack', () => {
      const s1 = run(fresh(), prepare(tx(1), [put('k', 1)], { abortForced: true }), yes(tx(1), data)).state;
      const prepared = persists(step(fresh(), prepare(tx(1), [put('k', 1)], { abortForced: true })).effects);
      expect(prepared).toEqual([]);
      const r = step(s1, decide('abort', tx(1)));
      expect(persists(r.effects)).toEqual([{ kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 2_000 }, sync: true }]);
    });

    it('a NO vote forces its ABORTED before the vote is sent', () => {
      const s1 = step(fresh(), prepare(tx(1), [put('k', 1)], { abortForced: true })).state;
      const r = step(s1, { type: 'resourcePrepared', now: 1_010, txId: tx(1), vote: 'no', reason: 'below min' });
      expect(persists(r.effects)).toEqual([
        { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 1_010, reason: 'below min' }, sync: true },
      ]);
    });

    it('PREPARED records the presumption, so an in-doubt participant still forces its abort after recovery', () => {
      const r = run(fresh(), prepare(tx(1), [put('k', 1)], { abortForced: true }), yes(tx(1), data));
      expect(persists(r.effects)).toEqual([
        expect.objectContaining({ record: expect.objectContaining({ type: 'PREPARED', abortForced: true }), sync: true }),
      ]);
    });
  });
});
