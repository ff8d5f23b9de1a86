/**
 * Participant recovery, one record kind at a time, with the exact effects, state and report:
 * what each record replays through the resource, what it leaves remembered, and what the
 * "recovered" line counts (an operator reads it after every restart).
 */
import { describe, expect, it } from 'vitest';
import { getTx, step, type ParticipantRecord } from '../../../participant/core/index.ts';
import { getOutcome } from '../../../participant/core/outcomes.ts';
import { inDoubtFrom, preparedSnapshotOf, withoutType } from '../../../participant/core/recovery.ts';
import { COORD, P1, P2, fresh, tx } from './helpers.ts';

const prepared = (n: number, keys: string[], at: number, extra: Partial<Extract<ParticipantRecord, { type: 'PREPARED' }>> = {}): ParticipantRecord => ({
  type: 'PREPARED',
  txId: tx(n),
  coordinator: COORD,
  participants: [P1, P2],
  keys,
  data: { n },
  at,
  ...extra,
});

const recover = (records: ParticipantRecord[]) => step(fresh(), { type: 'recover', now: 10_000, records });
const recoveredLine = (effects: ReturnType<typeof recover>['effects']) => effects.find((e) => e.kind === 'log' && e.step === 'recovered');

describe('participant recovery, record by record', () => {
  it('rebuilds every in-doubt transaction exactly, oldest prepare first, and asks about each', () => {
    const r = recover([prepared(2, ['b'], 900, { opsDigest: 'd2' }), prepared(1, ['a', 'c'], 300)]);
    expect([...r.state.txs.keys()]).toEqual([tx(1), tx(2)]);
    expect(r.state.txs.get(tx(2))).toStrictEqual({
      phase: 'prepared',
      txId: tx(2),
      coordinator: COORD,
      participants: [P1, P2],
      keys: ['b'],
      data: { n: 2 },
      preparedAt: 900,
      opsDigest: 'd2',
      inquiries: 1,
      inquiryInFlight: true,
      peers: {},
    });
    expect(r.state.txs.get(tx(1))).not.toHaveProperty('opsDigest');
    expect([...r.state.locks]).toEqual([
      ['a', tx(1)],
      ['c', tx(1)],
      ['b', tx(2)],
    ]);
    expect(r.state.waiting).toEqual([]);
    expect(r.effects.filter((e) => e.kind === 'inquire')).toEqual([
      { kind: 'inquire', txId: tx(1), coordinator: COORD },
      { kind: 'inquire', txId: tx(2), coordinator: COORD },
    ]);
    expect(recoveredLine(r.effects)).toEqual({ kind: 'log', step: 'recovered', fields: { fromCheckpoint: false, records: 2, inDoubt: 2, outcomes: 0 } });
  });

  it('remembers what a yes-voted outcome prepared (its digest), from the PREPARED or a one-phase COMMITTED', () => {
    const r = recover([
      prepared(1, ['a'], 100, { opsDigest: 'd1' }),
      { type: 'COMMITTED', txId: tx(1), at: 200 },
      { type: 'COMMITTED', txId: tx(2), at: 210, data: { n: 2 }, onePhase: true, opsDigest: 'd2' },
      prepared(3, ['c'], 220, { opsDigest: 'd3' }),
      { type: 'HEURISTIC', txId: tx(3), outcome: 'aborted', at: 230 },
      prepared(4, ['d'], 240),
      { type: 'COMMITTED', txId: tx(4), at: 250 },
    ]);
    expect(getOutcome(r.state.outcomes, tx(1))).toStrictEqual({ outcome: 'committed', at: 200, opsDigest: 'd1' });
    expect(getOutcome(r.state.outcomes, tx(2))).toStrictEqual({ outcome: 'committed', at: 210, opsDigest: 'd2' });
    expect(getOutcome(r.state.outcomes, tx(3))).toStrictEqual({ outcome: 'aborted', at: 230, heuristic: 'aborted', opsDigest: 'd3' });
    expect(getOutcome(r.state.outcomes, tx(4))).toStrictEqual({ outcome: 'committed', at: 250 });
    expect(r.effects.filter((e) => e.kind !== 'log')).toEqual([
      { kind: 'resourceCommit', txId: tx(1), data: { n: 1 } },
      { kind: 'resourceCommit', txId: tx(2), data: { n: 2 } },
      { kind: 'resourceAbort', txId: tx(3), data: { n: 3 } },
      { kind: 'resourceCommit', txId: tx(4), data: { n: 4 } },
    ]);
    expect(r.state.txs.size).toBe(0);
    expect(r.state.locks.size).toBe(0);
  });

  it('keeps an abort reason only when the record has one, and replays an abort only for what was prepared', () => {
    const r = recover([prepared(1, ['a'], 100), { type: 'ABORTED', txId: tx(1), at: 150, reason: 'lock wait' }, { type: 'ABORTED', txId: tx(2), at: 160 }]);
    expect(getOutcome(r.state.outcomes, tx(1))).toStrictEqual({ outcome: 'aborted', at: 150, reason: 'lock wait' });
    expect(getOutcome(r.state.outcomes, tx(2))).toStrictEqual({ outcome: 'aborted', at: 160 });
    expect(r.effects.filter((e) => e.kind !== 'log')).toEqual([{ kind: 'resourceAbort', txId: tx(1), data: { n: 1 } }]);
    expect(recoveredLine(r.effects)).toEqual({ kind: 'log', step: 'recovered', fields: { fromCheckpoint: false, records: 3, inDoubt: 0, outcomes: 2 } });
  });

  it('counts an outcome without its PREPARED as an anomaly, applies nothing for it, and still remembers it', () => {
    const r = recover([
      { type: 'COMMITTED', txId: tx(1), at: 100 },
      { type: 'HEURISTIC', txId: tx(2), outcome: 'committed', at: 110 },
    ]);
    expect(r.effects.filter((e) => e.kind !== 'log')).toEqual([]);
    expect(recoveredLine(r.effects)).toEqual({ kind: 'log', step: 'recovered', fields: { fromCheckpoint: false, records: 2, inDoubt: 0, outcomes: 2, anomalies: 2 } });
    expect(getTx(r.state, tx(1))).toStrictEqual({ txId: tx(1), state: 'committed', since: 100 });
    expect(getTx(r.state, tx(2))).toStrictEqual({ txId: tx(2), state: 'committed', since: 110, heuristic: 'committed' });
  });

  it('a HEURISTIC commit after its PREPARED replays a commit', () => {
    const r = recover([prepared(1, ['a'], 100), { type: 'HEURISTIC', txId: tx(1), outcome: 'committed', at: 120 }]);
    expect(r.effects.filter((e) => e.kind !== 'log')).toEqual([{ kind: 'resourceCommit', txId: tx(1), data: { n: 1 } }]);
  });

  it('reports a restart from a checkpoint as such, with its outcomes counted', () => {
    const snapshot = { version: 1 as const, resource: { entries: [] }, prepared: [], outcomes: [[tx(5), { outcome: 'committed' as const, at: 5 }] as const] };
    const r = step(fresh(), { type: 'recover', now: 10_000, snapshot, records: [] });
    expect(r.effects).toEqual([
      { kind: 'resourceRestore', snapshot: { entries: [] } },
      { kind: 'log', step: 'recovered', fields: { fromCheckpoint: true, records: 0, inDoubt: 0, outcomes: 1 } },
    ]);
  });

  it('refuses a checkpoint of an unknown version', () => {
    const snapshot = { version: 2, resource: null, prepared: [], outcomes: [] } as never;
    expect(() => step(fresh(), { type: 'recover', now: 10_000, snapshot, records: [] })).toThrow('Unknown participant checkpoint version 2.');
  });
});

