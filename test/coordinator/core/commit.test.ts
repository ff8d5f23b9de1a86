import { describe, expect, it } from 'vitest';
import { Harness, P, decisionMsg, noLogs, only, persisted, prepareMsg, put, ref, replyOf } from './helpers.ts';

const both = [P.p1, P.p2];

describe('commit path (presumed abort)', () => {
  it('prepares all, forces COMMIT before any send, delivers it, writes END lazily, then replies applied', () => {
    const h = new Harness();
    const { txId, requestId, effects } = h.runWhole([
      { participant: 'p1', ops: [put('a', 1)] },
      { participant: 'p2', ops: [put('b', 2)] },
    ]);
    expect(txId).toBe('tx-1-1');
    expect(noLogs(effects)).toEqual([
      prepareMsg(txId, 'p1', both, [put('a', 1)]),
      prepareMsg(txId, 'p2', both, [put('b', 2)]),
      { kind: 'setTimer', id: `${txId}/prepare`, ms: 1_000 },
    ]);

    expect(noLogs(h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' }))).toEqual([
      { kind: 'crashPoint', point: 'coordinator.after-prepare-sent' },
    ]);

    const decided = h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    expect(noLogs(decided)).toEqual([
      { kind: 'cancelTimer', id: `${txId}/prepare` },
      { kind: 'crashPoint', point: 'coordinator.before-decision-logged' },
      { kind: 'persist', record: { type: 'DECISION', txId, outcome: 'committed', participants: [ref('p1'), ref('p2')] }, sync: true },
      { kind: 'crashPoint', point: 'coordinator.after-decision-logged' },
      decisionMsg(txId, 'p1', 'commit'),
      decisionMsg(txId, 'p2', 'commit'),
      { kind: 'setTimer', id: `${txId}/reply`, ms: 2_000 },
    ]);
    // The client hears nothing until the decision is durable and acks are in (or the wait ends).
    expect(only(decided, 'reply')).toEqual([]);

    expect(noLogs(h.feed({ type: 'decisionAcked', txId, participant: 'p1' }))).toEqual([
      { kind: 'crashPoint', point: 'coordinator.after-first-commit-sent' },
    ]);
    expect(noLogs(h.feed({ type: 'decisionAcked', txId, participant: 'p2' }))).toEqual([
      { kind: 'crashPoint', point: 'coordinator.before-end-logged' },
      { kind: 'persist', record: { type: 'END', txId }, sync: false },
      { kind: 'cancelTimer', id: `${txId}/reply` },
      {
        kind: 'reply',
        requestId,
        status: 200,
        body: {
          txId,
          outcome: 'committed',
          applied: true,
          branches: [
            { participant: 'p1', vote: 'yes', acked: true },
            { participant: 'p2', vote: 'yes', acked: true },
          ],
        },
      },
    ]);
    expect(h.state.txs.size).toBe(0);
    expect(h.state.finished.get(txId)?.phase).toBe('committed');
  });

  it('logs one line per protocol step', () => {
    const h = new Harness();
    const steps: string[] = [];
    const logSteps = (effects: ReturnType<Harness['feed']>) => steps.push(...only(effects, 'log').map((e) => e.step));
    const { txId, effects } = h.runWhole([
      { participant: 'p1', ops: [put('a', 1)] },
      { participant: 'p2', ops: [put('b', 2)] },
    ]);
    logSteps(effects);
    logSteps(h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' }));
    logSteps(h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' }));
    logSteps(h.feed({ type: 'decisionAcked', txId, participant: 'p1' }));
    logSteps(h.feed({ type: 'decisionAcked', txId, participant: 'p2' }));
    expect(steps).toEqual(['begin', 'prepare.sent', 'prepare.sent', 'vote', 'vote', 'decision.logged', 'decision.sent', 'decision.sent', 'ack', 'ack', 'end.logged']);
  });

  it('answers after the reply wait with applied:false, and phase 2 goes on in the background', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole([
      { participant: 'p1', ops: [put('a', 1)] },
      { participant: 'p2', ops: [put('b', 2)] },
    ]);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    h.feed({ type: 'decisionAcked', txId, participant: 'p1' });

    const waited = h.feed({ type: 'timer', id: `${txId}/reply` });
    expect(noLogs(waited)).toEqual([
      {
        kind: 'reply',
        requestId,
        status: 200,
        body: {
          txId,
          outcome: 'committed',
          applied: false,
          branches: [
            { participant: 'p1', vote: 'yes', acked: true },
            { participant: 'p2', vote: 'yes', acked: false },
          ],
        },
      },
    ]);

    // A repeated commit request after the wait is answered at once.
    const again = h.rid();
    expect(replyOf(h.feed({ type: 'commit', requestId: again, txId }), again)).toMatchObject({ status: 200, body: { outcome: 'committed', applied: false } });

    const last = h.feed({ type: 'decisionAcked', txId, participant: 'p2' });
    expect(noLogs(last)).toEqual([
      { kind: 'crashPoint', point: 'coordinator.before-end-logged' },
      { kind: 'persist', record: { type: 'END', txId }, sync: false },
    ]);
  });

  it('re-sends an undelivered decision with capped exponential backoff until it is acked', () => {
    const h = new Harness();
    const { txId } = h.runWhole([
      { participant: 'p1', ops: [put('a', 1)] },
      { participant: 'p2', ops: [put('b', 2)] },
    ]);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    h.feed({ type: 'decisionAcked', txId, participant: 'p1' });

    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const failed = h.feed({ type: 'decisionFailed', txId, participant: 'p2', error: 'unreachable' });
      const [timer] = only(failed, 'setTimer');
      expect(timer?.id).toBe(`${txId}/resend/p2`);
      delays.push(timer?.ms ?? -1);
      expect(noLogs(h.feed({ type: 'timer', id: `${txId}/resend/p2` }))).toEqual([decisionMsg(txId, 'p2', 'commit')]);
    }
    expect(delays).toEqual([100, 200, 400, 800, 800]);

    const acked = h.feed({ type: 'decisionAcked', txId, participant: 'p2' });
    expect(noLogs(acked).slice(0, 2)).toEqual([
      { kind: 'cancelTimer', id: `${txId}/resend/p2` },
      { kind: 'crashPoint', point: 'coordinator.before-end-logged' },
    ]);
    expect(h.state.finished.get(txId)?.phase).toBe('committed');
  });

  it('runs an interactive transaction: begin, enlist by name and by URL, commit', () => {
    const h = new Harness();
    const begin = h.rid();
    const started = h.feed({ type: 'begin', requestId: begin });
    expect(noLogs(started)).toEqual([
      { kind: 'setTimer', id: 'tx-1-1/timeout', ms: 30_000 },
      { kind: 'reply', requestId: begin, status: 201, body: { txId: 'tx-1-1', state: 'active' } },
    ]);
    const txId = 'tx-1-1';
    const e1 = h.rid();
    expect(replyOf(h.feed({ type: 'enlist', requestId: e1, txId, participant: 'p1', ops: [put('a', 1)] }), e1)).toEqual({
      status: 200,
      body: { txId, state: 'active', createdAt: 1_000, branches: [{ participant: 'p1', acked: false }] },
    });
    const e2 = h.rid();
    h.feed({ type: 'enlist', requestId: e2, txId, participant: `${P.p2}/`, ops: [put('b', 2)] });
    expect(h.state.txs.get(txId)?.branches.map((b) => b.participant)).toEqual(['p1', 'p2']);

    const c = h.rid();
    const committing = h.feed({ type: 'commit', requestId: c, txId });
    expect(noLogs(committing)).toEqual([
      { kind: 'cancelTimer', id: `${txId}/timeout` },
      prepareMsg(txId, 'p1', both, [put('a', 1)]),
      prepareMsg(txId, 'p2', both, [put('b', 2)]),
      { kind: 'setTimer', id: `${txId}/prepare`, ms: 1_000 },
    ]);
    h.feed({ type: 'prepareResult', txId: txId as never, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId: txId as never, participant: 'p2', vote: 'yes' });
    h.feed({ type: 'decisionAcked', txId: txId as never, participant: 'p1' });
    const done = h.feed({ type: 'decisionAcked', txId: txId as never, participant: 'p2' });
    expect(replyOf(done, c)).toMatchObject({ status: 200, body: { txId, outcome: 'committed', applied: true } });
  });

  it('commits a transaction with no branches without writing or sending anything', () => {
    const h = new Harness();
    const begin = h.rid();
    h.feed({ type: 'begin', requestId: begin });
    const c = h.rid();
    const effects = h.feed({ type: 'commit', requestId: c, txId: 'tx-1-1' });
    expect(persisted(effects)).toEqual([]);
    expect(only(effects, 'send')).toEqual([]);
    expect(replyOf(effects, c)).toEqual({ status: 200, body: { txId: 'tx-1-1', outcome: 'committed', applied: true, branches: [] } });
  });

  it('reports heuristic-mixed when a participant was settled by hand against the decision', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole([
      { participant: 'p1', ops: [put('a', 1)] },
      { participant: 'p2', ops: [put('b', 2)] },
    ]);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    h.feed({ type: 'decisionAcked', txId, participant: 'p1', heuristic: 'committed' });
    const done = h.feed({ type: 'decisionAcked', txId, participant: 'p2', heuristic: 'aborted' });
    expect(replyOf(done, requestId)).toMatchObject({ status: 200, body: { outcome: 'heuristic-mixed', applied: true } });
    const get = h.rid();
    expect(replyOf(h.feed({ type: 'getTx', requestId: get, txId }), get)).toMatchObject({ body: { state: 'committed', outcome: 'heuristic-mixed' } });
    // Participants asking for the outcome still hear the decision itself.
    const ask = h.rid();
    expect(replyOf(h.feed({ type: 'getOutcome', requestId: ask, txId }), ask).body).toEqual({ outcome: 'committed' });
  });
});
