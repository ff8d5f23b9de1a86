/**
 * The built-in key-value resource: a map of JSON values under 2PC.
 *
 * prepare computes each touched key's final value (a missing key counts as 0
 * for `add`) and votes no when an `add` would go below its `min` or meets a
 * non-number; commit writes those final values. Writing final values, not
 * deltas, is what makes commit idempotent: a replay after a crash sets the
 * same values again.
 */
import { opsSchema } from '../../shared/schemas.ts';
import type { Op, TxId } from '../../shared/types.ts';
import type { PrepareResult, Resource } from './resource.ts';

/** One key's value after the transaction: a value, or deleted. */
export type KvWrite = { readonly key: string; readonly value: unknown } | { readonly key: string; readonly deleted: true };

export interface KvCommitData {
  readonly writes: readonly KvWrite[];
}

export interface KvSnapshot {
  /** [key, value] pairs, so no key (not even `__proto__`) is special. */
  readonly entries: readonly (readonly [string, unknown])[];
}

const ABSENT = Symbol('absent');

export class KvStore implements Resource<Op> {
  readonly opsSchema = opsSchema;
  /** The core locks the keys; the store keeps nothing prepared across a crash (no recoverPrepared). */
  readonly locking = 'core';
  private readonly data = new Map<string, unknown>();

  keysOf(ops: readonly Op[]): readonly string[] {
    return ops.map((o) => o.key);
  }

  prepare(_txId: TxId, ops: readonly Op[]): PrepareResult {
    if (ops.every((o) => o.op === 'read')) return { vote: 'read-only' };
    // The transaction's own view: its earlier ops are visible to its later ones.
    const working = new Map<string, unknown>();
    const current = (key: string): unknown => (working.has(key) ? working.get(key) : this.data.has(key) ? this.data.get(key) : ABSENT);
    for (const o of ops) {
      switch (o.op) {
        case 'put':
          working.set(o.key, o.value);
          break;
        case 'delete':
          working.set(o.key, ABSENT);
          break;
        case 'add': {
          const before = current(o.key);
          const base = before === ABSENT ? 0 : before;
          if (typeof base !== 'number') {
            return { vote: 'no', reason: `add on key ${o.key}: its value is not a number (${JSON.stringify(base)})` };
          }
          const after = base + o.amount;
          if (!Number.isFinite(after)) return { vote: 'no', reason: `add on key ${o.key}: the result is not a finite number` };
          if (o.min !== undefined && after < o.min) {
            return { vote: 'no', reason: `add on key ${o.key} would leave ${after}, below min ${o.min}` };
          }
          working.set(o.key, after);
          break;
        }
        case 'read':
          break;
      }
    }
    const writes: KvWrite[] = [...working].map(([key, value]) => (value === ABSENT ? { key, deleted: true } : { key, value }));
    return { vote: 'yes', data: { writes } satisfies KvCommitData };
  }

  commit(_txId: TxId, data: unknown): void {
    for (const w of asCommitData(data).writes) {
      if ('deleted' in w) this.data.delete(w.key);
      else this.data.set(w.key, w.value);
    }
  }

  abort(): void {
    // Nothing was applied at prepare, so there is nothing to undo.
  }

  snapshot(): KvSnapshot {
    return { entries: [...this.data] };
  }

  restore(snapshot: unknown): void {
    const s = snapshot as Partial<KvSnapshot> | null;
    if (s === null || typeof s !== 'object' || !Array.isArray(s.entries)) {
      throw new Error('The key-value checkpoint is not { entries: [[key, value], ...] }.');
    }
    this.data.clear();
    for (const pair of s.entries) {
      if (!Array.isArray(pair) || typeof pair[0] !== 'string') throw new Error('The key-value checkpoint holds a malformed entry.');
      this.data.set(pair[0], pair[1]);
    }
  }

  // ---- reads for GET /v1/kv: committed state only --------------------------------

  get(key: string): { found: boolean; value: unknown } {
    return this.data.has(key) ? { found: true, value: this.data.get(key) } : { found: false, value: undefined };
  }

  entries(): Record<string, unknown> {
    return Object.fromEntries(this.data);
  }

  get size(): number {
    return this.data.size;
  }
}

function asCommitData(data: unknown): KvCommitData {
  const d = data as Partial<KvCommitData> | null;
  // Checked where it is read back: the data came from our own log, so a bad shape is corruption, not user error.
  if (d === null || typeof d !== 'object' || !Array.isArray(d.writes)) throw new Error('Key-value commit data is not { writes: [...] }.');
  return d as KvCommitData;
}

/** The key-value ops' keys, for a core configured without a KvStore instance. */
export const kvKeysOf = (ops: readonly unknown[]): readonly string[] => (ops as readonly Op[]).map((o) => o.key);

