/**
 * The file WAL: the `Log` port over segment files (format: docs/wal-format.md).
 *
 * One writer owns the files. `append` validates, assigns the LSN, decides which segment the
 * frame goes to and encodes it, CRC included, straight into a staging buffer ("run"), so the
 * writer only has to hand pre-built bytes to one pwritev per batch and then, as the sync
 * policy says, one fdatasync. The first I/O error poisons the log (fail-stop).
 */
import { posix as path } from 'node:path';
import { WalError, describeIoError } from './errors.ts';
import { SEGMENT_HEADER_BYTES, TYPE_MAX, TYPE_MIN, checkpointName, encodeCheckpoint, encodeFrame, encodeSegmentHeader, frameBytesFor, segmentName } from './format.ts';
import type { WalFile, WalFs } from './fs.ts';
import type { AppendOptions, Log, Lsn, Recovered } from './log.ts';
import type { FileLogOptions, ResolvedOptions, SyncPolicy } from './options.ts';
import { resolveOptions } from './options.ts';
import type { PreparedSegment } from './durable-files.ts';
import { prepareSegmentFile, writeFileDurably } from './durable-files.ts';
import { failStopFs } from './fail-stop-fs.ts';
import type { WriterStart } from './recovery.ts';
import { recoverLog } from './recovery.ts';
import { listLog } from './scan.ts';

/**
 * Staging buffers are this big (or a segment, if smaller, since a run never spans segments)
 * unless a frame needs more; a few are pooled for reuse.
 */
const RUN_BYTES_MAX = 256 * 1024;
const RUN_POOL_MAX = 4;
/**
 * Batches up to this size are written with a blocking pwrite: copying a few KiB into the page
 * cache takes microseconds, less than the thread-pool round trip of an async write, which
 * would sit on every durable append's critical path. Larger batches go async so the event
 * loop is never blocked for long.
 */
const SYNC_WRITE_BYTES_MAX = 64 * 1024;
/** Checkpoint files are read whole on open; keep them well inside what a read may hold. */
const CHECKPOINT_BYTES_MAX = 512 * 1024 * 1024;
const CHECKPOINTS_PENDING_MAX = 16;
/**
 * How long batch syncs go to the thread pool once blocking ones have grown slower than
 * `blockingSyncMsMax`: then one blocks again, to find out whether the disk is fast again. Each
 * look that finds it still slow doubles the wait, up to BLOCKING_SYNC_BACKOFF_MS_MAX; a look
 * that finds it fast starts over from here.
 */
export const BLOCKING_SYNC_BACKOFF_MS = 1000;
export const BLOCKING_SYNC_BACKOFF_MS_MAX = 64_000;
/** The running mean of blocking syncs weighs the newest 1/8: one slow sync among fast ones does not end blocking. */
const BLOCKING_SYNC_MEAN_WEIGHT = 8;

interface Segment {
  readonly name: string;
  readonly firstLsn: number;
  readonly salt: number;
  file: WalFile | undefined;
}

/** A staging buffer holding consecutive frames of one segment, starting at file offset `position`. */
interface Run {
  readonly segment: Segment;
  readonly position: number;
  readonly buf: Buffer;
  used: number;
  written: number;
}

interface Waiter {
  readonly lsn: number;
  readonly durable: boolean;
  readonly run: Run;
  /** End of this frame within `run.buf`. */
  readonly end: number;
  readonly bytes: number;
  readonly resolve: (lsn: Lsn) => void;
  readonly reject: (error: Error) => void;
}

