/**
 * The in-memory `Log` with crash semantics, for the deterministic protocol simulator and for
 * unit tests of the runtimes. It honours the same contract as the file WAL and passes the same
 * acceptance suite (test/wal/log-port.suite.ts).
 *
 * Durable data lives in a `MemoryLogStore`, the simulated disk, which outlives the `MemoryLog`
 * instances opened on it. `crash()` kills the open instance (its pending operations reject with
 * `WAL_CRASHED`) and keeps only what was synced, plus a random part of what was not: a prefix
 * of the unsynced records, sometimes with the next one torn (and cut again on open). There is
 * no clock and no Math.random: the store's `random` decides, so a seed replays a run exactly.
 */
import { WalError } from './errors.ts';
import { TYPE_MAX, TYPE_MIN } from './format.ts';
import type { AppendOptions, Checkpoint, Log, LogEntry, Lsn, Recovered } from './log.ts';
import { PENDING_APPENDS_MAX_DEFAULT, RECORD_BYTES_MAX_DEFAULT, SYNC_POLICIES } from './options.ts';
import type { SyncPolicy } from './options.ts';

export interface MemoryLogOptions {
  /** 'always' and 'group' both sync on the next microtask; 'none' resolves durable appends unsynced. Default 'group'. */
  readonly syncPolicy?: SyncPolicy;
  /** Largest payload accepted. Default 1 MiB. */
  readonly recordBytesMax?: number;
  /** Appends accepted but not yet resolved. Default 16384. */
  readonly pendingAppendsMax?: number;
}

/** The simulated disk under a MemoryLog: what survives a crash. */
export class MemoryLogStore {
  /** @internal Records after the checkpoint, in LSN order; the first `durableCount` are durable. */
  records: LogEntry[] = [];
  /** @internal */
  durableCount = 0;
  /** @internal */
  checkpoint: Checkpoint | undefined;
  /** @internal LSN of the record before `records[0]`. */
  baseLsn = 0;
  /** @internal Set by a crash that tore a record; reported (once) by the next open. */
  torn: { readonly offset: number; readonly bytes: number } | undefined;
  /** @internal The instance currently open on this store. */
  current: MemoryLog | undefined;
  /** Syncs still to fail, from the next one on (see `failSyncs`). */
  private syncFailures = 0;

  constructor(readonly random: () => number) {
    if (typeof random !== 'function') throw new WalError('WAL_INVALID_OPTION', 'Expected `random` to be a function returning numbers in [0, 1).');
  }

  /** Makes the next `count` syncs fail, as an fsync error would (the open log is then poisoned). */
  failSyncs(count = 1): void {
    this.syncFailures = count;
  }

  /** @internal Returns true when this sync is to fail. */
  takeSyncFailure(): boolean {
    if (this.syncFailures <= 0) return false;
    this.syncFailures--;
    return true;
  }

  /**
   * Simulates power loss (or kill -9 followed by the page cache being lost): the open log dies
   * and unsynced records are kept in part, lost, or torn.
   */
  crash(): void {
    this.current?.die();
    this.current = undefined;
    const unsynced = this.records.length - this.durableCount;
    if (unsynced > 0) {
      const kept = Math.min(unsynced, Math.floor(this.random() * (unsynced + 1)));
      const tornIndex = this.durableCount + kept;
      const torn = this.records[tornIndex];
      if (torn && this.random() < 0.5) this.torn = { offset: tornIndex, bytes: Math.max(1, Math.floor(this.random() * (torn.payload.length + 20))) };
      this.records = this.records.slice(0, tornIndex);
    }
    this.durableCount = this.records.length;
  }
}

interface Pending {
  readonly lsn: number;
  readonly resolve: (lsn: Lsn) => void;
  readonly reject: (error: Error) => void;
}

