/**
 * What every simulated service shares: a process that is up or down, an
 * incarnation number that changes at each restart, its timers, the requests
 * it holds (awaiting a `reply` effect) and the calls it has made (awaiting an
 * answer), and the simulator's own effect driver.
 *
 * The driver keeps the services' order rule: a step's `persist` effects are
 * written (and synced where asked) before any of its outward effects run. It
 * walks the effects in the order the core emitted them, so a `crashPoint` is
 * reached exactly where it stands among the writes: a crash at
 * "before-commit-logged" finds the COMMITTED record unwritten, one at
 * "after-commit-logged" finds it durable and nothing told. A failed write
 * fail-stops the node: nothing after it runs.
 */
import type { CrashPointEffect, PersistEffect, StepResult } from '../../shared/core.ts';
import type { Prng } from '../../scenarios/prng.ts';
import type { SimDisk } from './disk.ts';
import type { Ghost } from './ghost.ts';
import type { NodeId, RequestMsg, RequestPayload, SimEvent } from './messages.ts';
import { TIMING, type FaultProfile, type PlantedBug } from './profile.ts';
import type { Stats } from './stats.ts';

export type CallResult =
  | { readonly kind: 'answer'; readonly status: number; readonly body: unknown }
  | { readonly kind: 'error'; readonly error: 'timeout' | 'unreachable' | 'reset' };

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
  respond(from: NodeId, to: NodeId, callId: number, status: number, body: unknown): void;
  /** Whether to crash `node` at this crash point; true when it crashed there. */
  crashAt(node: NodeId, point: string): boolean;
  /** Whether `node` loses power now, an answer having left while a write of its is not durable; true when it crashed. */
  crashAfterLazyReply(node: NodeId): boolean;
  /** A write failed: the node stops (and is restarted later). */
  failStop(node: NodeId, error: unknown): void;
  /** Whether faults are still being injected. */
  readonly faultsOn: boolean;
  /** Records between checkpoints, or 0 for none. */
  readonly checkpointEveryRecords: number;
  /** A line for the trace of the current step. */
  note(text: string): void;
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
}

type CommonOutward = { readonly kind: 'reply' | 'setTimer' | 'cancelTimer' | 'log' } & Record<string, unknown>;

export abstract class SimNode<S, Ev, Eff extends { readonly kind: string }, R extends { readonly type: string }> implements Endpoint {
  up = false;
  incarnation = 0;
  abstract state: S;
  readonly calls = new Map<number, unknown>();
  protected readonly timers = new Map<string, number>();
  protected readonly inbound = new Map<string, Inbound>();
  private requestSeq = 0;
  private flushPending = false;
  private recordsSinceCheckpoint = 0;
  private checkpointing = false;

  constructor(
    protected readonly host: Host,
    readonly id: NodeId,
    readonly disk: SimDisk<R>,
  ) {}

  protected abstract coreStep(state: S, event: Ev): StepResult<S, Eff>;
  /** The ghost watches each step: what was decided, what was received. */
  protected abstract observe(before: S, event: Ev, result: StepResult<S, Eff>): void;
  /** Effects other than persist, crashPoint, reply, timers and log. */
  protected abstract executeOther(effect: Eff): void;
  /** A reply is about to leave for a request. */
  protected abstract onReply(payload: RequestPayload, status: number, body: unknown): void;
  /** Encodes the state (and the resource) for a checkpoint; called between steps. */
  protected abstract snapshot(): Uint8Array;
  abstract onRequest(msg: RequestMsg): Promise<void>;
  abstract onCallResult(context: unknown, result: CallResult): Promise<void>;
  /** Brings the process up on what its disk kept. */
  abstract start(): Promise<void>;

  get now(): number {
    return this.host.nodeNow(this.id);
  }

  /** Feeds one event to the core and runs its effects. */
  async feed(event: Ev): Promise<void> {
    if (!this.up) return;
    const before = this.state;
    const result = this.coreStep(before, event);
    this.state = result.state;
    this.observe(before, event, result);
    await this.run(result.effects);
  }