interface SyncWaiter {
  readonly lsn: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** Counters for metrics and benchmarks; they only grow. */
export interface FileLogStats {
  /** Appends accepted. */
  appends: number;
  /** Batches the writer wrote (one pwrite or pwritev per segment touched). */
  batches: number;
  /** fdatasync calls on segments (batches, explicit syncs and rollover seals). */
  datasyncs: number;
  rollovers: number;
  /** Rollovers that found the next segment not yet prepared and had to wait for it. */
  rolloverWaits: number;
}

export interface OpenedFileLog {
  readonly log: FileLog;
  readonly recovered: Recovered;
}

/** Opens the log in `dir` (creating it when needed) after recovering it. */
export async function openFileLog(dir: string, options?: FileLogOptions): Promise<OpenedFileLog> {
  if (typeof dir !== 'string' || dir.length === 0) throw new WalError('WAL_INVALID_OPTION', 'Expected `dir` to be a non-empty string.');
  const resolved = resolveOptions(options);
  const { recovered, start } = await recoverLog(dir, resolved);
  return { log: new FileLog(dir, resolved, start), recovered };
}

export class FileLog implements Log {
  readonly dir: string;
  readonly syncPolicy: SyncPolicy;
  private readonly fs: WalFs;
  private readonly options: ResolvedOptions;
  private readonly runBytes: number;

  /** Segments on disk in LSN order; the last one is active (open for writing). */
  private readonly segments: Segment[];
  /** Segments that appends have started to fill but the writer has not reached yet. */
  private readonly planned: Segment[] = [];
  /** Where the next appended frame goes: the newest planned segment, else the active one. */
  private tailSegment: Segment;
  private tailOffset: number;

  private lastLsnValue: number;
  /** Highest LSN the writer has handed to the file system. */
  private writtenLsn: number;
  /** Highest LSN an fdatasync has covered. */
  private durableLsn: number;
  /** The newest checkpoint asked for, done or not: a later one may not go below it. */
  private checkpointLsnRequested: number;
  private checkpointsPending = 0;
  private readonly counters: FileLogStats = { appends: 0, batches: 0, datasyncs: 0, rollovers: 0, rolloverWaits: 0 };
  /** True once `preparing` has finished: a rollover now would not wait. */
  private prepared = false;

  private runs: Run[] = [];
  private readonly runPool: Buffer[] = [];
  private waiters: Waiter[] = [];
  private waitersHead = 0;
  private syncWaiters: SyncWaiter[] = [];
  private pendingBytes = 0;

  /** The running mean of blocking fdatasyncs' times, in ms; undefined before the first (or the first since a back-off). */
  private blockingSyncMeanMs: number | undefined;
  /** Until when, on the log's clock, batch syncs go to the thread pool: blocking ones grew slower than the bound. */
  private threadPoolUntilMs = Number.NEGATIVE_INFINITY;
  /** The last back-off's length, doubled by each look that finds the disk still slow. */
  private backOffMs = BLOCKING_SYNC_BACKOFF_MS;

  private writerRunning = false;
  private writerScheduled = false;
  private preparing: Promise<PreparedSegment> | undefined;
  private prepareSeq = 0;
  private readonly instanceTag: string;
  private checkpointChain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private poisonError: WalError | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly lock: WriterStart['lock'];

  /** @internal Use `openFileLog`, which recovers the directory first. */
  constructor(dir: string, options: ResolvedOptions, start: WriterStart) {
    this.dir = dir;
    this.options = options;
    // Every I/O call goes through a wrapper that poisons the log in the reaction to the first
    // error and refuses all I/O after it.
    const fs = failStopFs(options.fs, (error) => this.poison(error));
    this.fs = fs;
    this.syncPolicy = options.syncPolicy;
    this.runBytes = Math.min(RUN_BYTES_MAX, options.segmentBytes);
    this.instanceTag = options.newSalt().toString(16).padStart(8, '0');
    this.segments = start.segments.map((segment) => ({ ...segment, salt: 0, file: undefined }));
    const active: Segment = { name: start.active.name, firstLsn: start.active.firstLsn, salt: start.active.salt, file: fs.wrap(start.active.file) };
    this.segments[this.segments.length - 1] = active;
    this.tailSegment = active;
    this.tailOffset = start.active.endOffset;
    this.lastLsnValue = this.writtenLsn = this.durableLsn = start.lastLsn;
    this.checkpointLsnRequested = start.checkpointLsn;
    this.lock = start.lock;
    // Losing the directory to another process is as final as a failed write: stop at once.
    this.lock?.onLost((error) => this.poison(error));
    if (this.syncPolicy === 'none') {
      this.timer = setInterval(() => this.periodicFlush(), options.flushIntervalMs);
      this.timer.unref();
    }
    this.maybePrepare();
  }

