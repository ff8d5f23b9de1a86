/**
 * Outcome inquiries to the coordinator, batched (participant/runtime/inquiries.ts),
 * against a real HTTP server on 127.0.0.1 standing in for the coordinator's
 * POST /v1/outcomes: ids share requests up to the batch bound, each id gets its
 * own answer, a backlog of full batches goes without waiting the interval
 * meant for gathering and two requests at a time, and an id no longer in
 * doubt is left out.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { OutcomeInquiries, type InquiryAnswer } from '../../../participant/runtime/inquiries.ts';
import { createHttpClient } from '../../../shared/http/client.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { asTxId, type TxId } from '../../../shared/types.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/**
 * A coordinator stand-in: answers every id `committed`, and records the ids of each request and
 * the most requests it held at once. With `holdForPairs`, it holds a request until a second one is
 * open beside it (or `holdMsMax` passes, so a client that never sends a second one is still
 * answered), answering both together: the one way to see two in flight without timing anything.
 */
async function coordinator(options: { holdForPairs?: boolean } = {}): Promise<{ url: string; requests: string[][]; openMax: () => number }> {
  const holdMsMax = 1_000;
  const requests: string[][] = [];
  const open: (() => void)[] = [];
  let openMax = 0;
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += String(c)));
    req.on('end', () => {
      const { txIds } = JSON.parse(text) as { txIds: string[] };
      requests.push(txIds);
      let answered = false;
      const answer = () => {
        if (answered) return;
        answered = true;
        open.splice(open.indexOf(answer), 1);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ outcomes: Object.fromEntries(txIds.map((id) => [id, 'committed'])) }));
      };
      open.push(answer);
      openMax = Math.max(openMax, open.length);
      if (options.holdForPairs !== true) return answer();
      if (open.length >= 2) return [...open].forEach((a) => a());
      setTimeout(answer, holdMsMax).unref();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, openMax: () => openMax };
}

/** Asks about `ids` and resolves with the answers once `expected` of them came. */
function askAll(
  url: string,
  ids: readonly TxId[],
  expected: number,
  options: { inDoubt?: (txId: TxId) => boolean; counted?: (txIds: number) => void; requestIntervalMsMin?: number; requestsInFlightMax?: number } = {},
): Promise<InquiryAnswer[]> {
  const client = createHttpClient({ timeoutMs: 10_000 });
  closers.push(async () => client.close());
  const answers: InquiryAnswer[] = [];
  return new Promise((resolve) => {
    const inquiries = new OutcomeInquiries({
      http: client,
      coordinatorUrl: url,
      timeoutMs: 10_000,
      logger: silentLogger(),
      batchTxsMax: 256,
      requestIntervalMsMin: options.requestIntervalMsMin ?? 10,
      ...(options.inDoubt !== undefined && { inDoubt: options.inDoubt }),
      ...(options.counted !== undefined && { counted: options.counted }),
      ...(options.requestsInFlightMax !== undefined && { requestsInFlightMax: options.requestsInFlightMax }),
      answer: (a) => {
        answers.push(a);
        if (answers.length === expected) resolve(answers);
      },
    });
    closers.push(async () => inquiries.stop());
    for (const id of ids) inquiries.enqueue(id);
  });
}

const idsUpTo = (n: number): TxId[] => Array.from({ length: n }, (_, i) => asTxId(`tx-1-${i + 1}`));

describe('outcome inquiries', () => {
  it('counts the ids of each request as it leaves, and none of those left out', async () => {
    const c = await coordinator();
    const ids = idsUpTo(300);
    const settled = new Set(ids.slice(0, 10));
    const counts: number[] = [];
    await askAll(c.url, ids, 290, { inDoubt: (id) => !settled.has(id), counted: (n) => counts.push(n) });
    expect(counts).toEqual(c.requests.map((r) => r.length));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(290);
  });

  it('sends a backlog of full batches at once, without the gathering interval', async () => {
    const c = await coordinator();
    const client = createHttpClient({ timeoutMs: 10_000 });
    closers.push(async () => client.close());
    const answers: InquiryAnswer[] = [];
    let allAnswered!: () => void;
    const done = new Promise<void>((r) => (allAnswered = r));
    const ids: TxId[] = Array.from({ length: 512 }, (_, i) => asTxId(`tx-1-${i + 1}`));
    const inquiries = new OutcomeInquiries({
      http: client,
      coordinatorUrl: c.url,
      timeoutMs: 10_000,
      logger: silentLogger(),
      batchTxsMax: 256,
      // Far longer than the test may take: were full batches to wait for it, no answer would come.
      requestIntervalMsMin: 3_600_000,
      answer: (a) => {
        answers.push(a);
        if (answers.length === ids.length) allAnswered();
      },
    });
    closers.push(async () => inquiries.stop());
    for (const id of ids) inquiries.enqueue(id);
    await done;
    expect(c.requests.map((r) => r.length)).toEqual([256, 256]);
    // Two requests may be in flight at once, so they may arrive in either order.
    expect(c.requests.flat().sort()).toEqual([...ids].sort());
    expect(answers.every((a) => a.kind === 'learned' && a.outcome === 'committed')).toBe(true);
    expect(new Set(answers.map((a) => a.txId)).size).toBe(512);
  });

  it('keeps requestsInFlightMax requests in flight while full batches wait, never more, and one by default', async () => {
    const c = await coordinator({ holdForPairs: true });
    const ids = idsUpTo(1_024);
    const answers = await askAll(c.url, ids, ids.length, { requestsInFlightMax: 2 });
    expect(c.openMax()).toBe(2);
    expect(c.requests.map((r) => r.length)).toEqual([256, 256, 256, 256]);
    expect(new Set(answers.map((a) => a.txId)).size).toBe(ids.length);
    const alone = await coordinator({ holdForPairs: true });
    await askAll(alone.url, ids, ids.length);
    expect(alone.openMax()).toBe(1);
  });

  it('sends what does not fill a batch with one request, the one in flight before it answered first', async () => {
    const c = await coordinator({ holdForPairs: true });
    const ids = idsUpTo(300);
    await askAll(c.url, ids, ids.length, { requestsInFlightMax: 2 });
    // The 44 past the first full batch did not go beside it: a second request is for a backlog only.
    expect(c.requests.map((r) => r.length)).toEqual([256, 44]);
    expect(c.openMax()).toBe(1);
  });

  it('leaves out an id no longer in doubt when its request is made up, and answers it nothing', async () => {
    const c = await coordinator();
    const ids = idsUpTo(512);
    // Every odd-numbered transaction settled (its decision arrived) while its inquiry waited.
    const settled = new Set(ids.filter((_, i) => i % 2 === 0));
    const answers = await askAll(c.url, ids, 256, { inDoubt: (id) => !settled.has(id) });
    const asked = c.requests.flat();
    expect(asked).toHaveLength(256);
    expect(asked.some((id) => settled.has(asTxId(id)))).toBe(false);
    expect(answers.map((a) => a.txId).sort()).toEqual(ids.filter((id) => !settled.has(id)).sort());
  });
});
