import { describe, expect, it } from 'vitest';
import type { ProtocolVariant } from '../../../shared/types.ts';
import { Harness, only, persisted, put, replyOf } from './helpers.ts';

describe('client requests: validation and limits', () => {
  it('refuses a participant that is not configured, by name or URL, and writes nothing', () => {
    const h = new Harness();
    const before = h.state;
    const r = h.rid();
    const effects = h.feed({ type: 'runWhole', requestId: r, branches: [{ participant: 'p1', ops: [] }, { participant: 'http://evil.test', ops: [put('a', 1)] }] });
    expect(effects).toEqual([
      {
        kind: 'reply',
        requestId: r,
        status: 400,
        body: { error: { code: 'unknown_participant', message: 'Unknown participant "http://evil.test" (known: p1, p2, p3; by name or URL).' } },
      },
    ]);
    expect(h.state).toBe(before);

    h.feed({ type: 'begin', requestId: h.rid() });
    const e = h.rid();
    expect(replyOf(h.feed({ type: 'enlist', requestId: e, txId: 'tx-1-1', participant: 'p9', ops: [] }), e)).toMatchObject({
      status: 400,
      body: { error: { code: 'unknown_participant' } },
    });
  });

  it.each([
    ['commit', 404],
    ['abort', 404],
    ['getTx', 404],
    ['enlist', 404],
  ] as const)('%s of an unknown transaction is a %i', (type, status) => {
    const h = new Harness();
    const r = h.rid();
    const event = type === 'enlist' ? { type, requestId: r, txId: 'tx-1-9', participant: 'p1', ops: [] } : { type, requestId: r, txId: 'tx-1-9' };
    expect(replyOf(h.feed(event), r)).toMatchObject({ status, body: { error: { code: 'not_found', message: 'Unknown transaction tx-1-9.' } } });
  });

  it('refuses enlisting once the transaction is committing', () => {
    const h = new Harness();
    const { txId } = h.runWhole([{ participant: 'p1', ops: [put('a', 1)] }, { participant: 'p2', ops: [put('b', 1)] }]);
    const r = h.rid();
    expect(replyOf(h.feed({ type: 'enlist', requestId: r, txId, participant: 'p3', ops: [] }), r)).toMatchObject({ status: 409, body: { error: { code: 'conflict' } } });
  });

  it('bounds unfinished transactions, branches, ops per branch and timeouts', () => {
    const h = new Harness({ maxActiveTransactions: 1, maxBranchesPerTx: 2, maxOpsPerBranch: 2 });
    h.feed({ type: 'begin', requestId: h.rid() });
    const full = h.rid();
    expect(replyOf(h.feed({ type: 'begin', requestId: full }), full)).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });

    const txId = 'tx-1-1';
    h.feed({ type: 'enlist', requestId: h.rid(), txId, participant: 'p1', ops: [put('a', 1)] });
    h.feed({ type: 'enlist', requestId: h.rid(), txId, participant: 'p2', ops: [put('b', 1)] });
    const third = h.rid();
    expect(replyOf(h.feed({ type: 'enlist', requestId: third, txId, participant: 'p3', ops: [] }), third)).toMatchObject({
      status: 400,
      body: { error: { message: 'At most 2 branches per transaction.' } },
    });
    const many = h.rid();
    expect(replyOf(h.feed({ type: 'enlist', requestId: many, txId, participant: 'p1', ops: [put('c', 1), put('d', 1)] }), many)).toMatchObject({
      status: 400,
      body: { error: { message: 'Branch p1 would have 3 ops; at most 2 per branch.' } },
    });

    const h2 = new Harness({ txTimeoutMsMax: 1_000 });
    const long = h2.rid();
    expect(replyOf(h2.feed({ type: 'begin', requestId: long, timeoutMs: 5_000 }), long).status).toBe(400);
  });

  // Issue 7, item 5: a caller cannot hold a slot past the configured maximum.
  it('refuses a timeout over the maximum with a 400 naming it, even when every slot is taken', () => {
    const h = new Harness({ maxActiveTransactions: 1, txTimeoutMsMax: 1_000 });
    h.feed({ type: 'begin', requestId: h.rid() });
    const over = h.rid();
    const effects = h.feed({ type: 'runWhole', requestId: over, timeoutMs: 1_001, branches: [{ participant: 'p1', ops: [put('a', 1)] }] });
    expect(replyOf(effects, over)).toMatchObject({ status: 400, body: { error: { code: 'bad_request' } } });
    expect(JSON.stringify(replyOf(effects, over).body)).toContain('from 1 to 1000');
    expect(only(effects, 'persist', 'send')).toEqual([]);
    const full = h.rid();
    expect(replyOf(h.feed({ type: 'begin', requestId: full, timeoutMs: 1_000 }), full)).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
  });

  it('bounds an idle interactive transaction by the maximum when the client names no timeout', () => {
    const h = new Harness({ defaultTxTimeoutMs: 30_000, txTimeoutMsMax: 1_000 });
    expect(only(h.feed({ type: 'begin', requestId: h.rid() }), 'setTimer')).toEqual([{ kind: 'setTimer', id: 'tx-1-1/timeout', ms: 1_000 }]);
    h.feed({ type: 'enlist', requestId: h.rid(), txId: 'tx-1-1', participant: 'p1', ops: [put('a', 1)] });
    h.now += 1_000;
    h.feed({ type: 'timer', id: 'tx-1-1/timeout' });
    expect(h.state.finished.get('tx-1-1')).toMatchObject({ phase: 'aborted' });
  });

  it('lists transactions newest first, filtered by state', () => {
    const h = new Harness();
    h.feed({ type: 'begin', requestId: h.rid() });
    h.now += 1;
    h.feed({ type: 'begin', requestId: h.rid() });
    h.feed({ type: 'abort', requestId: h.rid(), txId: 'tx-1-1' });
    const all = h.rid();
    expect(replyOf(h.feed({ type: 'list', requestId: all }), all).body).toMatchObject({
      total: 2,
      transactions: [{ txId: 'tx-1-2', state: 'active' }, { txId: 'tx-1-1', state: 'aborted' }],
    });
    const aborted = h.rid();
    expect(replyOf(h.feed({ type: 'list', requestId: aborted, state: 'aborted' }), aborted).body).toMatchObject({ total: 1, transactions: [{ txId: 'tx-1-1' }] });
  });

  it('forgets the oldest finished transactions beyond the history bound', () => {
    const h = new Harness({ finishedHistoryMax: 2 });
    for (let i = 0; i < 3; i++) {
      h.feed({ type: 'begin', requestId: h.rid() });
      h.feed({ type: 'abort', requestId: h.rid(), txId: `tx-1-${i + 1}` });
    }
    expect([...h.state.finished.keys()]).toEqual(['tx-1-2', 'tx-1-3']);
  });
});

