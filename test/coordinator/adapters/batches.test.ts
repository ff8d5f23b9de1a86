/**
 * The batching transport against fake participants (msw): messages to one
 * participant share requests, and each keeps its own reply, timeout, retries
 * and failure when a batch is lost, half answered, answered out of order,
 * refused, or larger than the bounds.
 *
 * Batches form deterministically: messages handed over in one synchronous
 * turn leave together, so no test depends on timing to get the batch it checks.
 */
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHttpTransport, type HttpTransportOptions, type Transport } from '../../../coordinator/adapters/http-transport.ts';
import type { CoordinatorMessage, SendEffect } from '../../../coordinator/core/index.ts';
import { createHttpClient, type HttpClient } from '../../../shared/http/client.ts';
import { Metrics } from '../../../shared/metrics.ts';
import { asTxId } from '../../../shared/types.ts';

const URL = 'http://p1.test';
const server = setupServer();
const clients: HttpClient[] = [];

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => {
  server.resetHandlers();
  for (const c of clients.splice(0)) c.close();
});
afterAll(() => server.close());

type Message = { type: 'prepare' | 'commit' | 'abort'; body: { txId: string } };
type Reply = { txId?: string; status: number; body: unknown };

/** What the fake participant received: one entry per request, each the messages it carried. */
interface Received {
  readonly batches: Message[][];
  readonly singles: Message[];
}

/** A fake participant whose batch route answers each batch with `answer` (default: every prepare yes, every decision acked). */
function participant(answer?: (messages: Message[], nth: number) => Response | Promise<Response>): Received {
  const received: Received = { batches: [], singles: [] };
  server.use(
    http.post(`${URL}/v1/2pc/batch`, async ({ request }) => {
      const { messages } = (await request.json()) as { messages: Message[] };
      received.batches.push(messages);
      if (answer) return answer(messages, received.batches.length);
      return HttpResponse.json({ replies: messages.map(okReply) });
    }),
  );
  return received;
}

/** A fake participant that holds its first request until `release()`, and answers every request like `participant()`. */
function holdingFirstRequest(): { received: Received; release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const received = participant(async (messages, nth) => {
    if (nth === 1) await held;
    return HttpResponse.json({ replies: messages.map(okReply) });
  });
  return { received, release };
}

const okReply = (m: Message): Reply =>
  m.type === 'prepare'
    ? { txId: m.body.txId, status: 200, body: { vote: 'yes' } }
    : { txId: m.body.txId, status: 200, body: { txId: m.body.txId, state: m.type === 'commit' ? 'committed' : 'aborted' } };

function transport(options: Partial<HttpTransportOptions> = {}): Transport {
  const client = createHttpClient({ timeoutMs: 5_000 });
  clients.push(client);
  return createHttpTransport({ http: client, prepareTimeoutMs: 5_000, decisionRetries: 2, ...options, batch: { requestsAwaitingMax: 1, ...options.batch } });
}

function send(type: Message['type'], id: string, timeoutMs?: number): SendEffect {
  const txId = asTxId(id);
  const message: CoordinatorMessage =
    type === 'prepare' ? { type, body: { txId, coordinator: 'http://c.test', participants: [URL], ops: [] } } : { type, body: { txId } };
  return { kind: 'send', to: 'p1', url: URL, message, ...(timeoutMs !== undefined && { timeoutMs }) };
}

const txIds = (n: number) => Array.from({ length: n }, (_, i) => `tx-1-${i + 1}`);

