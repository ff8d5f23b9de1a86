/**
 * The simulated network: every message is one scheduled delivery, subject to
 * the seed's faults (drop, duplicate, long delay, reorder) and to partitions,
 * both ways or one way, checked when a message is sent and again when it
 * arrives (a partition also eats what was already in flight).
 *
 * Calls keep HTTP-over-TCP's meaning. The first copy of a request to arrive
 * opens the connection: to a dead process it is refused (`unreachable`, and
 * then no copy of that call is ever executed); to a live one it binds the call
 * to that incarnation. A duplicate copy is executed again only by the same
 * incarnation (a replay on the same connection); after a restart it is lost,
 * since the connection died with the process (which reset every request it
 * held). Requests that are not idempotent (a client's runWhole) are never
 * duplicated, as no HTTP client would resend them.
 *
 * Batches (`POST /v1/2pc/batch` and its answer) have faults of their own, drawn
 * from their own stream: a batch or its answer lost, an answer cut short (half
 * its replies), its replies reordered, or the answer held up past some of its
 * messages' own timeouts.
 */
import type { Prng } from '../../scenarios/prng.ts';
import type { Message, NodeId, ResponseMsg, SimEvent } from './messages.ts';
import type { BatchProfile, FaultProfile } from './profile.ts';
import { BATCH_LATE_MS_MAX, BATCH_LATE_MS_MIN, TIMING } from './profile.ts';
import type { EventQueue } from './queue.ts';
import type { Stats } from './stats.ts';

const REFUSED = -1;

export type Arrival = 'taken' | 'partitioned' | 'refused' | 'reset' | 'dead';

export class Network {
  /** Directed links currently cut, with how many partitions cut each. */
  private readonly cut = new Map<string, number>();
  /** callId → the incarnation the call's connection is bound to, or REFUSED. */
  private readonly bound = new Map<number, number>();
  /** Faults are off during setup and after the heal; latency stays. */
  faultsOn = false;

  constructor(
    private readonly queue: EventQueue<SimEvent>,
    private readonly rng: Prng,
    private readonly profile: FaultProfile,
    private readonly stats: Stats,
    private readonly process: (node: NodeId) => { readonly up: boolean; readonly incarnation: number },
    private readonly batch?: { readonly rng: Prng; readonly profile: BatchProfile },
  ) {}

  send(sent: Message): void {
    let msg = sent;
    this.stats.messages++;
    if (this.blocked(msg.from, msg.to)) {
      this.stats.fault('partition-drop');
      return;
    }
    const p = this.faultsOn ? this.profile : undefined;
    let lateMs = 0;
    if (p && this.batch && isBatch(msg)) {
      const faulted = this.batchFault(msg, this.batch.rng, this.batch.profile);
      if (faulted === undefined) return;
      ({ msg, lateMs } = faulted);
    }
    if (p && this.rng.next() < p.dropP) {
      this.stats.fault('drop');
      return;
    }
    this.queue.after(this.delayMs(p) + lateMs, { kind: 'deliver', msg });
    // A begin is not idempotent either, but its duplicate only makes an empty transaction that times out.
    const idempotent = msg.kind !== 'request' || msg.payload.type !== 'runWhole';
    // A duplicate's copy never duplicates again, so a message yields at most two deliveries.
    if (p && idempotent && this.rng.next() < p.duplicateP) {
      this.stats.fault('duplicate');
      this.queue.after(this.delayMs(p) + this.rng.int(0, 200), { kind: 'deliver', msg });
    }
  }

  /** A batch's own faults: undefined when it is lost, else the message as it will arrive and how late. */
  private batchFault(msg: Message, rng: Prng, b: BatchProfile): { msg: Message; lateMs: number } | undefined {
    if (rng.next() < b.lostP) {
      this.stats.fault('batch-lost');
      return undefined;
    }
    if (msg.kind !== 'response') return { msg, lateMs: 0 };
    const replies = (msg.body as { replies?: unknown } | undefined)?.replies;
    let out: ResponseMsg = msg;
    if (Array.isArray(replies) && rng.next() < b.halfAnsweredP) {
      this.stats.fault('batch-half-answered');
      out = { ...msg, body: { replies: replies.slice(0, Math.floor(replies.length / 2)) } };
    } else if (Array.isArray(replies) && replies.length >= 2 && rng.next() < b.reorderedP) {
      // Rotated by one: every reply lands on another message's place.
      this.stats.fault('batch-reordered');
      out = { ...msg, body: { replies: [...replies.slice(1), replies[0]] } };
    }
    if (rng.next() < b.lateP) {
      this.stats.fault('batch-late');
      return { msg: out, lateMs: rng.int(BATCH_LATE_MS_MIN, BATCH_LATE_MS_MAX) };
    }
    return { msg: out, lateMs: 0 };
  }

  private delayMs(p: FaultProfile | undefined): number {
    const ms = this.rng.int(TIMING.latencyMinMs, TIMING.latencyMaxMs);
    if (!p) return ms;
    if (this.rng.next() < p.delayP) {
      this.stats.fault('delay');
      return ms + this.rng.int(100, 3_000);
    }
    if (this.rng.next() < p.reorderP) {
      this.stats.fault('reorder');
      return ms + this.rng.int(5, 60);
    }
    return ms;
  }

  /**
   * A copy of `msg` arrives. `taken`: the destination process gets it. A
   * request to a dead process is `refused` (and the caller told so), a copy for
   * a connection that died with its process is `reset`, and a partition or a
   * dead caller loses it.
   */
  arrive(msg: Message): Arrival {
    if (this.blocked(msg.from, msg.to)) {
      this.stats.fault('partition-drop');
      return 'partitioned';
    }
    const dest = this.process(msg.to);
    if (msg.kind !== 'request') return dest.up ? 'taken' : 'dead';
    const bound = this.bound.get(msg.callId);
    if (bound === undefined) {
      if (dest.up) {
        this.bound.set(msg.callId, dest.incarnation);
        return 'taken';
      }
      this.bound.set(msg.callId, REFUSED);
      this.send({ kind: 'failure', callId: msg.callId, from: msg.to, to: msg.from, error: 'unreachable' });
      return 'refused';
    }
    if (bound === REFUSED) return 'refused';
    return dest.up && dest.incarnation === bound ? 'taken' : 'reset';
  }

  /** Cuts the directed link from → to. */
  cutLink(from: NodeId, to: NodeId): void {
    const k = `${from}>${to}`;
    this.cut.set(k, (this.cut.get(k) ?? 0) + 1);
  }

  mendLink(from: NodeId, to: NodeId): void {
    const k = `${from}>${to}`;
    const n = (this.cut.get(k) ?? 0) - 1;
    if (n <= 0) this.cut.delete(k);
    else this.cut.set(k, n);
  }

  /** The heal: every partition mends and no fault is injected from now on. */
  healAll(): void {
    this.cut.clear();
    this.faultsOn = false;
  }

  blocked(from: NodeId, to: NodeId): boolean {
    return this.cut.size > 0 && this.cut.has(`${from}>${to}`);
  }
}

function isBatch(msg: Message): boolean {
  return msg.kind === 'request' ? msg.payload.type === 'batch' : msg.kind === 'response' && msg.batch === true;
}
