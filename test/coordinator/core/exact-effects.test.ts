/**
 * Whole effect lists, one event at a time: what the coordinator answers, logs, sends, persists
 * and arms for the requests and answers the other core tests check only in part (the error texts
 * a client reads, the one-phase paths in and out of doubt, stale timers, the limits' edges).
 * Each list is compared whole, so an effect too many, one missing or one field changed fails.
 */
import { describe, expect, it } from 'vitest';
import { timerId } from '../../../coordinator/core/decision.ts';
import type { CoordinatorEffect } from '../../../coordinator/core/index.ts';
import { asTxId, type Op, type TxId } from '../../../shared/types.ts';
import { Harness, P, SELF, baseConfig, decisionMsg, prepareMsg, put, ref } from './helpers.ts';

const two = [
  { participant: 'p1', ops: [put('a', 1)] },
  { participant: 'p2', ops: [put('b', 1)] },
];
const one = [{ participant: 'p1', ops: [put('a', 1)] }];

const fail = (requestId: string, status: number, code: string, message: string): CoordinatorEffect => ({
  kind: 'reply',
  requestId,
  status,
  body: { error: { code, message } },
});
const log = (step: string, txId: string, fields: Record<string, unknown>): CoordinatorEffect => ({ kind: 'log', step, txId, fields });
const nextTxId = (h: Harness): TxId => asTxId(`tx-${h.state.epoch}-${h.state.nextSeq}`);

/** Begins an interactive transaction and returns its id. */
function begin(h: Harness): TxId {
  const txId = nextTxId(h);
  h.feed({ type: 'begin', requestId: h.rid() });
  return txId;
}

describe('admission: the timeout bound and the unfinished-transaction limit', () => {
  it('refuses a request while recovering, and nothing else happens', () => {
    const h = new Harness({}, null);
    const before = h.state;
    expect(h.feed({ type: 'begin', requestId: 'r1' })).toStrictEqual([
      fail('r1', 503, 'unavailable', 'The coordinator is recovering from its WAL; retry shortly.'),
    ]);
    expect(h.state).toBe(before);
  });

  it('takes a timeout of exactly 1 ms and exactly the maximum, on begin and on a whole run', () => {
    const h = new Harness({ txTimeoutMsMax: 5_000 });
    for (const timeoutMs of [1, 5_000]) {
      const txId = nextTxId(h);
      expect(h.feed({ type: 'begin', requestId: 'r1', timeoutMs })).toStrictEqual([
        { kind: 'setTimer', id: timerId(txId, 'timeout'), ms: timeoutMs },
        log('begin', txId, { timeoutMs }),
        { kind: 'reply', requestId: 'r1', status: 201, body: { txId, state: 'active' } },
      ]);
    }
    const { txId, effects } = h.runWhole(one, 5_000);
    expect(effects).toStrictEqual([
      log('begin', txId, { branches: 1 }),
      prepareMsg(txId, 'p1', [P.p1], one[0]!.ops, true, 5_000),
      log('prepare.sent', txId, { participant: 'p1', onePhase: true }),
      { kind: 'setTimer', id: timerId(txId, 'prepare'), ms: 5_000 },
    ]);
  });

  it('refuses 0, a fraction and one past the maximum with one 400 naming the bound, and allocates nothing', () => {
    const h = new Harness({ txTimeoutMsMax: 5_000 });
    for (const timeoutMs of [0, -1, 1.5, 5_001, Number.NaN]) {
      const before = h.state;
      const message = `Expected \`timeoutMs\` to be an integer from 1 to 5000 (this coordinator's maximum, --tx-timeout-max-ms), got ${timeoutMs}.`;
      expect(h.feed({ type: 'begin', requestId: 'r1', timeoutMs }), `begin ${timeoutMs}`).toStrictEqual([fail('r1', 400, 'bad_request', message)]);
      expect(h.feed({ type: 'runWhole', requestId: 'r2', branches: one, timeoutMs }), `run ${timeoutMs}`).toStrictEqual([
        fail('r2', 400, 'bad_request', message),
      ]);
      expect(h.state).toBe(before);
    }
  });

  it('refuses new work at the unfinished-transaction limit with a 503, and creates nothing', () => {
    const h = new Harness({ maxActiveTransactions: 1 });
    begin(h);
    const before = h.state;
    const message = 'The coordinator has 1 unfinished transactions, its limit (--active-tx-max); retry later.';
    expect(h.feed({ type: 'begin', requestId: 'r9' })).toStrictEqual([fail('r9', 503, 'unavailable', message)]);
    expect(h.feed({ type: 'runWhole', requestId: 'r10', branches: one })).toStrictEqual([fail('r10', 503, 'unavailable', message)]);
    expect(h.state).toBe(before);
  });
});