  get lastLsn(): Lsn {
    return this.lastLsnValue;
  }

  get stats(): Readonly<FileLogStats> {
    return { ...this.counters };
  }

  /** True once an I/O error has poisoned the log; every later operation rejects. */
  get poisoned(): boolean {
    return this.poisonError !== undefined;
  }

  // ------------------------------------------------------------ Log

  append(type: number, payload: Uint8Array, options?: AppendOptions): Promise<Lsn> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    if (!Number.isInteger(type) || type < TYPE_MIN || type > TYPE_MAX) {
      return Promise.reject(new WalError('WAL_INVALID_ARGUMENT', `Expected \`type\` to be an integer in ${TYPE_MIN}..${TYPE_MAX}, got ${String(type)}.`));
    }
    if (!(payload instanceof Uint8Array)) return Promise.reject(new WalError('WAL_INVALID_ARGUMENT', 'Expected `payload` to be a Uint8Array.'));
    if (payload.length > this.options.recordBytesMax) {
      return Promise.reject(new WalError('WAL_RECORD_TOO_LARGE', `Record of ${payload.length} bytes is larger than \`recordBytesMax\` (${this.options.recordBytesMax}).`));
    }
    const frameBytes = frameBytesFor(payload.length);
    const pendingCount = this.waiters.length - this.waitersHead;
    if (pendingCount >= this.options.pendingAppendsMax || this.pendingBytes + frameBytes > this.options.pendingBytesMax) {
      return Promise.reject(
        new WalError('WAL_QUEUE_FULL', `Too many appends in flight (${pendingCount} appends, ${this.pendingBytes} bytes; limits \`pendingAppendsMax\` ${this.options.pendingAppendsMax}, \`pendingBytesMax\` ${this.options.pendingBytesMax}).`),
      );
    }
    const lsn = this.lastLsnValue + 1;
    if (this.tailOffset + frameBytes > this.options.segmentBytes) this.planSegment(lsn);
    this.lastLsnValue = lsn;
    const run = this.runFor(frameBytes);
    encodeFrame(run.buf, run.used, run.segment.salt, lsn, type, payload);
    run.used += frameBytes;
    this.tailOffset += frameBytes;
    this.pendingBytes += frameBytes;
    this.counters.appends++;
    const durable = options?.durable === true;
    const end = run.used;
    return new Promise<Lsn>((resolve, reject) => {
      this.waiters.push({ lsn, durable, run, end, bytes: frameBytes, resolve, reject });
      this.kick();
    });
  }

