/**
 * A bounded memory of settled outcomes, as a persistent (never mutated) value.
 *
 * Ids are hashed into a fixed set of small buckets, each a FIFO of at most
 * `ceil(outcomesMax / buckets)` entries: adding copies one small bucket and the
 * bucket array, a lookup reads one map, and old states stay valid for whoever
 * holds them (the simulator, tests). When a bucket is full its oldest entry is
 * forgotten, so the memory holds roughly the most recent `outcomesMax`.
 *
 * Why remember: duplicates of commit/abort must get the same answer, a late
 * PREPARE after an ABORT must vote no (the tombstone), and a peer's inquiry
 * must get the truth. Why forget: memory is bounded.
 *
 * Forgetting must never turn into a wrong answer. "No record" is evidence that
 * this participant never voted yes only for ids it cannot have forgotten. So
 * the memory keeps a horizon: the highest `tx-<epoch>-<seq>` id it has dropped
 * (coordinator ids grow monotonically). An unknown id at or below the horizon
 * may have been settled here and forgotten: a prepare for it votes no, and a
 * peer's inquiry gets "unknown" rather than a tombstone. Ids of another shape
 * cannot be ordered, so once anything was forgotten they get the same caution.
 */
import type { TxId } from '../../shared/types.ts';
import type { OutcomeEntry } from './types.ts';

/** What has been forgotten: anything at all, and the highest coordinator-ordered id among it. */
export interface ForgetHorizon {
  readonly any: boolean;
  /** [epoch, seq] of the highest `tx-<epoch>-<seq>` id dropped, if any. */
  readonly highest?: readonly [number, number];
}

export interface RecentOutcomes {
  /** Each bucket is a FIFO in settle order. */
  readonly buckets: readonly ReadonlyMap<TxId, OutcomeEntry>[];
  /** Entries per bucket. */
  readonly bucketMax: number;
  readonly forgotten: ForgetHorizon;
}

/** Buckets hold at least this many entries, so a small memory is one exact FIFO. */
const BUCKET_ENTRIES_MIN = 128;
const BUCKETS_MAX = 256;

export const nothingForgotten: ForgetHorizon = { any: false };
export function noOutcomes(outcomesMax: number): RecentOutcomes {
  const count = Math.max(1, Math.min(BUCKETS_MAX, Math.floor(outcomesMax / BUCKET_ENTRIES_MIN)));
  return { buckets: Array.from({ length: count }, () => new Map()), bucketMax: Math.max(1, Math.ceil(outcomesMax / count)), forgotten: nothingForgotten };
}

/** FNV-1a: a stable, cheap spread of ids over the buckets. */
function bucketOf(o: RecentOutcomes, txId: TxId): number {
  if (o.buckets.length === 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < txId.length; i++) {
    h ^= txId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % o.buckets.length;
}

const ORDERED_ID = /^tx-(\d{1,15})-(\d{1,15})$/;

function orderOf(txId: string): readonly [number, number] | undefined {
  const m = ORDERED_ID.exec(txId);
  return m === null ? undefined : [Number(m[1]), Number(m[2])];
}

const atOrBelow = (a: readonly [number, number], b: readonly [number, number]): boolean => a[0] < b[0] || (a[0] === b[0] && a[1] <= b[1]);

function forget(h: ForgetHorizon, dropped: Iterable<TxId>): ForgetHorizon {
  let highest = h.highest;
  let any = h.any;
  for (const txId of dropped) {
    any = true;
    const o = orderOf(txId);
    if (o !== undefined && (highest === undefined || !atOrBelow(o, highest))) highest = o;
  }
  return highest === undefined ? { any } : { any, highest };
}

/** True when `txId` may have settled here and been forgotten, so "no record" proves nothing. */
export function mayHaveForgotten(o: RecentOutcomes, txId: TxId): boolean {
  if (!o.forgotten.any) return false;
  const id = orderOf(txId);
  if (id === undefined) return true;
  return o.forgotten.highest !== undefined && atOrBelow(id, o.forgotten.highest);
}

export function getOutcome(o: RecentOutcomes, txId: TxId): OutcomeEntry | undefined {
  return o.buckets[bucketOf(o, txId)]?.get(txId);
}

export function putOutcome(o: RecentOutcomes, txId: TxId, entry: OutcomeEntry): RecentOutcomes {
  const b = bucketOf(o, txId);
  const bucket = new Map(o.buckets[b]);
  bucket.delete(txId);
  bucket.set(txId, entry);
  const dropped: TxId[] = [];
  for (const oldest of bucket.keys()) {
    if (bucket.size <= o.bucketMax) break;
    bucket.delete(oldest);
    dropped.push(oldest);
  }
  const buckets = o.buckets.slice();
  buckets[b] = bucket;
  return { buckets, bucketMax: o.bucketMax, forgotten: dropped.length === 0 ? o.forgotten : forget(o.forgotten, dropped) };
}

/** Every remembered entry, bucket by bucket, each bucket oldest first. */
export function outcomeEntries(o: RecentOutcomes): (readonly [TxId, OutcomeEntry])[] {
  return o.buckets.flatMap((b) => [...b]);
}

export function outcomeCount(o: RecentOutcomes): number {
  return o.buckets.reduce((n, b) => n + b.size, 0);
}

/** Builds the memory from entries in settle order (per bucket at least) in one pass, for recovery. */
export function outcomesFrom(
  entries: Iterable<readonly [TxId, OutcomeEntry]>,
  outcomesMax: number,
  forgotten: ForgetHorizon = nothingForgotten,
): RecentOutcomes {
  const empty = noOutcomes(outcomesMax);
  const buckets = empty.buckets.map(() => new Map<TxId, OutcomeEntry>());
  const dropped: TxId[] = [];
  for (const [txId, entry] of entries) {
    const bucket = buckets[bucketOf(empty, txId)] as Map<TxId, OutcomeEntry>;
    bucket.delete(txId);
    bucket.set(txId, entry);
    if (bucket.size > empty.bucketMax) {
      const oldest = bucket.keys().next().value as TxId;
      bucket.delete(oldest);
      dropped.push(oldest);
    }
  }
  return { buckets, bucketMax: empty.bucketMax, forgotten: dropped.length === 0 ? forgotten : forget(forgotten, dropped) };
}
