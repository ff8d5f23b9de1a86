/**
 * The participant protocol as one pure function: `step(state, event)` returns
 * the next state and the effects, as data. See ./index.ts for the overview.
 */
import { backoffMs, jitteredMs, type StepResult, type TimerFired } from '../../shared/core.ts';
import { trimUrl, type Outcome } from '../../shared/types.ts';
import { getOutcome, mayHaveForgotten } from './outcomes.ts';
import { getTx, listTx } from './queries.ts';
import { reconcile } from './reconcile.ts';
import { inDoubtFrom, recover, withoutType } from './recovery.ts';
import { abortPending, abortPrepared, commitPrepared, decisionBody, settleAgainstResource, settlePrepared, tombstone } from './settle.ts';
import {
  type Acc,
  crashPoint,
  deleteTx,
  inquiryTimerId,
  lockConflict,
  lockingCount,
  lockTimerId,
  log,
  releaseAndAdmit,
  remember,
  reply,
  replyError,
  setTx,
  startPrepare,
} from './state.ts';
import type {
  DecisionEvent,
  HeuristicEvent,
  InquiryFailedEvent,
  OutcomeEntry,
  OutcomeLearnedEvent,
  ParticipantEffect,
  ParticipantState,
  ParticipantEvent,
  PeerAnsweredEvent,
  PeerInquiryEvent,
  PendingTx,
  PrepareEvent,
  PreparedRecord,
  PreparedTx,
  ResourcePreparedEvent,
} from './types.ts';

export function step(state: ParticipantState, event: ParticipantEvent): StepResult<ParticipantState, ParticipantEffect> {
  const acc: Acc = { s: state, fx: [] };
  switch (event.type) {
    case 'prepare':
      onPrepare(acc, event);
      break;
    case 'resourcePrepared':
      onResourcePrepared(acc, event);
      break;
    case 'commit':
      onCommit(acc, event);
      break;
    case 'abort':
      onAbort(acc, event);
      break;
    case 'timer':
      onTimer(acc, event);
      break;
    case 'outcomeLearned':
      onOutcomeLearned(acc, event);
      break;
    case 'inquiryFailed':
      onInquiryFailed(acc, event);
      break;
    case 'peerAnswered':
      onPeerAnswered(acc, event);
      break;
    case 'peerInquiry':
      onPeerInquiry(acc, event);
      break;
    case 'heuristic':
      onHeuristic(acc, event);
      break;
    case 'getTx':
      reply(acc, event.requestId, 200, getTx(acc.s, event.txId), event.txId);
      break;
    case 'listTx':
      reply(acc, event.requestId, 200, listTx(acc.s, event.now));
      break;
    case 'recover':
      recover(acc, event);
      // Then, for a resource that keeps prepared work of its own, settle what it holds against the WAL.
      reconcile(acc, event);
      break;
  }
  return { state: acc.s, effects: acc.fx };
}

// ---- phase 1 ------------------------------------------------------------------------

/** The answer a prepare gets once the transaction has settled here: the same vote as before. */
function settledVote(e: PrepareEvent, known: OutcomeEntry): unknown {
  // A heuristic outcome exists only for a transaction that voted yes.
  if (known.outcome === 'committed' || known.heuristic !== undefined) {
    return e.onePhase ? { vote: 'yes', state: known.outcome } : { vote: 'yes' };
  }
  return { vote: 'no', reason: known.reason ?? `${e.txId} is already aborted here` };
}

/**
 * A prepare for a txId seen before is a retry only when it asks for the same work. Otherwise
 * (two coordinator names for one participant, a reused id) answering with the earlier vote
 * would say YES to work never prepared, so it is refused. Absent digests (records older than
 * the digest, tests that omit it) cannot be compared and count as the same.
 */
function otherWork(e: PrepareEvent, earlier: string | undefined): boolean {
  return e.opsDigest !== undefined && earlier !== undefined && e.opsDigest !== earlier;
}

