/**
 * Where a batch's fdatasync runs: blocking on the event loop while the running mean of blocking
 * syncs stays within `blockingSyncMsMax`, else through libuv's thread pool for a second
 * (docs/wal-format.md, "Where fdatasync runs"). On real files in a temporary directory, through a WalFs that counts which call each
 * sync took and advances the log's clock by a scripted duration, so the choice is exact.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BLOCKING_SYNC_BACKOFF_MS, BLOCKING_SYNC_BACKOFF_MS_MAX, openFileLog } from '../../wal/file-log.ts';
import { nodeFs, type WalFile, type WalFs } from '../../wal/fs.ts';
import type { FileLogOptions } from '../../wal/options.ts';

/** A WalFs over the real disk whose segment syncs are counted by kind and take the scripted times. */
class TimedFs implements WalFs {
  /** 'pool' for `datasync`, 'loop' for `datasyncSync`, in order (a segment's own preparation uses `sync`). */
  readonly syncs: string[] = [];
  /** The log's clock, in ms; each sync advances it by the next scripted duration. */
  nowMs = 0;
  /** A blocking sync fails with this, once, when set. */
  failNextBlocking: Error | undefined;
  /** What a sync takes once the scripted durations are spent. */
  thenMs = 0.125;

  constructor(
    private readonly durationsMs: number[],
    private readonly offersBlocking = true,
  ) {}

  readonly now = (): number => this.nowMs;

  private took(kind: string): void {
    this.syncs.push(kind);
    this.nowMs += this.durationsMs.shift() ?? this.thenMs;
  }

  async open(file: string, mode: Parameters<WalFs['open']>[1]): Promise<WalFile> {
    const inner = await nodeFs.open(file, mode);
    const wrapped: WalFile = {
      path: inner.path,
      read: (buffer, position) => inner.read(buffer, position),
      writev: (buffers, position) => inner.writev(buffers, position),
      writevSync: (buffers, position) => inner.writevSync?.(buffers, position),
      datasync: async () => {
        await inner.datasync();
        this.took('pool');
      },
      sync: () => inner.sync(),
      truncate: (bytes) => inner.truncate(bytes),
      size: () => inner.size(),
      close: () => inner.close(),
    };
    if (this.offersBlocking) {
      wrapped.datasyncSync = () => {
        const failure = this.failNextBlocking;
        this.failNextBlocking = undefined;
        if (failure !== undefined) throw failure;
        inner.datasyncSync?.();
        this.took('loop');
      };
    }
    return wrapped;
  }

