/**
 * One node's simulated disk: a WAL behind the `Log` port, on storage that
 * outlives the node's crashes, with the real record codecs. Two kinds, chosen
 * per seed:
 *
 * - memory: the in-memory log (wal/memory-log.ts). A crash keeps what was
 *   synced plus a random prefix of the rest, the next record possibly torn.
 * - file: the real file WAL (wal/file-log.ts) on the simulated file system
 *   (wal/sim-fs.ts), with small segments. A crash keeps the synced bytes plus
 *   some of the rest: an ordered prefix torn at a 512- or 4096-byte sector, all,
 *   none, or a scatter of sectors (page writeback is not ordered); directory
 *   changes not yet synced may vanish.
 *
 * The disk tells the ghost when each record becomes durable: a forced append
 * or a sync makes everything appended before it durable, and after a crash whatever the WAL
 * recovers is on disk. It also checks the WAL's own promise: every record it
 * called durable comes back after a crash, byte for byte.
 */
import type { RecordCodec } from '../../shared/records.ts';
import { openFileLog } from '../../wal/file-log.ts';
import type { Log, Recovered } from '../../wal/log.ts';
import { MemoryLog, MemoryLogStore } from '../../wal/memory-log.ts';
import { ioError, SimFs, type DataCrashMode } from '../../wal/sim-fs.ts';

export type DiskKind = 'memory' | 'file';

/** The kinds a node's log can be: a local disk, or the HA group's log in the simulated etcd (./ha.ts). */
export type LogKind = DiskKind | 'etcd';

export interface Opened<R> {
  readonly records: readonly R[];
  readonly checkpoint?: Uint8Array;
  readonly torn: boolean;
  /** The LSN of the last record the log holds, and of its checkpoint (0 without one). */
  readonly lastLsn: number;
  readonly checkpointLsn: number;
}

/** The storage under a log, and how it fails. */
export interface Backend {
  open(): Promise<{ log: Log; recovered: Recovered }>;
  /** Every append that resolved is durable (etcd: a quorum has it), not only forced ones. */
  readonly appendsDurable?: boolean;
  /** Power loss: the open log dies with the process. */
  crash(): void;
  /** The next fdatasync fails (EIO), as Linux reports it. */
  failNextSync(): void;
}

class MemoryBackend implements Backend {
  private readonly store: MemoryLogStore;
  private current: MemoryLog | undefined;

  constructor(random: () => number) {
    this.store = new MemoryLogStore(random);
  }

  open(): Promise<{ log: Log; recovered: Recovered }> {
    const opened = MemoryLog.open(this.store);
    this.current = opened.log;
    return Promise.resolve(opened);
  }

  crash(): void {
    this.current?.crash();
    this.current = undefined;
  }

  failNextSync(): void {
    this.store.failSyncs(1);
  }
}

/** Small segments, so a seed's few hundred records roll over several of them and checkpoints drop some. */
const SEGMENT_BYTES = 4096;
const WAL_DIR = '/wal';
const DATA_CRASH_MODES: readonly DataCrashMode[] = ['prefix', 'prefix', 'prefix', 'scatter', 'lose', 'keep'];

class FileBackend implements Backend {
  private readonly fs: SimFs;

  constructor(private readonly random: () => number) {
    this.fs = new SimFs(random);
  }

  async open(): Promise<{ log: Log; recovered: Recovered }> {
    const { log, recovered } = await openFileLog(WAL_DIR, {
      fs: this.fs,
      syncPolicy: 'group',
      segmentBytes: SEGMENT_BYTES,
      random: this.random,
      // Each event is settled by one setImmediate (./node.ts, `settle`): a writer started on another
      // would run after it, in the next event. So it starts as a microtask, within its event; the
      // simulator never batches appends across events, as the services now do within a turn.
      startWriter: queueMicrotask,
    });
    return { log, recovered };
  }

  crash(): void {
    const data = DATA_CRASH_MODES[Math.floor(this.random() * DATA_CRASH_MODES.length)] ?? 'prefix';
    this.fs.crash({ data, sectorBytes: this.random() < 0.5 ? 512 : 4096 });
    this.fs.faults = {};
  }

  failNextSync(): void {
    let armed = true;
    this.fs.faults = {
      sync: (event) => {
        if (!armed || event.kind !== 'datasync') return undefined;
        armed = false;
        return ioError('EIO', 'injected fsync failure');
      },
    };
  }
}

export class SimDisk<R extends { type: string }> {
  private readonly backend: Backend;
  private log: Log | undefined;
  /** Appended in this incarnation and not yet known durable, oldest first. */
  private volatile: { readonly lsn: number; readonly record: R }[] = [];
  /** What each LSN known durable holds, to check it comes back after a crash. */
  private durable = new Map<number, { readonly type: number; readonly payload: Uint8Array }>();
  private pendingBytes = new Map<number, { readonly type: number; readonly payload: Uint8Array }>();
  private durableLsn = 0;

