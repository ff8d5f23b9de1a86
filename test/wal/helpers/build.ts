/** Builds small logs on the simulated disk for the recovery tests. */
import { openFileLog } from '../../../wal/file-log.ts';
import { frameBytesFor } from '../../../wal/format.ts';
import { inspectWal } from '../../../wal/inspect.ts';
import type { WalFs } from '../../../wal/fs.ts';
import { scanLog } from '../../../wal/scan.ts';
import { SimFs } from '../../../wal/sim-fs.ts';
import { seededRandom } from './random.ts';

export const LOG_DIR = '/data/wal';

export interface Frame {
  readonly lsn: number;
  readonly segment: string;
  readonly offset: number;
  readonly frameBytes: number;
}

export interface BuiltLog {
  readonly fs: SimFs;
  /** Payloads by LSN - 1. */
  readonly payloads: readonly Uint8Array[];
  readonly frames: readonly Frame[];
  /** Segment names in order with their whole bytes as on disk. */
  readonly segments: readonly { readonly name: string; readonly bytes: Uint8Array; readonly endOffset: number }[];
}

/** A small JSON payload; `pad` extra characters vary the frame sizes. */
export const payloadFor = (i: number, pad = 0): Uint8Array => new TextEncoder().encode(JSON.stringify(pad > 0 ? { i, p: 'x'.repeat(pad) } : { i }));

/** Appends `count` records (sizes vary with `padOf`) to a fresh log on a SimFs and closes it. */
export async function buildLog(count: number, segmentBytes: number, padOf: (i: number) => number = (i) => (i % 5 === 0 ? 3 + (i % 11) : 0)): Promise<BuiltLog> {
  const random = seededRandom(count * 31 + segmentBytes);
  const fs = new SimFs(random);
  const { log } = await openFileLog(LOG_DIR, { fs, segmentBytes, random });
  const payloads: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const payload = payloadFor(i, padOf(i));
    payloads.push(payload);
    await log.append(1 + (i % 3), payload, { durable: i % 4 === 0 });
  }
  await log.close();
  const report = await inspectWal(LOG_DIR, { fs });
  const frames = report.entries.map((entry) => ({ lsn: entry.lsn, segment: entry.segment, offset: entry.offset, frameBytes: frameBytesFor(entry.bytes) }));
  const segments = report.segments.map((segment) => ({ name: segment.name, bytes: fs.readFile(`${LOG_DIR}/${segment.name}`) ?? new Uint8Array(), endOffset: segment.endOffset }));
  return { fs, payloads, frames, segments };
}

/** A fresh SimFs holding exactly `files` (name -> bytes) in the log directory, all durable. */
export async function diskWith(files: readonly { readonly name: string; readonly bytes: Uint8Array }[], seed = 1): Promise<SimFs> {
  const fs = new SimFs(seededRandom(seed));
  await fs.mkdir(LOG_DIR);
  for (const file of files) fs.setFile(`${LOG_DIR}/${file.name}`, file.bytes);
  return fs;
}

/** The last record a scan of the log finds (what the next open would return last), without opening it. */
export async function lastRecord(fs: WalFs, dir = LOG_DIR): Promise<{ lsn: number; payload: Uint8Array; records: number } | undefined> {
  let last: { lsn: number; payload: Uint8Array } | undefined;
  const scan = await scanLog(fs, dir, { onRecord: (lsn, _type, payload) => (last = { lsn, payload: new Uint8Array(payload) }) });
  if (scan.corruption || scan.torn) return undefined;
  return last ? { ...last, records: scan.records } : undefined;
}
