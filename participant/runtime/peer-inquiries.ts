/**
 * Peer inquiries (cooperative termination), batched per peer: the same
 * network group commit as ./inquiries.ts does for the coordinator.
 *
 * With the coordinator down, every in-doubt transaction asks every peer once
 * per round. One request per transaction and peer was 20,000 requests a round
 * for a participant restarted with 10,000 in doubt and two peers, enough to
 * saturate the CPU of everyone involved (issue 12's recovery bench). Here at
 * most one request is in flight to each peer; inquiries arriving meanwhile
 * share the next one (`POST /v1/2pc/inquiries`), up to `batchTxsMax` ids a
 * request, and a request that is not full waits `requestIntervalMsMin` to
 * gather more. Each id keeps its own answer: one the peer left out, or a
 * failed request, is `unreachable` for that id, exactly as if it had been asked
 * alone and got no answer.
 *
 * An id no longer in doubt when its request is made up (the decision reached
 * it meanwhile) is left out, as in ./inquiries.ts: its answer could only be stale.
 *
 * A peer without the batched route (an older version, or one run with
 * `--no-batching`) answers 404; from then on that peer is asked with the single
 * route, `peerCallsInFlightMax` at a time, as before.
 */
import type { HttpClient } from '../../shared/http/client.ts';
import type { Logger } from '../../shared/logger.ts';
import { PEER_INQUIRIES_BATCH_MAX } from '../../shared/schemas.ts';
import type { TxId } from '../../shared/types.ts';
import { nextTurn, sleep, takeBatch } from './gather.ts';
import { PerTargetLimit } from './limit.ts';

export const PEER_INQUIRY_DEFAULTS = {
  /** Ids carried by one request; a peer accepts at most this many (PEER_INQUIRIES_BATCH_MAX). */
  batchTxsMax: PEER_INQUIRIES_BATCH_MAX,
  /**
   * A request that is not full starts at least this long after the one before to the same peer, so
   * inquiries spread out by their jittered backoff still share requests. A full one does not wait.
   */
  requestIntervalMsMin: 20,
  /** Ids waiting for the next request to one peer. Each in-doubt transaction asks a peer once a round, so the core's lockingTxsMax bounds it too. */
  queuedTxsPerPeerMax: 65_536,
  /** Single-route inquiries in flight to a peer that lacks the batched route. */
  peerCallsInFlightMax: 8,
} as const;

export type PeerAnswer = 'committed' | 'aborted' | 'prepared' | 'unreachable';

export interface PeerInquiriesOptions {
  readonly http: HttpClient;
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** Receives one answer per inquiry. */
  readonly answer: (txId: TxId, peerUrl: string, answer: PeerAnswer, heuristic: boolean) => void;
  /** Told how many transactions a request asked about, once it is answered (or not): one per inquiry, batched or not; a batch the peer refuses (404) is counted in its single requests. */
  readonly counted?: (txIds: number) => void;
  /** False for an id no longer in doubt: it is left out, and nobody waits for its answer. Absent: every id is asked. */
  readonly inDoubt?: (txId: TxId) => boolean;
  readonly batchTxsMax?: number;
  readonly requestIntervalMsMin?: number;
}

/** One peer's queue and whether it has shown it lacks the batched route. */
interface PeerQueue {
  readonly queued: Set<TxId>;
  inFlight: boolean;
  singleOnly: boolean;
}

export class PeerInquiries {
  private readonly peers = new Map<string, PeerQueue>();
  private readonly singles = new PerTargetLimit(PEER_INQUIRY_DEFAULTS.peerCallsInFlightMax);
  private readonly batchMax: number;
  private readonly intervalMs: number;
  private stopped = false;

  constructor(private readonly o: PeerInquiriesOptions) {
    this.batchMax = Math.min(o.batchTxsMax ?? PEER_INQUIRY_DEFAULTS.batchTxsMax, PEER_INQUIRIES_BATCH_MAX);
    this.intervalMs = o.requestIntervalMsMin ?? PEER_INQUIRY_DEFAULTS.requestIntervalMsMin;
  }

