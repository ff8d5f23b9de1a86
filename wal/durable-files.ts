/**
 * The durable-file idioms the WAL relies on, written once: a file is whole before its name
 * appears (temp file + fsync + rename + directory fsync), and every name change is followed
 * by a directory fsync, because fsync of a file does not make its directory entry durable.
 */
import { posix as path } from 'node:path';
import type { WalFile, WalFs } from './fs.ts';

const ZERO_CHUNK_BYTES = 1024 * 1024;
/** Buffers handed to one writev when zero-filling; bounds each call to 16 MiB. */
const ZERO_CHUNKS_PER_WRITE = 16;
let zeroChunk: Buffer | undefined;

/** Writes zeros over [from, to) of `file`, in bounded writes. */
export async function zeroFill(file: WalFile, from: number, to: number): Promise<void> {
  zeroChunk ??= Buffer.alloc(ZERO_CHUNK_BYTES);
  let at = from;
  while (at < to) {
    const buffers: Buffer[] = [];
    let bytes = 0;
    while (at + bytes < to && buffers.length < ZERO_CHUNKS_PER_WRITE) {
      const len = Math.min(ZERO_CHUNK_BYTES, to - at - bytes);
      buffers.push(zeroChunk.subarray(0, len));
      bytes += len;
    }
    await file.writev(buffers, at);
    at += bytes;
  }
}

/** Replaces (or creates) `dir/name` with `buffers`, atomically and durably. */
export async function writeFileDurably(fs: WalFs, dir: string, name: string, buffers: readonly Uint8Array[]): Promise<void> {
  const tmp = path.join(dir, `${name}.tmp`);
  const file = await fs.open(tmp, 'create');
  try {
    await file.writev(buffers, 0);
    await file.sync();
  } finally {
    await file.close();
  }
  await fs.rename(tmp, path.join(dir, name));
  await fs.syncDir(dir);
}

export interface PreparedSegment {
  readonly path: string;
  readonly file: WalFile;
}

/**
 * Creates a zero-filled file of `bytes` under a temporary name, durably, so that a rollover
 * only has to write a header and rename it. Zero-filling (rather than a sparse file) means
 * later fdatasyncs need not allocate blocks; PostgreSQL does the same for its WAL.
 */
export async function prepareSegmentFile(fs: WalFs, dir: string, tmpName: string, bytes: number): Promise<PreparedSegment> {
  const file = await fs.open(path.join(dir, tmpName), 'create');
  try {
    await zeroFill(file, 0, bytes);
    await file.sync();
    await fs.syncDir(dir);
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
  return { path: path.join(dir, tmpName), file };
}
