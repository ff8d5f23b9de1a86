/**
 * The on-disk format (docs/wal-format.md), as pure functions over buffers.
 * Nothing here does I/O, so the scanner, the writer and the tests share one
 * definition of every byte.
 */
import { crc32 } from 'node:zlib';

export const FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 32;
export const FRAME_HEADER_BYTES = 20;
export const CHECKPOINT_HEADER_BYTES = 32;
/** Torn writes are judged per 512-byte sector, the smallest unit a disk writes atomically. */
export const SECTOR_BYTES = 512;
/** A frame length above this is never sane, whatever the options say; it bounds every read. */
export const FRAME_PAYLOAD_BYTES_LIMIT = 1 << 30;
export const TYPE_MIN = 1;
export const TYPE_MAX = 255;

const SEGMENT_MAGIC = 0x4c415754; // 'TWAL' read as a little-endian u32
const CHECKPOINT_MAGIC = 0x4b435754; // 'TWCK'
const TWO_POW_32 = 0x1_0000_0000;
/** LSNs are JS numbers, so the high word of the u64 must stay below 2^21 (2^53 in all). */
const LSN_HIGH_LIMIT = 1 << 21;

export const align8 = (bytes: number): number => (bytes + 7) & ~7;

/** Bytes a frame with `payloadBytes` of payload occupies, padding included. */
export const frameBytesFor = (payloadBytes: number): number => align8(FRAME_HEADER_BYTES + payloadBytes);

const SEGMENT_NAME = /^(\d{20})\.wal$/;
const CHECKPOINT_NAME = /^checkpoint-(\d{20})\.ckpt$/;

export const segmentName = (firstLsn: number): string => `${String(firstLsn).padStart(20, '0')}.wal`;
export const checkpointName = (lsn: number): string => `checkpoint-${String(lsn).padStart(20, '0')}.ckpt`;

export function parseSegmentName(name: string): number | undefined {
  const match = SEGMENT_NAME.exec(name);
  if (!match?.[1]) return undefined;
  const lsn = Number(match[1]);
  return Number.isSafeInteger(lsn) && lsn >= 1 ? lsn : undefined;
}

export function parseCheckpointName(name: string): number | undefined {
  const match = CHECKPOINT_NAME.exec(name);
  if (!match?.[1]) return undefined;
  const lsn = Number(match[1]);
  return Number.isSafeInteger(lsn) && lsn >= 1 ? lsn : undefined;
}

function writeU64(buf: Uint8Array, offset: number, value: number): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  view.setUint32(offset, value % TWO_POW_32, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_POW_32), true);
}

/** Reads a u64 that must fit a safe integer; returns -1 when it does not. */
function readU64(view: DataView, offset: number): number {
  const high = view.getUint32(offset + 4, true);
  return high >= LSN_HIGH_LIMIT ? -1 : high * TWO_POW_32 + view.getUint32(offset, true);
}

const viewOf = (buf: Uint8Array): DataView => new DataView(buf.buffer, buf.byteOffset, buf.byteLength);

export function isAllZero(buf: Uint8Array, start: number, end: number): boolean {
  // Word-at-a-time would be faster, but recovery only calls this on the unused tail of a
  // segment once, and Buffer#equals on a shared zero chunk runs as a native memcmp.
  const chunk = ZERO_CHUNK;
  let at = start;
  while (at < end) {
    const len = Math.min(chunk.length, end - at);
    if (!Buffer.from(buf.buffer, buf.byteOffset + at, len).equals(chunk.subarray(0, len))) return false;
    at += len;
  }
  return true;
}
const ZERO_CHUNK = Buffer.alloc(64 * 1024);

/** Offset just after the last non-zero byte in [start, end), or `start` when all are zero. */
export function endOfNonZero(buf: Uint8Array, start: number, end: number): number {
  let at = end;
  while (at > start) {
    const from = Math.max(start, at - ZERO_CHUNK.length);
    if (!isAllZero(buf, from, at)) {
      for (let i = at - 1; i >= from; i--) if (buf[i] !== 0) return i + 1;
    }
    at = from;
  }
  return start;
}

// ---------------------------------------------------------------- segment header

export interface SegmentHeader {
  readonly version: number;
  readonly firstLsn: number;
  readonly salt: number;
}

export function encodeSegmentHeader(firstLsn: number, salt: number): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  buf.writeUInt32LE(SEGMENT_MAGIC, 0);
  buf.writeUInt16LE(FORMAT_VERSION, 4);
  buf.writeUInt16LE(SEGMENT_HEADER_BYTES, 6);
  writeU64(buf, 8, firstLsn);
  buf.writeUInt32LE(salt >>> 0, 16);
  buf.writeUInt32LE(crc32(buf.subarray(0, 28)), 28);
  return buf;
}

