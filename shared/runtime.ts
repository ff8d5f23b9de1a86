/**
 * The machinery both services' runtimes share: a CoreHost owns a pure core's
 * state, stamps events with the time, feeds them to `step`, and hands each
 * step's effects to the EffectDriver, which writes (and syncs) every record of
 * a step before anything that step lets the world see.
 *
 *   persist    → the Log, through the side's RecordCodec, one log line per record
 *   reply      → the pending request's promise (the HTTP route answers it)
 *   setTimer   → Timers; crashPoint → CrashPoints; log → pino
 *   the rest   → the side's own `execute` (the coordinator's sends, the participant's resource and inquiries);
 *                an effect the side puts in lanes (`lanesOf`) runs beside the queue (see ./driver.ts)
 *
 * A persist failure, a failed effect or a throw from the core is fail-stop:
 * the driver poisons itself, the host logs it as fatal and calls `onFatal`
 * (the services exit and recover from their WAL on restart).
 *
 * Checkpoints are taken at exact LSNs, queued behind the steps (see `checkpoint`).
 */
import type { Clock, Timers } from './clock.ts';
import type { CommonEffect, StepResult, TimerFired } from './core.ts';
import type { CrashPoints } from './crash.ts';
import { EffectDriver } from './driver.ts';
import { TwopcError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import type { RecordCodec } from './records.ts';
import type { Log, Recovered } from '../wal/log.ts';

/** What a request resolves with: the HTTP status and body the route sends. */
export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** The options every runtime takes; each side adds its own. */
export interface RuntimeHostOptions {
  readonly log: Log;
  readonly recovered: Recovered;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly crashPoints: CrashPoints;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Called once on a fatal error (a failed write or effect), after the fatal log line. The services exit there. */
  readonly onFatal: (error: unknown) => void;
  /** A checkpoint after this many records... */
  readonly checkpointEveryRecords?: number;
  /** ...or after this long with any record since the last one. */
  readonly checkpointIntervalMs?: number;
  /** Requests awaiting a reply; beyond it new requests get a 503. */
  readonly pendingRequestsMax?: number;
}

/** What one side plugs into the host: its core, its records, and the effects only it knows. */
export interface CoreBinding<S, Ev, X, R extends { type: string }> {
  /** 'coordinator' or 'participant': names the steps metric, error messages and the start-up error. */
  readonly role: string;
  readonly initialState: S;
  readonly step: (state: S, event: Ev | TimerFired) => StepResult<S, CommonEffect<R> | X>;
  readonly codec: RecordCodec<R>;
  /**
   * The first event of every run, built from what the WAL held (and, for a participant whose resource
   * keeps prepared work of its own, what the resource holds: asked here, before the core runs).
   */
  recoverEvent(now: number, records: R[], checkpoint: Uint8Array | undefined): Ev | Promise<Ev>;
  /** Runs one effect only this side knows. A returned promise holds up the effects after it, unless the effect is laned. */
  execute(effect: X): void | Promise<void>;
  /**
   * The driver lanes of an effect (shared/driver.ts `lanesOf`): an effect with lanes does not hold up
   * the queue, only the later effects that share a lane. Undefined for every effect when absent.
   */
  lanesOf?(effect: CommonEffect<R> | X): readonly string[] | undefined;
  /** The checkpoint bytes of `state`, taken when the driver reaches the checkpoint's place in the step order. */
  checkpointBytes(state: S): Uint8Array | Promise<Uint8Array>;
  /** Steps an operator should notice: logged as warnings. */
  readonly warnSteps: ReadonlySet<string>;
  /** Called after every step with the new state (gauges). */
  afterStep(state: S): void;
  /**
   * Sees each protocol step the core logs, with the time it ran: the side turns steps into
   * latencies and counts (coordinator/runtime/step-metrics.ts). Called per message: keep it cheap.
   */
  observeStep?(step: string, txId: string | undefined, fields: Readonly<Record<string, unknown>> | undefined, now: number): void;
  /** Called by `stop()` once no new event is taken, before waiting for queued effects. */
  onStop?(): void;
}

/** A checkpoint of the core state as of a point in the step order, run in that order by the driver. */
interface CheckpointEffect<S> {
  readonly kind: 'checkpoint';
  readonly lsn: number;
  readonly state: S;
}

type HostEffect<S, R> = CommonEffect<R> | CheckpointEffect<S>;

const HOST_KINDS: ReadonlySet<string> = new Set(['persist', 'reply', 'setTimer', 'cancelTimer', 'log', 'crashPoint', 'checkpoint']);

function isHostEffect<S, R>(e: { kind: string }): e is HostEffect<S, R> {
  return HOST_KINDS.has(e.kind);
}

export class CoreHost<S, Ev, X extends { kind: string }, R extends { type: string }> {
  private current: S;
  private readonly driver: EffectDriver<R, CommonEffect<R> | X | CheckpointEffect<S>>;
  private readonly pending = new Map<string, (answer: Answer) => void>();
  private nextRequestId = 0;
  private started = false;
  private isStopped = false;
  private readonly baseLsn: number;
  private appendsIssued = 0;
  private lastCheckpointLsn: number;
  private checkpointInFlight: Promise<void> | undefined;
  private checkpointTimer: ReturnType<typeof setInterval> | undefined;
  private readonly everyRecords: number;
  private readonly pendingMax: number;
  /** Protocol steps taken, by step: `<role>_steps_total`. */
  private readonly steps;

  constructor(
    private readonly o: RuntimeHostOptions,
    private readonly side: CoreBinding<S, Ev, X, R>,
  ) {
    this.current = side.initialState;
    this.steps = o.metrics.counterFor(`${side.role}_steps_total`, 'Protocol steps taken, by step.', ['step']);
    this.baseLsn = o.log.lastLsn;
    this.lastCheckpointLsn = o.recovered.checkpoint?.lsn ?? 0;
    this.everyRecords = o.checkpointEveryRecords ?? 10_000;
    this.pendingMax = o.pendingRequestsMax ?? 8_192;
    this.driver = new EffectDriver({
      persist: (record, sync) => this.persist(record, sync),
      execute: (effect) => this.execute(effect),
      onFatal: (error) => this.fatal(error),
      // An armed crash point makes the driver run in exact effect order, so the WAL holds what the point says.
      isArmed: (point) => this.o.crashPoints.armed === point,
      lanesOf: (effect) => (effect.kind === 'checkpoint' ? undefined : this.side.lanesOf?.(effect as CommonEffect<R> | X)),
    });
  }

  /**
   * Replays the WAL (checkpoint first) through the core, and takes no request
   * until every record that recovery step wrote is durable.
   */
  async start(): Promise<void> {
    const role = this.side.role;
    if (this.started) throw new Error(`${role.charAt(0).toUpperCase()}${role.slice(1)}Runtime.start() called twice`);
    const { checkpoint, entries } = this.o.recovered;
    const startedAt = this.o.clock.now();
    const records = entries.map((e) => this.side.codec.decode(e.type, e.payload));
    const recover = this.side.recoverEvent(this.o.clock.now(), records, checkpoint?.data);
    // Dispatched in this same turn when nothing needs asking, so no request can come between.
    this.dispatch(recover instanceof Promise ? await recover : recover);
    await this.driver.idle();
    if (this.driver.poisoned) throw new Error(`${role} recovery failed; see the fatal log line`);
    this.started = true;
    this.o.metrics.recoverySeconds.set((this.o.clock.now() - startedAt) / 1000);
    this.o.metrics.recoveredAtSeconds.set(this.o.clock.now() / 1000);
    const intervalMs = this.o.checkpointIntervalMs ?? 60_000;
    this.checkpointTimer = setInterval(() => {
      if (this.recordsSinceCheckpoint > 0) this.checkpoint();
    }, intervalMs);
    this.checkpointTimer.unref();
  }

  get recovering(): boolean {
    return !this.started;
  }

  get stopped(): boolean {
    return this.isStopped;
  }

  get state(): S {
    return this.current;
  }

  /**
   * Feeds one request to the core and resolves with its reply. Refused with a
   * 503 after stopping, after a fatal error, while recovering (unless
   * `whileRecovering`), or when too many requests are already waiting.
   */
  request(make: (requestId: string, now: number) => Ev, whileRecovering = false): Promise<Answer> {
    const role = this.side.role;
    if (this.isStopped) return Promise.reject(new TwopcError('unavailable', `The ${role} is stopping.`));
    if (this.driver.poisoned) return Promise.reject(new TwopcError('unavailable', `The ${this.side.role} hit a fatal error and is stopping; a restart recovers from its WAL.`));
    if (!this.started && !whileRecovering) return Promise.reject(new TwopcError('unavailable', `The ${role} is recovering.`));
    if (this.pending.size >= this.pendingMax) {
      return Promise.reject(new TwopcError('unavailable', `Too many requests in flight (max ${this.pendingMax}).`));
    }
    const requestId = `r${++this.nextRequestId}`;
    return new Promise<Answer>((resolve) => {
      this.pending.set(requestId, resolve);
      this.dispatch(make(requestId, this.o.clock.now()));
    });
  }

  /** Stops taking events, writes a last checkpoint if anything happened, and waits for queued effects. */
  async stop(): Promise<void> {
    if (this.isStopped) return;
    if (this.started && !this.driver.poisoned && this.recordsSinceCheckpoint > 0) this.checkpoint();
    this.isStopped = true;
    if (this.checkpointTimer !== undefined) clearInterval(this.checkpointTimer);
    this.o.timers.clearAll();
    this.side.onStop?.();
    await this.driver.idle();
    await this.checkpointInFlight;
    for (const resolve of this.pending.values()) {
      resolve({ status: 503, body: new TwopcError('unavailable', `The ${this.side.role} stopped.`).toBody() });
    }
    this.pending.clear();
  }

  // ---- the loop -----------------------------------------------------------------------

  /** Feeds one event to the core and queues the step's effects. Dropped once stopped or poisoned. */
  dispatch(event: Ev | TimerFired): void {
    if (this.isStopped || this.driver.poisoned) return;
    let result: StepResult<S, CommonEffect<R> | X>;
    try {
      result = this.side.step(this.current, event);
    } catch (error) {
      // A throw from the core is a programmer error or a corrupt log: stop, like a failed write.
      this.fatal(error);
      return;
    }
    this.current = result.state;
    void this.driver.run(result.effects);
    this.side.afterStep(this.current);
    if (this.started && this.recordsSinceCheckpoint >= this.everyRecords) this.checkpoint();
  }

  private persist(record: R, sync: boolean): Promise<number> {
    const { type, payload } = this.side.codec.encode(record);
    this.appendsIssued++;
    this.o.metrics.walWrites.inc();
    if (sync) this.o.metrics.walForcedWrites.inc();
    return this.o.log.append(type, payload, { durable: sync }).then((lsn) => {
      // Per record, so debug: a busy node appends thousands a second.
      this.o.logger.debug({ txId: 'txId' in record ? record.txId : undefined, step: `wal.${record.type}`, lsn, forced: sync });
      return lsn;
    });
  }

  private execute(effect: CommonEffect<R> | X | CheckpointEffect<S>): void | Promise<void> {
    if (!isHostEffect<S, R>(effect)) return this.side.execute(effect);
    switch (effect.kind) {
      case 'persist':
        // The driver writes records itself; none reach here.
        return;
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
        // Per message, so debug; the steps an operator must notice are warnings.
        if (this.side.warnSteps.has(effect.step)) this.o.logger.warn({ txId: effect.txId, step: effect.step, ...effect.fields });
        else if (this.o.logger.isLevelEnabled('debug')) this.o.logger.debug({ txId: effect.txId, step: effect.step, ...effect.fields });
        this.o.metrics.child(this.steps, effect.step).inc();
        this.side.observeStep?.(effect.step, effect.txId, effect.fields, this.o.clock.now());
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
    this.o.logger.fatal({ err: error }, 'fail-stop: a WAL write or a step failed; stopping so recovery can start from the WAL');
    this.o.onFatal(error);
  }

  // ---- checkpoints ---------------------------------------------------------------------

  private get recordsSinceCheckpoint(): number {
    return this.baseLsn + this.appendsIssued - this.lastCheckpointLsn;
  }

  /**
   * Queues a checkpoint behind every step so far. Appends are issued in step
   * order and LSNs go up by exactly one, so the LSN of the last record issued
   * is known now; the core state is captured now (states are immutable); and
   * anything the side adds (the participant's resource snapshot) is taken when
   * the driver reaches this point, after the effects of every earlier step and
   * before any later one.
   */
  private checkpoint(): void {
    if (this.checkpointInFlight !== undefined || this.isStopped || this.driver.poisoned) return;
    const lsn = this.baseLsn + this.appendsIssued;
    if (lsn === 0 || lsn === this.lastCheckpointLsn) return;
    this.lastCheckpointLsn = lsn;
    this.checkpointInFlight = this.driver.run([{ kind: 'checkpoint', lsn, state: this.current }]);
  }

  private async writeCheckpoint(c: CheckpointEffect<S>): Promise<void> {
    // Laned effects started before this point (resource commits) belong to the state it captures:
    // the snapshot is taken once they are applied, and the records they replay may then be dropped.
    if (this.driver.lanedInFlight > 0) await this.driver.lanesIdle();
    const bytes = this.side.checkpointBytes(c.state);
    // A side whose checkpoint needs I/O (a resource snapshot) holds up later effects until it has it.
    if (bytes instanceof Promise) return bytes.then((b) => this.saveCheckpoint(c.lsn, b));
    this.saveCheckpoint(c.lsn, bytes);
  }

  private saveCheckpoint(lsn: number, bytes: Uint8Array): void {
    // Written off the driver's queue: replies need not wait for the checkpoint file's fsync.
    this.checkpointInFlight = this.o.log.checkpoint(lsn, bytes).then(
      () => {
        this.o.logger.info({ step: 'checkpoint', lsn, bytes: bytes.length });
        this.checkpointInFlight = undefined;
      },
      (error: unknown) => {
        // The log itself is intact; a later checkpoint may succeed, and recovery still has every record.
        this.o.logger.error({ err: error, step: 'checkpoint-failed', lsn });
        this.checkpointInFlight = undefined;
      },
    );
  }
}
