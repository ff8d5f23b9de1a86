/**
 * Batching on the wire, the network's group commit: messages bound for one
 * participant while requests to it are in flight wait, and share the next
 * request (`POST /v1/2pc/batch`), whose answer carries one reply per message.
 * The participant then runs them together, and its WAL's group commit covers
 * their records with one fdatasync.
 *
 * A lane sends at the end of the event loop's turn (setImmediate): every
 * message handed over in that turn, by every client request, answer line and
 * group commit the turn handled, shares a request when a slot is free. An idle
 * participant still gets its message in the same turn, so batching costs it no
 * latency, and under load batches grow with the turn's work as well as with
 * the requests still in flight. Each participant has two lanes, prepares and decisions, each with
 * its own bounded requests, so a commit, which releases locks, never waits
 * behind prepares.
 *
 * The answer streams (`Accept: application/x-ndjson`): the participant writes
 * each message's reply on its own line as soon as it is settled, and each
 * message settles here on its line. So a prepare waiting for a lock holds back
 * no other vote in its batch; when one answer carried every reply, a batch
 * waited for its slowest message, and a prepare waiting for a lock held by a
 * transaction whose own vote was in the same batch could only time out (issue
 * 12's measurement: 5% of transfers aborted that way at concurrency 64). A
 * request frees its lane's slot once its answer has begun: what is still open
 * in it waits at the participant, not on the wire.
 *
 * Each message keeps its own fate. It has its own timeout, counted from when
 * it leaves in a request; when it passes, that message alone fails as a
 * timeout, whatever happens to its batch. Waiting in the lane's queue does not
 * count: the participant has not seen the message yet, and the queue drains by
 * at least `requestsAwaitingMax` batches per timeout whatever the participant
 * does, so the wait is bounded by the queue's bound. Counted from the handover,
 * a backlog deeper than a participant can answer within one timeout (a
 * coordinator restarted with 10,000 decisions to re-send) timed out in the
 * queue and on the wire, and was sent again and again (issue 12). A batch that gets no
 * answer, or an answer that is not a batch of replies, fails each message it
 * carried with that error; a streamed answer cut short fails only the messages
 * still without a line. A line names its message's place and is checked by the
 * transaction id it echoes: a line that does not match stops the reading and
 * fails every message still open, since no later line can be trusted. A
 * participant that answers the batch whole (an older version) is read as
 * before: replies by position, checked by txId, replies out of order failing
 * the whole batch. What a reply means
 * is decided by ./answers.ts, as for a single request. Retries belong to the
 * caller (./http-transport.ts), per message.
 *
 * A participant without the batch route (started with --no-batching, or an
 * older version) answers 404; that participant is then sent one request per
 * message for a while, and the messages of the refused batch go that way too
 * (a 404 means none of them was acted on). A batch larger than the participant
 * accepts (413) is sent message by message the same way.
 */
import type { Logger } from '../../shared/logger.ts';
import type { Metrics } from '../../shared/metrics.ts';
import { BATCH_MESSAGES_MAX, BATCH_STREAM_CONTENT_TYPE } from '../../shared/schemas.ts';
import { JsonText, TransportError, type HttpClient, type HttpResult, type LinesResult } from '../../shared/http/client.ts';
import { CONFIG_DEFAULTS, type CoordinatorConfig, type CoordinatorMessage, type SendFailure } from '../core/index.ts';
import { refusalOf } from './answers.ts';

/** Why a message was failed unsent: its sender may no longer send (an HA member whose term is over). */
export const NOT_LEAVING_MESSAGE = 'not sent: this coordinator no longer leads its group';

export const BATCH_DEFAULTS = {
  /** Messages in one request; the participant accepts at most this many. */
  batchMessagesMax: BATCH_MESSAGES_MAX,
  /** Bytes of JSON in one request, below the participant's default body limit (256 KiB); a bigger message goes alone. */
  batchBytesMax: 192 * 1024,
  /**
   * Requests to one participant, per lane (prepares, decisions), that it has not begun to answer.
   * A request whose answer has begun (its first streamed line) frees its slot: the messages
   * still open in it are waiting at the participant (a prepare in a lock wait), not on the wire.
   */
  requestsAwaitingMax: 2,
  /** Requests open at once to one participant, per lane, answered in part or not at all. */
  requestsOpenMax: 16,
  /**
   * Messages waiting for a request slot, per lane; beyond it a message fails at once, unsent.
   * The coordinator raises it to its bound on unfinished transactions (`batchLimitsFor`).
   */
  queuedMessagesMax: 8_192,
  /** After a 404 from the batch route, how long a participant is sent single requests before batches are tried again. */
  singleRoutesMs: 60_000,
} as const;

