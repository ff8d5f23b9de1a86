/**
 * The standalone participant on a real port with a real WAL: the contract's
 * routes, bad input, recovery from a crash image, cooperative termination
 * between two real participants, and heuristics.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import { participantCodec } from '../../participant/runtime/records.ts';
import { freePorts } from '../../scenarios/ports.ts';
import { Cleanup, deadUrl, eventually, json, participant, stubCoordinator, tempDir } from './fixtures.ts';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const prepareBody = (txId: string, coordinator: string, participants: string[], ops: unknown[], extra: object = {}) => ({
  txId,
  coordinator,
  participants,
  ops,
  ...extra,
});

async function walRecords(dir: string) {
  const { log, recovered } = await openFileLog(dir);
  await log.close();
  return { checkpoint: recovered.checkpoint, records: recovered.entries.map((e) => participantCodec.decode(e.type, e.payload)) };
}

describe('the standalone participant', () => {
  it('prepares, shows the lock, commits, and answers duplicates the same', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url });
    const ops = [{ op: 'add', key: 'acct', amount: 7 }];

    expect(await json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-1', coord.url, [p.url], ops))).toEqual({ status: 200, body: { vote: 'yes' } });
    expect((await json('GET', `${p.url}/v1/kv/acct`)).body).toEqual({ key: 'acct', lockedBy: 'tx-1-1' });
    const listed = await json<{ transactions: { txId: string; keys: string[]; blockedMs: number }[] }>('GET', `${p.url}/v1/2pc/transactions?state=prepared`);
    expect(listed.body.transactions).toEqual([expect.objectContaining({ txId: 'tx-1-1', keys: ['acct'], state: 'prepared' })]);

    expect(await json('POST', `${p.url}/v1/2pc/commit`, { txId: 'tx-1-1' })).toEqual({ status: 200, body: { txId: 'tx-1-1', state: 'committed' } });
    expect(await json('POST', `${p.url}/v1/2pc/commit`, { txId: 'tx-1-1' })).toEqual({ status: 200, body: { txId: 'tx-1-1', state: 'committed' } });
    expect((await json('POST', `${p.url}/v1/2pc/abort`, { txId: 'tx-1-1' })).status).toBe(409);
    expect((await json('GET', `${p.url}/v1/kv/acct`)).body).toEqual({ key: 'acct', value: 7 });
    expect((await json('GET', `${p.url}/v1/kv`)).body).toEqual({ entries: { acct: 7 } });
    expect((await json('GET', `${p.url}/v1/2pc/transactions/tx-1-1`)).body).toMatchObject({ txId: 'tx-1-1', state: 'committed' });
    expect((await json('GET', `${p.url}/v1/2pc/transactions/tx-9-9`)).body).toEqual({ txId: 'tx-9-9', state: 'unknown' });
    expect((await json('POST', `${p.url}/v1/2pc/commit`, { txId: 'tx-9-9' })).status).toBe(404);

    await p.close();
    const { checkpoint, records } = await walRecords(p.dataDir);
    // A clean stop checkpoints; what it covered is in the snapshot, not the records.
    expect(checkpoint?.lsn).toBe(2);
    expect(records).toEqual([]);
  });

  it('votes no naming the holder after the lock wait', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url, lockWaitMs: 100 });
    await json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-1', coord.url, [p.url], [{ op: 'put', key: 'k', value: 1 }]));
    const second = await json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-2', coord.url, [p.url], [{ op: 'put', key: 'k', value: 2 }]));
    expect(second).toEqual({ status: 200, body: { vote: 'no', reason: 'key k locked by tx-1-1' } });
    expect((await json('GET', `${p.url}/v1/kv/k`)).body).toEqual({ key: 'k', lockedBy: 'tx-1-1' });
  });

  it('a prepare waiting for a lock is let in when the holder commits, and works on the committed value', async () => {
    const coord = await stubCoordinator(cleanup);
    // A lock wait far longer than the test: the waiter can only get in by the holder's commit.
    const p = await participant(cleanup, { coordinatorUrl: coord.url, lockWaitMs: 600_000 });
    await json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-1', coord.url, [p.url], [{ op: 'put', key: 'k', value: 10 }]));
    let voted = false;
    const waiting = json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-3', coord.url, [p.url], [{ op: 'add', key: 'k', amount: 5 }])).then((r) => {
      voted = true;
      return r;
    });
    const waiters = async () => Number(/participant_lock_waiters (\d+)/.exec(await (await fetch(`${p.url}/metrics`)).text())?.[1]);
    await eventually('the second prepare waits for the lock', async () => ((await waiters()) === 1 ? true : undefined));
    expect(voted).toBe(false);

    expect(await json('POST', `${p.url}/v1/2pc/commit`, { txId: 'tx-1-1' })).toEqual({ status: 200, body: { txId: 'tx-1-1', state: 'committed' } });
    expect(await waiting).toEqual({ status: 200, body: { vote: 'yes' } });
    expect(await waiters()).toBe(0);
    expect((await json('GET', `${p.url}/v1/kv/k`)).body).toEqual({ key: 'k', value: 10, lockedBy: 'tx-1-3' });
    expect((await json('POST', `${p.url}/v1/2pc/commit`, { txId: 'tx-1-3' })).body).toEqual({ txId: 'tx-1-3', state: 'committed' });
    // 10 + 5: the waiter's add ran on the holder's committed put, not on the value before it.
    expect((await json('GET', `${p.url}/v1/kv/k`)).body).toEqual({ key: 'k', value: 15 });
  });

  it('one-phase commit in one round trip', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url });
    const r = await json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-1', coord.url, [p.url], [{ op: 'put', key: 'a', value: 'x' }], { onePhase: true }));
    expect(r).toEqual({ status: 200, body: { vote: 'yes', state: 'committed' } });
    expect((await json('GET', `${p.url}/v1/kv/a`)).body).toEqual({ key: 'a', value: 'x' });
  });

  it('refuses bad input with a clear 4xx and writes nothing to the WAL', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url });
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/v1/2pc/prepare', '{"txId":', 400, /Malformed JSON/],
      ['POST', '/v1/2pc/prepare', { txId: 'tx-1-1', coordinator: coord.url, participants: [], extra: 1 }, 400, /Unknown field `extra`/],
      ['POST', '/v1/2pc/prepare', { txId: 'tx-1-1', coordinator: coord.url, participants: [], ops: [{ op: 'add', key: 'a', amount: 'x' }] }, 400, /ops\[0\]\.amount/],
      ['POST', '/v1/2pc/prepare', { txId: 'tx 1', coordinator: coord.url, participants: [] }, 400, /txId/],
      ['POST', '/v1/2pc/prepare', { coordinator: coord.url, participants: [] }, 400, /Missing field `txId`/],
      ['POST', '/v1/2pc/commit', { txId: 5 }, 400, /txId/],
      ['POST', '/v1/2pc/commit', 'null', 400, /object/],
      ['POST', '/v1/2pc/transactions/tx-1-1/heuristic', { outcome: 'maybe' }, 400, /outcome/],
      ['GET', '/v1/2pc/transactions?state=committed&x=1', undefined, 400, /Unknown field|state/],
      ['POST', '/v1/2pc/prepare', { txId: 'tx-1-1', coordinator: coord.url, participants: [], ops: [{ op: 'put', key: 'a', value: 'v'.repeat(300_000) }] }, 413, /larger than the limit/],
      ['POST', '/v1/2pc/nope', {}, 404, /No route/],
    ];
    for (const [method, route, body, status, message] of cases) {
      const r = await json<{ error: { message: string } }>(method, `${p.url}${route}`, body);
      expect({ route, status: r.status }).toEqual({ route, status });
      expect(r.body.error.message).toMatch(message);
    }
    await p.close();
    expect(await walRecords(p.dataDir)).toEqual({ checkpoint: undefined, records: [] });
  });

  it('with a token, every route but /healthz needs it', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url, token: 's3cret' });
    expect((await json('GET', `${p.url}/healthz`)).status).toBe(200);
    expect((await json('GET', `${p.url}/v1/kv`)).status).toBe(401);
    expect((await json('POST', `${p.url}/v1/2pc/commit`, { txId: 'tx-1-1' })).status).toBe(401);
    expect((await json('GET', `${p.url}/v1/kv`, undefined, { authorization: 'Bearer s3cret' })).status).toBe(200);
  });

  it('recovers from a crash image: in doubt, locks held, then settles from the coordinator', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url });
    await json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-1', coord.url, [p.url], [{ op: 'put', key: 'k', value: 'v' }]));
    await json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-2', coord.url, [p.url], [{ op: 'put', key: 'done', value: 1 }], { onePhase: true }));
    // Copying the live WAL is what a kill -9 leaves: the records, no clean-stop checkpoint.
    const image = await tempDir('image');
    cleanup.add(() => fs.promises.rm(image, { recursive: true, force: true }));
    await fs.promises.cp(p.dataDir, image, { recursive: true });
    await p.close();

    const q = await participant(cleanup, { coordinatorUrl: coord.url, dataDir: image, core: { inquiryBackoffBaseMs: 20, inquiryBackoffMaxMs: 50 } });
    expect((await json('GET', `${q.url}/v1/kv/done`)).body).toEqual({ key: 'done', value: 1 });
    expect((await json('GET', `${q.url}/v1/kv/k`)).body).toEqual({ key: 'k', lockedBy: 'tx-1-1' });
    expect((await json('GET', `${q.url}/v1/2pc/transactions/tx-1-1`)).body).toMatchObject({ state: 'prepared' });
    await eventually('it asks the coordinator', async () => (coord.inquiries.includes('tx-1-1') ? true : undefined));

    coord.outcomes.set('tx-1-1', 'committed');
    await eventually('it commits', async () => ((await json('GET', `${q.url}/v1/2pc/transactions/tx-1-1`)).body.state === 'committed' ? true : undefined));
    expect((await json('GET', `${q.url}/v1/kv/k`)).body).toEqual({ key: 'k', value: 'v' });
    expect(q.fatal).toEqual([]);
  });

  it('recovers from its checkpoint after a clean stop, with remembered outcomes', async () => {
    const coord = await stubCoordinator(cleanup);
    const dir = await tempDir('ckpt');
    cleanup.add(() => fs.promises.rm(dir, { recursive: true, force: true }));
    const p = await participant(cleanup, { coordinatorUrl: coord.url, dataDir: dir });
    await json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-1', coord.url, [p.url], [{ op: 'put', key: 'a', value: 1 }], { onePhase: true }));
    await json('POST', `${p.url}/v1/2pc/abort`, { txId: 'tx-1-2' });
    await p.close();

    const q = await participant(cleanup, { coordinatorUrl: coord.url, dataDir: dir });
    expect((await json('GET', `${q.url}/v1/kv`)).body).toEqual({ entries: { a: 1 } });
    // The tombstone survived the checkpoint: the late prepare votes no.
    const late = await json('POST', `${q.url}/v1/2pc/prepare`, prepareBody('tx-1-2', coord.url, [q.url], [{ op: 'put', key: 'b', value: 1 }]));
    expect(late.body).toMatchObject({ vote: 'no' });
  });
});

describe('cooperative termination between real participants', () => {
  it('with the coordinator gone, a peer that never voted promises no, and the in-doubt one aborts', async () => {
    // The coordinator is up for the prepare (it vouches for both participants), then dies.
    const coord = await stubCoordinator(cleanup);
    const gone = coord.url;
    const core = { decisionWaitMs: 50, inquiryBackoffBaseMs: 50, inquiryBackoffMaxMs: 100 };
    const p2 = await participant(cleanup, { coordinatorUrl: gone, core });
    const p1 = await participant(cleanup, { coordinatorUrl: gone, core });
    coord.vouches.push(p1.url, p2.url);
    const body = prepareBody('tx-1-1', gone, [p1.url, p2.url], [{ op: 'put', key: 'k', value: 1 }]);
    expect((await json('POST', `${p1.url}/v1/2pc/prepare`, body)).body).toEqual({ vote: 'yes' });
    await coord.close();

    await eventually('p1 aborts', async () => ((await json('GET', `${p1.url}/v1/2pc/transactions/tx-1-1`)).body.state === 'aborted' ? true : undefined));
    expect((await json('GET', `${p2.url}/v1/2pc/transactions/tx-1-1`)).body).toMatchObject({ state: 'aborted' });
    // p2 promised: the coordinator's late prepare gets a no.
    expect((await json('POST', `${p2.url}/v1/2pc/prepare`, { ...body, ops: [] })).body).toMatchObject({ vote: 'no' });
    expect((await json('GET', `${p1.url}/v1/kv/k`)).body).toEqual({ key: 'k' });
  });

  it('with every peer prepared, both stay blocked, say so, and settle when the coordinator answers', async () => {
    // Peers trusted by configuration this time: the coordinator is never reachable.
    const coordGone = await deadUrl();
    const core = { decisionWaitMs: 50, inquiryBackoffBaseMs: 50, inquiryBackoffMaxMs: 100 };
    const [port1, port2] = await freePorts(2);
    const [url1, url2] = [`http://127.0.0.1:${port1}`, `http://127.0.0.1:${port2}`];
    const p1 = await participant(cleanup, { coordinatorUrl: coordGone, core, port: port1, peers: [url2] });
    const p2 = await participant(cleanup, { coordinatorUrl: coordGone, core, port: port2, peers: [url1] });
    const body = prepareBody('tx-1-1', coordGone, [p1.url, p2.url], [{ op: 'put', key: 'k', value: 1 }]);
    await json('POST', `${p1.url}/v1/2pc/prepare`, body);
    await json('POST', `${p2.url}/v1/2pc/prepare`, body);

    for (const p of [p1, p2]) {
      const blocked = await eventually('it says it is blocked', async () => {
        const { body: list } = await json<{ transactions: { txId: string; blocked?: string; keys: string[] }[] }>('GET', `${p.url}/v1/2pc/transactions?state=prepared`);
        return list.transactions.find((t) => t.blocked !== undefined);
      });
      expect(blocked).toMatchObject({ txId: 'tx-1-1', keys: ['k'], blocked: expect.stringContaining('every peer is prepared') as unknown });
    }
    // Still blocked is still prepared: nobody decided alone.
    expect((await json('GET', `${p1.url}/v1/kv/k`)).body).toEqual({ key: 'k', lockedBy: 'tx-1-1' });

    // The coordinator's resend after its recovery settles them.
    for (const p of [p1, p2]) await json('POST', `${p.url}/v1/2pc/commit`, { txId: 'tx-1-1' });
    expect((await json('GET', `${p2.url}/v1/kv/k`)).body).toEqual({ key: 'k', value: 1 });
  });
});

describe('heuristic decisions over HTTP', () => {
  it('an operator settles an in-doubt transaction; later decisions report it as heuristic', async () => {
    const coord = await stubCoordinator(cleanup);
    const p = await participant(cleanup, { coordinatorUrl: coord.url });
    await json('POST', `${p.url}/v1/2pc/prepare`, prepareBody('tx-1-1', coord.url, [p.url], [{ op: 'put', key: 'k', value: 1 }]));
    expect(await json('POST', `${p.url}/v1/2pc/transactions/tx-1-1/heuristic`, { outcome: 'aborted' })).toEqual({
      status: 200,
      body: { txId: 'tx-1-1', state: 'aborted', heuristic: 'aborted' },
    });
    expect((await json('GET', `${p.url}/v1/2pc/transactions/tx-1-1`)).body).toMatchObject({ state: 'aborted', heuristic: 'aborted' });
    expect(await json('POST', `${p.url}/v1/2pc/commit`, { txId: 'tx-1-1' })).toEqual({
      status: 200,
      body: { txId: 'tx-1-1', state: 'aborted', heuristic: 'aborted' },
    });
    expect((await json('GET', `${p.url}/v1/kv/k`)).body).toEqual({ key: 'k' });
    expect((await json('POST', `${p.url}/v1/2pc/transactions/tx-7-7/heuristic`, { outcome: 'aborted' })).status).toBe(404);
  });
});
