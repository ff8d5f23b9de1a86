/**
 * The scan's verdicts, exactly: for each way a segment or a log directory can be wrong, the
 * report, the offset and the reason that recovery refuses with (or cuts at), and which records
 * reach the visitor around a checkpoint. The segments are built here byte by byte, so each
 * test holds exactly one fault.
 */
import { describe, expect, it } from 'vitest';
import { crc32 } from 'node:zlib';
import { encodeCheckpoint, encodeFrame, encodeSegmentHeader, frameBytesFor, segmentName, checkpointName } from '../../wal/format.ts';
import { listLog, readSegment, readWhole, scanLog, scanSegment } from '../../wal/scan.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { LOG_DIR, diskWith } from './helpers/build.ts';
import { seededRandom } from './helpers/random.ts';

const SALT = 0x5eed;
const SIZE = 4096;

interface Built {
  readonly bytes: Buffer;
  /** Offset of each frame, in order. */
  readonly offsets: number[];
  /** Offset just after the last frame. */
  readonly end: number;
}

/** A segment of `size` bytes starting at `firstLsn`, holding one frame per payload size (LSNs in order, type 1 + i % 3). */
function segment(firstLsn: number, payloadSizes: readonly number[], size = SIZE, salt = SALT): Built {
  const bytes = Buffer.alloc(size);
  encodeSegmentHeader(firstLsn, salt).copy(bytes, 0);
  const offsets: number[] = [];
  let at = 32;
  payloadSizes.forEach((n, i) => {
    offsets.push(at);
    at += encodeFrame(bytes, at, salt, firstLsn + i, 1 + (i % 3), new Uint8Array(n).fill(0x61 + i));
  });
  return { bytes, offsets, end: at };
}

/** Writes one frame with a chosen LSN at `offset` (a valid frame, whatever the segment expects). */
function frameAt(bytes: Buffer, offset: number, lsn: number, payloadBytes = 4, salt = SALT): number {
  return encodeFrame(bytes, offset, salt, lsn, 1, new Uint8Array(payloadBytes).fill(7));
}

/** XORs one byte with `mask`. */
const flip = (bytes: Uint8Array, at: number, mask: number): void => {
  bytes[at] = (bytes[at] ?? 0) ^ mask;
};

const named = (firstLsn: number) => ({ name: segmentName(firstLsn), firstLsn });

describe('scanSegment: a whole segment', () => {
  it('reports every record to the visitor and where the next frame goes', () => {
    const built = segment(5, [3, 0, 12]);
    const seen: unknown[] = [];
    const outcome = scanSegment(built.bytes, named(5), true, (lsn, type, payload, name, offset) => seen.push({ lsn, type, payload: [...payload], name, offset }));
    expect(outcome).toEqual({ report: { name: segmentName(5), firstLsn: 5, lastLsn: 7, records: 3, endOffset: built.end, fileBytes: SIZE, salt: SALT } });
    expect(seen).toEqual([
      { lsn: 5, type: 1, payload: [0x61, 0x61, 0x61], name: segmentName(5), offset: 32 },
      { lsn: 6, type: 2, payload: [], name: segmentName(5), offset: 32 + frameBytesFor(3) },
      { lsn: 7, type: 3, payload: Array.from({ length: 12 }, () => 0x63), name: segmentName(5), offset: 32 + frameBytesFor(3) + frameBytesFor(0) },
    ]);
    expect(built.end).toBe(32 + 24 + 24 + 32);
  });

  it('reports an empty segment as holding nothing, from its header on', () => {
    expect(scanSegment(segment(9, []).bytes, named(9), false)).toEqual({ report: { name: segmentName(9), firstLsn: 9, lastLsn: 8, records: 0, endOffset: 32, fileBytes: SIZE, salt: SALT } });
  });

  it('reads a segment that its frames fill to the last byte', () => {
    const built = segment(1, [4, 4], 32 + 48);
    expect(scanSegment(built.bytes, named(1), true).report).toMatchObject({ records: 2, endOffset: 80, fileBytes: 80 });
  });
});

