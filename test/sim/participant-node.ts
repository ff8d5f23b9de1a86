/**
 * A participant as a simulated process: the real participant core and the
 * built-in key-value resource, the real effect driver with the runtime's lanes
 * (participant/core/lanes.ts), a simulated disk, and the inquiries (to the
 * coordinator, to peers) mapped to events the way the participant runtime maps
 * them (participant/runtime/runtime.ts).
 *
 * The resource answers a prepare a few simulated milliseconds later, so aborts,
 * duplicates and crashes can fall between the question and the answer; and it
 * applies a commit or an abort a few milliseconds later on most calls, so the
 * driver's lanes hold the transaction's reply (and the next lock holder's
 * prepare) until the apply has landed, while the rest of the queue moves on.
 */
import {
  checkpointOf,
  effectLanes,
  initialState,
  prepareEvent,
  step,
  type ParticipantConfig,
  type ParticipantEffect,
  type ParticipantEvent,
  type ParticipantRecord,
  type ParticipantState,
} from '../../participant/core/index.ts';
import { KvStore, kvKeysOf } from '../../participant/resources/kv.ts';
import { decodeSnapshot, encodeSnapshot, participantCodec } from '../../participant/runtime/records.ts';
import type { StepResult } from '../../shared/core.ts';
import { opsDigest } from '../../shared/digest.ts';
import { asTxId, type Op, type TxId } from '../../shared/types.ts';
import { SimDisk, type DiskKind } from './disk.ts';
import type { RequestMsg, RequestPayload } from './messages.ts';
import { type BatchAnswer, type CallResult, type Host, isWhole, SimNode } from './node.ts';
import { TIMING } from './profile.ts';

export type ParticipantStep = (state: ParticipantState, event: ParticipantEvent) => StepResult<ParticipantState, ParticipantEffect>;

export interface ParticipantNodeOptions {
  readonly config: Omit<ParticipantConfig, 'keysOf'>;
  readonly step?: ParticipantStep;
  readonly nodeOf: (url: string) => string;
  /**
   * Every coordinator of an HA group (the service's `--coordinator URL,URL`): an inquiry asks them
   * in turn, one round at most, until one knows the outcome. Absent: the URL the core names.
   */
  readonly coordinators?: readonly string[];
}

type CallContext = { readonly kind: 'inquire'; readonly txId: TxId; readonly asked: number } | { readonly kind: 'askPeer'; readonly txId: TxId; readonly peerUrl: string };

export class ParticipantNode extends SimNode<ParticipantState, ParticipantEvent, ParticipantEffect, ParticipantRecord> {
  state: ParticipantState;
  kv = new KvStore();
  /** resourceCommit calls per transaction in this incarnation: more than one means a double apply. */
  private applied = new Map<string, number>();
  private readonly stepFn: ParticipantStep;
  private readonly config: ParticipantConfig;

  constructor(
    host: Host,
    id: string,
    private readonly options: ParticipantNodeOptions,
    random: () => number,
    disk: DiskKind,
  ) {
    super(
      host,
      id,
      new SimDisk<ParticipantRecord>(
        disk,
        random,
        participantCodec,
        (r) => {
          if (r.type === 'PREPARED') host.ghost.rmDurable(r.txId, id, 'prepared');
          else if (r.type === 'COMMITTED') host.ghost.rmDurable(r.txId, id, 'committed');
          else if (r.type === 'ABORTED') host.ghost.rmDurable(r.txId, id, 'aborted');
          else if (r.type === 'HEURISTIC') host.ghost.rmHeuristic(r.txId, id, r.outcome);
        },
        (message) => host.ghost.violation('wal', `${id}: ${message}`),
      ),
    );
    this.config = { ...options.config, keysOf: kvKeysOf };
    this.stepFn = options.step ?? step;
    this.state = initialState(this.config);
  }

  async start(): Promise<void> {
    this.boot();
    const opened = await this.disk.open();
    if (opened.torn) this.host.stats.fault('torn-write');
    this.kv = new KvStore();
    this.applied = new Map();
    this.opened(opened.lastLsn, opened.checkpointLsn);
    this.state = initialState(this.config);
    await this.recover({
      type: 'recover',
      now: this.now,
      records: opened.records,
      ...(opened.checkpoint ? { snapshot: decodeSnapshot(opened.checkpoint) } : {}),
    });
  }

