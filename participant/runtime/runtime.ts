/**
 * The participant runtime: the participant core on the shared CoreHost
 * (shared/runtime.ts), which owns the state, the WAL writes, replies, timers,
 * crash points, logging, fail-stop and checkpoints. What is the participant's
 * own is here:
 *
 *   resource*      → the Resource (prepare answers come back as events); a live
 *                    transaction's commit or abort runs beside the queue, so a
 *                    slow one holds back only its own transaction (core/lanes.ts)
 *   inquire/askPeer→ HTTP to the coordinator / peers (answers come back as events)
 *   checkpoints    → carry the resource's snapshot, taken in step order
 *   recovery       → for a resource that keeps prepared work of its own, what it
 *                    holds (recoverPrepared, outcomeOf) is asked first and handed
 *                    to the core as data (core/reconcile.ts)
 *
 * A resource failure is fail-stop like a failed write. Record codes and the
 * snapshot format are in ./records.ts.
 */
import { participantStepMetrics } from './step-metrics.ts';
import type { CommonEffect } from '../../shared/core.ts';
import type { HttpClient } from '../../shared/http/client.ts';
import { CoreHost, type Answer, type RuntimeHostOptions } from '../../shared/runtime.ts';
import { trimUrl, type TxId } from '../../shared/types.ts';
import {
  checkpointOf,
  effectLanes,
  inDoubtCount,
  initialState,
  listTx,
  lockHolder,
  reconcileQuestions,
  step,
  type InDoubtView,
  type ParticipantConfig,
  type ParticipantEffect,
  type ParticipantEvent,
  type ParticipantRecord,
  type ParticipantSnapshot,
  type ParticipantState,
  type ResourceRecovery,
} from '../core/index.ts';
import { coreKeysOf, type Resource, type ResourceOutcome } from '../resources/resource.ts';
import { OutcomeInquiries } from './inquiries.ts';
import { PeerInquiries } from './peer-inquiries.ts';
import { decodeSnapshot, encodeSnapshot, participantCodec } from './records.ts';

export type { Answer } from '../../shared/runtime.ts';

export interface RuntimeOptions extends RuntimeHostOptions {
  readonly name: string;
  readonly resource: Resource;
  readonly http: HttpClient;
  /** Core tuning (lock waits, limits, inquiry backoff); `keysOf` comes from the resource. */
  readonly core?: Omit<ParticipantConfig, 'keysOf'>;
  /**
   * Where outcome inquiries go: the configured coordinator, never the URL a prepare named
   * (that one is kept in PREPARED for the record; see ./peers.ts for why).
   */
  readonly coordinatorUrl: string;
  /** The other members of an HA coordinator group: inquiries go to whichever answers (./inquiries.ts). */
  readonly otherCoordinatorUrls?: readonly string[];
  /** A resource prepare that takes longer votes no. */
  readonly resourcePrepareTimeoutMs?: number;
  /** Timeout of each inquiry to the coordinator or a peer. */
  readonly inquiryTimeoutMs?: number;
}

/** The effects only the participant knows: the resource calls and the termination inquiries. */
type OwnEffect = Exclude<ParticipantEffect, CommonEffect<ParticipantRecord>>;

/** Steps an operator should notice. */
const WARN_STEPS = new Set([
  'protocol-violation',
  'blocked',
  'heuristic',
  'heuristic-mismatch',
  'heuristic-hazard',
  // Not 'inquiry-failed': with thousands in doubt and the coordinator down, a warning per
  // transaction per round was tens of thousands of lines a second (issue 12's recovery bench);
  // ./inquiries.ts warns once per failed request instead, naming how many it carried.
  'vote-no',
  'orphan-rolled-back',
  'orphan-unknown',
  'branch-gone',
]);

/** `outcomeOf` questions a recovery keeps in flight at once (a database round trip each). */
const OUTCOME_QUERIES_IN_FLIGHT_MAX = 8;

export class ParticipantRuntime {
  private readonly host: CoreHost<ParticipantState, ParticipantEvent, OwnEffect, ParticipantRecord>;
  /** Resource prepares in flight: the first answer (or the timeout) wins. */
  private readonly preparing = new Map<TxId, ReturnType<typeof setTimeout>>();
  private readonly prepareTimeoutMs: number;
  private readonly inquiryTimeoutMs: number;
  /** Outcome inquiries, batched to the coordinator. */
  private readonly inquiries: OutcomeInquiries;
  /** Peer inquiries, batched per peer (./peer-inquiries.ts). */
  private readonly peerInquiries: PeerInquiries;

