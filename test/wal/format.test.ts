/** The on-disk format (docs/wal-format.md), byte by byte. */
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  FRAME_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  checkCheckpoint,
  checkFrame,
  checkSegmentHeader,
  encodeCheckpoint,
  encodeFrame,
  encodeSegmentHeader,
  frameBytesFor,
  looksTorn,
  parseCheckpointName,
  parseSegmentName,
  segmentName,
  validFrameBytes,
} from '../../wal/format.ts';

const frame = (lsn: number, type: number, payload: Uint8Array, salt = 0x1234abcd): Buffer => {
  const buf = Buffer.alloc(frameBytesFor(payload.length) + 16, 0xee);
  encodeFrame(buf, 8, salt, lsn, type, payload);
  return buf;
};
const check = (buf: Buffer, offset = 8, salt = 0x1234abcd) => {
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  return checkFrame(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset, buf.length, salt);
};

describe('frames', () => {
  it('lays out crc | length | lsn | type | payload | zero padding to a multiple of 8', () => {
    const payload = new TextEncoder().encode('hello');
    const buf = frame(0x1_0000_0002, 9, payload);
    const at = 8;
    expect(frameBytesFor(5)).toBe(32);
    expect(buf.readUInt32LE(at + 4)).toBe(5);
    expect(buf.readUInt32LE(at + 8)).toBe(2);
    expect(buf.readUInt32LE(at + 12)).toBe(1);
    expect(buf[at + 16]).toBe(9);
    expect([...buf.subarray(at + 17, at + 20)]).toEqual([0, 0, 0]);
    expect(buf.subarray(at + FRAME_HEADER_BYTES, at + 25).toString()).toBe('hello');
    expect([...buf.subarray(at + 25, at + 32)]).toEqual([0, 0, 0, 0, 0, 0, 0]);
    expect(buf.readUInt32LE(at)).toBe(crc32(buf.subarray(at + 4, at + 32), 0x1234abcd));
    expect(check(buf)).toEqual({ kind: 'ok', lsn: 0x1_0000_0002, type: 9, payloadBytes: 5, frameBytes: 32 });
  });

  it('is always a multiple of 8 bytes, so every frame starts 8-aligned', () => {
    for (let n = 0; n < 40; n++) expect(frameBytesFor(n) % 8).toBe(0);
    expect(frameBytesFor(0)).toBe(24);
  });

  it('binds the salt: the same bytes under another segment salt do not validate', () => {
    const buf = frame(1, 1, new Uint8Array([1, 2, 3]));
    expect(check(buf, 8, 0x1234abcd).kind).toBe('ok');
    expect(check(buf, 8, 0x1234abce)).toMatchObject({ kind: 'bad', reason: 'frame CRC mismatch' });
  });

  it('catches a flip of any bit of the frame, padding included', () => {
    const buf = frame(7, 3, new TextEncoder().encode('abc'));
    for (let at = 8; at < 8 + frameBytesFor(3); at++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(buf);
        copy[at] = (copy[at] ?? 0) ^ (1 << bit);
        expect(check(copy).kind, `byte ${at} bit ${bit}`).not.toBe('ok');
        const bytes = new Uint8Array(copy.buffer, copy.byteOffset, copy.length);
        expect(validFrameBytes(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 8, copy.length, 0x1234abcd, 7), `fast path, byte ${at} bit ${bit}`).toBe(0);
      }
    }
  });

  it('rejects type 0 and reserved bytes even with a matching CRC', () => {
    const buf = frame(1, 0, new Uint8Array([1]));
    expect(check(buf)).toMatchObject({ kind: 'invalid', reason: 'unknown record type 0' });
    const reserved = frame(1, 1 | (1 << 8), new Uint8Array([1]));
    expect(check(reserved)).toMatchObject({ kind: 'invalid' });
  });

  it('reads 8 zero bytes as "zero" (end of log when the rest is zero too)', () => {
    expect(check(Buffer.alloc(64), 8).kind).toBe('zero');
  });

  it('computes the CRC from its parts exactly as one zlib.crc32 over the frame', () => {
    let seed = 1;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0);
    for (let length = 0; length < 300; length++) {
      const payload = Uint8Array.from({ length }, () => next() & 0xff);
      const salt = next();
      const buf = Buffer.alloc(frameBytesFor(length) + 16);
      const at = 8 * (next() % 2);
      encodeFrame(buf, at, salt, 1 + (next() % 1000), 1 + (next() % 255), payload);
      expect(buf.readUInt32LE(at)).toBe(crc32(buf.subarray(at + 4, at + frameBytesFor(length)), salt));
    }
  });

  it('has a fast path that agrees with the full check', () => {
    const buf = frame(42, 5, new Uint8Array(50).fill(9));
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(validFrameBytes(bytes, view, 8, buf.length, 0x1234abcd, 42)).toBe(frameBytesFor(50));
    expect(validFrameBytes(bytes, view, 8, buf.length, 0x1234abcd, 43)).toBe(0);
    expect(validFrameBytes(bytes, view, 8, buf.length, 0x1234abce, 42)).toBe(0);
  });
});