function refuseOtherWork(acc: Acc, e: PrepareEvent): void {
  log(acc, 'protocol-violation', e.txId, { message: 'prepare with other ops than the one already prepared here' });
  replyError(acc, e.requestId, 'conflict', `${e.txId} was already prepared here with different ops; a prepare must not reuse a txId for other work.`);
}

function onPrepare(acc: Acc, e: PrepareEvent): void {
  const { config } = acc.s;
  const known = getOutcome(acc.s.outcomes, e.txId);
  if (known !== undefined) {
    if (otherWork(e, known.opsDigest)) return refuseOtherWork(acc, e);
    log(acc, 'duplicate-prepare', e.txId, { outcome: known.outcome });
    return reply(acc, e.requestId, 200, settledVote(e, known));
  }
  const live = acc.s.txs.get(e.txId);
  if (live !== undefined) {
    if (otherWork(e, live.opsDigest)) return refuseOtherWork(acc, e);
    if (live.phase === 'prepared') return reply(acc, e.requestId, 200, { vote: 'yes' });
    // A retry while the vote is still being made: it gets the same vote when it is made.
    if (live.requestIds.length >= config.prepareRequestsPerTxMax) {
      return replyError(acc, e.requestId, 'unavailable', `Too many concurrent prepares of ${e.txId} (max ${config.prepareRequestsPerTxMax}).`);
    }
    return setTx(acc, { ...live, requestIds: [...live.requestIds, e.requestId] });
  }
  if (mayHaveForgotten(acc.s.outcomes, e.txId)) {
    // It may have settled here long ago (perhaps as a promise to a peer never to vote yes): only NO is safe.
    log(acc, 'prepare-too-old', e.txId);
    return reply(acc, e.requestId, 200, { vote: 'no', reason: `${e.txId} is older than what this participant still remembers` });
  }
  if (e.ops.length > config.opsPerTxMax) {
    return replyError(acc, e.requestId, 'bad_request', `Expected at most ${config.opsPerTxMax} ops per transaction, got ${e.ops.length}.`);
  }
  const keys = [...new Set(config.keysOf(e.ops))];
  if (keys.length > config.keysPerTxMax) {
    return replyError(acc, e.requestId, 'bad_request', `Expected at most ${config.keysPerTxMax} keys per transaction, got ${keys.length}.`);
  }
  const tx: PendingTx = {
    phase: 'waiting',
    txId: e.txId,
    coordinator: e.coordinator,
    participants: e.participants,
    ops: e.ops,
    keys,
    onePhase: e.onePhase,
    ...(e.abortForced === true ? { abortForced: true } : {}),
    ...(e.opsDigest !== undefined && { opsDigest: e.opsDigest }),
    requestIds: [e.requestId],
    arrivedAt: e.now,
    cancelled: false,
  };
  const conflict = lockConflict(acc.s, e.txId, keys) ?? capacityConflict(acc.s);
  if (conflict === undefined) return startPrepare(acc, tx);
  if (config.lockWaitMs === 0) return abortPending(acc, tx, conflict, e.now, { sync: false, resourceAnswered: false });
  if (acc.s.waiting.length >= config.waitingPreparesMax) {
    // Refused before it entered the table: nothing is held, so nothing is logged or remembered.
    return reply(acc, e.requestId, 200, { vote: 'no', reason: `${conflict}, and ${config.waitingPreparesMax} prepares are already waiting` });
  }
  setTx(acc, tx);
  acc.s = { ...acc.s, waiting: [...acc.s.waiting, e.txId] };
  acc.fx.push({ kind: 'setTimer', id: lockTimerId(e.txId), ms: config.lockWaitMs });
  log(acc, 'lock-wait', e.txId, { reason: conflict, lockWaitMs: config.lockWaitMs });
}

