/**
 * The file log's bounds and its checkpoint and timer housekeeping, exactly: `dir` must be a
 * string; the append queue counts only unwritten appends; syncs in flight and checkpoint sizes
 * are bounded, with messages; the waiter queue survives more than 1,024 batches; a checkpoint
 * drops the segments it covers (from exactly the last record of one) on a reopened log, drops
 * older checkpoints and then syncs the directory, and fails like any write; a checkpoint queued
 * behind one that poisoned the log is refused; the flush timer exists only under 'none' and
 * stops with a poisoned or closed log. On the simulated disk.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import type { FileLogOptions } from '../../wal/options.ts';
import { SimFs, ioError } from '../../wal/sim-fs.ts';
import { seededRandom } from './helpers/random.ts';
import { TraceFs } from './helpers/trace-fs.ts';

const DIR = '/w';
const SIZE = 4096;
const CHECKPOINT_BYTES_MAX = 512 * 1024 * 1024;

async function opened(options: FileLogOptions = {}) {
  const fs = new SimFs(seededRandom(5));
  const { log } = await openFileLog(DIR, { fs, segmentBytes: SIZE, ...options });
  return { fs, log };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const kib = (fill: number) => new Uint8Array(1000).fill(fill);

/** Whether `promise` settles within `turns` event-loop turns (the simulated disk needs one). */
async function settlesWithin(promise: Promise<unknown>, turns: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < turns && !settled; i++) await turn();
  return settled;
}

/** An object that passes for a Uint8Array of `length` bytes without taking the memory. */
const claimedBytes = (length: number): Uint8Array => Object.setPrototypeOf({ length }, Uint8Array.prototype) as Uint8Array;

afterEach(() => {
  vi.useRealTimers();
});

describe('bounds', () => {
  it('refuses a directory that is not a string', async () => {
    await expect(openFileLog(5 as unknown as string)).rejects.toMatchObject({ code: 'WAL_INVALID_OPTION', message: 'Expected `dir` to be a non-empty string.' });
  });

  it('counts only appends not yet written against pendingAppendsMax', async () => {
    const { log } = await opened({ syncPolicy: 'always', pendingAppendsMax: 2 });
    const first = log.append(1, new Uint8Array(1), { durable: true });
    const second = log.append(1, new Uint8Array(1), { durable: true });
    // When the first is acknowledged the second is still in flight: one pending, room for one.
    const third = first.then(() => log.append(1, new Uint8Array(1)));
    expect(await Promise.all([first, second, third])).toEqual([1, 2, 3]);
    await log.close();
  });

  it('bounds the syncs in flight by pendingAppendsMax, and says so', async () => {
    const { log } = await opened({ syncPolicy: 'group', pendingAppendsMax: 2 });
    const appended = log.append(1, new Uint8Array(1));
    const syncs = [log.sync(), log.sync()];
    await expect(log.sync()).rejects.toMatchObject({ code: 'WAL_QUEUE_FULL', message: 'Too many syncs in flight (2; limit `pendingAppendsMax`).' });
    await Promise.all([appended, ...syncs]);
    await log.close();
  });

  it('refuses a checkpoint larger than 512 MiB for its size, and one of exactly 512 MiB only for other reasons', async () => {
    const { log } = await opened();
    await log.append(1, new Uint8Array(1));
    // Claimed far beyond any buffer, so that a log that wrongly accepted it would fail fast
    // (allocating it throws) rather than copy 512 MiB.
    const huge = Number.MAX_SAFE_INTEGER;
    await expect(log.checkpoint(1, claimedBytes(huge))).rejects.toMatchObject({
      code: 'WAL_RECORD_TOO_LARGE',
      message: `Checkpoint of ${huge} bytes is larger than the ${CHECKPOINT_BYTES_MAX} bytes a checkpoint may have.`,
    });
    // With 16 checkpoints in flight, one of exactly the limit passes the size check and is
    // refused by the next one; nothing of it is written.
    const inFlight = Array.from({ length: 16 }, () => log.checkpoint(1, new Uint8Array([1])));
    await expect(log.checkpoint(1, claimedBytes(CHECKPOINT_BYTES_MAX))).rejects.toMatchObject({ code: 'WAL_QUEUE_FULL' });
    await Promise.all(inFlight);
    expect(log.poisoned).toBe(false);
    await log.close();
  });

  it("acknowledges more than 1,024 queued durable appends under 'always', one batch each", async () => {
    const { log } = await opened({ syncPolicy: 'always', segmentBytes: 1024 * 1024 });
    const count = 1100;
    const lsns = await Promise.all(Array.from({ length: count }, () => log.append(1, new Uint8Array(1), { durable: true })));
    expect(lsns).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(log.stats).toEqual({ appends: count, batches: count, datasyncs: count, rollovers: 0, rolloverWaits: 0 });
    await log.close();
  });
});

