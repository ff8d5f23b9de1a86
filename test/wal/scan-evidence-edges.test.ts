/**
 * Where the scan looks for evidence after a bad frame in the last segment, at the edges of that
 * search: a later frame whose header is the last written thing, bytes that reach the file's last
 * byte, LSNs at and above 2^32, and a frame that would start before the bad one. A frame found
 * there turns a torn tail (cut) into corruption (refused), so each edge decides a verdict.
 */
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeFrame, encodeSegmentHeader, segmentName } from '../../wal/format.ts';
import { scanSegment } from '../../wal/scan.ts';

const SALT = 0x5eed;
const SIZE = 4096;
const TWO_POW_32 = 2 ** 32;

const named = (firstLsn: number) => ({ name: segmentName(firstLsn), firstLsn });

/** A last segment starting at `firstLsn` with one valid frame (payload 4) at 32 and a bad one at 56: the frame of `firstLsn + 1` with a payload byte flipped. */
function withBadSecond(firstLsn: number): Buffer {
  const bytes = Buffer.alloc(SIZE);
  encodeSegmentHeader(firstLsn, SALT).copy(bytes, 0);
  encodeFrame(bytes, 32, SALT, firstLsn, 1, new Uint8Array(4).fill(5));
  encodeFrame(bytes, 56, SALT, firstLsn + 1, 1, new Uint8Array(4).fill(6));
  bytes[78] = (bytes[78] ?? 0) ^ 0xff;
  return bytes;
}

/** Recomputes the CRC of the frame at `offset`, `frameBytes` long, after its bytes were edited. */
const reseal = (bytes: Buffer, offset: number, frameBytes: number): void => {
  bytes.writeUInt32LE(crc32(bytes.subarray(offset + 4, offset + frameBytes), SALT), offset);
};

describe('evidence after a bad frame in the last segment', () => {
  it('counts a later frame whose header is the last non-zero thing in the segment', () => {
    // At 80 a frame of LSN 2 with an empty payload and a non-zero reserved byte (its header's
    // last byte, 99), CRC matching: invalid, which is evidence; nothing follows it.
    const bytes = withBadSecond(1);
    encodeFrame(bytes, 80, SALT, 2, 1, new Uint8Array());
    bytes[99] = 1;
    reseal(bytes, 80, 24);
    expect(scanSegment(bytes, named(1), true).corruption).toEqual({ code: 'WAL_CORRUPT', segment: segmentName(1), offset: 56, reason: 'frame CRC mismatch, yet a valid frame (LSN 2) follows at offset 80' });
  });

  it('cuts a bad frame whose bytes run to the last byte of the file, looking no further', () => {
    const bytes = withBadSecond(1);
    bytes.fill(0xab, 56);
    expect(scanSegment(bytes, named(1), true)).toEqual({
      report: { name: segmentName(1), firstLsn: 1, lastLsn: 1, records: 1, endOffset: 56, fileBytes: SIZE, salt: SALT },
      torn: { segment: segmentName(1), offset: 56, bytes: SIZE - 56, reason: `insane frame length ${0xabababab}, nothing valid after it`, headerMissing: false },
    });
  });

  it('finds a later frame above LSN 2^32', () => {
    const first = TWO_POW_32 + 10;
    const bytes = withBadSecond(first);
    encodeFrame(bytes, 80, SALT, first + 1, 1, new Uint8Array(4).fill(8));
    expect(scanSegment(bytes, named(first), true).corruption).toMatchObject({ offset: 56, reason: `frame CRC mismatch, yet a valid frame (LSN ${first + 1}) follows at offset 80` });
  });

  it('finds a later frame of LSN 2^32 exactly, the last LSN the bytes left could reach', () => {
    // Expected after the bad frame: 2^32 - 4. The search reaches 3 LSNs per 72 bytes left plus
    // one: from 56 to the frame's end at 108, up to 2^32 - 4 + 3 + 1 = 2^32.
    const first = TWO_POW_32 - 5;
    const bytes = withBadSecond(first);
    encodeFrame(bytes, 80, SALT, TWO_POW_32, 1, new Uint8Array(8).fill(9));
    expect(scanSegment(bytes, named(first), true).corruption).toMatchObject({ offset: 56, reason: `frame CRC mismatch, yet a valid frame (LSN ${TWO_POW_32}) follows at offset 80` });
  });

  it('does not take a frame that starts inside the last valid one as evidence', () => {
    // The valid frame at 32 (LSN 1, payload 20) ends at 72. Its last 8 payload bytes are the CRC
    // and length of a well-formed frame at 64 holding LSN 2 (payload 8, to 96), whose bytes from
    // 72 on are what follows the valid frame: a bad frame there (CRC 2, length 0).
    const bytes = Buffer.alloc(SIZE);
    encodeSegmentHeader(1, SALT).copy(bytes, 0);
    encodeFrame(bytes, 32, SALT, 1, 1, new Uint8Array(20).fill(3));
    bytes.writeUInt32LE(8, 68);
    bytes.writeUInt32LE(2, 72);
    bytes.writeUInt32LE(0, 76);
    bytes.writeUInt32LE(1, 80);
    bytes.fill(4, 84, 92);
    reseal(bytes, 64, 32);
    reseal(bytes, 32, 40);
    expect(scanSegment(bytes, named(1), true)).toEqual({
      report: { name: segmentName(1), firstLsn: 1, lastLsn: 1, records: 1, endOffset: 72, fileBytes: SIZE, salt: SALT },
      torn: { segment: segmentName(1), offset: 72, bytes: 92 - 72, reason: 'frame CRC mismatch, nothing valid after it', headerMissing: false },
    });
  });
});
