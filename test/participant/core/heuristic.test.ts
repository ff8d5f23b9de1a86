import { describe, expect, it } from 'vitest';
import { getTx, step } from '../../../participant/core/index.ts';
import { decide, fresh, prepare, preparedWith, tx, withoutLogs } from './helpers.ts';

const put = (key: string, value: unknown) => ({ op: 'put', key, value }) as const;
const data = { writes: [{ key: 'k', value: 1 }] };
const heuristic = (outcome: 'committed' | 'aborted', n = 1) =>
  ({ type: 'heuristic', requestId: 'op', now: 9_000, txId: tx(n), outcome }) as const;

describe('heuristic decisions', () => {
  it('settles an in-doubt transaction by hand: forced HEURISTIC, applied, locks released, reported', () => {
    const r = step(preparedWith(tx(1), [put('k', 1)], data), heuristic('committed'));
    expect(r.effects).toEqual([
      { kind: 'cancelTimer', id: `inquire:${tx(1)}` },
      { kind: 'persist', record: { type: 'HEURISTIC', txId: tx(1), outcome: 'committed', at: 9_000 }, sync: true },
      { kind: 'resourceCommit', txId: tx(1), data, keys: ['k'] },
      { kind: 'reply', requestId: 'op', status: 200, body: { txId: tx(1), state: 'committed', heuristic: 'committed' }, txId: tx(1) },
      { kind: 'log', step: 'heuristic', txId: tx(1), fields: { outcome: 'committed', inDoubtMs: 7_990 } },
    ]);
    expect(r.state.locks.size).toBe(0);
    expect(getTx(r.state, tx(1))).toEqual({ txId: tx(1), state: 'committed', since: 9_000, heuristic: 'committed' });
  });

  it('a later contrary decision is answered with the heuristic outcome (not refused), so the coordinator can report heuristic-mixed', () => {
    const s = step(preparedWith(tx(1), [put('k', 1)], data), heuristic('aborted')).state;
    const r = step(s, decide('commit', tx(1)));
    expect(r.effects).toEqual([
      { kind: 'log', step: 'heuristic-mismatch', txId: tx(1), fields: { decision: 'committed', heuristic: 'aborted' } },
      { kind: 'reply', requestId: `commit-${tx(1)}`, status: 200, body: { txId: tx(1), state: 'aborted', heuristic: 'aborted' }, txId: tx(1) },
    ]);
    const agreeing = step(s, decide('abort', tx(1)));
    expect(agreeing.effects).toEqual([
      { kind: 'reply', requestId: `abort-${tx(1)}`, status: 200, body: { txId: tx(1), state: 'aborted', heuristic: 'aborted' }, txId: tx(1) },
    ]);
  });

  it('is refused for anything not in doubt', () => {
    const unknown = step(fresh(), heuristic('committed'));
    expect(unknown.effects).toEqual([
      { kind: 'reply', requestId: 'op', status: 404, body: { error: { code: 'not_found', message: `No in-doubt transaction ${tx(1)} here.` } } },
    ]);

    const committed = step(step(preparedWith(tx(1), [put('k', 1)], data), decide('commit', tx(1))).state, heuristic('aborted'));
    expect(withoutLogs(committed.effects)).toEqual([
      {
        kind: 'reply',
        requestId: 'op',
        status: 409,
        body: { error: { code: 'conflict', message: `${tx(1)} is already committed here; only an in-doubt transaction can be settled by hand.` } },
      },
    ]);

    const notVoted = step(step(fresh(), prepare(tx(1), [put('k', 1)])).state, heuristic('committed'));
    expect(notVoted.effects).toEqual([
      { kind: 'reply', requestId: 'op', status: 409, body: { error: { code: 'conflict', message: `${tx(1)} has not voted yet, so it is not in doubt.` } } },
    ]);
  });

  it('a duplicate prepare after a heuristic abort still votes yes: it had voted yes', () => {
    const s = step(preparedWith(tx(1), [put('k', 1)], data), heuristic('aborted')).state;
    const r = step(s, prepare(tx(1), [put('k', 1)], { requestId: 'dup' }));
    expect(withoutLogs(r.effects)).toEqual([{ kind: 'reply', requestId: 'dup', status: 200, body: { vote: 'yes' } }]);
  });
});