export type BatchLimits = { -readonly [K in keyof typeof BATCH_DEFAULTS]: number };

/**
 * The lane limits of a coordinator whose core is configured with `core` (its defaults where
 * unset). The queue holds its bound on unfinished transactions (`maxActiveTransactions`): each has
 * at most one message outstanding to each participant, so a lane never refuses a message the
 * core may have in flight. A smaller queue turned a recovery backlog into a storm: every message
 * past the bound failed at once, was retried within 50 ms into a queue still full, and went back
 * to the core's backoff (issue 12: 10,000 decided commits re-sent at a restart).
 */
export function batchLimitsFor(core: Partial<Pick<CoordinatorConfig, 'maxActiveTransactions'>> | undefined): Partial<BatchLimits> {
  const unfinishedMax = core?.maxActiveTransactions ?? CONFIG_DEFAULTS.maxActiveTransactions;
  return { queuedMessagesMax: Math.max(BATCH_DEFAULTS.queuedMessagesMax, unfinishedMax) };
}

/** A message that got no reply of its own: what the core should hear about it, and why. */
export class BatchFailure extends Error {
  constructor(
    readonly failure: SendFailure,
    message: string,
  ) {
    super(message);
    this.name = 'BatchFailure';
  }
}

export interface BatcherOptions extends Partial<BatchLimits> {
  readonly http: HttpClient;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /** Milliseconds, for the 404 fallback window only. */
  readonly now?: () => number;
  /** Checked as each request goes out (./http-transport.ts `mayLeave`); false fails its messages unsent. */
  readonly mayLeave?: () => boolean;
}

/** One message handed over and not yet settled. */
interface Waiting {
  readonly url: string;
  readonly message: CoordinatorMessage;
  /** The message as JSON, serialized once: its size decides the batch it fits, and it is sent as is. */
  readonly json: string;
  readonly timeoutMs: number;
  /** When its timeout passes; set, with its timer, when it leaves in a request (`startClock`). */
  deadline: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  done: boolean;
  readonly resolve: (result: HttpResult<unknown>) => void;
  readonly reject: (error: unknown) => void;
}

