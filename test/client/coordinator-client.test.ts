/**
 * twopc/client against a real coordinator and two real participants (in this
 * process, file WALs, loopback HTTP), and against a bare HTTP server that
 * misbehaves on purpose, to count attempts: only idempotent calls are retried.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoordinatorClient, CoordinatorError, TransportError, type CoordinatorClient } from '../../client/index.ts';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/main.ts';
import { startParticipant, type RunningParticipant } from '../../participant/main.ts';
import { silentLogger } from '../../shared/logger.ts';
import { freePorts } from '../../scenarios/ports.ts';

let dir = '';
let coordinator: RunningCoordinator;
const participants: RunningParticipant[] = [];
let client: CoordinatorClient;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-client-'));
  const [cport, p1port, p2port] = (await freePorts(3)) as [number, number, number];
  const coordinatorUrl = `http://127.0.0.1:${cport}`;
  for (const [name, port] of [['p1', p1port], ['p2', p2port]] as const) {
    participants.push(
      await startParticipant({ name, port, dataDir: path.join(dir, name), coordinatorUrl, fsync: 'always', logger: silentLogger(), onFatal: (e) => { throw e; } }),
    );
  }
  coordinator = await startCoordinator({
    port: cport,
    dataDir: path.join(dir, 'coordinator'),
    participants: { p1: `http://127.0.0.1:${p1port}`, p2: `http://127.0.0.1:${p2port}` },
    fsync: 'always',
    logger: silentLogger(),
    onFatal: (e) => {
      throw e;
    },
  });
  client = createCoordinatorClient({ url: coordinator.url });
});

afterAll(async () => {
  client?.close();
  await coordinator?.close();
  await Promise.all(participants.map((p) => p.close()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const kv = async (p: RunningParticipant, key: string): Promise<unknown> => ((await (await fetch(`${p.url}/v1/kv/${key}`)).json()) as { value?: unknown }).value;

describe('createCoordinatorClient against a real coordinator', () => {
  it('runs a whole transaction and reports its outcome', async () => {
    const report = await client.run([
      { participant: 'p1', ops: [{ op: 'put', key: 'a', value: 1 }] },
      { participant: 'p2', ops: [{ op: 'put', key: 'b', value: 2 }] },
    ]);
    expect(report).toMatchObject({ outcome: 'committed', applied: true });
    expect(await kv(participants[0] as RunningParticipant, 'a')).toBe(1);
    expect(await client.outcome(report.txId)).toBe('committed');
    expect(await client.status(report.txId)).toMatchObject({ txId: report.txId, state: 'committed' });
  });

  it('begins, enlists and commits; a repeated enlist changes nothing', async () => {
    const { txId, state } = await client.begin({ txTimeoutMs: 30_000 });
    expect(state).toBe('active');
    const branch = { participant: 'p1', ops: [{ op: 'add' as const, key: 'n', amount: 5 }] };
    await client.enlist(txId, branch);
    const again = await client.enlist(txId, branch);
    expect(again.branches).toHaveLength(1);
    await client.enlist(txId, { participant: 'p2', ops: [{ op: 'add', key: 'n', amount: -5 }] });
    const report = await client.commit(txId);
    expect(report).toMatchObject({ txId, outcome: 'committed' });
    // A repeated commit (a retry after a lost answer) gets the same outcome, not a second transaction.
    expect(await client.commit(txId)).toMatchObject({ txId, outcome: 'committed' });
    expect(await kv(participants[0] as RunningParticipant, 'n')).toBe(5);
    expect(await kv(participants[1] as RunningParticipant, 'n')).toBe(-5);
  });

  it('transaction() commits what the work enlisted, and aborts when the work throws', async () => {
    const committed = await client.transaction(async (tx) => {
      await tx.enlist({ participant: 'p1', ops: [{ op: 'put', key: 'tx', value: 'yes' }] });
      await tx.enlist({ participant: 'p2', ops: [{ op: 'put', key: 'tx', value: 'yes' }] });
    });
    expect(committed.outcome).toBe('committed');

    let begun = '';
    const failure = new Error('the handler failed');
    await expect(
      client.transaction(async (tx) => {
        begun = tx.txId;
        await tx.enlist({ participant: 'p1', ops: [{ op: 'put', key: 'tx', value: 'no' }] });
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await client.status(begun)).toMatchObject({ state: 'aborted', outcome: 'aborted' });
    expect(await kv(participants[0] as RunningParticipant, 'tx')).toBe('yes');
  });

  it('rejects with the server code and status', async () => {
    const missing = await client.status('tx-999999-1').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(CoordinatorError);
    expect(missing).toMatchObject({ code: 'not_found', status: 404, txId: 'tx-999999-1', retryable: false });

    const unknown = await client.run([{ participant: 'p9', ops: [{ op: 'put', key: 'x', value: 1 }] }]).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ name: 'CoordinatorError', code: 'unknown_participant', status: 400 });

    const { txId } = await client.begin();
    await client.abort(txId);
    expect(await client.abort(txId)).toEqual({ txId, outcome: 'aborted' });
    const late = await client.enlist(txId, { participant: 'p1', ops: [{ op: 'put', key: 'late', value: 1 }] }).catch((e: unknown) => e);
    expect(late).toMatchObject({ code: 'conflict', status: 409, txId });
  });
});

/** A server that answers every request with `status` (or never, with status 0) and counts what it got. */
async function misbehaving(status: number): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    req.resume();
    if (status === 0) return; // Never answers: the client's timeout must end the call.
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'unavailable', message: 'busy' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('retries, timeouts and cancellation', () => {
  it('retries idempotent calls on a 503 and never retries begin or run', async () => {
    const server = await misbehaving(503);
    const busy = createCoordinatorClient({ url: server.url, retries: 2 });
    try {
      const commit = await busy.commit('tx-1-1').catch((e: unknown) => e);
      expect(commit).toMatchObject({ name: 'CoordinatorError', code: 'unavailable', status: 503, retryable: true });
      expect(server.hits.filter((h) => h.endsWith('/commit'))).toHaveLength(3);

      await expect(busy.begin()).rejects.toBeInstanceOf(CoordinatorError);
      await expect(busy.run([{ participant: 'p1', ops: [] }])).rejects.toBeInstanceOf(CoordinatorError);
      expect(server.hits.filter((h) => h === 'POST /v1/transactions')).toHaveLength(2);
    } finally {
      busy.close();
      await server.close();
    }
  });

  it('ends a call that gets no answer with a TransportError, and gives up when the caller aborts', async () => {
    const server = await misbehaving(0);
    const silent = createCoordinatorClient({ url: server.url, retries: 0, timeoutMs: 200 });
    try {
      const timedOut = await silent.status('tx-1-1').catch((e: unknown) => e);
      expect(timedOut).toBeInstanceOf(TransportError);
      expect(timedOut).toMatchObject({ code: 'timeout' });

      const controller = new AbortController();
      const reason = new Error('the handler\'s own client went away');
      const call = silent.status('tx-1-2', { signal: controller.signal, timeoutMs: 60_000 });
      // Abort once the request has reached the server, so the call is really in flight.
      for (let i = 0; i < 1_000 && server.hits.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(server.hits).toHaveLength(2);
      controller.abort(reason);
      await expect(call).rejects.toBe(reason);
    } finally {
      silent.close();
      await server.close();
    }
  });

  it('refuses bad options with a message naming the option', () => {
    expect(() => createCoordinatorClient({ url: 'not a url' })).toThrow(/Expected `url`/);
    expect(() => createCoordinatorClient({ url: 'http://127.0.0.1:1', retries: 99 })).toThrow(/Expected `retries` to be an integer from 0 to 10/);
    expect(() => createCoordinatorClient({ url: 'http://127.0.0.1:1', timeoutMs: 0 })).toThrow(/Expected `timeoutMs`/);
  });
});
