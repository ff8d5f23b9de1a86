/**
 * The coordinator runtime: owns the core's state, stamps events with the time,
 * and hands each step's effects to the EffectDriver, which writes (and syncs)
 * every record of a step before anything that step lets the world see.
 *
 *   persist    → the Log (record codes in ./records.ts)
 *   send       → the Transport (answers come back as events)
 *   reply      → the pending request's promise (the HTTP route answers it)
 *   setTimer   → Timers; crashPoint → CrashPoints; log → pino
 *
 * A persist failure is fail-stop: the driver poisons itself, the runtime logs
 * it as fatal and calls `onFatal` (the service exits and recovers from its WAL).
 */
import type { Clock, Timers } from '../../shared/clock.ts';
import type { StepResult } from '../../shared/core.ts';
import type { CrashPoints } from '../../shared/crash.ts';
import { EffectDriver } from '../../shared/driver.ts';
import { TwopcError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Metrics } from '../../shared/metrics.ts';
import type { Log, Recovered } from '../../wal/log.ts';
import type { Transport } from '../adapters/http-transport.ts';
import {
  initialState,
  snapshotOf,
  step,
  type ClientEvent,
  type CoordinatorConfig,
  type CoordinatorEffect,
  type CoordinatorEvent,
  type CoordinatorRecord,
  type CoordinatorState,
} from '../core/index.ts';
import { coordinatorCodec, decodeSnapshot, encodeSnapshot } from './records.ts';

export interface CoordinatorRuntimeOptions {
  readonly config: CoordinatorConfig;
  readonly log: Log;
  readonly recovered: Recovered;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly crashPoints: CrashPoints;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Called once on a persist failure, after the fatal log line. The services exit there. */
  readonly onFatal: (error: unknown) => void;
  /** A checkpoint after this many records... */
  readonly checkpointEveryRecords?: number;
  /** ...or after this long with any record since the last one. */
  readonly checkpointIntervalMs?: number;
  /** Requests awaiting a reply; beyond it new requests get a 503. */
  readonly pendingRequestsMax?: number;
}

/** A checkpoint of the core state as of a point in the step order, run in that order by the driver. */
interface CheckpointEffect {
  readonly kind: 'checkpoint';
  readonly lsn: number;
  readonly state: CoordinatorState;
}
type RuntimeEffect = CoordinatorEffect | CheckpointEffect;

export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** A client request as the HTTP layer builds it; the runtime adds the request id and the time. */
export type ClientRequest = ClientEvent extends infer E ? (E extends { requestId: string; now: number } ? Omit<E, 'requestId' | 'now'> : never) : never;

/** Steps an operator should notice. */
const WARN_STEPS = new Set(['decision.failed', 'heuristic.mixed', 'one-phase.in-doubt']);

export class CoordinatorRuntime {
  private state: CoordinatorState;
  private readonly driver: EffectDriver<CoordinatorRecord, RuntimeEffect>;
  private readonly pending = new Map<string, (answer: Answer) => void>();
  private nextRequestId = 0;
  private started = false;
  private stopped = false;
  private readonly baseLsn: number;
  private appendsIssued = 0;
  private lastCheckpointLsn: number;
  private checkpointInFlight: Promise<void> | undefined;
  private checkpointTimer: ReturnType<typeof setInterval> | undefined;
  private readonly everyRecords: number;
  private readonly pendingMax: number;

  constructor(private readonly o: CoordinatorRuntimeOptions) {
    this.state = initialState(o.config);
    this.baseLsn = o.log.lastLsn;
    this.lastCheckpointLsn = o.recovered.checkpoint?.lsn ?? 0;
    this.everyRecords = o.checkpointEveryRecords ?? 10_000;
    this.pendingMax = o.pendingRequestsMax ?? 8_192;
    this.driver = new EffectDriver<CoordinatorRecord, RuntimeEffect>({
      persist: (record, sync) => this.persist(record, sync),
      execute: (effect) => this.execute(effect),
      onFatal: (error) => this.fatal(error),
      // An armed crash point makes the driver run in exact effect order, so the WAL holds what the point says.
      isArmed: (point) => this.o.crashPoints.armed === point,
    });
  }