export class Batcher {
  private readonly limits: BatchLimits;
  private readonly lanes = new Map<string, Lane>();
  /** Participants that refused the batch route, and until when they get single requests. */
  private readonly singleUntil = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly o: BatcherOptions) {
    this.limits = {
      batchMessagesMax: o.batchMessagesMax ?? BATCH_DEFAULTS.batchMessagesMax,
      batchBytesMax: o.batchBytesMax ?? BATCH_DEFAULTS.batchBytesMax,
      requestsAwaitingMax: o.requestsAwaitingMax ?? BATCH_DEFAULTS.requestsAwaitingMax,
      requestsOpenMax: o.requestsOpenMax ?? BATCH_DEFAULTS.requestsOpenMax,
      queuedMessagesMax: o.queuedMessagesMax ?? BATCH_DEFAULTS.queuedMessagesMax,
      singleRoutesMs: o.singleRoutesMs ?? BATCH_DEFAULTS.singleRoutesMs,
    };
    for (const [name, v] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`Expected \`${name}\` to be a positive integer, got ${String(v)}.`);
    }
    if (this.limits.batchMessagesMax > BATCH_MESSAGES_MAX) throw new TypeError(`Expected \`batchMessagesMax\` to be at most ${BATCH_MESSAGES_MAX}.`);
    this.now = o.now ?? Date.now;
  }

  /**
   * Sends one message to the participant at `url` with the next request to it, and resolves with
   * its own reply (status and body, as its single route would have answered), or rejects with a
   * TransportError or a BatchFailure. Settles within `timeoutMs` of leaving in a request.
   */
  send(url: string, message: CoordinatorMessage, timeoutMs: number): Promise<HttpResult<unknown>> {
    if (this.sendsSingly(url)) return this.single(url, message, timeoutMs);
    return new Promise((resolve, reject) => {
      const w: Waiting = { url, message, json: JSON.stringify(message), timeoutMs, deadline: Infinity, timer: undefined, done: false, resolve, reject };
      const key = `${url} ${laneOf(message)}`;
      let lane = this.lanes.get(key);
      if (lane === undefined) {
        lane = new Lane(url, this);
        this.lanes.set(key, lane);
      }
      lane.enqueue(w);
    });
  }

  // ---- for the lanes ----------------------------------------------------------------------

  get bounds(): BatchLimits {
    return this.limits;
  }

  /**
   * Posts one batch and settles each of its messages, each as soon as its own reply arrives
   * (a streamed answer) or all at once (a participant that answers the batch whole).
   * `onFirstLine` runs on each line; the lane counts the first, when the participant has begun answering.
   */
  async post(url: string, batch: readonly Waiting[], onFirstLine?: () => void): Promise<void> {
    const unsent = this.notLeaving();
    if (unsent !== undefined) {
      for (const w of batch) fail(w, unsent);
      return;
    }
    const timeoutMs = Math.max(1, Math.ceil(Math.max(...batch.map((w) => w.deadline)) - performance.now()));
    this.count('batch', batch.length);
    const txIds = batch.map((w) => w.message.body.txId);
    const seen: boolean[] = [];
    let res: LinesResult;
    try {
      res = await this.o.http.postLines(`${url}/v1/2pc/batch`, new JsonText(`{"messages":[${batch.map((w) => w.json).join(',')}]}`), {
        timeoutMs,
        linesType: BATCH_STREAM_CONTENT_TYPE,
        onLine: (line) => {
          const matched = matchLine(txIds, seen, line);
          // A line that answers no message of this batch: no later line can be trusted either.
          if ('whole' in matched) throw new BatchFailure('server-error', matched.whole);
          const w = batch[matched.index] as Waiting;
          const r = matched.reply;
          if (r.kind === 'answer') answer(w, { status: r.status, data: r.data });
          else fail(w, new BatchFailure('server-error', r.message));
          onFirstLine?.();
        },
      });
    } catch (error) {
      // Messages answered on their own lines keep their answers; the rest fail with what stopped the stream.
      for (const w of batch) fail(w, error);
      return;
    }
    if (res.streamed) {
      // Built only for a message still open: an Error captures a stack, and most streams answer every message.
      for (const w of batch) if (!w.done) fail(w, new BatchFailure('server-error', 'the participant ended its streamed answer without a line for this message'));
      return;
    }
    if (res.status === 200) return distribute(batch, res.data);
    if (res.status === 404 || (res.status === 413 && batch.length > 1)) {
      // Nothing in this batch was acted on: each message goes again, alone.
      if (res.status === 404) this.refusedBatches(url);
      await Promise.all(batch.filter((w) => !w.done).map((w) => this.singleFor(w)));
      return;
    }
    // A status for the whole batch is never one message's answer (a 409 here is no heuristic).
    const refused = refusalOf(res.status, res.data);
    for (const w of batch) fail(w, new BatchFailure(refused.error, `the batch was refused: ${refused.message}`));
  }

  // ---- one request per message ------------------------------------------------------------

  private sendsSingly(url: string): boolean {
    const until = this.singleUntil.get(url);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.singleUntil.delete(url);
    return false;
  }

  private refusedBatches(url: string): void {
    if (this.sendsSingly(url)) return;
    this.singleUntil.set(url, this.now() + this.limits.singleRoutesMs);
    this.o.logger?.warn(
      { step: 'batch.not-served', url, singleRoutesMs: this.limits.singleRoutesMs },
      `the participant at ${url} has no batch route (404); sending it one request per message for a while`,
    );
  }

  private async single(url: string, message: CoordinatorMessage, timeoutMs: number): Promise<HttpResult<unknown>> {
    const unsent = this.notLeaving();
    if (unsent !== undefined) throw unsent;
    this.count('single', 1);
    return this.o.http.post(`${url}/v1/2pc/${message.type}`, message.body, { timeoutMs });
  }

  private async singleFor(w: Waiting): Promise<void> {
    try {
      answer(w, await this.single(w.url, w.message, Math.max(1, Math.ceil(w.deadline - performance.now()))));
    } catch (error) {
      fail(w, error);
    }
  }

  /** The failure of a request that must not leave now (its sender's term is over), or undefined. */
  private notLeaving(): BatchFailure | undefined {
    if (this.o.mayLeave === undefined || this.o.mayLeave()) return undefined;
    return new BatchFailure('rejected', NOT_LEAVING_MESSAGE);
  }

  private count(mode: 'batch' | 'single', messages: number): void {
    countSent(this.o.metrics, mode, messages);
  }
}

