/**
 * The bounds every twopc HTTP server puts on its connections, in one place, so
 * the CLI flags, `listen` and docs/limits.md read the same numbers. This file
 * imports nothing heavy: the CLI reads its defaults for `--help`.
 *
 * Node's own defaults let one client hold a connection for minutes (a request
 * may take 300 s to arrive, its headers 60 s, and the check for both runs every
 * 30 s) and accept any number of connections. Ours are sized for JSON bodies of
 * at most 256 KiB from clients, coordinators and peers on a LAN.
 */
export interface ServerLimits {
  /**
   * How long a client may take to send a request's headers, counted from its
   * first byte, or from the connection's opening for a connection that sends
   * nothing. Headers are at most 16 KiB (Node's --max-http-header-size), one
   * packet for any live client, so a few seconds is generous.
   */
  readonly headersTimeoutMs: number;
  /**
   * How long a client may take to send a whole request, headers and body. A
   * body of the largest accepted size (256 KiB) arrives in milliseconds on a
   * LAN; 5 s still admits a link as slow as ~50 KB/s, and cuts off a client
   * that trickles bytes to hold the connection (a slow-loris). Time the server
   * spends answering (a commit waiting for votes) is not counted.
   */
  readonly requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept between requests. */
  readonly keepAliveTimeoutMs: number;
  /**
   * Open connections at once; beyond it Node closes each new connection as
   * soon as it is accepted. It must exceed the clients that wait on replies at
   * once (a coordinator keeps up to 1,000 unfinished transactions) plus the
   * peers' connection pools (64 sockets per peer), and stay far below the
   * process's file-descriptor limit.
   */
  readonly connectionsMax: number;
  /**
   * On shutdown (SIGTERM), how long requests already in flight may take to
   * finish once the listener is closed; then their connections are cut. It
   * covers a coordinator's commit that waits for votes and acks (2 s of reply
   * wait by default), and stays under the 10 s a container runtime gives
   * between SIGTERM and SIGKILL.
   */
  readonly drainMsMax: number;
}

export const SERVER_LIMITS_DEFAULT: ServerLimits = {
  headersTimeoutMs: 3_000,
  requestTimeoutMs: 5_000,
  keepAliveTimeoutMs: 5_000,
  connectionsMax: 2_048,
  drainMsMax: 5_000,
};

/**
 * How often Node checks open requests against the two timeouts above (its
 * default is 30 s). A request is cut off between its bound and its bound plus
 * this; the check walks the open connections, at most `connectionsMax` of them.
 */
export const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;

/** Every 503 tells the caller when to try again: limits reached and recovery both clear within about a second. */
export const RETRY_AFTER_S = 1;

/** At most one warning per this interval about connections dropped at the cap, so a flood cannot flood the log. */
export const DROP_WARNING_INTERVAL_MS = 10_000;
