/**
 * What PostgreSQL's errors mean to a twopc participant: the reason a NO vote
 * gives, whether an error is transient (the server restarting, a dropped
 * connection: worth retrying a COMMIT PREPARED), and the exit codes of a
 * participant that cannot start on its database.
 */
import { EXIT_CODES } from '../../shared/exit-codes.ts';

/** sysexits EX_USAGE-style: the command line or configuration is wrong (a malformed --pg-url). */
export const EXIT_INVALID_CONFIG = EXIT_CODES.config;
/** The database cannot be reached or cannot serve (refused, auth, no prepared transactions): shared/exit-codes.ts. */
export const EXIT_DATABASE_UNREACHABLE = EXIT_CODES.databaseUnreachable;

/** A participant that cannot start on its database: one line for the operator, and the exit code. */
export class PostgresStartError extends Error {
  constructor(
    message: string,
    readonly exitCode: typeof EXIT_INVALID_CONFIG | typeof EXIT_DATABASE_UNREACHABLE,
  ) {
    super(message);
    this.name = 'PostgresStartError';
  }
}

/** Thrown by a domain op to vote no with a reason of its own (e.g. "only 3 left"). */
export class VoteNo extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'VoteNo';
  }
}

/** A NO vote's reason is logged and sent to the coordinator and its client: keep it readable. */
const REASON_CHARS_MAX = 600;

interface PgErrorFields {
  readonly code?: unknown;
  readonly message?: unknown;
  readonly detail?: unknown;
  readonly where?: unknown;
  readonly constraint?: unknown;
}

const field = (e: unknown, k: keyof PgErrorFields): string | undefined => {
  const v = typeof e === 'object' && e !== null ? (e as PgErrorFields)[k] : undefined;
  return typeof v === 'string' && v !== '' ? v : undefined;
};

/** A five-character SQLSTATE from the server; undefined for a client-side error (a socket, a timeout). */
export function sqlState(e: unknown): string | undefined {
  const code = field(e, 'code');
  return code !== undefined && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

const bound = (s: string): string => (s.length > REASON_CHARS_MAX ? `${s.slice(0, REASON_CHARS_MAX - 1)}…` : s);

export interface ReasonContext {
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
}

/** The reason of the NO vote a failed branch gets: PostgreSQL's own message, with what it means here. */
export function voteNoReason(e: unknown, ctx: ReasonContext): string {
  if (e instanceof VoteNo) return bound(e.reason);
  const message = field(e, 'message') ?? String(e);
  const state = sqlState(e);
  const where = field(e, 'where');
  if (state === '55P03') {
    // lock_not_available: another transaction (perhaps a prepared, in-doubt branch) holds the row.
    return bound(`lock wait over lock_timeout (${ctx.lockTimeoutMs} ms): another transaction holds the lock; PostgreSQL: ${message}${where ? ` (${where})` : ''}`);
  }
  if (state === '57014') return bound(`statement over statement_timeout (${ctx.statementTimeoutMs} ms); PostgreSQL: ${message}`);
  if (state !== undefined) {
    const detail = field(e, 'detail');
    return bound(`PostgreSQL: ${message} (SQLSTATE ${state})${detail ? `; ${detail}` : ''}`);
  }
  return bound(`PostgreSQL unavailable: ${message}`);
}

/** Client-side error codes of a connection that went away or never came. */
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOENT', 'ETIMEDOUT', 'EHOSTUNREACH', 'EAI_AGAIN']);

/**
 * The server is restarting or the connection dropped: the statement may be
 * retried on a new connection. Class 08 (connection exception), 57P01-57P03
 * (shutdown, crash, cannot connect now), 53300 (too many connections), and the
 * driver's own connection errors.
 */
export function isTransient(e: unknown): boolean {
  const state = sqlState(e);
  if (state !== undefined) return state.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(state);
  const code = field(e, 'code');
  if (code !== undefined && TRANSIENT_NODE_CODES.has(code)) return true;
  const message = field(e, 'message') ?? '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection closed/i.test(message);
}
