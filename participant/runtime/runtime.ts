/**
 * The participant runtime: owns the core's state, feeds it events, and hands
 * the effects to the EffectDriver, which runs every persist (and sync) of a
 * step before anything that step lets the world see.
 *
 *   persist        → the Log (record codes in ./records.ts)
 *   resource*      → the Resource (prepare answers come back as events)
 *   inquire/askPeer→ HTTP to the coordinator / peers (answers come back as events)
 *   reply          → the pending request's promise (the HTTP adapter answers it)
 *   setTimer       → Timers; crashPoint → CrashPoints; log → pino
 *
 * A persist or resource failure is fail-stop: the driver poisons itself, the
 * runtime logs it as fatal and calls `onFatal` (the services exit; the process
 * recovers from its WAL on restart).
 */
import type { StepResult } from '../../shared/core.ts';
import type { Clock, Timers } from '../../shared/clock.ts';
import type { CrashPoints } from '../../shared/crash.ts';
import { EffectDriver } from '../../shared/driver.ts';
import { TwopcError } from '../../shared/errors.ts';
import { TransportError, type HttpClient } from '../../shared/http/client.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Metrics } from '../../shared/metrics.ts';
import type { TxId } from '../../shared/types.ts';
import type { Log, Recovered } from '../../wal/log.ts';
import {
  checkpointOf,
  inDoubtCount,
  initialState,
  listTx,
  lockHolder,
  step,
  type InDoubtView,
  type ParticipantConfig,
  type ParticipantEffect,
  type ParticipantEvent,
  type ParticipantRecord,
  type ParticipantState,
} from '../core/index.ts';
import type { Resource } from '../resources/resource.ts';
import { decodeSnapshot, encodeSnapshot, participantCodec } from './records.ts';

export interface RuntimeOptions {
  readonly name: string;
  readonly log: Log;
  readonly recovered: Recovered;
  readonly resource: Resource;
  readonly http: HttpClient;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly crashPoints: CrashPoints;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Core tuning (lock waits, limits, inquiry backoff); `keysOf` comes from the resource. */
  readonly core?: Omit<ParticipantConfig, 'keysOf'>;
  /** When set, outcome inquiries go here rather than to the URL each PREPARED recorded. */
  readonly coordinatorUrl?: string;
  /** Called once on a persist or resource failure, after the fatal log line. */
  readonly onFatal: (error: unknown) => void;
  /** A checkpoint after this many records... */
  readonly checkpointEveryRecords?: number;
  /** ...or after this long with any record since the last one. */
  readonly checkpointIntervalMs?: number;
  /** A resource prepare that takes longer votes no. */
  readonly resourcePrepareTimeoutMs?: number;
  /** Requests awaiting a reply; beyond it new requests get a 503. */
  readonly pendingRequestsMax?: number;
  /** Timeout of each inquiry to the coordinator or a peer. */
  readonly inquiryTimeoutMs?: number;
}

/** A checkpoint of the core state as of a point in the step order, run in that order by the driver. */
interface CheckpointEffect {
  readonly kind: 'checkpoint';
  readonly lsn: number;
  readonly state: ParticipantState;
}
type RuntimeEffect = ParticipantEffect | CheckpointEffect;

export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** Steps an operator should notice. */
const WARN_STEPS = new Set(['protocol-violation', 'blocked', 'heuristic', 'heuristic-mismatch', 'inquiry-failed', 'vote-no']);

export class ParticipantRuntime {
  private state: ParticipantState;
  private readonly driver: EffectDriver<ParticipantRecord, RuntimeEffect>;
  private readonly pending = new Map<string, (answer: Answer) => void>();
  /** Resource prepares in flight: the first answer (or the timeout) wins. */
  private readonly preparing = new Map<TxId, ReturnType<typeof setTimeout>>();
  private nextRequestId = 0;
  private started = false;
  private stopped = false;
  private readonly baseLsn: number;
  private appendsIssued = 0;
  private lastCheckpointLsn: number;
  private checkpointInFlight: Promise<void> | undefined;
  private checkpointTimer: ReturnType<typeof setInterval> | undefined;
  private readonly everyRecords: number;
  private readonly prepareTimeoutMs: number;
  private readonly pendingMax: number;
  private readonly inquiryTimeoutMs: number;

