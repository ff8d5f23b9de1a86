/**
 * What a coordinator call can fail with, as classes callers match on:
 *
 * - `CoordinatorError`: the coordinator answered with an error; `code` is its
 *   stable code (`not_found`, `conflict`, `unavailable`, ...), `status` the HTTP status.
 * - `TransportError` (shared/http/client.ts): no answer at all (`timeout`,
 *   `unreachable`, `reset`). The call may or may not have landed; for a commit,
 *   ask `outcome(txId)` before deciding anything.
 */
export { TransportError, type TransportErrorCode } from '../shared/http/client.ts';

/** The codes the coordinator sends (shared/errors.ts), and ours for an answer that is not the contract's. */
export type CoordinatorErrorCode =
  | 'bad_request'
  | 'payload_too_large'
  | 'request_timeout'
  | 'headers_too_large'
  | 'unauthorized'
  | 'not_found'
  | 'conflict'
  | 'unknown_participant'
  | 'unavailable'
  | 'internal'
  /** The answer was not `{"error":{"code","message"}}` or not the shape the call expects (a proxy's page, another service). */
  | 'unexpected_response';

/** Longest part of a server's message kept in an error, so a huge body cannot flood a caller's logs. */
const MESSAGE_CHARS_MAX = 500;

export class CoordinatorError extends Error {
  constructor(
    /** The server's error code; a code this client does not know is passed through as sent. */
    readonly code: CoordinatorErrorCode | (string & {}),
    /** The HTTP status of the answer. */
    readonly status: number,
    message: string,
    /** The transaction the call was about, when there was one. */
    readonly txId?: string,
  ) {
    super(message);
    this.name = 'CoordinatorError';
  }

  /** Whether asking again later may succeed: the coordinator was recovering, stopping or at a limit. */
  get retryable(): boolean {
    return this.status === 503;
  }
}

/** The error for an HTTP answer with an error status, read from the contract's error body when it has one. */
export function errorOfAnswer(status: number, data: unknown, txId: string | undefined): CoordinatorError {
  const error = (data as { error?: { code?: unknown; message?: unknown } } | null | undefined)?.error;
  if (typeof error?.code === 'string' && typeof error.message === 'string') {
    return new CoordinatorError(error.code, status, error.message.slice(0, MESSAGE_CHARS_MAX), txId);
  }
  return new CoordinatorError('unexpected_response', status, `HTTP ${status} without the contract's error body`, txId);
}
