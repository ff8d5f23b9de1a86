/**
 * Outcome inquiries to the coordinator, batched (participant/runtime/inquiries.ts),
 * against a real HTTP server on 127.0.0.1 standing in for the coordinator's
 * POST /v1/outcomes: ids share requests up to the batch bound, each id gets its
 * own answer, and a backlog of full batches goes without waiting the interval
 * meant for gathering.
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

/** A coordinator stand-in: answers every id `committed`, and records the ids of each request. */
async function coordinator(): Promise<{ url: string; requests: string[][] }> {
  const requests: string[][] = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += String(c)));
    req.on('end', () => {
      const { txIds } = JSON.parse(text) as { txIds: string[] };
      requests.push(txIds);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ outcomes: Object.fromEntries(txIds.map((id) => [id, 'committed'])) }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

describe('outcome inquiries', () => {
  it('sends a backlog of full batches at once, one request at a time, without the gathering interval', async () => {
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
    expect(c.requests.flat()).toEqual(ids);
    expect(answers.every((a) => a.kind === 'learned' && a.outcome === 'committed')).toBe(true);
    expect(new Set(answers.map((a) => a.txId)).size).toBe(512);
  });
});
