import type { LockHolder } from './dir-lock.ts';

/**
 * Errors with stable codes that callers match on (`err.code === 'WAL_POISONED'`).
 * Operating errors are WalErrors; programmer errors are plain assertions.
 */
export type WalErrorCode =
  /** Mid-log corruption found on open, verify or inspect: see `segment` and `offset`. */
  | 'WAL_CORRUPT'
  /** A segment or checkpoint was written by a format version this code does not read. */
  | 'WAL_UNSUPPORTED_VERSION'
  /** An earlier write or fsync failed; nothing after it is acknowledged (fail-stop). */
  | 'WAL_POISONED'
  /** The log was closed. */
  | 'WAL_CLOSED'
  /** The in-memory log's simulated process died before this operation finished. */
  | 'WAL_CRASHED'
  /** A payload is larger than `recordBytesMax`. */
  | 'WAL_RECORD_TOO_LARGE'
  /** `pendingAppendsMax` or `pendingBytesMax` is reached: back off and retry. */
  | 'WAL_QUEUE_FULL'
  /** A bad argument: a type outside 1..255, a checkpoint LSN beyond the log, and so on. */
  | 'WAL_INVALID_ARGUMENT'
  /** A bad option passed to open. */
  | 'WAL_INVALID_OPTION'
  /** Another process holds the directory (its LOCK file and guard): see `holder`. */
  | 'WAL_LOCKED'
  /** This process's LOCK file was replaced or removed while it held the directory. */
  | 'WAL_LOCK_LOST';

export interface WalErrorDetails {
  readonly cause?: unknown;
  /** The segment file name (not the path) the error is about. */
  readonly segment?: string;
  /** The byte offset in `segment` the error is about. */
  readonly offset?: number;
  /** The full path of the file the error is about. */
  readonly path?: string;
  /** WAL_LOCKED: who holds the directory, when it said. */
  readonly holder?: LockHolder | undefined;
}

export class WalError extends Error {
  readonly code: WalErrorCode;
  readonly segment?: string;
  readonly offset?: number;
  readonly path?: string;
  readonly holder?: LockHolder;

  constructor(code: WalErrorCode, message: string, details: WalErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'WalError';
    this.code = code;
    if (details.segment !== undefined) this.segment = details.segment;
    if (details.offset !== undefined) this.offset = details.offset;
    if (details.path !== undefined) this.path = details.path;
    if (details.holder !== undefined) this.holder = details.holder;
  }
}

export const isWalError = (value: unknown, code?: WalErrorCode): value is WalError =>
  value instanceof WalError && (code === undefined || value.code === code);

/** Node reports I/O failures as Errors with a string `code` (EIO, ENOSPC); keep that visible in messages. */
export function describeIoError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
