/**
 * The coordinator's batching transport on the simulated network: the same
 * lanes, bounds, grouping and reply matching as the service's Batcher
 * (coordinator/adapters/batches.ts: `laneOf`, `takeBatch`, `matchReplies`,
 * BATCH_DEFAULTS), and the same mapping of each message's fate to the core's
 * event (coordinator/adapters/answers.ts). What differs is only the I/O: a
 * batch is one simulated call, and each message's own timeout is a simulated
 * timer instead of a real one.
 *
 * A message that finds a free request slot in its lane goes at once; messages
 * handed over while both slots are busy wait and share the next request. Each
 * keeps its own timeout, counted from when it was handed over: when it passes,
 * that message alone fails as a timeout, whatever later happens to its batch.
 *
 * Not modelled: the service's 404 and 413 fallback to single requests (every
 * simulated participant serves the batch route), and the short p-retry of a
 * commit or abort inside one delivery (the core's own backoff resends it).
 */
import { answerOf, failedAnswer, failureAnswer, refusalOf, type TransportAnswer } from '../../coordinator/adapters/answers.ts';
import { BATCH_DEFAULTS, laneOf, matchReplies, takeBatch } from '../../coordinator/adapters/batches.ts';
import type { SendEffect } from '../../coordinator/core/index.ts';
import { TransportError } from '../../shared/http/client.ts';
import type { NodeId, RequestPayload } from './messages.ts';
import type { CallResult } from './node.ts';

/** How a batch answer is matched to its messages: the service's `matchReplies`, or a planted bug's. */
export type MatchReplies = typeof matchReplies;

/** What the batcher needs of the coordinator node it runs in. */
export interface BatchIo {
  /** This node's clock, in ms. */
  now(): number;
  /** Sends one call; its answer (or failure) comes back to `onResult` with `context`. */
  request(to: NodeId, payload: RequestPayload, timeoutMs: number, context: BatchContext): void;
  /** A timer for one message's own timeout: its expiry comes back to `onResult` with `context`; returns its id. */
  expireAfter(timeoutMs: number, context: BatchContext): number;
  /** The timer will not be needed. */
  cancel(id: number): void;
  /** Counts a batch fault's effect. */
  fault(kind: string): void;
  /** Counts a batch request and the messages it carries. */
  sent(messages: number): void;
}

interface Waiting {
  readonly effect: SendEffect;
  readonly to: NodeId;
  readonly json: string;
  readonly deadline: number;
  readonly timer: number;
  done: boolean;
}

interface Lane {
  readonly to: NodeId;
  queue: Waiting[];
  inFlight: number;
  pumpQueued: boolean;
}

export type BatchContext = { readonly kind: 'batch'; readonly lane: Lane; readonly batch: readonly Waiting[] } | { readonly kind: 'expire'; readonly w: Waiting };

export class SimBatcher {
  private readonly lanes = new Map<string, Lane>();

  constructor(
    private readonly io: BatchIo,
    private readonly requestsInFlightMax: number,
    private readonly match: MatchReplies = matchReplies,
  ) {}

  /** Hands one message over; the answer comes back as transport events from `onResult`. Returns events to feed now (a full queue). */
  send(effect: SendEffect, to: NodeId, timeoutMs: number): TransportAnswer[] {
    const key = `${to} ${laneOf(effect.message)}`;
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = { to, queue: [], inFlight: 0, pumpQueued: false };
      this.lanes.set(key, lane);
    }
    if (lane.queue.length >= BATCH_DEFAULTS.queuedMessagesMax) {
      lane.queue = lane.queue.filter((q) => !q.done);
      if (lane.queue.length >= BATCH_DEFAULTS.queuedMessagesMax) {
        return [failedAnswer(effect, 'unreachable', `not sent: ${BATCH_DEFAULTS.queuedMessagesMax} messages already wait for ${to}`)];
      }
    }
    const w: Waiting = { effect, to, json: JSON.stringify(effect.message), deadline: this.io.now() + timeoutMs, timer: 0, done: false };
    (w as { timer: number }).timer = this.io.expireAfter(timeoutMs, { kind: 'expire', w });
    lane.queue.push(w);
    this.pumpSoon(lane);
    return [];
  }

  /** A batch's answer or failure, or one message's timeout: the transport events it settles, in message order. */
  onResult(context: BatchContext, result: CallResult): TransportAnswer[] {
    if (context.kind === 'expire') {
      const { w } = context;
      if (w.done) return [];
      w.done = true;
      return [failureAnswer(w.effect, new TransportError('timeout', `sim: no answer within the message's own timeout`, w.effect.url))];
    }
    const { lane, batch } = context;
    lane.inFlight--;
    this.pumpSoon(lane);
    const open = batch.filter((w) => !w.done);
    if (result.kind === 'answer' && open.length > 0 && open.length < batch.length) this.io.fault('batch-reply-past-timeouts');
    const answers = this.answersOf(batch, result);
    const out: TransportAnswer[] = [];
    batch.forEach((w, i) => {
      if (w.done) return;
      w.done = true;
      this.io.cancel(w.timer);
      out.push(answers[i] as TransportAnswer);
    });
    return out;
  }

  /** Each message's event for the batch's answer, by the service's matching and mapping. */
  private answersOf(batch: readonly Waiting[], result: CallResult): TransportAnswer[] {
    if (result.kind === 'error') return batch.map((w) => failureAnswer(w.effect, new TransportError(result.error, `sim: ${result.error}`, w.effect.url)));
    if (result.status !== 200) {
      const refused = refusalOf(result.status, result.body);
      return batch.map((w) => failedAnswer(w.effect, refused.error, `the batch was refused: ${refused.message}`));
    }
    const matched = this.match(
      batch.map((w) => w.effect.message.body.txId),
      result.body,
    );
    if ('whole' in matched) {
      this.io.fault('batch-failed-whole');
      return batch.map((w) => failedAnswer(w.effect, 'server-error', matched.whole));
    }
    return batch.map((w, i) => {
      const r = matched.replies[i];
      return r?.kind === 'answer' ? answerOf(w.effect, r.status, r.data) : failedAnswer(w.effect, 'server-error', r?.message ?? 'no reply');
    });
  }

  /** Messages handed over in one turn (one step's sends) leave together, as in the service. */
  private pumpSoon(lane: Lane): void {
    if (lane.pumpQueued) return;
    lane.pumpQueued = true;
    queueMicrotask(() => {
      lane.pumpQueued = false;
      this.pump(lane);
    });
  }

  private pump(lane: Lane): void {
    while (lane.inFlight < this.requestsInFlightMax) {
      const batch = takeBatch(lane.queue, BATCH_DEFAULTS);
      if (batch.length === 0) return;
      lane.inFlight++;
      this.io.sent(batch.length);
      const timeoutMs = Math.max(1, Math.ceil(Math.max(...batch.map((w) => w.deadline)) - this.io.now()));
      this.io.request(lane.to, { type: 'batch', messages: batch.map((w) => w.effect.message) }, timeoutMs, { kind: 'batch', lane, batch });
    }
  }
}
