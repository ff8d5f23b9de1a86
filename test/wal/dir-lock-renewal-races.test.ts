/**
 * The held lease's renewal where it races itself and the release: a renewal that outlasts its
 * period, and a release that lands while a renewal reads the LOCK file. The LOCK file's first read
 * by a renewal is held at a gate the test opens, so each interleaving is made, not waited for.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LOCK_FILE, acquireDirLock, type DirLock } from '../../wal/dir-lock.ts';
import type { WalError } from '../../wal/errors.ts';
import { tempDir } from './helpers/temp-dir.ts';

const RENEW_MS = 700;

let dir = '';
let remove: () => Promise<void> = async () => undefined;
let lock: DirLock | undefined;

beforeEach(async () => {
  ({ dir, remove } = await tempDir('twopc-dir-lock-races-'));
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  lock = await acquireDirLock(dir, { leaseRenewMs: RENEW_MS });
});
afterEach(async () => {
  vi.restoreAllMocks();
  vi.useRealTimers();
  await lock?.release();
  await remove();
});

const lockPath = (): string => path.join(dir, LOCK_FILE);

/**
 * Holds the first open of the LOCK file until `open()` is called; later opens go through. `opens`
 * counts every open of the LOCK file; `held` settles when the held open has finished.
 */
function gateFirstLockRead(): { opens: () => number; open: () => void; held: () => Promise<unknown> } {
  const original = fs.promises.open.bind(fs.promises);
  let count = 0;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let first: Promise<unknown> | undefined;
  vi.spyOn(fs.promises, 'open').mockImplementation(((file: fs.PathLike, ...rest: unknown[]) => {
    if (String(file) !== lockPath()) return (original as (...args: unknown[]) => unknown)(file, ...rest);
    count += 1;
    const call = (): unknown => (original as (...args: unknown[]) => unknown)(file, ...rest);
    if (count > 1) return call();
    first = gate.then(call);
    return first;
  }) as typeof fs.promises.open);
  return {
    opens: () => count,
    open: release,
    held: async () => {
      await first?.catch(() => undefined);
      // The renewal goes on for a few promise turns after its read: let them run.
      await new Promise((resolve) => setTimeout(resolve, 20));
    },
  };
}

describe('the lease renewal, against itself and the release', () => {
  it('starts no second renewal while one is still reading, and reports a loss it finds once', async () => {
    const lost: WalError[] = [];
    lock?.onLost((error) => lost.push(error));
    const gate = gateFirstLockRead();
    await vi.advanceTimersByTimeAsync(RENEW_MS);
    expect(gate.opens()).toBe(1);
    // The next period comes while the first renewal still waits on its read.
    await vi.advanceTimersByTimeAsync(RENEW_MS);
    expect(gate.opens()).toBe(1);
    fs.unlinkSync(lockPath());
    gate.open();
    await gate.held();
    expect(lost.map((error) => error.code)).toEqual(['WAL_LOCK_LOST']);
  });

  it('reports no loss, and touches nothing, when the release lands while a renewal reads', async () => {
    const lost: WalError[] = [];
    lock?.onLost((error) => lost.push(error));
    const gate = gateFirstLockRead();
    await vi.advanceTimersByTimeAsync(RENEW_MS);
    expect(gate.opens()).toBe(1);
    await lock?.release();
    expect(fs.existsSync(lockPath())).toBe(false);
    gate.open();
    await gate.held();
    // The file is gone because this holder removed it: that is no loss, and no lease is renewed.
    expect(lost).toEqual([]);
    expect(fs.existsSync(lockPath())).toBe(false);
  });
});