  constructor(private readonly o: RuntimeOptions) {
    // `twopc_inquiries_total{to}` counts transactions asked about, per request, batched or not: an id left
    // out because it settled meanwhile is not counted, recovery's first ones are. The coordinator's are
    // counted as their request leaves, a peer's once it is answered (./peer-inquiries.ts says why).
    const coordinatorInquiriesCounted = o.metrics.child(o.metrics.inquiries, 'coordinator');
    const peerInquiriesCounted = o.metrics.child(o.metrics.inquiries, 'peer');
    this.prepareTimeoutMs = o.resourcePrepareTimeoutMs ?? 10_000;
    this.inquiryTimeoutMs = o.inquiryTimeoutMs ?? 2_000;
    // An inquiry whose transaction settled while it waited for a request (the coordinator's decision
    // arrived) is left out of it: the answer could only be stale.
    const inDoubt = (txId: TxId) => this.host.state.txs.get(txId)?.phase === 'prepared';
    this.inquiries = new OutcomeInquiries({
      http: o.http,
      coordinatorUrl: trimUrl(o.coordinatorUrl),
      ...(o.otherCoordinatorUrls !== undefined && { otherCoordinatorUrls: o.otherCoordinatorUrls.map(trimUrl) }),
      timeoutMs: this.inquiryTimeoutMs,
      logger: o.logger,
      inDoubt,
      counted: (txIds) => coordinatorInquiriesCounted.inc(txIds),
      answer: (a) => {
        const now = this.o.clock.now();
        if (a.kind === 'learned') this.host.dispatch({ type: 'outcomeLearned', now, txId: a.txId, outcome: a.outcome });
        else this.host.dispatch({ type: 'inquiryFailed', now, txId: a.txId, reason: a.reason, coordinatorReachable: a.coordinatorReachable });
      },
    });
    this.peerInquiries = new PeerInquiries({
      http: o.http,
      timeoutMs: this.inquiryTimeoutMs,
      logger: o.logger,
      counted: (txIds) => peerInquiriesCounted.inc(txIds),
      inDoubt,
      answer: (txId, peerUrl, answer, heuristic) =>
        this.host.dispatch({ type: 'peerAnswered', now: this.o.clock.now(), txId, peerUrl, answer, ...(heuristic && { heuristic }) }),
    });
    this.host = new CoreHost<ParticipantState, ParticipantEvent, OwnEffect, ParticipantRecord>(o, {
      role: 'participant',
      initialState: initialState({ ...o.core, keysOf: coreKeysOf(o.resource) }),
      step,
      codec: participantCodec,
      recoverEvent: (now, records, checkpoint) => {
        const snapshot = checkpoint === undefined ? undefined : decodeSnapshot(checkpoint);
        if (o.resource.recoverPrepared === undefined) return { type: 'recover', now, records, ...(snapshot !== undefined && { snapshot }) };
        return this.askResource(snapshot, records).then((resource) => ({
          type: 'recover' as const,
          now: o.clock.now(),
          records,
          ...(snapshot !== undefined && { snapshot }),
          resource,
        }));
      },
      execute: (effect) => this.execute(effect),
      lanesOf: (effect) => effectLanes(effect as ParticipantEffect),
      // The resource is snapshotted when the driver reaches the checkpoint, after every earlier step's effects.
      checkpointBytes: async (state) => encodeSnapshot(checkpointOf(state, await o.resource.snapshot())),
      warnSteps: WARN_STEPS,
      afterStep: (state) => this.updateGauges(state),
      observeStep: participantStepMetrics(o.metrics),
      onStop: () => {
        for (const t of this.preparing.values()) clearTimeout(t);
        this.preparing.clear();
        this.inquiries.stop();
        this.peerInquiries.stop();
      },
    });
  }

  /** Replays the WAL (checkpoint first), rebuilds the resource, and starts asking about in-doubt transactions. */
  start(): Promise<void> {
    return this.host.start();
  }

  get recovering(): boolean {
    return this.host.recovering;
  }

  /**
   * Feeds one request to the core and resolves with its reply. Refused with a
   * 503 while recovering, stopping, after a fatal error, or when too many
   * requests are already waiting.
   */
  request(make: (requestId: string, now: number) => ParticipantEvent): Promise<Answer> {
    return this.host.request(make);
  }

  /** Who holds the lock on `key` now, if anyone. Locks are not durable claims, so no ordering is needed. */
  lockHolder(key: string): TxId | undefined {
    return lockHolder(this.host.state, key);
  }

  inDoubt(): InDoubtView[] {
    return listTx(this.host.state, this.o.clock.now()).transactions;
  }

