/**
 * The on-disk format's verdicts, exactly: every reason a header, frame or checkpoint is refused
 * for, each edge of the ranges the format allows, and the helpers recovery trusts to find the
 * end of the written bytes. format.test.ts shows the layout; this file pins each decision.
 */
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  CHECKPOINT_HEADER_BYTES,
  FRAME_HEADER_BYTES,
  FRAME_PAYLOAD_BYTES_LIMIT,
  SEGMENT_HEADER_BYTES,
  align8,
  checkCheckpoint,
  checkFrame,
  checkSegmentHeader,
  checkpointName,
  encodeCheckpoint,
  encodeFrame,
  encodeSegmentHeader,
  endOfNonZero,
  frameBytesFor,
  isAllZero,
  looksTorn,
  parseCheckpointName,
  parseSegmentName,
  segmentName,
  validFrameBytes,
} from '../../wal/format.ts';

const SALT = 0x0badf00d;
const viewOf = (bytes: Uint8Array): DataView => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** A segment header with `edit` applied and its CRC made to match again, so only the edited field is wrong. */
function headerWith(edit: (buf: Buffer) => void, firstLsn = 5, salt = 9): Buffer {
  const buf = encodeSegmentHeader(firstLsn, salt);
  edit(buf);
  buf.writeUInt32LE(crc32(buf.subarray(0, 28)), 28);
  return buf;
}

/** One frame at offset 0 of a buffer exactly its size, its CRC recomputed after `edit`. */
function frameWith(lsn: number, type: number, payload: Uint8Array, edit: (buf: Buffer) => void = () => undefined): Uint8Array {
  const buf = Buffer.alloc(frameBytesFor(payload.length));
  encodeFrame(buf, 0, SALT, lsn, type, payload);
  edit(buf);
  buf.writeUInt32LE(crc32(buf.subarray(4), SALT), 0);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}
const checkAt = (bytes: Uint8Array, offset = 0, end = bytes.length) => checkFrame(bytes, viewOf(bytes), offset, end, SALT);
const fastAt = (bytes: Uint8Array, lsn: number, offset = 0, end = bytes.length) => validFrameBytes(bytes, viewOf(bytes), offset, end, SALT, lsn);

/** A checkpoint with `edit` applied and its CRC made to match again. */
function checkpointWith(lsn: number, data: Uint8Array, edit: (buf: Buffer) => void): Buffer {
  const buf = encodeCheckpoint(lsn, data);
  edit(buf);
  buf.writeUInt32LE(crc32(buf.subarray(CHECKPOINT_HEADER_BYTES), crc32(buf.subarray(0, 28))), 28);
  return buf;
}

