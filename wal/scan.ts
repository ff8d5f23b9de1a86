/**
 * Reading a log directory: the one scan that recovery, `verify` and `inspect` share, so
 * they can never disagree about what is torn and what is corrupt. It only reads; repairs
 * are recovery's business (wal/recovery.ts).
 */
import { posix as path } from 'node:path';
import type { WalFs } from './fs.ts';
import {
  FRAME_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  checkCheckpoint,
  checkFrame,
  checkSegmentHeader,
  endOfNonZero,
  isAllZero,
  looksTorn,
  parseCheckpointName,
  parseSegmentName,
  validFrameBytes,
} from './format.ts';
import { SEGMENT_BYTES_LIMIT } from './options.ts';

export interface SegmentFile {
  readonly name: string;
  readonly firstLsn: number;
}

export interface Listing {
  /** Segment files in LSN order. */
  readonly segments: readonly SegmentFile[];
  /** Checkpoint files, newest first. */
  readonly checkpoints: readonly { readonly name: string; readonly lsn: number }[];
  /** `*.tmp` files: preparations that never finished; safe to delete. */
  readonly temps: readonly string[];
}

export async function listLog(fs: WalFs, dir: string): Promise<Listing> {
  const names = await fs.readdir(dir);
  const segments: SegmentFile[] = [];
  const checkpoints: { name: string; lsn: number }[] = [];
  const temps: string[] = [];
  for (const name of names) {
    const firstLsn = parseSegmentName(name);
    if (firstLsn !== undefined) segments.push({ name, firstLsn });
    const lsn = parseCheckpointName(name);
    if (lsn !== undefined) checkpoints.push({ name, lsn });
    if (name.endsWith('.tmp')) temps.push(name);
  }
  segments.sort((a, b) => a.firstLsn - b.firstLsn);
  checkpoints.sort((a, b) => b.lsn - a.lsn);
  return { segments, checkpoints, temps };
}

export async function readWhole(fs: WalFs, file: string, bytesLimit: number): Promise<Buffer> {
  const handle = await fs.open(file, 'read');
  try {
    const size = await handle.size();
    if (size > bytesLimit) throw Object.assign(new Error(`${file} is ${size} bytes, more than the ${bytesLimit} a WAL file may have`), { code: 'EFBIG' });
    const buf = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const read = await handle.read(buf.subarray(at), at);
      if (read === 0) break;
      at += read;
    }
    return at === size ? buf : buf.subarray(0, at);
  } finally {
    await handle.close();
  }
}

const WINDOW_BYTES = 4 * 1024 * 1024;
const WINDOWS_POOLED_MAX = 2;
const windows: Buffer[] = [];
const ZERO_WINDOW = Buffer.alloc(WINDOW_BYTES);

/**
 * Reads a segment for scanning. The file goes through a small reused window and only windows
 * holding a non-zero byte are copied into the result, which starts out as lazily zeroed memory
 * (Buffer.alloc of a large size maps zero pages without touching them). The zero tail of a
 * preallocated segment, usually most of it, therefore costs a read into warm memory rather than
 * page faults on 64 MiB of fresh memory: on some virtual machines that is the difference
 * between milliseconds and half a second per open. `zeroFrom`: every byte from there on is zero.
 */
export async function readSegment(fs: WalFs, file: string, bytesLimit: number): Promise<{ bytes: Buffer; zeroFrom: number }> {
  const handle = await fs.open(file, 'read');
  const window = windows.pop() ?? Buffer.allocUnsafeSlow(WINDOW_BYTES);
  try {
    const size = await handle.size();
    if (size > bytesLimit) throw Object.assign(new Error(`${file} is ${size} bytes, more than the ${bytesLimit} a WAL file may have`), { code: 'EFBIG' });
    const bytes = Buffer.alloc(size);
    let zeroFrom = 0;
    let at = 0;
    while (at < size) {
      const read = await handle.read(window.subarray(0, Math.min(WINDOW_BYTES, size - at)), at);
      if (read === 0) break;
      if (!window.subarray(0, read).equals(ZERO_WINDOW.subarray(0, read))) {
        window.copy(bytes, at, 0, read);
        zeroFrom = at + endOfNonZero(window, 0, read);
      }
      at += read;
    }
    return { bytes: at === size ? bytes : bytes.subarray(0, at), zeroFrom };
  } finally {
    if (windows.length < WINDOWS_POOLED_MAX) windows.push(window);
    await handle.close();
  }
}

