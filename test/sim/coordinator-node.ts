/**
 * The coordinator as a simulated process: the real coordinator core and effect
 * driver, a simulated disk, and the calls to participants turned into
 * transport events by the HTTP transport's own mapping
 * (coordinator/adapters/answers.ts). Messages to participants go batched, by
 * the service's batching logic (./batching.ts), unless the seed turns it off:
 * then each is its own call, as with `--no-batching`.
 */
import { answerOf, failedAnswer, failureAnswer, type TransportAnswer } from '../../coordinator/adapters/answers.ts';
import {
  initialState,
  snapshotOf,
  step,
  type CoordinatorConfig,
  type CoordinatorEffect,
  type CoordinatorEvent,
  type CoordinatorRecord,
  type CoordinatorState,
  type CoordinatorSnapshot,
  type SendEffect,
  type TransportEvent,
} from '../../coordinator/core/index.ts';
import { coordinatorCodec, decodeSnapshot, encodeSnapshot } from '../../coordinator/runtime/records.ts';
import type { StepResult } from '../../shared/core.ts';
import { SimBatcher, type BatchContext, type MatchLine, type MatchReplies } from './batching.ts';
import { TransportError } from '../../shared/http/client.ts';
import { checkHeuristicReport } from './checks.ts';
import { SimDisk, type Backend, type LogKind } from './disk.ts';
import type { RequestMsg, RequestPayload } from './messages.ts';
import { type CallResult, type Host, isWhole, SimNode } from './node.ts';
import { TIMING } from './profile.ts';

export type CoordinatorStep = (state: CoordinatorState, event: CoordinatorEvent) => StepResult<CoordinatorState, CoordinatorEffect>;

export interface CoordinatorNodeOptions {
  readonly config: CoordinatorConfig;
  /** The core's step; a planted bug wraps it. */
  readonly step?: CoordinatorStep;
  readonly nodeOf: (url: string) => string;
  /**
   * How many finished transactions the coordinator remembers, when the seed shortens its memory.
   * Applied after each step's checks have seen the transactions that finished in it (with the
   * core's own `finishedHistoryMax` at 0 they would never see one), with the same effect on later
   * steps: a forgotten transaction is unknown, and an inquiry about it hears the presumption.
   */
  readonly finishedKeep?: number;
  /** What a checkpoint keeps of the state; a planted bug replaces it. */
  readonly snapshot?: (state: CoordinatorState) => CoordinatorSnapshot;
  /** Batching on, with this many requests per participant and lane not yet being answered; absent: one call per message. */
  readonly batchRequestsAwaitingMax?: number;
  /** Batches ask for streamed answers (default true). */
  readonly batchStreamed?: boolean;
  /** How a batch answer is matched to its messages; a planted bug replaces it. */
  readonly matchReplies?: MatchReplies;
  /** How a line of a streamed batch answer is matched to its message; a planted bug replaces it. */
  readonly matchLine?: MatchLine;
  /** The storage under the log, when it is not a local disk (an HA member's log in etcd). */
  readonly backend?: Backend;
  /**
   * Asked before each protocol message leaves (an HA member: whether it still leads, by its own
   * lease clock, as coordinator/ha.ts's term transport asks). A message it refuses is not sent.
   */
  readonly mayAct?: () => boolean;
}

interface SendContext {
  readonly kind: 'single';
  readonly effect: SendEffect;
}

export const SIM_URL = (node: string): string => `sim://${node}`;

export class CoordinatorNode extends SimNode<CoordinatorState, CoordinatorEvent, CoordinatorEffect, CoordinatorRecord> {
  state: CoordinatorState;
  private readonly stepFn: CoordinatorStep;
  /** Transactions already offered to the fault injector as owing a commit, in this incarnation. */
  private owedOffered = new Set<string>();
  /** This incarnation's batching transport (its lanes die with the process). */
  private batcher: SimBatcher | undefined;

  constructor(
    host: Host,
    id: string,
    private readonly options: CoordinatorNodeOptions,
    random: () => number,
    disk: LogKind,
  ) {
    super(
      host,
      id,
      new SimDisk<CoordinatorRecord>(
        disk,
        random,
        coordinatorCodec,
        (r) => {
          if (r.type === 'DECISION') host.ghost.tmDecided(r.txId, r.outcome, `the coordinator's ${r.outcome} DECISION is durable`);
        },
        (message) => host.ghost.violation('wal', `${id}: ${message}`),
        options.backend,
      ),
    );
    this.stepFn = options.step ?? step;
    this.state = initialState(options.config);
  }

  async start(): Promise<void> {
    this.boot();
    // A fresh process knows nothing until its log is read (an HA member's read of etcd takes time, and inquiries come meanwhile).
    this.state = initialState(this.options.config);
    const opened = await this.disk.open();
    if (opened.torn) this.host.stats.fault('torn-write');
    this.opened(opened.lastLsn, opened.checkpointLsn);
    this.owedOffered = new Set();
    this.batcher = this.newBatcher();
    this.state = initialState(this.options.config);
    await this.recover({
      type: 'recover',
      now: this.now,
      entries: opened.records,
      ...(opened.checkpoint ? { snapshot: decodeSnapshot(opened.checkpoint) } : {}),
    });
  }

