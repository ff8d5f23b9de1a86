/**
 * The transitions that end a transaction here: commit or abort a prepared
 * one, abort one that has not voted yet, and leave a tombstone for one never
 * seen. Each writes its record before anything it causes is visible: the
 * driver runs every persist before the effects that follow it.
 */
import type { Outcome, TxId } from '../../shared/types.ts';
import {
  type Acc,
  crashPoint,
  deleteTx,
  inquiryTimerId,
  lockTimerId,
  log,
  admitWaiters,
  releaseAndAdmit,
  remember,
  reply,
  setTx,
} from './state.ts';
import type { PendingTx, PreparedTx, RequestId } from './types.ts';

export const decisionBody = (txId: TxId, state: Outcome, heuristic?: Outcome) =>
  heuristic === undefined ? { txId, state } : { txId, state, heuristic };

/** COMMITTED is forced before the resource applies it and before anyone hears of it. */
export function commitPrepared(acc: Acc, tx: PreparedTx, now: number, via: string, requestId?: RequestId): void {
  if (settleAgainstResource(acc, tx, 'committed', now, via, requestId)) return;
  acc.fx.push({ kind: 'cancelTimer', id: inquiryTimerId(tx.txId) });
  crashPoint(acc, 'participant.before-commit-logged');
  acc.fx.push({ kind: 'persist', record: { type: 'COMMITTED', txId: tx.txId, at: now }, sync: true });
  crashPoint(acc, 'participant.after-commit-logged');
  acc.fx.push({ kind: 'resourceCommit', txId: tx.txId, data: tx.data, keys: tx.keys });
  deleteTx(acc, tx.txId);
  remember(acc, tx.txId, { outcome: 'committed', at: now });
  if (requestId !== undefined) reply(acc, requestId, 200, decisionBody(tx.txId, 'committed'), tx.txId);
  log(acc, 'committed', tx.txId, { via });
  releaseAndAdmit(acc, tx.txId, tx.keys);
}

/**
 * ABORTED need not be forced under presumed abort: if it is lost, an inquiry
 * learns "aborted" again. Under presumed commit it must be: the coordinator
 * forgets the abort once acked, and would then answer an inquiry "committed".
 */
export function abortPrepared(acc: Acc, tx: PreparedTx, now: number, via: string, requestId?: RequestId): void {
  if (settleAgainstResource(acc, tx, 'aborted', now, via, requestId)) return;
  acc.fx.push({ kind: 'cancelTimer', id: inquiryTimerId(tx.txId) });
  crashPoint(acc, 'participant.before-abort-logged');
  acc.fx.push({ kind: 'persist', record: { type: 'ABORTED', txId: tx.txId, at: now }, sync: tx.abortForced === true });
  crashPoint(acc, 'participant.after-abort-logged');
  acc.fx.push({ kind: 'resourceAbort', txId: tx.txId, data: tx.data, keys: tx.keys });
  deleteTx(acc, tx.txId);
  remember(acc, tx.txId, { outcome: 'aborted', at: now });
  if (requestId !== undefined) reply(acc, requestId, 200, decisionBody(tx.txId, 'aborted'), tx.txId);
  log(acc, 'aborted', tx.txId, { via });
  releaseAndAdmit(acc, tx.txId, tx.keys);
}

export function settlePrepared(acc: Acc, tx: PreparedTx, outcome: Outcome, now: number, via: string): void {
  if (outcome === 'committed') commitPrepared(acc, tx, now, via);
  else abortPrepared(acc, tx, now, via);
}

/**
 * An in-doubt transaction whose branch the resource no longer held at recovery
 * (./reconcile.ts) already has an outcome in the resource: committed, or gone
 * without trace, which is as good as rolled back. When `decided` disagrees, the
 * resource cannot be made to agree, so what it did is recorded and reported as
 * heuristic (HEURISTIC, forced, answered with `heuristic`), the way an
 * operator's decision is; the coordinator then reports heuristic-mixed. No
 * resource call: there is no branch left to call. False when they agree (or
 * the branch is held), and the caller settles it the ordinary way.
 */
export function settleAgainstResource(acc: Acc, tx: PreparedTx, decided: Outcome, now: number, via: string, requestId?: RequestId): boolean {
  const gone = acc.s.branchesGone?.get(tx.txId);
  if (gone === undefined) return false;
  const actual: Outcome = gone === 'committed' ? 'committed' : 'aborted';
  if (actual === decided) return false;
  acc.fx.push({ kind: 'cancelTimer', id: inquiryTimerId(tx.txId) });
  acc.fx.push({ kind: 'persist', record: { type: 'HEURISTIC', txId: tx.txId, outcome: actual, at: now }, sync: true });
  deleteTx(acc, tx.txId);
  remember(acc, tx.txId, { outcome: actual, at: now, heuristic: actual });
  if (requestId !== undefined) reply(acc, requestId, 200, decisionBody(tx.txId, actual, actual), tx.txId);
  log(acc, 'heuristic-hazard', tx.txId, { decision: decided, resource: gone, via, message: `the decision is ${decided}, but the resource's branch is ${gone === 'committed' ? 'committed' : 'gone without trace'}` });
  releaseAndAdmit(acc, tx.txId, tx.keys);
  return true;
}

/**
 * Aborts a transaction that has not voted: its prepare requests hear NO with
 * `reason`. A waiter simply leaves the queue. One whose resource is still
 * preparing keeps its locks until the resource answers (`cancelled`), so the
 * resource never sees two transactions on one key at once.
 *
 * `sync` is set when the record is a promise to a peer never to vote yes.
 */
export function abortPending(
  acc: Acc,
  tx: PendingTx,
  reason: string,
  now: number,
  options: { sync: boolean; resourceAnswered: boolean },
): void {
  crashPoint(acc, 'participant.before-abort-logged');
  // Under presumed commit a NO must survive a crash too: a duplicated prepare arriving after a
  // lost ABORTED would vote yes, and the coordinator, having forgotten the abort, would say commit.
  const sync = options.sync || tx.abortForced === true;
  acc.fx.push({ kind: 'persist', record: { type: 'ABORTED', txId: tx.txId, at: now, reason }, sync });
  crashPoint(acc, 'participant.after-abort-logged');
  remember(acc, tx.txId, { outcome: 'aborted', at: now, reason });
  for (const id of tx.requestIds) reply(acc, id, 200, { vote: 'no', reason });
  log(acc, 'vote-no', tx.txId, { reason });
  if (tx.phase === 'waiting') {
    acc.fx.push({ kind: 'cancelTimer', id: lockTimerId(tx.txId) });
    deleteTx(acc, tx.txId);
    // It may have been the earlier waiter that held others back.
    admitWaiters(acc);
  } else if (options.resourceAnswered) {
    deleteTx(acc, tx.txId);
    releaseAndAdmit(acc, tx.txId, tx.keys);
  } else {
    setTx(acc, { ...tx, cancelled: true, requestIds: [] });
  }
}

/** An abort (or a peer's inquiry) for a transaction never seen: the late PREPARE will vote no. */
export function tombstone(acc: Acc, txId: TxId, reason: string, now: number, sync: boolean): void {
  crashPoint(acc, 'participant.before-abort-logged');
  acc.fx.push({ kind: 'persist', record: { type: 'ABORTED', txId, at: now, reason }, sync });
  crashPoint(acc, 'participant.after-abort-logged');
  remember(acc, txId, { outcome: 'aborted', at: now, reason });
  log(acc, 'tombstone', txId, { reason });
}
