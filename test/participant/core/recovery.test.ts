import { describe, expect, it } from 'vitest';
import { checkpointOf, getTx, listTx, step, type ParticipantRecord } from '../../../participant/core/index.ts';
import { COORD, P1, P2, decide, fresh, prepare, preparedWith, run, tx, withoutLogs } from './helpers.ts';

const put = (key: string, value: unknown) => ({ op: 'put', key, value }) as const;
const prepared = (n: number, keys: string[], data: unknown, at = 500): ParticipantRecord => ({
  type: 'PREPARED',
  txId: tx(n),
  coordinator: COORD,
  participants: [P1, P2],
  keys,
  data,
  at,
});

describe('recovery', () => {
  it('an in-doubt transaction re-takes its locks and asks the coordinator at once', () => {
    const r = step(fresh(), { type: 'recover', now: 10_000, records: [prepared(1, ['a', 'b'], { writes: [] })] });
    expect(r.effects).toEqual([
      { kind: 'log', step: 'in-doubt', txId: tx(1), fields: { keys: ['a', 'b'], coordinator: COORD, preparedAt: 500 } },
      { kind: 'inquire', txId: tx(1), coordinator: COORD },
      { kind: 'log', step: 'recovered', fields: { fromCheckpoint: false, records: 1, inDoubt: 1, outcomes: 0 } },
    ]);
    expect([...r.state.locks]).toEqual([
      ['a', tx(1)],
      ['b', tx(1)],
    ]);
    expect(getTx(r.state, tx(1))).toEqual({ txId: tx(1), state: 'prepared', since: 500 });
    expect(listTx(r.state, 10_000).transactions).toEqual([
      {
        txId: tx(1),
        state: 'prepared',
        since: 500,
        blockedMs: 9_500,
        keys: ['a', 'b'],
        coordinator: COORD,
        participants: [P1, P2],
        inquiries: 1,
      },
    ]);
    // Its keys stay locked: a new prepare on them waits.
    const next = step(r.state, prepare(tx(2), [put('a', 1)], { now: 10_001 }));
    expect(next.state.waiting).toEqual([tx(2)]);
  });

  it('replays outcomes through the resource, in log order, and remembers them', () => {
    const d1 = { writes: [{ key: 'a', value: 1 }] };
    const d2 = { writes: [{ key: 'b', value: 2 }] };
    const d3 = { writes: [{ key: 'c', value: 3 }] };
    const records: ParticipantRecord[] = [
      prepared(1, ['a'], d1),
      prepared(2, ['b'], d2),
      { type: 'COMMITTED', txId: tx(1), at: 600 },
      { type: 'ABORTED', txId: tx(2), at: 610 },
      { type: 'COMMITTED', txId: tx(3), at: 620, data: d3, onePhase: true },
      { type: 'ABORTED', txId: tx(4), at: 630, reason: 'tombstone' },
    ];
    const r = step(fresh(), { type: 'recover', now: 10_000, records });
    expect(withoutLogs(r.effects)).toEqual([
      { kind: 'resourceCommit', txId: tx(1), data: d1 },
      { kind: 'resourceAbort', txId: tx(2), data: d2 },
      { kind: 'resourceCommit', txId: tx(3), data: d3 },
    ]);
    expect(r.state.locks.size).toBe(0);
    expect(r.state.txs.size).toBe(0);
    // Duplicates after the restart still get the first answer; the tombstone still holds.
    expect(withoutLogs(step(r.state, decide('commit', tx(1))).effects)).toEqual([
      { kind: 'reply', requestId: `commit-${tx(1)}`, status: 200, body: { txId: tx(1), state: 'committed' }, txId: tx(1) },
    ]);
    expect(withoutLogs(step(r.state, prepare(tx(4), [put('d', 1)])).effects)).toEqual([
      { kind: 'reply', requestId: `prep-${tx(4)}`, status: 200, body: { vote: 'no', reason: 'tombstone' } },
    ]);
  });

  it('a checkpoint plus the records after it rebuilds the same state, restoring the resource first', () => {
    const d1 = { writes: [{ key: 'a', value: 1 }] };
    const d2 = { writes: [{ key: 'b', value: 2 }] };
    // tx1 committed and tx2 prepared before the checkpoint.
    let s = preparedWith(tx(1), [put('a', 1)], d1);
    s = run(s, decide('commit', tx(1)), prepare(tx(2), [put('b', 2)]), {
      type: 'resourcePrepared',
      now: 2_100,
      txId: tx(2),
      vote: 'yes',
      data: d2,
    }).state;
    const snapshot = checkpointOf(s, { entries: [['a', 1]] });
    expect(snapshot.prepared.map((p) => p.txId)).toEqual([tx(2)]);
    expect(snapshot.outcomes).toEqual([[tx(1), { outcome: 'committed', at: 2_000 }]]);

    // After the checkpoint, tx2 committed; the PREPARED record itself is gone with its segment.
    const r = step(fresh(), { type: 'recover', now: 9_000, snapshot, records: [{ type: 'COMMITTED', txId: tx(2), at: 2_200 }] });
    expect(withoutLogs(r.effects)).toEqual([
      { kind: 'resourceRestore', snapshot: { entries: [['a', 1]] } },
      { kind: 'resourceCommit', txId: tx(2), data: d2 },
    ]);
    expect(getTx(r.state, tx(1)).state).toBe('committed');
    expect(getTx(r.state, tx(2)).state).toBe('committed');
    expect(r.state.locks.size).toBe(0);
  });

  it('a transaction still in doubt at the checkpoint is in doubt after it', () => {
    const s = preparedWith(tx(7), [put('z', 1)], { writes: [] });
    const r = step(fresh(), { type: 'recover', now: 5_000, snapshot: checkpointOf(s, { entries: [] }), records: [] });
    expect(r.effects).toContainEqual({ kind: 'inquire', txId: tx(7), coordinator: COORD });
    expect(r.state.locks.get('z')).toBe(tx(7));
  });

  it('a HEURISTIC record replays the operator decision and is reported as heuristic', () => {
    const d = { writes: [{ key: 'a', value: 1 }] };
    const r = step(fresh(), {
      type: 'recover',
      now: 5_000,
      records: [prepared(1, ['a'], d), { type: 'HEURISTIC', txId: tx(1), outcome: 'committed', at: 700 }],
    });
    expect(withoutLogs(r.effects)).toEqual([{ kind: 'resourceCommit', txId: tx(1), data: d }]);
    expect(getTx(r.state, tx(1))).toEqual({ txId: tx(1), state: 'committed', since: 700, heuristic: 'committed' });
  });

  it('the checkpoint carries the forgetting horizon across a restart', () => {
    let s = fresh({ outcomesMax: 1 });
    for (const n of [1, 2]) s = run(s, decide('abort', tx(n))).state;
    const snapshot = checkpointOf(s, { entries: [] });
    expect(snapshot.forgotten).toEqual({ any: true, highest: [1, 1] });
    const r = step(fresh({ outcomesMax: 1 }), { type: 'recover', now: 9_000, snapshot, records: [] });
    expect(r.state.outcomes.forgotten).toEqual({ any: true, highest: [1, 1] });
  });
});
