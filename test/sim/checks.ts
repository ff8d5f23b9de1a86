/**
 * The invariants, checked after every simulator step, and the end-of-run
 * checks after the heal.
 *
 * After every step, for each transaction something happened to:
 * - atomicity (TCConsistent): no participant durably committed it while
 *   another durably aborted it;
 * - durability against the client's view: what the client was told (ok:
 *   committed; fail: not committed) is never contradicted by a participant or
 *   by the coordinator's decision;
 * - a participant that voted yes never decides alone: its durable outcome
 *   equals the TM's decision;
 * - the TLA+ refinement: the step maps to at most STEP_DEPTH_MAX TwoPhase
 *   actions (./tla.ts).
 * And for each participant that took the step: every transaction that holds
 * locks holds all its keys, and no key is held by two.
 * (Double applies and reused transaction ids are caught where they happen.)
 *
 * An operator's heuristic decision (HEURISTIC record) exempts exactly that
 * participant's branch of that transaction from atomicity, from "never
 * decides alone" and from the client's view; the other branches are held to
 * every rule, the model sees the branch as still prepared, and when the
 * coordinator finishes the transaction it must report heuristic-mixed exactly
 * when a participant it delivered the decision to was settled the other way
 * before it acknowledged the decision (after its ack, the coordinator cannot know).
 *
 * At the end, once everything has settled: each transaction ended the same at
 * all its participants and as the client was told, and the bank's balances
 * are exactly the opening balances moved by the committed transfers (each
 * side where its participant committed).
 */
import type { BranchInput } from '../../coordinator/core/index.ts';
import type { ParticipantState } from '../../participant/core/index.ts';
import type { Account } from '../../scenarios/workloads/bank.ts';
import { describeState, findPath, mapToModel, STEP_DEPTH_MAX } from './tla.ts';
import type { Ghost, GhostTx } from './ghost.ts';
import { invariantsHold } from './model/two-phase.ts';

export interface TlaCounters {
  /** Transaction steps checked against the model (stutters included). */
  steps: number;
  /** Model actions the non-stutter steps mapped to. */
  actions: number;
}

/** Whether branch i was settled by an operator; only that branch of only that transaction is exempt. */
const byHand = (g: GhostTx, i: number): boolean => (g.heuristic & (1 << i)) !== 0;

/** The participants' states, less the branches an operator settled by hand. */
const protocolRm = (g: GhostTx): (string | undefined)[] => g.rm.map((s, i) => (byHand(g, i) ? undefined : s));

export function checkTx(ghost: Ghost, g: GhostTx, tla: TlaCounters | undefined): void {
  const rm = protocolRm(g);
  const committed = rm.includes('committed');
  const aborted = rm.includes('aborted');
  const who = (s: string) => g.branches.filter((_, i) => rm[i] === s).join(',');
  if (committed && aborted) {
    ghost.violation('atomicity', `${g.txId} is committed at ${who('committed')} and aborted at ${who('aborted')}`, g.txId);
  }
  const c = g.client;
  if (c?.result === 'ok' && (aborted || g.tm === 'aborted')) {
    ghost.violation('durability', `the client was told ${g.txId} committed, but ${aborted ? `${who('aborted')} aborted it` : `its fate is abort (${g.tmWhy ?? '?'})`}`, g.txId);
  }
  if (c?.result === 'fail' && (committed || g.tm === 'committed')) {
    ghost.violation('durability', `the client was told ${g.txId} ${c.outcome ?? 'failed'}, but ${committed ? `${who('committed')} committed it` : `its decision is commit (${g.tmWhy ?? '?'})`}`, g.txId);
  }
  if (!g.onePhase) {
    g.branches.forEach((p, i) => {
      if ((g.everPrepared & (1 << i)) === 0 || byHand(g, i)) return;
      const rm = g.rm[i];
      if ((rm === 'committed' || rm === 'aborted') && g.tm !== rm) {
        ghost.violation('decided-alone', `${p} voted yes on ${g.txId} and ${rm} it, but the decision is ${g.tm}`, g.txId);
      }
    });
  }
  if (tla) checkModelStep(ghost, g, tla);
}

/** The step, seen through the refinement mapping, is a sequence of TwoPhase actions. */
function checkModelStep(ghost: Ghost, g: GhostTx, tla: TlaCounters): void {
  const to = mapToModel(g);
  tla.steps++;
  const path = findPath(g.model, to);
  if (path === undefined) {
    ghost.violation(
      'tla',
      `${g.txId}: no sequence of at most ${STEP_DEPTH_MAX} TwoPhase actions leads from ${describeState(g.model)} to ${describeState(to)}`,
      g.txId,
    );
  } else {
    tla.actions += path.length;
    if (path.length > 0) g.model = to;
  }
  if (!invariantsHold(to)) ghost.violation('tla-invariant', `${g.txId}: ${describeState(to)} breaks TCConsistent or the TM's commit rule`, g.txId);
}