  /** Rebuilds the state from the WAL (checkpoint first), forces BOOT, and re-sends unfinished decisions. */
  async start(): Promise<void> {
    if (this.started) throw new Error('CoordinatorRuntime.start() called twice');
    const { checkpoint, entries } = this.o.recovered;
    const snapshot = checkpoint === undefined ? undefined : decodeSnapshot(checkpoint.data);
    const records = entries.map((e) => coordinatorCodec.decode(e.type, e.payload));
    this.dispatch({ type: 'recover', now: this.o.clock.now(), entries: records, ...(snapshot !== undefined && { snapshot }) });
    // Until BOOT is durable, a new transaction id could repeat one from before a crash.
    await this.driver.idle();
    if (this.driver.poisoned) throw new Error('coordinator recovery failed; see the fatal log line');
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
   * Feeds one client request to the core and resolves with its reply. Outcome
   * inquiries are answered even while recovering (the core says "pending"
   * until it knows); everything else is refused with a 503 until recovery,
   * after stopping, after a fatal error, or when too many requests wait.
   */
  request(req: ClientRequest): Promise<Answer> {
    const early = req.type === 'getOutcome' && !this.stopped && !this.driver.poisoned;
    if (!early && (!this.started || this.stopped || this.driver.poisoned)) {
      const why = this.stopped ? 'The coordinator is stopping.' : this.driver.poisoned ? 'The coordinator hit a fatal error.' : 'The coordinator is recovering.';
      return Promise.reject(new TwopcError('unavailable', why));
    }
    if (this.pending.size >= this.pendingMax) {
      return Promise.reject(new TwopcError('unavailable', `Too many requests in flight (max ${this.pendingMax}).`));
    }
    const requestId = `r${++this.nextRequestId}`;
    return new Promise<Answer>((resolve) => {
      this.pending.set(requestId, resolve);
      this.dispatch({ ...req, requestId, now: this.o.clock.now() } as CoordinatorEvent);
    });
  }

  /** The core state, for tests and the dashboard. */
  get coreState(): CoordinatorState {
    return this.state;
  }

  /** Stops taking events, writes a last checkpoint if anything happened, and waits for queued effects. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    if (this.started && !this.driver.poisoned && this.recordsSinceCheckpoint > 0) this.checkpoint();
    this.stopped = true;
    if (this.checkpointTimer !== undefined) clearInterval(this.checkpointTimer);
    this.o.timers.clearAll();
    await this.driver.idle();
    await this.checkpointInFlight;
    for (const resolve of this.pending.values()) {
      resolve({ status: 503, body: new TwopcError('unavailable', 'The coordinator stopped.').toBody() });
    }
    this.pending.clear();
  }

  // ---- the loop -----------------------------------------------------------------------

  private dispatch(event: CoordinatorEvent): void {
    if (this.stopped || this.driver.poisoned) return;
    let result: StepResult<CoordinatorState, CoordinatorEffect>;
    try {
      result = step(this.state, event);
    } catch (error) {
      // A throw from the core is a programmer error or a corrupt log: stop, like a failed write.
      this.fatal(error);
      return;
    }
    this.state = result.state;
    void this.driver.run(result.effects);
    this.o.metrics.set('coordinator_unfinished_transactions', 'Transactions not yet finished (active, voting, or awaiting acks).', this.state.txs.size);
    if (this.started && this.recordsSinceCheckpoint >= this.everyRecords) this.checkpoint();
  }

  private persist(record: CoordinatorRecord, sync: boolean): Promise<number> {
    const { type, payload } = coordinatorCodec.encode(record);
    this.appendsIssued++;
    return this.o.log.append(type, payload, { durable: sync }).then((lsn) => {
      this.o.logger.info({ txId: 'txId' in record ? record.txId : undefined, step: `wal.${record.type}`, lsn, forced: sync });
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
      case 'send':
        // Not awaited: sends run in parallel, and each answer comes back as its own event.
        void this.o.transport.deliver(effect).then((answer) => this.dispatch({ ...answer, now: this.o.clock.now() } as CoordinatorEvent));
        return;
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
        this.o.metrics.inc('coordinator_steps_total', 'Protocol steps taken, by step.', { step: effect.step });
        return;
      }
      case 'crashPoint':
        this.o.crashPoints.reach(effect.point);
        return;
      case 'checkpoint':
        return this.writeCheckpoint(effect);
    }
  }

  private fatal(error: unknown): void {
    this.o.logger.fatal({ err: error }, 'fail-stop: a WAL write failed; stopping so recovery can start from the WAL');
    this.o.onFatal(error);
  }

  // ---- checkpoints ---------------------------------------------------------------------

  private get recordsSinceCheckpoint(): number {
    return this.baseLsn + this.appendsIssued - this.lastCheckpointLsn;
  }

  /**
   * Queues a checkpoint behind every step so far. Appends are issued in step
   * order and LSNs go up by exactly one, so the LSN of the last record issued is
   * known now, and the state captured now reflects exactly those records.
   */
  private checkpoint(): void {
    if (this.checkpointInFlight !== undefined || this.stopped || this.driver.poisoned) return;
    const lsn = this.baseLsn + this.appendsIssued;
    if (lsn === 0 || lsn === this.lastCheckpointLsn) return;
    this.lastCheckpointLsn = lsn;
    this.checkpointInFlight = this.driver.run([{ kind: 'checkpoint', lsn, state: this.state }]);
  }

  private writeCheckpoint(c: CheckpointEffect): void {
    const bytes = encodeSnapshot(snapshotOf(c.state));
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
}
