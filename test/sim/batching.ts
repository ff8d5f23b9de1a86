/**
 * The coordinator's batching transport on the simulated network: the same
 * lanes, bounds, grouping and reply matching as the service's Batcher
 * (coordinator/adapters/batches.ts: `laneOf`, `takeBatch`, `matchReplies`,
 * BATCH_DEFAULTS), and the same mapping of each message's fate to the core's
 * event (coordinator/adapters/answers.ts). What differs is only the I/O: a
 * batch is one simulated call, and each message's own timeout is a simulated
 * timer instead of a real one.
 *
 * A lane sends at the end of the turn (the handling of one simulated event,
 * as the service's lanes send at the end of an event-loop turn): every
 * message handed over in it shares a request when a slot is free; messages
 * handed over while both slots are busy wait and share the next request. Each
 * keeps its own timeout, counted from when it leaves in a request (waiting in
 * the lane's queue does not count): when it passes, that message alone fails
 * as a timeout, whatever later happens to its batch.
 *
 * A batch asks for a streamed answer on seeds that say so (as the service
 * always does): each message then settles on its own line, matched by the
 * service's `matchLine`; a request whose answer has begun frees its lane slot,
 * within the lane's bound on open requests (BATCH_DEFAULTS.requestsOpenMax).
 *
 * Not modelled: the service's 404 and 413 fallback to single requests (every
 * simulated participant serves the batch route), and the short p-retry of a
 * commit or abort inside one delivery (the core's own backoff resends it).
 */
import { answerOf, failedAnswer, failureAnswer, refusalOf, type TransportAnswer } from '../../coordinator/adapters/answers.ts';
import { BATCH_DEFAULTS, laneOf, matchLine, matchReplies, takeBatch } from '../../coordinator/adapters/batches.ts';
import type { SendEffect } from '../../coordinator/core/index.ts';
import { TransportError } from '../../shared/http/client.ts';
import type { NodeId, RequestPayload } from './messages.ts';
import type { CallResult } from './node.ts';

/** How a batch answer is matched to its messages: the service's `matchReplies`, or a planted bug's. */
export type MatchReplies = typeof matchReplies;
/** How a line of a streamed batch answer is matched to its message: the service's `matchLine`, or a planted bug's. */
export type MatchLine = typeof matchLine;

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
  /** Runs `fn` at the end of the current turn (the service's `setImmediate`). */
  endOfTurn(fn: () => void): void;
}

interface Waiting {
  readonly effect: SendEffect;
  readonly to: NodeId;
  readonly json: string;
  readonly timeoutMs: number;
  /** Set, with its timer, when it leaves in a request. */
  deadline: number;
  timer: number;
  done: boolean;
}

interface Lane {
  readonly to: NodeId;
  queue: Waiting[];
  /** Requests the participant has not begun to answer. */
  awaiting: number;
  /** Requests not yet ended. */
  open: number;
  pumpQueued: boolean;
}

/** One batch request: its messages, and for a streamed answer the places answered so far. */
interface Sent {
  readonly kind: 'batch';
  readonly lane: Lane;
  readonly batch: readonly Waiting[];
  readonly seen: boolean[];
  /** The participant has begun answering (its slot is free). */
  begun: boolean;
  /** A line could not be trusted: the service stops reading, so later lines count for nothing. */
  broken: boolean;
}

export type BatchContext = Sent | { readonly kind: 'expire'; readonly w: Waiting };

export class SimBatcher {
  private readonly lanes = new Map<string, Lane>();

  constructor(
    private readonly io: BatchIo,
    private readonly requestsAwaitingMax: number,
    private readonly match: MatchReplies = matchReplies,
    /** Ask for streamed answers (the service always does; some seeds keep the whole answer under the checks too). */
    private readonly stream = true,
    private readonly line: MatchLine = matchLine,
  ) {}

