/**
 * The file log's refusals and counters, exactly: the message and code of each refused append,
 * checkpoint and sync, the poisoned log's message, what a rollover and a checkpoint do on disk,
 * and the stats and `onSync` figures a service's metrics read. On the simulated disk.
 */
import { describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import type { Log } from '../../wal/log.ts';
import type { FileLogOptions } from '../../wal/options.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { seededRandom } from './helpers/random.ts';

const DIR = '/w';
const SIZE = 4096;

async function opened(options: FileLogOptions = {}) {
  const fs = new SimFs(seededRandom(3));
  const { log } = await openFileLog(DIR, { fs, segmentBytes: SIZE, ...options });
  return { fs, log };
}

describe('refusals', () => {
  it('names the type, the payload and the size limit it refuses', async () => {
    const { log } = await opened({ recordBytesMax: 100 });
    await expect(log.append(0, new Uint8Array(1))).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Expected `type` to be an integer in 1..255, got 0.' });
    await expect(log.append(256, new Uint8Array(1))).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Expected `type` to be an integer in 1..255, got 256.' });
    await expect(log.append(2.5, new Uint8Array(1))).rejects.toMatchObject({ message: 'Expected `type` to be an integer in 1..255, got 2.5.' });
    await expect(log.append(1, [1, 2] as unknown as Uint8Array)).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Expected `payload` to be a Uint8Array.' });
    await expect(log.append(1, new Uint8Array(101))).rejects.toMatchObject({ code: 'WAL_RECORD_TOO_LARGE', message: 'Record of 101 bytes is larger than `recordBytesMax` (100).' });
    expect(await log.append(255, new Uint8Array(100))).toBe(1);
    expect(await log.append(1, new Uint8Array(0))).toBe(2);
    expect(log.lastLsn).toBe(2);
    await log.close();
  });

  it('says how full the queue is when it refuses an append', async () => {
    const { log } = await opened({ pendingAppendsMax: 2, pendingBytesMax: 1000, recordBytesMax: 100 });
    const first = [log.append(1, new Uint8Array(4)), log.append(1, new Uint8Array(4))];
    await expect(log.append(1, new Uint8Array(4))).rejects.toMatchObject({
      code: 'WAL_QUEUE_FULL',
      message: 'Too many appends in flight (2 appends, 48 bytes; limits `pendingAppendsMax` 2, `pendingBytesMax` 1000).',
    });
    expect(await Promise.all(first)).toEqual([1, 2]);
    await log.close();
  });

  it('counts bytes against pendingBytesMax, up to exactly the limit, and frees them once written', async () => {
    // Frames of 100-byte payloads take 120 bytes: two fit in 240, a third does not.
    const { log } = await opened({ pendingBytesMax: 240, recordBytesMax: 100 });
    const two = [log.append(1, new Uint8Array(100)), log.append(1, new Uint8Array(100))];
    await expect(log.append(1, new Uint8Array(1))).rejects.toMatchObject({ code: 'WAL_QUEUE_FULL', message: expect.stringContaining('(2 appends, 240 bytes;') });
    expect(await Promise.all(two)).toEqual([1, 2]);
    expect(await Promise.all([log.append(1, new Uint8Array(100)), log.append(1, new Uint8Array(100))])).toEqual([3, 4]);
    await log.close();
  });

  it('names the range and the older checkpoint it refuses, and bounds the checkpoints in flight', async () => {
    const { log } = await opened();
    for (let i = 0; i < 5; i++) await log.append(1, new Uint8Array([i]));
    await expect(log.checkpoint(6, new Uint8Array())).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Expected checkpoint `lsn` to be an integer in 1..5 (the last LSN), got 6.' });
    await expect(log.checkpoint(2.5, new Uint8Array())).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Expected checkpoint `lsn` to be an integer in 1..5 (the last LSN), got 2.5.' });
    await expect(log.checkpoint(3, 'x' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Expected checkpoint `data` to be a Uint8Array.' });
    await log.checkpoint(1, new Uint8Array([1]));
    await log.checkpoint(5, new Uint8Array([5]));
    // The same LSN again is allowed; an older one is not.
    await log.checkpoint(5, new Uint8Array([6]));
    await expect(log.checkpoint(4, new Uint8Array())).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Checkpoint LSN 4 is older than the checkpoint at LSN 5.' });
    const inFlight = Array.from({ length: 16 }, () => log.checkpoint(5, new Uint8Array([7])));
    await expect(log.checkpoint(5, new Uint8Array())).rejects.toMatchObject({ code: 'WAL_QUEUE_FULL', message: 'Too many checkpoints in flight (16); await the earlier ones.' });
    await Promise.all(inFlight);
    await log.checkpoint(5, new Uint8Array([8]));
    await log.close();
  });

  it('says which log is closed', async () => {
    const { log } = await opened();
    await log.close();
    for (const refused of [log.append(1, new Uint8Array(1)), log.sync(), log.checkpoint(1, new Uint8Array())]) {
      await expect(refused).rejects.toMatchObject({ code: 'WAL_CLOSED', message: `The log in ${DIR} is closed.` });
    }
  });

  it('names the I/O error that poisoned it, keeps it as the cause, and refuses everything after it', async () => {
    const { fs, log } = await opened({ syncPolicy: 'always' });
    await log.append(1, new Uint8Array(1), { durable: true });
    const eio = Object.assign(new Error('i/o error, fdatasync'), { code: 'EIO' });
    let failed = false;
    fs.faults.sync = () => (failed ? undefined : ((failed = true), eio));
    const error = await log.append(1, new Uint8Array(1), { durable: true }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'WAL_POISONED',
      message: `The log in ${DIR} is poisoned by an I/O error (EIO: i/o error, fdatasync); nothing after it is acknowledged and fsync is not retried. Restart to recover.`,
    });
    expect((error as Error).cause).toBe(eio);
    expect(log.poisoned).toBe(true);
    await expect(log.sync()).rejects.toBe(error);
    await expect(log.append(1, new Uint8Array(1))).rejects.toBe(error);
    await expect(log.checkpoint(1, new Uint8Array())).rejects.toBe(error);
    await log.close();
  });
});

describe('counters and the sync hook', () => {
  it('always: one batch and one fdatasync per durable append, each reported with its record count', async () => {
    const syncs: number[][] = [];
    const { log } = await opened({ syncPolicy: 'always', onSync: (ms, records) => syncs.push([ms >= 0 ? 1 : 0, records]) });
    await Promise.all([log.append(1, new Uint8Array(1)), log.append(1, new Uint8Array(1), { durable: true }), log.append(1, new Uint8Array(1), { durable: true })]);
    // The first batch ends at the first durable append and carries the one before it.
    expect(syncs).toEqual([
      [1, 2],
      [1, 1],
    ]);
    expect(log.stats).toEqual({ appends: 3, batches: 2, datasyncs: 2, rollovers: 0, rolloverWaits: 0 });
    await log.close();
  });

  it('group: appends made together share one batch and one fdatasync when one of them is durable', async () => {
    const syncs: number[] = [];
    const { fs, log } = await opened({ syncPolicy: 'group', onSync: (_ms, records) => syncs.push(records) });
    const before = fs.stats.datasyncs;
    await Promise.all([log.append(1, new Uint8Array(1)), log.append(1, new Uint8Array(1), { durable: true }), log.append(1, new Uint8Array(1))]);
    expect(syncs).toEqual([3]);
    expect(fs.stats.datasyncs - before).toBe(1);
    // Without a durable append a batch is written but not synced.
    await Promise.all([log.append(1, new Uint8Array(1)), log.append(1, new Uint8Array(1))]);
    expect(fs.stats.datasyncs - before).toBe(1);
    expect(log.stats).toEqual({ appends: 5, batches: 2, datasyncs: 1, rollovers: 0, rolloverWaits: 0 });
    // sync() syncs what was written, and then nothing more until something new is appended.
    await log.sync();
    await log.sync();
    expect(fs.stats.datasyncs - before).toBe(2);
    expect(syncs).toEqual([3, 0]);
    await log.close();
  });

  /** Two durable appends from two timers due together: one turn, each its own callback with its microtasks drained after it, as two requests that arrived together are. */
  const appendFromTwoCallbacks = (log: Log): Promise<number[]> =>
    new Promise((resolve) => {
      const lsns: Promise<number>[] = [];
      setTimeout(() => lsns.push(log.append(1, new Uint8Array(1), { durable: true })), 0);
      setTimeout(() => {
        lsns.push(log.append(1, new Uint8Array(1), { durable: true }));
        resolve(Promise.all(lsns));
      }, 0);
    });

  it('group: appends made by two callbacks of one event loop turn share one batch and one fdatasync', async () => {
    const syncs: number[] = [];
    const { fs, log } = await opened({ syncPolicy: 'group', onSync: (_ms, records) => syncs.push(records) });
    const before = fs.stats.datasyncs;
    expect(await appendFromTwoCallbacks(log)).toEqual([1, 2]);
    expect(syncs).toEqual([2]);
    expect(fs.stats.datasyncs - before).toBe(1);
    await log.close();
  });

  it('group: a writer started as a microtask (`startWriter`) writes the first callback\'s append alone', async () => {
    const syncs: number[] = [];
    const { fs, log } = await opened({ syncPolicy: 'group', startWriter: queueMicrotask, onSync: (_ms, records) => syncs.push(records) });
    const before = fs.stats.datasyncs;
    expect(await appendFromTwoCallbacks(log)).toEqual([1, 2]);
    expect(syncs).toEqual([1, 1]);
    expect(fs.stats.datasyncs - before).toBe(2);
    await log.close();
  });

  it('none: a durable append resolves without an fdatasync; sync() and close still sync', async () => {
    const { fs, log } = await opened({ syncPolicy: 'none', flushIntervalMs: 60_000 });
    const before = fs.stats.datasyncs;
    expect(await log.append(1, new Uint8Array(1), { durable: true })).toBe(1);
    expect(fs.stats.datasyncs - before).toBe(0);
    await log.sync();
    expect(fs.stats.datasyncs - before).toBe(1);
    await log.append(1, new Uint8Array(1));
    await log.close();
    expect(fs.stats.datasyncs - before).toBe(2);
  });

  it('counts a rollover and seals the old segment before the new name appears', async () => {
    const events: string[] = [];
    const { fs, log } = await opened({ syncPolicy: 'group' });
    // 3 records of 1000 bytes (1,024-byte frames) fill a 4 KiB segment after its header; the fourth rolls over.
    for (let i = 0; i < 3; i++) await log.append(1, new Uint8Array(1000).fill(i + 1), { durable: true });
    fs.onSync = (event) => events.push(`${event.kind} ${event.path}`);
    expect(await log.append(1, new Uint8Array(1000).fill(4), { durable: true })).toBe(4);
    expect(log.stats).toMatchObject({ appends: 4, rollovers: 1 });
    // Files keep the path they were opened under: the first segment's temporary name, the prepared one's.
    expect(events[0]).toBe(`datasync ${DIR}/first-00000000000000000001.wal.tmp`);
    expect(events.at(-1)).toMatch(/^datasync \/w\/prepared-[0-9a-f]{8}-0\.wal\.tmp$/);
    expect(events.slice(1, -1)).toContain(`dir ${DIR}`);
    expect((await fs.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort()).toEqual(['00000000000000000001.wal', '00000000000000000004.wal']);
    await log.close();
    expect((await fs.readdir(DIR)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    const again = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    expect(again.recovered.entries.map((e) => e.payload[0])).toEqual([1, 2, 3, 4]);
    await again.log.close();
  });
});

describe('checkpoints and shutdown on disk', () => {
  const walNames = async (fs: SimFs) => (await fs.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort();

  it('makes the records a checkpoint covers durable first, then drops what it covers, and syncs the directory only when it dropped something', async () => {
    const { fs, log } = await opened({ syncPolicy: 'none', flushIntervalMs: 60_000 });
    // Four segments: 1..3, 4..6, 7..9, 10 (1,000-byte records, three to a segment).
    for (let i = 0; i < 10; i++) await log.append(1, new Uint8Array(1000).fill(i + 1));
    expect(await walNames(fs)).toEqual(['00000000000000000001.wal', '00000000000000000004.wal', '00000000000000000007.wal', '00000000000000000010.wal']);
    const dirSyncs = fs.stats.dirSyncs;
    await log.checkpoint(2, new Uint8Array([2]));
    // LSN 2 does not cover all of the first segment: nothing is deleted, and the directory is
    // synced only for the checkpoint file's rename.
    expect(await walNames(fs)).toHaveLength(4);
    expect(fs.stats.dirSyncs - dirSyncs).toBe(1);
    const events: string[] = [];
    fs.onSync = (event) => events.push(`${event.kind} ${event.path.replace(`${DIR}/`, '')}`);
    // LSN 10 covers every record; the active segment (from 10) stays.
    await log.checkpoint(10, new Uint8Array([10]));
    expect(await walNames(fs)).toEqual(['00000000000000000010.wal']);
    expect((await fs.readdir(DIR)).filter((n) => n.endsWith('.ckpt'))).toEqual(['checkpoint-00000000000000000010.ckpt']);
    // Record 10 was never synced under 'none' (rollovers sealed the ones before it): the checkpoint syncs it before writing its file.
    expect(events[0]).toMatch(/^datasync prepared-/);
    expect(events[1]).toBe('sync checkpoint-00000000000000000010.ckpt.tmp');
    expect(events.filter((e) => e === `dir ${DIR}`)).toHaveLength(2);
    expect(events.at(-1)).toBe(`dir ${DIR}`);
    await log.close();
    const again = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    expect(again.recovered.checkpoint).toEqual({ lsn: 10, data: new Uint8Array([10]) });
    expect(again.recovered.entries).toEqual([]);
    await again.log.close();
  });

  it('never drops the active segment, even when the checkpoint covers all of it', async () => {
    const { fs, log } = await opened();
    for (let i = 0; i < 4; i++) await log.append(1, new Uint8Array(1000));
    await log.checkpoint(4, new Uint8Array([4]));
    expect(await walNames(fs)).toEqual(['00000000000000000004.wal']);
    expect(await log.append(1, new Uint8Array(1), { durable: true })).toBe(5);
    await log.close();
  });

  it('runs checkpoints one at a time in call order, the last one winning', async () => {
    const { fs, log } = await opened();
    for (let i = 0; i < 5; i++) await log.append(1, new Uint8Array([i]));
    await Promise.all([log.checkpoint(2, new Uint8Array([2])), log.checkpoint(4, new Uint8Array([4])), log.checkpoint(5, new Uint8Array([5]))]);
    expect((await fs.readdir(DIR)).filter((n) => n.endsWith('.ckpt'))).toEqual(['checkpoint-00000000000000000005.ckpt']);
    await log.close();
  });

  it('on close, syncs what was appended, removes the prepared spare segment and closes every file', async () => {
    const { fs, log } = await opened({ syncPolicy: 'none', flushIntervalMs: 60_000 });
    // Past half a segment: a spare is being prepared under a temporary name.
    for (let i = 0; i < 3; i++) await log.append(1, new Uint8Array(1000));
    const before = fs.stats.datasyncs;
    await log.close();
    expect(fs.stats.datasyncs - before).toBe(1);
    expect((await fs.readdir(DIR)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    fs.crash({ data: 'lose', dir: 'lose' });
    const again = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    expect(again.recovered.entries).toHaveLength(3);
    await again.log.close();
  });

  it('reports a failed final sync from close, and is poisoned by it', async () => {
    const { fs, log } = await opened({ syncPolicy: 'none', flushIntervalMs: 60_000 });
    await log.append(1, new Uint8Array(1));
    fs.faults.sync = () => Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    await expect(log.close()).rejects.toMatchObject({ code: 'WAL_POISONED' });
    expect(log.poisoned).toBe(true);
  });
});
