/**
 * Recovery's steps, exactly: which files it creates, deletes, renames and syncs, in which order,
 * what it hands back (the torn tail, the checkpoint, the records), the error it refuses with,
 * and the lock it takes and gives back. The disk is the simulated one, seen through a wrapper
 * that records every call.
 */
import { describe, expect, it } from 'vitest';
import type { DirLock, DirLockOptions } from '../../wal/dir-lock.ts';
import { WalError } from '../../wal/errors.ts';
import { openFileLog } from '../../wal/file-log.ts';
import { checkpointName, encodeCheckpoint, encodeFrame, encodeSegmentHeader, segmentName } from '../../wal/format.ts';
import type { OpenMode, WalFile, WalFs } from '../../wal/fs.ts';
import { corruptionError } from '../../wal/recovery.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { LOG_DIR, diskWith } from './helpers/build.ts';
import { seededRandom } from './helpers/random.ts';

const SIZE = 4096;
const SALT = 77;

/** Delegates to a SimFs and records each call that changes or syncs something; can lend a fake lock. */
class Recorder implements WalFs {
  readonly calls: string[] = [];
  lockCalls: { dir: string; options: DirLockOptions }[] = [];
  released = 0;
  withLock = false;
  constructor(readonly inner: SimFs) {}

  private short = (p: string): string => p.replace(`${LOG_DIR}/`, '');

  async open(path: string, mode: OpenMode): Promise<WalFile> {
    const file = await this.inner.open(path, mode);
    if (mode !== 'read') this.calls.push(`open ${this.short(path)} ${mode}`);
    const name = this.short(path);
    return {
      path: file.path,
      read: (b, p) => file.read(b, p),
      writev: (bs, p) => {
        this.calls.push(`writev ${name} @${p} ${bs.reduce((n, b) => n + b.length, 0)}`);
        return file.writev(bs, p);
      },
      datasync: () => {
        this.calls.push(`datasync ${name}`);
        return file.datasync();
      },
      sync: () => {
        this.calls.push(`sync ${name}`);
        return file.sync();
      },
      truncate: (n) => {
        this.calls.push(`truncate ${name} ${n}`);
        return file.truncate(n);
      },
      size: () => file.size(),
      close: () => file.close(),
    };
  }
  readdir(dir: string): Promise<string[]> {
    return this.inner.readdir(dir);
  }
  mkdir(dir: string): Promise<void> {
    this.calls.push(`mkdir ${dir}`);
    return this.inner.mkdir(dir);
  }
  rename(from: string, to: string): Promise<void> {
    this.calls.push(`rename ${this.short(from)} ${this.short(to)}`);
    return this.inner.rename(from, to);
  }
  unlink(path: string): Promise<void> {
    this.calls.push(`unlink ${this.short(path)}`);
    return this.inner.unlink(path);
  }
  syncDir(dir: string): Promise<void> {
    this.calls.push(`syncDir ${dir}`);
    return this.inner.syncDir(dir);
  }
  get lock(): WalFs['lock'] {
    if (!this.withLock) return undefined;
    return (dir: string, options: DirLockOptions): Promise<DirLock> => {
      this.lockCalls.push({ dir, options });
      this.calls.push('lock');
      return Promise.resolve({
        dir,
        holder: {} as DirLock['holder'],
        onLost: () => undefined,
        release: () => {
          this.released++;
          this.calls.push('release');
          return Promise.resolve();
        },
      });
    };
  }
}

/** A segment starting at `firstLsn` holding `count` records of `payloadBytes` each (payload byte = LSN). */
function segment(firstLsn: number, count: number, payloadBytes = 4, size = SIZE): { name: string; bytes: Buffer; end: number } {
  const bytes = Buffer.alloc(size);
  encodeSegmentHeader(firstLsn, SALT).copy(bytes, 0);
  let at = 32;
  for (let i = 0; i < count; i++) at += encodeFrame(bytes, at, SALT, firstLsn + i, 1, new Uint8Array(payloadBytes).fill(firstLsn + i));
  return { name: segmentName(firstLsn), bytes, end: at };
}
const ckpt = (lsn: number) => ({ name: checkpointName(lsn), bytes: encodeCheckpoint(lsn, new Uint8Array([lsn])) });
const flip = (bytes: Uint8Array, at: number): void => {
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
};