  protected coreStep(state: ParticipantState, event: ParticipantEvent): StepResult<ParticipantState, ParticipantEffect> {
    return this.stepFn(state, event);
  }

  protected snapshot(state: ParticipantState): Uint8Array {
    return encodeSnapshot(checkpointOf(state, this.kv.snapshot()));
  }

  protected override lanesOf(effect: ParticipantEffect): readonly string[] | undefined {
    return effectLanes(effect);
  }

  async onRequest(msg: RequestMsg): Promise<void> {
    const p = msg.payload;
    if (this.recovering) return this.refuse(msg);
    const now = this.now;
    switch (p.type) {
      case 'prepare': {
        return this.feed(prepareEvent(p.body, this.hold(msg), now, opsDigest(p.body.ops ?? [])));
      }
      case 'commit':
      case 'abort':
        return this.feed({ type: p.type, requestId: this.hold(msg), now, txId: p.body.txId });
      case 'peerInquiry':
        return this.feed({ type: 'peerInquiry', requestId: this.hold(msg), now, txId: asTxId(p.txId) });
      case 'batch': {
        // Each message as its own route would take it, in order; the answer leaves with the last reply.
        const answer: BatchAnswer = { callId: msg.callId, from: msg.from, stream: p.stream === true, replies: [], left: p.messages.length };
        const incarnation = this.incarnation;
        for (const [index, m] of p.messages.entries()) {
          // A crash part-way through takes the whole request with it.
          if (!this.up || this.incarnation !== incarnation) return;
          const requestId = this.hold(msg, { payload: m, answer, index });
          if (m.type === 'prepare') await this.feed(prepareEvent(m.body, requestId, this.now, opsDigest(m.body.ops ?? [])));
          else await this.feed({ type: m.type, requestId, now: this.now, txId: m.body.txId });
        }
        return;
      }
      default:
        this.host.respond(this.id, msg.from, msg.callId, 404, { error: { code: 'not_found', message: `no route for ${p.type}` } });
    }
  }

  /** Transactions prepared here and waiting for their decision, oldest first. */
  inDoubt(): TxId[] {
    return [...this.state.txs.values()].filter((t) => t.phase === 'prepared').map((t) => t.txId);
  }

  /** An operator settles an in-doubt transaction by hand (POST .../heuristic); the answer goes to nobody. */
  async operatorHeuristic(txId: TxId, outcome: 'committed' | 'aborted'): Promise<void> {
    return this.feed({ type: 'heuristic', requestId: this.newRequestId(), now: this.now, txId, outcome });
  }

  protected executeOther(e: ParticipantEffect): void | Promise<void> {
    switch (e.kind) {
      case 'resourcePrepare': {
        let answer: ParticipantEvent;
        try {
          const r = this.kv.prepare(e.txId, e.ops as readonly Op[]);
          answer = { type: 'resourcePrepared', now: 0, txId: e.txId, vote: r.vote, ...(r.reason !== undefined && { reason: r.reason }), ...(r.data !== undefined && { data: r.data }) };
        } catch (error) {
          answer = { type: 'resourcePrepared', now: 0, txId: e.txId, vote: 'no', reason: `the resource failed: ${String(error)}` };
        }
        this.host.schedule(this.host.rng.int(TIMING.resourceMinMs, TIMING.resourceMaxMs), { kind: 'resource', node: this.id, incarnation: this.incarnation, event: answer });
        return;
      }
      case 'resourceCommit':
        return this.slowly(() => {
          const n = (this.applied.get(e.txId) ?? 0) + 1;
          this.applied.set(e.txId, n);
          if (n > 1) this.host.ghost.violation('applied-twice', `${this.id} applied ${e.txId} ${n} times in one incarnation`, e.txId);
          this.kv.commit(e.txId, e.data);
        });
      case 'resourceAbort':
        return this.slowly(() => this.kv.abort());
      case 'resourceRestore':
        this.kv.restore(e.snapshot);
        return;
      case 'inquire':
        this.inquire(e.txId, 0, e.coordinator);
        return;
      case 'askPeer':
        this.host.request(this, this.options.nodeOf(e.peerUrl), { type: 'peerInquiry', txId: e.txId }, TIMING.callTimeoutMs, {
          kind: 'askPeer',
          txId: e.txId,
          peerUrl: e.peerUrl,
        });
        return;
      default:
        return;
    }
  }