describe('segment header verdicts', () => {
  it('names each wrong field, even when the CRC matches', () => {
    expect(checkSegmentHeader(headerWith((b) => b.writeUInt32LE(0x4c415755, 0)))).toEqual({ kind: 'bad', reason: 'bad segment magic' });
    expect(checkSegmentHeader(headerWith((b) => b.writeUInt16LE(2, 4)))).toEqual({ kind: 'version', version: 2 });
    expect(checkSegmentHeader(headerWith((b) => b.writeUInt16LE(40, 6)))).toEqual({ kind: 'bad', reason: 'bad segment header size' });
    expect(checkSegmentHeader(headerWith((b) => b.writeUInt32LE(0, 8)))).toEqual({ kind: 'bad', reason: 'bad first LSN in segment header' });
    expect(checkSegmentHeader(headerWith((b) => b.writeUInt8(1, 20)))).toEqual({ kind: 'bad', reason: 'non-zero reserved bytes in segment header' });
    expect(checkSegmentHeader(headerWith((b) => b.writeUInt8(1, 27)))).toEqual({ kind: 'bad', reason: 'non-zero reserved bytes in segment header' });
  });

  it('checks the magic before the CRC, and the CRC over bytes 0 to 28 only', () => {
    const header = encodeSegmentHeader(5, 9);
    header[0] = 0;
    expect(checkSegmentHeader(header)).toEqual({ kind: 'bad', reason: 'bad segment magic' });
    const crcWrong = encodeSegmentHeader(5, 9);
    crcWrong[28] = (crcWrong[28] ?? 0) ^ 1;
    expect(checkSegmentHeader(crcWrong)).toEqual({ kind: 'bad', reason: 'segment header CRC mismatch' });
    // Bytes after the header (the first frame) are not part of its CRC.
    const withTail = Buffer.concat([encodeSegmentHeader(5, 9), Buffer.from([1, 2, 3])]);
    expect(checkSegmentHeader(withTail)).toEqual({ kind: 'ok', header: { version: 1, firstLsn: 5, salt: 9 } });
  });

  it('reads a first LSN above 2^32 and refuses one above 2^53', () => {
    expect(checkSegmentHeader(encodeSegmentHeader(2 ** 40 + 3, 0xffffffff))).toEqual({ kind: 'ok', header: { version: 1, firstLsn: 2 ** 40 + 3, salt: 0xffffffff } });
    expect(checkSegmentHeader(encodeSegmentHeader(2 ** 53 - 1, 1))).toMatchObject({ kind: 'ok', header: { firstLsn: 2 ** 53 - 1 } });
    expect(checkSegmentHeader(headerWith((b) => b.writeUInt32LE(1 << 21, 12)))).toEqual({ kind: 'bad', reason: 'bad first LSN in segment header' });
    expect(checkSegmentHeader(headerWith((b) => b.writeUInt32LE((1 << 21) - 1, 12)))).toMatchObject({ kind: 'ok', header: { firstLsn: ((1 << 21) - 1) * 2 ** 32 + 5 } });
  });

  it('takes a header with one non-zero byte as written, and a negative salt as its u32', () => {
    expect(checkSegmentHeader(encodeSegmentHeader(1, -1))).toMatchObject({ kind: 'ok', header: { salt: 0xffffffff } });
    const oneByte = new Uint8Array(SEGMENT_HEADER_BYTES);
    oneByte[31] = 1;
    expect(checkSegmentHeader(oneByte)).toEqual({ kind: 'bad', reason: 'bad segment magic' });
    expect(checkSegmentHeader(new Uint8Array(SEGMENT_HEADER_BYTES - 1).fill(1))).toEqual({ kind: 'missing' });
  });
});