  constructor(private readonly o: RuntimeOptions) {
    this.state = initialState({ ...o.core, keysOf: (ops) => o.resource.keysOf(ops) });
    this.baseLsn = o.log.lastLsn;
    this.lastCheckpointLsn = o.recovered.checkpoint?.lsn ?? 0;
    this.everyRecords = o.checkpointEveryRecords ?? 10_000;
    this.prepareTimeoutMs = o.resourcePrepareTimeoutMs ?? 10_000;
    this.pendingMax = o.pendingRequestsMax ?? 8_192;
    this.inquiryTimeoutMs = o.inquiryTimeoutMs ?? 2_000;
    this.driver = new EffectDriver<ParticipantRecord, RuntimeEffect>({
      persist: (record, sync) => this.persist(record, sync),
      execute: (effect) => this.execute(effect),
      onFatal: (error) => this.fatal(error),
      // An armed crash point makes the driver run in exact effect order, so the WAL holds what the point says.
      isArmed: (point) => this.o.crashPoints.armed === point,
    });
  }

  /** Replays the WAL (checkpoint first), rebuilds the resource, and starts asking about in-doubt transactions. */
  async start(): Promise<void> {
    if (this.started) throw new Error('ParticipantRuntime.start() called twice');
    const { checkpoint, entries } = this.o.recovered;
    const snapshot = checkpoint === undefined ? undefined : decodeSnapshot(checkpoint.data);
    const records = entries.map((e) => participantCodec.decode(e.type, e.payload));
    this.dispatch({ type: 'recover', now: this.o.clock.now(), records, ...(snapshot !== undefined && { snapshot }) });
    await this.driver.idle();
    if (this.driver.poisoned) throw new Error('participant recovery failed; see the fatal log line');
    this.started = true;
    const intervalMs = this.o.checkpointIntervalMs ?? 60_000;
    this.checkpointTimer = setInterval(() => {
      if (this.recordsSinceCheckpoint > 0) this.checkpoint();
    }, intervalMs);
    this.checkpointTimer.unref();
  }

  get recovering(): boolean {
    return !this.started;
  }

  /**
   * Feeds one request to the core and resolves with its reply. Refused with a
   * 503 while recovering, stopping, after a fatal error, or when too many
   * requests are already waiting.
   */
  request(make: (requestId: string, now: number) => ParticipantEvent): Promise<Answer> {
    if (!this.started || this.stopped || this.driver.poisoned) {
      return Promise.reject(new TwopcError('unavailable', this.stopped ? 'The participant is stopping.' : 'The participant is recovering.'));
    }
    if (this.pending.size >= this.pendingMax) {
      return Promise.reject(new TwopcError('unavailable', `Too many requests in flight (max ${this.pendingMax}).`));
    }
    const requestId = `r${++this.nextRequestId}`;
    return new Promise<Answer>((resolve) => {
      this.pending.set(requestId, resolve);
      this.dispatch(make(requestId, this.o.clock.now()));
    });
  }

  /** Who holds the lock on `key` now, if anyone. Locks are not durable claims, so no ordering is needed. */
  lockHolder(key: string): TxId | undefined {
    return lockHolder(this.state, key);
  }

  inDoubt(): InDoubtView[] {
    return listTx(this.state, this.o.clock.now()).transactions;
  }

  /** The core state, for tests and the simulator's checks. */
  get coreState(): ParticipantState {
    return this.state;
  }