describe('enlisting', () => {
  it('logs the enlist by participant name, also when the branch names its URL', () => {
    const h = new Harness();
    const txId = begin(h);
    const effects = h.feed({ type: 'enlist', requestId: 'r5', txId, participant: `${P.p2}/`, ops: [put('b', 1), put('c', 2)] });
    expect(effects).toStrictEqual([
      log('enlist', txId, { participant: 'p2', ops: 2 }),
      {
        kind: 'reply',
        requestId: 'r5',
        status: 200,
        body: { txId, state: 'active', createdAt: h.now, branches: [{ participant: 'p2', acked: false }] },
      },
    ]);
  });

  it('treats a repeated enlist as a retry, also after other ops joined the branch, and grows only the named branch', () => {
    const h = new Harness();
    const txId = begin(h);
    h.feed({ type: 'enlist', requestId: 'r2', txId, participant: 'p1', ops: [put('a', 1)] });
    h.feed({ type: 'enlist', requestId: 'r3', txId, participant: 'p2', ops: [put('b', 1)] });
    h.feed({ type: 'enlist', requestId: 'r4', txId, participant: 'p1', ops: [put('c', 1)] });
    const before = h.state;
    // A retry of the first enlist: answered with the view, nothing changes or is logged.
    expect(h.feed({ type: 'enlist', requestId: 'r5', txId, participant: 'p1', ops: [put('a', 1)] })).toStrictEqual([
      {
        kind: 'reply',
        requestId: 'r5',
        status: 200,
        body: { txId, state: 'active', createdAt: h.now, branches: [{ participant: 'p1', acked: false }, { participant: 'p2', acked: false }] },
      },
    ]);
    expect(h.state).toBe(before);
    const tx = h.state.txs.get(txId);
    expect(tx?.branches.map((b) => ({ participant: b.participant, ops: b.ops }))).toStrictEqual([
      { participant: 'p1', ops: [put('a', 1), put('c', 1)] },
      { participant: 'p2', ops: [put('b', 1)] },
    ]);
  });

  it('takes exactly maxOpsPerBranch ops on a branch and refuses one more', () => {
    const h = new Harness({ maxOpsPerBranch: 2 });
    const txId = begin(h);
    const ok = h.feed({ type: 'enlist', requestId: 'r2', txId, participant: 'p1', ops: [put('a', 1), put('b', 1)] });
    expect(ok.filter((e) => e.kind === 'reply')).toMatchObject([{ status: 200 }]);
    expect(h.feed({ type: 'enlist', requestId: 'r3', txId, participant: 'p1', ops: [put('c', 1)] })).toStrictEqual([
      fail('r3', 400, 'bad_request', 'Branch p1 would have 3 ops; at most 2 per branch.'),
    ]);
  });

  it('says why an enlist cannot go in: unknown, finished, or no longer active', () => {
    const h = new Harness();
    expect(h.feed({ type: 'enlist', requestId: 'r1', txId: 'tx-1-99', participant: 'p1', ops: [put('a', 1)] })).toStrictEqual([
      fail('r1', 404, 'not_found', 'Unknown transaction tx-1-99.'),
    ]);
    const done = begin(h);
    h.feed({ type: 'abort', requestId: 'r2', txId: done });
    expect(h.feed({ type: 'enlist', requestId: 'r3', txId: done, participant: 'p1', ops: [put('a', 1)] })).toStrictEqual([
      fail('r3', 409, 'conflict', `Cannot enlist in ${done}: it is already aborted.`),
    ]);
    const preparing = begin(h);
    h.feed({ type: 'enlist', requestId: 'r4', txId: preparing, participant: 'p1', ops: [put('a', 1)] });
    h.feed({ type: 'enlist', requestId: 'r5', txId: preparing, participant: 'p2', ops: [put('b', 1)] });
    h.feed({ type: 'commit', requestId: 'r6', txId: preparing });
    expect(h.feed({ type: 'enlist', requestId: 'r7', txId: preparing, participant: 'p3', ops: [put('c', 1)] })).toStrictEqual([
      fail('r7', 409, 'conflict', `Transaction ${preparing} is preparing; branches can be enlisted only while active.`),
    ]);
  });
});

