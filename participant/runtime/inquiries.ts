/**
 * Outcome inquiries to the coordinator, batched: the network's group commit.
 *
 * Thousands of in-doubt transactions (after a participant restart, or while
 * the coordinator is down) used to send one GET each per backoff round, about
 * 400 requests a second for 4,096 of them. Here inquiries share requests, up to
 * `batchTxsMax` ids a request (`POST /v1/outcomes`). One request is in flight
 * while what waits would not fill one: a request that is not full starts at
 * least `requestIntervalMsMin` after the one before, and inquiries arriving
 * meanwhile share it. While a full batch waits (a backlog: a participant
 * restarted with 10,000 in doubt), up to `requestsInFlightMax` may go at once
 * (one by default, see there). Each id
 * keeps its own answer: a decided outcome settles it, `pending` means the
 * coordinator is alive and undecided, and a failed request fails every id it
 * carried, exactly as if each had been asked alone.
 *
 * An id that is no longer in doubt when its request is made up (the
 * coordinator's decision reached it meanwhile, as it does for every decided
 * transaction once a restarted coordinator re-sends them) is left out: its
 * answer could only be stale, and the coordinator would serve it for nothing.
 */
import { TransportError, type HttpClient } from '../../shared/http/client.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Outcome, TxId } from '../../shared/types.ts';
import { nextTurn, sleep, takeBatch } from './gather.ts';

export const INQUIRY_DEFAULTS = {
  /** Ids carried by one request; the coordinator accepts at most this many (OUTCOMES_BATCH_MAX). */
  batchTxsMax: 256,
  /**
   * A request that is not full starts at least this long after the one before, so inquiries spread
   * out by their jittered backoff still share requests: at most 20 such requests a second to the
   * coordinator. An inquiry comes seconds after the vote, so 50 ms more is nothing. A full request
   * does not wait (one is in flight at most either way).
   */
  requestIntervalMsMin: 50,
  /** Ids waiting for the next request. Each in-doubt transaction has at most one inquiry out, so the core's lockingTxsMax bounds it too. */
  queuedTxsMax: 65_536,
  /**
   * Requests in flight at once while full batches wait. Two overlap the coordinator's answering of
   * one with the participant's settling of the other, but measured in the recovery bench
   * (docs/performance.md, fourth pass) two made the coordinator phase slower in four comparisons
   * of four (the participants' pulls compete with the coordinator's own re-sends) and the
   * participant phase no faster beyond the noise, so one it is; the option stays for a deployment
   * whose coordinator answers from more than one core.
   */
  requestsInFlightMax: 1,
} as const;

export type InquiryAnswer =
  | { readonly kind: 'learned'; readonly txId: TxId; readonly outcome: Outcome }
  | { readonly kind: 'failed'; readonly txId: TxId; readonly reason: string; readonly coordinatorReachable: boolean };

export interface OutcomeInquiriesOptions {
  readonly http: HttpClient;
  /** The configured coordinator's base URL. */
  readonly coordinatorUrl: string;
  /**
   * The other members of an HA coordinator group (coordinator/ha.ts), if any. A request that gets no
   * answer from one member goes to the next at once, so an inquiry reaches whichever is alive; the
   * member that answered is asked first next time.
   */
  readonly otherCoordinatorUrls?: readonly string[];
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** Receives one answer per id, in the order the ids were sent. */
  readonly answer: (a: InquiryAnswer) => void;
  /**
   * False for an id no longer in doubt (its decision arrived while it waited for a request): it is
   * left out, and nobody waits for its answer. Absent: every id is asked.
   */
  readonly inDoubt?: (txId: TxId) => boolean;
  /** Told how many ids each request to a coordinator asks about, as it leaves (`twopc_inquiries_total{to="coordinator"}`). */
  readonly counted?: (txIds: number) => void;
  readonly batchTxsMax?: number;
  readonly requestIntervalMsMin?: number;
  readonly requestsInFlightMax?: number;
}

export class OutcomeInquiries {
  private readonly queued = new Set<TxId>();
  /** Requests being gathered or awaiting their answers. */
  private inFlight = 0;
  private stopped = false;
  /** Every coordinator's `/v1/outcomes`, the one that answered last first. */
  private readonly urls: string[];
  private readonly batchMax: number;
  private readonly intervalMs: number;
  private readonly inFlightMax: number;

  constructor(private readonly o: OutcomeInquiriesOptions) {
    this.urls = [o.coordinatorUrl, ...(o.otherCoordinatorUrls ?? [])].map((u) => `${u}/v1/outcomes`);
    this.batchMax = o.batchTxsMax ?? INQUIRY_DEFAULTS.batchTxsMax;
    this.intervalMs = o.requestIntervalMsMin ?? INQUIRY_DEFAULTS.requestIntervalMsMin;
    this.inFlightMax = Math.max(1, o.requestsInFlightMax ?? INQUIRY_DEFAULTS.requestsInFlightMax);
  }

