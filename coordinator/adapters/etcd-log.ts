/**
 * The coordinator's decision log replicated in etcd: an implementation of the
 * `Log` port (wal/log.ts), so the runtime, the effect driver and the core run
 * unchanged on it, and the Log acceptance suite runs against it on real etcd.
 *
 * Layout under the group's prefix (`twopc/<group>/`):
 *
 *   log/<lsn, 16 digits>   one record: its type byte, then its payload
 *   checkpoint             the newest checkpoint: its LSN (8 bytes, big-endian), then its data
 *   leader                 the leader's key (./etcd-leadership.ts); its create revision is the fence
 *
 * Fencing: every write is one etcd transaction that first compares the leader
 * key's create revision with the one this writer won. A deposed leader's key
 * is gone (its lease expired) or was created again by the next leader, so the
 * compare fails and nothing of the transaction is applied. A refused or failed
 * write poisons the log: every pending and later operation rejects with
 * WAL_POISONED (fail-stop, as a failed fsync is for the file WAL).
 *
 * Group commit: one transaction is in flight at a time; records appended
 * meanwhile share the next, up to `recordsPerTxnMax` records and `txnBytesMax`
 * bytes (etcd refuses more than 128 operations or 1.5 MiB a request by default).
 * Every append is made durable (a quorum has it) before it resolves, so
 * `durable` costs nothing extra and `sync()` only waits for the queue.
 */
import type { Etcd3, ICompare, IRequestOp } from 'etcd3';
import { WalError } from '../../wal/errors.ts';
import type { AppendOptions, Checkpoint, Log, LogEntry, Lsn, Recovered } from '../../wal/log.ts';

export const ETCD_LOG_DEFAULTS = {
  /** Records one etcd transaction carries (etcd's default --max-txn-ops is 128). */
  recordsPerTxnMax: 64,
  /** Bytes of keys and values one transaction carries (etcd's default --max-request-bytes is 1.5 MiB). */
  txnBytesMax: 1024 * 1024,
  /** One record's payload; a DECISION names its participants, far below this. */
  recordBytesMax: 64 * 1024,
  /** Appends accepted and not yet written; beyond it appends reject with WAL_QUEUE_FULL. */
  pendingAppendsMax: 16_384,
  /** Keys one range read returns while opening; larger logs are read in pages. */
  readPageKeysMax: 1_000,
} as const;

const LSN_DIGITS = 16;

/** The leadership a writer holds: the leader key and the create revision it won it at. */
export interface Fence {
  readonly key: string;
  readonly createRevision: string;
}

export interface EtcdLogOptions {
  readonly client: Etcd3;
  /** The group's key prefix, e.g. `twopc/g1/`. */
  readonly prefix: string;
  /** The writer's current leadership; undefined once it knows it lost it (every write is refused then). */
  readonly fence: () => Fence | undefined;
  readonly recordsPerTxnMax?: number;
  readonly txnBytesMax?: number;
  readonly recordBytesMax?: number;
  readonly pendingAppendsMax?: number;
  /** Called after each transaction with how many records it carried (metrics). */
  readonly onTxn?: (records: number, ms: number) => void;
}

interface PendingAppend {
  readonly lsn: Lsn;
  readonly value: Buffer;
  readonly resolve: (lsn: Lsn) => void;
  readonly reject: (error: unknown) => void;
}

export const logKey = (prefix: string, lsn: Lsn): string => `${prefix}log/${String(lsn).padStart(LSN_DIGITS, '0')}`;
export const checkpointKey = (prefix: string): string => `${prefix}checkpoint`;

