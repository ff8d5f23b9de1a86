/**
 * Edges of the scan and of recovery that the first exact tests left open: the zero tail of a
 * segment read through more than one window, a segment that starts at the checkpoint's own LSN,
 * which later frames count as evidence after a bad one, the lock options recovery passes, and
 * every file it reads being closed again.
 */
import { describe, expect, it } from 'vitest';
import type { DirLock, DirLockOptions } from '../../wal/dir-lock.ts';
import { openFileLog } from '../../wal/file-log.ts';
import { checkpointName, encodeCheckpoint, encodeFrame, encodeSegmentHeader, segmentName } from '../../wal/format.ts';
import type { OpenMode, WalFile, WalFs } from '../../wal/fs.ts';
import { verifyWal } from '../../wal/inspect.ts';
import { listLog, readSegment, scanLog, scanSegment } from '../../wal/scan.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { LOG_DIR, diskWith } from './helpers/build.ts';
import { seededRandom } from './helpers/random.ts';
import { crc32 } from 'node:zlib';

const SALT = 3;
const MIB = 1024 * 1024;

function segment(firstLsn: number, count: number, size = 4096): { name: string; bytes: Buffer; end: number } {
  const bytes = Buffer.alloc(size);
  encodeSegmentHeader(firstLsn, SALT).copy(bytes, 0);
  let at = 32;
  for (let i = 0; i < count; i++) at += encodeFrame(bytes, at, SALT, firstLsn + i, 1, new Uint8Array(4).fill(firstLsn + i));
  return { name: segmentName(firstLsn), bytes, end: at };
}
const named = (firstLsn: number) => ({ name: segmentName(firstLsn), firstLsn });
const flip = (bytes: Uint8Array, at: number): void => {
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
};

describe('reading a segment through its window', () => {
  it('puts the zero tail right after the last non-zero byte, even when a whole window after it is zero', async () => {
    const fs = new SimFs(seededRandom(1));
    await fs.mkdir('/d');
    const bytes = new Uint8Array(4 * MIB + 100);
    bytes[10] = 1;
    fs.setFile('/d/s', bytes);
    const read = await readSegment(fs, '/d/s', bytes.length);
    expect(read.zeroFrom).toBe(11);
    expect(read.bytes.length).toBe(bytes.length);
  });
});

describe('listing', () => {
  it('orders segments by LSN and checkpoints newest first whatever order the directory lists them in', async () => {
    const sim = await diskWith([segment(1, 0), segment(2, 0), segment(10, 0), { name: checkpointName(3), bytes: new Uint8Array(1) }, { name: checkpointName(20), bytes: new Uint8Array(1) }]);
    // A real directory lists its names in no particular order; reversed here.
    const fs: WalFs = { ...sim, open: (p, m) => sim.open(p, m), readdir: async (dir) => (await sim.readdir(dir)).reverse(), mkdir: (d) => sim.mkdir(d), rename: (a, b) => sim.rename(a, b), unlink: (p) => sim.unlink(p), syncDir: (d) => sim.syncDir(d) };
    const listing = await listLog(fs, LOG_DIR);
    expect(listing.segments.map((s) => s.firstLsn)).toEqual([1, 2, 10]);
    expect(listing.checkpoints.map((c) => c.lsn)).toEqual([20, 3]);
    const forward: WalFs = { ...fs, readdir: (dir) => sim.readdir(dir) };
    expect((await listLog(forward, LOG_DIR)).checkpoints.map((c) => c.lsn)).toEqual([20, 3]);
  });
});

describe('the checkpoint boundary', () => {
  it('does not visit the checkpoint\'s own record in a segment that starts at it', async () => {
    const fs = await diskWith([segment(5, 3), { name: checkpointName(5), bytes: encodeCheckpoint(5, new Uint8Array([5])) }]);
    const seen: number[] = [];
    const scan = await scanLog(fs, LOG_DIR, { onRecord: (lsn) => seen.push(lsn) });
    expect(seen).toEqual([6, 7]);
    expect(scan).toMatchObject({ lastLsn: 7, records: 3, skipped: [] });
  });
});