/**
 * Called for each valid record. `payload` is a view into the buffer the segment was read into
 * (a fresh one per segment, never reused): keeping it keeps that buffer alive.
 */
export type RecordVisitor = (lsn: number, type: number, payload: Uint8Array, segment: string, offset: number) => void;

export interface SegmentReport {
  readonly name: string;
  readonly firstLsn: number;
  /** `firstLsn - 1` when the segment holds no record. */
  readonly lastLsn: number;
  readonly records: number;
  /** Offset just after the last valid frame: where the next frame goes. */
  readonly endOffset: number;
  readonly fileBytes: number;
  /** Undefined when the header was never written (then the segment is a torn tail as a whole). */
  readonly salt: number | undefined;
}

export interface TornTail {
  readonly segment: string;
  /** Where the cut goes: the first byte that is not part of a valid frame. */
  readonly offset: number;
  /** Bytes from `offset` to the last non-zero byte: what the cut throws away. */
  readonly bytes: number;
  readonly reason: string;
  /** The segment's header was never written, so the whole file goes. */
  readonly headerMissing: boolean;
}

export interface Corruption {
  readonly code: 'WAL_CORRUPT' | 'WAL_UNSUPPORTED_VERSION';
  readonly segment: string;
  readonly offset: number;
  readonly reason: string;
}

export interface ScanResult {
  readonly listing: Listing;
  readonly checkpoint?: { readonly name: string; readonly lsn: number; readonly data: Uint8Array };
  /** Checkpoint files newer than the one used that did not validate. */
  readonly badCheckpoints: readonly { readonly name: string; readonly reason: string }[];
  /** Segments scanned, in order (up to and including the one with a problem). */
  readonly segments: readonly SegmentReport[];
  /** Segments wholly covered by the checkpoint, left unread (recovery deletes them). */
  readonly skipped: readonly SegmentFile[];
  readonly records: number;
  /** LSN of the last valid record, or of the checkpoint when no record follows it; 0 for an empty log. */
  readonly lastLsn: number;
  readonly torn?: TornTail;
  readonly corruption?: Corruption;
}

export interface ScanOptions {
  readonly onRecord?: RecordVisitor;
  /** Also visit records the checkpoint covers (inspect). Segments wholly covered are never read. Default false. */
  readonly visitCovered?: boolean;
  /** Called after each segment's records were visited, with the buffer their payloads point into. */
  readonly onSegmentScanned?: (report: SegmentReport, buffer: Uint8Array) => void;
}

