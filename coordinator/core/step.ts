/**
 * The coordinator protocol: two-phase commit with presumed abort (default),
 * presumed nothing or presumed commit, as one pure function.
 *
 * Phase 1 sends PREPARE to every branch at once and waits, up to a timeout,
 * for the votes. Any NO, timeout or unreachable participant aborts. When all
 * vote YES (or read-only) the COMMIT decision is forced to the WAL and only
 * then sent. Phase 2 re-sends the decision with capped backoff until every
 * participant that may be prepared has acknowledged, then writes END lazily.
 *
 * What each variant writes (so their costs can be compared):
 *
 *   variant           COLLECTING   DECISION commit   DECISION abort   unknown tx is
 *   presumed-abort    -            forced            lazy             aborted
 *   presumed-nothing  forced       forced            forced           aborted
 *   presumed-commit   forced       forced            forced           committed
 *
 * A single-branch transaction uses one-phase commit and writes nothing here:
 * the participant decides in one forced write and is never in doubt.
 */
import { backoffMs, type RequestId, type StepResult, type TimerFired } from '../../shared/core.ts';
import type { ErrorCode } from '../../shared/errors.ts';
import { asTxId, type Outcome, type TxId } from '../../shared/types.ts';
import { decide, onAck, parseTimerId, sendDecision, settle, timerId } from './decision.ts';
import { Draft } from './draft.ts';
import { recover } from './recovery.ts';
import { finalPhase, isDecided, newBranch, newTx, outcomeReport, refOf, resolveParticipant, txView, updateBranch } from './state.ts';
import type {
  BranchInput,
  BranchState,
  ClientEvent,
  CoordinatorEffect,
  CoordinatorEvent,
  CoordinatorState,
  ResolvedConfig,
  SendFailure,
  TransportEvent,
  Tx,
} from './types.ts';

export function step(state: CoordinatorState, event: CoordinatorEvent): StepResult<CoordinatorState, CoordinatorEffect> {
  const d = new Draft(state);
  switch (event.type) {
    case 'recover':
      recover(d, event);
      break;
    case 'timer':
      onTimer(d, event);
      break;
    case 'prepareResult':
    case 'prepareFailed':
    case 'decisionAcked':
    case 'decisionFailed':
      onTransport(d, event);
      break;
    default:
      onClient(d, event);
  }
  return d.result();
}

// ---- Client requests -------------------------------------------------------------------

function onClient(d: Draft, e: ClientEvent): void {
  if (e.type === 'getOutcome') return d.reply(e.requestId, 200, { outcome: outcomeOf(d, e.txId) });
  if (e.type === 'getOutcomes') return getOutcomes(d, e.requestId, e.txIds);
  if (d.recovering) return d.fail(e.requestId, 'unavailable', 'The coordinator is recovering from its WAL; retry shortly.');
  switch (e.type) {
    case 'begin':
      return begin(d, e.requestId, e.now, e.timeoutMs);
    case 'enlist':
      return enlist(d, e.requestId, e.txId, { participant: e.participant, ops: e.ops });
    case 'commit':
      return commit(d, e.requestId, e.txId);
    case 'abort':
      return abort(d, e.requestId, e.txId);
    case 'runWhole':
      return runWhole(d, e.requestId, e.now, e.branches, e.timeoutMs);
    case 'getTx': {
      const tx = d.get(e.txId) ?? d.getFinished(e.txId);
      if (!tx) return d.fail(e.requestId, 'not_found', `Unknown transaction ${e.txId}.`);
      return d.reply(e.requestId, 200, txView(tx));
    }
    case 'list': {
      // Newest first, so a bounded list shows what is happening now.
      const all = [...d.unfinished(), ...d.finishedTxs()].filter((tx) => e.state === undefined || tx.phase === e.state);
      all.sort((a, b) => b.createdAt - a.createdAt);
      return d.reply(e.requestId, 200, { transactions: all.slice(0, d.config.listMax).map(txView), total: all.length });
    }
  }
}

