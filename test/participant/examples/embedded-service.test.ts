/**
 * The embedded-participant example, run for real: an express "inventory"
 * service with its own Resource, driven through prepare/commit exactly as a
 * coordinator would, in-process and as its own process.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../shared/logger.ts';
import { startInventoryService } from '../../../participant/examples/embedded-service.ts';
import { Cleanup, deadUrl, json, stubCoordinator, tempDir } from '../fixtures.ts';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function dataDir(): Promise<string> {
  const dir = await tempDir('inventory');
  cleanup.add(() => fs.promises.rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('the embedded inventory service', () => {
  it('commits a two-phase transaction on its own state, and votes no when stock is short', async () => {
    const coord = await stubCoordinator(cleanup);
    const dir = await dataDir();
    const svc = await startInventoryService({ port: 0, dataDir: dir, coordinatorUrl: coord.url, logger: silentLogger() });
    cleanup.add(() => svc.close());
    const prepare = (txId: string, ops: unknown[]) => json('POST', `${svc.url}/v1/2pc/prepare`, { txId, coordinator: coord.url, participants: [svc.url], ops });

    expect((await prepare('tx-1-1', [{ op: 'restock', sku: 'widget', qty: 5 }])).body).toEqual({ vote: 'yes' });
    expect((await json('GET', `${svc.url}/stock/widget`)).body).toEqual({ sku: 'widget', qty: 0, lockedBy: 'tx-1-1' });
    expect((await json('POST', `${svc.url}/v1/2pc/commit`, { txId: 'tx-1-1' })).body).toEqual({ txId: 'tx-1-1', state: 'committed' });
    expect((await json('GET', `${svc.url}/stock/widget`)).body).toEqual({ sku: 'widget', qty: 5 });

    expect((await prepare('tx-1-2', [{ op: 'reserve', sku: 'widget', qty: 9 }])).body).toEqual({ vote: 'no', reason: 'only 5 widget in stock, 9 wanted' });
    expect((await prepare('tx-1-3', [{ op: 'reserve', sku: 'widget', qty: 'many' }])).status).toBe(400);
    expect((await prepare('tx-1-4', [{ op: 'reserve', sku: 'widget', qty: 2 }])).body).toEqual({ vote: 'yes' });
    expect((await json('POST', `${svc.url}/v1/2pc/commit`, { txId: 'tx-1-4' })).status).toBe(200);
    expect((await json('GET', `${svc.url}/stock`)).body).toEqual({ stock: { widget: 3 } });

    // Its WAL brings the stock back after a restart.
    await svc.close();
    const again = await startInventoryService({ port: 0, dataDir: dir, coordinatorUrl: coord.url, logger: silentLogger() });
    cleanup.add(() => again.close());
    expect((await json('GET', `${again.url}/stock/widget`)).body).toEqual({ sku: 'widget', qty: 3 });
  });

  it('runs as its own process and commits a transaction', async () => {
    const dir = await dataDir();
    const coordinator = await deadUrl();
    const script = path.resolve(import.meta.dirname, '../../../participant/examples/embedded-service.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script, '--port', '0', '--data', dir, '--coordinator', coordinator], {
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

    const body = { txId: 'tx-2-1', coordinator, participants: [url], ops: [{ op: 'restock', sku: 'gadget', qty: 4 }] };
    expect((await json('POST', `${url}/v1/2pc/prepare`, body)).body).toEqual({ vote: 'yes' });
    expect((await json('POST', `${url}/v1/2pc/commit`, { txId: 'tx-2-1' })).body).toEqual({ txId: 'tx-2-1', state: 'committed' });
    expect((await json('GET', `${url}/stock/gadget`)).body).toEqual({ sku: 'gadget', qty: 4 });

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