export class MemoryLog implements Log {
  private readonly syncPolicy: SyncPolicy;
  private readonly recordBytesMax: number;
  private readonly pendingAppendsMax: number;
  private pending: Pending[] = [];
  private syncScheduled = false;
  private poisonError: WalError | undefined;
  private dead = false;
  private closed = false;
  /** The newest checkpoint asked for, done or not: a later one may not go below it. */
  private checkpointLsnRequested = 0;

  private constructor(
    private readonly store: MemoryLogStore,
    options: MemoryLogOptions,
  ) {
    this.syncPolicy = options.syncPolicy ?? 'group';
    this.recordBytesMax = options.recordBytesMax ?? RECORD_BYTES_MAX_DEFAULT;
    this.pendingAppendsMax = options.pendingAppendsMax ?? PENDING_APPENDS_MAX_DEFAULT;
  }

  /** Opens a log on `store`, recovering what it holds (as a restarting process reads its disk). */
  static open(store: MemoryLogStore, options: MemoryLogOptions = {}): { log: MemoryLog; recovered: Recovered } {
    for (const [name, value] of [
      ['recordBytesMax', options.recordBytesMax],
      ['pendingAppendsMax', options.pendingAppendsMax],
    ] as const) {
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) throw new WalError('WAL_INVALID_OPTION', `Expected \`${name}\` to be a positive integer.`);
    }
    if (options.syncPolicy !== undefined && !SYNC_POLICIES.includes(options.syncPolicy)) {
      throw new WalError('WAL_INVALID_OPTION', `Expected \`syncPolicy\` to be one of ${SYNC_POLICIES.map((p) => `'${p}'`).join(', ')}.`);
    }
    store.current?.die();
    const log = new MemoryLog(store, options);
    store.current = log;
    // Whatever recovery reads is on "disk" from now on, as the file log syncs on open.
    store.durableCount = store.records.length;
    const torn = store.torn;
    store.torn = undefined;
    const recovered: Recovered = {
      ...(store.checkpoint ? { checkpoint: store.checkpoint } : {}),
      entries: store.records.slice(),
      ...(torn ? { tornTail: { segment: 'memory', offset: torn.offset, bytes: torn.bytes } } : {}),
    };
    return { log, recovered };
  }

  get lastLsn(): Lsn {
    return this.store.baseLsn + this.store.records.length;
  }

  get poisoned(): boolean {
    return this.poisonError !== undefined;
  }

  /** Crashes the store under this log; see `MemoryLogStore.crash`. */
  crash(): void {
    if (this.store.current === this) this.store.crash();
    else this.die();
  }

  append(type: number, payload: Uint8Array, options?: AppendOptions): Promise<Lsn> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    if (!Number.isInteger(type) || type < TYPE_MIN || type > TYPE_MAX) {
      return Promise.reject(new WalError('WAL_INVALID_ARGUMENT', `Expected \`type\` to be an integer in ${TYPE_MIN}..${TYPE_MAX}, got ${String(type)}.`));
    }
    if (!(payload instanceof Uint8Array)) return Promise.reject(new WalError('WAL_INVALID_ARGUMENT', 'Expected `payload` to be a Uint8Array.'));
    if (payload.length > this.recordBytesMax) {
      return Promise.reject(new WalError('WAL_RECORD_TOO_LARGE', `Record of ${payload.length} bytes is larger than \`recordBytesMax\` (${this.recordBytesMax}).`));
    }
    if (this.pending.length >= this.pendingAppendsMax) {
      return Promise.reject(new WalError('WAL_QUEUE_FULL', `Too many appends in flight (${this.pending.length}; limit \`pendingAppendsMax\` ${this.pendingAppendsMax}).`));
    }
    const lsn = this.lastLsn + 1;
    // A copy, and not `.slice()`, which on a Buffer is a view the caller may reuse.
    this.store.records.push({ lsn, type, payload: new Uint8Array(payload) });
    const durable = options?.durable === true && this.syncPolicy !== 'none';
    if (!durable) return Promise.resolve(lsn);
    return new Promise<Lsn>((resolve, reject) => {
      this.pending.push({ lsn, resolve, reject });
      this.scheduleSync();
    });
  }

  sync(): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    if (this.pending.length >= this.pendingAppendsMax) {
      return Promise.reject(new WalError('WAL_QUEUE_FULL', `Too many appends and syncs in flight (${this.pending.length}; limit \`pendingAppendsMax\` ${this.pendingAppendsMax}).`));
    }
    const target = this.lastLsn;
    return new Promise<void>((resolve, reject) => {
      // Queue behind the appends so a sync resolves in order with them.
      this.pending.push({ lsn: target, resolve: () => resolve(), reject });
      this.scheduleSync();
    });
  }

  async checkpoint(lsn: Lsn, data: Uint8Array): Promise<void> {
    const refused = this.refusal();
    if (refused) throw refused;
    if (!Number.isSafeInteger(lsn) || lsn < 1 || lsn > this.lastLsn) {
      throw new WalError('WAL_INVALID_ARGUMENT', `Expected checkpoint \`lsn\` to be an integer in 1..${this.lastLsn} (the last LSN), got ${String(lsn)}.`);
    }
    const previous = Math.max(this.store.checkpoint?.lsn ?? 0, this.checkpointLsnRequested);
    if (lsn < previous) throw new WalError('WAL_INVALID_ARGUMENT', `Checkpoint LSN ${lsn} is older than the checkpoint at LSN ${previous}.`);
    if (!(data instanceof Uint8Array)) throw new WalError('WAL_INVALID_ARGUMENT', 'Expected checkpoint `data` to be a Uint8Array.');
    this.checkpointLsnRequested = lsn;
    await this.sync();
    const again = this.refusal();
    if (again) throw again;
    const store = this.store;
    store.checkpoint = { lsn, data: new Uint8Array(data) };
    const drop = Math.max(0, lsn - store.baseLsn);
    store.records = store.records.slice(drop);
    store.durableCount = Math.max(0, store.durableCount - drop);
    store.baseLsn += drop;
  }

  async close(): Promise<void> {
    if (this.closed || this.dead) return;
    if (!this.poisonError) await this.sync().catch(() => undefined);
    this.closed = true;
    if (this.store.current === this) this.store.current = undefined;
  }

  private refusal(): WalError | undefined {
    if (this.dead) return new WalError('WAL_CRASHED', 'The log died in a simulated crash.');
    if (this.poisonError) return this.poisonError;
    if (this.closed) return new WalError('WAL_CLOSED', 'The log is closed.');
    return undefined;
  }

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    // A microtask stands for the fdatasync: a crash before it runs loses the records.
    queueMicrotask(() => {
      this.syncScheduled = false;
      this.runSync();
    });
  }

  private runSync(): void {
    if (this.dead || this.poisonError || this.pending.length === 0) return;
    if (this.store.takeSyncFailure()) {
      // Linux drops the dirty pages of a failed fsync and never retries them: the unsynced
      // records are gone, whatever a later sync says.
      this.store.records = this.store.records.slice(0, this.store.durableCount);
      this.poison(new Error('EIO: injected sync failure'));
      return;
    }
    this.store.durableCount = this.store.records.length;
    const done = this.pending;
    this.pending = [];
    for (const waiter of done) waiter.resolve(waiter.lsn);
  }

  private poison(cause: Error): void {
    this.poisonError = new WalError('WAL_POISONED', `The log is poisoned by an I/O error (${cause.message}); nothing after it is acknowledged. Restart to recover.`, { cause });
    for (const waiter of this.pending) waiter.reject(this.poisonError);
    this.pending = [];
  }

  /** @internal The simulated process died: nothing pending will ever complete. */
  die(): void {
    if (this.dead) return;
    this.dead = true;
    const error = new WalError('WAL_CRASHED', 'The log died in a simulated crash.');
    for (const waiter of this.pending) waiter.reject(error);
    this.pending = [];
  }
}
