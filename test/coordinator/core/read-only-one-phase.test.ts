import { describe, expect, it } from 'vitest';
import { Harness, P, decisionMsg, noLogs, only, persisted, prepareMsg, put, read, ref, replyOf } from './helpers.ts';

describe('read-only branches', () => {
  it('leaves read-only voters out of phase 2 and the DECISION', () => {
    const h = new Harness();
    const { txId } = h.runWhole([
      { participant: 'p1', ops: [read('a')] },
      { participant: 'p2', ops: [put('b', 2)] },
    ]);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'read-only' });
    const decided = h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    expect(persisted(decided)).toEqual([{ record: { type: 'DECISION', txId, outcome: 'committed', participants: [ref('p2')] }, sync: true }]);
    expect(only(decided, 'send')).toEqual([decisionMsg(txId, 'p2', 'commit')]);
  });

  it('commits an all-read-only transaction with no record and no phase 2', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole([
      { participant: 'p1', ops: [read('a')] },
      { participant: 'p2', ops: [read('b')] },
    ]);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'read-only' });
    const done = h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'read-only' });
    expect(noLogs(done)).toEqual([
      { kind: 'cancelTimer', id: `${txId}/prepare` },
      {
        kind: 'reply',
        requestId,
        status: 200,
        body: {
          txId,
          outcome: 'committed',
          applied: true,
          branches: [
            { participant: 'p1', vote: 'read-only', acked: true },
            { participant: 'p2', vote: 'read-only', acked: true },
          ],
        },
      },
    ]);
  });
});

describe('one-phase commit (a single branch)', () => {
  it('sends one prepare with onePhase, writes nothing, and takes the answer as the outcome', () => {
    const h = new Harness();
    const { txId, requestId, effects } = h.runWhole([{ participant: 'p1', ops: [put('a', 1)] }]);
    expect(noLogs(effects)).toEqual([prepareMsg(txId, 'p1', [P.p1], [put('a', 1)], true), { kind: 'setTimer', id: `${txId}/prepare`, ms: 1_000 }]);
    const done = h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes', state: 'committed' });
    expect(noLogs(done)).toEqual([
      { kind: 'cancelTimer', id: `${txId}/prepare` },
      {
        kind: 'reply',
        requestId,
        status: 200,
        body: { txId, outcome: 'committed', applied: true, branches: [{ participant: 'p1', vote: 'yes', acked: true }] },
      },
    ]);
  });

  it('reports aborted when the single participant votes no', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole([{ participant: 'p1', ops: [put('a', 1)] }]);
    const done = h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'no', reason: 'a locked by tx-9-9' });
    expect(persisted(done)).toEqual([]);
    expect(replyOf(done, requestId).body).toMatchObject({ outcome: 'aborted', reason: 'p1 voted no: a locked by tx-9-9' });
  });

  it('falls back to a forced COMMIT when the participant only prepared', () => {
    const h = new Harness();
    const { txId } = h.runWhole([{ participant: 'p1', ops: [put('a', 1)] }]);
    const decided = h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    expect(persisted(decided)).toEqual([{ record: { type: 'DECISION', txId, outcome: 'committed', participants: [ref('p1')] }, sync: true }]);
    expect(only(decided, 'send')).toEqual([decisionMsg(txId, 'p1', 'commit')]);
  });

  it('aborts when the prepare never reached the participant (connection refused)', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole([{ participant: 'p1', ops: [put('a', 1)] }]);
    const done = h.feed({ type: 'prepareFailed', txId, participant: 'p1', error: 'unreachable' });
    expect(replyOf(done, requestId).body).toMatchObject({ outcome: 'aborted', reason: 'p1 did not take the prepare (unreachable)' });
  });

  it('on a timeout the outcome is unknown: it re-sends the prepare, tells the client 503, and settles when the answer comes', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole([{ participant: 'p1', ops: [put('a', 1)] }]);
    const doubt = h.feed({ type: 'timer', id: `${txId}/prepare` });
    expect(noLogs(doubt)).toEqual([
      { kind: 'cancelTimer', id: `${txId}/prepare` },
      { kind: 'setTimer', id: `${txId}/reply`, ms: 2_000 },
      { kind: 'setTimer', id: `${txId}/resend/p1`, ms: 100 },
    ]);
    expect(noLogs(h.feed({ type: 'timer', id: `${txId}/resend/p1` }))).toEqual([prepareMsg(txId, 'p1', [P.p1], [put('a', 1)], true)]);
    // A refused connection now proves nothing: the first prepare may have landed.
    expect(only(h.feed({ type: 'prepareFailed', txId, participant: 'p1', error: 'unreachable' }), 'setTimer')).toEqual([
      { kind: 'setTimer', id: `${txId}/resend/p1`, ms: 200 },
    ]);
    const told = h.feed({ type: 'timer', id: `${txId}/reply` });
    expect(replyOf(told, requestId)).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
    expect(h.state.txs.get(txId)?.inDoubt).toBe(true);

    const settled = h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes', state: 'committed' });
    expect(noLogs(settled)).toEqual([{ kind: 'cancelTimer', id: `${txId}/resend/p1` }]);
    expect(h.state.finished.get(txId)).toMatchObject({ phase: 'committed', outcome: 'committed' });
  });

  it('one-phase is refused a client abort: the participant decides', () => {
    const h = new Harness();
    h.feed({ type: 'begin', requestId: h.rid() });
    h.feed({ type: 'enlist', requestId: h.rid(), txId: 'tx-1-1', participant: 'p1', ops: [put('a', 1)] });
    h.feed({ type: 'commit', requestId: h.rid(), txId: 'tx-1-1' });
    const a = h.rid();
    expect(replyOf(h.feed({ type: 'abort', requestId: a, txId: 'tx-1-1' }), a).status).toBe(409);
  });
});
