/**
 * What every simulated service shares: a process that is up or down, an
 * incarnation number that changes at each restart, its timers, the requests
 * it holds (awaiting a `reply` effect) and the calls it has made (awaiting an
 * answer), and the services' own effect driver (shared/driver.ts), the same
 * code that orders the services' effects.
 *
 * The hooks given to the driver do what the services' host (shared/runtime.ts)
 * does with each effect, on simulated I/O: a persist is a write to the
 * simulated disk, and a forced one waits a few simulated milliseconds for its
 * fdatasync, so events and crashes fall between a write and its durability;
 * a participant's resource apply takes simulated time too, on the driver's
 * lanes. A crash point may crash the node exactly where it stands: the seed's
 * choice is drawn when the step's effects are queued, and a step with a point
 * that will crash runs in the driver's exact order, as an armed point does in
 * the services. A crash throws in the driver's hook, so the driver runs nothing
 * more for the dead incarnation; a failed write fail-stops the node through
 * the driver's `onFatal`.
 *
 * Checkpoints are queued behind the steps, as the host queues them: the state
 * is captured when it is queued, at the LSN of the last record queued, and
 * written when the driver reaches it, once the laned applies before it landed.
 */
import type { CrashPointEffect, StepResult } from '../../shared/core.ts';
import type { DriverHooks, EffectDriver } from '../../shared/driver.ts';
import type { Prng } from '../../scenarios/prng.ts';
import type { SimDisk } from './disk.ts';
import type { Ghost } from './ghost.ts';
import type { NodeId, RequestMsg, RequestPayload, SimEvent } from './messages.ts';
import { TIMING, type FaultProfile, type PlantedBug } from './profile.ts';
import type { Stats } from './stats.ts';

/** How a call that asked for no stream ends: an answer, or none. */
export type WholeResult = { readonly kind: 'answer'; readonly status: number; readonly body: unknown } | { readonly kind: 'error'; readonly error: 'timeout' | 'unreachable' | 'reset' };

export type CallResult =
  | WholeResult
  /** One line of a streamed batch answer (its JSON text); the call stays open for more. */
  | { readonly kind: 'line'; readonly line: string }
  /** A streamed batch answer's end: every line has come that will come. */
  | { readonly kind: 'end' };

/** Whether a call's result is whole: only a coordinator's batch asks for a streamed answer, so every other call's result is. */
export const isWhole = (r: CallResult): r is WholeResult => r.kind === 'answer' || r.kind === 'error';

/** Where and how a crash point kills a node, when the seed says it does. */
export interface CrashPlan {
  readonly reason: string;
  readonly downtimeMsMax?: number;
}

/** What a node may ask of the world it lives in. */
export interface Host {
  readonly ghost: Ghost;
  readonly stats: Stats;
  readonly profile: FaultProfile;
  readonly bug: PlantedBug | undefined;
  /** Draws for node-local choices (resource latency, flush delay, fsync errors). */
  readonly rng: Prng;
  /** This node's clock: the virtual time plus its skew. */
  nodeNow(node: NodeId): number;
  schedule(delayMs: number, event: SimEvent): void;
  /** A timer's real delay: late, sometimes, when the seed says so. */
  timerDelayMs(ms: number): number;
  newToken(): number;
  /** Makes a call: the answer, a failure or a timeout reaches `from.onCallResult` with `context`. */
  request(from: Endpoint, to: NodeId, payload: RequestPayload, timeoutMs: number, context: unknown): void;
  /**
   * A local timer that ends like a call nobody answers: after `timeoutMs`, `from.onCallResult` gets
   * `context` with a timeout (a batched message's own timeout). Returns its id in `from.calls`.
   */
  expireAfter(from: Endpoint, timeoutMs: number, context: unknown): number;
  respond(from: NodeId, to: NodeId, callId: number, status: number, body: unknown, batch?: boolean, stream?: 'line' | 'end'): void;
  /** Whether `node` will crash when it reaches this crash point (drawn when the step is queued). */
  crashDraw(node: NodeId, point: string): CrashPlan | undefined;
  /** The node dies now. */
  crash(node: NodeId, reason: string, downtimeMsMax?: number): void;
  /**
   * `node` (the coordinator) failed to deliver a commit that another participant already
   * acknowledged: it may take a checkpoint and crash soon after, when the seed says so.
   */
  commitOwed(node: NodeId): void;
  /** Whether `node` loses power now, an answer having left while a write of its is not durable; true when it crashed. */
  crashAfterLazyReply(node: NodeId): boolean;
  /** A write failed: the node stops (and is restarted later). */
  failStop(node: NodeId, error: unknown): void;
  /** The effect driver a node runs: the real one, or a planted bug's. */
  newDriver<R, E extends { kind: string }>(hooks: DriverHooks<R, E>): EffectDriver<R, E>;
  /** Whether faults are still being injected. */
  readonly faultsOn: boolean;
  /** Records between checkpoints, or 0 for none. */
  readonly checkpointEveryRecords: number;
  /** A line for the trace of the current step. */
  note(text: string): void;
  /**
   * Runs `fn` once the event being handled is done, its microtasks included: the end of the
   * service's event-loop turn, where a `setImmediate` runs (the batcher's lanes send then).
   */
  endOfTurn(fn: () => void): void;
}

