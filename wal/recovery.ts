/**
 * Opening a log directory: scan it (wal/scan.ts), refuse mid-log corruption, repair a torn
 * tail (copy, cut, sync), and hand the writer the state it continues from.
 */
import { posix as path } from 'node:path';
import { WalError } from './errors.ts';
import { SEGMENT_HEADER_BYTES, encodeSegmentHeader, segmentName } from './format.ts';
import type { WalFile, WalFs } from './fs.ts';
import type { LogEntry, Recovered } from './log.ts';
import type { ResolvedOptions } from './options.ts';
import { SEGMENT_BYTES_LIMIT } from './options.ts';
import type { DirLock } from './dir-lock.ts';
import { writeFileDurably } from './durable-files.ts';
import type { Corruption, ScanResult, TornTail } from './scan.ts';
import { listLog, readWhole, scanLog } from './scan.ts';

/** Where the writer picks up after recovery. */
export interface WriterStart {
  /** Segments on disk, in LSN order; the last one is open for writing. */
  readonly segments: { readonly name: string; readonly firstLsn: number }[];
  readonly active: { readonly name: string; readonly firstLsn: number; readonly salt: number; readonly endOffset: number; readonly file: WalFile };
  readonly lastLsn: number;
  readonly checkpointLsn: number;
  /** This process's hold on the directory, when the file system can lock; the writer releases it on close. */
  readonly lock: DirLock | undefined;
}

export function corruptionError(dir: string, corruption: Corruption): WalError {
  return new WalError(corruption.code, `WAL corrupt in ${path.join(dir, corruption.segment)} at byte offset ${corruption.offset}: ${corruption.reason}. Refusing to open; run \`twopc wal verify ${dir}\`.`, {
    segment: corruption.segment,
    offset: corruption.offset,
    path: path.join(dir, corruption.segment),
  });
}

/**
 * Opens (creating when needed) the log in `dir`; see "Recovery" in docs/wal-format.md.
 * The directory is taken for this process (its LOCK file) before anything in it is read or
 * repaired: a second writer must not even cut a torn tail that the first is still writing.
 */
export async function recoverLog(dir: string, options: ResolvedOptions): Promise<{ recovered: Recovered; start: WriterStart }> {
  const { fs } = options;
  await fs.mkdir(dir);
  await fs.syncDir(path.dirname(dir));
  const lock = fs.lock ? await fs.lock(dir, options.owner !== undefined ? { owner: options.owner } : {}) : undefined;
  try {
    return await recoverLocked(dir, options, lock);
  } catch (error) {
    await lock?.release();
    throw error;
  }
}

async function recoverLocked(dir: string, options: ResolvedOptions, lock: DirLock | undefined): Promise<{ recovered: Recovered; start: WriterStart }> {
  const { fs } = options;

  const before = await listLog(fs, dir);
  for (const temp of before.temps) await fs.unlink(path.join(dir, temp));
  if (before.temps.length > 0) await fs.syncDir(dir);

  const entries: LogEntry[] = [];
  let segmentStart = 0;
  const scan: ScanResult = await scanLog(fs, dir, {
    onRecord: (lsn, type, payload) => entries.push({ lsn, type, payload }),
    onSegmentScanned: (_report, buffer) => {
      compactPayloads(entries, segmentStart, buffer.byteLength);
      segmentStart = entries.length;
    },
  });
  if (scan.corruption) throw corruptionError(dir, scan.corruption);
  const base = scan.checkpoint?.lsn ?? 0;

  let segments = scan.segments.map(({ name, firstLsn }) => ({ name, firstLsn }));
  let tornTail: Recovered['tornTail'];
  if (scan.torn) {
    tornTail = await repairTornTail(fs, dir, scan.torn);
    if (scan.torn.headerMissing) segments = segments.filter((segment) => segment.name !== scan.torn?.segment);
  }

  // Leftovers of a checkpoint that crashed before it could delete what it covered.
  for (const covered of scan.skipped) await fs.unlink(path.join(dir, covered.name));
  for (const old of scan.listing.checkpoints) if (scan.checkpoint && old.lsn < scan.checkpoint.lsn) await fs.unlink(path.join(dir, old.name));

  const lastLsn = scan.lastLsn;
  let active: WriterStart['active'];
  const lastSegment = segments[segments.length - 1];
  const lastReport = scan.segments.find((report) => report.name === lastSegment?.name);
  if (lastSegment && lastReport && lastReport.salt !== undefined) {
    const file = await fs.open(path.join(dir, lastSegment.name), 'readwrite');
    // What the scan read may have come from the page cache of a process that died before
    // syncing it. Sync it now, before anyone acts on the recovered records.
    await file.sync();
    active = { name: lastSegment.name, firstLsn: lastSegment.firstLsn, salt: lastReport.salt, endOffset: lastReport.endOffset, file };
  } else {
    // A new log's first segment is sparse (ftruncate, not zero-filled), so that opening a new
    // log costs no 64 MiB write; later segments are zero-filled in the background.
    const firstLsn = lastLsn + 1;
    const salt = options.newSalt();
    const tmp = path.join(dir, `first-${segmentName(firstLsn)}.tmp`);
    const file = await fs.open(tmp, 'create');
    await file.truncate(options.segmentBytes);
    await file.writev([encodeSegmentHeader(firstLsn, salt)], 0);
    await file.sync();
    await fs.rename(tmp, path.join(dir, segmentName(firstLsn)));
    segments = [...segments, { name: segmentName(firstLsn), firstLsn }];
    active = { name: segmentName(firstLsn), firstLsn, salt, endOffset: SEGMENT_HEADER_BYTES, file };
  }
  await fs.syncDir(dir);

  const recovered: Recovered = {
    ...(scan.checkpoint ? { checkpoint: { lsn: scan.checkpoint.lsn, data: scan.checkpoint.data } } : {}),
    entries,
    ...(tornTail ? { tornTail } : {}),
  };
  return { recovered, start: { segments, active, lastLsn, checkpointLsn: base, lock } };
}