/** Reads the whole log in `dir` and judges every byte, without changing anything. */
export async function scanLog(fs: WalFs, dir: string, options: ScanOptions = {}): Promise<ScanResult> {
  const listing = await listLog(fs, dir);
  const badCheckpoints: { name: string; reason: string }[] = [];
  let checkpoint: ScanResult['checkpoint'];
  for (const candidate of listing.checkpoints) {
    const check = checkCheckpoint(await readWhole(fs, path.join(dir, candidate.name), SEGMENT_BYTES_LIMIT));
    if (check.kind === 'ok' && check.lsn === candidate.lsn) {
      checkpoint = { name: candidate.name, lsn: check.lsn, data: check.data };
      break;
    }
    const reason = check.kind === 'ok' ? `holds LSN ${check.lsn}, not the LSN in its name` : check.kind === 'version' ? `unsupported version ${check.version}` : check.reason;
    badCheckpoints.push({ name: candidate.name, reason });
  }
  const base = checkpoint?.lsn ?? 0;

  // Segments before the one that holds `base + 1` hold only records the checkpoint covers.
  let start = 0;
  for (let i = 0; i < listing.segments.length; i++) if ((listing.segments[i]?.firstLsn ?? Infinity) <= base + 1) start = i;
  const skipped = listing.segments.slice(0, start);
  const toScan = listing.segments.slice(start);

  const reports: SegmentReport[] = [];
  let records = 0;
  let lastLsn = base;
  const result = (extra: { torn?: TornTail; corruption?: Corruption } = {}): ScanResult => ({
    listing,
    ...(checkpoint ? { checkpoint } : {}),
    badCheckpoints,
    segments: reports,
    skipped,
    records,
    lastLsn,
    ...extra,
  });

  let expected: number | undefined;
  for (let i = 0; i < toScan.length; i++) {
    const segment = toScan[i] as SegmentFile;
    const isLast = i === toScan.length - 1;
    if (expected === undefined) {
      if (segment.firstLsn > base + 1) {
        const corruption: Corruption = {
          code: 'WAL_CORRUPT',
          segment: segment.name,
          offset: 0,
          reason: `the log starts at LSN ${segment.firstLsn} but ${checkpoint ? `the checkpoint covers only up to LSN ${base}` : 'there is no checkpoint'}: records ${base + 1}..${segment.firstLsn - 1} are missing`,
        };
        return result({ corruption });
      }
    } else if (segment.firstLsn !== expected) {
      const previous = reports[reports.length - 1];
      const corruption: Corruption = {
        code: 'WAL_CORRUPT',
        segment: segment.name,
        offset: 0,
        reason: `the segment starts at LSN ${segment.firstLsn} but ${previous?.name ?? 'the previous segment'} ends at LSN ${expected - 1}`,
      };
      return result({ corruption });
    }
    const { bytes: buf, zeroFrom } = await readSegment(fs, path.join(dir, segment.name), SEGMENT_BYTES_LIMIT);
    const visit = options.onRecord;
    const onRecord: RecordVisitor | undefined =
      visit && !options.visitCovered && base > 0 && segment.firstLsn <= base
        ? (lsn, type, payload, name, offset) => {
            if (lsn > base) visit(lsn, type, payload, name, offset);
          }
        : visit;
    const outcome = scanSegment(buf, segment, isLast, onRecord, zeroFrom);
    options.onSegmentScanned?.(outcome.report, buf);
    reports.push(outcome.report);
    records += outcome.report.records;
    lastLsn = Math.max(lastLsn, outcome.report.lastLsn);
    expected = outcome.report.lastLsn + 1;
    if (outcome.torn) return finish(result({ torn: outcome.torn }));
    if (outcome.corruption) return result({ corruption: outcome.corruption });
  }
  return finish(result());

  function finish(scan: ScanResult): ScanResult {
    // A checkpoint is only written after the records it covers are durable, so a log that
    // ends before it lost acknowledged records. The end is where the last segment's records
    // stop: `scan.lastLsn` starts at the checkpoint's LSN, so it can never be below it, and a
    // log cut short behind its checkpoint passed as intact, took the next append at an LSN its
    // segment could not hold next, and then refused to open.
    const last = reports[reports.length - 1];
    if (checkpoint && last !== undefined && last.lastLsn < checkpoint.lsn) {
      return {
        ...scan,
        corruption: {
          code: 'WAL_CORRUPT',
          segment: last.name,
          offset: last.endOffset,
          reason: `the log ends at LSN ${last.lastLsn} but checkpoint ${checkpoint.name} covers up to LSN ${checkpoint.lsn}`,
        },
      };
    }
    return scan;
  }
}

interface SegmentOutcome {
  readonly report: SegmentReport;
  readonly torn?: TornTail;
  readonly corruption?: Corruption;
}

/**
 * Judges one segment's bytes (see "Recovery" in docs/wal-format.md). Pure: the same bytes
 * always give the same answer.
 */
