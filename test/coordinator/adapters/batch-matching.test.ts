import { describe, expect, it } from 'vitest';
import { matchReplies, takeBatch } from '../../../coordinator/adapters/batches.ts';

/** The pure part of the Batcher, which the simulator drives too (test/sim/batching.ts). */
describe('batches: grouping and reply matching', () => {
  const item = (json: string, done = false) => ({ json, done });

  it('takes unsettled messages in order up to the message bound, dropping settled ones on the way', () => {
    const queue = [item('a', true), item('b'), item('c'), item('d')];
    const batch = takeBatch(queue, { batchMessagesMax: 2, batchBytesMax: 1_000 });
    expect(batch.map((w) => w.json)).toEqual(['b', 'c']);
    expect(queue.map((w) => w.json)).toEqual(['d']);
  });

  it('stops at the byte bound, but always takes one message however big', () => {
    const queue = [item('x'.repeat(50)), item('y'.repeat(10))];
    expect(takeBatch(queue, { batchMessagesMax: 10, batchBytesMax: 20 }).map((w) => w.json.length)).toEqual([50]);
    expect(takeBatch(queue, { batchMessagesMax: 10, batchBytesMax: 20 }).map((w) => w.json.length)).toEqual([10]);
    expect(queue).toEqual([]);
  });

  it('hands each message its own reply when the answer has one per message, in order', () => {
    const m = matchReplies(['t1', 't2'], { replies: [{ txId: 't1', status: 200, body: { vote: 'yes' } }, { txId: 't2', status: 409, body: {} }] });
    expect(m).toEqual({
      replies: [
        { kind: 'answer', status: 200, data: { vote: 'yes' } },
        { kind: 'answer', status: 409, data: {} },
      ],
    });
  });

  it('fails the whole batch on replies out of order, cut short, or missing', () => {
    const reordered = matchReplies(['t1', 't2'], { replies: [{ txId: 't2', status: 200, body: { vote: 'no' } }, { txId: 't1', status: 200, body: { vote: 'yes' } }] });
    expect(reordered).toEqual({ whole: "the participant's batch answer is out of order (reply 0 names another transaction)" });
    expect(matchReplies(['t1', 't2'], { replies: [{ txId: 't1', status: 200, body: {} }] })).toEqual({ whole: "the participant's batch answer has 1 replies for 2 messages" });
    expect(matchReplies(['t1'], { nothing: true })).toEqual({ whole: "the participant's batch answer has no replies" });
  });

  it('marks one unreadable reply as its own, leaving the others answered', () => {
    const m = matchReplies(['t1', 't2'], { replies: [{ txId: 't1', status: 'ok' }, { txId: 't2', status: 200, body: null }] });
    expect(m).toEqual({
      replies: [
        { kind: 'unreadable', message: 'the participant sent no readable reply to this message in its batch answer' },
        { kind: 'answer', status: 200, data: null },
      ],
    });
  });
});
