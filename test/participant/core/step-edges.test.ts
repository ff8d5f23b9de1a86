/**
 * Participant step paths the other core tests reach only through the services: the bounds on
 * ops and keys (at and past the limit), the read requests, a heuristic abort's resource effect
 * and memory, and a cancelled prepare whose resource voted no.
 */
import { describe, expect, it } from 'vitest';
import { getTx, step } from '../../../participant/core/index.ts';
import { getOutcome } from '../../../participant/core/outcomes.ts';
import { decide, fresh, prepare, preparedWith, run, tx } from './helpers.ts';

const put = (key: string) => ({ op: 'put', key, value: 1 }) as const;
const replyOf = (effects: readonly { kind: string }[]) => effects.find((e) => e.kind === 'reply');

describe('participant step, edges', () => {
  it('takes exactly opsPerTxMax ops and keysPerTxMax keys, and refuses one more with a 400 naming the bound', () => {
    const s = fresh({ opsPerTxMax: 2, keysPerTxMax: 2 });
    expect(step(s, prepare(tx(1), [put('a'), put('b')])).effects.some((e) => e.kind === 'resourcePrepare')).toBe(true);
    const ops = step(s, prepare(tx(2), [put('a'), put('b'), put('a')]));
    expect(replyOf(ops.effects)).toMatchObject({ status: 400, body: { error: { code: 'bad_request', message: 'Expected at most 2 ops per transaction, got 3.' } } });
    expect(ops.state.txs.size).toBe(0);
    const keys = step(fresh({ keysPerTxMax: 2 }), prepare(tx(3), [put('a'), put('b'), put('c')]));
    expect(replyOf(keys.effects)).toMatchObject({ status: 400, body: { error: { code: 'bad_request', message: 'Expected at most 2 keys per transaction, got 3.' } } });
  });

  it('answers getTx and listTx from the state, and changes nothing', () => {
    const s = preparedWith(tx(1), [put('a')]);
    const one = step(s, { type: 'getTx', requestId: 'g', now: 5_000, txId: tx(1) });
    expect(one.effects).toStrictEqual([{ kind: 'reply', requestId: 'g', status: 200, body: getTx(s, tx(1)), txId: tx(1) }]);
    expect(one.state).toBe(s);
    const list = step(s, { type: 'listTx', requestId: 'l', now: 5_000, state: 'prepared' });
    expect(list.effects).toMatchObject([{ kind: 'reply', requestId: 'l', status: 200, body: { transactions: [{ txId: tx(1), blockedMs: 3_990 }] } }]);
  });

  it('a heuristic abort undoes the resource, remembers the heuristic with the digest, and reports it', () => {
    const s = run(fresh(), prepare(tx(1), [put('a')], { opsDigest: 'd1' }), { type: 'resourcePrepared', now: 1_010, txId: tx(1), vote: 'yes', data: { undo: 1 } }).state;
    const r = step(s, { type: 'heuristic', requestId: 'h', now: 4_000, txId: tx(1), outcome: 'aborted' });
    expect(r.effects.filter((e) => e.kind === 'resourceCommit' || e.kind === 'resourceAbort')).toStrictEqual([{ kind: 'resourceAbort', txId: tx(1), keys: ['a'], data: { undo: 1 } }]);
    expect(getOutcome(r.state.outcomes, tx(1))).toStrictEqual({ outcome: 'aborted', at: 4_000, heuristic: 'aborted', opsDigest: 'd1' });
    expect(replyOf(r.effects)).toStrictEqual({ kind: 'reply', requestId: 'h', status: 200, body: { txId: tx(1), state: 'aborted', heuristic: 'aborted' }, txId: tx(1) });
    expect(r.effects).toContainEqual({ kind: 'log', step: 'heuristic', txId: tx(1), fields: { outcome: 'aborted', inDoubtMs: 2_990 } });
  });

  it('a prepare cancelled while its resource works: a NO from the resource undoes nothing, a YES is undone', () => {
    const cancelled = run(fresh(), prepare(tx(1), [put('a')]), decide('abort', tx(1))).state;
    const no = step(cancelled, { type: 'resourcePrepared', now: 2_100, txId: tx(1), vote: 'no', reason: 'min' });
    expect(no.effects.filter((e) => e.kind === 'resourceAbort')).toEqual([]);
    expect(no.state.locks.size).toBe(0);
    const yes = step(cancelled, { type: 'resourcePrepared', now: 2_100, txId: tx(1), vote: 'yes', data: { d: 1 } });
    expect(yes.effects.filter((e) => e.kind === 'resourceAbort')).toStrictEqual([{ kind: 'resourceAbort', txId: tx(1), keys: ['a'], data: { d: 1 } }]);
  });
});