describe('torn writes', () => {
  it('sees a zero sector-aligned chunk of the frame as torn, and none as not torn', () => {
    const disk = new Uint8Array(2048);
    disk.fill(7, 400, 1200);
    expect(looksTorn(disk, 400, 2048, 780)).toBe(false);
    disk.fill(0, 512, 1024);
    expect(looksTorn(disk, 400, 2048, 780)).toBe(true);
    // The bound: a frame cannot extend past the next valid frame, whatever its length says.
    const bounded = new Uint8Array(2048).fill(7, 0, 600);
    expect(looksTorn(bounded, 8, 2048, 1500)).toBe(true);
    expect(looksTorn(bounded, 8, 600, 1500)).toBe(false);
  });
});

describe('segment header', () => {
  it('round-trips and names the first LSN and salt', () => {
    const header = encodeSegmentHeader(123, 0xdeadbeef);
    expect(header.length).toBe(SEGMENT_HEADER_BYTES);
    expect(header.subarray(0, 4).toString()).toBe('TWAL');
    expect(checkSegmentHeader(header)).toEqual({ kind: 'ok', header: { version: 1, firstLsn: 123, salt: 0xdeadbeef } });
  });

  it('tells a header never written (zeros, or a short file) from a corrupt one', () => {
    expect(checkSegmentHeader(new Uint8Array(32)).kind).toBe('missing');
    expect(checkSegmentHeader(encodeSegmentHeader(1, 1).subarray(0, 20)).kind).toBe('missing');
    const header = encodeSegmentHeader(1, 5);
    header[17] = (header[17] ?? 0) ^ 1;
    expect(checkSegmentHeader(header).kind).toBe('bad');
  });
});

describe('checkpoint file', () => {
  it('round-trips and refuses a file of the wrong size or CRC', () => {
    const file = encodeCheckpoint(77, new TextEncoder().encode('state'));
    expect(checkCheckpoint(file)).toMatchObject({ kind: 'ok', lsn: 77 });
    expect(checkCheckpoint(file.subarray(0, file.length - 1)).kind).toBe('bad');
    const flipped = Buffer.from(file);
    flipped[34] = (flipped[34] ?? 0) ^ 1;
    expect(checkCheckpoint(flipped)).toMatchObject({ kind: 'bad', reason: 'checkpoint CRC mismatch' });
  });
});

describe('file names', () => {
  it('zero-pads segment names to 20 digits so they sort by LSN', () => {
    expect(segmentName(1)).toBe('00000000000000000001.wal');
    const names = [1, 10, 9, 100, 2 ** 40].map(segmentName);
    expect([...names].sort()).toEqual([1, 9, 10, 100, 2 ** 40].map(segmentName));
    expect(parseSegmentName('00000000000000000042.wal')).toBe(42);
    expect(parseSegmentName('42.wal')).toBeUndefined();
    expect(parseSegmentName('00000000000000000042.wal.tmp')).toBeUndefined();
    expect(parseCheckpointName('checkpoint-00000000000000000042.ckpt')).toBe(42);
  });
});
