/**
 * A core step costs what it touches (issue 12): no step of a transaction's ordinary life walks
 * or copies a whole table, however many transactions are active or remembered. Asserted without
 * a clock: every iteration of a Map or a PersistentMap (the only way to copy or scan one) is
 * counted while the step runs, and there must be none. `npm run bench:core` gives the figures.
 */
import { describe, expect, it } from 'vitest';
import * as coordinator from '../../coordinator/core/index.ts';
import * as participant from '../../participant/core/index.ts';
import { kvKeysOf } from '../../participant/resources/kv.ts';
import { PersistentMap } from '../../shared/persistent-map.ts';
import { asTxId, type TxId } from '../../shared/types.ts';

const ITERATION_METHODS = ['entries', 'keys', 'values', 'forEach', Symbol.iterator] as const;

/** Runs `f`, counting every call of a Map's or a PersistentMap's iteration methods meanwhile. */
function iterationsDuring(f: () => void): number {
  let count = 0;
  const restore: (() => void)[] = [];
  for (const proto of [Map.prototype, PersistentMap.prototype] as unknown as Record<PropertyKey, unknown>[]) {
    for (const name of ITERATION_METHODS) {
      const original = proto[name] as (...args: unknown[]) => unknown;
      proto[name] = function (this: unknown, ...args: unknown[]) {
        count++;
        return original.apply(this, args);
      };
      restore.push(() => {
        proto[name] = original;
      });
    }
  }
  try {
    f();
  } finally {
    for (const r of restore) r();
  }
  return count;
}

describe('a core step walks no table', () => {
  it('coordinator: runWhole, the votes, the decision, the acks and the finish, beside 200 active and 300 remembered', () => {
    const config = { name: 'c', selfUrl: 'http://127.0.0.1:3', participants: { p1: 'http://127.0.0.1:1', p2: 'http://127.0.0.1:2' }, finishedHistoryMax: 300 };
    let state = coordinator.step(coordinator.initialState(config), { type: 'recover', entries: [], now: 0 }).state;
    let now = 1;
    const apply = (e: coordinator.CoordinatorEvent) => {
      const r = coordinator.step(state, e);
      state = r.state;
      return r.effects;
    };
    const branches = [
      { participant: 'p1', ops: [{ op: 'put' as const, key: 'a', value: 1 }] },
      { participant: 'p2', ops: [{ op: 'put' as const, key: 'b', value: 1 }] },
    ];
    const begin = (): TxId => {
      const sent = apply({ type: 'runWhole', requestId: `r${now}`, now: now++, branches }).find((e) => e.kind === 'send');
      if (sent?.kind !== 'send') throw new Error('runWhole sent no prepare');
      return sent.message.body.txId;
    };
    const life = (txId: TxId): coordinator.CoordinatorEvent[] => [
      { type: 'prepareResult', txId, participant: 'p1', vote: 'yes', now },
      { type: 'prepareResult', txId, participant: 'p2', vote: 'yes', now },
      { type: 'decisionAcked', txId, participant: 'p1', now },
      { type: 'decisionAcked', txId, participant: 'p2', now },
    ];
    for (let i = 0; i < 350; i++) life(begin()).forEach(apply);
    for (let i = 0; i < 200; i++) begin();
    expect([state.txs.size, state.finished.size]).toEqual([200, 300]);

    let txId: TxId | undefined;
    expect(iterationsDuring(() => (txId = begin()))).toBe(0);
    for (const e of life(txId as TxId)) expect(iterationsDuring(() => apply(e))).toBe(0);
    // It did finish, and pushed the oldest out of the history.
    expect([state.txs.size, state.finished.size, state.finished.get(txId as TxId)?.phase]).toEqual([200, 300, 'committed']);
  });

  it('participant: prepare, the vote and the commit, beside 100 in doubt and 300 remembered', () => {
    let state = participant.step(participant.initialState({ keysOf: kvKeysOf, outcomesMax: 300 }), { type: 'recover', records: [], now: 0 }).state;
    const apply = (e: participant.ParticipantEvent) => {
      state = participant.step(state, e).state;
    };
    const life = (n: number): participant.ParticipantEvent[] => {
      const txId = asTxId(`tx-1-${n}`);
      const ops = [{ op: 'put', key: `k${n}`, value: 1 }];
      return [
        { type: 'prepare', requestId: `p${n}`, now: n, txId, coordinator: 'http://127.0.0.1:3', participants: ['http://127.0.0.1:4'], ops, onePhase: false },
        { type: 'resourcePrepared', txId, vote: 'yes', data: { writes: [] }, now: n },
        { type: 'commit', requestId: `c${n}`, txId, now: n },
      ];
    };
    for (let n = 1; n <= 350; n++) life(n).forEach(apply);
    for (let n = 351; n <= 450; n++) life(n).slice(0, 2).forEach(apply);
    expect([state.txs.size, state.locks.size, participant.outcomeCount(state.outcomes)]).toEqual([100, 100, 300]);

    for (const e of life(451)) expect(iterationsDuring(() => apply(e))).toBe(0);
    expect([state.txs.size, participant.inDoubtCount(state), participant.outcomeCount(state.outcomes)]).toEqual([100, 100, 300]);
  });
});