/** Reads what the group's log holds: the newest checkpoint and every record after it, in LSN order. */
export async function readEtcdLog(client: Etcd3, prefix: string, pageKeysMax: number = ETCD_LOG_DEFAULTS.readPageKeysMax): Promise<Recovered> {
  const cp = await client.get(checkpointKey(prefix)).buffer();
  const checkpoint: Checkpoint | undefined = cp === null ? undefined : { lsn: Number(cp.readBigUInt64BE(0)), data: new Uint8Array(cp.subarray(8)) };
  const entries: LogEntry[] = [];
  const end = `${prefix}log0`; // '0' follows '/': the end of the log/ range.
  let from = logKey(prefix, (checkpoint?.lsn ?? 0) + 1);
  for (;;) {
    const res = await client.kv.range({ key: Buffer.from(from), range_end: Buffer.from(end), limit: pageKeysMax, sort_order: 'Ascend', sort_target: 'Key' });
    for (const kv of res.kvs) {
      const lsn = Number(kv.key.toString().slice(-LSN_DIGITS));
      const expected = (entries.at(-1)?.lsn ?? checkpoint?.lsn ?? 0) + 1;
      if (lsn !== expected) throw new WalError('WAL_CORRUPT', `The etcd log under ${prefix} has a gap: LSN ${lsn} follows ${expected - 1}.`);
      entries.push({ lsn, type: kv.value[0] as number, payload: new Uint8Array(kv.value.subarray(1)) });
    }
    if (!res.more || res.kvs.length === 0) break;
    from = logKey(prefix, (entries.at(-1)?.lsn ?? 0) + 1);
  }
  return { ...(checkpoint !== undefined && { checkpoint }), entries };
}

/** Opens the group's log for the leader that holds `fence`: reads it, and returns a Log that appends after it. */
export async function openEtcdLog(options: EtcdLogOptions): Promise<{ log: EtcdLog; recovered: Recovered }> {
  const recovered = await readEtcdLog(options.client, options.prefix);
  const lastLsn = recovered.entries.at(-1)?.lsn ?? recovered.checkpoint?.lsn ?? 0;
  return { log: new EtcdLog(options, lastLsn, recovered.checkpoint?.lsn ?? 0), recovered };
}

export class EtcdLog implements Log {
  private nextLsn: Lsn;
  private queue: PendingAppend[] = [];
  /** Records in the transaction being written: they count against pendingAppendsMax until etcd answers. */
  private writingRecords = 0;
  private writing: Promise<void> | undefined;
  private failure: WalError | undefined;
  private closed = false;
  private checkpointLsn: Lsn;
  private readonly recordsPerTxnMax: number;
  private readonly txnBytesMax: number;
  private readonly recordBytesMax: number;
  private readonly pendingMax: number;

  constructor(
    private readonly o: EtcdLogOptions,
    lastLsn: Lsn,
    checkpointLsn: Lsn,
  ) {
    this.nextLsn = lastLsn + 1;
    this.checkpointLsn = checkpointLsn;
    this.recordsPerTxnMax = o.recordsPerTxnMax ?? ETCD_LOG_DEFAULTS.recordsPerTxnMax;
    this.txnBytesMax = o.txnBytesMax ?? ETCD_LOG_DEFAULTS.txnBytesMax;
    this.recordBytesMax = o.recordBytesMax ?? ETCD_LOG_DEFAULTS.recordBytesMax;
    this.pendingMax = o.pendingAppendsMax ?? ETCD_LOG_DEFAULTS.pendingAppendsMax;
  }

  get lastLsn(): Lsn {
    return this.nextLsn - 1;
  }

