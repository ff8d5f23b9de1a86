/**
 * How `twopc coordinator` and `twopc participant` end when they cannot start, defined once:
 * the numbers (sysexits.h's where one fits, so scripts and supervisors can tell a mistake in
 * the configuration from a disk that is full), and the mapping from an error to its number
 * and its one line. The README lists the numbers.
 *
 * Errors are told apart by class and code (ConfigError, WalError codes, errno codes), never by
 * their message text. An error this does not know is a bug, and keeps its stack trace.
 */
import { ConfigError } from './errors.ts';
import { WalError } from '../wal/errors.ts';

export const EXIT_CODES = {
  /** A WAL write or fsync failed while running (fail-stop); a restart recovers from the WAL. */
  failStop: 1,
  /** Invalid configuration: a flag, a URL, two names for one participant. EX_USAGE. */
  config: 64,
  /** The WAL is corrupt mid-log (or of a format version this code does not read). EX_DATAERR. */
  walCorrupt: 65,
  /** Cannot listen: the port is in use or not allowed. EX_UNAVAILABLE. */
  cannotListen: 69,
  /** The data directory cannot be used: read-only, a path component is a file, no permission. EX_CANTCREAT. */
  dataDirUnusable: 73,
  /** The disk is full (ENOSPC) or failed (EIO) while starting. EX_IOERR. */
  diskFull: 74,
  /** Another process holds the data directory. EX_TEMPFAIL: it may be free later. */
  dataDirLocked: 75,
  /** The resource's database cannot be reached or cannot serve (refused, auth, max_prepared_transactions 0). EX_NOHOST. */
  databaseUnreachable: 68,
} as const;

export interface StartContext {
  /** The --data directory, named when a file-system error does not carry a path of its own. */
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
}

export interface StartFailure {
  readonly exitCode: number;
  /** One line, no stack trace. */
  readonly message: string;
}

const NETWORK_SYSCALLS = new Set(['listen', 'bind', 'getaddrinfo']);
const CANNOT_RESOLVE = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'EAI_NONAME']);
const DISK_FAILED = new Set(['ENOSPC', 'EDQUOT', 'EIO']);
const DIR_UNUSABLE = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOTDIR', 'EISDIR', 'ENOENT', 'EEXIST', 'ELOOP', 'ENAMETOOLONG']);

type ErrnoError = Error & { code?: unknown; syscall?: unknown; path?: unknown };

/** The first error in `error`'s cause chain (at most a few deep) with a string errno code. */
function errnoOf(error: unknown): ErrnoError | undefined {
  let at: unknown = error;
  for (let depth = 0; depth < 4 && at instanceof Error; depth++) {
    const code = (at as ErrnoError).code;
    if (typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code)) return at as ErrnoError;
    at = at.cause;
  }
  return undefined;
}

const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ').trim();

/** The exit code and line for an error that stopped a start, or undefined for one that is a bug. */
export function explainStartFailure(error: unknown, where: StartContext): StartFailure | undefined {
  if (error instanceof ConfigError) return { exitCode: EXIT_CODES.config, message: `invalid configuration: ${oneLine(error.message)}` };
  // A resource that cannot start says which exit code it means (participant/resources/postgres-errors.ts).
  const own = (error as { exitCode?: unknown } | null)?.exitCode;
  if (error instanceof Error && typeof own === 'number' && (Object.values(EXIT_CODES) as number[]).includes(own)) return { exitCode: own, message: oneLine(error.message) };
  if (error instanceof WalError) {
    if (error.code === 'WAL_LOCKED') return { exitCode: EXIT_CODES.dataDirLocked, message: oneLine(error.message) };
    if (error.code === 'WAL_CORRUPT' || error.code === 'WAL_UNSUPPORTED_VERSION') return { exitCode: EXIT_CODES.walCorrupt, message: oneLine(error.message) };
    if (error.code === 'WAL_INVALID_OPTION') return { exitCode: EXIT_CODES.config, message: `invalid WAL configuration: ${oneLine(error.message)}` };
  }
  const cause = errnoOf(error);
  if (!cause) return undefined;
  const code = cause.code as string;
  const detail = oneLine(cause.message);
  if (typeof cause.syscall === 'string' && NETWORK_SYSCALLS.has(cause.syscall)) {
    if (CANNOT_RESOLVE.has(code)) return { exitCode: EXIT_CODES.config, message: `cannot listen on ${where.host}: it is not an address of this machine (${detail})` };
    if (code === 'EADDRINUSE') return { exitCode: EXIT_CODES.cannotListen, message: `cannot listen on ${where.host}:${where.port}: the port is in use (${detail})` };
    return { exitCode: EXIT_CODES.cannotListen, message: `cannot listen on ${where.host}:${where.port} (${detail})` };
  }
  // Node's message names the path for calls that take one; the data directory is named for all.
  if (DISK_FAILED.has(code)) {
    const what = code === 'EIO' ? 'the disk failed' : 'the disk is full';
    return { exitCode: EXIT_CODES.diskFull, message: `data directory ${where.dataDir}: ${what}: ${detail}` };
  }
  if (DIR_UNUSABLE.has(code)) return { exitCode: EXIT_CODES.dataDirUnusable, message: `data directory ${where.dataDir} is not usable: ${detail}` };
  return undefined;
}
