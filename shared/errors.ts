/**
 * Errors with stable codes that callers match on, and the HTTP status each maps to.
 * Operating errors (bad input, unknown ids, conflicts) are TwopcErrors;
 * programmer errors are plain assertions and crash the process.
 */
export type ErrorCode =
  | 'bad_request' // malformed JSON, wrong types, unknown fields
  | 'payload_too_large'
  | 'request_timeout' // the request did not arrive within the server's bound (a slow client)
  | 'headers_too_large'
  | 'unauthorized'
  | 'not_found'
  | 'conflict' // e.g. enlisting in a transaction that is already deciding
  | 'unknown_participant'
  | 'not_chaos' // chaos endpoints without --chaos
  | 'unavailable' // recovering, shutting down, or a limit reached
  | 'not_leader' // an HA coordinator that does not lead its group (the message names the leader)
  | 'internal';

const statusOf: Record<ErrorCode, number> = {
  bad_request: 400,
  payload_too_large: 413,
  request_timeout: 408,
  headers_too_large: 431,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  unknown_participant: 400,
  not_chaos: 404,
  unavailable: 503,
  not_leader: 503,
  internal: 500,
};

export class TwopcError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TwopcError';
    this.status = statusOf[code];
  }
  toBody(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export const badRequest = (message: string): TwopcError => new TwopcError('bad_request', message);

/**
 * A configuration that cannot work (a malformed URL, two names for one participant), found
 * when a service starts: the CLI reports it in one line and exits with EXIT_CODES.config.
 */
export class ConfigError extends Error {
  readonly code = 'TWOPC_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
