/**
 * The file log's writer at exact points (test/wal/helpers/trace-fs.ts acts inside a call): a sync
 * asked for while a batch is being written waits for its own records to be synced; a rollover's
 * seal counts as the sync of what it covers; the log poisoned (its directory lock lost) in the
 * middle of a rollover or an fdatasync acknowledges nothing more, reports no sync, closes the
 * prepared segment and counts no further fdatasync; a failed preparation poisons at once; a
 * writer failure leaves no unhandled rejection; `onSync` reports only the sync's duration.
 */
import { describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import type { FileLogOptions } from '../../wal/options.ts';
import { ioError } from '../../wal/sim-fs.ts';
import { TraceFs } from './helpers/trace-fs.ts';

const DIR = '/w';
const SIZE = 4096;
const FIRST = 'first-00000000000000000001.wal.tmp';
const TAG = '028f5c28';

async function opened(options: FileLogOptions = {}) {
  const fs = new TraceFs(DIR);
  const { log } = await openFileLog(DIR, { fs, segmentBytes: SIZE, random: () => 0.01, ...options });
  return { fs, log, from: fs.calls.length };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const kib = (fill: number) => new Uint8Array(1000).fill(fill);

describe('syncs asked for during a batch', () => {
  it('a sync asked for while a batch is written waits for its own records, written and synced by the next batch', async () => {
    const { fs, log, from } = await opened({ syncPolicy: 'group' });
    let later: Promise<void> | undefined;
    fs.before = (call) => {
      if (!call.startsWith('write ')) return;
      fs.before = undefined;
      // Inside the first batch's write: one more record, and a sync of everything so far.
      void log.append(1, new Uint8Array(100));
      later = log.sync().then(() => {
        fs.calls.push('sync resolved');
      });
    };
    await Promise.all([1, 2, 3].map(() => log.append(1, new Uint8Array(100))));
    await later;
    expect(fs.since(from)).toEqual([`write ${FIRST} @32 [360] sync`, `write ${FIRST} @392 [120] sync`, `datasync ${FIRST}`, 'sync resolved']);
    expect(log.stats.datasyncs).toBe(1);
    await log.close();
  });

  it("a sync of records a rollover's seal made durable costs no second fdatasync", async () => {
    const { fs, log } = await opened({ syncPolicy: 'none', flushIntervalMs: 60_000 });
    for (let i = 1; i <= 3; i++) await log.append(1, kib(i));
    const before = log.stats.datasyncs;
    // A sync of records 1 to 3, then two records for the next segment, in one tick: sealing
    // segment 1 syncs 1 to 3, and nothing asks for 4 and 5 to be synced.
    const synced = log.sync();
    const appended = Promise.all([log.append(1, kib(4)), log.append(1, kib(5))]);
    await synced;
    expect(await appended).toEqual([4, 5]);
    expect(log.stats.datasyncs - before).toBe(1);
    expect(fs.calls.filter((c) => c.startsWith('datasync ')).at(-1)).toBe(`datasync ${FIRST}`);
    await log.close();
  });

  it('onSync gets the fdatasync time, not a clock reading', async () => {
    const seen: { ms: number; sinceStartMs: number }[] = [];
    const startedMs = performance.now();
    const { log } = await opened({ syncPolicy: 'group', onSync: (ms) => seen.push({ ms, sinceStartMs: performance.now() - startedMs }) });
    await log.append(1, new Uint8Array(1), { durable: true });
    expect(seen).toHaveLength(1);
    const [only] = seen;
    expect(only?.ms).toBeGreaterThanOrEqual(0);
    // The sync began after the test did, so it cannot have taken longer than the test so far.
    expect(only?.ms).toBeLessThanOrEqual(only?.sinceStartMs ?? -1);
    await log.close();
  });
});

describe('poisoned at an exact point', () => {
  it('lost its directory while sealing a segment: no write after, the prepared segment closed, no fdatasync counted', async () => {
    const { fs, log } = await opened({ syncPolicy: 'group' });
    for (let i = 1; i <= 3; i++) await log.append(1, kib(i), { durable: true });
    await turn();
    const from = fs.calls.length;
    const before = log.stats;
    fs.before = (call) => {
      if (call === `close ${FIRST}`) fs.loseLock();
    };
    await expect(log.append(1, kib(4), { durable: true })).rejects.toMatchObject({ code: 'WAL_POISONED' });
    await turn();
    expect(fs.since(from)).toEqual([`datasync ${FIRST}`, `close ${FIRST}`, `close prepared-${TAG}-0.wal.tmp`]);
    expect(log.stats).toEqual({ ...before, appends: 4, batches: before.batches + 1, datasyncs: before.datasyncs + 1, rollovers: 1 });
    await log.close();
    expect(fs.released).toBe(true);
  });

  it('lost its directory during an fdatasync: the append is refused and the sync never reported', async () => {
    const syncs: number[] = [];
    const { fs, log } = await opened({ syncPolicy: 'group', onSync: (_ms, records) => syncs.push(records) });
    fs.before = (call) => {
      if (call === `datasync ${FIRST}`) fs.loseLock();
    };
    await expect(log.append(1, new Uint8Array(1), { durable: true })).rejects.toMatchObject({ code: 'WAL_POISONED' });
    await turn();
    expect(syncs).toEqual([]);
    await log.close();
  });

  it('a failed preparation of the spare segment poisons the log at once, before any rollover', async () => {
    const { fs, log } = await opened({ syncPolicy: 'group' });
    fs.sim.faults.sync = (event) => (event.path.includes('prepared-') ? ioError('EIO', 'i/o error, fsync') : undefined);
    // Two records pass half of the segment: the spare is prepared, and its fsync fails.
    for (let i = 1; i <= 2; i++) await log.append(1, kib(i), { durable: true });
    await turn();
    expect(log.poisoned).toBe(true);
    expect(log.stats.rollovers).toBe(0);
    await expect(log.append(1, kib(3))).rejects.toMatchObject({ code: 'WAL_POISONED', message: expect.stringContaining('EIO: i/o error, fsync') });
    await log.close();
  });

  it('a failed write leaves no unhandled rejection behind', async () => {
    const unhandled: unknown[] = [];
    const listener = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      const { fs, log } = await opened({ syncPolicy: 'group' });
      fs.sim.faults.sync = () => ioError('EIO', 'i/o error, fdatasync');
      await expect(log.append(1, new Uint8Array(1), { durable: true })).rejects.toMatchObject({ code: 'WAL_POISONED' });
      await turn();
      await turn();
      expect(unhandled).toEqual([]);
      await log.close();
    } finally {
      process.off('unhandledRejection', listener);
    }
  });
});