  protected newRequestId(): string {
    return `${this.id}.${this.incarnation}.${++this.requestSeq}`;
  }

  protected hold(msg: RequestMsg): string {
    const requestId = this.newRequestId();
    this.inbound.set(requestId, { callId: msg.callId, from: msg.from, payload: msg.payload });
    return requestId;
  }

  private async run(effects: readonly Eff[]): Promise<void> {
    const outward: Eff[] = [];
    for (const e of effects) {
      if (!this.up) return;
      if (e.kind === 'persist') {
        const p = e as unknown as PersistEffect<R>;
        if (!(await this.persist(p.record, p.sync))) return;
      } else if (e.kind === 'crashPoint') {
        if (this.host.crashAt(this.id, (e as unknown as CrashPointEffect).point)) return;
      } else {
        outward.push(e);
      }
    }
    let replied = false;
    for (const e of outward) {
      if (!this.up) return;
      if (e.kind === 'reply') replied = true;
      this.execute(e);
    }
    // The answer is on the wire; the background flush has not run yet.
    if (replied && this.disk.unsynced > 0 && this.host.crashAfterLazyReply(this.id)) return;
    await this.maybeCheckpoint();
  }

  private async persist(record: R, sync: boolean): Promise<boolean> {
    if (sync) this.maybeFailSync();
    try {
      await this.disk.append(record, sync);
    } catch (error) {
      this.host.failStop(this.id, error);
      return false;
    }
    this.recordsSinceCheckpoint++;
    if (!sync && !this.flushPending) {
      this.flushPending = true;
      this.host.schedule(this.host.rng.int(TIMING.flushMinMs, TIMING.flushMaxMs), { kind: 'flush', node: this.id, incarnation: this.incarnation });
    }
    return true;
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
    if (this.disk.unsynced === 0) return;
    this.maybeFailSync();
    try {
      await this.disk.flush();
    } catch (error) {
      this.host.failStop(this.id, error);
    }
  }

  private async maybeCheckpoint(): Promise<void> {
    const every = this.host.checkpointEveryRecords;
    if (every === 0 || this.checkpointing || this.recordsSinceCheckpoint < every || !this.up) return;
    const lsn = this.disk.lastLsn;
    if (lsn === 0) return;
    this.checkpointing = true;
    try {
      this.maybeFailSync();
      await this.disk.checkpoint(lsn, this.snapshot());
      this.recordsSinceCheckpoint = 0;
      this.host.note(`checkpoint@${lsn}`);
    } catch (error) {
      this.host.failStop(this.id, error);
    } finally {
      this.checkpointing = false;
    }
  }

  private execute(e: Eff): void {
    const c = e as unknown as CommonOutward;
    switch (c.kind) {
      case 'reply': {
        const requestId = c['requestId'] as string;
        const held = this.inbound.get(requestId);
        if (!held) return;
        this.inbound.delete(requestId);
        const status = c['status'] as number;
        this.onReply(held.payload, status, c['body']);
        this.host.respond(this.id, held.from, held.callId, status, c['body']);
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
        this.executeOther(e);
    }
  }

  /** A timer fires only if it is still the current one for its id in this incarnation. */
  async fireTimer(id: string, token: number): Promise<boolean> {
    if (!this.up || this.timers.get(id) !== token) return false;
    this.timers.delete(id);
    await this.feed({ type: 'timer', id, now: this.now } as unknown as Ev);
    return true;
  }

  /** The process dies: memory, timers, connections and held requests are gone; the disk keeps what it keeps. */
  crash(): Inbound[] {
    this.up = false;
    this.disk.crash();
    const held = [...this.inbound.values()];
    this.inbound.clear();
    this.calls.clear();
    this.timers.clear();
    this.flushPending = false;
    this.recordsSinceCheckpoint = 0;
    this.checkpointing = false;
    return held;
  }

  protected boot(): void {
    this.incarnation++;
    this.up = true;
    this.requestSeq = 0;
  }
}