export function scanSegment(buf: Buffer, segment: SegmentFile, isLast: boolean, onRecord?: RecordVisitor, zeroFrom = buf.length): SegmentOutcome {
  const { name, firstLsn } = segment;
  const size = buf.length;
  // Bytes from `zeroFrom` on are known to be zero: checks stop there instead of touching them.
  const allZeroFrom = (offset: number): boolean => offset >= zeroFrom || isAllZero(buf, offset, zeroFrom);
  const significantFrom = (offset: number): number => Math.max(offset, endOfNonZero(buf, offset, Math.min(size, zeroFrom)));
  const emptyReport = (salt: number | undefined): SegmentReport => ({ name, firstLsn, lastLsn: firstLsn - 1, records: 0, endOffset: SEGMENT_HEADER_BYTES, fileBytes: size, salt });
  const corrupt = (report: SegmentReport, offset: number, reason: string, code: Corruption['code'] = 'WAL_CORRUPT'): SegmentOutcome => ({
    report,
    corruption: { code, segment: name, offset, reason },
  });

  const header = checkSegmentHeader(buf);
  if (header.kind === 'missing') {
    const significant = significantFrom(0);
    if (isLast) {
      return { report: emptyReport(undefined), torn: { segment: name, offset: 0, bytes: significant, reason: 'segment header never written', headerMissing: true } };
    }
    return corrupt(emptyReport(undefined), 0, 'segment header missing in a segment that is not the last');
  }
  if (header.kind === 'version') return corrupt(emptyReport(undefined), 4, `unsupported segment format version ${header.version}`, 'WAL_UNSUPPORTED_VERSION');
  if (header.kind === 'bad') return corrupt(emptyReport(undefined), 0, header.reason);
  const salt = header.header.salt;
  if (header.header.firstLsn !== firstLsn) return corrupt(emptyReport(salt), 8, `segment header says first LSN ${header.header.firstLsn}, its name says ${firstLsn}`);

  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  // Plain Uint8Array views are cheaper to cut per frame than Buffer views (see checkFrame).
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let offset = SEGMENT_HEADER_BYTES;
  let expected = firstLsn;
  const reportAt = (): SegmentReport => ({ name, firstLsn, lastLsn: expected - 1, records: expected - firstLsn, endOffset: offset, fileBytes: size, salt });

  for (;;) {
    const frameBytes = validFrameBytes(bytes, view, offset, size, salt, expected);
    if (frameBytes > 0) {
      onRecord?.(expected, view.getUint32(offset + 16, true), bytes.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + view.getUint32(offset + 4, true)), name, offset);
      offset += frameBytes;
      expected++;
      continue;
    }
    const frame = checkFrame(bytes, view, offset, size, salt);
    if (frame.kind === 'ok') {
      if (frame.lsn !== expected) return corrupt(reportAt(), offset, `frame holds LSN ${frame.lsn} where LSN ${expected} was expected`);
      onRecord?.(frame.lsn, frame.type, bytes.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + frame.payloadBytes), name, offset);
      offset += frame.frameBytes;
      expected++;
      continue;
    }
    if (frame.kind === 'invalid') return corrupt(reportAt(), offset, frame.reason);
    if (frame.kind === 'zero' && allZeroFrom(offset)) return { report: reportAt() };

    // A bad frame (or zeros followed by something). Where it is decides what it is.
    const significantEnd = significantFrom(offset);
    if (!isLast) {
      if (frame.kind === 'zero') {
        const firstNonZero = firstNonZeroFrom(buf, offset, size);
        return corrupt(reportAt(), firstNonZero, `non-zero byte after the last record of a segment that is not the last (records end at offset ${offset})`);
      }
      return corrupt(reportAt(), offset, `${frame.reason} in a segment that is not the last`);
    }
    const reason = frame.kind === 'zero' ? 'zero frame header followed by non-zero bytes' : frame.reason;
    const payloadBytes = frame.kind === 'bad' ? frame.payloadBytes : undefined;
    const next = findValidFrame(buf, view, offset, significantEnd, salt, expected);
    const torn = (why: string): SegmentOutcome => ({ report: reportAt(), torn: { segment: name, offset, bytes: significantEnd - offset, reason: why, headerMissing: false } });
    if (!next) return torn(`${reason}, nothing valid after it`);
    // The bad frame cannot reach past the valid frame after it, whatever its (perhaps
    // corrupt) length says; without this bound a flipped length bit would reach into the
    // zeros at the end of the segment and pass for a torn write.
    if (looksTorn(buf, offset, next.offset, payloadBytes)) return torn(`${reason}; a zero sector marks an unsynced write (a later frame at offset ${next.offset} was never acknowledged)`);
    return corrupt(reportAt(), offset, `${reason}, yet a valid frame (LSN ${next.lsn}) follows at offset ${next.offset}`);
  }
}

function firstNonZeroFrom(buf: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return i;
  return end;
}

/**
 * Looks for any valid frame after a bad one at `from`. A cheap LSN-range test runs before the
 * CRC, so scanning a large segment costs little.
 */
function findValidFrame(buf: Buffer, view: DataView, from: number, end: number, salt: number, expected: number): { offset: number; lsn: number } | undefined {
  const lsnMax = expected + Math.ceil((end - from) / 24) + 1;
  for (let at = from + 8; at + FRAME_HEADER_BYTES <= end; at += 8) {
    const low = view.getUint32(at + 8, true);
    if (view.getUint32(at + 12, true) !== 0 && lsnMax < 0x1_0000_0000) continue;
    const lsn = view.getUint32(at + 12, true) * 0x1_0000_0000 + low;
    if (lsn < expected || lsn > lsnMax) continue;
    const frame = checkFrame(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), view, at, buf.length, salt);
    if (frame.kind === 'ok' || frame.kind === 'invalid') return { offset: at, lsn };
  }
  return undefined;
}
