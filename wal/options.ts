/**
 * Options of the file log, validated once at the edge so that the rest of the code can
 * trust them. Messages follow p-retry's form: "Expected `segmentBytes` to be ...".
 */
import { randomBytes } from 'node:crypto';
import { WalError } from './errors.ts';
import { FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES, align8, frameBytesFor } from './format.ts';
import type { WalFs } from './fs.ts';
import { nodeFs } from './fs.ts';

export type SyncPolicy = 'always' | 'group' | 'none';
export const SYNC_POLICIES: readonly SyncPolicy[] = ['always', 'group', 'none'];

export interface FileLogOptions {
  /** File system port; the real disk by default, `SimFs` in crash tests. */
  readonly fs?: WalFs;
  /** When durable appends resolve; see docs/wal-format.md. Default 'group'. */
  readonly syncPolicy?: SyncPolicy;
  /** Size of each segment file. Default 64 MiB, at least 4 KiB. */
  readonly segmentBytes?: number;
  /** Largest payload accepted. Default 1 MiB, or what fits in a segment if that is less. */
  readonly recordBytesMax?: number;
  /** Appends accepted but not yet resolved. Default 16384. */
  readonly pendingAppendsMax?: number;
  /** Bytes staged but not yet written. Default 64 MiB. */
  readonly pendingBytesMax?: number;
  /** Interval of the periodic flush under the 'none' policy. Default 1000, at most 60000. */
  readonly flushIntervalMs?: number;
  /** Source of segment salts, for deterministic runs; a random 32-bit salt per segment by default. */
  readonly random?: () => number;
  /** Who opens the log ("participant p1"): written in the directory's LOCK file and named when another process is refused. */
  readonly owner?: string;
  /**
   * Called after each fdatasync of a write batch, with how long it took, how many records the
   * batch held, and whether the sync held the event loop (`blocking`; false when it ran in libuv's
   * thread pool: see `blockingSyncMsMax`): for latency, batch-size and sync-path metrics. Must not
   * throw or block.
   */
  readonly onSync?: (syncMs: number, records: number, blocking: boolean) => void;
  /**
   * How the writer is started once something is appended: `setImmediate` by default, the end
   * of the event loop's turn, so the appends of every callback the turn runs (requests that
   * arrived together) share one batch and one fdatasync. The simulator passes `queueMicrotask`:
   * it settles each event with one `setImmediate`, after which a writer started the same way
   * would run, and its write would leak into the next event.
   */
  readonly startWriter?: (run: () => void) => void;
  /**
   * A batch's fdatasync blocks the event loop, where the file offers it (`WalFile.datasyncSync`),
   * while the running mean of blocking syncs stays at most this many ms: on a fast disk the
   * thread pool's round trip costs more CPU than the wait. Past it, syncs go to the thread pool
   * for a second (doubled while the disk stays slow), then one blocks again. The bound is on the
   * mean: a single slow sync holds the loop for as long as it takes. 0: always the thread pool.
   * The 'none' policy's periodic flush always goes to the thread pool. Default 10
   * (docs/wal-format.md, "Where fdatasync runs").
   */
  readonly blockingSyncMsMax?: number;
  /** The clock that times each fdatasync, in ms, monotonic: `performance.now` by default; tests pass their own. */
  readonly now?: () => number;
}

export interface ResolvedOptions {
  readonly fs: WalFs;
  readonly syncPolicy: SyncPolicy;
  readonly segmentBytes: number;
  readonly recordBytesMax: number;
  readonly pendingAppendsMax: number;
  readonly pendingBytesMax: number;
  readonly flushIntervalMs: number;
  readonly newSalt: () => number;
  readonly owner: string | undefined;
  readonly onSync: ((syncMs: number, records: number, blocking: boolean) => void) | undefined;
  readonly startWriter: (run: () => void) => void;
  readonly blockingSyncMsMax: number;
  readonly now: () => number;
}

export const SEGMENT_BYTES_DEFAULT = 64 * 1024 * 1024;
export const SEGMENT_BYTES_MIN = 4096;
/** Recovery reads a segment whole into memory, so its size is bounded. */
export const SEGMENT_BYTES_LIMIT = 1024 * 1024 * 1024;
export const RECORD_BYTES_MAX_DEFAULT = 1024 * 1024;
export const PENDING_APPENDS_MAX_DEFAULT = 16_384;
export const PENDING_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
export const FLUSH_INTERVAL_MS_DEFAULT = 1000;
export const FLUSH_INTERVAL_MS_LIMIT = 60_000;
export const BLOCKING_SYNC_MS_MAX_DEFAULT = 10;
/** The largest bound a caller may set on the running mean of blocking syncs (a second of a held loop). */
export const BLOCKING_SYNC_MS_LIMIT = 1000;