describe('batching transport', () => {
  it('sends messages handed over together in one request, and gives each its own reply', async () => {
    const received = participant((messages) =>
      HttpResponse.json({ replies: messages.map((m, i) => ({ txId: m.body.txId, status: 200, body: { vote: i % 2 === 0 ? 'yes' : 'no', reason: `r${i}` } })) }),
    );
    const metrics = new Metrics();
    const t = transport({ metrics });
    const answers = await Promise.all(txIds(6).map((id) => t.deliver(send('prepare', id))));
    expect(received.batches.map((b) => b.length)).toEqual([6]);
    expect(answers.map((a) => (a.type === 'prepareResult' ? `${a.txId}:${a.vote}:${a.reason ?? ''}` : a.type))).toEqual([
      'tx-1-1:yes:r0',
      'tx-1-2:no:r1',
      'tx-1-3:yes:r2',
      'tx-1-4:no:r3',
      'tx-1-5:yes:r4',
      'tx-1-6:no:r5',
    ]);
    expect(await metrics.get('coordinator_participant_requests_total', { mode: 'batch' })).toBe(1);
    expect(await metrics.get('coordinator_participant_messages_total', { mode: 'batch' })).toBe(6);
  });

  it('sends messages that arrive while a request is in flight together in the next one', async () => {
    const { received, release } = holdingFirstRequest();
    const t = transport();
    const first = t.deliver(send('prepare', 'tx-1-1'));
    // The first request is out (and held) once the fake has seen it.
    await expect.poll(() => received.batches.length).toBe(1);
    const rest = txIds(5).slice(1).map((id) => t.deliver(send('prepare', id)));
    release();
    const answers = await Promise.all([first, ...rest]);
    expect(received.batches.map((b) => b.map((m) => m.body.txId))).toEqual([['tx-1-1'], ['tx-1-2', 'tx-1-3', 'tx-1-4', 'tx-1-5']]);
    expect(answers.every((a) => a.type === 'prepareResult' && a.vote === 'yes')).toBe(true);
  });

  it('sends the messages of one event-loop turn together, though separate steps handed them over', async () => {
    const received = participant();
    const metrics = new Metrics();
    const t = transport({ metrics });
    const first = t.deliver(send('prepare', 'tx-1-1'));
    // Later microtasks of the same turn: another core step (another client request read in the same poll phase).
    for (let i = 0; i < 3; i++) await Promise.resolve();
    const second = t.deliver(send('prepare', 'tx-1-2'));
    // An idle participant's message does not wait for a later turn: it has left by the end of this one.
    await new Promise((resolve) => setImmediate(resolve));
    expect(await metrics.get('coordinator_participant_requests_total', { mode: 'batch' })).toBe(1);
    const answers = await Promise.all([first, second]);
    expect(received.batches.map((b) => b.map((m) => m.body.txId))).toEqual([['tx-1-1', 'tx-1-2']]);
    expect(answers.every((a) => a.type === 'prepareResult' && a.vote === 'yes')).toBe(true);
  });

  it('splits a batch larger than the bounds: messages, then bytes', async () => {
    const received = participant();
    const t = transport({ batch: { batchMessagesMax: 4 } });
    const answers = await Promise.all(txIds(10).map((id) => t.deliver(send('commit', id))));
    expect(received.batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(received.batches.flat().map((m) => m.body.txId)).toEqual(txIds(10));
    expect(answers.every((a) => a.type === 'decisionAcked' && a.heuristic === undefined)).toBe(true);

    const bySize = participant();
    const oneMessageBytes = JSON.stringify({ type: 'commit', body: { txId: 'tx-1-10' } }).length;
    const small = transport({ batch: { batchBytesMax: 3 * (oneMessageBytes + 1) } });
    await Promise.all(txIds(10).map((id) => small.deliver(send('commit', id))));
    expect(bySize.batches.map((b) => b.length)).toEqual([3, 3, 3, 1]);
  });

  it('fails every message of a batch that got no answer (the connection dropped)', async () => {
    participant(() => HttpResponse.error());
    const t = transport({ decisionRetries: 0 });
    const answers = await Promise.all([t.deliver(send('prepare', 'tx-1-1')), t.deliver(send('abort', 'tx-1-2'))]);
    expect(answers).toEqual([
      expect.objectContaining({ type: 'prepareFailed', txId: 'tx-1-1', error: 'reset' }),
      expect.objectContaining({ type: 'decisionFailed', txId: 'tx-1-2', error: 'reset' }),
    ]);
  });

  it('fails every message of a half-answered batch: replies cannot be matched to messages', async () => {
    participant((messages) => HttpResponse.json({ replies: messages.slice(0, 2).map(okReply) }));
    const t = transport();
    const answers = await Promise.all(txIds(4).map((id) => t.deliver(send('prepare', id))));
    for (const a of answers) expect(a).toMatchObject({ type: 'prepareFailed', error: 'server-error', message: expect.stringMatching(/2 replies for 4 messages/) });
  });

  it('fails every message of a batch answered out of order, rather than hand a vote to the wrong transaction', async () => {
    participant((messages) =>
      HttpResponse.json({ replies: [...messages].reverse().map((m) => ({ txId: m.body.txId, status: 200, body: { vote: m.body.txId === 'tx-1-1' ? 'no' : 'yes' } })) }),
    );
    const t = transport();
    const answers = await Promise.all(txIds(3).map((id) => t.deliver(send('prepare', id))));
    for (const a of answers) expect(a).toMatchObject({ type: 'prepareFailed', error: 'server-error', message: expect.stringMatching(/out of order/) });
  });

  it('fails only the message whose reply is unreadable', async () => {
    participant((messages) => HttpResponse.json({ replies: messages.map((m, i) => (i === 1 ? { txId: m.body.txId, status: 'ok' } : okReply(m))) }));
    const t = transport();
    const answers = await Promise.all(txIds(3).map((id) => t.deliver(send('prepare', id))));
    expect(answers.map((a) => a.type)).toEqual(['prepareResult', 'prepareFailed', 'prepareResult']);
    expect(answers[1]).toMatchObject({ error: 'server-error' });
  });

  it("maps each message's own 4xx/5xx/409 reply as its single route's answer would be", async () => {
    const own: Record<string, Omit<Reply, 'txId'>> = {
      'tx-1-1': { status: 400, body: { error: { code: 'bad_request', message: 'bad op' } } },
      'tx-1-2': { status: 503, body: { error: { code: 'unavailable', message: 'busy' } } },
      'tx-1-3': { status: 409, body: { error: { code: 'conflict', message: 'settled by hand' } } },
    };
    participant((messages) => HttpResponse.json({ replies: messages.map((m) => ({ txId: m.body.txId, ...own[m.body.txId] })) }));
    const t = transport({ decisionRetries: 0 });
    const answers = await Promise.all([t.deliver(send('prepare', 'tx-1-1')), t.deliver(send('prepare', 'tx-1-2')), t.deliver(send('commit', 'tx-1-3'))]);
    expect(answers).toEqual([
      { type: 'prepareFailed', txId: 'tx-1-1', participant: 'p1', error: 'rejected', message: 'HTTP 400: bad op' },
      { type: 'prepareFailed', txId: 'tx-1-2', participant: 'p1', error: 'server-error', message: 'HTTP 503: busy' },
      { type: 'decisionAcked', txId: 'tx-1-3', participant: 'p1', heuristic: 'aborted' },
    ]);
  });

  it('never reads a status of the whole batch as one message\'s answer: a 409 there is no heuristic', async () => {
    participant(() => HttpResponse.json({ error: { code: 'conflict', message: 'odd proxy' } }, { status: 409 }));
    const t = transport();
    const answers = await Promise.all([t.deliver(send('commit', 'tx-1-1')), t.deliver(send('prepare', 'tx-1-2'))]);
    expect(answers).toEqual([
      expect.objectContaining({ type: 'decisionFailed', error: 'rejected', message: expect.stringMatching(/batch was refused: HTTP 409/) }),
      expect.objectContaining({ type: 'prepareFailed', error: 'rejected' }),
    ]);
  });

  it('retries a commit on its own: its batch-mate acked at once is not sent again', async () => {
    const received = participant((messages, nth) =>
      HttpResponse.json({
        replies: messages.map((m) =>
          nth === 1 && m.body.txId === 'tx-1-2' ? { txId: m.body.txId, status: 503, body: { error: { code: 'unavailable', message: 'busy' } } } : okReply(m),
        ),
      }),
    );
    const t = transport({ decisionRetries: 2 });
    const answers = await Promise.all([t.deliver(send('commit', 'tx-1-1')), t.deliver(send('commit', 'tx-1-2'))]);
    expect(answers.map((a) => a.type)).toEqual(['decisionAcked', 'decisionAcked']);
    expect(received.batches.map((b) => b.map((m) => m.body.txId))).toEqual([['tx-1-1', 'tx-1-2'], ['tx-1-2']]);
  });

  it('keeps each prepare to its own timeout inside a batch', async () => {
    let shortAnswered!: () => void;
    const shortDone = new Promise<void>((r) => (shortAnswered = r));
    participant(async (messages) => {
      // Held until the short prepare has failed on its own timeout: no race with the clock.
      await shortDone;
      return HttpResponse.json({ replies: messages.map(okReply) });
    });
    const t = transport();
    const short = t.deliver(send('prepare', 'tx-1-1', 30)).finally(shortAnswered);
    const long = t.deliver(send('prepare', 'tx-1-2', 20_000));
    expect(await short).toMatchObject({ type: 'prepareFailed', txId: 'tx-1-1', error: 'timeout' });
    expect(await long).toMatchObject({ type: 'prepareResult', txId: 'tx-1-2', vote: 'yes' });
  });

  it("does not count a message's wait in the lane's queue against its own timeout", async () => {
    // A restarted coordinator hands over thousands of decisions at once; counted from the handover,
    // those deep in the queue timed out before they were ever sent, and were sent again and again.
    const queuedTimeoutMs = 1_000;
    const { received, release } = holdingFirstRequest();
    const t = transport();
    const first = t.deliver(send('prepare', 'tx-1-1', 60_000));
    await expect.poll(() => received.batches.length).toBe(1);
    let queuedSettled = false;
    const queued = t.deliver(send('prepare', 'tx-1-2', queuedTimeoutMs)).finally(() => (queuedSettled = true));
    // Longer in the queue than its timeout (the one slot is held), then the slot frees.
    await new Promise((r) => setTimeout(r, queuedTimeoutMs * 1.5));
    expect(queuedSettled).toBe(false);
    release();
    expect(await first).toMatchObject({ type: 'prepareResult', txId: 'tx-1-1' });
    expect(await queued).toMatchObject({ type: 'prepareResult', txId: 'tx-1-2', vote: 'yes' });
    expect(received.batches.map((b) => b.map((m) => m.body.txId))).toEqual([['tx-1-1'], ['tx-1-2']]);
  });

  it('falls back to one request per message for a participant without the batch route (404)', async () => {
    const singles: string[] = [];
    const received = participant(() => HttpResponse.json({ error: { code: 'not_found', message: 'No route' } }, { status: 404 }));
    server.use(
      http.post(`${URL}/v1/2pc/prepare`, async ({ request }) => {
        singles.push(((await request.json()) as { txId: string }).txId);
        return HttpResponse.json({ vote: 'yes' });
      }),
    );
    const metrics = new Metrics();
    const t = transport({ metrics });
    const answers = await Promise.all(txIds(3).map((id) => t.deliver(send('prepare', id))));
    expect(answers.every((a) => a.type === 'prepareResult' && a.vote === 'yes')).toBe(true);
    // Later messages go singly at once, without another batch first.
    expect(await t.deliver(send('prepare', 'tx-1-4'))).toMatchObject({ type: 'prepareResult' });
    expect(received.batches).toHaveLength(1);
    expect(singles.sort()).toEqual(['tx-1-1', 'tx-1-2', 'tx-1-3', 'tx-1-4']);
    expect(await metrics.get('coordinator_participant_requests_total', { mode: 'single' })).toBe(4);
  });

  it('fails a message at once, unsent, when too many already wait for the participant', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const received = participant(async (messages) => {
      await held;
      return HttpResponse.json({ replies: messages.map(okReply) });
    });
    const t = transport({ batch: { queuedMessagesMax: 2 } });
    const first = t.deliver(send('prepare', 'tx-1-1'));
    await expect.poll(() => received.batches.length).toBe(1);
    const queued = [t.deliver(send('prepare', 'tx-1-2')), t.deliver(send('prepare', 'tx-1-3'))];
    expect(await t.deliver(send('prepare', 'tx-1-4'))).toMatchObject({ type: 'prepareFailed', error: 'unreachable', message: expect.stringMatching(/not sent/) });
    release();
    expect((await Promise.all([first, ...queued])).map((a) => a.type)).toEqual(['prepareResult', 'prepareResult', 'prepareResult']);
  });

  it('sends one request per message with batching off', async () => {
    const received = participant();
    const singles: string[] = [];
    server.use(
      http.post(`${URL}/v1/2pc/commit`, async ({ request }) => {
        const { txId } = (await request.json()) as { txId: string };
        singles.push(txId);
        return HttpResponse.json({ txId, state: 'committed' });
      }),
    );
    const t = transport({ batching: false });
    await Promise.all(txIds(3).map((id) => t.deliver(send('commit', id))));
    expect(received.batches).toEqual([]);
    expect(singles.sort()).toEqual(txIds(3));
  });
});