/**
 * Refuses a timeout past its bound (a 400, whatever the load), then new work
 * past the bound on unfinished transactions (a 503 the client may retry).
 */
function admit(d: Draft, requestId: RequestId, timeoutMs: number | undefined): boolean {
  const max = d.config.txTimeoutMsMax;
  if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= max)) {
    d.fail(requestId, 'bad_request', `Expected \`timeoutMs\` to be an integer from 1 to ${max} (this coordinator's maximum, --tx-timeout-max-ms), got ${timeoutMs}.`);
    return false;
  }
  if (d.unfinishedCount >= d.config.maxActiveTransactions) {
    d.fail(
      requestId,
      'unavailable',
      `The coordinator has ${d.config.maxActiveTransactions} unfinished transactions, its limit (--active-tx-max); retry later.`,
    );
    return false;
  }
  return true;
}

function allocateTxId(d: Draft): TxId {
  const txId = asTxId(`tx-${d.epoch}-${d.nextSeq}`);
  d.nextSeq += 1;
  return txId;
}

function begin(d: Draft, requestId: RequestId, now: number, timeoutMs: number | undefined): void {
  if (!admit(d, requestId, timeoutMs)) return;
  const txId = allocateTxId(d);
  const ms = timeoutMs ?? d.config.defaultTxTimeoutMs;
  d.put(newTx(txId, now, { prepareTimeoutMs: d.config.prepareTimeoutMs }));
  d.emit({ kind: 'setTimer', id: timerId(txId, 'timeout'), ms });
  d.log('begin', txId, { timeoutMs: ms });
  d.reply(requestId, 201, { txId, state: 'active' });
}

/**
 * Adds one branch's ops. With `dedupe` (interactive enlists), an enlist whose
 * ops equal an earlier enlist's for the same participant is a retry and changes
 * nothing; different ops for the same participant are appended to its branch.
 */
type BranchesOrError =
  | { readonly ok: true; readonly branches: readonly BranchState[] }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

function withBranch(config: ResolvedConfig, branches: readonly BranchState[], input: BranchInput, dedupe: boolean): BranchesOrError {
  const ref = resolveParticipant(config, input.participant);
  if (!ref) {
    const known = Object.keys(config.participants).join(', ');
    return { ok: false, code: 'unknown_participant', message: `Unknown participant "${input.participant}" (known: ${known}; by name or URL).` };
  }
  const key = JSON.stringify(input.ops);
  const existing = branches.find((b) => b.participant === ref.name);
  if (existing && dedupe && existing.enlistments.includes(key)) return { ok: true, branches };
  const opsCount = (existing?.ops.length ?? 0) + input.ops.length;
  if (opsCount > config.maxOpsPerBranch) {
    return { ok: false, code: 'bad_request', message: `Branch ${ref.name} would have ${opsCount} ops; at most ${config.maxOpsPerBranch} per branch.` };
  }
  if (!existing) {
    if (branches.length >= config.maxBranchesPerTx) {
      return { ok: false, code: 'bad_request', message: `At most ${config.maxBranchesPerTx} branches per transaction.` };
    }
    return { ok: true, branches: [...branches, newBranch(ref, { ops: input.ops, enlistments: [key] })] };
  }
  const grown = { ...existing, ops: [...existing.ops, ...input.ops], enlistments: [...existing.enlistments, key] };
  return { ok: true, branches: branches.map((b) => (b === existing ? grown : b)) };
}