describe('commit and abort requests', () => {
  it('commits a transaction with no branches at once: one decision line, no record, no send', () => {
    const h = new Harness();
    const txId = begin(h);
    expect(h.feed({ type: 'commit', requestId: 'r2', txId })).toStrictEqual([
      { kind: 'cancelTimer', id: timerId(txId, 'timeout') },
      log('decision', txId, { outcome: 'committed', branches: 0 }),
      { kind: 'reply', requestId: 'r2', status: 200, body: { txId, outcome: 'committed', applied: true, branches: [] } },
    ]);
    expect(h.state.finished.get(txId)).toMatchObject({ phase: 'committed', outcome: 'committed' });
  });

  it('refuses a waiter past waitersPerTxMax with a 503 and keeps the ones it has', () => {
    const h = new Harness({ waitersPerTxMax: 1 });
    const { txId } = h.runWhole(two);
    const before = h.state;
    expect(h.feed({ type: 'commit', requestId: 'r9', txId })).toStrictEqual([
      fail('r9', 503, 'unavailable', `Too many requests already wait on ${txId} (1); retry later.`),
    ]);
    expect(h.state).toBe(before);
  });

  it('aborts an active transaction by the client: the decision line names the reason, the history keeps it', () => {
    const h = new Harness();
    const txId = begin(h);
    expect(h.feed({ type: 'abort', requestId: 'r2', txId })).toStrictEqual([
      { kind: 'cancelTimer', id: timerId(txId, 'timeout') },
      log('decision', txId, { outcome: 'aborted', reason: 'aborted by the client' }),
      { kind: 'reply', requestId: 'r2', status: 200, body: { txId, outcome: 'aborted' } },
    ]);
    expect(h.state.finished.get(txId)).toMatchObject({ phase: 'aborted', outcome: 'aborted', reason: 'aborted by the client' });
  });

  it('answers an abort by phase: aborting and aborted say aborted, committing and committed refuse, one phase refuses', () => {
    const h = new Harness();
    const aborting = h.runWhole(two).txId;
    h.feed({ type: 'prepareResult', txId: aborting, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId: aborting, participant: 'p2', vote: 'no' });
    expect(h.state.txs.get(aborting)?.phase).toBe('aborting');
    expect(h.feed({ type: 'abort', requestId: 'a1', txId: aborting })).toStrictEqual([
      { kind: 'reply', requestId: 'a1', status: 200, body: { txId: aborting, outcome: 'aborted' } },
    ]);
    h.feed({ type: 'decisionAcked', txId: aborting, participant: 'p1' });
    expect(h.state.finished.get(aborting)?.phase).toBe('aborted');
    expect(h.feed({ type: 'abort', requestId: 'a2', txId: aborting })).toStrictEqual([
      { kind: 'reply', requestId: 'a2', status: 200, body: { txId: aborting, outcome: 'aborted' } },
    ]);

    const committing = h.runWhole(two).txId;
    h.feed({ type: 'prepareResult', txId: committing, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId: committing, participant: 'p2', vote: 'yes' });
    expect(h.state.txs.get(committing)?.phase).toBe('committing');
    const refused = fail('a3', 409, 'conflict', `Transaction ${committing} is already committed.`);
    expect(h.feed({ type: 'abort', requestId: 'a3', txId: committing })).toStrictEqual([refused]);
    h.feed({ type: 'decisionAcked', txId: committing, participant: 'p1' });
    h.feed({ type: 'decisionAcked', txId: committing, participant: 'p2' });
    expect(h.state.finished.get(committing)?.phase).toBe('committed');
    expect(h.feed({ type: 'abort', requestId: 'a3', txId: committing })).toStrictEqual([refused]);

    const onePhase = h.runWhole(one).txId;
    expect(h.feed({ type: 'abort', requestId: 'a4', txId: onePhase })).toStrictEqual([
      fail('a4', 409, 'conflict', `Transaction ${onePhase} is committing in one phase; its participant decides.`),
    ]);
  });
});

