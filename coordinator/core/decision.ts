/**
 * The decision and phase 2, shared by the live protocol (step.ts) and recovery
 * (recovery.ts): write the DECISION, deliver it until every participant that may
 * be prepared has acknowledged, write END, and answer whoever waits.
 */
import type { Outcome } from '../../shared/types.ts';
import type { Draft } from './draft.ts';
import { allAcked, deciding, finalPhase, outcomeReport, refOf, updateBranch } from './state.ts';
import type { BranchState, Tx } from './types.ts';

// ---- Timer ids: one namespace per transaction -------------------------------------------

export type TimerKind = 'timeout' | 'prepare' | 'reply' | 'resend';

export const timerId = (txId: string, kind: TimerKind, participant?: string): string =>
  participant === undefined ? `${txId}/${kind}` : `${txId}/${kind}/${participant}`;

export function parseTimerId(id: string): { txId: string; kind: TimerKind; participant?: string } | undefined {
  const m = /^([^/]+)\/(timeout|prepare|reply|resend)(?:\/(.+))?$/.exec(id);
  if (!m || m[1] === undefined) return undefined;
  return { txId: m[1], kind: m[2] as TimerKind, ...(m[3] === undefined ? {} : { participant: m[3] }) };
}

// ---- The decision -----------------------------------------------------------------------

/**
 * Decides and starts phase 2. Commit reaches the yes voters; abort reaches every
 * branch that may be prepared (voted yes, or has not answered). The DECISION is
 * emitted before any send or reply, and forced where the variant needs it.
 */
export function decide(d: Draft, tx: Tx, outcome: Outcome, reason?: string): void {
  if (tx.phase === 'preparing' && !tx.inDoubt) d.emit({ kind: 'cancelTimer', id: timerId(tx.txId, 'prepare') });
  const branches = tx.branches.map((b) => ({
    ...b,
    target: outcome === 'committed' ? b.vote === 'yes' : b.vote === undefined || b.vote === 'yes',
  }));
  const decided: Tx = {
    ...tx,
    branches,
    outcome,
    phase: deciding(outcome),
    inDoubt: false,
    ...(reason === undefined ? {} : { reason }),
  };
  const targets = branches.filter((b) => b.target);
  if (targets.length === 0) {
    // Nobody holds anything for this transaction (all read-only, or every voter said no).
    d.log('decision', tx.txId, { outcome, targets: 0 });
    return complete(d, decided);
  }
  const sync = outcome === 'committed' || d.config.protocol !== 'presumed-abort';
  d.emit({ kind: 'crashPoint', point: 'coordinator.before-decision-logged' });
  d.emit({ kind: 'persist', record: { type: 'DECISION', txId: tx.txId, outcome, participants: targets.map(refOf) }, sync });
  d.emit({ kind: 'crashPoint', point: 'coordinator.after-decision-logged' });
  d.log('decision.logged', tx.txId, { outcome, forced: sync, ...(reason === undefined ? {} : { reason }) });
  for (const b of targets) sendDecision(d, decided, b);
  const waiting = decided.waiters.length > 0;
  if (waiting) d.emit({ kind: 'setTimer', id: timerId(tx.txId, 'reply'), ms: d.config.replyWaitMs });
  d.put({ ...decided, logged: true, replyReleased: !waiting });
}

export function sendDecision(d: Draft, tx: Tx, b: BranchState): void {
  const type = tx.outcome === 'committed' ? 'commit' : 'abort';
  d.emit({ kind: 'send', to: b.participant, url: b.url, message: { type, body: { txId: tx.txId } } });
  d.log('decision.sent', tx.txId, { participant: b.participant, decision: type, ...(b.attempts > 0 ? { attempt: b.attempts } : {}) });
}

/** A participant acknowledged the decision; a heuristic outcome that disagrees makes the result mixed. */
export function onAck(d: Draft, tx: Tx, b: BranchState, heuristic: Outcome | undefined): void {
  if (tx.branches.every((x) => !x.target || !x.acked)) {
    d.emit({ kind: 'crashPoint', point: tx.outcome === 'committed' ? 'coordinator.after-first-commit-sent' : 'coordinator.after-first-abort-sent' });
  }
  if (b.attempts > 0) d.emit({ kind: 'cancelTimer', id: timerId(tx.txId, 'resend', b.participant) });
  d.log('ack', tx.txId, { participant: b.participant, ...(heuristic ? { heuristic } : {}) });
  const mixed = heuristic !== undefined && heuristic !== tx.outcome;
  if (mixed) d.log('heuristic.mixed', tx.txId, { participant: b.participant, decision: tx.outcome, heuristic });
  const acked = updateBranch({ ...tx, heuristicMixed: tx.heuristicMixed || mixed }, b.participant, {
    acked: true,
    ...(heuristic ? { heuristic } : {}),
  });
  if (allAcked(acked)) return complete(d, acked);
  d.put(acked);
}

/** Every target acknowledged: write END if a record must be closed, and finish. */
export function complete(d: Draft, tx: Tx): void {
  if (tx.logged || tx.collecting) {
    d.emit({ kind: 'crashPoint', point: 'coordinator.before-end-logged' });
    d.emit({ kind: 'persist', record: { type: 'END', txId: tx.txId }, sync: false });
    d.log('end.logged', tx.txId, { forced: false });
  }
  if (tx.logged && !tx.replyReleased) d.emit({ kind: 'cancelTimer', id: timerId(tx.txId, 'reply') });
  settle(d, { ...tx, phase: finalPhase(tx.outcome ?? 'aborted') });
}

/** Finishes a transaction: answers whoever waits for it and moves it to the history. */
export function settle(d: Draft, tx: Tx): void {
  for (const requestId of tx.waiters) d.reply(requestId, 200, outcomeReport(tx));
  d.retire({ ...tx, waiters: [], replyReleased: true });
}