  protected coreStep(state: CoordinatorState, event: CoordinatorEvent): StepResult<CoordinatorState, CoordinatorEffect> {
    return this.stepFn(state, event);
  }

  protected snapshot(state: CoordinatorState): Uint8Array {
    return encodeSnapshot((this.options.snapshot ?? snapshotOf)(state));
  }

  async onRequest(msg: RequestMsg): Promise<void> {
    const p = msg.payload;
    // Outcome inquiries are answered while recovering (the core says "pending" until it knows), as in the service.
    if (this.recovering && p.type !== 'getOutcome') return this.refuse(msg);
    if (p.type === 'runWhole') {
      const requestId = this.hold(msg);
      return this.feed({ type: 'runWhole', requestId, now: this.now, branches: p.branches });
    }
    if (p.type === 'txBegin') {
      const requestId = this.hold(msg);
      return this.feed({ type: 'begin', requestId, now: this.now, timeoutMs: p.timeoutMs });
    }
    if (p.type === 'txEnlist') {
      const requestId = this.hold(msg);
      return this.feed({ type: 'enlist', requestId, now: this.now, txId: p.txId, participant: p.branch.participant, ops: p.branch.ops });
    }
    if (p.type === 'txCommit' || p.type === 'txAbort') {
      const requestId = this.hold(msg);
      return this.feed({ type: p.type === 'txCommit' ? 'commit' : 'abort', requestId, now: this.now, txId: p.txId });
    }
    if (p.type === 'getOutcome') {
      const requestId = this.hold(msg);
      return this.feed({ type: 'getOutcome', requestId, now: this.now, txId: p.txId });
    }
    this.host.respond(this.id, msg.from, msg.callId, 404, { error: { code: 'not_found', message: `no route for ${p.type}` } });
  }

  protected executeOther(e: CoordinatorEffect): void {
    if (e.kind !== 'send') return;
    if (!this.mayAct()) {
      // Not sent: this member no longer leads (its term may have ended just now, in the check).
      if (this.up) this.host.expireAfter(this, 0, { kind: 'refused', answer: failedAnswer(e, 'rejected', 'not sent: this coordinator no longer leads its group') });
      return;
    }
    const payload: RequestPayload = e.message.type === 'prepare' ? { type: 'prepare', body: e.message.body } : { type: e.message.type, body: e.message.body };
    if (e.message.type === 'commit') this.host.ghost.commitSent(e.message.body.txId);
    const timeoutMs = e.timeoutMs ?? TIMING.callTimeoutMs;
    if (this.batcher) {
      const refused = this.batcher.send(e, this.options.nodeOf(e.url), timeoutMs);
      // A full lane refuses at once; the event follows the step, as the service's rejected promise does.
      for (const answer of refused) this.host.expireAfter(this, 0, { kind: 'refused', answer });
      return;
    }
    const context: SendContext = { kind: 'single', effect: e };
    this.host.request(this, this.options.nodeOf(e.url), payload, timeoutMs, context);
  }

  private mayAct(): boolean {
    return this.options.mayAct?.() ?? true;
  }

  private newBatcher(): SimBatcher | undefined {
    const awaitingMax = this.options.batchRequestsAwaitingMax;
    if (awaitingMax === undefined) return undefined;
    const incarnation = this.incarnation;
    const alive = (): boolean => this.up && this.incarnation === incarnation;
    return new SimBatcher(
      {
        now: () => this.now,
        request: (to, payload, timeoutMs, context) => {
          // A queued batch leaves later, when its lane frees: asked again then.
          if (alive() && this.mayAct() && alive()) this.host.request(this, to, payload, timeoutMs, context);
        },
        expireAfter: (timeoutMs, context) => (alive() ? this.host.expireAfter(this, timeoutMs, context) : -1),
        cancel: (id) => this.calls.delete(id),
        fault: (kind) => this.host.stats.fault(kind),
        sent: (messages) => this.host.stats.batch(messages),
        endOfTurn: (fn) => this.host.endOfTurn(fn),
      },
      awaitingMax,
      this.options.matchReplies,
      this.options.batchStreamed ?? true,
      this.options.matchLine,
    );
  }

  protected onReply(payload: RequestPayload, status: number, body: unknown): void {
    if (payload.type !== 'getOutcome' || status !== 200) return;
    const outcome = (body as { outcome?: unknown }).outcome;
    const tm = this.host.ghost.txs.get(payload.txId)?.tm;
    // An answer contrary to a decision is the presumption answering a late inquiry after END forgot
    // the transaction: harmless to a participant that already settled, and caught where it matters
    // (a prepared participant settling against the decision) by the checks on durable outcomes.
    if (outcome === 'committed' && tm !== 'aborted') this.host.ghost.commitSent(payload.txId);
    // "aborted" for a transaction without a durable commit is the TM's abort, presumed or not.
    if (outcome === 'aborted' && tm !== 'committed') this.host.ghost.tmDecided(payload.txId, 'aborted', 'the coordinator answered an inquiry with aborted');
  }