describe('the variants that log COLLECTING', () => {
  it('presumed nothing: forces COLLECTING, says so, and names its protocol in each prepare', () => {
    const h = new Harness({ protocol: 'presumed-nothing' });
    const { txId, effects } = h.runWhole(two);
    const urls = [P.p1, P.p2];
    const prepare = (to: 'p1' | 'p2', ops: readonly Op[]): CoordinatorEffect => ({
      kind: 'send',
      to,
      url: P[to],
      message: { type: 'prepare', body: { txId, coordinator: SELF, participants: urls, ops, protocol: 'presumed-nothing' } },
      timeoutMs: baseConfig.prepareTimeoutMs,
    });
    expect(effects).toStrictEqual([
      log('begin', txId, { branches: 2 }),
      { kind: 'persist', record: { type: 'COLLECTING', txId, participants: [ref('p1'), ref('p2')] }, sync: true },
      log('collecting.logged', txId, { forced: true }),
      prepare('p1', two[0]!.ops),
      log('prepare.sent', txId, { participant: 'p1' }),
      prepare('p2', two[1]!.ops),
      log('prepare.sent', txId, { participant: 'p2' }),
      { kind: 'setTimer', id: timerId(txId, 'prepare'), ms: baseConfig.prepareTimeoutMs },
    ]);
  });
});

describe('votes and phase-2 answers', () => {
  it('logs a no vote with its reason, and an unanswered prepare without a message names only the error', () => {
    const h = new Harness();
    const { txId } = h.runWhole(two);
    const voted = h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'no', reason: 'key a is locked' });
    expect(voted.filter((e) => e.kind === 'log' && e.step === 'vote')).toStrictEqual([
      log('vote', txId, { participant: 'p1', vote: 'no', reason: 'key a is locked' }),
    ]);
    // p2 has not voted, so it may be prepared: the abort reaches it, and the transaction is aborting.
    expect(h.state.txs.get(txId)?.reason).toBe('p1 voted no: key a is locked');

    const second = h.runWhole(two).txId;
    h.feed({ type: 'prepareFailed', txId: second, participant: 'p2', error: 'timeout' });
    expect(h.state.txs.get(second)?.reason).toBe('p2 did not answer the prepare (timeout)');
  });

  it('ignores an acknowledgement from a branch the decision does not reach', () => {
    const h = new Harness();
    const { txId } = h.runWhole(two);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'no' });
    const before = h.state;
    expect(h.feed({ type: 'decisionAcked', txId, participant: 'p1' })).toStrictEqual([]);
    expect(h.feed({ type: 'decisionFailed', txId, participant: 'p1', error: 'timeout' })).toStrictEqual([]);
    expect(h.state).toBe(before);
  });

  it('logs a failed decision send with its attempt, and arms the re-send', () => {
    const h = new Harness();
    const { txId } = h.runWhole(two);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    expect(h.feed({ type: 'decisionFailed', txId, participant: 'p2', error: 'unreachable' })).toStrictEqual([
      log('decision.failed', txId, { participant: 'p2', error: 'unreachable', attempts: 1 }),
      { kind: 'setTimer', id: timerId(txId, 'resend', 'p2'), ms: baseConfig.resendBaseMs },
    ]);
    // The re-send timer sends the decision again, and nothing else.
    expect(h.feed({ type: 'timer', id: timerId(txId, 'resend', 'p2') })).toStrictEqual([
      decisionMsg(txId, 'p2', 'commit'),
      log('decision.sent', txId, { participant: 'p2', decision: 'commit', attempt: 1 }),
    ]);
  });
});

