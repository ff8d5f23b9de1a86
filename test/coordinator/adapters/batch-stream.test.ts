/**
 * The batching transport against a participant that streams its batch answer
 * (`Accept: application/x-ndjson`): a real node:http server on 127.0.0.1, so
 * the lines really arrive one write at a time and a connection really drops
 * mid-answer. Each message is settled by its own line, as soon as it comes;
 * a stream cut short fails only the messages still without a line; a line that
 * names another transaction stops the reading and fails the rest.
 *
 * The fake holds each line until the test releases it, so nothing here depends
 * on timing: a message's answer is awaited, and a message still unanswered is
 * seen through a flag its promise sets.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpTransport, type Transport, type TransportAnswer } from '../../../coordinator/adapters/http-transport.ts';
import type { CoordinatorMessage, SendEffect } from '../../../coordinator/core/index.ts';
import { createHttpClient, type HttpClient } from '../../../shared/http/client.ts';
import { BATCH_STREAM_CONTENT_TYPE } from '../../../shared/schemas.ts';
import { asTxId } from '../../../shared/types.ts';
import { listenForTest } from '../../helpers/server.ts';

type Message = { type: 'prepare' | 'commit' | 'abort'; body: { txId: string } };

/** One batch request the fake holds open: its messages, and the response to write lines on. */
interface Held {
  readonly messages: Message[];
  readonly accept: string;
  readonly res: ServerResponse;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A participant whose batch route hands each request to the test, open, instead of answering it. */
async function participant(): Promise<{ url: string; next: () => Promise<Held> }> {
  const arrived: Held[] = [];
  const waiters: ((h: Held) => void)[] = [];
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += String(c)));
    req.on('end', () => {
      const held = { messages: (JSON.parse(text) as { messages: Message[] }).messages, accept: String(req.headers.accept ?? ''), res };
      const w = waiters.shift();
      if (w) w(held);
      else arrived.push(held);
    });
  });
  const url = await listenForTest(server, closers);
  return {
    url,
    next: () => {
      const h = arrived.shift();
      return h ? Promise.resolve(h) : new Promise((r) => waiters.push(r));
    },
  };
}

function transport(): Transport {
  const client: HttpClient = createHttpClient({ timeoutMs: 10_000 });
  closers.push(async () => client.close());
  return createHttpTransport({ http: client, prepareTimeoutMs: 10_000, decisionRetries: 0, batch: { requestsAwaitingMax: 1 } });
}

function prepare(url: string, id: string): SendEffect {
  const message: CoordinatorMessage = { type: 'prepare', body: { txId: asTxId(id), coordinator: 'http://c.test', participants: [url], ops: [] } };
  return { kind: 'send', to: 'p1', url, message };
}

/** A delivery whose answer, once it comes, is also visible synchronously (to check that it has NOT come). */
function tracked(p: Promise<TransportAnswer>): { readonly answer: Promise<TransportAnswer>; settled: () => boolean } {
  let done = false;
  const answer = p.then((a) => ((done = true), a));
  return { answer, settled: () => done };
}

const startStream = (res: ServerResponse) => res.writeHead(200, { 'content-type': BATCH_STREAM_CONTENT_TYPE });
const line = (res: ServerResponse, i: number, txId: string, vote: string) => res.write(`${JSON.stringify({ i, txId, status: 200, body: { vote } })}\n`);
const summary = (a: TransportAnswer) => (a.type === 'prepareResult' ? `${a.txId}:${a.vote}` : `${a.txId}:${a.type}:${'error' in a ? a.error : ''}`);