function enlist(d: Draft, requestId: RequestId, txId: string, input: BranchInput): void {
  const tx = d.get(txId);
  if (!tx) return unknownOrDone(d, requestId, txId, 'enlist in');
  if (tx.phase !== 'active') return d.fail(requestId, 'conflict', `Transaction ${txId} is ${tx.phase}; branches can be enlisted only while active.`);
  const result = withBranch(d.config, tx.branches, input, true);
  if (!result.ok) return d.fail(requestId, result.code, result.message);
  if (result.branches === tx.branches) return d.reply(requestId, 200, txView(tx));
  const next = { ...tx, branches: result.branches };
  d.put(next);
  d.log('enlist', txId, { participant: resolveParticipant(d.config, input.participant)?.name, ops: input.ops.length });
  d.reply(requestId, 200, txView(next));
}

function unknownOrDone(d: Draft, requestId: RequestId, txId: string, verb: string): void {
  const done = d.getFinished(txId);
  if (done) return d.fail(requestId, 'conflict', `Cannot ${verb} ${txId}: it is already ${done.phase}.`);
  d.fail(requestId, 'not_found', `Unknown transaction ${txId}.`);
}

function addWaiter(d: Draft, tx: Tx, requestId: RequestId): Tx | undefined {
  if (tx.waiters.length >= d.config.waitersPerTxMax) {
    d.fail(requestId, 'unavailable', `Too many requests already wait on ${tx.txId} (${d.config.waitersPerTxMax}); retry later.`);
    return undefined;
  }
  return { ...tx, waiters: [...tx.waiters, requestId] };
}

function commit(d: Draft, requestId: RequestId, txId: string): void {
  const tx = d.get(txId);
  if (!tx) {
    const done = d.getFinished(txId);
    if (done) return d.reply(requestId, 200, outcomeReport(done));
    return d.fail(requestId, 'not_found', `Unknown transaction ${txId}.`);
  }
  if (tx.replyReleased) {
    // The reply wait is over: answer now, as the first request was answered.
    if (tx.inDoubt) return failInDoubt(d, requestId, tx);
    return d.reply(requestId, 200, outcomeReport(tx));
  }
  const waiting = addWaiter(d, tx, requestId);
  if (!waiting) return;
  if (tx.phase !== 'active') return d.put(waiting);
  d.emit({ kind: 'cancelTimer', id: timerId(txId, 'timeout') });
  startPrepare(d, waiting);
}

function abort(d: Draft, requestId: RequestId, txId: string): void {
  const tx = d.get(txId) ?? d.getFinished(txId);
  if (!tx) return d.fail(requestId, 'not_found', `Unknown transaction ${txId}.`);
  const aborted = { txId: tx.txId, outcome: 'aborted' };
  switch (tx.phase) {
    case 'active':
      d.emit({ kind: 'cancelTimer', id: timerId(txId, 'timeout') });
      abortUnprepared(d, tx, 'aborted by the client');
      return d.reply(requestId, 200, aborted);
    case 'preparing':
      if (tx.onePhase) return d.fail(requestId, 'conflict', `Transaction ${txId} is committing in one phase; its participant decides.`);
      decide(d, tx, 'aborted', 'aborted by the client');
      return d.reply(requestId, 200, aborted);
    case 'aborting':
    case 'aborted':
      return d.reply(requestId, 200, aborted);
    case 'committing':
    case 'committed':
      return d.fail(requestId, 'conflict', `Transaction ${txId} is already committed.`);
  }
}

function runWhole(d: Draft, requestId: RequestId, now: number, inputs: readonly BranchInput[], timeoutMs: number | undefined): void {
  if (!admit(d, requestId, timeoutMs)) return;
  let branches: readonly BranchState[] = [];
  for (const input of inputs) {
    // Two branches for one participant are both meant: their ops are joined, never deduplicated.
    const result = withBranch(d.config, branches, input, false);
    if (!result.ok) return d.fail(requestId, result.code, result.message);
    branches = result.branches;
  }
  const txId = allocateTxId(d);
  d.log('begin', txId, { branches: branches.length });
  // For a transaction run whole, the client's timeout bounds the voting phase.
  startPrepare(d, newTx(txId, now, { branches, prepareTimeoutMs: timeoutMs ?? d.config.prepareTimeoutMs, waiters: [requestId] }));
}