/** Counts one request to a participant and the protocol messages it carried. */
export function countSent(metrics: Metrics | undefined, mode: 'batch' | 'single', messages: number): void {
  metrics?.inc('coordinator_participant_requests_total', 'Requests sent to participants, by mode (batch: POST /v1/2pc/batch; single: one message).', { mode });
  metrics?.inc('coordinator_participant_messages_total', 'Protocol messages sent to participants, by the mode of the request that carried them.', { mode }, messages);
}

/** The messages for one participant of one kind (prepares, or decisions), and the requests carrying them. */
class Lane {
  private queue: Waiting[] = [];
  /** Requests sent that the participant has not begun to answer. */
  private awaiting = 0;
  /** Requests not yet ended, answered in part or not at all. */
  private open = 0;
  private pumpQueued = false;

  constructor(
    private readonly url: string,
    private readonly batcher: Batcher,
  ) {}

  enqueue(w: Waiting): void {
    const { queuedMessagesMax } = this.batcher.bounds;
    if (this.queue.length >= queuedMessagesMax) {
      this.queue = this.queue.filter((q) => !q.done);
      if (this.queue.length >= queuedMessagesMax) {
        return fail(w, new BatchFailure('unreachable', `not sent: ${queuedMessagesMax} messages already wait for ${this.url}`));
      }
    }
    this.queue.push(w);
    this.pumpSoon();
  }