function capacityConflict(s: ParticipantState): string | undefined {
  return lockingCount(s) >= s.config.lockingTxsMax ? `${s.config.lockingTxsMax} transactions already hold locks here` : undefined;
}

function onResourcePrepared(acc: Acc, e: ResourcePreparedEvent): void {
  const tx = acc.s.txs.get(e.txId);
  if (tx === undefined || tx.phase !== 'preparing') {
    return log(acc, 'stale-resource-answer', e.txId, { vote: e.vote });
  }
  if (tx.cancelled) {
    // Aborted while the resource worked; the vote was already NO. Let the resource forget, then free the keys.
    deleteTx(acc, tx.txId);
    if (e.vote === 'yes') acc.fx.push({ kind: 'resourceAbort', txId: tx.txId, data: e.data, keys: tx.keys });
    return releaseAndAdmit(acc, tx.txId, tx.keys);
  }
  if (e.vote === 'no') {
    return abortPending(acc, tx, e.reason ?? 'the resource voted no', e.now, { sync: false, resourceAnswered: true });
  }
  if (e.vote === 'read-only') {
    // Nothing to commit or undo here, so nothing is logged and phase 2 skips this participant.
    deleteTx(acc, tx.txId);
    for (const id of tx.requestIds) reply(acc, id, 200, { vote: 'read-only' });
    log(acc, 'vote-read-only', tx.txId);
    return releaseAndAdmit(acc, tx.txId, tx.keys);
  }
  // The resource holds prepared work now (for a database, a prepared transaction) that no record
  // names yet: a crash here leaves an orphan, which recovery rolls back (./reconcile.ts).
  crashPoint(acc, 'participant.after-resource-prepared');
  if (tx.onePhase) return commitOnePhase(acc, tx, e);
  const record: PreparedRecord = {
    type: 'PREPARED',
    txId: tx.txId,
    coordinator: tx.coordinator,
    participants: tx.participants,
    keys: tx.keys,
    data: e.data,
    at: e.now,
    ...(tx.abortForced === true ? { abortForced: true as const } : {}),
    ...(tx.opsDigest !== undefined && { opsDigest: tx.opsDigest }),
  };
  acc.fx.push({ kind: 'persist', record, sync: true });
  crashPoint(acc, 'participant.after-prepare-logged');
  // The in-doubt state is the record itself, moved whole as recovery moves it, so no field is lost on the way.
  setTx(acc, inDoubtFrom(withoutType(record), { inquiries: 0, inquiryInFlight: false, peers: {} }));
  for (const id of tx.requestIds) reply(acc, id, 200, { vote: 'yes' });
  // From here on this participant cannot decide alone; if no decision comes, it goes and asks.
  acc.fx.push({ kind: 'setTimer', id: inquiryTimerId(tx.txId), ms: acc.s.config.decisionWaitMs });
  log(acc, 'vote-yes', tx.txId, { keys: tx.keys });
}

/** One-phase: the only branch, so this participant's yes is the decision. */
function commitOnePhase(acc: Acc, tx: PendingTx, e: ResourcePreparedEvent): void {
  crashPoint(acc, 'participant.before-commit-logged');
  const digest = tx.opsDigest !== undefined ? { opsDigest: tx.opsDigest } : {};
  acc.fx.push({ kind: 'persist', record: { type: 'COMMITTED', txId: tx.txId, at: e.now, data: e.data, onePhase: true, ...digest }, sync: true });
  crashPoint(acc, 'participant.after-commit-logged');
  acc.fx.push({ kind: 'resourceCommit', txId: tx.txId, data: e.data, keys: tx.keys });
  deleteTx(acc, tx.txId);
  remember(acc, tx.txId, { outcome: 'committed', at: e.now, ...digest });
  for (const id of tx.requestIds) reply(acc, id, 200, { vote: 'yes', state: 'committed' }, tx.txId);
  log(acc, 'committed', tx.txId, { via: 'one-phase' });
  releaseAndAdmit(acc, tx.txId, tx.keys);
}