export type HeaderCheck =
  | { readonly kind: 'ok'; readonly header: SegmentHeader }
  /** All zero or shorter than a header: it was never written (a crash between rename and sync). */
  | { readonly kind: 'missing' }
  | { readonly kind: 'bad'; readonly reason: string }
  | { readonly kind: 'version'; readonly version: number };

export function checkSegmentHeader(buf: Uint8Array): HeaderCheck {
  if (buf.length < SEGMENT_HEADER_BYTES || isAllZero(buf, 0, SEGMENT_HEADER_BYTES)) return { kind: 'missing' };
  const view = viewOf(buf);
  if (view.getUint32(0, true) !== SEGMENT_MAGIC) return { kind: 'bad', reason: 'bad segment magic' };
  if (crc32(buf.subarray(0, 28)) !== view.getUint32(28, true)) return { kind: 'bad', reason: 'segment header CRC mismatch' };
  const version = view.getUint16(4, true);
  if (version !== FORMAT_VERSION) return { kind: 'version', version };
  if (view.getUint16(6, true) !== SEGMENT_HEADER_BYTES) return { kind: 'bad', reason: 'bad segment header size' };
  const firstLsn = readU64(view, 8);
  if (firstLsn < 1) return { kind: 'bad', reason: 'bad first LSN in segment header' };
  if (view.getUint32(20, true) !== 0 || view.getUint32(24, true) !== 0) return { kind: 'bad', reason: 'non-zero reserved bytes in segment header' };
  return { kind: 'ok', header: { version, firstLsn, salt: view.getUint32(16, true) } };
}

// ---------------------------------------------------------------- frames

/**
 * Encodes one frame into `buf` at `offset` (which must have `frameBytesFor(payload.length)`
 * bytes of room) and returns the frame's size. Building the frame in place lets the writer
 * hand one pre-built buffer to a single pwritev.
 */
export function encodeFrame(buf: Buffer, offset: number, salt: number, lsn: number, type: number, payload: Uint8Array): number {
  const length = payload.length;
  const frameBytes = frameBytesFor(length);
  buf.writeUInt32LE(length, offset + 4);
  buf.writeUInt32LE(lsn % TWO_POW_32, offset + 8);
  buf.writeUInt32LE(Math.floor(lsn / TWO_POW_32), offset + 12);
  // Type and the three reserved bytes as one word: type in the low byte, zeros above.
  buf.writeUInt32LE(type, offset + 16);
  buf.set(payload, offset + FRAME_HEADER_BYTES);
  const payloadEnd = offset + FRAME_HEADER_BYTES + length;
  if (payloadEnd < offset + frameBytes) buf.fill(0, payloadEnd, offset + frameBytes);
  // A plain Uint8Array view: Buffer#subarray builds a Buffer, which costs several times more per call.
  buf.writeUInt32LE(crc32(new Uint8Array(buf.buffer, buf.byteOffset + offset + 4, frameBytes - 4), salt >>> 0), offset);
  return frameBytes;
}

/** What is at one frame position, judged without context. */
export type FrameCheck =
  | { readonly kind: 'ok'; readonly lsn: number; readonly type: number; readonly payloadBytes: number; readonly frameBytes: number }
  /** The first 8 bytes are zero: end of the log if everything after is zero too. */
  | { readonly kind: 'zero' }
  /** Not a valid frame: torn, never written, or corrupt (the caller decides which). */
  | { readonly kind: 'bad'; readonly reason: string; readonly payloadBytes?: number }
  /** The CRC matches, so the frame was written as is, but its fields are wrong: corruption or a bug. */
  | { readonly kind: 'invalid'; readonly reason: string };

/**
 * Checks the frame at `offset` in a segment whose bytes are `buf[0 .. end)`. Pass a plain
 * Uint8Array, not a Buffer: the CRC needs a view per frame and a Buffer view costs more.
 */
export function checkFrame(buf: Uint8Array, view: DataView, offset: number, end: number, salt: number): FrameCheck {
  if (offset + FRAME_HEADER_BYTES > end) {
    return isAllZero(buf, offset, end) ? { kind: 'zero' } : { kind: 'bad', reason: 'frame header cut short by the end of the file' };
  }
  const crc = view.getUint32(offset, true);
  const length = view.getUint32(offset + 4, true);
  if (crc === 0 && length === 0) return { kind: 'zero' };
  if (length > FRAME_PAYLOAD_BYTES_LIMIT) return { kind: 'bad', reason: `insane frame length ${length}` };
  const frameBytes = frameBytesFor(length);
  if (offset + frameBytes > end) return { kind: 'bad', reason: `frame length ${length} runs past the end of the file`, payloadBytes: length };
  const actual = crc32(buf.subarray(offset + 4, offset + frameBytes), salt);
  if (actual !== crc) return { kind: 'bad', reason: 'frame CRC mismatch', payloadBytes: length };
  const lsn = readU64(view, offset + 8);
  const typeWord = view.getUint32(offset + 16, true);
  const type = typeWord & 0xff;
  if (lsn < 1) return { kind: 'invalid', reason: 'frame LSN out of range' };
  if (typeWord !== type) return { kind: 'invalid', reason: 'non-zero reserved bytes in frame' };
  if (type < TYPE_MIN) return { kind: 'invalid', reason: `unknown record type ${type}` };
  return { kind: 'ok', lsn, type, payloadBytes: length, frameBytes };
}