async function openOn(files: readonly { name: string; bytes: Uint8Array }[], setUp: (fs: Recorder) => void = () => undefined) {
  const fs = new Recorder(await diskWith(files));
  setUp(fs);
  const opened = await openFileLog(LOG_DIR, { fs, segmentBytes: SIZE, random: seededRandom(9) });
  return { fs, ...opened };
}

describe('recovery, step by step', () => {
  it('opens an intact log: creates the directory, syncs its parent and the segment it continues in, and nothing else', async () => {
    const seg = segment(1, 3);
    const { fs, log, recovered } = await openOn([seg]);
    expect(fs.calls).toEqual([`mkdir ${LOG_DIR}`, 'syncDir /data', `open ${seg.name} readwrite`, `sync ${seg.name}`, `syncDir ${LOG_DIR}`]);
    expect(recovered).toEqual({ entries: [1, 2, 3].map((lsn) => ({ lsn, type: 1, payload: new Uint8Array(4).fill(lsn) })) });
    expect(log.lastLsn).toBe(3);
    // The writer continues right after the last record, under the segment's own salt.
    expect(await log.append(1, new Uint8Array([4]), { durable: true })).toBe(4);
    await log.close();
    const again = await openFileLog(LOG_DIR, { fs: fs.inner, segmentBytes: SIZE });
    expect(again.recovered.entries.map((e) => e.lsn)).toEqual([1, 2, 3, 4]);
    await again.log.close();
  });

  it('creates a first segment through a temporary name: sized, headed and synced before it is renamed', async () => {
    const fs = new Recorder(new SimFs(seededRandom(1)));
    const { log, recovered } = await openFileLog(LOG_DIR, { fs, segmentBytes: SIZE, random: () => 0.25 });
    const first = segmentName(1);
    expect(fs.calls).toEqual([`mkdir ${LOG_DIR}`, 'syncDir /data', `open first-${first}.tmp create`, `truncate first-${first}.tmp ${SIZE}`, `writev first-${first}.tmp @0 32`, `sync first-${first}.tmp`, `rename first-${first}.tmp ${first}`, `syncDir ${LOG_DIR}`]);
    expect(recovered).toEqual({ entries: [] });
    const header = fs.inner.readFile(`${LOG_DIR}/${first}`)?.subarray(0, 32) ?? new Uint8Array();
    expect(Buffer.from(header).equals(encodeSegmentHeader(1, 0x4000_0000))).toBe(true);
    await log.close();
  });

  it('after a checkpoint with no segment, starts the first segment after the checkpoint', async () => {
    const { fs, log, recovered } = await openOn([ckpt(7)]);
    expect(recovered).toEqual({ checkpoint: { lsn: 7, data: new Uint8Array([7]) }, entries: [] });
    expect(fs.calls).toContain(`rename first-${segmentName(8)}.tmp ${segmentName(8)}`);
    expect(await log.append(1, new Uint8Array(1))).toBe(8);
    await log.close();
  });

  it('deletes temporary files and syncs the directory once for them', async () => {
    const { fs, log } = await openOn([segment(1, 1), { name: 'a.wal.tmp', bytes: new Uint8Array(1) }, { name: 'b.ckpt.tmp', bytes: new Uint8Array(1) }]);
    expect(fs.calls.slice(0, 5)).toEqual([`mkdir ${LOG_DIR}`, 'syncDir /data', 'unlink a.wal.tmp', 'unlink b.ckpt.tmp', `syncDir ${LOG_DIR}`]);
    expect(fs.calls.filter((c) => c === `syncDir ${LOG_DIR}`)).toHaveLength(2);
    await log.close();
  });

  it('deletes the segments and the older checkpoints the newest checkpoint covers', async () => {
    const { fs, log, recovered } = await openOn([segment(1, 4), segment(5, 4), ckpt(3), ckpt(6)]);
    expect(fs.calls.filter((c) => c.startsWith('unlink'))).toEqual([`unlink ${segmentName(1)}`, `unlink ${checkpointName(3)}`]);
    expect(recovered.checkpoint?.lsn).toBe(6);
    expect(recovered.entries.map((e) => e.lsn)).toEqual([7, 8]);
    expect((await fs.readdir(LOG_DIR)).sort()).toEqual([segmentName(5), checkpointName(6)]);
    await log.close();
  });

  it('cuts a torn tail: a durable copy of the cut bytes, then cut, synced, and grown back to its size', async () => {
    const seg = segment(1, 3, 20);
    // The third frame (at 32 + 2 * 40) loses a byte of its payload.
    flip(seg.bytes, 112 + 25);
    const { fs, log, recovered } = await openOn([seg]);
    const copy = `${seg.name}.112.broken`;
    expect(recovered.tornTail).toEqual({ segment: seg.name, offset: 112, bytes: 40, copy });
    expect(recovered.entries.map((e) => e.lsn)).toEqual([1, 2]);
    expect(fs.calls.slice(2)).toEqual([
      `open ${copy}.tmp create`,
      `writev ${copy}.tmp @0 40`,
      `sync ${copy}.tmp`,
      `rename ${copy}.tmp ${copy}`,
      `syncDir ${LOG_DIR}`,
      `open ${seg.name} readwrite`,
      `truncate ${seg.name} 112`,
      `sync ${seg.name}`,
      `truncate ${seg.name} ${SIZE}`,
      `sync ${seg.name}`,
      `open ${seg.name} readwrite`,
      `sync ${seg.name}`,
      `syncDir ${LOG_DIR}`,
    ]);
    expect(Buffer.from(fs.inner.readFile(`${LOG_DIR}/${copy}`) ?? []).equals(seg.bytes.subarray(112, 152))).toBe(true);
    expect(await log.append(1, new Uint8Array(1), { durable: true })).toBe(3);
    await log.close();
  });

  it('numbers the copy when one from an earlier cut at the same offset is still there', async () => {
    const seg = segment(1, 3, 20);
    flip(seg.bytes, 112 + 25);
    const earlier = `${seg.name}.112.broken`;
    const { recovered, log, fs } = await openOn([seg, { name: earlier, bytes: new Uint8Array([1]) }, { name: `${seg.name}.112.1.broken`, bytes: new Uint8Array([2]) }]);
    expect(recovered.tornTail?.copy).toBe(`${seg.name}.112.2.broken`);
    expect(fs.inner.readFile(`${LOG_DIR}/${earlier}`)).toEqual(new Uint8Array([1]));
    await log.close();
  });

  it('cuts a tail of bytes that are all zero after the cut without keeping a copy', async () => {
    const seg = segment(1, 2);
    // Zeros where a frame header should be, then one stray byte: the torn bytes end at that byte.
    seg.bytes[seg.end + 30] = 1;
    const { recovered, fs, log } = await openOn([seg]);
    expect(recovered.tornTail).toEqual({ segment: seg.name, offset: seg.end, bytes: 31, copy: `${seg.name}.${seg.end}.broken` });
    expect(fs.calls).toContain(`truncate ${seg.name} ${seg.end}`);
    await log.close();
  });

  it('moves aside a last segment whose header never reached the disk, or drops it when it is all zeros', async () => {
    const sealed = segment(1, 2);
    const stray = Buffer.alloc(SIZE);
    stray[200] = 3;
    const moved = await openOn([sealed, { name: segmentName(3), bytes: stray }]);
    const copy = `${segmentName(3)}.0.broken`;
    expect(moved.recovered.tornTail).toEqual({ segment: segmentName(3), offset: 0, bytes: 201, copy });
    expect(moved.fs.calls.slice(2, 4)).toEqual([`rename ${segmentName(3)} ${copy}`, `syncDir ${LOG_DIR}`]);
    // It continues in the segment before, which stays the active one.
    expect(moved.fs.calls.slice(4)).toEqual([`open ${sealed.name} readwrite`, `sync ${sealed.name}`, `syncDir ${LOG_DIR}`]);
    expect(await moved.log.append(1, new Uint8Array(1), { durable: true })).toBe(3);
    await moved.log.close();

    const dropped = await openOn([sealed, { name: segmentName(3), bytes: Buffer.alloc(SIZE) }]);
    expect(dropped.recovered.tornTail).toEqual({ segment: segmentName(3), offset: 0, bytes: 0 });
    expect(dropped.fs.calls.slice(2, 4)).toEqual([`unlink ${segmentName(3)}`, `syncDir ${LOG_DIR}`]);
    await dropped.log.close();
  });

  it('replaces a lone segment whose header never reached the disk with a fresh one at the same LSN', async () => {
    const { recovered, fs, log } = await openOn([{ name: segmentName(1), bytes: Buffer.alloc(SIZE) }]);
    expect(recovered).toEqual({ entries: [], tornTail: { segment: segmentName(1), offset: 0, bytes: 0 } });
    expect(fs.calls).toContain(`rename first-${segmentName(1)}.tmp ${segmentName(1)}`);
    expect(await log.append(1, new Uint8Array(1), { durable: true })).toBe(1);
    await log.close();
  });
});