// ---- phase 2 ------------------------------------------------------------------------

function onCommit(acc: Acc, e: DecisionEvent): void {
  const known = getOutcome(acc.s.outcomes, e.txId);
  if (known !== undefined) return answerSettled(acc, e, known);
  const tx = acc.s.txs.get(e.txId);
  if (tx === undefined) {
    return replyError(acc, e.requestId, 'not_found', `No prepared transaction ${e.txId} here (never prepared, or long forgotten).`);
  }
  if (tx.phase !== 'prepared') {
    log(acc, 'protocol-violation', e.txId, { message: 'commit before this participant voted yes' });
    return replyError(acc, e.requestId, 'conflict', `${e.txId} has not voted yes here, so it cannot be committed.`);
  }
  commitPrepared(acc, tx, e.now, 'coordinator', e.requestId);
}

function onAbort(acc: Acc, e: DecisionEvent): void {
  const known = getOutcome(acc.s.outcomes, e.txId);
  if (known !== undefined) return answerSettled(acc, e, known);
  const tx = acc.s.txs.get(e.txId);
  if (tx === undefined) {
    // Forced: a late or duplicated prepare must still find it after a crash. Under presumed
    // abort losing it would be harmless, but under presumed commit the coordinator forgets the
    // abort once acked and would answer this participant's later inquiry "committed". The
    // abort carries no presumption, and an abort before its prepare is rare, so always force.
    tombstone(acc, e.txId, 'aborted before this participant was asked to prepare', e.now, true);
    return reply(acc, e.requestId, 200, decisionBody(e.txId, 'aborted'), e.txId);
  }
  if (tx.phase === 'prepared') return abortPrepared(acc, tx, e.now, 'coordinator', e.requestId);
  abortPending(acc, tx, 'aborted by the coordinator before the vote', e.now, { sync: false, resourceAnswered: false });
  reply(acc, e.requestId, 200, decisionBody(e.txId, 'aborted'), e.txId);
}

/** A duplicate decision gets the same answer; a contrary one is refused, and the state never flips. */
function answerSettled(acc: Acc, e: DecisionEvent, known: OutcomeEntry): void {
  const asked: Outcome = e.type === 'commit' ? 'committed' : 'aborted';
  if (known.heuristic !== undefined) {
    // Reported, not refused: the coordinator needs the answer to report heuristic-mixed.
    if (known.heuristic !== asked) log(acc, 'heuristic-mismatch', e.txId, { decision: asked, heuristic: known.heuristic });
    return reply(acc, e.requestId, 200, decisionBody(e.txId, known.outcome, known.heuristic), e.txId);
  }
  // A duplicate: its answer waits for the first one's apply, if that is still in flight.
  if (known.outcome === asked) return reply(acc, e.requestId, 200, decisionBody(e.txId, known.outcome), e.txId);
  log(acc, 'protocol-violation', e.txId, { message: `${e.type} for a transaction ${known.outcome} here` });
  replyError(acc, e.requestId, 'conflict', `${e.txId} is ${known.outcome} here; refusing to ${e.type} it.`);
}

// ---- timers ---------------------------------------------------------------------------

function onTimer(acc: Acc, e: TimerFired): void {
  const sep = e.id.indexOf(':');
  const kind = e.id.slice(0, sep);
  const tx = acc.s.txs.get(e.id.slice(sep + 1) as PreparedTx['txId']);
  if (kind === 'lock' && tx?.phase === 'waiting') {
    const reason = lockConflict(acc.s, tx.txId, tx.keys) ?? capacityConflict(acc.s) ?? 'lock wait timed out';
    return abortPending(acc, tx, reason, e.now, { sync: false, resourceAnswered: false });
  }
  if (kind === 'inquire' && tx?.phase === 'prepared' && !tx.inquiryInFlight) return inquire(acc, tx);
}