  /** Asks the `asked`-th coordinator of the group (or the one the core names) for the outcome. */
  private inquire(txId: TxId, asked: number, named: string): void {
    const to = this.options.coordinators?.[asked] ?? this.options.nodeOf(named);
    this.host.request(this, to, { type: 'getOutcome', txId }, TIMING.callTimeoutMs, { kind: 'inquire', txId, asked });
  }

  /** Runs a resource call now, or after a few simulated milliseconds (the seed says), as a slow database would. */
  private slowly(call: () => void): void | Promise<void> {
    const ms = this.host.rng.int(TIMING.applyMinMs, TIMING.applyMaxMs);
    if (ms === 0) return call();
    this.host.stats.slowApplies++;
    return this.ioWait('apply', ms).then(call);
  }

  /** The resource's answer, in the incarnation that asked for it. */
  async resourceAnswered(incarnation: number, event: ParticipantEvent): Promise<void> {
    if (incarnation !== this.incarnation) return;
    return this.feed({ ...event, now: this.now });
  }

  protected onReply(payload: RequestPayload, status: number, body: unknown): void {
    if (status === 200 && payload.type === 'prepare' && (body as { vote?: unknown }).vote === 'yes') this.host.ghost.voteSent(payload.body.txId, this.id);
    if (status === 200 && (payload.type === 'commit' || payload.type === 'abort') && (body as { heuristic?: unknown }).heuristic === undefined) {
      this.host.ghost.ackSent(payload.body.txId, this.id);
    }
  }

  /** Mirrors the participant runtime: any HTTP answer means the coordinator is reachable. */
  async onCallResult(context: unknown, result: CallResult): Promise<void> {
    if (!isWhole(result)) return;
    const r = result;
    const c = context as CallContext;
    const now = this.now;
    if (c.kind === 'inquire') {
      const decided = r.kind === 'answer' && r.status === 200 && ['committed', 'aborted'].includes(String((r.body as { outcome?: unknown }).outcome));
      const group = this.options.coordinators ?? [];
      // Not known there: the next member of the group may know (a follower answers from etcd).
      if (!decided && c.asked + 1 < group.length) return this.inquire(c.txId, c.asked + 1, '');
      if (r.kind === 'error') return this.feed({ type: 'inquiryFailed', now, txId: c.txId, reason: r.error, coordinatorReachable: false });
      const outcome = r.status === 200 ? (r.body as { outcome?: unknown }).outcome : undefined;
      if (outcome === 'committed' || outcome === 'aborted') return this.feed({ type: 'outcomeLearned', now, txId: c.txId, outcome });
      return this.feed({ type: 'inquiryFailed', now, txId: c.txId, reason: `HTTP ${r.status} ${String(outcome)}`, coordinatorReachable: true });
    }
    let answer: 'committed' | 'aborted' | 'prepared' | 'unreachable' = 'unreachable';
    let heuristic = false;
    if (r.kind === 'answer') {
      const data = r.body as { state?: unknown; heuristic?: unknown };
      if (r.status === 200 && (data.state === 'committed' || data.state === 'aborted' || data.state === 'prepared')) answer = data.state;
      heuristic = data.heuristic !== undefined;
    }
    // A peer that says it aborted never voted yes (or learned the abort): once that is acted on, the
    // abstract TM has aborted. The ghost judges it here, where it is taken, not where it was said.
    if (answer === 'aborted' && !heuristic && this.state.txs.get(c.txId)?.phase === 'prepared') {
      this.host.ghost.tmDecided(c.txId, 'aborted', `${this.id} learned from peer ${c.peerUrl} that it aborted`);
    }
    return this.feed({ type: 'peerAnswered', now, txId: c.txId, peerUrl: c.peerUrl, answer, ...(heuristic && { heuristic }) });
  }

  protected observe(): void {
    // The participant's facts reach the ghost as they happen: durable records, votes and answers.
  }
}