  /** Stops taking events, writes a last checkpoint if anything happened, and waits for queued effects. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    if (this.started && !this.driver.poisoned && this.recordsSinceCheckpoint > 0) this.checkpoint();
    this.stopped = true;
    if (this.checkpointTimer !== undefined) clearInterval(this.checkpointTimer);
    this.o.timers.clearAll();
    for (const t of this.preparing.values()) clearTimeout(t);
    this.preparing.clear();
    await this.driver.idle();
    await this.checkpointInFlight;
    for (const resolve of this.pending.values()) {
      resolve({ status: 503, body: new TwopcError('unavailable', 'The participant stopped.').toBody() });
    }
    this.pending.clear();
  }

  // ---- the loop -----------------------------------------------------------------------

  private dispatch(event: ParticipantEvent): void {
    if (this.stopped || this.driver.poisoned) return;
    let result: StepResult<ParticipantState, ParticipantEffect>;
    try {
      result = step(this.state, event);
    } catch (error) {
      // A throw from the core is a programmer error or a corrupt log: stop, like a failed write.
      this.fatal(error);
      return;
    }
    this.state = result.state;
    void this.driver.run(result.effects);
    this.updateGauges();
    if (this.started && this.recordsSinceCheckpoint >= this.everyRecords) this.checkpoint();
  }

  private persist(record: ParticipantRecord, sync: boolean): Promise<number> {
    const { type, payload } = participantCodec.encode(record);
    this.appendsIssued++;
    return this.o.log.append(type, payload, { durable: sync }).then((lsn) => {
      this.o.logger.info({ txId: record.txId, step: `wal.${record.type}`, lsn, forced: sync });
      return lsn;
    });
  }

  private execute(effect: RuntimeEffect): void | Promise<void> {
    switch (effect.kind) {
      case 'reply': {
        const resolve = this.pending.get(effect.requestId);
        this.pending.delete(effect.requestId);
        resolve?.({ status: effect.status, body: effect.body });
        return;
      }
      case 'setTimer':
        this.o.timers.set(effect.id, effect.ms, () => this.dispatch({ type: 'timer', id: effect.id, now: this.o.clock.now() }));
        return;
      case 'cancelTimer':
        this.o.timers.clear(effect.id);
        return;
      case 'log': {
        const line = { txId: effect.txId, step: effect.step, ...effect.fields };
        if (WARN_STEPS.has(effect.step)) this.o.logger.warn(line);
        else this.o.logger.info(line);
        this.o.metrics.inc('participant_steps_total', 'Protocol steps taken, by step.', { step: effect.step });
        return;
      }
      case 'crashPoint':
        this.o.crashPoints.reach(effect.point);
        return;
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
        void this.inquire(effect.txId, this.o.coordinatorUrl ?? effect.coordinator);
        return;
      case 'askPeer':
        void this.askPeer(effect.txId, effect.peerUrl);
        return;
      case 'checkpoint':
        return this.writeCheckpoint(effect);
    }
  }

  private fatal(error: unknown): void {
    this.o.logger.fatal({ err: error }, 'fail-stop: a write or an apply failed; stopping so recovery can start from the WAL');
    this.o.onFatal(error);
  }

  // ---- the resource ------------------------------------------------------------------

  /** Runs outside the driver's queue, so a slow resource delays only its own transaction. */
  private prepareResource(txId: TxId, ops: readonly unknown[]): void {
    const timer = setTimeout(() => {
      if (!this.preparing.delete(txId)) return;
      const reason = `the resource did not answer within ${this.prepareTimeoutMs} ms`;
      this.dispatch({ type: 'resourcePrepared', now: this.o.clock.now(), txId, vote: 'no', reason });
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
          if (r.vote === 'yes' && !this.stopped) void Promise.resolve(this.o.resource.abort(txId, r.data)).catch(() => undefined);
          return;
        }
        clearTimeout(t);
        this.preparing.delete(txId);
        this.dispatch({
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

  private async inquire(txId: TxId, coordinator: string): Promise<void> {
    const url = `${coordinator.replace(/\/+$/, '')}/v1/transactions/${encodeURIComponent(txId)}/outcome`;
    const now = () => this.o.clock.now();
    try {
      const res = await this.o.http.get<{ outcome?: unknown }>(url, { timeoutMs: this.inquiryTimeoutMs });
      const outcome = res.status === 200 ? res.data?.outcome : undefined;
      if (outcome === 'committed' || outcome === 'aborted') return this.dispatch({ type: 'outcomeLearned', now: now(), txId, outcome });
      const reason = res.status === 200 ? `the coordinator says ${String(outcome)}` : `the coordinator answered HTTP ${res.status}`;
      this.dispatch({ type: 'inquiryFailed', now: now(), txId, reason, coordinatorReachable: true });
    } catch (error) {
      const reason = error instanceof TransportError ? error.message : String(error);
      this.dispatch({ type: 'inquiryFailed', now: now(), txId, reason, coordinatorReachable: false });
    }
  }

  private async askPeer(txId: TxId, peerUrl: string): Promise<void> {
    const url = `${peerUrl}/v1/2pc/transactions/${encodeURIComponent(txId)}/inquiry`;
    let answer: 'committed' | 'aborted' | 'prepared' | 'unreachable' = 'unreachable';
    let heuristic = false;
    try {
      const res = await this.o.http.post<{ state?: unknown; heuristic?: unknown }>(url, {}, { timeoutMs: this.inquiryTimeoutMs });
      const state = res.status === 200 ? res.data?.state : undefined;
      if (state === 'committed' || state === 'aborted' || state === 'prepared') answer = state;
      heuristic = res.data?.heuristic !== undefined;
    } catch {
      // No answer: the peer counts as unreachable this round.
    }
    this.dispatch({ type: 'peerAnswered', now: this.o.clock.now(), txId, peerUrl, answer, ...(heuristic && { heuristic }) });
  }

  // ---- checkpoints ---------------------------------------------------------------------

  private get recordsSinceCheckpoint(): number {
    return this.baseLsn + this.appendsIssued - this.lastCheckpointLsn;
  }

  /**
   * Queues a checkpoint behind every step so far. Appends are issued in step
   * order and LSNs go up by exactly one, so the LSN of the last record issued
   * is known now; the core state is captured now (states are immutable); and
   * the resource is snapshotted when the driver reaches this point, after the
   * effects of every earlier step and before any later one.
   */
  private checkpoint(): void {
    if (this.checkpointInFlight !== undefined || this.stopped || this.driver.poisoned) return;
    const lsn = this.baseLsn + this.appendsIssued;
    if (lsn === 0 || lsn === this.lastCheckpointLsn) return;
    this.lastCheckpointLsn = lsn;
    this.checkpointInFlight = this.driver.run([{ kind: 'checkpoint', lsn, state: this.state }]);
  }

  private async writeCheckpoint(c: CheckpointEffect): Promise<void> {
    const resourceSnapshot = await this.o.resource.snapshot();
    const bytes = encodeSnapshot(checkpointOf(c.state, resourceSnapshot));
    // Written off the driver's queue: replies need not wait for the checkpoint file's fsync.
    this.checkpointInFlight = this.o.log.checkpoint(c.lsn, bytes).then(
      () => {
        this.o.logger.info({ step: 'checkpoint', lsn: c.lsn, bytes: bytes.length });
        this.checkpointInFlight = undefined;
      },
      (error: unknown) => {
        // The log itself is intact; a later checkpoint may succeed, and recovery still has every record.
        this.o.logger.error({ err: error, step: 'checkpoint-failed', lsn: c.lsn });
        this.checkpointInFlight = undefined;
      },
    );
  }

  private updateGauges(): void {
    const m = this.o.metrics;
    m.set('participant_in_doubt', 'Transactions prepared and waiting for the decision.', inDoubtCount(this.state));
    m.set('participant_locks_held', 'Keys locked by a transaction.', this.state.locks.size);
    m.set('participant_lock_waiters', 'Prepares waiting for a lock.', this.state.waiting.length);
  }
}
