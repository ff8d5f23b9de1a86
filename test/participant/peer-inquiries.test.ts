/**
 * Peer inquiries, batched (issue 12): `POST /v1/2pc/inquiries` on a real
 * participant answers each id as the single inquiry route does and refuses bad
 * input whole, before the core sees any of it; and a participant with many
 * transactions in doubt and its coordinator gone asks its peer in a few
 * batched requests instead of one per transaction, falling back to the single
 * route when the peer answers 404 (an older peer, or `--no-batching`).
 *
 * The peer sits behind a counting forwarder on 127.0.0.1, so the requests are
 * counted on the wire, not inferred.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PeerInquiries, type PeerAnswer } from '../../participant/runtime/peer-inquiries.ts';
import { createHttpClient } from '../../shared/http/client.ts';
import { silentLogger } from '../../shared/logger.ts';
import { PEER_INQUIRIES_BATCH_MAX } from '../../shared/schemas.ts';
import { asTxId, type TxId } from '../../shared/types.ts';
import { Cleanup, deadUrl, eventually, json, participant, stubCoordinator } from './fixtures.ts';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const prepareBody = (txId: string, coordinator: string, participants: string[]) => ({
  txId,
  coordinator,
  participants,
  ops: [{ op: 'put', key: `k-${txId}`, value: 1 }],
});

/** Forwards every request to `target` and records `METHOD path` of each. */
async function countingForwarder(target: string): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const out = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.add(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    agent.destroy();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

describe('POST /v1/2pc/inquiries', () => {
  it('answers each id as the single inquiry route does: prepared, and a never-voted id aborted for good', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url });
    expect((await json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-1', coord.url, [p.url]))).body).toEqual({ vote: 'yes' });

    const { status, body } = await json<{ states: Record<string, unknown> }>('POST', `${p.url}/v1/2pc/inquiries`, { txIds: ['tx-1-1', 'tx-1-2', 'tx-1-2'] });
    expect(status).toBe(200);
    expect(body.states).toEqual({
      'tx-1-1': { txId: 'tx-1-1', state: 'prepared' },
      'tx-1-2': { txId: 'tx-1-2', state: 'aborted' },
    });
    // The same answers the single route gives, and the promise holds: a late prepare votes no.
    expect((await json('POST', `${p.url}/v1/2pc/transactions/tx-1-1/inquiry`, {})).body).toEqual(body.states['tx-1-1']);
    expect((await json('POST', `${p.url}/v1/2pc/transactions/tx-1-2/inquiry`, {})).body).toEqual(body.states['tx-1-2']);
    expect((await json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-2', coord.url, [p.url]))).body).toMatchObject({ vote: 'no' });
  });

  it('refuses bad input whole with a 400 naming the problem, and promises nothing for any id in it', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url });
    const tooMany = Array.from({ length: PEER_INQUIRIES_BATCH_MAX + 1 }, (_, i) => `tx-2-${i + 1}`);
    const bad: unknown[] = [
      {},
      { txIds: [] },
      { txIds: tooMany },
      { txIds: ['tx-3-1', 'not an id'] },
      { txIds: ['tx-3-1'], extra: true },
      { txIds: 'tx-3-1' },
      '[1,2',
    ];
    for (const body of bad) {
      const res = await json<{ error?: { code?: string; message?: string } }>('POST', `${p.url}/v1/2pc/inquiries`, body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.body.error).toMatchObject({ code: expect.any(String) as unknown, message: expect.any(String) as unknown });
    }
    // Nothing reached the core: the well-formed ids in refused requests were not aborted here.
    expect((await json('GET', `${p.url}/v1/2pc/transactions/tx-3-1`)).body).toMatchObject({ state: 'unknown' });
    expect((await json('GET', `${p.url}/v1/2pc/transactions/tx-2-1`)).body).toMatchObject({ state: 'unknown' });
    // The bound itself is accepted.
    const full = await json<{ states: Record<string, unknown> }>('POST', `${p.url}/v1/2pc/inquiries`, { txIds: tooMany.slice(0, PEER_INQUIRIES_BATCH_MAX) });
    expect(full.status).toBe(200);
    expect(Object.keys(full.body.states)).toHaveLength(PEER_INQUIRIES_BATCH_MAX);
  });

  it('is absent on a participant run without batching', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url, batching: false });
    expect((await json('POST', `${p.url}/v1/2pc/inquiries`, { txIds: ['tx-1-1'] })).status).toBe(404);
  });
});

/**
 * `count` transactions prepared at p1 naming the peer (behind the forwarder) and a coordinator that
 * is gone; the peer never voted on any, so each inquiry it answers aborts that transaction at p1.
 */