// inDoubtFrom copies the record by hand (a spread of an object rest was 8.6 µs in V8): the copy must
// be exactly the spread form's object, every field and in the same order (checkpoints are its JSON).
describe('inDoubtFrom', () => {
  it('is the record less `at`, then phase and preparedAt, then the progress, as the spread form builds it', () => {
    const records = [
      prepared(1, ['a'], 5),
      prepared(2, ['a', 'b'], 6, { opsDigest: 'abcdefghijklmnopqrstuv', abortForced: true }),
      prepared(3, [], 7, { data: undefined }),
    ];
    const progress = { inquiries: 2, inquiryInFlight: true, peers: { [P2]: 'prepared' as const }, preparedPeersAskedAt: 9 };
    for (const r of records) {
      if (r.type !== 'PREPARED') throw new Error('expected a PREPARED record');
      const snapshot = withoutType(r);
      const { at, ...rest } = snapshot;
      const spread = { ...rest, phase: 'prepared', preparedAt: at, ...progress };
      const copied = inDoubtFrom(snapshot, progress);
      expect(Object.keys(copied)).toEqual(Object.keys(spread));
      expect(JSON.stringify(copied)).toBe(JSON.stringify(spread));
      expect(copied).toStrictEqual(spread);
      expect(preparedSnapshotOf(copied)).toStrictEqual(snapshot);
    }
  });
});