/**
 * The fast path of recovery: the size of the frame at `offset` when it is valid and holds
 * `expectedLsn`, else 0 (then `checkFrame` says what is wrong). It allocates nothing but the
 * CRC's view, which keeps the scan at hundreds of thousands of records per second.
 */
export function validFrameBytes(buf: Uint8Array, view: DataView, offset: number, end: number, salt: number, expectedLsn: number): number {
  if (offset + FRAME_HEADER_BYTES > end) return 0;
  const length = view.getUint32(offset + 4, true);
  if (length > FRAME_PAYLOAD_BYTES_LIMIT) return 0;
  const frameBytes = frameBytesFor(length);
  if (offset + frameBytes > end) return 0;
  if (view.getUint32(offset + 8, true) !== expectedLsn % TWO_POW_32 || view.getUint32(offset + 12, true) !== Math.floor(expectedLsn / TWO_POW_32)) return 0;
  const typeWord = view.getUint32(offset + 16, true);
  if (typeWord < TYPE_MIN || typeWord > TYPE_MAX) return 0;
  return crc32(buf.subarray(offset + 4, offset + frameBytes), salt) === view.getUint32(offset, true) ? frameBytes : 0;
}

/**
 * True when some sector-aligned chunk of a bad frame's bytes is entirely zero: the mark of a
 * write that did not reach the disk in full (see "Recovery" in docs/wal-format.md). Padding is
 * left out because it is zero in every frame. When the length is unknown only the crc/length
 * word is looked at.
 */
export function looksTorn(buf: Uint8Array, offset: number, fileEnd: number, payloadBytes: number | undefined): boolean {
  const end = Math.min(fileEnd, payloadBytes === undefined ? offset + 8 : offset + FRAME_HEADER_BYTES + payloadBytes);
  let start = offset;
  while (start < end) {
    const chunkEnd = Math.min(end, (Math.floor(start / SECTOR_BYTES) + 1) * SECTOR_BYTES);
    if (isAllZero(buf, start, chunkEnd)) return true;
    start = chunkEnd;
  }
  return false;
}

// ---------------------------------------------------------------- checkpoints

export function encodeCheckpoint(lsn: number, data: Uint8Array): Buffer {
  const buf = Buffer.alloc(CHECKPOINT_HEADER_BYTES + data.length);
  buf.writeUInt32LE(CHECKPOINT_MAGIC, 0);
  buf.writeUInt16LE(FORMAT_VERSION, 4);
  buf.writeUInt16LE(CHECKPOINT_HEADER_BYTES, 6);
  writeU64(buf, 8, lsn);
  buf.writeUInt32LE(data.length, 16);
  buf.set(data, CHECKPOINT_HEADER_BYTES);
  buf.writeUInt32LE(checkpointCrc(buf), 28);
  return buf;
}

const checkpointCrc = (buf: Uint8Array): number => crc32(buf.subarray(CHECKPOINT_HEADER_BYTES), crc32(buf.subarray(0, 28)));

export type CheckpointCheck =
  | { readonly kind: 'ok'; readonly lsn: number; readonly data: Uint8Array }
  | { readonly kind: 'bad'; readonly reason: string }
  | { readonly kind: 'version'; readonly version: number };

export function checkCheckpoint(buf: Uint8Array): CheckpointCheck {
  if (buf.length < CHECKPOINT_HEADER_BYTES) return { kind: 'bad', reason: 'checkpoint file shorter than its header' };
  const view = viewOf(buf);
  if (view.getUint32(0, true) !== CHECKPOINT_MAGIC) return { kind: 'bad', reason: 'bad checkpoint magic' };
  const version = view.getUint16(4, true);
  if (version !== FORMAT_VERSION) return { kind: 'version', version };
  const dataBytes = view.getUint32(16, true);
  if (buf.length !== CHECKPOINT_HEADER_BYTES + dataBytes) return { kind: 'bad', reason: 'checkpoint file size does not match its header' };
  if (checkpointCrc(buf) !== view.getUint32(28, true)) return { kind: 'bad', reason: 'checkpoint CRC mismatch' };
  const lsn = readU64(view, 8);
  if (lsn < 1) return { kind: 'bad', reason: 'checkpoint LSN out of range' };
  return { kind: 'ok', lsn, data: new Uint8Array(buf.subarray(CHECKPOINT_HEADER_BYTES)) };
}