describe('evidence after a bad frame', () => {
  /** A last segment: one good frame, a bad one at 56, and what `after` writes (a frame at 200). */
  function withBadFrameThen(after: (bytes: Buffer) => void): Buffer {
    const built = segment(1, 2);
    flip(built.bytes, 56 + 21);
    after(built.bytes);
    return built.bytes;
  }

  it('counts a later frame whose CRC matches but whose fields are wrong as evidence of corruption', () => {
    const bytes = withBadFrameThen((b) => {
      encodeFrame(b, 200, SALT, 3, 1, new Uint8Array(4).fill(9));
      b.writeUInt8(1, 200 + 17);
      b.writeUInt32LE(crc32(b.subarray(204, 224), SALT), 200);
    });
    expect(scanSegment(bytes, named(1), true).corruption).toEqual({ code: 'WAL_CORRUPT', segment: segmentName(1), offset: 56, reason: 'frame CRC mismatch, yet a valid frame (LSN 3) follows at offset 200' });
  });

  it('does not count a later frame whose CRC fails, however plausible its LSN', () => {
    const bytes = withBadFrameThen((b) => {
      encodeFrame(b, 200, SALT, 3, 1, new Uint8Array(4).fill(9));
      flip(b, 200 + 21);
    });
    expect(scanSegment(bytes, named(1), true).torn).toMatchObject({ offset: 56, reason: 'frame CRC mismatch, nothing valid after it' });
  });

  it('does not count a frame whose LSN is beyond what could follow in the bytes left', () => {
    // Up to (significant end - bad offset) / 24 frames fit after the bad one: LSN 1000 cannot be among them.
    const bytes = withBadFrameThen((b) => encodeFrame(b, 200, SALT, 1000, 1, new Uint8Array(4).fill(9)));
    // Nor one just past that bound (a bound counted from the segment's start would take it).
    const past = withBadFrameThen((b) => encodeFrame(b, 200, SALT, 2 + Math.ceil((224 - 56) / 24) + 2, 1, new Uint8Array(4).fill(9)));
    expect(scanSegment(past, named(1), true).torn).toMatchObject({ offset: 56 });
    expect(scanSegment(bytes, named(1), true).torn).toMatchObject({ offset: 56, reason: 'frame CRC mismatch, nothing valid after it' });
    // The largest LSN that could follow is taken.
    const fits = withBadFrameThen((b) => encodeFrame(b, 200, SALT, 2 + Math.ceil((224 - 56) / 24) + 1, 1, new Uint8Array(4).fill(9)));
    expect(scanSegment(fits, named(1), true).corruption).toMatchObject({ offset: 56 });
  });
});

/** Counts open and closed files, and can lend a lock that records its options. */
class CountingFs implements WalFs {
  opened = 0;
  closed = 0;
  lockOptions: DirLockOptions[] = [];
  constructor(private readonly inner: SimFs) {}
  async open(path: string, mode: OpenMode): Promise<WalFile> {
    const file = await this.inner.open(path, mode);
    this.opened++;
    return {
      path: file.path,
      read: (b, p) => file.read(b, p),
      writev: (bs, p) => file.writev(bs, p),
      datasync: () => file.datasync(),
      sync: () => file.sync(),
      truncate: (n) => file.truncate(n),
      size: () => file.size(),
      close: () => {
        this.closed++;
        return file.close();
      },
    };
  }
  readdir = (dir: string) => this.inner.readdir(dir);
  mkdir = (dir: string) => this.inner.mkdir(dir);
  rename = (from: string, to: string) => this.inner.rename(from, to);
  unlink = (path: string) => this.inner.unlink(path);
  syncDir = (dir: string) => this.inner.syncDir(dir);
  lock = (dir: string, options: DirLockOptions): Promise<DirLock> => {
    this.lockOptions.push(options);
    return Promise.resolve({ dir, holder: {} as DirLock['holder'], onLost: () => undefined, release: () => Promise.resolve() });
  };
}

describe('recovered payloads at the compaction edge', () => {
  it('keeps views into the segment when the records fill exactly half of it', async () => {
    // 16 records of 128 bytes: 2,048 of the 4,096 bytes, exactly half.
    const bytes = Buffer.alloc(4096);
    encodeSegmentHeader(1, SALT).copy(bytes, 0);
    let at = 32;
    for (let i = 0; i < 16; i++) at += encodeFrame(bytes, at, SALT, 1 + i, 1, new Uint8Array(128).fill(i + 1));
    const { log, recovered } = await openFileLog(LOG_DIR, { fs: await diskWith([{ name: segmentName(1), bytes }]), segmentBytes: 4096 });
    expect(recovered.entries).toHaveLength(16);
    expect(recovered.entries[0]?.payload.buffer.byteLength).toBeGreaterThanOrEqual(4096);
    await log.close();
  });
});

describe('files and the lock', () => {
  it('closes every file it reads: verify, and an open that cuts a torn tail, then close', async () => {
    const torn = segment(1, 3);
    flip(torn.bytes, 80 + 21);
    const fs = new CountingFs(await diskWith([torn, { name: checkpointName(1), bytes: encodeCheckpoint(1, new Uint8Array([1])) }]));
    await verifyWal(LOG_DIR, { fs });
    expect(fs.opened).toBeGreaterThanOrEqual(2);
    expect(fs.closed).toBe(fs.opened);
    const { log } = await openFileLog(LOG_DIR, { fs, segmentBytes: 4096 });
    await log.close();
    expect(fs.closed).toBe(fs.opened);
  });

  it('passes the lock no owner key at all when none was given', async () => {
    const fs = new CountingFs(await diskWith([segment(1, 1)]));
    const { log } = await openFileLog(LOG_DIR, { fs, segmentBytes: 4096 });
    await log.close();
    expect(fs.lockOptions).toStrictEqual([{}]);
    expect('owner' in (fs.lockOptions[0] ?? {})).toBe(false);
  });
});
