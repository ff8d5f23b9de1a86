import { describe, expect, it } from 'vitest';
import { answerOf, failureAnswer } from '../../../coordinator/adapters/answers.ts';
import type { SendEffect } from '../../../coordinator/core/index.ts';
import { TransportError } from '../../../shared/http/client.ts';
import { asTxId } from '../../../shared/types.ts';

const txId = asTxId('tx-1-1');
const send = (type: 'prepare' | 'commit' | 'abort'): SendEffect =>
  type === 'prepare'
    ? { kind: 'send', to: 'p1', url: 'http://127.0.0.1:1', message: { type, body: { txId, coordinator: 'http://127.0.0.1:2', participants: [], ops: [] } } }
    : { kind: 'send', to: 'p1', url: 'http://127.0.0.1:1', message: { type, body: { txId } } };
const base = { txId, participant: 'p1' };

describe('answers: what a participant\'s answer means to the coordinator core', () => {
  it('reads a prepare\'s vote, reason and state, and refuses an answer without a valid vote', () => {
    expect(answerOf(send('prepare'), 200, { vote: 'yes', state: 'prepared' })).toStrictEqual({ type: 'prepareResult', ...base, vote: 'yes', state: 'prepared' });
    expect(answerOf(send('prepare'), 200, { vote: 'no', reason: 'x'.repeat(400), state: 'bogus' })).toStrictEqual({ type: 'prepareResult', ...base, vote: 'no', reason: 'x'.repeat(300) });
    expect(answerOf(send('prepare'), 200, { vote: 'maybe' })).toStrictEqual({ type: 'prepareFailed', ...base, error: 'server-error', message: 'the participant answered without a valid vote' });
    expect(answerOf(send('prepare'), 200, undefined)).toStrictEqual({ type: 'prepareFailed', ...base, error: 'server-error', message: 'the participant answered without a valid vote' });
  });

  it('turns a 4xx into rejected and a 5xx into server-error, quoting the participant\'s message', () => {
    expect(answerOf(send('prepare'), 400, { error: { code: 'bad_request', message: 'no ops' } })).toStrictEqual({ type: 'prepareFailed', ...base, error: 'rejected', message: 'HTTP 400: no ops' });
    expect(answerOf(send('commit'), 503, 'busy')).toStrictEqual({ type: 'decisionFailed', ...base, error: 'server-error', message: 'HTTP 503: busy' });
    expect(answerOf(send('abort'), 500, {})).toStrictEqual({ type: 'decisionFailed', ...base, error: 'server-error', message: 'HTTP 500' });
  });

  it('acks a decision, reporting a contrary heuristic or state, and a 409 as the other outcome', () => {
    expect(answerOf(send('commit'), 200, { state: 'committed' })).toStrictEqual({ type: 'decisionAcked', ...base });
    expect(answerOf(send('commit'), 200, { state: 'aborted' })).toStrictEqual({ type: 'decisionAcked', ...base, heuristic: 'aborted' });
    expect(answerOf(send('abort'), 200, { state: 'aborted', heuristic: 'committed' })).toStrictEqual({ type: 'decisionAcked', ...base, heuristic: 'committed' });
    expect(answerOf(send('commit'), 409, {})).toStrictEqual({ type: 'decisionAcked', ...base, heuristic: 'aborted' });
    expect(answerOf(send('abort'), 409, {})).toStrictEqual({ type: 'decisionAcked', ...base, heuristic: 'committed' });
  });

  it('turns a call without an answer into a failure of its kind; anything but a TransportError is a reset', () => {
    expect(failureAnswer(send('prepare'), new TransportError('timeout', 'timed out', 'http://127.0.0.1:1'))).toStrictEqual({ type: 'prepareFailed', ...base, error: 'timeout', message: 'timed out' });
    expect(failureAnswer(send('commit'), new TransportError('unreachable', 'ECONNREFUSED', 'http://127.0.0.1:1'))).toStrictEqual({ type: 'decisionFailed', ...base, error: 'unreachable', message: 'ECONNREFUSED' });
    expect(failureAnswer(send('abort'), new Error('socket hang up'))).toStrictEqual({ type: 'decisionFailed', ...base, error: 'reset', message: 'socket hang up' });
    expect(failureAnswer(send('abort'), 'odd')).toStrictEqual({ type: 'decisionFailed', ...base, error: 'reset', message: 'odd' });
  });
});