function inquire(acc: Acc, tx: PreparedTx): void {
  setTx(acc, { ...tx, inquiries: tx.inquiries + 1, inquiryInFlight: true });
  acc.fx.push({ kind: 'inquire', txId: tx.txId, coordinator: tx.coordinator });
  log(acc, 'inquire', tx.txId, { attempt: tx.inquiries + 1, coordinator: tx.coordinator });
}

// ---- termination: the coordinator's answer, then the peers' -------------------------

function onOutcomeLearned(acc: Acc, e: OutcomeLearnedEvent): void {
  const tx = acc.s.txs.get(e.txId);
  if (tx?.phase !== 'prepared') return log(acc, 'stale-outcome', e.txId, { outcome: e.outcome });
  settlePrepared(acc, tx, e.outcome, e.now, 'inquiry');
}

function onInquiryFailed(acc: Acc, e: InquiryFailedEvent): void {
  const tx = acc.s.txs.get(e.txId);
  if (tx?.phase !== 'prepared') return;
  const { inquiryBackoffBaseMs, inquiryBackoffMaxMs } = acc.s.config;
  const waitMs = jitteredMs(backoffMs(Math.max(0, tx.inquiries - 1), inquiryBackoffBaseMs, inquiryBackoffMaxMs), `${tx.txId}#${tx.inquiries}`);
  setTx(acc, { ...tx, inquiryInFlight: false });
  acc.fx.push({ kind: 'setTimer', id: inquiryTimerId(tx.txId), ms: waitMs });
  log(acc, 'inquiry-failed', tx.txId, { reason: e.reason, retryInMs: waitMs });
  // A live coordinator that has not decided will tell us; only its silence sends us to the peers.
  if (!e.coordinatorReachable) askPeers(acc, tx.txId, e.now);
}

/**
 * Asks every peer but those still to answer the last round, and those that said "prepared too"
 * less than `preparedPeerReaskMs` ago: such a peer learns the outcome from the coordinator, an operator
 * or a peer this one asks too, so it is asked again after the interval, not every round (see the config).
 */
function askPeers(acc: Acc, txId: PreparedTx['txId'], now: number): void {
  const tx = acc.s.txs.get(txId);
  if (tx?.phase !== 'prepared') return;
  const self = acc.s.config.selfUrl;
  const peerUrls = [...new Set(tx.participants.map(trimUrl))].filter((u) => u !== self);
  if (peerUrls.length === 0) return block(acc, tx, 'the coordinator is unreachable and there is no peer to ask');
  const reaskPrepared = tx.preparedPeersAskedAt === undefined || now - tx.preparedPeersAskedAt >= acc.s.config.preparedPeerReaskMs;
  const peers = { ...tx.peers };
  let asked = false;
  for (const peerUrl of peerUrls) {
    if (peers[peerUrl] === 'asked') continue; // still waiting for its answer from the last round
    if (peers[peerUrl] === 'prepared' && !reaskPrepared) continue;
    peers[peerUrl] = 'asked';
    acc.fx.push({ kind: 'askPeer', txId, peerUrl });
    asked = true;
  }
  if (!asked) return;
  setTx(acc, { ...tx, peers, ...(reaskPrepared && { preparedPeersAskedAt: now }) });
}

function onPeerAnswered(acc: Acc, e: PeerAnsweredEvent): void {
  const tx = acc.s.txs.get(e.txId);
  if (tx?.phase !== 'prepared') return;
  const peerUrl = trimUrl(e.peerUrl);
  if ((e.answer === 'committed' || e.answer === 'aborted') && e.heuristic !== true) {
    return settlePrepared(acc, tx, e.answer, e.now, `peer ${peerUrl}`);
  }
  // A heuristic answer is an operator's guess, not the decision: no better than "prepared".
  const peers = { ...tx.peers, [peerUrl]: e.answer === 'unreachable' ? 'unreachable' : 'prepared' } as const;
  const next: PreparedTx = { ...tx, peers };
  setTx(acc, next);
  const states = Object.values(peers);
  if (states.length > 0 && states.every((p) => p === 'prepared')) {
    block(acc, next, 'every peer is prepared too: only the coordinator knows the outcome');
  }
}