/** Anything that can receive requests and make calls. */
export interface Endpoint {
  readonly id: NodeId;
  readonly up: boolean;
  readonly incarnation: number;
  readonly calls: Map<number, unknown>;
  onRequest(msg: RequestMsg): Promise<void>;
  onCallResult(context: unknown, result: CallResult): Promise<void>;
}

interface Inbound {
  readonly callId: number;
  readonly from: NodeId;
  readonly payload: RequestPayload;
  /** For a message of a batch: where its reply goes in the batch's answer. */
  readonly slot?: { readonly answer: BatchAnswer; readonly index: number };
}

/**
 * A batch being answered, as the batch route does: one reply per message, sent together once the
 * last is in, or (`stream`) each on its own line as soon as it is in, then the end.
 */
export interface BatchAnswer {
  readonly callId: number;
  readonly from: NodeId;
  readonly stream: boolean;
  readonly replies: { txId: string; status: number; body: unknown }[];
  left: number;
}

type CommonOutward = { readonly kind: 'reply' | 'setTimer' | 'cancelTimer' | 'log' } & Record<string, unknown>;

/** A checkpoint of the state as of its place in the step order (the host's `checkpoint` effect). */
interface CheckpointEffect<S> {
  readonly kind: 'checkpoint';
  readonly lsn: number;
  readonly state: S;
}

/** Thrown inside the driver's hooks once the node is dead: the driver stops there and runs nothing more. */
class Crashed extends Error {
  constructor(node: NodeId) {
    super(`${node} crashed`);
  }
}