describe('recovery refuses and releases', () => {
  it('refuses mid-log corruption with the segment, the offset and the path, and the command to run', async () => {
    const seg = segment(1, 3);
    flip(seg.bytes, 32 + 24 + 21);
    const other = segment(4, 1);
    const error = await openOn([seg, other]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WalError);
    expect(error).toMatchObject({
      code: 'WAL_CORRUPT',
      segment: seg.name,
      offset: 56,
      path: `${LOG_DIR}/${seg.name}`,
      message: `WAL corrupt in ${LOG_DIR}/${seg.name} at byte offset 56: frame CRC mismatch in a segment that is not the last. Refusing to open; run \`twopc wal verify ${LOG_DIR}\`.`,
    });
    expect(corruptionError('/d', { code: 'WAL_UNSUPPORTED_VERSION', segment: 's.wal', offset: 4, reason: 'r' })).toMatchObject({ code: 'WAL_UNSUPPORTED_VERSION', segment: 's.wal', offset: 4, path: '/d/s.wal' });
  });

  it('takes the lock with the owner before reading, and gives it back when it refuses', async () => {
    const seg = segment(1, 3);
    flip(seg.bytes, 32 + 24 + 21);
    const fs = new Recorder(await diskWith([seg, segment(4, 1)]));
    fs.withLock = true;
    await expect(openFileLog(LOG_DIR, { fs, segmentBytes: SIZE, owner: 'participant p9' })).rejects.toMatchObject({ code: 'WAL_CORRUPT' });
    expect(fs.lockCalls).toEqual([{ dir: LOG_DIR, options: { owner: 'participant p9' } }]);
    expect(fs.calls).toEqual([`mkdir ${LOG_DIR}`, 'syncDir /data', 'lock', 'release']);
  });

  it('passes no owner when none was given, and keeps the lock while open', async () => {
    const { fs, log } = await openOn([segment(1, 1)], (f) => (f.withLock = true));
    expect(fs.lockCalls).toEqual([{ dir: LOG_DIR, options: {} }]);
    expect(fs.released).toBe(0);
    await log.close();
    expect(fs.released).toBe(1);
  });
});

