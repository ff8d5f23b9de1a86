/**
 * The fsync failure injection: the WalFs wrapper lets n file syncs through and
 * fails every later one with EIO, and a real file log on top of it fails stop:
 * the append whose sync failed is not acknowledged, and neither is any after it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chaosWalFs, FAIL_FSYNC_ENV } from '../../shared/fsync-fault.ts';
import { openFileLog } from '../../wal/file-log.ts';
import { failSyncsAfter, nodeFs } from '../../wal/fs.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-fsync-fault-'));
  dirs.push(d);
  return d;
}

describe('failSyncsAfter', () => {
  it('lets n syncs through, then fails every later one with EIO; writes still pass', async () => {
    const dir = tmp();
    const faulty = failSyncsAfter(nodeFs, 2);
    const file = await faulty.open(path.join(dir, 'f'), 'create');
    await file.writev([new Uint8Array([1, 2, 3])], 0);
    await file.datasync();
    await file.sync();
    await expect(file.datasync()).rejects.toMatchObject({ code: 'EIO', syscall: 'fdatasync' });
    await expect(file.sync()).rejects.toMatchObject({ code: 'EIO', syscall: 'fsync' });
    await file.writev([new Uint8Array([4])], 3);
    expect(await file.size()).toBe(4);
    await file.close();
  });

  it('refuses a negative count', () => {
    expect(() => failSyncsAfter(nodeFs, -1)).toThrow(/non-negative integer/);
  });
});

describe('chaosWalFs', () => {
  it('is off without --chaos or without the variable, and checks the value', () => {
    expect(chaosWalFs(false, { [FAIL_FSYNC_ENV]: '3' })).toBeUndefined();
    expect(chaosWalFs(true, {})).toBeUndefined();
    expect(chaosWalFs(true, { [FAIL_FSYNC_ENV]: '3' })).toBeDefined();
    expect(() => chaosWalFs(true, { [FAIL_FSYNC_ENV]: 'soon' })).toThrow(/TWOPC_FAIL_FSYNC_AFTER.*non-negative integer/);
  });

  it('makes a real file log fail stop: the failed durable append and every later one reject', async () => {
    // Opening a fresh log syncs its first segment and directory: find the smallest count that opens.
    let opened: Awaited<ReturnType<typeof openFileLog>> | undefined;
    for (let n = 0; n <= 10 && opened === undefined; n++) {
      opened = await openFileLog(tmp(), { syncPolicy: 'always', fs: failSyncsAfter(nodeFs, n) }).catch(() => undefined);
    }
    if (!opened) throw new Error('the log did not open with up to 10 syncs');
    const { log } = opened;
    const payload = new TextEncoder().encode('{"x":1}');
    const results = await Promise.allSettled([log.append(1, payload, { durable: true }), log.append(1, payload, { durable: true })]);
    // Both rejected as poisoned, and the cause is the injected fdatasync EIO, not some other failure.
    const poisonedByEio = { name: 'WalError', code: 'WAL_POISONED', cause: expect.objectContaining({ code: 'EIO', syscall: 'fdatasync' }) as unknown };
    expect(results).toEqual([
      { status: 'rejected', reason: expect.objectContaining(poisonedByEio) as unknown },
      { status: 'rejected', reason: expect.objectContaining(poisonedByEio) as unknown },
    ]);
    expect(log.poisoned).toBe(true);
    // Fail-stop: a later append, durable or not, is refused as poisoned too.
    await expect(log.append(1, payload, { durable: false })).rejects.toMatchObject({ name: 'WalError', code: 'WAL_POISONED' });
    await log.close().catch(() => undefined);
  });
});