describe('checkpoints', () => {
  it('on a reopened log, drops a segment from exactly its last record, then older checkpoints, syncing the directory after', async () => {
    const fs = new TraceFs(DIR);
    const first = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    // Segments 1..3, 4..6, 7..9 and 10.
    for (let i = 1; i <= 10; i++) await first.log.append(1, kib(i));
    await first.log.close();
    const { log } = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    const removals = (from: number) => fs.since(from).filter((c) => c.startsWith('unlink ') || c === 'syncdir .');
    let from = fs.calls.length;
    await log.checkpoint(3, new Uint8Array([3]));
    // The checkpoint's rename is synced, then segment 1 goes, then the directory is synced again.
    expect(removals(from)).toEqual(['syncdir .', 'unlink 00000000000000000001.wal', 'syncdir .']);
    from = fs.calls.length;
    await log.checkpoint(6, new Uint8Array([6]));
    expect(removals(from)).toEqual(['syncdir .', 'unlink checkpoint-00000000000000000003.ckpt', 'unlink 00000000000000000004.wal', 'syncdir .']);
    from = fs.calls.length;
    // Only an older checkpoint to drop: the directory is still synced after it.
    await log.checkpoint(8, new Uint8Array([8]));
    expect(removals(from)).toEqual(['syncdir .', 'unlink checkpoint-00000000000000000006.ckpt', 'syncdir .']);
    await log.close();
    const again = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    expect(again.recovered.checkpoint?.lsn).toBe(8);
    expect(again.recovered.entries.map((e) => e.payload[0])).toEqual([9, 10]);
    await again.log.close();
  });

  it('a failed checkpoint write poisons the log and the checkpoint rejects', async () => {
    const { fs, log } = await opened();
    await log.append(1, new Uint8Array(1));
    fs.faults.write = (event) => (event.path.includes('checkpoint-') ? ioError('EIO', 'i/o error, write') : undefined);
    await expect(log.checkpoint(1, new Uint8Array([1]))).rejects.toMatchObject({ code: 'WAL_POISONED', message: expect.stringContaining('EIO: i/o error, write') });
    expect(log.poisoned).toBe(true);
    await log.close();
  });

  it('refuses a checkpoint queued behind one that poisoned the log, even one whose records are not yet durable', async () => {
    const { fs, log } = await opened({ syncPolicy: 'none', flushIntervalMs: 60_000 });
    await log.append(1, new Uint8Array(1));
    let queued: Promise<void> | undefined;
    fs.faults.write = (event) => {
      if (!event.path.includes('checkpoint-')) return undefined;
      // While the first checkpoint is written: a new record and a checkpoint of it, accepted.
      void log.append(1, new Uint8Array(1)).catch(() => undefined);
      queued = log.checkpoint(2, new Uint8Array([2]));
      return ioError('EIO', 'i/o error, write');
    };
    await expect(log.checkpoint(1, new Uint8Array([1]))).rejects.toMatchObject({ code: 'WAL_POISONED' });
    expect(queued).toBeDefined();
    const refused = (queued as Promise<void>).catch((error: unknown) => error);
    expect(await settlesWithin(refused, 20)).toBe(true);
    expect(await refused).toMatchObject({ code: 'WAL_POISONED' });
    await log.close();
  });
});

describe('the flush timer', () => {
  it("exists only under 'none', and stops when the log is closed", async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const group = await opened({ syncPolicy: 'group' });
    expect(vi.getTimerCount()).toBe(0);
    await group.log.close();
    const none = await opened({ syncPolicy: 'none', flushIntervalMs: 50 });
    expect(vi.getTimerCount()).toBe(1);
    await none.log.append(1, new Uint8Array(1));
    const before = none.fs.stats.datasyncs;
    vi.advanceTimersByTime(50);
    await turn();
    expect(none.fs.stats.datasyncs - before).toBe(1);
    await none.log.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stops when the log is poisoned', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { fs, log } = await opened({ syncPolicy: 'none', flushIntervalMs: 50 });
    await log.append(1, new Uint8Array(1));
    fs.faults.sync = () => ioError('EIO', 'i/o error, fdatasync');
    await expect(log.sync()).rejects.toMatchObject({ code: 'WAL_POISONED' });
    expect(vi.getTimerCount()).toBe(0);
    await log.close();
  });
});