// ---- Outcome inquiries (participants) ------------------------------------------------------

function outcomeOf(d: Draft, txId: string): Outcome | 'pending' {
  const tx = d.get(txId) ?? d.getFinished(txId);
  if (tx) return isDecided(tx.phase) && tx.outcome !== undefined ? tx.outcome : 'pending';
  // Nothing may be presumed before the WAL has been read: the answer could be in it.
  if (d.recovering) return 'pending';
  return d.config.protocol === 'presumed-commit' ? 'committed' : 'aborted';
}

/**
 * Many inquiries in one step, each answered exactly as `getOutcome` would: a participant restarted
 * with thousands in doubt asks in batches, and a step (with its driver batch and reply) per id cost
 * the coordinator more than the rest of its recovery. The route bounds the ids (OUTCOMES_BATCH_MAX).
 */
function getOutcomes(d: Draft, requestId: RequestId, txIds: readonly string[]): void {
  const outcomes: Record<string, Outcome | 'pending'> = {};
  for (const txId of txIds) outcomes[txId] = outcomeOf(d, txId);
  d.reply(requestId, 200, { outcomes });
}

// ---- Phase 1 ---------------------------------------------------------------------------

function startPrepare(d: Draft, tx: Tx): void {
  if (tx.branches.length === 0) {
    d.log('decision', tx.txId, { outcome: 'committed', branches: 0 });
    return settle(d, { ...tx, phase: 'committed', outcome: 'committed' });
  }
  const onePhase = tx.branches.length === 1;
  const collecting = !onePhase && d.config.protocol !== 'presumed-abort';
  if (collecting) {
    d.emit({ kind: 'persist', record: { type: 'COLLECTING', txId: tx.txId, participants: tx.branches.map(refOf) }, sync: true });
    d.log('collecting.logged', tx.txId, { forced: true });
  }
  const urls = tx.branches.map((b) => b.url);
  for (const b of tx.branches) {
    sendPrepare(d, tx, b, urls, onePhase);
    d.log('prepare.sent', tx.txId, { participant: b.participant, ...(onePhase ? { onePhase } : {}) });
  }
  d.emit({ kind: 'setTimer', id: timerId(tx.txId, 'prepare'), ms: tx.prepareTimeoutMs });
  d.put({ ...tx, phase: 'preparing', onePhase, collecting });
}

function sendPrepare(d: Draft, tx: Tx, b: BranchState, urls: readonly string[], onePhase: boolean): void {
  d.emit({
    kind: 'send',
    to: b.participant,
    url: b.url,
    message: {
      type: 'prepare',
      body: {
        txId: tx.txId,
        coordinator: d.config.selfUrl,
        participants: urls,
        ops: b.ops,
        ...(onePhase ? { onePhase: true } : {}),
        ...(d.config.protocol === 'presumed-abort' ? {} : { protocol: d.config.protocol }),
      },
    },
    timeoutMs: tx.prepareTimeoutMs,
  });
}

