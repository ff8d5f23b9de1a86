/**
 * The coordinator as a simulated process: the real coordinator core, the
 * simulator's driver, a MemoryLog disk, and the calls to participants mapped
 * to transport events the way the HTTP transport maps them
 * (coordinator/adapters/http-transport.ts).
 */
import {
  initialState,
  snapshotOf,
  step,
  type CoordinatorConfig,
  type CoordinatorEffect,
  type CoordinatorEvent,
  type CoordinatorRecord,
  type CoordinatorState,
  type SendEffect,
  type SendFailure,
  type TransportEvent,
} from '../../coordinator/core/index.ts';
import { coordinatorCodec, decodeSnapshot, encodeSnapshot } from '../../coordinator/runtime/records.ts';
import type { StepResult } from '../../shared/core.ts';
import { asTxId, type Outcome, type TxId } from '../../shared/types.ts';
import { checkHeuristicReport } from './checks.ts';
import { SimDisk, type DiskKind } from './disk.ts';
import type { RequestMsg, RequestPayload } from './messages.ts';
import { type CallResult, type Host, SimNode } from './node.ts';
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
}

interface SendContext {
  readonly txId: TxId;
  readonly participant: string;
  readonly type: SendEffect['message']['type'];
}

export const SIM_URL = (node: string): string => `sim://${node}`;

export class CoordinatorNode extends SimNode<CoordinatorState, CoordinatorEvent, CoordinatorEffect, CoordinatorRecord> {
  state: CoordinatorState;
  private readonly stepFn: CoordinatorStep;

  constructor(
    host: Host,
    id: string,
    private readonly options: CoordinatorNodeOptions,
    random: () => number,
    disk: DiskKind,
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
      ),
    );
    this.stepFn = options.step ?? step;
    this.state = initialState(options.config);
  }

  async start(): Promise<void> {
    this.boot();
    const opened = await this.disk.open();
    if (opened.torn) this.host.stats.fault('torn-write');
    this.state = initialState(this.options.config);
    await this.feed({
      type: 'recover',
      now: this.now,
      entries: opened.records,
      ...(opened.checkpoint ? { snapshot: decodeSnapshot(opened.checkpoint) } : {}),
    });
  }

  protected coreStep(state: CoordinatorState, event: CoordinatorEvent): StepResult<CoordinatorState, CoordinatorEffect> {
    return this.stepFn(state, event);
  }

  protected snapshot(): Uint8Array {
    return encodeSnapshot(snapshotOf(this.state));
  }

  async onRequest(msg: RequestMsg): Promise<void> {
    const p = msg.payload;
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
    const payload: RequestPayload = e.message.type === 'prepare' ? { type: 'prepare', body: e.message.body } : { type: e.message.type, body: e.message.body };
    if (e.message.type === 'commit') this.host.ghost.commitSent(e.message.body.txId);
    const context: SendContext = { txId: e.message.body.txId, participant: e.to, type: e.message.type };
    this.host.request(this, this.options.nodeOf(e.url), payload, e.timeoutMs ?? TIMING.callTimeoutMs, context);
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

  /** Mirrors coordinator/adapters/http-transport.ts: each call ends as exactly one transport event. */
  async onCallResult(context: unknown, result: CallResult): Promise<void> {
    const c = context as SendContext;
    return this.feed(transportEvent(c, result, this.now));
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
    this.forgetBeyond(this.options.finishedKeep);
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

const httpFailure = (status: number): SendFailure => (status >= 500 ? 'server-error' : 'rejected');
const VOTES = new Set(['yes', 'no', 'read-only']);
const STATES = new Set(['prepared', 'committed', 'aborted', 'unknown']);

function transportEvent(c: SendContext, r: CallResult, now: number): TransportEvent {
  const base = { txId: asTxId(c.txId), participant: c.participant, now };
  if (c.type === 'prepare') {
    if (r.kind === 'error') return { type: 'prepareFailed', ...base, error: r.error };
    if (r.status !== 200) return { type: 'prepareFailed', ...base, error: httpFailure(r.status), message: `HTTP ${r.status}` };
    const data = r.body as { vote?: unknown; reason?: unknown; state?: unknown };
    if (typeof data.vote !== 'string' || !VOTES.has(data.vote)) return { type: 'prepareFailed', ...base, error: 'server-error', message: 'no valid vote' };
    return {
      type: 'prepareResult',
      ...base,
      vote: data.vote as 'yes' | 'no' | 'read-only',
      ...(typeof data.reason === 'string' ? { reason: data.reason } : {}),
      ...(typeof data.state === 'string' && STATES.has(data.state) ? { state: data.state as 'committed' } : {}),
    };
  }
  const decided: Outcome = c.type === 'commit' ? 'committed' : 'aborted';
  if (r.kind === 'error') return { type: 'decisionFailed', ...base, error: r.error };
  // A 409 means the participant holds the other outcome: reported, never retried away.
  if (r.status === 409) return { type: 'decisionAcked', ...base, heuristic: decided === 'committed' ? 'aborted' : 'committed' };
  if (r.status !== 200) return { type: 'decisionFailed', ...base, error: httpFailure(r.status), message: `HTTP ${r.status}` };
  const data = r.body as { state?: unknown; heuristic?: unknown };
  const heuristic = data.heuristic === 'committed' || data.heuristic === 'aborted' ? data.heuristic : undefined;
  const contrary = (data.state === 'committed' || data.state === 'aborted') && data.state !== decided ? data.state : undefined;
  const reported = heuristic ?? contrary;
  return { type: 'decisionAcked', ...base, ...(reported ? { heuristic: reported } : {}) };
}