/** Says once, loudly, that this transaction can only wait: the blocking case of 2PC. */
function block(acc: Acc, tx: PreparedTx, reason: string): void {
  if (tx.blocked === reason) return;
  setTx(acc, { ...tx, blocked: reason });
  log(acc, 'blocked', tx.txId, { reason, keys: tx.keys });
}

/**
 * Cooperative termination, the answering side. Having no record, we promise
 * never to vote yes: the tombstone is forced before the answer leaves, since
 * the asker may abort on the strength of it.
 */
function onPeerInquiry(acc: Acc, e: PeerInquiryEvent): void {
  const known = getOutcome(acc.s.outcomes, e.txId);
  if (known !== undefined) return reply(acc, e.requestId, 200, decisionBody(e.txId, known.outcome, known.heuristic), e.txId);
  const tx = acc.s.txs.get(e.txId);
  if (tx?.phase === 'prepared') return reply(acc, e.requestId, 200, { txId: e.txId, state: 'prepared' });
  if (tx === undefined && mayHaveForgotten(acc.s.outcomes, e.txId)) {
    // It may have committed here and been forgotten: no evidence either way, and no promise.
    return reply(acc, e.requestId, 200, { txId: e.txId, state: 'unknown' });
  }
  const reason = 'a peer asked before this participant voted; it promised never to vote yes';
  if (tx === undefined) tombstone(acc, e.txId, reason, e.now, true);
  else abortPending(acc, tx, reason, e.now, { sync: true, resourceAnswered: false });
  reply(acc, e.requestId, 200, decisionBody(e.txId, 'aborted'), e.txId);
}

// ---- the operator ----------------------------------------------------------------------

function onHeuristic(acc: Acc, e: HeuristicEvent): void {
  const known = getOutcome(acc.s.outcomes, e.txId);
  if (known !== undefined) {
    return replyError(acc, e.requestId, 'conflict', `${e.txId} is already ${known.outcome} here; only an in-doubt transaction can be settled by hand.`);
  }
  const tx = acc.s.txs.get(e.txId);
  if (tx === undefined) return replyError(acc, e.requestId, 'not_found', `No in-doubt transaction ${e.txId} here.`);
  if (tx.phase !== 'prepared') {
    return replyError(acc, e.requestId, 'conflict', `${e.txId} has not voted yet, so it is not in doubt.`);
  }
  // Its branch gone from the resource, only what the resource did can be recorded.
  if (settleAgainstResource(acc, tx, e.outcome, e.now, 'operator', e.requestId)) return;
  acc.fx.push({ kind: 'cancelTimer', id: inquiryTimerId(tx.txId) });
  acc.fx.push({ kind: 'persist', record: { type: 'HEURISTIC', txId: tx.txId, outcome: e.outcome, at: e.now }, sync: true });
  acc.fx.push({ kind: e.outcome === 'committed' ? 'resourceCommit' : 'resourceAbort', txId: tx.txId, data: tx.data, keys: tx.keys });
  deleteTx(acc, tx.txId);
  remember(acc, tx.txId, { outcome: e.outcome, at: e.now, heuristic: e.outcome, ...(tx.opsDigest !== undefined && { opsDigest: tx.opsDigest }) });
  reply(acc, e.requestId, 200, decisionBody(tx.txId, e.outcome, e.outcome), tx.txId);
  log(acc, 'heuristic', tx.txId, { outcome: e.outcome, inDoubtMs: e.now - tx.preparedAt });
  releaseAndAdmit(acc, tx.txId, tx.keys);
}