describe('frame verdicts', () => {
  it('names each field that is wrong under a matching CRC', () => {
    expect(checkAt(frameWith(0, 1, new Uint8Array([1])))).toEqual({ kind: 'invalid', reason: 'frame LSN out of range' });
    expect(checkAt(frameWith(5, 1, new Uint8Array([1]), (b) => b.writeUInt32LE(1 << 21, 12)))).toEqual({ kind: 'invalid', reason: 'frame LSN out of range' });
    expect(checkAt(frameWith(5, 1, new Uint8Array([1]), (b) => b.writeUInt8(1, 19)))).toEqual({ kind: 'invalid', reason: 'non-zero reserved bytes in frame' });
    expect(checkAt(frameWith(5, 0, new Uint8Array([1])))).toEqual({ kind: 'invalid', reason: 'unknown record type 0' });
  });

  it('accepts the smallest and largest record type, and an LSN above 2^32', () => {
    expect(checkAt(frameWith(1, 1, new Uint8Array()))).toEqual({ kind: 'ok', lsn: 1, type: 1, payloadBytes: 0, frameBytes: 24 });
    expect(checkAt(frameWith(2 ** 33 + 7, 255, new Uint8Array(8)))).toEqual({ kind: 'ok', lsn: 2 ** 33 + 7, type: 255, payloadBytes: 8, frameBytes: 32 });
  });

  it('tells zeros, a cut header, an insane length and a frame past the end apart', () => {
    const zeros = new Uint8Array(64);
    expect(checkAt(zeros, 0)).toEqual({ kind: 'zero' });
    // Fewer than 20 bytes left: zero when all are, else a cut header.
    expect(checkAt(zeros, 48)).toEqual({ kind: 'zero' });
    const tail = new Uint8Array(64);
    tail[63] = 1;
    expect(checkAt(tail, 48)).toEqual({ kind: 'bad', reason: 'frame header cut short by the end of the file' });
    // Exactly 20 bytes left is a header, read as such.
    expect(checkAt(new Uint8Array(20), 0)).toEqual({ kind: 'zero' });
    // A zero CRC with a length is not the end of the log.
    const lengthOnly = new Uint8Array(64);
    viewOf(lengthOnly).setUint32(4, 4, true);
    expect(checkAt(lengthOnly)).toEqual({ kind: 'bad', reason: 'frame CRC mismatch', payloadBytes: 4 });
    const crcOnly = new Uint8Array(64);
    viewOf(crcOnly).setUint32(0, 7, true);
    expect(checkAt(crcOnly)).toEqual({ kind: 'bad', reason: 'frame CRC mismatch', payloadBytes: 0 });
    const insane = new Uint8Array(64);
    viewOf(insane).setUint32(4, FRAME_PAYLOAD_BYTES_LIMIT + 1, true);
    expect(checkAt(insane)).toEqual({ kind: 'bad', reason: `insane frame length ${FRAME_PAYLOAD_BYTES_LIMIT + 1}` });
    const atLimit = new Uint8Array(64);
    viewOf(atLimit).setUint32(4, FRAME_PAYLOAD_BYTES_LIMIT, true);
    expect(checkAt(atLimit)).toEqual({ kind: 'bad', reason: `frame length ${FRAME_PAYLOAD_BYTES_LIMIT} runs past the end of the file`, payloadBytes: FRAME_PAYLOAD_BYTES_LIMIT });
  });

  it('takes a frame that ends exactly at the end of the file, and refuses one a byte longer', () => {
    const whole = frameWith(3, 2, new Uint8Array([1, 2, 3, 4]));
    expect(checkAt(whole, 0, whole.length)).toMatchObject({ kind: 'ok', frameBytes: whole.length });
    expect(checkAt(whole, 0, whole.length - 1)).toEqual({ kind: 'bad', reason: 'frame length 4 runs past the end of the file', payloadBytes: 4 });
    expect(fastAt(whole, 3, 0, whole.length)).toBe(whole.length);
    expect(fastAt(whole, 3, 0, whole.length - 1)).toBe(0);
    expect(fastAt(whole, 3, 0, FRAME_HEADER_BYTES - 1)).toBe(0);
  });

  it('has a fast path that refuses every field the full check refuses', () => {
    expect(fastAt(frameWith(1, 1, new Uint8Array()), 1)).toBe(24);
    expect(fastAt(frameWith(1, 255, new Uint8Array()), 1)).toBe(24);
    expect(fastAt(frameWith(1, 0, new Uint8Array()), 1)).toBe(0);
    expect(fastAt(frameWith(1, 256, new Uint8Array()), 1)).toBe(0);
    const high = frameWith(2 ** 32 + 1, 1, new Uint8Array([9]));
    expect(fastAt(high, 2 ** 32 + 1)).toBe(24);
    expect(fastAt(high, 1)).toBe(0);
    expect(fastAt(high, 2 ** 33 + 1)).toBe(0);
    const insane = new Uint8Array(64);
    viewOf(insane).setUint32(4, FRAME_PAYLOAD_BYTES_LIMIT + 1, true);
    expect(fastAt(insane, 0)).toBe(0);
    // A frame at a later offset is read where it is.
    const two = new Uint8Array(56);
    two.set(frameWith(1, 1, new Uint8Array([1, 2, 3, 4])), 0);
    two.set(frameWith(2, 1, new Uint8Array()), 32);
    expect(fastAt(two, 2, 32)).toBe(24);
    expect(checkAt(two, 32)).toEqual({ kind: 'ok', lsn: 2, type: 1, payloadBytes: 0, frameBytes: 24 });
  });

  it('writes the frame in place: bytes around it stay, padding is zeroed, a negative salt is its u32', () => {
    const buf = Buffer.alloc(64, 0xee);
    const size = encodeFrame(buf, 16, -1, 4, 3, new Uint8Array([1, 2, 3]));
    expect(size).toBe(24);
    expect([...buf.subarray(0, 16)].every((b) => b === 0xee)).toBe(true);
    expect([...buf.subarray(40)].every((b) => b === 0xee)).toBe(true);
    expect([...buf.subarray(16 + 23, 16 + 24)]).toEqual([0]);
    expect(buf.readUInt32LE(16)).toBe(crc32(buf.subarray(20, 40), 0xffffffff));
    const exact = Buffer.alloc(32, 0xee);
    expect(encodeFrame(exact, 0, 1, 1, 1, new Uint8Array(12))).toBe(32);
    expect([...exact.subarray(20, 32)].every((b) => b === 0)).toBe(true);
  });
});

