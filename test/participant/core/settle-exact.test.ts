/**
 * The outcome memory's forgetting horizon (outcomes.ts) and the settling transitions
 * (settle.ts), with exact values: the horizon decides whether "no record" may be read as
 * "never voted yes", so an off-by-one or a loose id pattern there is a wrong vote.
 */
import { describe, expect, it } from 'vitest';
import { getTx, step } from '../../../participant/core/index.ts';
import { mayHaveForgotten, noOutcomes, outcomeEntries, outcomesFrom, putOutcome, type RecentOutcomes } from '../../../participant/core/outcomes.ts';
import { asTxId, type TxId } from '../../../shared/types.ts';
import { P1, P2, decide, fresh, prepare, preparedWith, run, tx } from './helpers.ts';

const id = (s: string): TxId => asTxId(s);
const aborted = { outcome: 'aborted' as const, at: 1 };

/** A one-entry memory that has forgotten `ids`, in that order. */
function forgot(...ids: string[]): RecentOutcomes {
  let o = noOutcomes(1);
  for (const x of [...ids, 'tx-0-0']) o = putOutcome(o, id(x), aborted);
  return o;
}

describe('the forgetting horizon', () => {
  it('starts with nothing forgotten, exactly', () => {
    expect(noOutcomes(10).forgotten).toStrictEqual({ any: false });
    expect(outcomesFrom([[tx(1), aborted]], 10).forgotten).toStrictEqual({ any: false });
    expect(mayHaveForgotten(noOutcomes(10), tx(1))).toBe(false);
  });

  it('keeps the highest id dropped, in whatever order ids are dropped', () => {
    const o = forgot('tx-1-9', 'tx-1-3', 'tx-1-4');
    expect(o.forgotten).toStrictEqual({ any: true, highest: [1, 9] });
    expect(forgot('tx-2-1', 'tx-1-50').forgotten).toStrictEqual({ any: true, highest: [2, 1] });
  });

  it('an id at or below the horizon, in the same epoch or an earlier one, may have been forgotten; one above may not', () => {
    const o = forgot('tx-3-5');
    expect(mayHaveForgotten(o, id('tx-3-3'))).toBe(true);
    expect(mayHaveForgotten(o, id('tx-3-5'))).toBe(true);
    expect(mayHaveForgotten(o, id('tx-2-99'))).toBe(true);
    expect(mayHaveForgotten(o, id('tx-3-6'))).toBe(false);
    expect(mayHaveForgotten(o, id('tx-4-1'))).toBe(false);
  });

  it('orders multi-digit ids, and treats anything not exactly tx-<epoch>-<seq> as unordered (may have been forgotten)', () => {
    const o = forgot('tx-12-345');
    expect(o.forgotten).toStrictEqual({ any: true, highest: [12, 345] });
    expect(mayHaveForgotten(o, id('tx-12-346'))).toBe(false);
    expect(mayHaveForgotten(o, id('tx-13-1'))).toBe(false);
    for (const odd of ['tx-13-1x', 'xtx-13-1', 'tx-13', 'order-7']) expect(mayHaveForgotten(o, id(odd)), odd).toBe(true);
  });

  it('an unordered id dropped after an ordered one leaves the horizon where it was', () => {
    expect(forgot('tx-3-5', 'order-7').forgotten).toStrictEqual({ any: true, highest: [3, 5] });
  });

  it('after forgetting only unordered ids, an ordered id is still trusted', () => {
    const o = forgot('order-7');
    expect(o.forgotten).toStrictEqual({ any: true });
    expect(mayHaveForgotten(o, id('tx-1-1'))).toBe(false);
    expect(mayHaveForgotten(o, id('order-8'))).toBe(true);
  });
});

describe('settling, exactly', () => {
  it('a commit answers without a heuristic key, and remembers no digest when there is none', () => {
    const s = preparedWith(tx(1), [{ op: 'put', key: 'a', value: 1 }]);
    const r = step(s, decide('commit', tx(1)));
    expect(r.effects.find((e) => e.kind === 'reply')).toStrictEqual({ kind: 'reply', requestId: `commit-${tx(1)}`, status: 200, body: { txId: tx(1), state: 'committed' }, txId: tx(1) });
    expect(getTx(r.state, tx(1))).toStrictEqual({ txId: tx(1), state: 'committed', since: 2_000 });
    expect(outcomeEntries(r.state.outcomes)).toStrictEqual([[tx(1), { outcome: 'committed', at: 2_000 }]]);
  });

  it('an abort learned from the coordinator replies to nobody, and says how it was learned', () => {
    const s = preparedWith(tx(1), [{ op: 'put', key: 'a', value: 1 }]);
    const r = step(s, { type: 'outcomeLearned', txId: tx(1), outcome: 'aborted', now: 3_000 });
    expect(r.effects.filter((e) => e.kind !== 'crashPoint')).toStrictEqual([
      { kind: 'cancelTimer', id: `inquire:${tx(1)}` },
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 3_000 }, sync: false },
      { kind: 'resourceAbort', txId: tx(1), data: { writes: [] }, keys: ['a'] },
      { kind: 'log', step: 'aborted', txId: tx(1), fields: { via: 'inquiry' } },
    ]);
  });

  it('a prepare cancelled while its resource works answers nobody when the resource finally votes', () => {
    let s = run(fresh(), prepare(tx(1), [{ op: 'put', key: 'a', value: 1 }])).state;
    s = run(s, decide('abort', tx(1))).state;
    const late = step(s, { type: 'resourcePrepared', now: 2_100, txId: tx(1), vote: 'yes', data: { writes: [] } });
    expect(late.effects.filter((e) => e.kind === 'reply')).toEqual([]);
    expect(late.state.locks.size).toBe(0);
  });

  it('an abort before the prepare leaves a forced tombstone: remembered as aborted, logged with its reason', () => {
    const r = step(fresh(), decide('abort', tx(5)));
    const reason = 'aborted before this participant was asked to prepare';
    expect(r.effects.filter((e) => e.kind !== 'crashPoint')).toStrictEqual([
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(5), at: 2_000, reason }, sync: true },
      { kind: 'log', step: 'tombstone', txId: tx(5), fields: { reason } },
      { kind: 'reply', requestId: `abort-${tx(5)}`, status: 200, body: { txId: tx(5), state: 'aborted' }, txId: tx(5) },
    ]);
    expect(getTx(r.state, tx(5))).toStrictEqual({ txId: tx(5), state: 'aborted', since: 2_000 });
    // The late prepare votes no.
    const late = step(r.state, prepare(tx(5), [], { participants: [P1, P2] }));
    expect(late.effects.find((e) => e.kind === 'reply')).toMatchObject({ body: { vote: 'no' } });
  });
});