  /** Asks `peerUrl` about `txId` with the next request to it. */
  enqueue(txId: TxId, peerUrl: string): void {
    if (this.stopped) return;
    let peer = this.peers.get(peerUrl);
    if (peer === undefined) {
      peer = { queued: new Set(), inFlight: false, singleOnly: false };
      this.peers.set(peerUrl, peer);
    }
    if (peer.singleOnly) return this.askAlone(txId, peerUrl);
    if (peer.queued.size >= PEER_INQUIRY_DEFAULTS.queuedTxsPerPeerMax) {
      // Cannot happen while the core bounds in-doubt transactions below it; answer rather than grow.
      this.o.answer(txId, peerUrl, 'unreachable', false);
      return;
    }
    peer.queued.add(txId);
    if (!peer.inFlight) void this.drain(peerUrl, peer);
  }

  stop(): void {
    this.stopped = true;
    for (const peer of this.peers.values()) peer.queued.clear();
    this.singles.stop();
  }

  private async drain(peerUrl: string, peer: PeerQueue): Promise<void> {
    peer.inFlight = true;
    try {
      while (peer.queued.size > 0 && !this.stopped) {
        // Inquiries handed over in this turn (a recovery's thousands) join first.
        await nextTurn();
        if (peer.queued.size < this.batchMax) await sleep(this.intervalMs);
        if (this.stopped) return;
        const batch = takeBatch(peer.queued, this.batchMax, this.o.inDoubt);
        if (batch.length === 0) continue;
        const answered = await this.askBatch(peerUrl, batch);
        if (this.stopped) return;
        if (answered === 'no-route') {
          peer.singleOnly = true;
          this.o.logger.info({ step: 'peer-inquiry.single-route', url: peerUrl }, 'the peer has no batched inquiry route; asking it one transaction at a time');
          for (const id of [...batch, ...peer.queued]) this.askAlone(id, peerUrl);
          peer.queued.clear();
        }
      }
    } finally {
      peer.inFlight = false;
    }
  }

  /** One batched request; every id gets its answer here, unless the peer lacks the route. */
  private async askBatch(peerUrl: string, txIds: readonly TxId[]): Promise<'done' | 'no-route'> {
    const url = `${peerUrl}/v1/2pc/inquiries`;
    this.o.logger.debug({ step: 'peer-inquiry.sent', url, txs: txIds.length }, 'asking a peer for outcomes');
    let states: Record<string, unknown> | undefined;
    try {
      const res = await this.o.http.post<{ states?: unknown }>(url, { txIds }, { timeoutMs: this.o.timeoutMs });
      if (res.status === 404) return 'no-route';
      const got = res.status === 200 ? res.data?.states : undefined;
      if (got !== null && typeof got === 'object') states = got as Record<string, unknown>;
    } catch {
      // No answer: each id counts the peer unreachable this round.
    }
    this.o.counted?.(txIds.length);
    for (const txId of txIds) {
      const [answer, heuristic] = readState(states?.[txId]);
      this.o.answer(txId, peerUrl, answer, heuristic);
    }
    return 'done';
  }

  /** The single route, for a peer without the batched one. */
  private askAlone(txId: TxId, peerUrl: string): void {
    this.singles.run(peerUrl, async () => {
      const url = `${peerUrl}/v1/2pc/transactions/${encodeURIComponent(txId)}/inquiry`;
      this.o.counted?.(1);
      let body: unknown;
      try {
        const res = await this.o.http.post<unknown>(url, {}, { timeoutMs: this.o.timeoutMs });
        body = res.status === 200 ? res.data : undefined;
      } catch {
        // No answer: the peer counts as unreachable this round.
      }
      if (this.stopped) return;
      const [answer, heuristic] = readState(body);
      this.o.answer(txId, peerUrl, answer, heuristic);
    });
  }
}

/** A peer's BranchState reply as the core's answer; anything else is no answer. */
function readState(body: unknown): [PeerAnswer, boolean] {
  if (body === null || typeof body !== 'object') return ['unreachable', false];
  const { state, heuristic } = body as { state?: unknown; heuristic?: unknown };
  const answer = state === 'committed' || state === 'aborted' || state === 'prepared' ? state : 'unreachable';
  return [answer, heuristic !== undefined];
}
