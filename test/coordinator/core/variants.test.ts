/**
 * What each presumption writes, for the same transactions: the comparison the
 * variants exist for. One table, one row per variant and path.
 */
import { describe, expect, it } from 'vitest';
import type { CoordinatorRecord } from '../../../coordinator/core/index.ts';
import type { ProtocolVariant } from '../../../shared/types.ts';
import { Harness, only, persisted, put, ref, replyOf } from './helpers.ts';

type Written = { type: CoordinatorRecord['type']; sync: boolean; outcome?: string };

function writes(protocol: ProtocolVariant, path: 'commit' | 'abort'): Written[] {
  const h = new Harness({ protocol });
  const all: Written[] = [];
  const collect = (effects: ReturnType<Harness['feed']>) => {
    for (const e of effects) {
      if (e.kind === 'persist') all.push({ type: e.record.type, sync: e.sync, ...(e.record.type === 'DECISION' ? { outcome: e.record.outcome } : {}) });
    }
  };
  const { txId, effects } = h.runWhole([
    { participant: 'p1', ops: [put('a', 1)] },
    { participant: 'p2', ops: [put('b', 1)] },
  ]);
  collect(effects);
  collect(h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' }));
  collect(h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: path === 'commit' ? 'yes' : 'no' }));
  collect(h.feed({ type: 'decisionAcked', txId, participant: 'p1' }));
  if (path === 'commit') collect(h.feed({ type: 'decisionAcked', txId, participant: 'p2' }));
  return all;
}

const C = (sync: boolean): Written => ({ type: 'COLLECTING', sync });
const D = (outcome: string, sync: boolean): Written => ({ type: 'DECISION', outcome, sync });
const END: Written = { type: 'END', sync: false };

describe('records written per presumption', () => {
  it.each<[ProtocolVariant, 'commit' | 'abort', Written[]]>([
    ['presumed-abort', 'commit', [D('committed', true), END]],
    ['presumed-abort', 'abort', [D('aborted', false), END]],
    ['presumed-nothing', 'commit', [C(true), D('committed', true), END]],
    ['presumed-nothing', 'abort', [C(true), D('aborted', true), END]],
    ['presumed-commit', 'commit', [C(true), D('committed', true), END]],
    ['presumed-commit', 'abort', [C(true), D('aborted', true), END]],
  ])('%s, %s path', (protocol, path, expected) => {
    expect(writes(protocol, path)).toEqual(expected);
  });

  it('presumed nothing forces COLLECTING (listing every branch) before the first prepare goes out', () => {
    const h = new Harness({ protocol: 'presumed-nothing' });
    const { txId, effects } = h.runWhole([
      { participant: 'p1', ops: [put('a', 1)] },
      { participant: 'p2', ops: [put('b', 1)] },
    ]);
    const outward = effects.filter((e) => e.kind !== 'log');
    expect(outward.map((e) => e.kind)).toEqual(['persist', 'send', 'send', 'setTimer']);
    expect(outward[0]).toEqual({ kind: 'persist', record: { type: 'COLLECTING', txId, participants: [ref('p1'), ref('p2')] }, sync: true });
  });

  it('under presumed nothing, an abort whose target never voted closes its COLLECTING with END once that target acks', () => {
    const h = new Harness({ protocol: 'presumed-nothing' });
    const { txId } = h.runWhole([
      { participant: 'p1', ops: [put('a', 1)] },
      { participant: 'p2', ops: [put('b', 1)] },
    ]);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'no' });
    expect(h.state.txs.get(txId)?.phase).toBe('aborting');
    // p2 never voted: it may be prepared, so it is a target; once it acks, END closes the record.
    const done = h.feed({ type: 'decisionAcked', txId, participant: 'p2' });
    expect(done.filter((e) => e.kind === 'persist')).toEqual([{ kind: 'persist', record: { type: 'END', txId }, sync: false }]);
  });

  it.each<['no' | 'read-only', 'committed' | 'aborted']>([
    ['no', 'aborted'],
    ['read-only', 'committed'],
  ])('under presumed nothing, when nobody needs the decision (p1 read-only, p2 %s), COLLECTING is closed with END at once', (vote, outcome) => {
    const h = new Harness({ protocol: 'presumed-nothing' });
    const { txId, requestId, effects: started } = h.runWhole([
      { participant: 'p1', ops: [put('a', 1)] },
      { participant: 'p2', ops: [put('b', 1)] },
    ]);
    expect(persisted(started).map((p) => p.record.type)).toEqual(['COLLECTING']);
    expect(persisted(h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'read-only' }))).toEqual([]);
    const effects = h.feed({ type: 'prepareResult', txId, participant: 'p2', vote });
    // No DECISION (no branch holds anything to settle), no decision sent, and the END that closes COLLECTING.
    expect(persisted(effects)).toEqual([{ record: { type: 'END', txId }, sync: false }]);
    expect(only(effects, 'send')).toEqual([]);
    expect(replyOf(effects, requestId)).toMatchObject({ status: 200, body: { txId, outcome } });
    expect(h.state.txs.has(txId)).toBe(false);
  });
});
