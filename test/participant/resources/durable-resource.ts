/**
 * A test resource that keeps what a database keeps across a crash of the
 * participant: committed numbers, the prepared branches (with the numbers they
 * will write), and a marker per committed branch, so "already committed" can
 * be told from "never prepared". It stands in for PostgreSQL in the Resource
 * suite (./resource-port.suite.ts) until PostgreSQL joins, so the orphan and
 * reconcile cases run through a real participant runtime.
 *
 * Everything is one JSON file, rewritten synchronously (temp file + rename) on
 * every change: a crash of the process (a test abandoning the instance) loses
 * nothing the resource has answered. Not a power cut: there is no fsync.
 *
 * It takes its own locks (`locking: 'resource'`, no keysOf): a prepare that
 * meets a key held by another prepared branch votes no at once, naming the
 * holder, as a database's lock_timeout of zero would.
 */
import fs from 'node:fs';
import type { PrepareResult, Resource, ResourceOutcome } from '../../../participant/resources/resource.ts';
import { z, type Schema } from '../../../shared/schemas.ts';
import type { TxId } from '../../../shared/types.ts';

export interface DurableOp {
  readonly op: 'add';
  readonly key: string;
  readonly amount: number;
  /** Votes no when the result would fall below it (a CHECK constraint). */
  readonly min?: number;
}

const opSchema: Schema<DurableOp> = z.strictObject({
  op: z.literal('add'),
  key: z.string().min(1).max(64),
  amount: z.int().min(-1_000_000).max(1_000_000),
  min: z.int().min(-1_000_000).max(1_000_000).optional(),
});

/** Test-sized: the suite's transactions are few. */
const OPS_PER_BRANCH_MAX = 16;

interface State {
  committed: Record<string, number>;
  /** txId → the numbers its commit will write. */
  prepared: Record<string, Record<string, number>>;
  /** Branches committed here (the marker rows). */
  markers: string[];
}

export class DurableTestResource implements Resource<DurableOp> {
  readonly opsSchema = z.array(opSchema).max(OPS_PER_BRANCH_MAX);
  readonly locking = 'resource';
  private dead = false;

  constructor(private readonly file: string) {}

  /** This instance's process died: it must never touch the file again (a new instance takes over). */
  kill(): void {
    this.dead = true;
  }

  prepare(txId: TxId, ops: readonly DurableOp[]): PrepareResult {
    const s = this.load();
    const again = s.prepared[txId];
    if (again !== undefined) return { vote: 'yes', data: again };
    const writes: Record<string, number> = {};
    for (const o of ops) {
      const holder = Object.keys(s.prepared).find((other) => o.key in (s.prepared[other] ?? {}));
      if (holder !== undefined) return { vote: 'no', reason: `key ${o.key} is locked by prepared branch ${holder}` };
      const after = (writes[o.key] ?? s.committed[o.key] ?? 0) + o.amount;
      if (o.min !== undefined && after < o.min) return { vote: 'no', reason: `add on key ${o.key} would leave ${after}, below min ${o.min}` };
      writes[o.key] = after;
    }
    s.prepared[txId] = writes;
    this.save(s);
    return { vote: 'yes', data: writes };
  }

  commit(txId: TxId): void {
    const s = this.load();
    const writes = s.prepared[txId];
    if (writes === undefined) {
      if (s.markers.includes(txId)) return;
      // Like COMMIT PREPARED of a transaction that is not there: the participant must never ask this.
      throw new Error(`commit of ${txId}: no such prepared branch`);
    }
    Object.assign(s.committed, writes);
    delete s.prepared[txId];
    s.markers.push(txId);
    this.save(s);
  }

  abort(txId: TxId): void {
    const s = this.load();
    if (s.prepared[txId] === undefined) return;
    delete s.prepared[txId];
    this.save(s);
  }

  /** The state lives in the file, not in the participant's checkpoint. */
  snapshot(): null {
    return null;
  }

  restore(): void {}

  recoverPrepared(): Promise<readonly TxId[]> {
    return Promise.resolve(Object.keys(this.load().prepared) as TxId[]);
  }

  outcomeOf(txId: TxId): Promise<ResourceOutcome> {
    return Promise.resolve(this.load().markers.includes(txId) ? 'committed' : 'unknown');
  }

  value(key: string): number {
    return this.load().committed[key] ?? 0;
  }

  private load(): State {
    if (this.dead) throw new Error('this resource instance died in a crash');
    if (!fs.existsSync(this.file)) return { committed: {}, prepared: {}, markers: [] };
    return JSON.parse(fs.readFileSync(this.file, 'utf8')) as State;
  }

  private save(s: State): void {
    fs.writeFileSync(`${this.file}.tmp`, JSON.stringify(s));
    fs.renameSync(`${this.file}.tmp`, this.file);
  }
}