  sync(): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    return this.syncThrough(this.lastLsnValue);
  }

  checkpoint(lsn: Lsn, data: Uint8Array): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    if (!Number.isSafeInteger(lsn) || lsn < 1 || lsn > this.lastLsnValue) {
      return Promise.reject(new WalError('WAL_INVALID_ARGUMENT', `Expected checkpoint \`lsn\` to be an integer in 1..${this.lastLsnValue} (the last LSN), got ${String(lsn)}.`));
    }
    if (lsn < this.checkpointLsnRequested) {
      return Promise.reject(new WalError('WAL_INVALID_ARGUMENT', `Checkpoint LSN ${lsn} is older than the checkpoint at LSN ${this.checkpointLsnRequested}.`));
    }
    if (!(data instanceof Uint8Array)) return Promise.reject(new WalError('WAL_INVALID_ARGUMENT', 'Expected checkpoint `data` to be a Uint8Array.'));
    if (data.length > CHECKPOINT_BYTES_MAX) {
      return Promise.reject(new WalError('WAL_RECORD_TOO_LARGE', `Checkpoint of ${data.length} bytes is larger than the ${CHECKPOINT_BYTES_MAX} bytes a checkpoint may have.`));
    }
    if (this.checkpointsPending >= CHECKPOINTS_PENDING_MAX) {
      return Promise.reject(new WalError('WAL_QUEUE_FULL', `Too many checkpoints in flight (${this.checkpointsPending}); await the earlier ones.`));
    }
    this.checkpointLsnRequested = lsn;
    this.checkpointsPending++;
    // Checkpoints run one at a time, in call order.
    const run = this.checkpointChain.then(() => this.writeCheckpoint(lsn, data)).finally(() => this.checkpointsPending--);
    this.checkpointChain = run.catch(() => undefined);
    return run;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ------------------------------------------------------------ appending

  private refusal(): WalError | undefined {
    if (this.poisonError) return this.poisonError;
    if (this.closed) return new WalError('WAL_CLOSED', `The log in ${this.dir} is closed.`);
    return undefined;
  }

  /** Starts filling a new segment with the record at `firstLsn`; the writer creates it on disk when it gets there. */
  private planSegment(firstLsn: number): void {
    const segment: Segment = { name: segmentName(firstLsn), firstLsn, salt: this.options.newSalt(), file: undefined };
    this.planned.push(segment);
    this.tailSegment = segment;
    this.tailOffset = SEGMENT_HEADER_BYTES;
    this.maybePrepare();
  }

  private runFor(frameBytes: number): Run {
    const last = this.runs[this.runs.length - 1];
    if (last && last.segment === this.tailSegment && last.position + last.used === this.tailOffset && last.used + frameBytes <= last.buf.length) return last;
    const buf = frameBytes <= this.runBytes ? (this.runPool.pop() ?? Buffer.allocUnsafeSlow(this.runBytes)) : Buffer.allocUnsafeSlow(frameBytes);
    const run: Run = { segment: this.tailSegment, position: this.tailOffset, buf, used: 0, written: 0 };
    this.runs.push(run);
    return run;
  }

  private syncThrough(lsn: number): Promise<void> {
    if (lsn <= this.durableLsn) return Promise.resolve();
    if (this.syncWaiters.length >= this.options.pendingAppendsMax) {
      return Promise.reject(new WalError('WAL_QUEUE_FULL', `Too many syncs in flight (${this.syncWaiters.length}; limit \`pendingAppendsMax\`).`));
    }
    return new Promise<void>((resolve, reject) => {
      this.syncWaiters.push({ lsn, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.writerRunning || this.writerScheduled || this.poisonError) return;
    this.writerScheduled = true;
    // At the end of the event loop's turn by default (`startWriter`): appends made by every callback
    // the turn ran (requests that arrived together, answer lines read together) share one batch
    // and one fdatasync. Kicked from a microtask, the first callback's appends went alone.
    this.options.startWriter(() => {
      this.writerScheduled = false;
      void this.runWriter();
    });
  }

  private hasWork(): boolean {
    return this.waiters.length > this.waitersHead || this.syncWaiters.some((waiter) => waiter.lsn > this.durableLsn);
  }

  /** The single writer. Never rejects: an error poisons the log instead. */
  private async runWriter(): Promise<void> {
    if (this.writerRunning) return;
    this.writerRunning = true;
    try {
      // Bounded by the queue: each turn removes at least one waiter or satisfies every sync waiter.
      while (!this.poisonError && this.hasWork()) await this.writeBatch();
    } catch (error) {
      this.poison(error);
    } finally {
      this.writerRunning = false;
    }
    if (this.hasWork()) this.kick();
  }

  private async writeBatch(): Promise<void> {
    const pending = this.waiters.length - this.waitersHead;
    let count = pending;
    if (this.syncPolicy === 'always') {
      // One fdatasync per durable append: the batch ends at the first durable record.
      for (let i = 0; i < pending; i++) {
        if ((this.waiters[this.waitersHead + i] as Waiter).durable) {
          count = i + 1;
          break;
        }
      }
    }
    const last = count > 0 ? (this.waiters[this.waitersHead + count - 1] as Waiter) : undefined;
    let needSync = false;
    if (last) {
      this.counters.batches++;
      await this.writeThrough(last);
      if (this.poisonError) return;
      this.writtenLsn = last.lsn;
      if (this.syncPolicy !== 'none') {
        for (let i = 0; i < count && !needSync; i++) needSync = (this.waiters[this.waitersHead + i] as Waiter).durable;
      }
    }
    if (!needSync) needSync = this.syncWaiters.some((waiter) => waiter.lsn <= this.writtenLsn && waiter.lsn > this.durableLsn);
    if (needSync) {
      this.counters.datasyncs++;
      const sync = await this.syncActive();
      if (this.poisonError) return;
      this.durableLsn = this.writtenLsn;
      this.options.onSync?.(sync.ms, count, sync.blocked);
    }
    // Resolve only now: after the write (and the sync when one was due).
    for (let i = 0; i < count; i++) {
      const waiter = this.waiters[this.waitersHead + i] as Waiter;
      this.pendingBytes -= waiter.bytes;
      waiter.resolve(waiter.lsn);
    }
    this.waitersHead += count;
    if (this.waitersHead === this.waiters.length) {
      this.waiters = [];
      this.waitersHead = 0;
    } else if (this.waitersHead > 1024) {
      this.waiters = this.waiters.slice(this.waitersHead);
      this.waitersHead = 0;
    }
    if (this.syncWaiters.length > 0) {
      const still: SyncWaiter[] = [];
      for (const waiter of this.syncWaiters) {
        if (waiter.lsn <= this.durableLsn) waiter.resolve();
        else still.push(waiter);
      }
      this.syncWaiters = still;
    }
    this.maybePrepare();
  }

  /** Writes every staged byte up to and including `last`'s frame, rolling over segments on the way. */
  private async writeThrough(last: Waiter): Promise<void> {
    let buffers: Buffer[] = [];
    let position = 0;
    let target: Segment | undefined;
    let done = 0;
    for (const run of this.runs) {
      const end = run === last.run ? last.end : run.used;
      if (end > run.written) {
        if (run.segment !== target) {
          if (target && buffers.length > 0) await this.write(this.fileOf(target), buffers, position);
          buffers = [];
          if (run.segment !== this.activeSegment()) await this.rollTo(run.segment);
          if (this.poisonError) return;
          target = run.segment;
          position = run.position + run.written;
        }
        buffers.push(run.buf.subarray(run.written, end));
      }
      done++;
      if (run === last.run) break;
    }
    if (target && buffers.length > 0) await this.write(this.fileOf(target), buffers, position);
    // Mark what was written; retire runs that no append can reach any more.
    for (let i = 0; i < done; i++) {
      const run = this.runs[i] as Run;
      run.written = run === last.run ? last.end : run.used;
    }
    let retired = 0;
    while (retired < this.runs.length - 1) {
      const run = this.runs[retired] as Run;
      if (run.written < run.used) break;
      if (run.buf.length === this.runBytes && this.runPool.length < RUN_POOL_MAX) this.runPool.push(run.buf);
      retired++;
    }
    if (retired > 0) this.runs = this.runs.slice(retired);
  }

  private async write(file: WalFile, buffers: readonly Buffer[], position: number): Promise<void> {
    let bytes = 0;
    for (const buffer of buffers) bytes += buffer.length;
    if (file.writevSync && bytes <= SYNC_WRITE_BYTES_MAX) file.writevSync(buffers, position);
    else await file.writev(buffers, position);
  }

  private activeSegment(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  private activeFile(): WalFile {
    return this.fileOf(this.activeSegment());
  }

  /**
   * One fdatasync of the active segment for a batch; returns how long it took and whether it held
   * the event loop (`blocked`), for the `onSync` observer. It blocks the event
   * loop, saving the thread pool's round trip, unless blocking syncs have lately been slow: when
   * their running mean passes `blockingSyncMsMax`, syncs go to the thread pool for a while
   * (BLOCKING_SYNC_BACKOFF_MS, doubled for each look that finds the disk still slow), then one
   * blocks again to look (docs/wal-format.md, "Where fdatasync runs"). A slow sync is known only
   * once it is over, so the loop is held for it. Only a blocking sync is timed for the rule: a
   * thread-pool sync's time as seen here includes the wait for a busy loop, which under load is
   * most of it. The 'none' policy's periodic flush (up to a second of writes) never blocks.
   * Nothing else runs in the process during a blocking sync, which is one of the interleavings
   * the thread pool allows, so every ordering the log promises holds either way.
   */
  private async syncActive(): Promise<{ readonly ms: number; readonly blocked: boolean }> {
    const file = this.activeFile();
    const max = this.options.blockingSyncMsMax;
    const started = this.options.now();
    // Written so that a clock giving NaN never blocks: NaN is not at or past any time.
    if (file.datasyncSync === undefined || max === 0 || this.syncPolicy === 'none' || !(started >= this.threadPoolUntilMs)) {
      await file.datasync();
      return { ms: this.options.now() - started, blocked: false };
    }
    file.datasyncSync();
    const took = this.options.now() - started;
    const looking = this.blockingSyncMeanMs === undefined && this.threadPoolUntilMs > Number.NEGATIVE_INFINITY;
    const mean = this.blockingSyncMeanMs === undefined ? took : this.blockingSyncMeanMs + (took - this.blockingSyncMeanMs) / BLOCKING_SYNC_MEAN_WEIGHT;
    // Written so that a clock giving NaN counts as slow: the log backs off rather than block on.
    if (!(mean <= max)) {
      this.backOffMs = looking ? Math.min(this.backOffMs * 2, BLOCKING_SYNC_BACKOFF_MS_MAX) : BLOCKING_SYNC_BACKOFF_MS;
      this.threadPoolUntilMs = started + took + this.backOffMs;
      this.blockingSyncMeanMs = undefined;
    } else {
      this.blockingSyncMeanMs = mean;
    }
    return { ms: took, blocked: true };
  }

  private fileOf(segment: Segment): WalFile {
    if (!segment.file) throw new Error(`assertion: segment ${segment.name} is not open`);
    return segment.file;
  }

  /**
   * Seals the active segment and starts `next` (see "Rollover" in docs/wal-format.md): the old
   * segment is made wholly durable first, so that only the last segment can ever hold a torn
   * tail, and the new name is durable before any frame in it can be acknowledged.
   */
  private async rollTo(next: Segment): Promise<void> {
    if (this.planned[0] !== next) throw new Error(`assertion: rollover to ${next.name} out of order`);
    const previous = this.activeSegment();
    this.counters.rollovers++;
    this.counters.datasyncs++;
    await this.fileOf(previous).datasync();
    this.durableLsn = this.writtenLsn;
    await this.fileOf(previous).close();
    previous.file = undefined;
    if (!this.preparing || !this.prepared) this.counters.rolloverWaits++;
    const prepared = await this.takePrepared();
    if (this.poisonError) {
      await prepared.file.close().catch(() => undefined);
      return;
    }
    next.file = prepared.file;
    await prepared.file.writev([encodeSegmentHeader(next.firstLsn, next.salt)], 0);
    await this.fs.rename(prepared.path, path.join(this.dir, next.name));
    await this.fs.syncDir(this.dir);
    this.planned.shift();
    this.segments.push(next);
    this.maybePrepare();
  }

  /**
   * Prepares the next segment file in the background once the active segment is half full
   * (or already overflowing into planned ones), so a rollover finds it ready.
   */
  private maybePrepare(): void {
    if (this.preparing || this.poisonError) return;
    // A closed log prepares no spare, but appends accepted before the close may still need
    // segments planned for them: without one the rollover would fail and poison the log.
    if (this.closed && this.planned.length === 0) return;
    const activeEnd = this.planned.length > 0 ? Infinity : this.tailOffset;
    if (activeEnd < this.options.segmentBytes / 2) return;
    // The instance tag keeps the names of two instances apart (a dying process's background
    // preparation must never collide with its successor's).
    const tmpName = `prepared-${this.instanceTag}-${this.prepareSeq++}.wal.tmp`;
    this.prepared = false;
    const preparing = prepareSegmentFile(this.fs, this.dir, tmpName, this.options.segmentBytes).then((segment) => {
      this.prepared = true;
      return segment;
    });
    this.preparing = preparing;
    // A failure here is an I/O error like any other: fail-stop at once, not at the rollover.
    preparing.catch((error: unknown) => this.poison(error));
  }

  private async takePrepared(): Promise<PreparedSegment> {
    if (!this.preparing) this.maybePrepare();
    const preparing = this.preparing;
    if (!preparing) throw this.poisonError ?? new Error('assertion: no segment being prepared');
    this.preparing = undefined;
    this.prepared = false;
    return preparing;
  }

  private periodicFlush(): void {
    if (this.poisonError || this.closed || this.lastLsnValue <= this.durableLsn) return;
    // A failure poisons the log and is reported to every waiter; nothing more to do here.
    this.syncThrough(this.lastLsnValue).catch(() => undefined);
  }

  // ------------------------------------------------------------ checkpoints

  private async writeCheckpoint(lsn: number, data: Uint8Array): Promise<void> {
    const refused = this.poisonError;
    if (refused) throw refused;
    await this.syncThrough(lsn);
    try {
      await writeFileDurably(this.fs, this.dir, checkpointName(lsn), [encodeCheckpoint(lsn, data)]);
      // Only now that the checkpoint is durable may what it covers go, oldest first, so a
      // crash part-way leaves a log that still starts right after some checkpoint.
      let removed = 0;
      for (const old of (await listLog(this.fs, this.dir)).checkpoints) {
        if (old.lsn < lsn) {
          await this.fs.unlink(path.join(this.dir, old.name));
          removed++;
        }
      }
      while (this.segments.length > 1 && (this.segments[1] as Segment).firstLsn - 1 <= lsn) {
        const covered = this.segments.shift() as Segment;
        await this.fs.unlink(path.join(this.dir, covered.name));
        removed++;
      }
      if (removed > 0) await this.fs.syncDir(this.dir);
    } catch (error) {
      this.poison(error);
      throw this.poisonError ?? error;
    }
  }

  // ------------------------------------------------------------ failure and shutdown

  private poison(cause: unknown): void {
    if (this.poisonError) return;
    this.poisonError = new WalError(
      'WAL_POISONED',
      `The log in ${this.dir} is poisoned by an I/O error (${describeIoError(cause)}); nothing after it is acknowledged and fsync is not retried. Restart to recover.`,
      { cause },
    );
    if (this.timer) clearInterval(this.timer);
    const error = this.poisonError;
    for (let i = this.waitersHead; i < this.waiters.length; i++) (this.waiters[i] as Waiter).reject(error);
    this.waiters = [];
    this.waitersHead = 0;
    for (const waiter of this.syncWaiters) waiter.reject(error);
    this.syncWaiters = [];
    this.runs = [];
    this.pendingBytes = 0;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    let failure: unknown;
    if (!this.poisonError) {
      try {
        await this.syncThrough(this.lastLsnValue);
      } catch (error) {
        failure = error;
      }
    }
    await this.checkpointChain;
    const preparing = this.preparing;
    this.preparing = undefined;
    if (preparing) {
      // Tidy, not essential: a *.tmp file left behind is deleted by the next open.
      await preparing
        .then(async (prepared) => {
          await prepared.file.close();
          if (!this.poisonError) await this.fs.unlink(prepared.path);
        })
        .catch(() => undefined);
    }
    for (const segment of this.segments) {
      const file = segment.file;
      segment.file = undefined;
      if (file) await file.close().catch(() => undefined);
    }
    // Last: only once every file is closed may another process take the directory.
    await this.lock?.release();
    if (failure) throw failure;
  }
}