describe('one-phase commit', () => {
  const reply = (requestId: string, txId: string, outcome: string, vote: string, reason?: string): CoordinatorEffect => ({
    kind: 'reply',
    requestId,
    status: 200,
    body: { txId, outcome, applied: true, ...(reason === undefined ? {} : { reason }), branches: [{ participant: 'p1', vote, acked: true }] },
  });

  it('a committed answer: cancels the prepare timer, logs the outcome, answers, retires the transaction', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole(one);
    expect(h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes', state: 'committed' })).toStrictEqual([
      { kind: 'cancelTimer', id: timerId(txId, 'prepare') },
      log('one-phase.outcome', txId, { participant: 'p1', vote: 'yes', outcome: 'committed' }),
      reply(requestId, txId, 'committed', 'yes'),
    ]);
    expect(h.state.finished.get(txId)).toMatchObject({ phase: 'committed', onePhase: true, inDoubt: false });
  });

  it('an aborted answer aborts whatever the vote says; a no without a reason says only that', () => {
    const h = new Harness();
    const first = h.runWhole(one);
    expect(h.feed({ type: 'prepareResult', txId: first.txId, participant: 'p1', vote: 'read-only', state: 'aborted' })).toStrictEqual([
      { kind: 'cancelTimer', id: timerId(first.txId, 'prepare') },
      log('one-phase.outcome', first.txId, { participant: 'p1', vote: 'read-only', outcome: 'aborted' }),
      reply(first.requestId, first.txId, 'aborted', 'read-only', 'p1 voted no'),
    ]);
    const second = h.runWhole(one);
    const effects = h.feed({ type: 'prepareResult', txId: second.txId, participant: 'p1', vote: 'no' });
    expect(effects.at(-1)).toStrictEqual(reply(second.requestId, second.txId, 'aborted', 'no', 'p1 voted no'));
  });

  it('a prepare the participant refused or never got aborts at once, naming why', () => {
    const h = new Harness();
    for (const [error, message] of [
      ['rejected', 'HTTP 400'],
      ['unreachable', undefined],
    ] as const) {
      const { txId, requestId } = h.runWhole(one);
      const reason = `p1 did not take the prepare (${error}${message ? `: ${message}` : ''})`;
      expect(h.feed({ type: 'prepareFailed', txId, participant: 'p1', error, ...(message ? { message } : {}) })).toStrictEqual([
        { kind: 'cancelTimer', id: timerId(txId, 'prepare') },
        log('one-phase.outcome', txId, { participant: 'p1', error, outcome: 'aborted' }),
        { kind: 'reply', requestId, status: 200, // The participant holds nothing, so there is nothing to acknowledge.
        body: { txId, outcome: 'aborted', applied: true, reason, branches: [{ participant: 'p1', acked: true }] } },
      ]);
      // What GET /v1/transactions/:id reads afterwards: an aborted, finished transaction.
      expect(h.state.finished.get(txId)).toMatchObject({ phase: 'aborted', outcome: 'aborted', onePhase: true, reason });
    }
  });

  it('a prepare that timed out leaves the outcome unknown: in doubt, re-sent with backoff, the waiter told after the reply wait', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole(one);
    expect(h.feed({ type: 'prepareFailed', txId, participant: 'p1', error: 'timeout' })).toStrictEqual([
      { kind: 'cancelTimer', id: timerId(txId, 'prepare') },
      log('one-phase.in-doubt', txId, { participant: 'p1', why: 'timeout' }),
      { kind: 'setTimer', id: timerId(txId, 'reply'), ms: baseConfig.replyWaitMs },
      { kind: 'setTimer', id: timerId(txId, 'resend', 'p1'), ms: baseConfig.resendBaseMs },
    ]);
    expect(h.state.txs.get(txId)).toMatchObject({ inDoubt: true, replyReleased: false, branches: [{ attempts: 1 }] });
    // A second failure backs off further (twice the 100 ms base); a stale prepare timer changes nothing.
    expect(h.feed({ type: 'prepareFailed', txId, participant: 'p1', error: 'timeout' })).toStrictEqual([
      { kind: 'setTimer', id: timerId(txId, 'resend', 'p1'), ms: 2 * 100 },
    ]);
    const before = h.state;
    expect(h.feed({ type: 'timer', id: timerId(txId, 'prepare') })).toStrictEqual([]);
    expect(h.state).toBe(before);
    // The re-send repeats the one-phase prepare and names its attempt.
    expect(h.feed({ type: 'timer', id: timerId(txId, 'resend', 'p1') })).toStrictEqual([
      prepareMsg(txId, 'p1', [P.p1], one[0]!.ops, true),
      log('prepare.resent', txId, { participant: 'p1', attempt: 2 }),
    ]);
    const inDoubt = `The outcome of ${txId} is not known yet: p1 has not answered its one-phase prepare, and the coordinator keeps asking. See GET /v1/transactions/${txId}.`;
    expect(h.feed({ type: 'timer', id: timerId(txId, 'reply') })).toStrictEqual([fail(requestId, 503, 'unavailable', inDoubt)]);
    // Once the wait is over, a repeated commit hears the same at once.
    expect(h.feed({ type: 'commit', requestId: 'r9', txId })).toStrictEqual([fail('r9', 503, 'unavailable', inDoubt)]);
  });

  it('no answer within the prepare timeout: in doubt, and the reason names the timeout', () => {
    const h = new Harness();
    const { txId } = h.runWhole(one, 700);
    expect(h.feed({ type: 'timer', id: timerId(txId, 'prepare') })).toStrictEqual([
      { kind: 'cancelTimer', id: timerId(txId, 'prepare') },
      log('one-phase.in-doubt', txId, { participant: 'p1', why: 'no answer within 700 ms' }),
      { kind: 'setTimer', id: timerId(txId, 'reply'), ms: baseConfig.replyWaitMs },
      { kind: 'setTimer', id: timerId(txId, 'resend', 'p1'), ms: baseConfig.resendBaseMs },
    ]);
  });

  it('an answer while in doubt cancels the re-send and the reply wait, and clears the doubt', () => {
    const h = new Harness();
    const { txId, requestId } = h.runWhole(one);
    h.feed({ type: 'prepareFailed', txId, participant: 'p1', error: 'timeout' });
    expect(h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes', state: 'committed' })).toStrictEqual([
      { kind: 'cancelTimer', id: timerId(txId, 'resend', 'p1') },
      { kind: 'cancelTimer', id: timerId(txId, 'reply') },
      log('one-phase.outcome', txId, { participant: 'p1', vote: 'yes', outcome: 'committed' }),
      reply(requestId, txId, 'committed', 'yes'),
    ]);
    expect(h.state.finished.get(txId)).toMatchObject({ inDoubt: false });
  });

  it('a participant that only prepared: falls back to two-phase commit (not in doubt: one prepare-timer cancel)', () => {
    const h = new Harness();
    const { txId } = h.runWhole(one);
    expect(h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes', state: 'prepared' })).toStrictEqual([
      log('one-phase.fallback', txId, { participant: 'p1' }),
      { kind: 'cancelTimer', id: timerId(txId, 'prepare') },
      { kind: 'crashPoint', point: 'coordinator.before-decision-logged' },
      { kind: 'persist', record: { type: 'DECISION', txId, outcome: 'committed', participants: [ref('p1')] }, sync: true },
      { kind: 'crashPoint', point: 'coordinator.after-decision-logged' },
      log('decision.logged', txId, { outcome: 'committed', forced: true }),
      decisionMsg(txId, 'p1', 'commit'),
      log('decision.sent', txId, { participant: 'p1', decision: 'commit' }),
      { kind: 'setTimer', id: timerId(txId, 'reply'), ms: baseConfig.replyWaitMs },
    ]);
    const tx = h.state.txs.get(txId);
    expect(tx).toMatchObject({ phase: 'committing', onePhase: false, inDoubt: false });
    expect(tx?.branches).toMatchObject([{ vote: 'yes', target: true, attempts: 0 }]);
  });

  it('a participant that only prepared, answering while in doubt: the in-doubt timers are cancelled instead', () => {
    const h = new Harness();
    const { txId } = h.runWhole(one);
    h.feed({ type: 'prepareFailed', txId, participant: 'p1', error: 'timeout' });
    const effects = h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes', state: 'prepared' });
    expect(effects.slice(0, 4)).toStrictEqual([
      { kind: 'cancelTimer', id: timerId(txId, 'resend', 'p1') },
      { kind: 'cancelTimer', id: timerId(txId, 'reply') },
      log('one-phase.fallback', txId, { participant: 'p1' }),
      { kind: 'crashPoint', point: 'coordinator.before-decision-logged' },
    ]);
    expect(h.state.txs.get(txId)).toMatchObject({ phase: 'committing', onePhase: false, inDoubt: false, branches: [{ attempts: 0 }] });
  });
});