describe('batching transport, streamed answers', () => {
  it('asks for a streamed answer and settles each message on its own line, in the order the lines come', async () => {
    const p = await participant();
    const t = transport();
    const [a, b, c] = ['tx-1-1', 'tx-1-2', 'tx-1-3'].map((id) => tracked(t.deliver(prepare(p.url, id))));
    const held = await p.next();
    expect(held.accept).toContain(BATCH_STREAM_CONTENT_TYPE);
    expect(held.messages.map((m) => m.body.txId)).toEqual(['tx-1-1', 'tx-1-2', 'tx-1-3']);
    startStream(held.res);
    // The last message settles first; the first one is still waiting (a prepare in a lock wait).
    line(held.res, 2, 'tx-1-3', 'yes');
    expect(summary(await c!.answer)).toBe('tx-1-3:yes');
    line(held.res, 1, 'tx-1-2', 'no');
    expect(summary(await b!.answer)).toBe('tx-1-2:no');
    expect(a!.settled()).toBe(false);
    line(held.res, 0, 'tx-1-1', 'yes');
    held.res.end();
    expect(summary(await a!.answer)).toBe('tx-1-1:yes');
  });

  it('sends the next batch once the first has begun answering, while a message of it still waits', async () => {
    const p = await participant();
    const t = transport();
    const first = ['tx-1-1', 'tx-1-2'].map((id) => tracked(t.deliver(prepare(p.url, id))));
    const one = await p.next();
    // With one request awaiting its answer at most, these wait for the first to begin answering.
    const second = ['tx-1-3', 'tx-1-4'].map((id) => tracked(t.deliver(prepare(p.url, id))));
    startStream(one.res);
    line(one.res, 1, 'tx-1-2', 'yes');
    const two = await p.next();
    expect(two.messages.map((m) => m.body.txId)).toEqual(['tx-1-3', 'tx-1-4']);
    startStream(two.res);
    line(two.res, 0, 'tx-1-3', 'yes');
    line(two.res, 1, 'tx-1-4', 'yes');
    two.res.end();
    expect((await Promise.all(second.map((s) => s.answer))).map(summary)).toEqual(['tx-1-3:yes', 'tx-1-4:yes']);
    expect(first[0]!.settled()).toBe(false);
    line(one.res, 0, 'tx-1-1', 'yes');
    one.res.end();
    expect((await Promise.all(first.map((s) => s.answer))).map(summary)).toEqual(['tx-1-1:yes', 'tx-1-2:yes']);
  });

  it('fails only the messages without a line when the connection drops mid-answer', async () => {
    const p = await participant();
    const t = transport();
    const all = ['tx-1-1', 'tx-1-2', 'tx-1-3'].map((id) => tracked(t.deliver(prepare(p.url, id))));
    const held = await p.next();
    startStream(held.res);
    line(held.res, 1, 'tx-1-2', 'yes');
    expect(summary(await all[1]!.answer)).toBe('tx-1-2:yes');
    held.res.socket?.destroy();
    expect((await Promise.all(all.map((s) => s.answer))).map(summary)).toEqual(['tx-1-1:prepareFailed:reset', 'tx-1-2:yes', 'tx-1-3:prepareFailed:reset']);
  });

  it('fails the messages without a line when the answer ends without them', async () => {
    const p = await participant();
    const t = transport();
    const all = ['tx-1-1', 'tx-1-2'].map((id) => tracked(t.deliver(prepare(p.url, id))));
    const held = await p.next();
    startStream(held.res);
    line(held.res, 0, 'tx-1-1', 'yes');
    held.res.end();
    expect((await Promise.all(all.map((s) => s.answer))).map(summary)).toEqual(['tx-1-1:yes', 'tx-1-2:prepareFailed:server-error']);
  });

  it('stops trusting the stream at a line that names another transaction: the messages still open fail', async () => {
    const p = await participant();
    const t = transport();
    const all = ['tx-1-1', 'tx-1-2', 'tx-1-3'].map((id) => tracked(t.deliver(prepare(p.url, id))));
    const held = await p.next();
    startStream(held.res);
    line(held.res, 0, 'tx-1-1', 'yes');
    // Message 1's place, another transaction's vote: by position alone it would go to tx-1-2.
    line(held.res, 1, 'tx-1-3', 'yes');
    line(held.res, 2, 'tx-1-3', 'yes');
    held.res.end();
    const answers = await Promise.all(all.map((s) => s.answer));
    expect(answers.map(summary)).toEqual(['tx-1-1:yes', 'tx-1-2:prepareFailed:server-error', 'tx-1-3:prepareFailed:server-error']);
    expect(answers[1]).toMatchObject({ message: expect.stringContaining('names another transaction') });
  });

  it('reads a participant that answers the batch whole (JSON) as before', async () => {
    const p = await participant();
    const t = transport();
    const all = ['tx-1-1', 'tx-1-2'].map((id) => t.deliver(prepare(p.url, id)));
    const held = await p.next();
    held.res.writeHead(200, { 'content-type': 'application/json' });
    held.res.end(JSON.stringify({ replies: held.messages.map((m) => ({ txId: m.body.txId, status: 200, body: { vote: 'yes' } })) }));
    expect((await Promise.all(all)).map(summary)).toEqual(['tx-1-1:yes', 'tx-1-2:yes']);
  });
});