describe('recovered payloads', () => {
  it('copies the payloads of a mostly empty segment into one compact buffer', async () => {
    const { recovered, log } = await openOn([segment(1, 3, 100)]);
    const buffers = new Set(recovered.entries.map((e) => e.payload.buffer));
    expect(buffers.size).toBe(1);
    expect(recovered.entries[0]?.payload.buffer.byteLength).toBe(300);
    expect(recovered.entries.map((e) => [e.payload.length, e.payload[0], e.payload[99]])).toEqual([
      [100, 1, 1],
      [100, 2, 2],
      [100, 3, 3],
    ]);
    await log.close();
  });

  it('keeps views into the segment read when its records fill at least half of it', async () => {
    // 20 records of 100 bytes: 2,000 of the 4,096 bytes are payload, less than half; 21 are more.
    const under = await openOn([segment(1, 20, 100)]);
    expect(under.recovered.entries[0]?.payload.buffer.byteLength).toBe(2000);
    await under.log.close();
    const over = await openOn([segment(1, 21, 100)]);
    expect(over.recovered.entries[0]?.payload.buffer.byteLength).toBeGreaterThanOrEqual(SIZE);
    expect(over.recovered.entries.map((e) => e.payload[0])).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    await over.log.close();
  });

  it('compacts each segment on its own', async () => {
    const { recovered, log } = await openOn([segment(1, 21, 100), segment(22, 2, 10)]);
    expect(recovered.entries.map((e) => e.lsn)).toEqual(Array.from({ length: 23 }, (_, i) => i + 1));
    expect(recovered.entries[20]?.payload.buffer.byteLength).toBeGreaterThanOrEqual(SIZE);
    expect(recovered.entries[21]?.payload.buffer.byteLength).toBe(20);
    expect(recovered.entries[22]?.payload).toEqual(new Uint8Array(10).fill(23));
    await log.close();
  });
});