describe('torn-write evidence', () => {
  it('with an unknown length, looks at the first 8 bytes only', () => {
    const disk = new Uint8Array(1024).fill(7);
    expect(looksTorn(disk, 0, 1024, undefined)).toBe(false);
    disk.fill(0, 0, 8);
    expect(looksTorn(disk, 0, 1024, undefined)).toBe(true);
    const laterZero = new Uint8Array(1024).fill(7);
    laterZero.fill(0, 8, 512);
    expect(looksTorn(laterZero, 0, 1024, undefined)).toBe(false);
  });

  it('judges each sector-aligned chunk from the frame start, not the frame start as a sector', () => {
    const disk = new Uint8Array(2048).fill(7);
    // The frame runs 500 .. 1540; only the chunk 512 .. 1024 is zero.
    disk.fill(0, 512, 1024);
    expect(looksTorn(disk, 500, 2048, 1020)).toBe(true);
    disk.fill(7, 512, 1024);
    disk.fill(0, 1024, 1536);
    expect(looksTorn(disk, 500, 2048, 1020)).toBe(true);
    // Zeros past the frame's end are not evidence.
    const after = new Uint8Array(2048).fill(7);
    after.fill(0, 1024, 2048);
    expect(looksTorn(after, 500, 2048, 500)).toBe(false);
    // The last chunk ends with the frame, mid-sector: the frame runs 500 .. 1120.
    const shortTail = new Uint8Array(2048).fill(7);
    shortTail.fill(0, 1024, 1120);
    expect(looksTorn(shortTail, 500, 2048, 600)).toBe(true);
    shortTail[1119] = 1;
    expect(looksTorn(shortTail, 500, 2048, 600)).toBe(false);
    // ... or with the file, when the file ends first.
    expect(looksTorn(shortTail, 500, 1100, 600)).toBe(true);
  });
});

describe('zero scanning past one 64 KiB chunk', () => {
  it('finds a non-zero byte anywhere in a long range', () => {
    const big = new Uint8Array(200_000);
    expect(isAllZero(big, 0, big.length)).toBe(true);
    expect(isAllZero(big, 10, 10)).toBe(true);
    for (const at of [0, 65_535, 65_536, 131_072, 199_999]) {
      big[at] = 1;
      expect(isAllZero(big, 0, big.length), `byte ${at}`).toBe(false);
      expect(isAllZero(big, at + 1, big.length), `after ${at}`).toBe(true);
      expect(endOfNonZero(big, 0, big.length), `end after ${at}`).toBe(at + 1);
      big[at] = 0;
    }
  });

  it('reads only [start, end), on a view into a larger buffer', () => {
    const backing = new Uint8Array(300_000);
    backing[1000] = 5;
    backing[250_000] = 5;
    const view = backing.subarray(2000, 200_000);
    expect(isAllZero(view, 0, view.length)).toBe(true);
    expect(endOfNonZero(view, 0, view.length)).toBe(0);
    view[150_000] = 3;
    view[150_002] = 3;
    expect(endOfNonZero(view, 0, view.length)).toBe(150_003);
    expect(endOfNonZero(view, 150_001, 150_002)).toBe(150_001);
    expect(endOfNonZero(view, 10, 100)).toBe(10);
    expect(endOfNonZero(view, 150_000, 150_001)).toBe(150_001);
  });
});