  /** Each call ends as exactly one transport event, mapped by the HTTP transport's own code. */
  async onCallResult(context: unknown, result: CallResult): Promise<void> {
    const c = context as SendContext | BatchContext | { readonly kind: 'refused'; readonly answer: TransportAnswer };
    if (c.kind === 'refused') return this.feed({ ...c.answer, now: this.now } as TransportEvent);
    if (c.kind !== 'single') {
      for (const answer of this.batcher?.onResult(c, result) ?? []) await this.feed({ ...answer, now: this.now } as TransportEvent);
      return;
    }
    if (!isWhole(result)) return;
    const e = c.effect;
    const answer = result.kind === 'answer' ? answerOf(e, result.status, result.body) : failureAnswer(e, new TransportError(result.error, `sim: ${result.error}`, e.url));
    return this.feed({ ...answer, now: this.now } as TransportEvent);
  }

  protected observe(before: CoordinatorState, event: CoordinatorEvent, result: StepResult<CoordinatorState, CoordinatorEffect>): void {
    const ghost = this.host.ghost;
    if (event.type === 'runWhole') {
      const begin = result.effects.find((e) => e.kind === 'log' && e.step === 'begin');
      const index = this.indexOf(event.requestId);
      if (begin?.kind === 'log' && begin.txId !== undefined && index !== undefined) {
        ghost.begin(begin.txId, index, event.branches.map((b) => b.participant));
      }
    }
    if (event.type === 'begin') {
      const begin = result.effects.find((e) => e.kind === 'log' && e.step === 'begin');
      const held = this.inbound.get(event.requestId)?.payload;
      if (begin?.kind === 'log' && begin.txId !== undefined && held?.type === 'txBegin') ghost.begin(begin.txId, held.index, held.participants);
    }
    if (event.type === 'prepareResult' && event.vote === 'yes') {
      const tx = before.txs.get(event.txId);
      const branch = tx?.branches.find((b) => b.participant === event.participant);
      // Received by the TM only while it still collects votes; a late vote changes nothing.
      if (tx && tx.phase === 'preparing' && !tx.onePhase && branch && branch.vote === undefined) ghost.voteReceived(event.txId, event.participant);
    }
    for (const txId of touched(event, result.effects)) {
      const tx = result.state.txs.get(txId) ?? result.state.finished.get(txId);
      if (tx?.outcome === 'aborted' && tx.phase !== 'active' && tx.phase !== 'preparing') {
        ghost.tmDecided(txId, 'aborted', `the coordinator decided abort${tx.reason ? ` (${tx.reason})` : ''}`);
      }
      const g = ghost.txs.get(txId);
      if (g && tx?.outcome !== undefined && result.state.finished.has(txId) && !before.finished.has(txId)) {
        const delivered = tx.branches.filter((b) => b.target && b.acked).map((b) => b.participant);
        checkHeuristicReport(ghost, g, tx.outcome, tx.heuristicMixed, delivered);
      }
    }
    this.watchOwedCommits(event, result.state);
    this.forgetBeyond(this.options.finishedKeep);
  }

  /**
   * A commit one participant acknowledged and another has failed to receive at least once: the
   * window a crash (after a checkpoint, perhaps) must not lose. Offered to the fault injector once
   * per transaction and incarnation.
   */
  private watchOwedCommits(event: CoordinatorEvent, state: CoordinatorState): void {
    if (event.type !== 'decisionFailed' && event.type !== 'decisionAcked') return;
    const tx = state.txs.get(event.txId);
    if (tx?.outcome !== 'committed' || this.owedOffered.has(tx.txId)) return;
    const targets = tx.branches.filter((b) => b.target);
    if (targets.some((b) => b.acked) && targets.some((b) => !b.acked && b.attempts > 0)) {
      this.owedOffered.add(tx.txId);
      this.host.commitOwed(this.id);
    }
  }

  /** Drops all but the newest `keep` finished transactions (see `finishedKeep`). */
  private forgetBeyond(keep: number | undefined): void {
    const { finished } = this.state;
    if (keep === undefined || finished.size <= keep) return;
    this.state = { ...this.state, finished: new Map([...finished].slice(finished.size - keep)) };
  }

  private indexOf(requestId: string): number | undefined {
    const held = this.inbound.get(requestId);
    return held?.payload.type === 'runWhole' ? held.payload.index : undefined;
  }
}

function touched(event: CoordinatorEvent, effects: readonly CoordinatorEffect[]): Set<string> {
  const ids = new Set<string>();
  if ('txId' in event && typeof event.txId === 'string') ids.add(event.txId);
  for (const e of effects) {
    if (e.kind === 'log' && e.txId !== undefined) ids.add(e.txId);
    else if (e.kind === 'persist' && 'txId' in e.record) ids.add(e.record.txId);
    else if (e.kind === 'send') ids.add(e.message.body.txId);
  }
  return ids;
}