  /**
   * Sends at the end of this turn of the event loop (its check phase), not after this step's
   * microtasks: a turn's poll phase reads many client requests and answer lines, each its own
   * core step, and their messages then share requests. Gathering one microtask's sends alone
   * sent most messages by themselves whenever a slot was free (4.1 a request at 450 tx/s).
   */
  private pumpSoon(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private pump(): void {
    const { requestsAwaitingMax, requestsOpenMax } = this.batcher.bounds;
    while (this.awaiting < requestsAwaitingMax && this.open < requestsOpenMax) {
      const batch = this.take();
      if (batch.length === 0) return;
      for (const w of batch) startClock(w);
      this.awaiting++;
      this.open++;
      let begun = false;
      const begin = () => {
        if (begun) return;
        begun = true;
        this.awaiting--;
        this.pumpSoon();
      };
      void this.batcher.post(this.url, batch, begin).finally(() => {
        begin();
        this.open--;
        this.pumpSoon();
      });
    }
  }

  /** The next batch: unsettled messages in arrival order, up to the message and byte bounds (at least one). */
  private take(): Waiting[] {
    return takeBatch(this.queue, this.batcher.bounds);
  }
}

/** Starts a message's own timeout as it leaves in a request (once: a 404 fallback sends it again within the same one). */
function startClock(w: Waiting): void {
  if (w.timer !== undefined || w.done) return;
  w.deadline = performance.now() + w.timeoutMs;
  w.timer = setTimeout(() => fail(w, new TransportError('timeout', `no answer from ${w.url} within ${w.timeoutMs} ms`, w.url)), w.timeoutMs);
  // Never keeps a stopping process alive: the promise alone does not.
  w.timer.unref();
}

/** Settles a message with its own reply, unless it is settled already (a message settles once). */
function answer(w: Waiting, result: HttpResult<unknown>): void {
  if (w.done) return;
  w.done = true;
  clearTimeout(w.timer);
  w.resolve(result);
}

/** Settles a message with the error that stands for its reply, unless it is settled already. */
function fail(w: Waiting, error: unknown): void {
  if (w.done) return;
  w.done = true;
  clearTimeout(w.timer);
  w.reject(error);
}

/** Hands each message its reply, by position; an answer that is not one reply per message, in order, fails them all. */
function distribute(batch: readonly Waiting[], data: unknown): void {
  const matched = matchReplies(
    batch.map((w) => w.message.body.txId),
    data,
  );
  if ('whole' in matched) {
    for (const w of batch) fail(w, new BatchFailure('server-error', matched.whole));
    return;
  }
  batch.forEach((w, i) => {
    const r = matched.replies[i];
    if (r?.kind === 'answer') answer(w, { status: r.status, data: r.data });
    else fail(w, new BatchFailure('server-error', r?.message ?? 'the participant sent no reply to this message'));
  });
}

// ---- the pure part, shared with the simulator (test/sim/batching.ts) -----------------------

/** The lane a message travels in: commits and aborts never wait behind prepares. */
export type LaneKind = 'prepare' | 'decision';

export function laneOf(message: CoordinatorMessage): LaneKind {
  return message.type === 'prepare' ? 'prepare' : 'decision';
}

/** What a lane's queue holds, as far as grouping goes: whether it settled already, and its JSON. */
export interface Batchable {
  readonly done: boolean;
  readonly json: string;
}

/**
 * Takes the next batch off the front of `queue` (in place): its unsettled messages in arrival
 * order, up to the message and byte bounds, and at least one however big; settled ones skipped
 * on the way are dropped.
 */
export function takeBatch<T extends Batchable>(queue: T[], bounds: Pick<BatchLimits, 'batchMessagesMax' | 'batchBytesMax'>): T[] {
  const batch: T[] = [];
  let bytes = 0;
  let i = 0;
  for (; i < queue.length && batch.length < bounds.batchMessagesMax; i++) {
    const w = queue[i] as T;
    if (w.done) continue;
    if (batch.length > 0 && bytes + w.json.length + 1 > bounds.batchBytesMax) break;
    bytes += w.json.length + 1;
    batch.push(w);
  }
  queue.splice(0, i);
  return batch;
}

/** One message's own reply from a batch answer: its status and body, or why there is none. */
export type MatchedReply = { readonly kind: 'answer'; readonly status: number; readonly data: unknown } | { readonly kind: 'unreadable'; readonly message: string };

/**
 * Matches a batch answer to the messages it answers (`txIds`, in the order sent): by position,
 * checked by the transaction id each reply echoes. An answer that is not one reply per message,
 * in order, is `whole`: the reason every message of the batch fails.
 */
export function matchReplies(txIds: readonly string[], data: unknown): { readonly whole: string } | { readonly replies: readonly MatchedReply[] } {
  const replies = (data as { replies?: unknown } | undefined)?.replies;
  const whole = (why: string) => ({ whole: `the participant's batch answer ${why}` });
  if (!Array.isArray(replies)) return whole('has no replies');
  if (replies.length !== txIds.length) return whole(`has ${replies.length} replies for ${txIds.length} messages`);
  const misplaced = replies.findIndex((r, i) => {
    const txId = (r as { txId?: unknown } | null)?.txId;
    return txId !== undefined && txId !== txIds[i];
  });
  if (misplaced >= 0) return whole(`is out of order (reply ${misplaced} names another transaction)`);
  return {
    replies: replies.map((raw): MatchedReply => {
      const r = raw as { status?: unknown; body?: unknown } | null;
      const status = r?.status;
      if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
        return { kind: 'unreadable', message: 'the participant sent no readable reply to this message in its batch answer' };
      }
      return { kind: 'answer', status, data: r?.body };
    }),
  };
}

/**
 * Matches one line of a streamed batch answer (`{i, txId?, status, body}`) to its message: `i`
 * is its place in the batch, checked by the transaction id the line echoes (`txIds`, in the order
 * sent); `seen` records the places answered so far (updated here). A line that cannot be read, is
 * out of range, names another transaction or answers a message twice is `whole`: the stream is
 * not to be trusted, and every message still without a line fails.
 */
export function matchLine(txIds: readonly string[], seen: boolean[], line: string): { readonly whole: string } | { readonly index: number; readonly reply: MatchedReply } {
  const whole = (why: string) => ({ whole: `the participant's streamed batch answer ${why}` });
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return whole('has a line that is not JSON');
  }
  const r = parsed as { i?: unknown; txId?: unknown; status?: unknown; body?: unknown } | null;
  const i = r?.i;
  if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= txIds.length) return whole(`has a line for no message of the batch (i = ${String(i)})`);
  if (r?.txId !== undefined && r.txId !== txIds[i]) return whole(`is out of order (line ${i} names another transaction)`);
  if (seen[i] === true) return whole(`answers message ${i} twice`);
  seen[i] = true;
  const status = r?.status;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    return { index: i, reply: { kind: 'unreadable', message: 'the participant sent no readable reply to this message in its batch answer' } };
  }
  return { index: i, reply: { kind: 'answer', status, data: r?.body } };
}