  constructor(
    readonly kind: LogKind,
    random: () => number,
    private readonly codec: RecordCodec<R>,
    private readonly onDurable: (record: R) => void,
    private readonly onLoss: (message: string) => void,
    backend?: Backend,
  ) {
    this.backend = backend ?? (kind === 'file' ? new FileBackend(random) : new MemoryBackend(random));
  }

  /** Opens the log on what the storage kept, as a restarting process does. */
  async open(): Promise<Opened<R>> {
    const { log, recovered } = await this.backend.open();
    this.log = log;
    this.volatile = [];
    this.pendingBytes = new Map();
    this.verify(recovered);
    const records = recovered.entries.map((e) => this.codec.decode(e.type, e.payload));
    // Whatever recovery reads is on disk now, including unsynced records that happened to survive.
    this.durable = new Map(recovered.entries.map((e) => [e.lsn, { type: e.type, payload: e.payload }]));
    this.durableLsn = log.lastLsn;
    for (const r of records) this.onDurable(r);
    return {
      records,
      ...(recovered.checkpoint ? { checkpoint: recovered.checkpoint.data } : {}),
      torn: recovered.tornTail !== undefined,
      lastLsn: log.lastLsn,
      checkpointLsn: recovered.checkpoint?.lsn ?? 0,
    };
  }

  /** Every record the WAL called durable is back, unchanged (or covered by the checkpoint). */
  private verify(recovered: Recovered): void {
    const checkpointLsn = recovered.checkpoint?.lsn ?? 0;
    const lastLsn = recovered.entries.at(-1)?.lsn ?? checkpointLsn;
    if (lastLsn < this.durableLsn) this.onLoss(`the WAL recovered up to LSN ${lastLsn}, but LSN ${this.durableLsn} was durable`);
    for (const e of recovered.entries) {
      const want = this.durable.get(e.lsn);
      if (want && (want.type !== e.type || !sameBytes(want.payload, e.payload))) this.onLoss(`the WAL recovered LSN ${e.lsn} with other contents than were made durable`);
    }
  }

  get lastLsn(): number {
    return this.log?.lastLsn ?? 0;
  }

  /** Every append is durable once it resolves (the etcd log). */
  get appendsDurable(): boolean {
    return this.backend.appendsDurable === true;
  }

  /** Records appended but not yet known durable. */
  get unsynced(): number {
    return this.volatile.length;
  }

  /**
   * Writes a record. Its LSN is taken when the append is issued (the log numbers appends in the
   * order they are made), so appends issued together by the driver stay in order here too.
   */
  async append(record: R, sync: boolean): Promise<void> {
    const log = this.opened();
    const { type, payload } = this.codec.encode(record);
    const before = log.lastLsn;
    const written = log.append(type, payload, { durable: sync });
    const lsn = log.lastLsn;
    // Refused at once (a poisoned log): nothing was written.
    if (lsn === before) return written.then(() => undefined);
    this.volatile.push({ lsn, record });
    this.pendingBytes.set(lsn, { type, payload });
    await written;
    if (sync || this.backend.appendsDurable === true) this.durableUpTo(lsn);
  }

  /** The background flush: makes every lazy write so far durable. */
  async flush(): Promise<void> {
    const log = this.opened();
    const upTo = log.lastLsn;
    await log.sync();
    this.durableUpTo(upTo);
  }

  async checkpoint(lsn: number, data: Uint8Array): Promise<void> {
    const log = this.opened();
    // A checkpoint syncs the log first, so every record up to it is durable.
    await log.checkpoint(lsn, data);
    this.durableUpTo(lsn);
    for (const l of this.durable.keys()) if (l <= lsn) this.durable.delete(l);
  }

  failNextSync(): void {
    this.backend.failNextSync();
  }

  /** Power loss: the open log dies; the storage keeps what was synced and, by chance, some of the rest. */
  crash(): void {
    this.backend.crash();
    this.log = undefined;
    this.volatile = [];
    this.pendingBytes = new Map();
  }

  private durableUpTo(lsn: number): void {
    let n = 0;
    for (const v of this.volatile) {
      if (v.lsn > lsn) break;
      this.onDurable(v.record);
      const bytes = this.pendingBytes.get(v.lsn);
      if (bytes) this.durable.set(v.lsn, bytes);
      this.pendingBytes.delete(v.lsn);
      n++;
    }
    if (n > 0) this.volatile = this.volatile.slice(n);
    this.durableLsn = Math.max(this.durableLsn, lsn);
  }

  private opened(): Log {
    if (!this.log) throw new Error('the simulated disk is not open (the node is down)');
    return this.log;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