describe('timers that find nothing to do', () => {
  it('a transaction timeout after the commit started, a re-send for a branch the tx does not have, or for one that acked', () => {
    const h = new Harness();
    const { txId } = h.runWhole(two);
    const before = h.state;
    expect(h.feed({ type: 'timer', id: timerId(txId, 'timeout') })).toStrictEqual([]);
    expect(h.feed({ type: 'timer', id: timerId(txId, 'resend', 'p3') })).toStrictEqual([]);
    expect(h.state).toBe(before);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'yes' });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    h.feed({ type: 'decisionAcked', txId, participant: 'p1' });
    const acked = h.state;
    expect(h.feed({ type: 'timer', id: timerId(txId, 'resend', 'p1') })).toStrictEqual([]);
    expect(h.state).toBe(acked);
  });

  it('a re-send for a branch an abort does not reach sends nothing', () => {
    const h = new Harness();
    const { txId } = h.runWhole(two);
    h.feed({ type: 'prepareResult', txId, participant: 'p1', vote: 'read-only' });
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'no' });
    // Nobody holds anything: the abort needed no phase 2, so the transaction is finished.
    expect(h.state.finished.get(txId)?.phase).toBe('aborted');
    const { txId: other } = h.runWhole(two);
    h.feed({ type: 'prepareResult', txId: other, participant: 'p1', vote: 'read-only' });
    h.feed({ type: 'prepareFailed', txId: other, participant: 'p2', error: 'timeout' });
    expect(h.state.txs.get(other)?.phase).toBe('aborting');
    expect(h.feed({ type: 'timer', id: timerId(other, 'resend', 'p1') })).toStrictEqual([]);
  });

  it('the prepare timeout names every silent participant', () => {
    const h = new Harness();
    const { txId } = h.runWhole([...two, { participant: 'p3', ops: [put('c', 1)] }]);
    h.feed({ type: 'prepareResult', txId, participant: 'p2', vote: 'yes' });
    h.feed({ type: 'timer', id: timerId(txId, 'prepare') });
    expect(h.state.txs.get(txId)?.reason).toBe('no vote from p1, p3 within 1000 ms');
  });
});
