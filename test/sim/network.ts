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
 *
 * A streamed batch answer (a line per message as it settles, then the end)
 * travels on one connection, so its parts keep their order: each is delivered
 * no earlier than the part before it, and none is duplicated. Its faults: the
 * stream cut mid-way (the caller hears a reset after the lines already sent,
 * and nothing after), a line naming another message's place, a part held up,
 * and the end lost (the caller's timeout ends the call). A part lost on the way
 * (a drop, a partition) loses everything after it on that connection too.
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
  /** Streamed answers under way: callId → when their latest part is delivered (later parts never overtake it). */
  private readonly streamAt = new Map<number, number>();
  /** Streamed answers whose connection was cut or lost a part: nothing more of them arrives. */
  private readonly cutStreams = new Set<number>();

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
    const part = isStreamPart(msg);
    if (part && this.cutStreams.has(msg.callId)) return;
    if (this.blocked(msg.from, msg.to)) {
      this.stats.fault('partition-drop');
      if (part) this.cutStreams.add(msg.callId);
      return;
    }
    const p = this.faultsOn ? this.profile : undefined;
    let lateMs = 0;
    if (p && this.batch && isBatch(msg)) {
      const faulted = part ? this.streamFault(msg as ResponseMsg, this.batch.rng, this.batch.profile) : this.batchFault(msg, this.batch.rng, this.batch.profile);
      if (faulted === undefined) return;
      ({ msg, lateMs } = faulted);
    }
    if (p && this.rng.next() < p.dropP) {
      this.stats.fault('drop');
      if (part) this.cutStreams.add(msg.callId);
      return;
    }
    if (part || this.streamAt.has(msg.callId)) return this.inOrder(msg, this.delayMs(p) + lateMs);
    this.queue.after(this.delayMs(p) + lateMs, { kind: 'deliver', msg });
    // A begin is not idempotent either, but its duplicate only makes an empty transaction that times out.
    const idempotent = msg.kind !== 'request' || msg.payload.type !== 'runWhole';
    // A duplicate's copy never duplicates again, so a message yields at most two deliveries.
    // (A part of a streamed answer returned above: one connection never delivers a byte twice.)
    if (p && idempotent && this.rng.next() < p.duplicateP) {
      this.stats.fault('duplicate');
      this.queue.after(this.delayMs(p) + this.rng.int(0, 200), { kind: 'deliver', msg });
    }
  }

  /** Delivers a part of a streamed answer (or what ends its connection) no earlier than the part before it. */
  private inOrder(msg: Message, delayMs: number): void {
    const at = Math.max(this.queue.now + delayMs, this.streamAt.get(msg.callId) ?? 0);
    if (isStreamPart(msg) && (msg as ResponseMsg).stream === 'line') this.streamAt.set(msg.callId, at);
    else this.streamAt.delete(msg.callId);
    this.queue.at(at, { kind: 'deliver', msg });
  }

  /** A streamed answer's own faults: undefined when the part (and so the rest) is lost, else the part as it will arrive and how late. */
  private streamFault(msg: ResponseMsg, rng: Prng, b: BatchProfile): { msg: Message; lateMs: number } | undefined {
    if (msg.stream === 'end' && rng.next() < b.lostP) {
      this.stats.fault('batch-end-lost');
      this.cutStreams.add(msg.callId);
      return undefined;
    }
    let out: ResponseMsg = msg;
    if (msg.stream === 'line' && rng.next() < b.halfAnsweredP) {
      // The connection breaks here: the caller hears a reset after the lines already on their way.
      this.stats.fault('batch-stream-cut');
      this.cutStreams.add(msg.callId);
      this.inOrder({ kind: 'failure', callId: msg.callId, from: msg.from, to: msg.to, error: 'reset' }, this.delayMs(undefined));
      return undefined;
    }
    if (msg.stream === 'line' && rng.next() < b.reorderedP / 2) {
      // The line names its neighbour's place (0 and 1, 2 and 3, ...): its txId is the only tell.
      const line = JSON.parse(String(msg.body)) as { i: number };
      this.stats.fault('batch-line-misplaced');
      out = { ...msg, body: JSON.stringify({ ...line, i: line.i ^ 1 }) };
    }
    if (rng.next() < b.lateP) {
      this.stats.fault('batch-late');
      return { msg: out, lateMs: rng.int(BATCH_LATE_MS_MIN, BATCH_LATE_MS_MAX) };
    }
    return { msg: out, lateMs: 0 };
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
      // What follows a lost part on its connection is lost with it.
      if (isStreamPart(msg)) this.cutStreams.add(msg.callId);
      return 'partitioned';
    }
    if (isStreamPart(msg) && this.cutStreams.has(msg.callId)) return 'reset';
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

/** A line or the end of a streamed batch answer. */
function isStreamPart(msg: Message): boolean {
  return msg.kind === 'response' && msg.stream !== undefined;
}
