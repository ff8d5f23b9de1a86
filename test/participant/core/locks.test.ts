/**
 * The lock table and the waiting queue (participant/core/state.ts), driven through `step`:
 * who waits, who gets in when a lock frees, in which order, and under the bound on
 * transactions holding locks. Each admission is checked by its exact effects.
 */
import { describe, expect, it } from 'vitest';
import { step, type ParticipantState } from '../../../participant/core/index.ts';
import { decide, fresh, prepare, run, tx, yes } from './helpers.ts';

const put = (key: string) => ({ op: 'put', key, value: 1 }) as const;

/** Feeds one event and returns the state and only the effects that admit or prepare. */
function feed(s: ParticipantState, e: Parameters<typeof step>[1]) {
  const r = step(s, e);
  return { state: r.state, admitted: r.effects.filter((x) => x.kind === 'resourcePrepare').map((x) => (x.kind === 'resourcePrepare' ? x.txId : '')), effects: r.effects };
}

describe('locks and the waiting queue', () => {
  it('an aborted waiter leaves the queue, the others stay, and the next in line gets in with exact effects', () => {
    let s = run(fresh({ lockWaitMs: 60_000 }), prepare(tx(1), [put('k1')]), yes(tx(1))).state;
    s = run(s, prepare(tx(2), [put('k1')]), prepare(tx(3), [put('k1')])).state;
    expect(s.waiting).toEqual([tx(2), tx(3)]);
    s = feed(s, decide('abort', tx(2))).state;
    expect(s.waiting).toEqual([tx(3)]);
    expect(s.txs.has(tx(2))).toBe(false);
    const commit = feed(s, decide('commit', tx(1)));
    expect(commit.admitted).toEqual([tx(3)]);
    expect(commit.effects.filter((e) => e.kind === 'cancelTimer' || (e.kind === 'log' && e.step === 'lock-acquired'))).toStrictEqual([
      { kind: 'cancelTimer', id: `inquire:${tx(1)}` },
      { kind: 'cancelTimer', id: `lock:${tx(3)}` },
      { kind: 'log', step: 'lock-acquired', txId: tx(3), fields: { keys: ['k1'] } },
    ]);
    expect(commit.state.waiting).toEqual([]);
    expect(commit.state.locks.get('k1')).toBe(tx(3));
  });

  it('a waiter on one key does not hold back a prepare on another', () => {
    let s = run(fresh({ lockWaitMs: 60_000 }), prepare(tx(1), [put('k1')]), yes(tx(1))).state;
    s = run(s, prepare(tx(2), [put('k1')])).state;
    const other = feed(s, prepare(tx(3), [put('k2')]));
    expect(other.admitted).toEqual([tx(3)]);
    expect(other.state.waiting).toEqual([tx(2)]);
    // But a newcomer on the waiter's key queues behind it, naming it.
    const behind = feed(s, prepare(tx(4), [put('k1')]));
    expect(behind.admitted).toEqual([]);
    expect(behind.effects).toContainEqual({ kind: 'log', step: 'lock-wait', txId: tx(4), fields: { reason: `key k1 locked by ${tx(1)}`, lockWaitMs: 60_000 } });
  });

  it('a waiter gets in only when every one of its keys is free', () => {
    let s = run(fresh({ lockWaitMs: 60_000 }), prepare(tx(1), [put('k1')]), yes(tx(1)), prepare(tx(2), [put('k2')]), yes(tx(2))).state;
    s = run(s, prepare(tx(3), [put('k1'), put('k2')])).state;
    const first = feed(s, decide('commit', tx(1)));
    expect(first.admitted).toEqual([]);
    expect(first.state.waiting).toEqual([tx(3)]);
    const second = feed(first.state, decide('commit', tx(2)));
    expect(second.admitted).toEqual([tx(3)]);
    expect([...second.state.locks]).toEqual([
      ['k1', tx(3)],
      ['k2', tx(3)],
    ]);
  });

  it('counts only lock holders against lockingTxsMax, and admits waiters up to it, one at a time', () => {
    let s = run(fresh({ lockWaitMs: 60_000, lockingTxsMax: 2 }), prepare(tx(1), [put('k1')]), yes(tx(1))).state;
    // tx2 waits for k1: a waiter holds nothing, so tx3 on a free key still gets in (2 holders).
    s = run(s, prepare(tx(2), [put('k1')])).state;
    const third = feed(s, prepare(tx(3), [put('k3')]));
    expect(third.admitted).toEqual([tx(3)]);
    // A fourth would be a third holder: it waits, saying why.
    const fourth = feed(third.state, prepare(tx(4), [put('k4')]));
    expect(fourth.admitted).toEqual([]);
    expect(fourth.effects).toContainEqual({ kind: 'log', step: 'lock-wait', txId: tx(4), fields: { reason: '2 transactions already hold locks here', lockWaitMs: 60_000 } });
    expect(fourth.state.waiting).toEqual([tx(2), tx(4)]);
    // tx1 commits: one place frees, and only the first waiter (tx2) takes it.
    const commit = feed(fourth.state, decide('commit', tx(1)));
    expect(commit.admitted).toEqual([tx(2)]);
    expect(commit.state.waiting).toEqual([tx(4)]);
  });

  it('a log line without fields carries no fields key', () => {
    let s = fresh({ outcomesMax: 1 });
    s = run(s, decide('abort', tx(1)), decide('abort', tx(2))).state;
    const late = step(s, prepare(tx(1), [put('k1')]));
    expect(late.effects).toStrictEqual([
      { kind: 'log', step: 'prepare-too-old', txId: tx(1) },
      { kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'no', reason: `${tx(1)} is older than what this participant still remembers` } },
    ]);
  });
});

describe('recovery keeps a forced abort', () => {
  it('a transaction prepared under presumed commit is still abort-forced after a restart from a checkpoint', () => {
    const snapshot = {
      version: 1 as const,
      resource: null,
      prepared: [{ txId: tx(1), coordinator: 'http://c.test', participants: [], keys: ['k1'], data: null, at: 1, abortForced: true as const }],
      outcomes: [],
    };
    const r = step(fresh(), { type: 'recover', now: 10, snapshot, records: [] });
    expect(r.state.txs.get(tx(1))).toMatchObject({ phase: 'prepared', abortForced: true });
    // And its abort is forced.
    const abort = step(r.state, decide('abort', tx(1)));
    expect(abort.effects).toContainEqual({ kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 2_000 }, sync: true });
  });
});
