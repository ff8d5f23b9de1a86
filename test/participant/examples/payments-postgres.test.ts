/**
 * The PostgreSQL payments example, run for real against PostgreSQL
 * (scripts/ci-postgres.sh; TWOPC_TEST_PG_URL): an express service whose domain
 * ops run inside PostgreSQL transactions that the embedded participant prepares
 * and commits, driven through prepare/commit exactly as a coordinator would,
 * in-process and as its own process.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../shared/logger.ts';
import { startPaymentsService } from '../../../participant/examples/payments-postgres.ts';
import { postgresUnavailable, preparedIn, TempDatabase } from '../../../scenarios/postgres.ts';
import { Cleanup, deadUrl, json, stubCoordinator, tempDir } from '../fixtures.ts';
import { EXIT_CODES } from '../../../shared/exit-codes.ts';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let db: TempDatabase;
let unavailable: Error | undefined;
beforeAll(async () => {
  unavailable = await postgresUnavailable();
  if (!unavailable) db = await TempDatabase.create('payments');
});
afterAll(() => db?.drop());
// Without PostgreSQL every test fails, saying how to start it.
beforeEach(() => {
  if (unavailable) throw unavailable;
});

async function dataDir(): Promise<string> {
  const dir = await tempDir('payments');
  cleanup.add(() => fs.promises.rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('the PostgreSQL payments service', () => {
  it('charges inside a prepared PostgreSQL transaction, votes no with its own reasons, and survives a restart', async () => {
    const coord = await stubCoordinator(cleanup);
    const dir = await dataDir();
    const svc = await startPaymentsService({ port: 0, dataDir: dir, coordinatorUrl: coord.url, pgUrl: db.url, logger: silentLogger() });
    cleanup.add(() => svc.close());
    const prepare = (txId: string, ops: unknown[]) => json('POST', `${svc.url}/v1/2pc/prepare`, { txId, coordinator: coord.url, participants: [svc.url], ops });
    const commit = (txId: string) => json('POST', `${svc.url}/v1/2pc/commit`, { txId });

    expect((await prepare('tx-1-1', [{ op: 'topUp', customer: 'alice', amount: 50 }])).body).toEqual({ vote: 'yes' });
    // Prepared, not committed: PostgreSQL holds it under the participant's gid, and the service's read does not see it.
    expect((await preparedIn(db.url)).map((p) => p.gid)).toEqual(['twopc:payments:tx-1-1']);
    expect((await json('GET', `${svc.url}/wallets/alice`)).status).toBe(404);
    const inDoubt = await json<{ transactions: { txId: string; resource?: { gid: string } }[] }>('GET', `${svc.url}/v1/2pc/transactions?state=prepared`);
    expect(inDoubt.body.transactions).toMatchObject([{ txId: 'tx-1-1', resource: { gid: 'twopc:payments:tx-1-1' } }]);
    expect((await commit('tx-1-1')).body).toEqual({ txId: 'tx-1-1', state: 'committed' });
    expect((await json('GET', `${svc.url}/wallets/alice`)).body).toEqual({ customer: 'alice', balance: 50 });

    expect((await prepare('tx-1-2', [{ op: 'charge', orderId: 'o-1', customer: 'alice', amount: 80 }])).body).toEqual({
      vote: 'no',
      reason: 'alice has 50, 80 wanted for order o-1',
    });
    expect((await prepare('tx-1-3', [{ op: 'charge', orderId: 'o-1', customer: 'bob', amount: 1 }])).body).toEqual({ vote: 'no', reason: 'bob has no wallet' });
    const bad = await prepare('tx-1-4', [{ op: 'sql', text: 'DELETE FROM wallets' }]);
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: { code: 'bad_request', message: 'Expected `ops[0].op` to be one of "topUp", "charge", "refund", got string "sql".' } });
    expect((await prepare('tx-1-5', [{ op: 'charge', orderId: 'o-1', customer: 'alice', amount: 30 }])).body).toEqual({ vote: 'yes' });
    expect((await commit('tx-1-5')).status).toBe(200);
    expect((await prepare('tx-1-6', [{ op: 'charge', orderId: 'o-1', customer: 'alice', amount: 5 }])).body).toEqual({ vote: 'no', reason: 'order o-1 is already paid' });
    expect((await json('GET', `${svc.url}/payments/o-1`)).body).toEqual({ orderId: 'o-1', customer: 'alice', amount: 30, refunded: false, txId: 'tx-1-5' });

    // A refund prepared, then the service restarts: its WAL says in doubt, PostgreSQL still holds the branch; the commit lands after.
    expect((await prepare('tx-1-7', [{ op: 'refund', orderId: 'o-1' }])).body).toEqual({ vote: 'yes' });
    await svc.close();
    const again = await startPaymentsService({ port: 0, dataDir: dir, coordinatorUrl: coord.url, pgUrl: db.url, logger: silentLogger() });
    cleanup.add(() => again.close());
    expect(again.participant.inDoubt().map((t) => t.txId)).toEqual(['tx-1-7']);
    expect((await json('POST', `${again.url}/v1/2pc/commit`, { txId: 'tx-1-7' })).body).toEqual({ txId: 'tx-1-7', state: 'committed' });
    expect((await json('GET', `${again.url}/wallets/alice`)).body).toEqual({ customer: 'alice', balance: 50 });
    expect((await json('GET', `${again.url}/payments/o-1`)).body).toMatchObject({ refunded: true });
    expect(await preparedIn(db.url)).toEqual([]);
  });

  it('runs as its own process and commits a transaction', async () => {
    const dir = await dataDir();
    const coordinator = await deadUrl();
    const script = path.resolve(import.meta.dirname, '../../../participant/examples/payments-postgres.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script, '--port', '0', '--data', dir, '--coordinator', coordinator, '--pg-url', db.url], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanup.add(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the service did not print its URL in time')), 30_000);
      createInterface({ input: child.stdout }).once('line', (line) => {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      });
      void exited.then((code) => reject(new Error(`the service exited early (code ${code})`)));
    });

    const body = { txId: 'tx-2-1', coordinator, participants: [url], ops: [{ op: 'topUp', customer: 'carol', amount: 7 }] };
    expect((await json('POST', `${url}/v1/2pc/prepare`, body)).body).toEqual({ vote: 'yes' });
    expect((await json('POST', `${url}/v1/2pc/commit`, { txId: 'tx-2-1' })).body).toEqual({ txId: 'tx-2-1', state: 'committed' });
    expect((await json('GET', `${url}/wallets/carol`)).body).toEqual({ customer: 'carol', balance: 7 });

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('exits 68 with one line when its database is unreachable', async () => {
    const script = path.resolve(import.meta.dirname, '../../../participant/examples/payments-postgres.ts');
    const port = new URL(await deadUrl()).port;
    const dir = await dataDir();
    const child = spawn(process.execPath, ['--import', 'tsx', script, '--port', '0', '--data', dir, '--pg-url', `postgresql://x@127.0.0.1:${port}/payments`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(EXIT_CODES.databaseUnreachable);
    expect(stderr.trim()).toMatch(new RegExp(`^payments: cannot connect to PostgreSQL at postgresql://x@127.0.0.1:${port}/payments: .*ECONNREFUSED`));
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
});