describe('checkpoint file verdicts', () => {
  it('names each wrong field, even when the CRC matches', () => {
    const data = new TextEncoder().encode('snapshot');
    expect(checkCheckpoint(new Uint8Array(CHECKPOINT_HEADER_BYTES - 1))).toEqual({ kind: 'bad', reason: 'checkpoint file shorter than its header' });
    expect(checkCheckpoint(checkpointWith(3, data, (b) => b.writeUInt32LE(0x4c415754, 0)))).toEqual({ kind: 'bad', reason: 'bad checkpoint magic' });
    expect(checkCheckpoint(checkpointWith(3, data, (b) => b.writeUInt16LE(0, 4)))).toEqual({ kind: 'version', version: 0 });
    expect(checkCheckpoint(checkpointWith(3, data, (b) => b.writeUInt32LE(data.length + 1, 16)))).toEqual({ kind: 'bad', reason: 'checkpoint file size does not match its header' });
    expect(checkCheckpoint(checkpointWith(0, data, () => undefined))).toEqual({ kind: 'bad', reason: 'checkpoint LSN out of range' });
    expect(checkCheckpoint(checkpointWith(3, data, (b) => b.writeUInt32LE(1 << 21, 12)))).toEqual({ kind: 'bad', reason: 'checkpoint LSN out of range' });
  });

  it('binds the header into the CRC, and hands back a copy of exactly the data', () => {
    const data = new TextEncoder().encode('snapshot');
    const file = encodeCheckpoint(2 ** 35 + 1, data);
    expect(file.length).toBe(CHECKPOINT_HEADER_BYTES + data.length);
    expect(file.subarray(0, 4).toString()).toBe('TWCK');
    expect(file.readUInt16LE(4)).toBe(1);
    expect(file.readUInt16LE(6)).toBe(CHECKPOINT_HEADER_BYTES);
    expect(file.readUInt32LE(16)).toBe(data.length);
    const result = checkCheckpoint(file);
    expect(result).toEqual({ kind: 'ok', lsn: 2 ** 35 + 1, data });
    if (result.kind !== 'ok') throw new Error('unreachable');
    file[CHECKPOINT_HEADER_BYTES] = 0;
    expect(result.data[0]).toBe(data[0]);
    const headerFlip = encodeCheckpoint(3, data);
    headerFlip[8] = (headerFlip[8] ?? 0) ^ 1;
    expect(checkCheckpoint(headerFlip)).toEqual({ kind: 'bad', reason: 'checkpoint CRC mismatch' });
    expect(checkCheckpoint(encodeCheckpoint(1, new Uint8Array()))).toEqual({ kind: 'ok', lsn: 1, data: new Uint8Array() });
  });
});

describe('file names', () => {
  it('parses only exact 20-digit names of LSN 1 and up', () => {
    expect(parseSegmentName(segmentName(1))).toBe(1);
    expect(parseSegmentName('00000000000000000000.wal')).toBeUndefined();
    expect(parseSegmentName('x00000000000000000042.wal')).toBeUndefined();
    expect(parseSegmentName('000000000000000000042.wal')).toBeUndefined();
    expect(parseSegmentName('99999999999999999999.wal')).toBeUndefined();
    expect(parseSegmentName(segmentName(2 ** 53 - 1))).toBe(2 ** 53 - 1);
    expect(checkpointName(42)).toBe('checkpoint-00000000000000000042.ckpt');
    expect(parseCheckpointName(checkpointName(1))).toBe(1);
    expect(parseCheckpointName(checkpointName(2 ** 40))).toBe(2 ** 40);
    expect(parseCheckpointName('checkpoint-00000000000000000000.ckpt')).toBeUndefined();
    expect(parseCheckpointName('checkpoint-99999999999999999999.ckpt')).toBeUndefined();
    expect(parseCheckpointName('xcheckpoint-00000000000000000042.ckpt')).toBeUndefined();
    expect(parseCheckpointName('checkpoint-00000000000000000042.ckpt.tmp')).toBeUndefined();
    expect(parseCheckpointName('checkpoint-42.ckpt')).toBeUndefined();
  });

  it('rounds sizes up to 8', () => {
    expect([0, 1, 7, 8, 9, 16].map(align8)).toEqual([0, 8, 8, 8, 16, 16]);
    expect(frameBytesFor(4)).toBe(24);
    expect(frameBytesFor(5)).toBe(32);
  });
});
