import { describe, expect, it } from 'vitest';
import { Harness, only, put, replyOf } from './helpers.ts';

const twoBranches = [
  { participant: 'p1', ops: [put('a', 1)] },
  { participant: 'p2', ops: [put('b', 2)] },
];

/** Feeds an event twice; the second time nothing may change: no effects, and the very same state. */
function expectNoChange(h: Harness, event: Parameters<Harness['feed']>[0]): void {
  const before = h.state;
  expect(h.feed(event)).toEqual([]);
  expect(h.state).toBe(before);
}

describe('duplicates and late messages change nothing', () => {
  it('a duplicate vote', () => {
    const h = new Harness();
    const { txId } = h.runWhole(twoBranches);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    expectNoChange(h, { type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    // Not even a contradicting duplicate: the first answer stands.
    expectNoChange(h, { type: 'prepareResult', txId, participant: 'p1', vote: 'no' });
  });

  it('a duplicate ack, and an ack after END', () => {
    const h = new Harness();
    const { txId } = h.runWhole(twoBranches);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    h.feed({ type: 'decisionAcked', txId, participant: 'p1' });
    expectNoChange(h, { type: 'decisionAcked', txId, participant: 'p1' });
    expectNoChange(h, { type: 'decisionFailed', txId, participant: 'p1', error: 'timeout' });
    h.feed({ type: 'decisionAcked', txId, participant: 'p2' });
    expectNoChange(h, { type: 'decisionAcked', txId, participant: 'p2' });
  });

  it('stale timers, and answers from participants that are not in the transaction', () => {
    const h = new Harness();
    const { txId } = h.runWhole(twoBranches);
    expectNoChange(h, { type: 'timer', id: `${txId}/reply` });
    expectNoChange(h, { type: 'timer', id: `${txId}/resend/p1` });
    expectNoChange(h, { type: 'timer', id: 'tx-9-9/prepare' });
    expectNoChange(h, { type: 'timer', id: 'not-a-timer' });
    expectNoChange(h, { type: 'prepareResult', txId, participant: 'p3', vote: 'yes' });
    expectNoChange(h, { type: 'decisionAcked', txId, participant: 'p1' });
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    expectNoChange(h, { type: 'timer', id: `${txId}/prepare` });
  });

  it('duplicate commit requests all wait for the same outcome and are all answered once', () => {
    const h = new Harness();
    h.feed({ type: 'begin', requestId: h.rid() });
    const txId = 'tx-1-1';
    h.feed({ type: 'enlist', requestId: h.rid(), txId, participant: 'p1', ops: [put('a', 1)] });
    h.feed({ type: 'enlist', requestId: h.rid(), txId, participant: 'p2', ops: [put('b', 1)] });
    const first = h.rid();
    const sent = only(h.feed({ type: 'commit', requestId: first, txId }), 'send').length;
    const second = h.rid();
    // The second commit starts nothing new: no prepare is sent twice.
    expect(h.feed({ type: 'commit', requestId: second, txId })).toEqual([]);
    expect(sent).toBe(2);
    h.feed({ type: 'prepareResult', txId: txId as never, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId: txId as never, participant: 'p2', vote: 'yes' });
    h.feed({ type: 'decisionAcked', txId: txId as never, participant: 'p1' });
    const done = h.feed({ type: 'decisionAcked', txId: txId as never, participant: 'p2' });
    expect(only(done, 'reply').map((r) => r.requestId)).toEqual([first, second]);
    // After the end, a third commit is answered from the history.
    const third = h.rid();
    expect(replyOf(h.feed({ type: 'commit', requestId: third, txId }), third)).toMatchObject({ status: 200, body: { outcome: 'committed', applied: true } });
  });

  it('bounds how many requests may wait on one transaction', () => {
    const h = new Harness({ waitersPerTxMax: 2 });
    const { txId } = h.runWhole(twoBranches);
    h.feed({ type: 'commit', requestId: h.rid(), txId });
    const over = h.rid();
    expect(replyOf(h.feed({ type: 'commit', requestId: over, txId }), over)).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
  });

  it('a repeated enlist with the same ops is applied once; different ops for the same participant are appended', () => {
    const h = new Harness();
    h.feed({ type: 'begin', requestId: h.rid() });
    const txId = 'tx-1-1';
    h.feed({ type: 'enlist', requestId: h.rid(), txId, participant: 'p1', ops: [put('a', 1)] });
    const before = h.state;
    const retry = h.rid();
    const effects = h.feed({ type: 'enlist', requestId: retry, txId, participant: 'http://p1.test', ops: [put('a', 1)] });
    expect(only(effects, 'reply')).toHaveLength(1);
    expect(h.state).toBe(before);
    h.feed({ type: 'enlist', requestId: h.rid(), txId, participant: 'p1', ops: [put('c', 3)] });
    expect(h.state.txs.get(txId)?.branches).toMatchObject([{ participant: 'p1', ops: [put('a', 1), put('c', 3)] }]);
  });

  it('two branches for one participant in a whole transaction are joined, not deduplicated', () => {
    const h = new Harness();
    const { txId } = h.runWhole([
      { participant: 'p1', ops: [{ op: 'add', key: 'a', amount: 5 }] },
      { participant: 'p1', ops: [{ op: 'add', key: 'a', amount: 5 }] },
      { participant: 'p2', ops: [put('b', 2)] },
    ]);
    expect(h.state.txs.get(txId)?.branches.map((b) => [b.participant, b.ops.length])).toEqual([
      ['p1', 2],
      ['p2', 1],
    ]);
  });
});