  append(type: number, payload: Uint8Array, _options?: AppendOptions): Promise<Lsn> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    if (!Number.isInteger(type) || type < 1 || type > 255) return Promise.reject(new WalError('WAL_INVALID_ARGUMENT', `Record type ${type} is outside 1..255.`));
    if (payload.length > this.recordBytesMax) {
      return Promise.reject(new WalError('WAL_RECORD_TOO_LARGE', `A ${payload.length}-byte record is over recordBytesMax (${this.recordBytesMax}).`));
    }
    if (this.queue.length + this.writingRecords >= this.pendingMax) return Promise.reject(new WalError('WAL_QUEUE_FULL', `${this.pendingMax} appends are already waiting for etcd.`));
    const value = Buffer.concat([Buffer.of(type), payload]);
    const lsn = this.nextLsn++;
    return new Promise<Lsn>((resolve, reject) => {
      this.queue.push({ lsn, value, resolve, reject });
      this.kick();
    });
  }

  /** Every append resolves only once etcd has it, so a sync waits for what is queued now. */
  async sync(): Promise<void> {
    const refused = this.refusal();
    if (refused) throw refused;
    while (this.writing !== undefined) await this.writing;
    if (this.failure) throw this.failure;
  }

  async checkpoint(lsn: Lsn, data: Uint8Array): Promise<void> {
    const refused = this.refusal();
    if (refused) throw refused;
    if (!Number.isInteger(lsn) || lsn < 1 || lsn > this.lastLsn || lsn <= this.checkpointLsn) {
      throw new WalError('WAL_INVALID_ARGUMENT', `A checkpoint at LSN ${lsn} is outside (${this.checkpointLsn}, ${this.lastLsn}].`);
    }
    this.checkpointLsn = lsn;
    // Records up to `lsn` must be in etcd before the checkpoint that drops them.
    while (!this.failure && (this.writing !== undefined || this.queue.some((p) => p.lsn <= lsn))) await (this.writing ?? Promise.resolve());
    if (this.failure) throw this.failure;
    const header = Buffer.alloc(8);
    header.writeBigUInt64BE(BigInt(lsn));
    await this.fencedTxn([
      { request_put: { key: Buffer.from(checkpointKey(this.o.prefix)), value: Buffer.concat([header, data]) } },
      // The records the checkpoint covers: [log/0..0, log/lsn+1).
      { request_delete_range: { key: Buffer.from(logKey(this.o.prefix, 0)), range_end: Buffer.from(logKey(this.o.prefix, lsn + 1)) } },
    ]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.writing !== undefined) await this.writing;
    this.closed = true;
  }

  /** Drops every queued append without writing it, as a process kill would (tests; a deposed leader). */
  abandon(reason: string): void {
    this.failure ??= new WalError('WAL_POISONED', reason);
    this.rejectQueued();
  }

  private refusal(): WalError | undefined {
    if (this.failure) return this.failure;
    if (this.closed) return new WalError('WAL_CLOSED', 'The etcd log is closed.');
    return undefined;
  }

  private kick(): void {
    if (this.writing !== undefined || this.queue.length === 0 || this.failure) return;
    this.writing = this.writeBatches().finally(() => {
      this.writing = undefined;
      this.kick();
    });
  }

  /** Writes queued records, one bounded transaction at a time, until the queue is empty or the log is poisoned. */
  private async writeBatches(): Promise<void> {
    while (this.queue.length > 0 && !this.failure) {
      const batch: PendingAppend[] = [];
      let bytes = 0;
      for (const p of this.queue) {
        const size = p.value.length + this.o.prefix.length + LSN_DIGITS + 4;
        if (batch.length >= this.recordsPerTxnMax || (batch.length > 0 && bytes + size > this.txnBytesMax)) break;
        batch.push(p);
        bytes += size;
      }
      this.queue = this.queue.slice(batch.length);
      this.writingRecords = batch.length;
      const startedAt = performance.now();
      try {
        await this.fencedTxn(batch.map((p) => ({ request_put: { key: Buffer.from(logKey(this.o.prefix, p.lsn)), value: p.value } })));
      } catch (error) {
        for (const p of batch) p.reject(error);
        this.rejectQueued();
        return;
      } finally {
        this.writingRecords = 0;
      }
      this.o.onTxn?.(batch.length, performance.now() - startedAt);
      for (const p of batch) p.resolve(p.lsn);
    }
  }

  /** One etcd transaction, applied only while the leader key is still the one this writer won. */
  private async fencedTxn(ops: IRequestOp[]): Promise<void> {
    const fence = this.o.fence();
    if (fence === undefined) throw this.poison('refused: this coordinator no longer holds the leadership');
    const compare: ICompare[] = [{ key: Buffer.from(fence.key), target: 'Create', result: 'Equal', create_revision: fence.createRevision }];
    let succeeded: boolean;
    try {
      succeeded = (await this.o.client.kv.txn({ compare, success: ops })).succeeded;
    } catch (error) {
      // The transaction may or may not have been applied; nothing after it may be acknowledged.
      throw this.poison(`an etcd write failed: ${error instanceof Error ? error.message : String(error)}`, error);
    }
    if (!succeeded) throw this.poison(`refused by etcd (fenced): the leader key ${fence.key} is no longer the one created at revision ${fence.createRevision}`);
  }

  private poison(message: string, cause?: unknown): WalError {
    this.failure ??= new WalError('WAL_POISONED', `The etcd log is poisoned: ${message}.`, cause === undefined ? {} : { cause });
    return this.failure;
  }

  private rejectQueued(): void {
    const queued = this.queue;
    this.queue = [];
    for (const p of queued) p.reject(this.failure);
  }
}