describe('scanSegment: headers', () => {
  it('treats a last segment whose header is zero as a torn tail up to its last non-zero byte', () => {
    const bytes = Buffer.alloc(SIZE);
    expect(scanSegment(bytes, named(3), true)).toEqual({
      report: { name: segmentName(3), firstLsn: 3, lastLsn: 2, records: 0, endOffset: 32, fileBytes: SIZE, salt: undefined },
      torn: { segment: segmentName(3), offset: 0, bytes: 0, reason: 'segment header never written', headerMissing: true },
    });
    bytes[100] = 1;
    expect(scanSegment(bytes, named(3), true).torn).toMatchObject({ offset: 0, bytes: 101, headerMissing: true });
  });

  it('refuses a zero header in a segment that is not the last', () => {
    expect(scanSegment(Buffer.alloc(SIZE), named(3), false)).toEqual({
      report: { name: segmentName(3), firstLsn: 3, lastLsn: 2, records: 0, endOffset: 32, fileBytes: SIZE, salt: undefined },
      corruption: { code: 'WAL_CORRUPT', segment: segmentName(3), offset: 0, reason: 'segment header missing in a segment that is not the last' },
    });
  });

  it('names an unknown version at its offset, a bad header, and a first LSN that disagrees with the name', () => {
    const future = segment(3, [1]).bytes;
    future.writeUInt16LE(2, 4);
    future.writeUInt32LE(crc32(future.subarray(0, 28)), 28);
    expect(scanSegment(future, named(3), true).corruption).toEqual({ code: 'WAL_UNSUPPORTED_VERSION', segment: segmentName(3), offset: 4, reason: 'unsupported segment format version 2' });
    const bad = segment(3, [1]).bytes;
    bad[0] = 0;
    expect(scanSegment(bad, named(3), true)).toMatchObject({ report: { salt: undefined, records: 0 }, corruption: { code: 'WAL_CORRUPT', offset: 0, reason: 'bad segment magic' } });
    expect(scanSegment(segment(5, [1]).bytes, named(6), true)).toEqual({
      report: { name: segmentName(6), firstLsn: 6, lastLsn: 5, records: 0, endOffset: 32, fileBytes: SIZE, salt: SALT },
      corruption: { code: 'WAL_CORRUPT', segment: segmentName(6), offset: 8, reason: 'segment header says first LSN 5, its name says 6' },
    });
  });
});