/**
 * Lets every promise chain that waits on nothing but other promises run to its end. The simulated
 * world does no real I/O and sets no real timer, so one macrotask turn drains them all, in an order
 * fixed by the code and the seed: a seed still replays exactly.
 */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export abstract class SimNode<S, Ev, Eff extends { readonly kind: string }, R extends { readonly type: string }> implements Endpoint {
  up = false;
  incarnation = 0;
  abstract state: S;
  readonly calls = new Map<number, unknown>();
  protected readonly timers = new Map<string, number>();
  protected readonly inbound = new Map<string, Inbound>();
  private driver: EffectDriver<R, Eff | CheckpointEffect<S>> | undefined;
  /** The crash choices of the crash points queued and not yet reached, in queue order. */
  private crashPlans: (CrashPlan | undefined)[] = [];
  /** Whether the step being queued has a crash point that will crash (read by the driver's `isArmed`). */
  private armed = false;
  /** From a start until the recovery step's writes are durable: requests are refused meanwhile. */
  recovering = false;
  private requestSeq = 0;
  private flushPending = false;
  /** The LSN of the last record queued (written or not yet), and of the last checkpoint queued. */
  private lsnQueued = 0;
  private checkpointLsn = 0;
  private checkpointing = false;

  constructor(
    protected readonly host: Host,
    readonly id: NodeId,
    readonly disk: SimDisk<R>,
  ) {}

  protected abstract coreStep(state: S, event: Ev): StepResult<S, Eff>;
  /** The ghost watches each step: what was decided, what was received. */
  protected abstract observe(before: S, event: Ev, result: StepResult<S, Eff>): void;
  /** Effects other than persist, crashPoint, reply, timers and log. May return a promise (slow I/O). */
  protected abstract executeOther(effect: Eff): void | Promise<void>;
  /** The driver lanes of an effect (shared/driver.ts `lanesOf`); none by default. */
  protected lanesOf(_effect: Eff): readonly string[] | undefined {
    return undefined;
  }
  /** A reply is about to leave for a request. */
  protected abstract onReply(payload: RequestPayload, status: number, body: unknown): void;
  /** Encodes `state` (and the resource as it is now) for a checkpoint. */
  protected abstract snapshot(state: S): Uint8Array;
  abstract onRequest(msg: RequestMsg): Promise<void>;
  abstract onCallResult(context: unknown, result: CallResult): Promise<void>;
  /** Brings the process up on what its disk kept. */
  abstract start(): Promise<void>;

  get now(): number {
    return this.host.nodeNow(this.id);
  }

  /** Feeds one event to the core, queues its effects, and runs them as far as they go without simulated time passing. */
  async feed(event: Ev): Promise<void> {
    // Not awaited: a step's effects may wait on simulated time (an fsync, an apply), which passes only between events.
    void this.step(event);
    await settle();
  }

  /**
   * Feeds the recovery event. Like the services' host, the node takes no request (a 503) until
   * every record recovery wrote is durable: see `recovering`.
   */
  protected async recover(event: Ev): Promise<void> {
    const incarnation = this.incarnation;
    this.recovering = true;
    void this.step(event)?.then(() => {
      if (incarnation === this.incarnation) this.recovering = false;
    });
    await settle();
  }

  /** Answers a request the node cannot take now, as the services do while recovering. */
  protected refuse(msg: RequestMsg): void {
    this.host.respond(this.id, msg.from, msg.callId, 503, { error: { code: 'unavailable', message: `${this.id} is recovering` } });
  }

  private step(event: Ev): Promise<void> | undefined {
    if (!this.up) return undefined;
    const before = this.state;
    const result = this.coreStep(before, event);
    this.state = result.state;
    this.observe(before, event, result);
    const done = this.queue(result.effects);
    if (this.host.checkpointEveryRecords > 0 && this.lsnQueued - this.checkpointLsn >= this.host.checkpointEveryRecords) this.checkpoint();
    return done;
  }

  private queue(effects: readonly (Eff | CheckpointEffect<S>)[]): Promise<void> | undefined {
    const driver = this.driver;
    if (!driver) return undefined;
    this.armed = false;
    for (const e of effects) {
      if (e.kind === 'persist') this.lsnQueued++;
      else if (e.kind === 'crashPoint') {
        const plan = this.host.crashDraw(this.id, (e as unknown as CrashPointEffect).point);
        this.crashPlans.push(plan);
        if (plan) this.armed = true;
      }
    }
    return driver.run(effects);
  }

  /** Queues a checkpoint of the state as it is now, at the LSN of the last record queued; false when there is nothing new to keep. */
  checkpoint(): boolean {
    if (!this.up || this.checkpointing || this.lsnQueued === 0 || this.lsnQueued === this.checkpointLsn) return false;
    this.checkpointing = true;
    this.checkpointLsn = this.lsnQueued;
    void this.queue([{ kind: 'checkpoint', lsn: this.lsnQueued, state: this.state }]);
    return true;
  }

  /** A checkpoint now (the interval checkpoint of the services), run as far as it goes. */
  async checkpointNow(): Promise<boolean> {
    const queued = this.checkpoint();
    await settle();
    return queued;
  }

  protected newRequestId(): string {
    return `${this.id}.${this.incarnation}.${++this.requestSeq}`;
  }

  protected hold(msg: RequestMsg, batched?: { readonly payload: RequestPayload; readonly answer: BatchAnswer; readonly index: number }): string {
    const requestId = this.newRequestId();
    const { callId, from } = msg;
    this.inbound.set(requestId, batched ? { callId, from, payload: batched.payload, slot: batched } : { callId, from, payload: msg.payload });
    return requestId;
  }

  /** Puts one batched message's reply in its place; true when it was the last, and the batch's answer has left. */
  private answerInBatch(held: Inbound, status: number, body: unknown): boolean {
    const slot = held.slot;
    if (slot === undefined || (held.payload.type !== 'prepare' && held.payload.type !== 'commit' && held.payload.type !== 'abort')) return false;
    const reply = { txId: held.payload.body.txId, status, body };
    const { answer } = slot;
    if (answer.stream) this.host.respond(this.id, answer.from, answer.callId, 200, JSON.stringify({ i: slot.index, ...reply }), true, 'line');
    else answer.replies[slot.index] = reply;
    if (--answer.left > 0) return false;
    if (answer.stream) this.host.respond(this.id, answer.from, answer.callId, 200, undefined, true, 'end');
    else this.host.respond(this.id, answer.from, answer.callId, 200, { replies: answer.replies }, true);
    return true;
  }

  /** Throws once the incarnation that queued an effect is gone. */
  private alive(incarnation: number): void {
    if (!this.up || incarnation !== this.incarnation) throw new Crashed(this.id);
  }

  /** Waits `delayMs` of simulated time in this incarnation; never resolves if the node dies first. */
  protected ioWait(what: string, delayMs: number): Promise<void> {
    return new Promise((done) => this.host.schedule(delayMs, { kind: 'io', node: this.id, incarnation: this.incarnation, what, done }));
  }

  /** An `io` event: the wait it ends resumes, if its incarnation is still up. */
  async ioDone(incarnation: number, done: () => void): Promise<boolean> {
    if (!this.up || incarnation !== this.incarnation) return false;
    done();
    await settle();
    return true;
  }

  private newDriver(): EffectDriver<R, Eff | CheckpointEffect<S>> {
    const incarnation = this.incarnation;
    return this.host.newDriver<R, Eff | CheckpointEffect<S>>({
      persist: async (record, sync) => {
        this.alive(incarnation);
        await this.persist(record, sync);
        this.alive(incarnation);
      },
      execute: (effect) => {
        this.alive(incarnation);
        if ((this.driver?.lanedInFlight ?? 0) > 0) this.host.stats.overtakes++;
        return this.execute(effect);
      },
      onFatal: (error) => {
        if (error instanceof Crashed || !this.up || incarnation !== this.incarnation) return;
        this.host.failStop(this.id, error);
      },
      isArmed: () => this.armed,
      lanesOf: (effect) => (effect.kind === 'checkpoint' ? undefined : this.lanesOf(effect as Eff)),
    });
  }

  private async persist(record: R, sync: boolean): Promise<void> {
    if (!sync) {
      await this.disk.append(record, false);
      if (!this.flushPending) {
        this.flushPending = true;
        this.host.schedule(this.host.rng.int(TIMING.flushMinMs, TIMING.flushMaxMs), { kind: 'flush', node: this.id, incarnation: this.incarnation });
      }
      return;
    }
    if (this.disk.appendsDurable) {
      // The etcd log: an append resolves once a quorum has it; there is no fsync of ours to wait for.
      await this.disk.append(record, true);
      return;
    }
    this.maybeFailSync();
    const fsyncMs = this.host.rng.int(TIMING.fsyncMinMs, TIMING.fsyncMaxMs);
    if (fsyncMs === 0) {
      await this.disk.append(record, true);
      return;
    }
    // Written now, in step order; durable only when the fdatasync returns, a little later.
    this.host.stats.slowSyncs++;
    const incarnation = this.incarnation;
    await this.disk.append(record, false);
    await this.ioWait('fsync', fsyncMs);
    this.alive(incarnation);
    await this.disk.flush();
  }

  private maybeFailSync(): void {
    if (this.host.faultsOn && this.host.rng.next() < this.host.profile.fsyncErrorP) {
      this.host.stats.fault('fsync-error');
      this.disk.failNextSync();
    }
  }

  /** The WAL's background flush. */
  async flush(incarnation: number): Promise<void> {
    if (!this.up || incarnation !== this.incarnation) return;
    this.flushPending = false;
    // The etcd log has nothing to flush (each append is durable once it resolves), and a wait for its queue would span simulated time.
    if (this.disk.unsynced === 0 || this.disk.appendsDurable) return;
    this.maybeFailSync();
    try {
      await this.disk.flush();
    } catch (error) {
      this.host.failStop(this.id, error);
    }
  }

  private async writeCheckpoint(c: CheckpointEffect<S>): Promise<void> {
    const incarnation = this.incarnation;
    // The laned applies queued before this point belong to the state it captures (as in the host).
    await this.driver?.lanesIdle();
    this.alive(incarnation);
    const bytes = this.snapshot(c.state);
    // Written off the queue, as the host does: later effects need not wait for the checkpoint's fsync.
    void this.saveCheckpoint(incarnation, c.lsn, bytes);
  }

  private async saveCheckpoint(incarnation: number, lsn: number, bytes: Uint8Array): Promise<void> {
    try {
      this.maybeFailSync();
      await this.disk.checkpoint(lsn, bytes);
      if (this.up && incarnation === this.incarnation) this.host.note(`checkpoint@${lsn}`);
    } catch (error) {
      // The host logs a failed checkpoint and goes on: the log still has every record. A failed
      // sync poisons the log, though, and the next write fail-stops the node.
      if (this.up && incarnation === this.incarnation) this.host.note(`checkpoint@${lsn} failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      if (incarnation === this.incarnation) this.checkpointing = false;
    }
  }

  private execute(e: Eff | CheckpointEffect<S>): void | Promise<void> {
    if (e.kind === 'checkpoint') return this.writeCheckpoint(e as CheckpointEffect<S>);
    if (e.kind === 'crashPoint') {
      const plan = this.crashPlans.shift();
      if (!plan) return;
      this.host.crash(this.id, plan.reason, plan.downtimeMsMax);
      throw new Crashed(this.id);
    }
    const c = e as unknown as CommonOutward;
    switch (c.kind) {
      case 'reply': {
        const requestId = c['requestId'] as string;
        const held = this.inbound.get(requestId);
        if (!held) return;
        this.inbound.delete(requestId);
        const status = c['status'] as number;
        this.onReply(held.payload, status, c['body']);
        if (held.slot !== undefined && !this.answerInBatch(held, status, c['body'])) return;
        if (held.slot === undefined) this.host.respond(this.id, held.from, held.callId, status, c['body']);
        // The answer is on the wire; a write of this node's may not be durable yet.
        if (this.disk.unsynced > 0 && this.host.crashAfterLazyReply(this.id)) throw new Crashed(this.id);
        return;
      }
      case 'setTimer': {
        const token = this.host.newToken();
        const id = c['id'] as string;
        this.timers.set(id, token);
        this.host.schedule(this.host.timerDelayMs(c['ms'] as number), { kind: 'timer', node: this.id, id, token });
        return;
      }
      case 'cancelTimer':
        this.timers.delete(c['id'] as string);
        return;
      case 'log': {
        const txId = c['txId'] as string | undefined;
        this.host.note(txId === undefined ? (c['step'] as string) : `${c['step'] as string}(${txId})`);
        return;
      }
      default:
        return this.executeOther(e as Eff);
    }
  }

  /** A timer fires only if it is still the current one for its id in this incarnation. */
  async fireTimer(id: string, token: number): Promise<boolean> {
    if (!this.up || this.timers.get(id) !== token) return false;
    this.timers.delete(id);
    await this.feed({ type: 'timer', id, now: this.now } as unknown as Ev);
    return true;
  }

  /** The process dies: memory, timers, connections, held requests and its driver are gone; the disk keeps what it keeps. */
  crash(): Inbound[] {
    this.up = false;
    this.disk.crash();
    // A batch's messages share one connection: it is reset once.
    const held = [...new Map([...this.inbound.values()].map((h) => [h.callId, h])).values()];
    this.inbound.clear();
    this.calls.clear();
    this.timers.clear();
    this.driver = undefined;
    this.crashPlans = [];
    this.flushPending = false;
    this.checkpointing = false;
    return held;
  }

  /** A new incarnation: its own driver, its LSNs counted from what the disk kept. */
  protected boot(): void {
    this.incarnation++;
    this.up = true;
    // No request is taken until recovery's writes are durable; opening the log may itself take time (etcd).
    this.recovering = true;
    this.requestSeq = 0;
    this.driver = this.newDriver();
    this.crashPlans = [];
  }

  /** Called once the disk is open: where this incarnation's LSNs start. */
  protected opened(lastLsn: number, checkpointLsn: number): void {
    this.lsnQueued = lastLsn;
    this.checkpointLsn = checkpointLsn;
  }
}