/**
 * Recovered payloads are views into the buffer a segment was read into, which avoids an
 * allocation per record (recovery reads hundreds of thousands of records per second). When the
 * views of one segment, `entries[from..]`, would keep alive a buffer mostly made of other bytes
 * (a segment mostly covered by the checkpoint, or mostly empty), they are copied together into
 * one compact buffer instead.
 */
function compactPayloads(entries: LogEntry[], from: number, bufferBytes: number): void {
  let kept = 0;
  for (let i = from; i < entries.length; i++) kept += (entries[i] as LogEntry).payload.length;
  if (kept >= bufferBytes / 2) return;
  const compact = new Uint8Array(kept);
  let at = 0;
  for (let i = from; i < entries.length; i++) {
    const entry = entries[i] as LogEntry;
    compact.set(entry.payload, at);
    entries[i] = { lsn: entry.lsn, type: entry.type, payload: compact.subarray(at, at + entry.payload.length) };
    at += entry.payload.length;
  }
}

/** Keeps a copy of the cut bytes, then cuts them; each step durable before the next. */
async function repairTornTail(fs: WalFs, dir: string, torn: TornTail): Promise<NonNullable<Recovered['tornTail']>> {
  const segmentPath = path.join(dir, torn.segment);
  const names = new Set(await fs.readdir(dir));
  let copy = `${torn.segment}.${torn.offset}.broken`;
  for (let n = 1; names.has(copy) && n < 1000; n++) copy = `${torn.segment}.${torn.offset}.${n}.broken`;

  if (torn.headerMissing) {
    // The rename of a new segment reached the disk but its header did not: nothing in it was
    // ever acknowledged. Move the whole file aside (or drop it when it holds only zeros).
    if (torn.bytes > 0) await fs.rename(segmentPath, path.join(dir, copy));
    else await fs.unlink(segmentPath);
    await fs.syncDir(dir);
    return { segment: torn.segment, offset: 0, bytes: torn.bytes, ...(torn.bytes > 0 ? { copy } : {}) };
  }

  const bytes = await readWhole(fs, segmentPath, SEGMENT_BYTES_LIMIT);
  const fileBytes = bytes.length;
  if (torn.bytes > 0) await writeFileDurably(fs, dir, copy, [bytes.subarray(torn.offset, torn.offset + torn.bytes)]);
  const file = await fs.open(segmentPath, 'readwrite');
  try {
    await file.truncate(torn.offset);
    await file.sync();
    // Back to the old size (the new bytes read as zeros), so appends do not grow the file.
    await file.truncate(fileBytes);
    await file.sync();
  } finally {
    await file.close();
  }
  return { segment: torn.segment, offset: torn.offset, bytes: torn.bytes, ...(torn.bytes > 0 ? { copy } : {}) };
}
