/**
 * Reconciling the WAL with a resource that keeps prepared work of its own (a
 * database with PREPARE TRANSACTION), XA's `recover`, both ways. It runs right
 * after recovery (./recovery.ts) has rebuilt the state from the WAL, on what
 * the runtime asked the resource before the core ran (`RecoverEvent.resource`),
 * so it stays pure.
 *
 * Prepared in the resource:
 *   - and in doubt in the WAL: in doubt, as always;
 *   - and settled in the WAL: commit or roll back the branch (a replay);
 *   - with no record at all: an orphan of a crash between "resource prepared"
 *     and "PREPARED durable". This participant never voted, so it rolls the
 *     branch back and remembers the transaction as aborted (ABORTED, forced, so
 *     a late prepare votes no even under presumed commit).
 * Not (or no longer) prepared in the resource:
 *   - in doubt in the WAL: what `outcomeOf` said is kept (`branchesGone`); when
 *     the decision comes and disagrees, it is reported as heuristic
 *     (./settle.ts `settleAgainstResource`);
 *   - committed in the WAL, and the resource has no trace of the commit: the
 *     commit was lost outside the protocol. Reported loudly and recorded as a
 *     heuristic abort, so duplicates are answered with `heuristic`.
 * Only branches the resource holds are committed or rolled back: recovery's
 * replays for any other branch are dropped, since there is nothing left to call.
 *
 * A resource that keeps nothing prepared across a crash (no `recoverPrepared`)
 * sends no `resource` in the recover event, and nothing here runs.
 */
import { PersistentMap } from '../../shared/persistent-map.ts';
import type { TxId } from '../../shared/types.ts';
import type { ResourceOutcome } from '../resources/resource.ts';
import { getOutcome, mayHaveForgotten } from './outcomes.ts';
import { type Acc, log, remember } from './state.ts';
import type { ParticipantEffect, ParticipantRecord, ParticipantSnapshot, RecoverEvent, ResourceRecovery } from './types.ts';

type WalState = 'in-doubt' | 'committed' | 'aborted';

/** What the WAL (the checkpoint's in-doubt list, then the records after it) says of each transaction it names. */
function walStates(snapshot: ParticipantSnapshot | undefined, records: readonly ParticipantRecord[]): Map<TxId, WalState> {
  const states = new Map<TxId, WalState>();
  for (const p of snapshot?.prepared ?? []) states.set(p.txId, 'in-doubt');
  for (const r of records) {
    if (r.type === 'PREPARED') states.set(r.txId, 'in-doubt');
    else if (r.type === 'COMMITTED') states.set(r.txId, 'committed');
    else if (r.type === 'ABORTED') states.set(r.txId, 'aborted');
    else states.set(r.txId, r.outcome === 'committed' ? 'committed' : 'aborted');
  }
  return states;
}

/**
 * The branches the runtime must ask the resource's `outcomeOf` about before
 * recovery: those the WAL says are in doubt, or committed since the last
 * checkpoint, that the resource does not hold prepared. (Commits before the
 * checkpoint were applied before it was taken: the checkpoint waits for them.)
 */
export function reconcileQuestions(snapshot: ParticipantSnapshot | undefined, records: readonly ParticipantRecord[], held: readonly TxId[]): TxId[] {
  const heldSet = new Set(held);
  const ask: TxId[] = [];
  for (const [txId, state] of walStates(snapshot, records)) {
    if (state !== 'aborted' && !heldSet.has(txId)) ask.push(txId);
  }
  return ask;
}

function isResourceCall(e: ParticipantEffect): e is Extract<ParticipantEffect, { kind: 'resourceCommit' | 'resourceAbort' }> {
  return e.kind === 'resourceCommit' || e.kind === 'resourceAbort';
}

