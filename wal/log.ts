/**
 * The `Log` port: what the 2PC runtimes need from a write-ahead log.
 *
 * Two implementations honour it and pass one shared acceptance suite
 * (test/wal/log-port.suite.ts): the file WAL (wal/file-log.ts) and the
 * in-memory log with crash semantics (wal/memory-log.ts) that the simulator uses.
 *
 * Vocabulary: inside wal/ we say append / sync / flush. "Commit" is the
 * protocol's word and never appears here.
 */

/** Log sequence number: the first record is 1, each next record is exactly +1. */
export type Lsn = number;

/** One record as read back. `type` is a caller-chosen code in 1..255. */
export interface LogEntry {
  readonly lsn: Lsn;
  readonly type: number;
  readonly payload: Uint8Array;
}

export interface AppendOptions {
  /** Resolve only once an fdatasync (or the policy's equivalent) covers this record. */
  readonly durable?: boolean;
}

/** A snapshot of the caller's state that covers every record up to and including `lsn`. */
export interface Checkpoint {
  readonly lsn: Lsn;
  readonly data: Uint8Array;
}

/** What opening a log found on disk. */
export interface Recovered {
  /** The newest complete checkpoint, if any. */
  readonly checkpoint?: Checkpoint;
  /** Every record after the checkpoint's LSN (all records when there is no checkpoint), in LSN order. */
  readonly entries: readonly LogEntry[];
  /** Set when a torn tail was cut on open: where, and where the copy of the cut bytes was kept. */
  readonly tornTail?: { readonly segment: string; readonly offset: number; readonly bytes: number; readonly copy?: string };
}

export interface Log {
  /**
   * Appends one record and resolves with its LSN. With `durable`, resolves only
   * after a sync covers the record. Rejects with a WalError once the log is
   * poisoned (fail-stop), closed, or a limit is exceeded.
   */
  append(type: number, payload: Uint8Array, options?: AppendOptions): Promise<Lsn>;
  /** Makes every record appended so far durable. */
  sync(): Promise<void>;
  /**
   * Durably stores a checkpoint of state covering records up to `lsn`, then
   * drops segments that hold only records at or below it.
   */
  checkpoint(lsn: Lsn, data: Uint8Array): Promise<void>;
  /** The LSN of the last record appended (0 when the log is empty). */
  readonly lastLsn: Lsn;
  /** Flushes and closes. Further appends reject. */
  close(): Promise<void>;
}