function onTransport(d: Draft, e: TransportEvent): void {
  const tx = d.get(e.txId);
  const branch = tx?.branches.find((b) => b.participant === e.participant);
  // Late, duplicate or unknown answers change nothing.
  if (!tx || !branch) return;
  if (e.type === 'prepareResult' || e.type === 'prepareFailed') {
    if (tx.phase !== 'preparing') return;
    if (tx.onePhase) return e.type === 'prepareResult' ? onePhaseAnswered(d, tx, e.vote, e.state, e.reason) : onePhaseFailed(d, tx, branch, e.error, e.message);
    if (branch.vote !== undefined) return;
    if (e.type === 'prepareFailed') {
      return decide(d, tx, 'aborted', `${branch.participant} did not answer the prepare (${e.error}${e.message ? `: ${e.message}` : ''})`);
    }
    if (tx.branches.every((b) => b.vote === undefined)) d.emit({ kind: 'crashPoint', point: 'coordinator.after-prepare-sent' });
    d.log('vote', tx.txId, { participant: branch.participant, vote: e.vote, ...(e.reason ? { reason: e.reason } : {}) });
    const voted = updateBranch(tx, branch.participant, { vote: e.vote });
    if (e.vote === 'no') return decide(d, voted, 'aborted', `${branch.participant} voted no${e.reason ? `: ${e.reason}` : ''}`);
    if (voted.branches.every((b) => b.vote !== undefined)) return decide(d, voted, 'committed');
    return d.put(voted);
  }
  if (!isDecided(tx.phase) || !branch.target || branch.acked) return;
  if (e.type === 'decisionFailed') {
    const attempts = branch.attempts + 1;
    d.log('decision.failed', tx.txId, { participant: branch.participant, error: e.error, attempts });
    d.emit({ kind: 'setTimer', id: timerId(tx.txId, 'resend', branch.participant), ms: backoffMs(attempts - 1, d.config.resendBaseMs, d.config.resendMaxMs) });
    return d.put(updateBranch(tx, branch.participant, { attempts }));
  }
  onAck(d, tx, branch, e.heuristic);
}

/** The single participant of a one-phase transaction answered: its answer is the outcome. */
function onePhaseAnswered(d: Draft, tx: Tx, vote: BranchState['vote'], state: string | undefined, reason: string | undefined): void {
  const b = tx.branches[0] as BranchState;
  if (vote === 'yes' && state !== 'committed') {
    // The participant only prepared (it does not do one phase): finish with a normal commit.
    // decide() cancels the prepare timer; the in-doubt timers are ours to cancel.
    if (tx.inDoubt) cancelPhaseOneTimers(d, tx);
    d.log('one-phase.fallback', tx.txId, { participant: b.participant });
    return decide(d, updateBranch({ ...tx, onePhase: false }, b.participant, { vote, attempts: 0 }), 'committed');
  }
  cancelPhaseOneTimers(d, tx);
  const outcome: Outcome = vote === 'no' || state === 'aborted' ? 'aborted' : 'committed';
  d.log('one-phase.outcome', tx.txId, { participant: b.participant, vote, outcome });
  const answered = updateBranch(tx, b.participant, { vote, acked: true });
  settle(d, {
    ...answered,
    phase: finalPhase(outcome),
    outcome,
    inDoubt: false,
    ...(outcome === 'aborted' ? { reason: `${b.participant} voted no${reason ? `: ${reason}` : ''}` } : {}),
  });
}

/**
 * A one-phase prepare that never reached the participant (refused connection, 4xx)
 * aborts. Any other failure leaves the outcome unknown, since the participant may
 * have committed: the coordinator re-sends the (idempotent) prepare until it answers.
 */
function onePhaseFailed(d: Draft, tx: Tx, b: BranchState, error: SendFailure, message: string | undefined): void {
  if (!tx.inDoubt && (error === 'unreachable' || error === 'rejected')) {
    d.emit({ kind: 'cancelTimer', id: timerId(tx.txId, 'prepare') });
    d.log('one-phase.outcome', tx.txId, { participant: b.participant, error, outcome: 'aborted' });
    return settle(d, { ...tx, phase: 'aborted', outcome: 'aborted', reason: `${b.participant} did not take the prepare (${error}${message ? `: ${message}` : ''})` });
  }
  const doubting = enterInDoubt(d, tx, error);
  const attempts = b.attempts + 1;
  d.emit({ kind: 'setTimer', id: timerId(tx.txId, 'resend', b.participant), ms: backoffMs(attempts - 1, d.config.resendBaseMs, d.config.resendMaxMs) });
  d.put(updateBranch(doubting, b.participant, { attempts }));
}

