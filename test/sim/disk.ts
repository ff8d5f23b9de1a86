/**
 * One node's simulated disk: the WAL's in-memory log (wal/memory-log.ts) on a
 * store that outlives the node's crashes, with the real record codecs.
 *
 * The disk also tells the ghost when each record becomes durable: a forced
 * append or a sync makes everything appended so far durable (the log is
 * written in order, and the simulator's driver awaits each append before the
 * next), and after a crash whatever the store kept is on disk. Records that
 * were never synced and did not survive are never reported.
 */
import type { RecordCodec } from '../../shared/records.ts';
import type { Recovered } from '../../wal/log.ts';
import { MemoryLog, MemoryLogStore } from '../../wal/memory-log.ts';

export interface Opened<R> {
  readonly records: readonly R[];
  readonly checkpoint?: Uint8Array;
  readonly torn: boolean;
}

export class SimDisk<R extends { type: string }> {
  private readonly store: MemoryLogStore;
  private log: MemoryLog | undefined;
  /** Appended in this incarnation and not yet known durable, oldest first. */
  private volatile: { readonly lsn: number; readonly record: R }[] = [];

  constructor(
    random: () => number,
    private readonly codec: RecordCodec<R>,
    private readonly onDurable: (record: R) => void,
  ) {
    this.store = new MemoryLogStore(random);
  }

  /** Opens the log on what the store kept, as a restarting process does. */
  open(): Opened<R> {
    const { log, recovered } = MemoryLog.open(this.store);
    this.log = log;
    this.volatile = [];
    const records = decodeAll(this.codec, recovered);
    // Whatever recovery reads is on disk now, including unsynced records that happened to survive.
    for (const r of records) this.onDurable(r);
    return {
      records,
      ...(recovered.checkpoint ? { checkpoint: recovered.checkpoint.data } : {}),
      torn: recovered.tornTail !== undefined,
    };
  }

  get lastLsn(): number {
    return this.log?.lastLsn ?? 0;
  }

  /** Records appended but not yet known durable. */
  get unsynced(): number {
    return this.volatile.length;
  }


  async append(record: R, sync: boolean): Promise<void> {
    const log = this.opened();
    const { type, payload } = this.codec.encode(record);
    const lsn = await log.append(type, payload, { durable: sync });
    this.volatile.push({ lsn, record });
    if (sync) this.durableUpTo(lsn);
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
  }

  /** The next sync fails as an fsync error would: the log is poisoned and its unsynced records are gone. */
  failNextSync(): void {
    this.store.failSyncs(1);
  }

  /** Power loss: the open log dies; the store keeps what was synced and, by chance, some of the rest. */
  crash(): void {
    this.log?.crash();
    this.log = undefined;
    this.volatile = [];
  }

  private durableUpTo(lsn: number): void {
    let n = 0;
    for (const v of this.volatile) {
      if (v.lsn > lsn) break;
      this.onDurable(v.record);
      n++;
    }
    if (n > 0) this.volatile = this.volatile.slice(n);
  }

  private opened(): MemoryLog {
    if (!this.log) throw new Error('the simulated disk is not open (the node is down)');
    return this.log;
  }
}

function decodeAll<R extends { type: string }>(codec: RecordCodec<R>, recovered: Recovered): R[] {
  return recovered.entries.map((e) => codec.decode(e.type, e.payload));
}