describe('scanSegment: frames', () => {
  it('refuses a valid frame that holds the wrong LSN', () => {
    const built = segment(5, [2, 2]);
    frameAt(built.bytes, built.end, 9);
    const seen: number[] = [];
    expect(scanSegment(built.bytes, named(5), true, (lsn) => seen.push(lsn))).toEqual({
      report: { name: segmentName(5), firstLsn: 5, lastLsn: 6, records: 2, endOffset: built.end, fileBytes: SIZE, salt: SALT },
      corruption: { code: 'WAL_CORRUPT', segment: segmentName(5), offset: built.end, reason: 'frame holds LSN 9 where LSN 7 was expected' },
    });
    expect(seen).toEqual([5, 6]);
  });

  it('refuses a frame whose CRC matches but whose fields are wrong, even in the last segment', () => {
    const built = segment(1, [2]);
    const at = built.end;
    frameAt(built.bytes, at, 2);
    built.bytes.writeUInt8(1, at + 17);
    built.bytes.writeUInt32LE(crc32(built.bytes.subarray(at + 4, at + 24), SALT), at);
    expect(scanSegment(built.bytes, named(1), true).corruption).toEqual({ code: 'WAL_CORRUPT', segment: segmentName(1), offset: at, reason: 'non-zero reserved bytes in frame' });
  });

  it('refuses a non-zero byte after the records of a sealed segment, at that byte', () => {
    const built = segment(1, [2]);
    built.bytes[built.end + 100] = 9;
    expect(scanSegment(built.bytes, named(1), false)).toEqual({
      report: { name: segmentName(1), firstLsn: 1, lastLsn: 1, records: 1, endOffset: built.end, fileBytes: SIZE, salt: SALT },
      corruption: { code: 'WAL_CORRUPT', segment: segmentName(1), offset: built.end + 100, reason: `non-zero byte after the last record of a segment that is not the last (records end at offset ${built.end})` },
    });
  });

  it('refuses a bad frame in a sealed segment, naming why', () => {
    const built = segment(1, [2, 2]);
    const second = built.offsets[1] as number;
    flip(built.bytes, second + 21, 0xff);
    expect(scanSegment(built.bytes, named(1), false).corruption).toEqual({ code: 'WAL_CORRUPT', segment: segmentName(1), offset: second, reason: 'frame CRC mismatch in a segment that is not the last' });
  });

  it('cuts a bad last frame of the last segment as torn, up to its last non-zero byte', () => {
    const built = segment(1, [2, 10]);
    const last = built.offsets[1] as number;
    flip(built.bytes, last + 21, 0xff);
    expect(scanSegment(built.bytes, named(1), true)).toEqual({
      report: { name: segmentName(1), firstLsn: 1, lastLsn: 1, records: 1, endOffset: last, fileBytes: SIZE, salt: SALT },
      torn: { segment: segmentName(1), offset: last, bytes: 30, reason: 'frame CRC mismatch, nothing valid after it', headerMissing: false },
    });
  });

  it('cuts zeros followed by stray bytes in the last segment as torn', () => {
    const built = segment(1, [2]);
    built.bytes[built.end + 40] = 5;
    expect(scanSegment(built.bytes, named(1), true).torn).toEqual({ segment: segmentName(1), offset: built.end, bytes: 41, reason: 'zero frame header followed by non-zero bytes, nothing valid after it', headerMissing: false });
  });

  it('with a valid frame after a bad one, cuts only when a zero sector shows an unsynced write', () => {
    // A bad frame at 32 whose payload runs over a whole zero sector (512 .. 1024), then a valid frame at 1200.
    const torn = Buffer.alloc(SIZE);
    encodeSegmentHeader(1, SALT).copy(torn, 0);
    frameAt(torn, 32, 1, 1100);
    torn.fill(0, 512, 1024);
    frameAt(torn, 1200, 2);
    expect(scanSegment(torn, named(1), true)).toEqual({
      report: { name: segmentName(1), firstLsn: 1, lastLsn: 0, records: 0, endOffset: 32, fileBytes: SIZE, salt: SALT },
      torn: { segment: segmentName(1), offset: 32, bytes: 1224 - 32, reason: 'frame CRC mismatch; a zero sector marks an unsynced write (a later frame at offset 1200 was never acknowledged)', headerMissing: false },
    });
    // The same with every sector of the bad frame written: a flipped byte, not a torn write.
    const flipped = Buffer.alloc(SIZE);
    encodeSegmentHeader(1, SALT).copy(flipped, 0);
    frameAt(flipped, 32, 1, 1100);
    flip(flipped, 600, 0xff);
    frameAt(flipped, 1160, 2);
    expect(scanSegment(flipped, named(1), true).corruption).toEqual({ code: 'WAL_CORRUPT', segment: segmentName(1), offset: 32, reason: 'frame CRC mismatch, yet a valid frame (LSN 2) follows at offset 1160' });
  });

  it('takes only a later frame of a plausible LSN as evidence of corruption', () => {
    // A frame from an older life of the file (LSN below the expected one) is not evidence.
    const built = segment(10, [2, 10]);
    const last = built.offsets[1] as number;
    flip(built.bytes, last + 21, 0xff);
    frameAt(built.bytes, last + 64, 3);
    expect(scanSegment(built.bytes, named(10), true).torn).toMatchObject({ offset: last, reason: 'frame CRC mismatch, nothing valid after it' });
    // The expected LSN itself, right after the bad frame's first 8 bytes, is.
    const next = segment(10, [2, 10]);
    const at = next.offsets[1] as number;
    flip(next.bytes, at + 21, 0xff);
    frameAt(next.bytes, at + 8, 11);
    expect(scanSegment(next.bytes, named(10), true).corruption).toMatchObject({ offset: at, reason: 'frame CRC mismatch, yet a valid frame (LSN 11) follows at offset ' + String(at + 8) });
  });
});

