/**
 * What the file log's writer hands the disk, call by call (test/wal/helpers/trace-fs.ts): a
 * batch of consecutive frames is one write of as few buffers as the staging runs allow (at most
 * 256 KiB each, or one frame's size), blocking up to 64 KiB and asynchronous above; a rollover
 * seals and closes the old segment before the new name appears; the spare segment is prepared
 * from exactly half a segment, under a name unique to this instance; a frame that exactly fills
 * a segment stays in it. On the simulated disk.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import type { FileLogOptions } from '../../wal/options.ts';
import { TraceFs } from './helpers/trace-fs.ts';

const DIR = '/w';
const SIZE = 4096;
const FIRST = 'first-00000000000000000001.wal.tmp';
// `random: () => 0.01` gives every salt 0x028f5c28, and so this instance tag (eight hex digits, leading zero kept).
const TAG = '028f5c28';

async function opened(options: FileLogOptions = {}, traceOptions: { readonly withWritevSync?: boolean } = {}) {
  const fs = new TraceFs(DIR, traceOptions);
  const { log } = await openFileLog(DIR, { fs, segmentBytes: SIZE, random: () => 0.01, ...options });
  return { fs, log, from: fs.calls.length };
}

const writes = (calls: readonly string[]) => calls.filter((c) => c.startsWith('write '));
const payloads = (count: number, bytes: number, first = 1) => Array.from({ length: count }, (_, i) => new Uint8Array(bytes).fill((first + i) % 256));
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.restoreAllMocks();
});

describe('batches', () => {
  it('writes appends made together as one buffer in one blocking write, and the next batch right after it', async () => {
    const { fs, log, from } = await opened();
    await Promise.all(payloads(3, 100).map((p) => log.append(1, p)));
    await Promise.all(payloads(2, 100).map((p) => log.append(1, p)));
    // 100-byte payloads make 120-byte frames, after the 32-byte segment header.
    expect(fs.since(from)).toEqual([`write ${FIRST} @32 [360] sync`, `write ${FIRST} @392 [240] sync`]);
    await log.close();
  });

  it("under 'always' writes only up to the first durable append, then the rest", async () => {
    const { fs, log, from } = await opened({ syncPolicy: 'always' });
    await Promise.all([log.append(1, new Uint8Array(100)), log.append(1, new Uint8Array(100), { durable: true }), log.append(1, new Uint8Array(100))]);
    expect(fs.since(from)).toEqual([`write ${FIRST} @32 [240] sync`, `datasync ${FIRST}`, `write ${FIRST} @272 [120] sync`]);
    await log.close();
  });

  it('writes at most 64 KiB blocking and more asynchronously, and always asynchronously to a file without writevSync', async () => {
    const big = { segmentBytes: 1024 * 1024 };
    const exact = await opened(big);
    // 64 frames of 1,024 bytes are exactly 64 KiB.
    await Promise.all(payloads(64, 1000).map((p) => exact.log.append(1, p)));
    await Promise.all(payloads(65, 1000).map((p) => exact.log.append(1, p)));
    expect(writes(exact.fs.since(exact.from))).toEqual([`write ${FIRST} @32 [65536] sync`, `write ${FIRST} @65568 [66560] async`]);
    await exact.log.close();
    const plain = await opened(big, { withWritevSync: false });
    await log1(plain.log);
    expect(writes(plain.fs.since(plain.from))).toEqual([`write ${FIRST} @32 [120] async`]);
    await plain.log.close();
  });

  it('stages at most 256 KiB per buffer, and a frame larger than that in a buffer of its own size', async () => {
    const { fs, log, from } = await opened({ segmentBytes: 1024 * 1024 });
    // 300 frames of 1,024 bytes: 256 fill the first staging buffer exactly, 44 go to the next.
    await Promise.all(payloads(300, 1000).map((p) => log.append(1, p)));
    // A small frame, then one of 300,024 bytes: two buffers, still one write.
    await Promise.all([log.append(1, new Uint8Array(100)), log.append(1, new Uint8Array(300_000).fill(7))]);
    expect(writes(fs.since(from))).toEqual([`write ${FIRST} @32 [262144,45056] async`, `write ${FIRST} @307232 [120,300024] async`]);
    await log.close();
    const again = await openFileLog(DIR, { fs, segmentBytes: 1024 * 1024 });
    const entries = again.recovered.entries;
    expect(entries).toHaveLength(302);
    expect(entries[300]?.payload).toEqual(new Uint8Array(100));
    // Compared as bytes: a deep equality of 300,000 elements takes seconds.
    const large = entries[301]?.payload ?? new Uint8Array();
    expect(Buffer.compare(large, new Uint8Array(300_000).fill(7))).toBe(0);
    await again.log.close();
  });
});

async function log1(log: { append(type: number, payload: Uint8Array): Promise<number> }): Promise<void> {
  await log.append(1, new Uint8Array(100));
}

describe('segments', () => {
  it('keeps a frame that exactly fills a segment in it and starts the next segment with the one after', async () => {
    const { fs, log } = await opened();
    // 32 + 3 x 1,024 + 992 = 4,096.
    for (const p of [...payloads(3, 1000), new Uint8Array(972)]) await log.append(1, p);
    expect((await fs.readdir(DIR)).filter((n) => n.endsWith('.wal'))).toEqual(['00000000000000000001.wal']);
    expect(await log.append(1, new Uint8Array(1))).toBe(5);
    expect((await fs.readdir(DIR)).filter((n) => n.endsWith('.wal')).sort()).toEqual(['00000000000000000001.wal', '00000000000000000005.wal']);
    await log.close();
  });

  it('starts preparing the spare segment when the active one is exactly half full, not before', async () => {
    const below = await opened();
    // 32 + 1,024 + 984 = 2,040 bytes: below half of 4,096.
    for (const p of [new Uint8Array(1000), new Uint8Array(964)]) await below.log.append(1, p);
    expect(below.fs.since(below.from).filter((c) => c.startsWith('open '))).toEqual([]);
    await below.log.close();
    const half = await opened();
    // 32 + 1,024 + 992 = 2,048 bytes: exactly half.
    for (const p of [new Uint8Array(1000), new Uint8Array(972)]) await half.log.append(1, p);
    expect(half.fs.since(half.from).filter((c) => c.startsWith('open '))).toEqual([`open prepared-${TAG}-0.wal.tmp create`]);
    await half.log.close();
  });

  it('seals and closes the old segment, then names the prepared one, then writes to it; each preparation has its own name', async () => {
    const { fs, log } = await opened({ syncPolicy: 'group' });
    for (const p of payloads(3, 1000)) await log.append(1, p, { durable: true });
    // Let the spare segment's preparation finish: this rollover does not wait for it.
    await turn();
    const from = fs.calls.length;
    expect(await log.append(1, new Uint8Array(1000).fill(4), { durable: true })).toBe(4);
    const next = `prepared-${TAG}-0.wal.tmp`;
    expect(fs.since(from)).toEqual([
      `datasync ${FIRST}`,
      `close ${FIRST}`,
      `write ${next} @0 [32] async`,
      `rename ${next} 00000000000000000004.wal`,
      'syncdir .',
      `write ${next} @32 [1024] sync`,
      `datasync ${next}`,
    ]);
    // Three batches and three fdatasyncs before, one each now plus the seal of segment 1.
    expect(log.stats).toEqual({ appends: 4, batches: 4, datasyncs: 5, rollovers: 1, rolloverWaits: 0 });
    for (const p of payloads(2, 1000, 5)) await log.append(1, p, { durable: true });
    expect(fs.calls.filter((c) => c.startsWith('open prepared-'))).toEqual([`open ${next} create`, `open prepared-${TAG}-1.wal.tmp create`]);
    await log.close();
  });

  it('counts a rollover that had to wait for its segment to be prepared', async () => {
    const { log } = await opened({ syncPolicy: 'group' });
    await log.append(1, new Uint8Array(1000), { durable: true });
    // Below half a segment no spare is prepared; this record does not fit and plans one now.
    await log.append(1, new Uint8Array(3500), { durable: true });
    expect(log.stats).toEqual({ appends: 2, batches: 2, datasyncs: 3, rollovers: 1, rolloverWaits: 1 });
    await log.close();
  });

  it('prepares a segment for every rollover of a batch that fills several, whatever was prepared before', async () => {
    const { fs, log } = await opened();
    // Four records of 1,024 bytes in one tick: the fourth plans segment 4 while segment 1 is
    // (by its records so far) only a quarter full.
    expect(await Promise.all(payloads(4, 1000).map((p) => log.append(1, p)))).toEqual([1, 2, 3, 4]);
    expect(log.poisoned).toBe(false);
    await log.close();
    const again = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    expect(again.recovered.entries.map((e) => e.payload[0])).toEqual([1, 2, 3, 4]);
    await again.log.close();
  });
});

describe('staging buffers', () => {
  const stagingAllocations = (spy: { mock: { calls: unknown[][] } }) => spy.mock.calls.filter(([bytes]) => bytes === SIZE).length;

  it('reuses the buffers of written runs, at most four of them, and never one still in use', async () => {
    const spy = vi.spyOn(Buffer, 'allocUnsafeSlow');
    const { fs, log } = await opened();
    const rounds = [0, 1, 2];
    const counts: number[] = [];
    for (const round of rounds) {
      const before = stagingAllocations(spy);
      // Eighteen 1,024-byte records: six segments, six staging runs, written in one batch.
      await Promise.all(payloads(18, 1000, 1 + round * 18).map((p) => log.append(1, p)));
      counts.push(stagingAllocations(spy) - before);
    }
    // The first round allocates all six; then four come from the pool and two are new.
    expect(counts).toEqual([6, 2, 2]);
    await log.close();
    const again = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    expect(again.recovered.entries.map((e) => e.payload[0])).toEqual(Array.from({ length: 54 }, (_, i) => i + 1));
    await again.log.close();
  });

  it('does not pool a buffer made for one large frame', async () => {
    const segmentBytes = 1024 * 1024;
    const spy = vi.spyOn(Buffer, 'allocUnsafeSlow');
    const { log } = await opened({ segmentBytes });
    const runAllocations = () => spy.mock.calls.filter(([bytes]) => bytes === 256 * 1024).length;
    // A staging run, then a frame of its own (300,024 bytes), then a run that fills exactly: the
    // large frame's buffer is retired by the next batch.
    await Promise.all([log.append(1, new Uint8Array(100)), log.append(1, new Uint8Array(300_000))]);
    await Promise.all(payloads(256, 1000).map((p) => log.append(1, p)));
    const before = runAllocations();
    // One more record needs a new run: the only pooled buffer is the first run's, already reused.
    await log.append(1, new Uint8Array(1000));
    await log.append(1, new Uint8Array(300_000 - 8));
    await Promise.all(payloads(300, 1000).map((p) => log.append(1, p)));
    expect(runAllocations() - before).toBe(1);
    await log.close();
  });
});