/** The largest payload whose frame fits in an empty segment of `segmentBytes`. */
export const recordBytesLimitFor = (segmentBytes: number): number => segmentBytes - SEGMENT_HEADER_BYTES - align8(FRAME_HEADER_BYTES);

const invalid = (message: string): WalError => new WalError('WAL_INVALID_OPTION', message);

function integerOption(options: FileLogOptions, name: keyof FileLogOptions, fallback: number, min: number, max: number): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalid(`Expected \`${name}\` to be a positive integer.`);
  }
  if (value < min || value > max) throw invalid(`Expected \`${name}\` to be between ${min} and ${max}, got ${value}.`);
  return value;
}

const KNOWN = new Set(['fs', 'syncPolicy', 'segmentBytes', 'recordBytesMax', 'pendingAppendsMax', 'pendingBytesMax', 'flushIntervalMs', 'random', 'owner', 'onSync', 'startWriter', 'blockingSyncMsMax', 'now']);

export function resolveOptions(options: FileLogOptions | undefined): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null) throw invalid('Expected `options` to be an object.');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw invalid(`Unknown option \`${key}\`; expected one of ${[...KNOWN].join(', ')}.`);
  }
  const syncPolicy = options.syncPolicy ?? 'group';
  if (!SYNC_POLICIES.includes(syncPolicy)) throw invalid(`Expected \`syncPolicy\` to be one of ${SYNC_POLICIES.map((p) => `'${p}'`).join(', ')}.`);
  const segmentBytes = integerOption(options, 'segmentBytes', SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MIN, SEGMENT_BYTES_LIMIT);
  if (segmentBytes % 8 !== 0) throw invalid('Expected `segmentBytes` to be a multiple of 8.');
  const recordLimit = recordBytesLimitFor(segmentBytes);
  const recordBytesMax = integerOption(options, 'recordBytesMax', Math.min(RECORD_BYTES_MAX_DEFAULT, recordLimit), 1, recordLimit);
  const pendingAppendsMax = integerOption(options, 'pendingAppendsMax', PENDING_APPENDS_MAX_DEFAULT, 1, 1 << 24);
  const pendingBytesMax = integerOption(options, 'pendingBytesMax', PENDING_BYTES_MAX_DEFAULT, 1, 1 << 30);
  if (pendingBytesMax < frameBytesFor(recordBytesMax)) {
    throw invalid(`Expected \`pendingBytesMax\` to hold at least one record of \`recordBytesMax\` (${frameBytesFor(recordBytesMax)} bytes).`);
  }
  const flushIntervalMs = integerOption(options, 'flushIntervalMs', FLUSH_INTERVAL_MS_DEFAULT, 1, FLUSH_INTERVAL_MS_LIMIT);
  const fs = options.fs ?? nodeFs;
  if (typeof fs !== 'object' || fs === null || typeof fs.open !== 'function') throw invalid('Expected `fs` to be a WalFs.');
  const random = options.random;
  if (random !== undefined && typeof random !== 'function') throw invalid('Expected `random` to be a function returning numbers in [0, 1).');
  const newSalt = random ? () => Math.floor(random() * 0x1_0000_0000) >>> 0 : () => randomBytes(4).readUInt32LE(0);
  const owner = options.owner;
  if (owner !== undefined && (typeof owner !== 'string' || owner.length > 200)) throw invalid('Expected `owner` to be a string of at most 200 characters.');
  const onSync = options.onSync;
  if (onSync !== undefined && typeof onSync !== 'function') throw invalid('Expected `onSync` to be a function.');
  const startWriter = options.startWriter ?? setImmediate;
  if (typeof startWriter !== 'function') throw invalid('Expected `startWriter` to be a function.');
  // Only a missing option takes the default: null is refused, not read as "off" or "default".
  const blockingSyncMsMax = options.blockingSyncMsMax === undefined ? BLOCKING_SYNC_MS_MAX_DEFAULT : options.blockingSyncMsMax;
  if (typeof blockingSyncMsMax !== 'number' || !(blockingSyncMsMax >= 0 && blockingSyncMsMax <= BLOCKING_SYNC_MS_LIMIT)) {
    throw invalid(`Expected \`blockingSyncMsMax\` to be a number of ms from 0 to ${BLOCKING_SYNC_MS_LIMIT}.`);
  }
  const now = options.now === undefined ? () => performance.now() : options.now;
  if (typeof now !== 'function') throw invalid('Expected `now` to be a function returning ms.');
  return { fs, syncPolicy, segmentBytes, recordBytesMax, pendingAppendsMax, pendingBytesMax, flushIntervalMs, newSalt, owner, onSync, startWriter, blockingSyncMsMax, now };
}