/** Runs after `recover` in the same step; see the top of this file. */
export function reconcile(acc: Acc, e: RecoverEvent): void {
  const r: ResourceRecovery | undefined = e.resource;
  if (r === undefined) return;
  const held = new Set(r.prepared);
  const said = new Map<TxId, ResourceOutcome>(r.outcomes);
  // Replays only for branches the resource holds; for the others there is no branch left to call.
  for (let i = acc.fx.length - 1; i >= 0; i--) {
    const fx = acc.fx[i] as ParticipantEffect;
    if (isResourceCall(fx) && !held.has(fx.txId)) acc.fx.splice(i, 1);
  }
  const replayed = new Set(acc.fx.filter(isResourceCall).map((fx) => fx.txId));
  let orphans = 0;
  for (const txId of held) {
    if (acc.s.txs.has(txId)) continue; // in doubt: it stays prepared until the decision comes
    const known = getOutcome(acc.s.outcomes, txId);
    if (known !== undefined) {
      // Settled before the last checkpoint, and the branch is still prepared: finish it. Its data went with the old segments.
      if (!replayed.has(txId)) acc.fx.push({ kind: known.outcome === 'committed' ? 'resourceCommit' : 'resourceAbort', txId, data: undefined });
      continue;
    }
    if (mayHaveForgotten(acc.s.outcomes, txId)) {
      // It may have committed long ago and been forgotten here: rolling it back could undo a commit. An operator must look.
      log(acc, 'orphan-unknown', txId, { message: 'prepared in the resource, and too old for this participant to know its outcome; left prepared' });
      continue;
    }
    rollBackOrphan(acc, txId, e.now);
    orphans++;
  }
  const gone = markBranchesGone(acc, held, said);
  let lostCommits = 0;
  for (const [txId, state] of walStates(e.snapshot, e.records)) {
    if (state !== 'committed' || held.has(txId) || said.get(txId) !== 'unknown') continue;
    reportLostCommit(acc, txId, e.now);
    lostCommits++;
  }
  log(acc, 'reconciled', undefined, { heldPrepared: held.size, orphans, branchesGone: gone, lostCommits });
}

/** A branch the resource prepared for a transaction this participant never voted on: roll it back, remember it aborted. */
function rollBackOrphan(acc: Acc, txId: TxId, now: number): void {
  const reason = 'prepared in the resource, but the participant stopped before its PREPARED record was durable; rolled back at recovery';
  acc.fx.push({ kind: 'persist', record: { type: 'ABORTED', txId, at: now, reason }, sync: true });
  acc.fx.push({ kind: 'resourceAbort', txId, data: undefined });
  remember(acc, txId, { outcome: 'aborted', at: now, reason });
  log(acc, 'orphan-rolled-back', txId, { reason });
}

/** In doubt in the WAL, but the resource no longer holds the branch: keep what it said, for when the decision comes. */
function markBranchesGone(acc: Acc, held: ReadonlySet<TxId>, said: ReadonlyMap<TxId, ResourceOutcome>): number {
  const gone = new Map<TxId, ResourceOutcome>();
  for (const tx of acc.s.txs.values()) {
    if (held.has(tx.txId)) continue;
    // No answer (a resource without outcomeOf) means no trace: the conservative reading.
    const outcome = said.get(tx.txId) ?? 'unknown';
    gone.set(tx.txId, outcome);
    log(acc, 'branch-gone', tx.txId, { resource: outcome, message: 'in doubt here, but the resource no longer holds its prepared branch' });
  }
  if (gone.size > 0) acc.s = { ...acc.s, branchesGone: PersistentMap.from(gone) };
  return gone.size;
}

/** The WAL says committed, the resource has no trace of it: the commit was lost outside the protocol. */
function reportLostCommit(acc: Acc, txId: TxId, now: number): void {
  acc.fx.push({ kind: 'persist', record: { type: 'HEURISTIC', txId, outcome: 'aborted', at: now }, sync: true });
  remember(acc, txId, { outcome: 'aborted', at: now, heuristic: 'aborted' });
  log(acc, 'heuristic-hazard', txId, {
    decision: 'committed',
    resource: 'unknown',
    message: 'the WAL says committed, but the resource has no trace of the commit: it was lost outside the protocol',
  });
}
