/**
 * Issue 7, item 2: a prepare that reuses a txId for other work is refused, never
 * answered with the earlier vote. The bug it guards against: a coordinator
 * configured with two names for one participant sent two prepares with one
 * txId and different ops; both were answered YES, and only one was ever done.
 */
import { describe, expect, it } from 'vitest';
import { getTx, step, type ParticipantEvent, type ParticipantState } from '../../../participant/core/index.ts';
import { opsDigest } from '../../../shared/digest.ts';
import type { Op } from '../../../shared/types.ts';
import { decide, fresh, persists, prepare, run, tx, yes } from './helpers.ts';

const opsA: readonly Op[] = [{ op: 'put', key: 'a', value: 1 }];
const opsB: readonly Op[] = [{ op: 'put', key: 'b', value: 2 }];
const prepareWith = (ops: readonly Op[], requestId: string, extra: { onePhase?: boolean } = {}): ParticipantEvent =>
  prepare(tx(1), ops, { requestId, opsDigest: opsDigest(ops), ...extra });

function refusal(state: ParticipantState, event: ParticipantEvent) {
  const r = step(state, event);
  expect(r.effects.filter((e) => e.kind === 'reply')).toEqual([
    {
      kind: 'reply',
      requestId: 'second',
      status: 409,
      body: { error: { code: 'conflict', message: `${tx(1)} was already prepared here with different ops; a prepare must not reuse a txId for other work.` } },
    },
  ]);
  expect(persists(r.effects)).toEqual([]);
  expect(r.state.txs).toBe(state.txs);
  expect(r.state.locks).toBe(state.locks);
  return r;
}

describe('a prepare that reuses a txId for other work', () => {
  it('is refused while the first is still being prepared, and the first still gets its vote', () => {
    const s1 = step(fresh(), prepareWith(opsA, 'first')).state;
    const r = refusal(s1, prepareWith(opsB, 'second'));
    const voted = step(r.state, yes(tx(1)));
    expect(voted.effects.filter((e) => e.kind === 'reply')).toEqual([{ kind: 'reply', requestId: 'first', status: 200, body: { vote: 'yes' } }]);
  });

  it('is refused once the first voted yes, which stays prepared', () => {
    const s1 = run(fresh(), prepareWith(opsA, 'first'), yes(tx(1))).state;
    const r = refusal(s1, prepareWith(opsB, 'second'));
    expect(getTx(r.state, tx(1)).state).toBe('prepared');
  });

  it('is refused after the first committed, rather than answered yes', () => {
    const s1 = run(fresh(), prepareWith(opsA, 'first'), yes(tx(1)), decide('commit', tx(1))).state;
    expect(getTx(s1, tx(1)).state).toBe('committed');
    refusal(s1, prepareWith(opsB, 'second'));
  });

  it('is refused after a one-phase commit, rather than answered committed', () => {
    const s1 = run(fresh(), prepareWith(opsA, 'first', { onePhase: true }), yes(tx(1))).state;
    expect(getTx(s1, tx(1)).state).toBe('committed');
    refusal(s1, prepareWith(opsB, 'second', { onePhase: true }));
  });

  it('survives recovery: the digest is logged in PREPARED and remembered with the outcome', () => {
    const prepared = step(step(fresh(), prepareWith(opsA, 'first')).state, yes(tx(1)));
    const record = persists(prepared.effects)[0]?.record;
    expect(record).toMatchObject({ type: 'PREPARED', opsDigest: opsDigest(opsA) });
    if (record === undefined) throw new Error('no PREPARED record');
    const recovered = step(fresh(), { type: 'recover', now: 5_000, records: [record] }).state;
    refusal(recovered, prepareWith(opsB, 'second'));
    const committed = step(fresh(), { type: 'recover', now: 5_000, records: [record, { type: 'COMMITTED', txId: tx(1), at: 4_000 }] }).state;
    refusal(committed, prepareWith(opsB, 'second'));
  });

  it('a retry with the same ops (keys in another order) is still a duplicate and gets the same vote', () => {
    const s1 = run(fresh(), prepareWith(opsA, 'first'), yes(tx(1))).state;
    const reordered: readonly Op[] = [{ value: 1, key: 'a', op: 'put' } as Op];
    const r = step(s1, prepareWith(reordered, 'second'));
    expect(r.effects.filter((e) => e.kind === 'reply')).toEqual([{ kind: 'reply', requestId: 'second', status: 200, body: { vote: 'yes' } }]);
  });

  it('an aborted txId votes no to a prepare for other work too: a NO promises nothing, so it needs no refusal', () => {
    const s1 = run(fresh(), prepareWith(opsA, 'first'), yes(tx(1)), decide('abort', tx(1))).state;
    const r = step(s1, prepareWith(opsB, 'second'));
    expect(r.effects.filter((e) => e.kind === 'reply')).toEqual([
      { kind: 'reply', requestId: 'second', status: 200, body: { vote: 'no', reason: `${tx(1)} is already aborted here` } },
    ]);
  });
});