  readdir = (dir: string) => nodeFs.readdir(dir);
  mkdir = (dir: string) => nodeFs.mkdir(dir);
  rename = (from: string, to: string) => nodeFs.rename(from, to);
  unlink = (file: string) => nodeFs.unlink(file);
  syncDir = (dir: string) => nodeFs.syncDir(dir);
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

async function logOn(timed: TimedFs, options: FileLogOptions = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-blocking-sync-'));
  dirs.push(dir);
  const synced: number[] = [];
  /** Where onSync says each sync ran, in the file's own words. */
  const told: ('loop' | 'pool')[] = [];
  const onSync = (ms: number, _records: number, blocking: boolean) => {
    synced.push(ms);
    told.push(blocking ? 'loop' : 'pool');
  };
  const { log } = await openFileLog(dir, { fs: timed, now: timed.now, onSync, ...options });
  return { log, synced, told };
}

/** `n` durable appends, one after another, so each batch has its own fdatasync. */
async function durableAppends(log: Awaited<ReturnType<typeof logOn>>['log'], n: number): Promise<void> {
  for (let i = 0; i < n; i++) await log.append(1, new Uint8Array([i]), { durable: true });
}

describe('where a batch fdatasync runs', () => {
  it('blocks from the first one while they stay fast, and tells onSync each one\'s time and that it blocked', async () => {
    const timed = new TimedFs([0.5, 0.75, 1, 0.25]);
    const { log, synced, told } = await logOn(timed, { blockingSyncMsMax: 1 });
    // Each durable append resolves only after its sync ran.
    for (let i = 0; i < 4; i++) {
      await log.append(1, new Uint8Array([i]), { durable: true });
      timed.syncs.push('acked');
    }
    expect(timed.syncs).toEqual(['loop', 'acked', 'loop', 'acked', 'loop', 'acked', 'loop', 'acked']);
    timed.syncs.length = 0;
    expect(timed.syncs).toEqual([]);
    expect(synced).toEqual([0.5, 0.75, 1, 0.25]);
    expect(told).toEqual(['loop', 'loop', 'loop', 'loop']);
    await log.close();
  });

  it('blocks by default while the mean stays within 10 ms', async () => {
    // Means 9, 9, 9, then 9 + (20 - 9) / 8 = 10.375: past 10.
    const timed = new TimedFs([9, 9, 9, 20, 1]);
    const { log } = await logOn(timed);
    await durableAppends(log, 5);
    expect(timed.syncs).toEqual(['loop', 'loop', 'loop', 'loop', 'pool']);
    await log.close();
  });

  it('keeps blocking past one slow sync among fast ones: the mean weighs the newest an eighth', async () => {
    // Means 0.5, 0.5, then 0.5 + (4.5 - 0.5) / 8 = 1: at the bound, not past it.
    const timed = new TimedFs([0.5, 0.5, 4.5, 0.5]);
    const { log } = await logOn(timed, { blockingSyncMsMax: 1 });
    await durableAppends(log, 4);
    expect(timed.syncs).toEqual(['loop', 'loop', 'loop', 'loop']);
    await log.close();
  });

  it('goes to the thread pool for a second once the mean passes the bound, then blocks once to look again', async () => {
    // Means 0.5, 0.5, then 0.5 + (5 - 0.5) / 8 = 1.0625: past the bound.
    const timed = new TimedFs([0.5, 0.5, 5, 0.25, 0.25, 0.25, 3, 0.25, 0.25]);
    const { log, synced, told } = await logOn(timed, { blockingSyncMsMax: 1 });
    await durableAppends(log, 3);
    expect(timed.syncs).toEqual(['loop', 'loop', 'loop']);
    const slowEndedAt = timed.nowMs;
    await durableAppends(log, 2);
    expect(timed.syncs.slice(3)).toEqual(['pool', 'pool']);
    // Just before the second is over, still the pool; at its end, one blocking sync: 3 ms, a
    // mean of its own (the one before the back-off is forgotten), so back to the pool.
    timed.nowMs = slowEndedAt + BLOCKING_SYNC_BACKOFF_MS - 0.5;
    await durableAppends(log, 1);
    expect(timed.syncs.slice(5)).toEqual(['pool']);
    timed.nowMs = slowEndedAt + BLOCKING_SYNC_BACKOFF_MS;
    await durableAppends(log, 2);
    expect(timed.syncs.slice(6)).toEqual(['loop', 'pool']);
    // A thread-pool sync is timed for onSync all the same, and onSync is told where each one ran.
    expect(synced.slice(3)).toEqual([0.25, 0.25, 0.25, 3, 0.25]);
    expect(told).toEqual(['loop', 'loop', 'loop', 'pool', 'pool', 'pool', 'loop', 'pool']);
    await log.close();
  });

  it('blocks again after the back-off when the disk is fast again', async () => {
    const timed = new TimedFs([2, 0.25, 0.25, 0.25]);
    const { log } = await logOn(timed, { blockingSyncMsMax: 1 });
    await durableAppends(log, 2);
    expect(timed.syncs).toEqual(['loop', 'pool']);
    timed.nowMs += BLOCKING_SYNC_BACKOFF_MS;
    await durableAppends(log, 2);
    expect(timed.syncs).toEqual(['loop', 'pool', 'loop', 'loop']);
    await log.close();
  });

  it('doubles the wait while each look finds the disk still slow, up to 64 s, and starts over after a fast look', async () => {
    const timed = new TimedFs([]);
    timed.thenMs = 5;
    const { log } = await logOn(timed, { blockingSyncMsMax: 1 });
    await durableAppends(log, 1);
    expect(timed.syncs).toEqual(['loop']);
    const waits: number[] = [];
    // Each round: just before the wait is over, the pool; at its end, one look, which finds 5 ms.
    for (const wait of [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 64_000]) {
      const slowEndedAt = timed.nowMs;
      timed.nowMs = slowEndedAt + wait - 0.5;
      await durableAppends(log, 1);
      timed.nowMs = slowEndedAt + wait;
      await durableAppends(log, 1);
      waits.push(wait);
      expect(timed.syncs.slice(-2)).toEqual(['pool', 'loop']);
    }
    expect(waits).toHaveLength(8);
    expect(BLOCKING_SYNC_BACKOFF_MS_MAX).toBe(64_000);
    // A look that finds the disk fast: blocking goes on, and the next slow stretch waits 1 s again.
    timed.thenMs = 0.5;
    const lastSlowEndedAt = timed.nowMs;
    timed.nowMs = lastSlowEndedAt + 64_000;
    await durableAppends(log, 2);
    expect(timed.syncs.slice(-2)).toEqual(['loop', 'loop']);
    timed.thenMs = 9;
    await durableAppends(log, 1);
    const slowAgainAt = timed.nowMs;
    timed.thenMs = 0.5;
    timed.nowMs = slowAgainAt + BLOCKING_SYNC_BACKOFF_MS - 0.5;
    await durableAppends(log, 1);
    timed.nowMs = slowAgainAt + BLOCKING_SYNC_BACKOFF_MS;
    await durableAppends(log, 1);
    expect(timed.syncs.slice(-3)).toEqual(['loop', 'pool', 'loop']);
    await log.close();
  });

  it("never blocks for the 'none' policy's flushes and syncs", async () => {
    const timed = new TimedFs([]);
    const { log } = await logOn(timed, { syncPolicy: 'none' });
    await log.append(1, new Uint8Array([1]));
    await log.sync();
    await log.append(1, new Uint8Array([2]));
    await log.sync();
    expect(timed.syncs).toEqual(['pool', 'pool']);
    await log.close();
  });

  it('never blocks on a clock that gives NaN', async () => {
    const timed = new TimedFs([]);
    const { log, synced } = await logOn(timed, { now: () => Number.NaN });
    await durableAppends(log, 2);
    expect(timed.syncs).toEqual(['pool', 'pool']);
    expect(synced).toEqual([Number.NaN, Number.NaN]);
    await log.close();
  });

  it('follows the bound it is given', async () => {
    const timed = new TimedFs([3, 3, 4, 20, 3]);
    const { log } = await logOn(timed, { blockingSyncMsMax: 4 });
    await durableAppends(log, 5);
    // Means 3, 3, 3.125, then 3.125 + 16.875 / 8 = 5.23: past 4.
    expect(timed.syncs).toEqual(['loop', 'loop', 'loop', 'loop', 'pool']);
    await log.close();
  });

  it('never blocks with a bound of 0, even when syncs take no time', async () => {
    const timed = new TimedFs([0, 0, 0]);
    const { log } = await logOn(timed, { blockingSyncMsMax: 0 });
    await durableAppends(log, 3);
    expect(timed.syncs).toEqual(['pool', 'pool', 'pool']);
    await log.close();
  });

  it('uses the thread pool for a file that offers no blocking sync', async () => {
    const timed = new TimedFs([0.125, 0.125, 0.125], false);
    const { log } = await logOn(timed);
    await durableAppends(log, 3);
    expect(timed.syncs).toEqual(['pool', 'pool', 'pool']);
    await log.close();
  });

  it('is poisoned by a blocking sync that fails: that append and every later one are refused, and nothing is retried', async () => {
    const timed = new TimedFs([0.25]);
    const { log } = await logOn(timed);
    await durableAppends(log, 1);
    timed.failNextBlocking = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    await expect(log.append(1, new Uint8Array([9]), { durable: true })).rejects.toMatchObject({ code: 'WAL_POISONED' });
    expect(log.poisoned).toBe(true);
    await expect(log.append(1, new Uint8Array([10]), { durable: true })).rejects.toMatchObject({ code: 'WAL_POISONED' });
    expect(timed.syncs).toEqual(['loop']);
    await log.close().catch(() => undefined);
  });

  it('reads back, after reopening, what was acknowledged on either path', async () => {
    const timed = new TimedFs([20, 0.25, 0.25]);
    const { log } = await logOn(timed);
    await durableAppends(log, 3);
    expect(timed.syncs).toEqual(['loop', 'pool', 'pool']);
    await log.close();
    const dir = dirs[dirs.length - 1] as string;
    const { log: again, recovered } = await openFileLog(dir);
    expect(recovered.entries.map((r) => [...r.payload])).toEqual([[0], [1], [2]]);
    await again.close();
  });
});