/** Files for a log directory: segments and checkpoints by name. */
async function logDisk(files: readonly { name: string; bytes: Uint8Array }[]) {
  return diskWith(files);
}
const seg = (firstLsn: number, count: number) => ({ name: segmentName(firstLsn), bytes: segment(firstLsn, Array.from({ length: count }, () => 3)).bytes });
const ckpt = (lsn: number, text = 'state') => ({ name: checkpointName(lsn), bytes: encodeCheckpoint(lsn, new TextEncoder().encode(text)) });

describe('scanLog: the directory', () => {
  it('lists segments by LSN, checkpoints newest first, and unfinished temporary files', async () => {
    const fs = await logDisk([seg(10, 1), seg(2, 1), seg(5, 1), ckpt(3), ckpt(7), ckpt(4), { name: 'x.wal.tmp', bytes: new Uint8Array(1) }, { name: 'LOCK', bytes: new Uint8Array(1) }]);
    expect(await listLog(fs, LOG_DIR)).toEqual({
      segments: [named(2), named(5), named(10)],
      checkpoints: [7, 4, 3].map((lsn) => ({ name: checkpointName(lsn), lsn })),
      temps: ['x.wal.tmp'],
    });
  });

  it('says why each newer checkpoint was passed over', async () => {
    const misnamed = { name: checkpointName(9), bytes: encodeCheckpoint(8, new Uint8Array(1)) };
    const future = ckpt(7);
    future.bytes.writeUInt16LE(3, 4);
    const flipped = ckpt(6);
    flip(flipped.bytes, 33, 1);
    const fs = await logDisk([seg(1, 8), misnamed, future, flipped, ckpt(5)]);
    const scan = await scanLog(fs, LOG_DIR);
    expect(scan.badCheckpoints).toEqual([
      { name: checkpointName(9), reason: 'holds LSN 8, not the LSN in its name' },
      { name: checkpointName(7), reason: 'unsupported version 3' },
      { name: checkpointName(6), reason: 'checkpoint CRC mismatch' },
    ]);
    expect(scan.checkpoint).toEqual({ name: checkpointName(5), lsn: 5, data: new TextEncoder().encode('state') });
    expect(scan.lastLsn).toBe(8);
  });

  it('refuses a log whose first segment starts after what the checkpoint covers', async () => {
    expect((await scanLog(await logDisk([seg(5, 2)]), LOG_DIR)).corruption).toEqual({
      code: 'WAL_CORRUPT',
      segment: segmentName(5),
      offset: 0,
      reason: 'the log starts at LSN 5 but there is no checkpoint: records 1..4 are missing',
    });
    expect((await scanLog(await logDisk([seg(5, 2), ckpt(2)]), LOG_DIR)).corruption).toEqual({
      code: 'WAL_CORRUPT',
      segment: segmentName(5),
      offset: 0,
      reason: 'the log starts at LSN 5 but the checkpoint covers only up to LSN 2: records 3..4 are missing',
    });
    // A checkpoint at 4 closes the gap.
    expect((await scanLog(await logDisk([seg(5, 2), ckpt(4)]), LOG_DIR)).corruption).toBeUndefined();
  });

  it('refuses segments that do not continue each other, naming the previous one', async () => {
    const scan = await scanLog(await logDisk([seg(1, 3), seg(5, 1)]), LOG_DIR);
    expect(scan.corruption).toEqual({ code: 'WAL_CORRUPT', segment: segmentName(5), offset: 0, reason: `the segment starts at LSN 5 but ${segmentName(1)} ends at LSN 3` });
    expect(scan.records).toBe(3);
    expect(scan.lastLsn).toBe(3);
  });

  it('skips segments the checkpoint covers and visits only the records after it', async () => {
    const fs = await logDisk([seg(1, 4), seg(5, 4), seg(9, 2), ckpt(7)]);
    const seen: number[] = [];
    const scanned: string[] = [];
    const scan = await scanLog(fs, LOG_DIR, { onRecord: (lsn) => seen.push(lsn), onSegmentScanned: (report, buffer) => scanned.push(`${report.name}:${buffer.length}`) });
    expect(seen).toEqual([8, 9, 10]);
    expect(scanned).toEqual([`${segmentName(5)}:${SIZE}`, `${segmentName(9)}:${SIZE}`]);
    expect(scan).toMatchObject({ skipped: [named(1)], records: 6, lastLsn: 10, checkpoint: { lsn: 7 } });
    expect(scan.segments.map((s) => s.name)).toEqual([segmentName(5), segmentName(9)]);
    const all: number[] = [];
    await scanLog(fs, LOG_DIR, { visitCovered: true, onRecord: (lsn) => all.push(lsn) });
    expect(all).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it('starts at the segment that holds the first record after the checkpoint', async () => {
    const fs = await logDisk([seg(1, 4), seg(5, 4), seg(9, 2), ckpt(8)]);
    const scan = await scanLog(fs, LOG_DIR, { onRecord: () => undefined });
    expect(scan.skipped).toEqual([named(1), named(5)]);
    expect(scan.records).toBe(2);
    // With no checkpoint every record is visited, from the first segment.
    const none = await logDisk([seg(1, 2), seg(3, 1)]);
    const seen: number[] = [];
    expect(await scanLog(none, LOG_DIR, { onRecord: (lsn) => seen.push(lsn) })).toMatchObject({ skipped: [], records: 3, lastLsn: 3 });
    expect(seen).toEqual([1, 2, 3]);
  });

  it('keeps the checkpoint LSN as the last one when no record follows it, and 0 for an empty directory', async () => {
    const fs = await logDisk([seg(1, 4), seg(5, 0), ckpt(4)]);
    expect(await scanLog(fs, LOG_DIR)).toMatchObject({ lastLsn: 4, records: 0, skipped: [named(1)] });
    const empty = await logDisk([]);
    expect(await scanLog(empty, LOG_DIR)).toEqual({ listing: { segments: [], checkpoints: [], temps: [] }, badCheckpoints: [], segments: [], skipped: [], records: 0, lastLsn: 0 });
  });
});

describe('reading files', () => {
  it('reads a whole file, and refuses one above the limit', async () => {
    const fs = new SimFs(seededRandom(3));
    await fs.mkdir('/d');
    fs.setFile('/d/f', new Uint8Array([1, 2, 3, 4]));
    expect([...(await readWhole(fs, '/d/f', 4))]).toEqual([1, 2, 3, 4]);
    await expect(readWhole(fs, '/d/f', 3)).rejects.toMatchObject({ code: 'EFBIG', message: '/d/f is 4 bytes, more than the 3 a WAL file may have' });
    await expect(readSegment(fs, '/d/f', 3)).rejects.toMatchObject({ code: 'EFBIG', message: '/d/f is 4 bytes, more than the 3 a WAL file may have' });
  });

  it('reads a segment and says where its zero tail starts', async () => {
    const fs = new SimFs(seededRandom(3));
    await fs.mkdir('/d');
    const bytes = new Uint8Array(4 * 1024 * 1024 + 64);
    bytes[5] = 1;
    bytes[4 * 1024 * 1024 + 7] = 2;
    fs.setFile('/d/s', bytes);
    const read = await readSegment(fs, '/d/s', bytes.length);
    expect(read.zeroFrom).toBe(4 * 1024 * 1024 + 8);
    expect(read.bytes.length).toBe(bytes.length);
    expect(Buffer.from(bytes).equals(read.bytes)).toBe(true);
    fs.setFile('/d/z', new Uint8Array(100));
    expect(await readSegment(fs, '/d/z', 100)).toEqual({ bytes: Buffer.alloc(100), zeroFrom: 0 });
    fs.setFile('/d/small', new Uint8Array([0, 3, 0]));
    expect(await readSegment(fs, '/d/small', 3)).toEqual({ bytes: Buffer.from([0, 3, 0]), zeroFrom: 2 });
  });
});
