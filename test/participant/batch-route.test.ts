/**
 * POST /v1/2pc/batch on a real participant (real port, real WAL): each reply
 * is what the message's single route answers, bad input is refused per
 * envelope or per message without touching the WAL, a batch's forced records
 * share fdatasyncs, and `batching: false` leaves only the single routes.
 * Asked for a stream, it answers each message on its own line as soon as it
 * is settled, so a prepare in a lock wait holds back no other reply.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { participantCodec } from '../../participant/runtime/records.ts';
import { BATCH_MESSAGES_MAX, BATCH_STREAM_CONTENT_TYPE, batchLineSchema, type BatchLine } from '../../shared/schemas.ts';
import { openFileLog } from '../../wal/file-log.ts';
import { nodeFs, type WalFile, type WalFs } from '../../wal/fs.ts';
import type { Participant } from '../../participant/library.ts';
import { Cleanup, embeddedParticipant, json, participant, stubCoordinator } from './fixtures.ts';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

type Reply = { txId?: string; status: number; body: unknown };
type Message = { type: 'prepare' | 'commit' | 'abort'; body: Record<string, unknown> };

const prepare = (txId: string, coordinator: string, self: string, ops: unknown[], extra: object = {}): Message => ({
  type: 'prepare',
  body: { txId, coordinator, participants: [self], ops, ...extra },
});

async function walRecordCount(dir: string): Promise<number> {
  const { log, recovered } = await openFileLog(dir);
  await log.close();
  return recovered.entries.map((e) => participantCodec.decode(e.type, e.payload)).length + (recovered.checkpoint === undefined ? 0 : 1);
}

/**
 * A file system that counts file syncs: fdatasyncs by where they ran (libuv's thread pool, or
 * blocking the event loop) and fsyncs, over every file it opens.
 */
function countingSyncs(inner: WalFs): { fs: WalFs; pool: () => number; loop: () => number; syncs: () => number } {
  let pool = 0;
  let loop = 0;
  let fsyncs = 0;
  const wrap = (file: WalFile): WalFile =>
    Object.assign(Object.create(file) as WalFile, {
      datasync: () => {
        pool++;
        return file.datasync();
      },
      datasyncSync: () => {
        loop++;
        file.datasyncSync?.();
      },
      sync: () => {
        fsyncs++;
        return file.sync();
      },
    });
  return { fs: { ...inner, open: (path, mode) => inner.open(path, mode).then(wrap) }, pool: () => pool, loop: () => loop, syncs: () => pool + loop + fsyncs };
}