  /** Asks about `txId` with the next request. */
  enqueue(txId: TxId): void {
    if (this.stopped) return;
    if (this.queued.size >= INQUIRY_DEFAULTS.queuedTxsMax) {
      // Cannot happen while the core bounds in-doubt transactions below it; fail loudly rather than grow.
      this.o.answer({ kind: 'failed', txId, reason: `more than ${INQUIRY_DEFAULTS.queuedTxsMax} inquiries queued`, coordinatorReachable: false });
      return;
    }
    this.queued.add(txId);
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    this.queued.clear();
  }

  /** Starts a request: the first for anything queued, another only while a full batch waits. */
  private kick(): void {
    if (this.stopped) return;
    if (this.inFlight === 0 || (this.inFlight < this.inFlightMax && this.queued.size >= this.batchMax)) void this.drain();
  }

  private async drain(): Promise<void> {
    this.inFlight++;
    try {
      while (this.queued.size > 0 && !this.stopped) {
        // Inquiries handed over in this turn (a recovery's thousands) join first.
        await nextTurn();
        // Let the inquiries of the next few milliseconds join this request, unless a full batch
        // already waits: then there is nothing to gather, and waiting only delays a backlog (a
        // participant restarted with 10,000 in doubt spent 40 intervals, 2 s, asking). Only one
        // request gathers a partial batch; a second one is for a backlog, and ends with it.
        if (this.queued.size < this.batchMax) {
          if (this.inFlight > 1) return;
          await sleep(this.intervalMs);
        }
        if (this.stopped) return;
        const batch = takeBatch(this.queued, this.batchMax, this.o.inDoubt);
        if (batch.length === 0) continue;
        this.kick();
        const answers = await this.ask(batch);
        if (this.stopped) return;
        for (const a of answers) this.o.answer(a);
      }
    } finally {
      this.inFlight--;
    }
  }

  /**
   * Asks the coordinators in turn (one round at most) until every id has a decided outcome. With
   * one coordinator that is one request, as before. In an HA group only the leader presumes abort;
   * a follower says "pending" for what is not decided in etcd, so a "pending" goes on to the next
   * member too. A member that did not answer at all is asked last from now on.
   */
  private async ask(txIds: readonly TxId[]): Promise<InquiryAnswer[]> {
    const best = new Map<TxId, InquiryAnswer>();
    for (const url of [...this.urls]) {
      const open = txIds.filter((id) => best.get(id)?.kind !== 'learned');
      if (open.length === 0) break;
      const answers = await this.askOne(url, open);
      if (!answers.some((a) => a.kind === 'learned' || a.coordinatorReachable)) {
        this.urls.push(...this.urls.splice(this.urls.indexOf(url), 1));
      }
      for (const a of answers) {
        const had = best.get(a.txId);
        // Learned beats anything; an answer from a live coordinator beats no answer.
        if (had === undefined || a.kind === 'learned' || (had.kind === 'failed' && !had.coordinatorReachable)) best.set(a.txId, a);
      }
    }
    return txIds.map((id) => best.get(id) as InquiryAnswer);
  }

  private async askOne(url: string, txIds: readonly TxId[]): Promise<InquiryAnswer[]> {
    this.o.logger.debug({ step: 'inquiry.sent', url, txIds }, 'asking the coordinator for outcomes');
    const failAll = (reason: string, coordinatorReachable: boolean) => txIds.map((txId): InquiryAnswer => ({ kind: 'failed', txId, reason, coordinatorReachable }));
    this.o.counted?.(txIds.length);
    try {
      const res = await this.o.http.post<{ outcomes?: Record<string, unknown> }>(url, { txIds }, { timeoutMs: this.o.timeoutMs });
      const outcomes = res.status === 200 ? res.data?.outcomes : undefined;
      // Only the coordinator's own answer means it is alive and will decide. A 502 from a gateway in
      // front of a dead coordinator, or a 503 from one that is stopping, decides nothing, so the peers
      // are asked as if it were unreachable; asking them is always safe.
      if (outcomes === undefined || outcomes === null || typeof outcomes !== 'object') {
        return failAll(`the coordinator (${url}) answered HTTP ${res.status}`, false);
      }
      return txIds.map((txId): InquiryAnswer => {
        const outcome = outcomes[txId];
        if (outcome === 'committed' || outcome === 'aborted') return { kind: 'learned', txId, outcome };
        return { kind: 'failed', txId, reason: `the coordinator (${url}) says ${String(outcome)}`, coordinatorReachable: true };
      });
    } catch (error) {
      const reason = error instanceof TransportError ? error.message : String(error);
      this.o.logger.warn({ step: 'inquiry.request-failed', url, txs: txIds.length, reason }, 'could not ask the coordinator for outcomes; the transactions stay in doubt and are asked again');
      return failAll(reason, false);
    }
  }
}