describe('outcome inquiries from participants', () => {
  it.each<[ProtocolVariant, string]>([
    ['presumed-abort', 'aborted'],
    ['presumed-nothing', 'aborted'],
    ['presumed-commit', 'committed'],
  ])('under %s, an unknown transaction is %s', (protocol, outcome) => {
    const h = new Harness({ protocol });
    const r = h.rid();
    const effects = h.feed({ type: 'getOutcome', requestId: r, txId: 'tx-1-77' });
    expect(effects).toEqual([{ kind: 'reply', requestId: r, status: 200, body: { outcome } }]);
  });

  it('answers pending while voting, and the decision once it is made', () => {
    const h = new Harness();
    const { txId } = h.runWhole([{ participant: 'p1', ops: [put('a', 1)] }, { participant: 'p2', ops: [put('b', 1)] }]);
    const ask = () => {
      const r = h.rid();
      return replyOf(h.feed({ type: 'getOutcome', requestId: r, txId }), r).body;
    };
    expect(ask()).toEqual({ outcome: 'pending' });
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    expect(ask()).toEqual({ outcome: 'pending' });
    const decided = h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    expect(persisted(decided)).toHaveLength(1);
    expect(ask()).toEqual({ outcome: 'committed' });
    expect(only(decided, 'reply')).toEqual([]);
  });

  it('answers a batch in one step and one reply, each id as the single inquiry would, and changes nothing', () => {
    const h = new Harness();
    const { txId: decided } = h.runWhole([{ participant: 'p1', ops: [put('a', 1)] }, { participant: 'p2', ops: [put('b', 1)] }]);
    h.feed({ type: 'prepareResult', txId: decided, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId: decided, participant: 'p2', vote: 'yes' });
    const { txId: voting } = h.runWhole([{ participant: 'p1', ops: [put('c', 1)] }, { participant: 'p3', ops: [put('d', 1)] }]);
    const ids = [decided, voting, 'tx-1-77'];
    const single = ids.map((txId) => {
      const r = h.rid();
      return (replyOf(h.feed({ type: 'getOutcome', requestId: r, txId }), r).body as { outcome: string }).outcome;
    });
    expect(single).toEqual(['committed', 'pending', 'aborted']);
    const before = h.state;
    const r = h.rid();
    const effects = h.feed({ type: 'getOutcomes', requestId: r, txIds: ids });
    expect(effects).toEqual([{ kind: 'reply', requestId: r, status: 200, body: { outcomes: { [decided]: 'committed', [voting]: 'pending', 'tx-1-77': 'aborted' } } }]);
    expect(h.state).toBe(before);
  });
});