/** A batch posted with `Accept: application/x-ndjson`: its content type, and its lines read one at a time as they arrive. */
function streamedBatch(url: string, messages: Message[]): Promise<{ contentType: string; nextLine: () => Promise<BatchLine | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/v1/2pc/batch`, { method: 'POST', headers: { 'content-type': 'application/json', accept: BATCH_STREAM_CONTENT_TYPE } }, (res) => {
      res.setEncoding('utf8');
      const lines: string[] = [];
      let rest = '';
      let ended = false;
      let wake: (() => void) | undefined;
      res.on('data', (chunk: string) => {
        rest += chunk;
        const parts = rest.split('\n');
        rest = parts.pop() ?? '';
        lines.push(...parts.filter((l) => l !== ''));
        wake?.();
      });
      res.on('end', () => {
        ended = true;
        wake?.();
      });
      const nextLine = async (): Promise<BatchLine | undefined> => {
        while (lines.length === 0 && !ended) await new Promise<void>((r) => (wake = r));
        const l = lines.shift();
        // Each line is what the route table documents (participant/api.ts), checked by its schema.
        return l === undefined ? undefined : batchLineSchema.parse(JSON.parse(l));
      };
      resolve({ contentType: String(res.headers['content-type']), nextLine });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ messages }));
  });
}

describe('POST /v1/2pc/batch', () => {
  it('streams each reply as soon as its message settles: a prepare in a lock wait holds back no other', async () => {
    const coord = await stubCoordinator(cleanup);
    // A lock wait far longer than the test: the waiting prepare is answered only when the lock is released.
    const p = await participant(cleanup, { coordinatorUrl: coord.url, lockWaitMs: 60_000 });
    const holder = await json('POST', `${p.url}/v1/2pc/prepare`, prepare('tx-1-1', coord.url, p.url, [{ op: 'put', key: 'a', value: 1 }]).body);
    expect(holder.body).toEqual({ vote: 'yes' });
    const stream = await streamedBatch(p.url, [
      prepare('tx-1-2', coord.url, p.url, [{ op: 'put', key: 'a', value: 2 }]),
      prepare('tx-1-3', coord.url, p.url, [{ op: 'put', key: 'b', value: 3 }]),
      { type: 'commit', body: { txId: 'tx-9-9' } },
    ]);
    expect(stream.contentType).toContain(BATCH_STREAM_CONTENT_TYPE);
    // Messages 1 and 2 are answered while message 0 still waits for tx-1-1's lock on `a`.
    const early = [await stream.nextLine(), await stream.nextLine()].sort((x, y) => (x?.i ?? 0) - (y?.i ?? 0));
    expect(early).toEqual([
      { i: 1, txId: 'tx-1-3', status: 200, body: { vote: 'yes' } },
      { i: 2, txId: 'tx-9-9', status: 404, body: { error: { code: 'not_found', message: expect.any(String) } } },
    ]);
    expect((await json('GET', `${p.url}/v1/kv/a`)).body).toEqual({ key: 'a', lockedBy: 'tx-1-1' });
    // Releasing the lock lets the waiting prepare in; its line comes, and the answer ends.
    expect((await json('POST', `${p.url}/v1/2pc/commit`, { txId: 'tx-1-1' })).status).toBe(200);
    expect(await stream.nextLine()).toEqual({ i: 0, txId: 'tx-1-2', status: 200, body: { vote: 'yes' } });
    expect(await stream.nextLine()).toBeUndefined();
  });

  it('answers each message exactly as its single route answers it', async () => {
    const coord = await stubCoordinator(cleanup);
    const single = await participant(cleanup, { coordinatorUrl: coord.url });
    const batched = await participant(cleanup, { coordinatorUrl: coord.url });
    const messagesFor = (self: string): Message[] => [
      prepare('tx-1-1', coord.url, self, [{ op: 'put', key: 'a', value: 1 }]),
      prepare('tx-1-2', coord.url, self, [{ op: 'put', key: 'b', value: 2 }], { onePhase: true }),
      prepare('tx-1-3', coord.url, self, [{ op: 'add', key: 'c', amount: -5, min: 0 }]),
      { type: 'commit', body: { txId: 'tx-9-9' } },
      { type: 'abort', body: { txId: 'tx-1-4' } },
    ];
    const singles: Reply[] = [];
    for (const m of messagesFor(single.url)) singles.push({ txId: m.body.txId as string, ...(await json('POST', `${single.url}/v1/2pc/${m.type}`, m.body)) });
    const res = await json<{ replies: Reply[] }>('POST', `${batched.url}/v1/2pc/batch`, { messages: messagesFor(batched.url) });
    expect(res.status).toBe(200);
    expect(res.body.replies).toEqual(singles);
    // Not vacuous: the five answers differ from each other (yes, one-phase, no, 404, aborted).
    expect(singles.map((r) => r.status)).toEqual([200, 200, 200, 404, 200]);
    expect(singles.map((r) => r.body)).toEqual([
      { vote: 'yes' },
      { vote: 'yes', state: 'committed' },
      { vote: 'no', reason: expect.any(String) },
      { error: { code: 'not_found', message: expect.any(String) } },
      { txId: 'tx-1-4', state: 'aborted' },
    ]);
    // The batch did the work: tx-1-2 committed in one phase is readable.
    expect((await json('GET', `${batched.url}/v1/kv/b`)).body).toEqual({ key: 'b', value: 2 });
  });

  it('gives a malformed message its own 400 and still runs the others', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url });
    const res = await json<{ replies: Reply[] }>('POST', `${p.url}/v1/2pc/batch`, {
      messages: [
        prepare('tx-1-1', coord.url, p.url, [{ op: 'put', key: 'a', value: 1 }]),
        { type: 'commit', body: { txId: 5 } },
        { type: 'vote', body: {} },
        'commit',
        { type: 'abort', body: { txId: 'tx-1-1' }, extra: true },
        { type: 'abort', body: { txId: 'tx-1-9' } },
      ],
    });
    expect(res.status).toBe(200);
    const replies = res.body.replies;
    expect(replies.map((r) => r.status)).toEqual([200, 400, 400, 400, 400, 200]);
    expect(replies[1]?.body).toMatchObject({ error: { code: 'bad_request', message: expect.stringMatching(/messages\[1\]\.body\.txId/) } });
    expect(replies[2]?.body).toMatchObject({ error: { message: expect.stringMatching(/messages\[2\]\.type.*"prepare", "commit", "abort"/) } });
    expect(replies[4]?.body).toMatchObject({ error: { message: expect.stringMatching(/Unknown field `messages\[4\]\.extra`/) } });
    expect(replies[0]).toEqual({ txId: 'tx-1-1', status: 200, body: { vote: 'yes' } });
    expect(replies[5]).toEqual({ txId: 'tx-1-9', status: 200, body: { txId: 'tx-1-9', state: 'aborted' } });
    // The prepare ran; the bad abort beside it did not.
    expect((await json('GET', `${p.url}/v1/kv/a`)).body).toEqual({ key: 'a', lockedBy: 'tx-1-1' });
  });

  it('refuses a malformed envelope whole with a 400, and writes nothing to the WAL', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url });
    const one = prepare('tx-1-1', coord.url, p.url, [{ op: 'put', key: 'a', value: 1 }]);
    const cases: [unknown, RegExp][] = [
      ['{"messages":[', /Malformed JSON/],
      [{}, /Missing field `messages`/],
      [{ messages: [] }, /at least 1 items/],
      [{ messages: one }, /`messages` to be an array/],
      [{ messages: Array.from({ length: BATCH_MESSAGES_MAX + 1 }, () => one) }, /at most 256 items/],
      [{ messages: [one], replies: [] }, /Unknown field `replies`/],
      ['null', /to be an object/],
    ];
    for (const [body, message] of cases) {
      const r = await json<{ error: { code: string; message: string } }>('POST', `${p.url}/v1/2pc/batch`, body);
      expect({ body: JSON.stringify(body).slice(0, 40), status: r.status, code: r.body.error.code }).toEqual({ body: JSON.stringify(body).slice(0, 40), status: 400, code: 'bad_request' });
      expect(r.body.error.message).toMatch(message);
    }
    expect((await json('GET', `${p.url}/v1/kv/a`)).body).toEqual({ key: 'a' });
    await p.close();
    expect(await walRecordCount(p.dataDir)).toBe(0);
  });

  it("shares fdatasyncs among a batch's forced records (the WAL's group commit)", async () => {
    const coord = await stubCoordinator(cleanup);
    const counting = countingSyncs(nodeFs);
    const fatal: unknown[] = [];
    const listening = await embeddedParticipant(cleanup, { coordinatorUrl: coord.url, wal: { fs: counting.fs }, onFatal: (e) => fatal.push(e) });

    const count = 64;
    const ids = Array.from({ length: count }, (_, i) => `tx-1-${i + 1}`);
    const before = counting.syncs();
    const prepared = await json<{ replies: Reply[] }>('POST', `${listening.url}/v1/2pc/batch`, {
      messages: ids.map((id) => prepare(id, coord.url, listening.url, [{ op: 'put', key: id, value: 1 }])),
    });
    const committed = await json<{ replies: Reply[] }>('POST', `${listening.url}/v1/2pc/batch`, { messages: ids.map((txId) => ({ type: 'commit', body: { txId } })) });
    const syncs = counting.syncs() - before;
    expect(prepared.body.replies.every((r) => r.status === 200 && (r.body as { vote: string }).vote === 'yes')).toBe(true);
    expect(committed.body.replies.every((r) => r.status === 200)).toBe(true);
    // 128 forced records (PREPARED, COMMITTED); one request per record would need 128 syncs.
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThan(count / 4);
    expect(fatal).toEqual([]);
  });

  it("keeps an embedded participant's fdatasyncs off its host's event loop unless the host asks", async () => {
    const coord = await stubCoordinator(cleanup);
    const prepares = async (url: string, prefix: string) => {
      for (let i = 1; i <= 3; i++) {
        const r = await json<{ replies: Reply[] }>('POST', `${url}/v1/2pc/batch`, { messages: [prepare(`tx-1-${prefix}${i}`, coord.url, url, [{ op: 'put', key: `${prefix}${i}`, value: 1 }])] });
        expect(r.body.replies[0]?.status).toBe(200);
      }
    };
    const embedded = countingSyncs(nodeFs);
    const quiet = await embeddedParticipant(cleanup, { coordinatorUrl: coord.url, wal: { fs: embedded.fs } });
    await prepares(quiet.url, 'a');
    expect(embedded.pool()).toBeGreaterThanOrEqual(3);
    expect(embedded.loop()).toBe(0);
    const asked = countingSyncs(nodeFs);
    const blocking = await embeddedParticipant(cleanup, { coordinatorUrl: coord.url, wal: { fs: asked.fs, blockingSyncMsMax: 10 } });
    await prepares(blocking.url, 'b');
    // The log's first batch sync blocks whatever the disk's speed; later ones do while they average under 10 ms.
    expect(asked.loop()).toBeGreaterThanOrEqual(1);
    // The metrics tell an operator which way the batch syncs went: every one of them, and those that blocked.
    const counted = async ({ participant }: { participant: Participant }) => ({
      all: await participant.metrics.get('wal_fsyncs_total'),
      blocking: await participant.metrics.get('wal_fsyncs_blocking_total'),
    });
    expect(await counted(quiet)).toEqual({ all: embedded.pool(), blocking: 0 });
    expect(await counted(blocking)).toEqual({ all: asked.pool() + asked.loop(), blocking: asked.loop() });
  });

  it('is not served with batching off: a 404, and the single routes still work', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url, batching: false });
    const r = await json<{ error: { code: string } }>('POST', `${p.url}/v1/2pc/batch`, { messages: [{ type: 'abort', body: { txId: 'tx-1-1' } }] });
    expect(r).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await json('POST', `${p.url}/v1/2pc/abort`, { txId: 'tx-1-1' })).toEqual({ status: 200, body: { txId: 'tx-1-1', state: 'aborted' } });
  });

  it('needs the token like every /v1/2pc route, and counts requests and messages in /metrics', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url, token: 't0k' });
    const body = { messages: [{ type: 'abort', body: { txId: 'tx-1-1' } }, { type: 'abort', body: { txId: 'tx-1-2' } }] };
    expect((await json('POST', `${p.url}/v1/2pc/batch`, body)).status).toBe(401);
    const auth = { authorization: 'Bearer t0k' };
    expect((await json('POST', `${p.url}/v1/2pc/batch`, body, auth)).status).toBe(200);
    expect((await json('POST', `${p.url}/v1/2pc/abort`, { txId: 'tx-1-3' }, auth)).status).toBe(200);
    const metrics = await (await fetch(`${p.url}/metrics`, { headers: auth })).text();
    expect(metrics).toMatch(/twopc_participant_2pc_requests_total\{route="batch"\} 1\n/);
    expect(metrics).toMatch(/twopc_participant_2pc_requests_total\{route="abort"\} 1\n/);
    expect(metrics).toMatch(/twopc_participant_2pc_messages_total\{type="abort"\} 3\n/);
  });
});