function enterInDoubt(d: Draft, tx: Tx, why: string): Tx {
  if (tx.inDoubt) return tx;
  d.emit({ kind: 'cancelTimer', id: timerId(tx.txId, 'prepare') });
  d.log('one-phase.in-doubt', tx.txId, { participant: tx.branches[0]?.participant, why });
  // Waiters get a little longer for a re-sent prepare to answer before they hear "unknown".
  if (tx.waiters.length > 0) d.emit({ kind: 'setTimer', id: timerId(tx.txId, 'reply'), ms: d.config.replyWaitMs });
  return { ...tx, inDoubt: true, replyReleased: tx.waiters.length === 0 };
}

function failInDoubt(d: Draft, requestId: RequestId, tx: Tx): void {
  const p = tx.branches[0]?.participant ?? '?';
  d.fail(
    requestId,
    'unavailable',
    `The outcome of ${tx.txId} is not known yet: ${p} has not answered its one-phase prepare, and the coordinator keeps asking. See GET /v1/transactions/${tx.txId}.`,
  );
}

function cancelPhaseOneTimers(d: Draft, tx: Tx): void {
  if (!tx.inDoubt) return d.emit({ kind: 'cancelTimer', id: timerId(tx.txId, 'prepare') });
  for (const b of tx.branches) d.emit({ kind: 'cancelTimer', id: timerId(tx.txId, 'resend', b.participant) });
  if (!tx.replyReleased) d.emit({ kind: 'cancelTimer', id: timerId(tx.txId, 'reply') });
}

/** Nothing was sent to any participant, so nothing needs to be written or told. */
function abortUnprepared(d: Draft, tx: Tx, reason: string): void {
  d.log('decision', tx.txId, { outcome: 'aborted', reason });
  settle(d, { ...tx, phase: 'aborted', outcome: 'aborted', reason });
}

// ---- Timers ----------------------------------------------------------------------------

function onTimer(d: Draft, e: TimerFired): void {
  const t = parseTimerId(e.id);
  const tx = t && d.get(t.txId);
  if (!t || !tx) return;
  switch (t.kind) {
    case 'timeout':
      if (tx.phase === 'active') abortUnprepared(d, tx, `timed out while active (not committed within its timeout)`);
      return;
    case 'prepare': {
      if (tx.phase !== 'preparing') return;
      if (tx.onePhase) {
        if (tx.inDoubt) return;
        const b = tx.branches[0] as BranchState;
        const doubting = enterInDoubt(d, tx, `no answer within ${tx.prepareTimeoutMs} ms`);
        d.emit({ kind: 'setTimer', id: timerId(tx.txId, 'resend', b.participant), ms: backoffMs(0, d.config.resendBaseMs, d.config.resendMaxMs) });
        return d.put(updateBranch(doubting, b.participant, { attempts: b.attempts + 1 }));
      }
      const silent = tx.branches.filter((b) => b.vote === undefined).map((b) => b.participant);
      return decide(d, tx, 'aborted', `no vote from ${silent.join(', ')} within ${tx.prepareTimeoutMs} ms`);
    }
    case 'reply':
      if (tx.replyReleased || !(isDecided(tx.phase) || tx.inDoubt)) return;
      for (const requestId of tx.waiters) {
        if (tx.inDoubt) failInDoubt(d, requestId, tx);
        else d.reply(requestId, 200, outcomeReport(tx));
      }
      return d.put({ ...tx, waiters: [], replyReleased: true });
    case 'resend': {
      const b = tx.branches.find((x) => x.participant === t.participant);
      if (!b) return;
      if (tx.phase === 'preparing' && tx.inDoubt) {
        sendPrepare(d, tx, b, tx.branches.map((x) => x.url), true);
        return d.log('prepare.resent', tx.txId, { participant: b.participant, attempt: b.attempts });
      }
      if (isDecided(tx.phase) && b.target && !b.acked) sendDecision(d, tx, b);
      return;
    }
  }
}