  /** Hands one message over; the answer comes back as transport events from `onResult`. Returns events to feed now (a full queue). */
  send(effect: SendEffect, to: NodeId, timeoutMs: number): TransportAnswer[] {
    const key = `${to} ${laneOf(effect.message)}`;
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = { to, queue: [], awaiting: 0, open: 0, pumpQueued: false };
      this.lanes.set(key, lane);
    }
    if (lane.queue.length >= BATCH_DEFAULTS.queuedMessagesMax) {
      lane.queue = lane.queue.filter((q) => !q.done);
      if (lane.queue.length >= BATCH_DEFAULTS.queuedMessagesMax) {
        return [failedAnswer(effect, 'unreachable', `not sent: ${BATCH_DEFAULTS.queuedMessagesMax} messages already wait for ${to}`)];
      }
    }
    lane.queue.push({ effect, to, json: JSON.stringify(effect.message), timeoutMs, deadline: Infinity, timer: 0, done: false });
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
    if (result.kind === 'line') return this.onLine(context, result.line);
    this.begin(context);
    lane.open--;
    this.pumpSoon(lane);
    if (result.kind === 'end') {
      // Every line that will come has come: a message without one gets no answer.
      return this.settleOpen(batch, (w) => failedAnswer(w.effect, 'server-error', 'the participant ended its streamed answer without a line for this message'));
    }
    if (context.seen.some(Boolean) || context.broken) {
      // A streamed answer stopped (a reset, the call's timeout): only the messages without a line fail.
      const error = result.kind === 'error' ? result.error : 'reset';
      return this.settleOpen(batch, (w) => failureAnswer(w.effect, new TransportError(error, `sim: the streamed answer stopped (${error})`, w.effect.url)));
    }
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

  /** One line of a streamed answer: its message settles now, by the service's matching and mapping. */
  private onLine(context: Sent, line: string): TransportAnswer[] {
    this.begin(context);
    if (context.broken) return [];
    const matched = this.line(
      context.batch.map((w) => w.effect.message.body.txId),
      context.seen,
      line,
    );
    if ('whole' in matched) {
      this.io.fault('batch-stream-failed');
      context.broken = true;
      return this.settleOpen(context.batch, (w) => failedAnswer(w.effect, 'server-error', matched.whole));
    }
    const w = context.batch[matched.index] as Waiting;
    if (w.done) return [];
    w.done = true;
    this.io.cancel(w.timer);
    const r = matched.reply;
    return [r.kind === 'answer' ? answerOf(w.effect, r.status, r.data) : failedAnswer(w.effect, 'server-error', r.message)];
  }

  /** The request's answer has begun (a line) or ended: its slot in the lane is free. */
  private begin(context: Sent): void {
    if (context.begun) return;
    context.begun = true;
    context.lane.awaiting--;
    this.pumpSoon(context.lane);
  }

  /** Settles each message of `batch` still open, with the event `answer` gives it. */
  private settleOpen(batch: readonly Waiting[], answer: (w: Waiting) => TransportAnswer): TransportAnswer[] {
    const out: TransportAnswer[] = [];
    for (const w of batch) {
      if (w.done) continue;
      w.done = true;
      this.io.cancel(w.timer);
      out.push(answer(w));
    }
    return out;
  }

  /** Each message's event for the batch's answer, by the service's matching and mapping. */
  private answersOf(batch: readonly Waiting[], result: CallResult & { kind: 'answer' | 'error' }): TransportAnswer[] {
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

  /** Messages handed over in one turn (every step its event ran) leave together at its end, as in the service. */
  private pumpSoon(lane: Lane): void {
    if (lane.pumpQueued) return;
    lane.pumpQueued = true;
    this.io.endOfTurn(() => {
      lane.pumpQueued = false;
      this.pump(lane);
    });
  }

  private pump(lane: Lane): void {
    while (lane.awaiting < this.requestsAwaitingMax && lane.open < BATCH_DEFAULTS.requestsOpenMax) {
      const batch = takeBatch(lane.queue, BATCH_DEFAULTS);
      if (batch.length === 0) return;
      for (const w of batch) {
        w.deadline = this.io.now() + w.timeoutMs;
        w.timer = this.io.expireAfter(w.timeoutMs, { kind: 'expire', w });
      }
      lane.awaiting++;
      lane.open++;
      this.io.sent(batch.length);
      const timeoutMs = Math.max(1, Math.ceil(Math.max(...batch.map((w) => w.deadline)) - this.io.now()));
      const sent: Sent = { kind: 'batch', lane, batch, seen: [], begun: false, broken: false };
      this.io.request(lane.to, { type: 'batch', messages: batch.map((w) => w.effect.message), ...(this.stream && { stream: true as const }) }, timeoutMs, sent);
    }
  }
}