async function inDoubtAgainstPeer(count: number, peerOptions: { batching?: boolean }) {
  const coordGone = await deadUrl();
  const core = { decisionWaitMs: 50, inquiryBackoffBaseMs: 50, inquiryBackoffMaxMs: 200 };
  const p2 = await participant(cleanup, { coordinatorUrl: coordGone, core, ...peerOptions });
  const peer = await countingForwarder(p2.url);
  const p1 = await participant(cleanup, { coordinatorUrl: coordGone, core, peers: [peer.url] });
  const ids = Array.from({ length: count }, (_, i) => `tx-1-${i + 1}`);
  for (let i = 0; i < ids.length; i += 256) {
    const messages = ids.slice(i, i + 256).map((txId) => ({ type: 'prepare', body: prepareBody(txId, coordGone, [p1.url, peer.url]) }));
    const res = await json<{ replies: { body: unknown }[] }>('POST', `${p1.url}/v1/2pc/batch`, { messages });
    expect(res.body.replies.every((r) => (r.body as { vote?: string }).vote === 'yes')).toBe(true);
  }
  await eventually(
    `p1 aborts all ${count}`,
    async () => {
      const { body } = await json<{ transactions: unknown[] }>('GET', `${p1.url}/v1/2pc/transactions?state=prepared`);
      return body.transactions.length === 0 ? true : undefined;
    },
    60_000,
  );
  for (const txId of [ids[0] as string, ids[ids.length - 1] as string]) {
    expect((await json('GET', `${p1.url}/v1/2pc/transactions/${txId}`)).body).toMatchObject({ state: 'aborted' });
    expect((await json('GET', `${p2.url}/v1/2pc/transactions/${txId}`)).body).toMatchObject({ state: 'aborted' });
  }
  return { requests: peer.requests, ids };
}

describe('a participant asking its peer about many in-doubt transactions', () => {
  it('asks in a few batched requests, not one per transaction', async () => {
    const { requests, ids } = await inDoubtAgainstPeer(600, {});
    const batched = requests.filter((r) => r === 'POST /v1/2pc/inquiries');
    const single = requests.filter((r) => r.endsWith('/inquiry'));
    expect(single).toEqual([]);
    // At least ceil(600/256) requests; one per transaction would be 600. The inquiry timers are
    // jittered, so how they group varies; a tenth of one-per-transaction is a bound with room.
    expect(batched.length).toBeGreaterThanOrEqual(Math.ceil(ids.length / PEER_INQUIRIES_BATCH_MAX));
    expect(batched.length).toBeLessThanOrEqual(ids.length / 10);
  });

  it('falls back to the single route once the peer answers 404, and still settles every transaction', async () => {
    const { requests, ids } = await inDoubtAgainstPeer(30, { batching: false });
    // One batched attempt learns the route is missing; every transaction is then asked alone.
    expect(requests.filter((r) => r === 'POST /v1/2pc/inquiries')).toHaveLength(1);
    const single = requests.filter((r) => r.endsWith('/inquiry'));
    expect(new Set(single)).toEqual(new Set(ids.map((id) => `POST /v1/2pc/transactions/${id}/inquiry`)));
  });
});

describe('the batched peer inquiries on their own', () => {
  it('leave out an id no longer in doubt when its request is made up, and answer it nothing', async () => {
    // A peer stand-in that says "prepared" for every id, recording the ids of each request.
    const asked: string[] = [];
    const server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += String(c)));
      req.on('end', () => {
        const { txIds } = JSON.parse(text) as { txIds: string[] };
        asked.push(...txIds);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ states: Object.fromEntries(txIds.map((txId) => [txId, { txId, state: 'prepared' }])) }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.add(() => new Promise((r) => server.close(() => r(undefined))));
    const client = createHttpClient({ timeoutMs: 10_000 });
    cleanup.add(async () => client.close());
    const ids: TxId[] = Array.from({ length: 512 }, (_, i) => asTxId(`tx-1-${i + 1}`));
    // Every odd-numbered transaction settled (its decision arrived) while its inquiry waited.
    const settled = new Set(ids.filter((_, i) => i % 2 === 0));
    const answers: [TxId, PeerAnswer][] = [];
    await new Promise<void>((resolve) => {
      const inquiries = new PeerInquiries({
        http: client,
        timeoutMs: 10_000,
        logger: silentLogger(),
        inDoubt: (id) => !settled.has(id),
        answer: (txId, _peer, answer) => {
          answers.push([txId, answer]);
          if (answers.length === ids.length - settled.size) resolve();
        },
      });
      cleanup.add(async () => inquiries.stop());
      for (const id of ids) inquiries.enqueue(id, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    });
    expect(asked).toHaveLength(256);
    expect(asked.some((id) => settled.has(asTxId(id)))).toBe(false);
    expect(answers.every(([txId, answer]) => !settled.has(txId) && answer === 'prepared')).toBe(true);
  });
});
