/**
 * Recovery: rebuild the state from the newest checkpoint and the records after
 * it, and rebuild the resource alongside.
 *
 * The resource is restored from the checkpoint's resource snapshot, which
 * reflects exactly the records up to the checkpoint's LSN; then every outcome
 * logged after it is replayed through `resourceCommit`/`resourceAbort` with
 * the data its PREPARED (or one-phase COMMITTED) carried. A crash may have hit
 * after the record but before or after the resource applied it, so the
 * resource must apply idempotently; the key-value store's commit data is final
 * values, which are.
 *
 * Every PREPARED without an outcome is in doubt: it re-takes its locks (no
 * other transaction may touch those keys until it is settled) and asks the
 * coordinator at once.
 *
 * A PREPARED record travels whole, from the log or a checkpoint into the
 * in-doubt transaction and from there into the next checkpoint
 * (`inDoubtFrom`, `preparedSnapshotOf`): its fields are never listed out, so
 * none can be lost. One was, when they were: `abortForced`, so under presumed
 * commit a transaction recovered from the log wrote its ABORTED lazily, and
 * one lost in a crash after the ack was later "learned" as committed.
 */
import { PersistentMap } from '../../shared/persistent-map.ts';
import type { TxId } from '../../shared/types.ts';
import { outcomesFrom } from './outcomes.ts';
import { type Acc, log } from './state.ts';
import type { InDoubtProgress, OutcomeEntry, PreparedRecord, PreparedSnapshot, PreparedTx, RecoverEvent } from './types.ts';

export function recover(acc: Acc, e: RecoverEvent): void {
  const { config } = acc.s;
  const prepared = new Map<TxId, PreparedSnapshot>();
  const settled: (readonly [TxId, OutcomeEntry])[] = [];
  let anomalies = 0;
  if (e.snapshot !== undefined) {
    if (e.snapshot.version !== 1) throw new Error(`Unknown participant checkpoint version ${String(e.snapshot.version)}.`);
    acc.fx.push({ kind: 'resourceRestore', snapshot: e.snapshot.resource });
    for (const p of e.snapshot.prepared) prepared.set(p.txId, p);
    settled.push(...e.snapshot.outcomes);
  }
  for (const r of e.records) {
    const p = prepared.get(r.txId);
    switch (r.type) {
      case 'PREPARED':
        prepared.set(r.txId, withoutType(r));
        break;
      case 'COMMITTED':
        if (p !== undefined) acc.fx.push({ kind: 'resourceCommit', txId: r.txId, data: p.data });
        else if (r.onePhase === true) acc.fx.push({ kind: 'resourceCommit', txId: r.txId, data: r.data });
        else anomalies++;
        settled.push([r.txId, withDigest({ outcome: 'committed', at: r.at }, p?.opsDigest ?? r.opsDigest)]);
        break;
      case 'ABORTED':
        if (p !== undefined) acc.fx.push({ kind: 'resourceAbort', txId: r.txId, data: p.data });
        settled.push([r.txId, r.reason === undefined ? { outcome: 'aborted', at: r.at } : { outcome: 'aborted', at: r.at, reason: r.reason }]);
        break;
      case 'HEURISTIC':
        if (p !== undefined) acc.fx.push({ kind: r.outcome === 'committed' ? 'resourceCommit' : 'resourceAbort', txId: r.txId, data: p.data });
        else anomalies++;
        settled.push([r.txId, withDigest({ outcome: r.outcome, at: r.at, heuristic: r.outcome }, p?.opsDigest)]);
        break;
    }
    if (r.type !== 'PREPARED') prepared.delete(r.txId);
  }

  const txs = new Map<TxId, PreparedTx>();
  const locks = new Map<string, TxId>();
  const inDoubt = [...prepared.values()].sort((a, b) => a.at - b.at);
  for (const p of inDoubt) {
    for (const k of p.keys) locks.set(k, p.txId);
    txs.set(p.txId, inDoubtFrom(p, { inquiries: 1, inquiryInFlight: true, peers: {} }));
  }
  const inDoubtTxs = PersistentMap.from(txs);
  acc.s = {
    config,
    txs: inDoubtTxs,
    locks: PersistentMap.from(locks),
    waiting: [],
    outcomes: outcomesFrom(settled, config.outcomesMax, e.snapshot?.forgotten),
    inDoubt: { txs: inDoubtTxs, count: inDoubtTxs.size },
  };
  for (const p of inDoubt) {
    log(acc, 'in-doubt', p.txId, { keys: p.keys, coordinator: p.coordinator, preparedAt: p.at });
    acc.fx.push({ kind: 'inquire', txId: p.txId, coordinator: p.coordinator });
  }
  log(acc, 'recovered', undefined, {
    fromCheckpoint: e.snapshot !== undefined,
    records: e.records.length,
    inDoubt: inDoubt.length,
    outcomes: settled.length,
    ...(anomalies > 0 && { anomalies }),
  });
}

/** A yes-voted outcome remembers what was prepared, so a later prepare for other work is refused. */
function withDigest(entry: OutcomeEntry, opsDigest: string | undefined): OutcomeEntry {
  return opsDigest === undefined ? entry : { ...entry, opsDigest };
}

// ---- a PREPARED record, whole, in each of its forms ---------------------------------

/** A PREPARED record as a checkpoint keeps it: every field but `type`. */
export function withoutType(r: PreparedRecord): PreparedSnapshot {
  const { type: _type, ...snapshot } = r;
  return snapshot;
}

/** The in-doubt transaction a PREPARED record stands for: the whole record, and a fresh start at asking. */
export function inDoubtFrom(p: PreparedSnapshot, progress: InDoubtProgress): PreparedTx {
  // The same object as `const { at, ...record } = p; return { ...record, phase, preparedAt: at, ...progress }`,
  // fields in the same order, copied by hand: V8 makes an object rest in dictionary mode, and
  // spreading one cost 8.6 µs (every prepare runs this: 1% of a busy participant), while every
  // later spread of the transaction (each step that touches it) was 10x slower too.
  const record: Record<string, unknown> = {};
  for (const key of Object.keys(p)) if (key !== 'at') record[key] = p[key as keyof PreparedSnapshot];
  const tx: Omit<PreparedTx, keyof InDoubtProgress> = Object.assign(record as Omit<PreparedSnapshot, 'at'>, { phase: 'prepared' as const, preparedAt: p.at });
  return Object.assign(tx, progress);
}

/** The PREPARED record (less `type`) an in-doubt transaction stands for: the inverse of `inDoubtFrom`. */
export function preparedSnapshotOf(tx: PreparedTx): PreparedSnapshot {
  const { phase: _phase, preparedAt, inquiries: _inquiries, inquiryInFlight: _inFlight, peers: _peers, preparedPeersAskedAt: _askedAt, blocked: _blocked, ...record } = tx;
  // What is left must be the record's fields and nothing else: a field added to PreparedTx that
  // is not listed above fails to compile here instead of leaking into every checkpoint.
  const onlyRecordFields: [Exclude<keyof typeof record, keyof PreparedSnapshot>] extends [never] ? true : false = true;
  void onlyRecordFields;
  return { ...record, at: preparedAt };
}