describe('a sender whose term ends (mayLeave)', () => {
  it('fails a message queued behind a busy request unsent once it may no longer send, and sends nothing more', async () => {
    const { received, release } = holdingFirstRequest();
    let inTerm = true;
    const t = transport({ mayLeave: () => inTerm });
    const first = t.deliver(send('prepare', 'tx-1-1'));
    await expect.poll(() => received.batches.length).toBe(1);
    // Handed over in the term, queued behind the held request; the term ends before they leave.
    const queued = [t.deliver(send('prepare', 'tx-1-2')), t.deliver(send('commit', 'tx-1-3'))];
    inTerm = false;
    release();
    expect(await first).toMatchObject({ type: 'prepareResult', vote: 'yes' });
    expect(await Promise.all(queued)).toEqual([
      expect.objectContaining({ type: 'prepareFailed', txId: 'tx-1-2', error: 'rejected', message: 'not sent: this coordinator no longer leads its group' }),
      // A commit is retried on other failures; this one is final, and no retry leaves either.
      expect.objectContaining({ type: 'decisionFailed', txId: 'tx-1-3', error: 'rejected' }),
    ]);
    expect(received.batches.map((b) => b.map((m) => m.body.txId))).toEqual([['tx-1-1']]);
  });

  it('without batching, sends no request at all once it may no longer send', async () => {
    // No handler: a request that left would fail as unhandled, not as rejected.
    const t = transport({ batching: false, mayLeave: () => false });
    expect(await t.deliver(send('abort', 'tx-1-1'))).toEqual(expect.objectContaining({ type: 'decisionFailed', txId: 'tx-1-1', error: 'rejected' }));
  });
});