  /** The core state, for tests and the simulator's checks. */
  get coreState(): ParticipantState {
    return this.host.state;
  }

  /** Stops taking events, writes a last checkpoint if anything happened, and waits for queued effects. */
  stop(): Promise<void> {
    return this.host.stop();
  }

  private execute(effect: OwnEffect): void | Promise<void> {
    switch (effect.kind) {
      case 'resourcePrepare':
        this.prepareResource(effect.txId, effect.ops);
        return;
      case 'resourceCommit':
        return this.o.resource.commit(effect.txId, effect.data);
      case 'resourceAbort':
        return this.o.resource.abort(effect.txId, effect.data);
      case 'resourceRestore':
        return this.o.resource.restore(effect.snapshot);
      case 'inquire':
        // Always the configured coordinator, never the URL the prepare named (./peers.ts says why).
        this.inquiries.enqueue(effect.txId);
        return;
      case 'askPeer':
        this.peerInquiries.enqueue(effect.txId, effect.peerUrl);
        return;
    }
  }

  // ---- the resource ------------------------------------------------------------------

  /**
   * XA recover: what the resource holds prepared now, and, for the WAL's in-doubt and committed
   * branches it does not hold, whether they committed there. Asked before the core runs, so
   * recovery gets it as data.
   */
  private async askResource(snapshot: ParticipantSnapshot | undefined, records: readonly ParticipantRecord[]): Promise<ResourceRecovery> {
    const resource = this.o.resource;
    const prepared = await resource.recoverPrepared?.();
    if (!Array.isArray(prepared) || prepared.some((txId) => typeof txId !== 'string')) {
      throw new TypeError('Expected the resource\'s recoverPrepared() to resolve with an array of transaction ids.');
    }
    const ask = reconcileQuestions(snapshot, records, prepared);
    const outcomes: [TxId, ResourceOutcome][] = [];
    const outcomeOf = resource.outcomeOf;
    if (outcomeOf !== undefined) {
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let txId = ask[next++]; txId !== undefined; txId = ask[next++]) {
          const said = await outcomeOf.call(resource, txId);
          if (said !== 'committed' && said !== 'unknown') throw new TypeError(`Expected outcomeOf(${txId}) to be 'committed' or 'unknown', got ${String(said)}.`);
          outcomes.push([txId, said]);
        }
      };
      await Promise.all(Array.from({ length: Math.min(OUTCOME_QUERIES_IN_FLIGHT_MAX, ask.length) }, worker));
    }
    this.o.logger.info({ step: 'resource-recover', heldPrepared: prepared.length, asked: ask.length, answered: outcomes.length });
    return { prepared, outcomes };
  }

  /** Runs outside the driver's queue, so a slow resource delays only its own transaction. */
  private prepareResource(txId: TxId, ops: readonly unknown[]): void {
    const timer = setTimeout(() => {
      if (!this.preparing.delete(txId)) return;
      const reason = `the resource did not answer within ${this.prepareTimeoutMs} ms`;
      this.host.dispatch({ type: 'resourcePrepared', now: this.o.clock.now(), txId, vote: 'no', reason });
    }, this.prepareTimeoutMs);
    timer.unref();
    this.preparing.set(txId, timer);
    void Promise.resolve()
      .then(() => this.o.resource.prepare(txId, ops))
      .then(
        (r) => ({ vote: r.vote, reason: r.reason, data: r.data }),
        (error: unknown) => ({ vote: 'no' as const, reason: `the resource failed: ${error instanceof Error ? error.message : String(error)}`, data: undefined }),
      )
      .then((r) => {
        const t = this.preparing.get(txId);
        if (t === undefined) {
          // Too late: the core already voted no. The resource may still hold something for it.
          if (r.vote === 'yes' && !this.host.stopped) void Promise.resolve(this.o.resource.abort(txId, r.data)).catch(() => undefined);
          return;
        }
        clearTimeout(t);
        this.preparing.delete(txId);
        this.host.dispatch({
          type: 'resourcePrepared',
          now: this.o.clock.now(),
          txId,
          vote: r.vote,
          ...(r.reason !== undefined && { reason: r.reason }),
          ...(r.data !== undefined && { data: r.data }),
        });
      });
  }

  // ---- termination: asking the coordinator and the peers ------------------------------

  private updateGauges(state: ParticipantState): void {
    const m = this.o.metrics;
    m.set('participant_in_doubt', 'Transactions prepared and waiting for the decision.', inDoubtCount(state));
    m.set('participant_locks_held', 'Keys locked by a transaction.', state.locks.size);
    m.set('participant_lock_waiters', 'Prepares waiting for a lock.', state.waiting.length);
  }
}