/** Strict two-phase locking as the lock table shows it. */
export function checkLocks(ghost: Ghost, node: string, s: ParticipantState): void {
  const holders = new Map<string, string>();
  for (const tx of s.txs.values()) {
    if (tx.phase === 'waiting') continue;
    for (const k of tx.keys) {
      const other = holders.get(k);
      if (other !== undefined && other !== tx.txId) ghost.violation('lock', `${node}: key ${k} is held by ${other} and ${tx.txId} at once`, tx.txId);
      holders.set(k, tx.txId);
      const holder = s.locks.get(k);
      if (holder !== tx.txId) ghost.violation('lock', `${node}: ${tx.txId} is ${tx.phase} without its lock on ${k} (held by ${holder ?? 'nobody'})`, tx.txId);
    }
  }
  for (const [k, holder] of s.locks) {
    const tx = s.txs.get(holder);
    if (!tx || tx.phase === 'waiting') ghost.violation('lock', `${node}: key ${k} is locked by ${holder}, which holds no locks`, holder);
  }
}

/** Every transaction ended the same at all its participants, and as the client was told. */
export function checkOutcomes(ghost: Ghost): void {
  for (const g of ghost.txs.values()) {
    const rm = protocolRm(g).filter((s) => s !== undefined);
    const all = rm.every((s) => s === 'committed');
    const none = !rm.includes('committed');
    const ended = g.branches.map((b, i) => `${b}=${g.rm[i]}`).join(' ');
    if (!all && !none) ghost.violation('atomicity', `${g.txId} ended committed at only some participants: ${ended}`, g.txId);
    if (g.client?.result === 'ok' && !all) ghost.violation('durability', `the client was told ${g.txId} committed, but it ended ${ended}`, g.txId);
    if (g.client?.result === 'fail' && !none) ghost.violation('durability', `the client was told ${g.txId} ${g.client.outcome ?? 'failed'}, but it ended ${ended}`, g.txId);
  }
}

/**
 * The coordinator finished a transaction: it reports heuristic-mixed exactly when a
 * participant it delivered the decision to was settled by hand the other way.
 */
export function checkHeuristicReport(ghost: Ghost, g: GhostTx, outcome: 'committed' | 'aborted', mixed: boolean, delivered: readonly string[]): void {
  if (mixed) g.reportedMixed = true;
  const contrary = g.branches.filter((p, i) => byHand(g, i) && g.heuristicOutcome[i] !== outcome && delivered.includes(p));
  // One settled by hand after it acknowledged the decision may or may not be reported: its ack may have come first.
  const owed = contrary.filter((p) => (g.heuristicAfterAck & (1 << g.branches.indexOf(p))) === 0);
  if (owed.length > 0 && !mixed) {
    ghost.violation('heuristic-report', `${g.txId} was ${outcome}, settled by hand the other way at ${owed.join(',')}, but the coordinator does not report heuristic-mixed`, g.txId);
  }
  if (contrary.length === 0 && mixed) {
    ghost.violation('heuristic-report', `the coordinator reports ${g.txId} heuristic-mixed, but no participant it told was settled by hand against ${outcome}`, g.txId);
  }
}

export interface Transfer {
  readonly from: Account;
  readonly to: Account;
  readonly amount: number;
  readonly branches: readonly BranchInput[];
}

/** The balances are exactly the opening balances moved by the committed transfers, and none is negative. */
export function checkBank(
  ghost: Ghost,
  accounts: readonly Account[],
  openingBalance: number,
  transfers: readonly Transfer[],
  balanceOf: (a: Account) => unknown,
): void {
  const expected = new Map<string, number>(accounts.map((a) => [a.key, openingBalance]));
  for (const g of ghost.txs.values()) {
    const t = g.index >= 0 ? transfers[g.index] : undefined;
    if (!t) continue;
    // Each side moves where its participant committed: all or none of them, as checkOutcomes
    // demands, except where an operator settled a branch by hand and only that side moved.
    const at = (participant: string): string | undefined => g.rm[g.branches.indexOf(participant)];
    if (at(t.from.participant) === 'committed') expected.set(t.from.key, (expected.get(t.from.key) ?? 0) - t.amount);
    if (at(t.to.participant) === 'committed') expected.set(t.to.key, (expected.get(t.to.key) ?? 0) + t.amount);
  }
  for (const a of accounts) {
    const got = balanceOf(a);
    const want = expected.get(a.key);
    if (got !== want) ghost.violation('bank', `${a.key} at ${a.participant} holds ${String(got)}, but the committed transfers leave ${String(want)}`);
    if (typeof got === 'number' && got < 0) ghost.violation('bank', `${a.key} went negative: ${got}`);
  }
}
