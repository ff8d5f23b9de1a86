/**
 * The participant core's vocabulary: configuration, WAL records, events in,
 * effects out, and the state carried between steps. Nothing here does I/O.
 *
 * The resource (the data under 2PC) is reached only through effects
 * (`resourcePrepare`, `resourceCommit`, ...), so one core serves the built-in
 * key-value store and any resource a microservice brings. Ops are opaque to the
 * core: it learns which keys they touch from `config.keysOf`, or, for a
 * resource that takes its own locks, takes no locks at all.
 */
import type { CommonEffect, ReplyEffect, RequestId, TimerFired } from '../../shared/core.ts';
import type { Outcome, TxId, Vote } from '../../shared/types.ts';
import type { ResourceOutcome } from '../resources/resource.ts';
import type { ForgetHorizon, RecentOutcomes } from './outcomes.ts';

// ---- Configuration ---------------------------------------------------------------

export interface ParticipantConfig {
  /**
   * The keys a list of (already validated) ops touches; locks are taken on exactly these. Must be pure.
   * Absent: the resource takes its own locks (`locking: 'resource'`) and the core takes none.
   */
  readonly keysOf?: (ops: readonly unknown[]) => readonly string[];
  /** This participant's own URL as peers list it; it is not asked about its own transactions. */
  readonly selfUrl?: string;
  /** How long a prepare waits for a held lock before voting no. 0 votes no at once. */
  readonly lockWaitMs?: number;
  /** How long a YES voter waits for the decision before it starts asking for it. */
  readonly decisionWaitMs?: number;
  /** Backoff between outcome inquiries: doubles from base up to max. */
  readonly inquiryBackoffBaseMs?: number;
  readonly inquiryBackoffMaxMs?: number;
  /**
   * Cooperative termination: a peer that answered "prepared too" is asked again only this long
   * after it was last asked, however many rounds fail at the coordinator in between. It learns the
   * outcome from the coordinator, an operator or a peer this one asks too, and asking it every round cost each
   * participant with thousands in doubt a steady share of a core while the coordinator was down
   * (issue 12's recovery bench). A peer that did not answer is asked every round.
   */
  readonly preparedPeerReaskMs?: number;
  /** Bad input beyond these is refused with a 400 and never logged. */
  readonly opsPerTxMax?: number;
  readonly keysPerTxMax?: number;
  /** Prepares queued behind held locks; beyond it a prepare votes no at once. */
  readonly waitingPreparesMax?: number;
  /** Transactions holding locks (being prepared, or prepared and in doubt); beyond it a prepare votes no. */
  readonly lockingTxsMax?: number;
  /** Requests (the original and its retries) that may await one transaction's vote. */
  readonly prepareRequestsPerTxMax?: number;
  /**
   * Settled outcomes remembered for duplicates, late prepares and peer
   * inquiries (the most recent this many; see ./outcomes.ts).
   */
  readonly outcomesMax?: number;
}

export type ResolvedConfig = Required<Omit<ParticipantConfig, 'selfUrl'>> & { readonly selfUrl: string | undefined };

export const CONFIG_DEFAULTS = {
  lockWaitMs: 2_000,
  decisionWaitMs: 3_000,
  inquiryBackoffBaseMs: 250,
  inquiryBackoffMaxMs: 10_000,
  preparedPeerReaskMs: 30_000,
  opsPerTxMax: 256,
  keysPerTxMax: 256,
  waitingPreparesMax: 1_024,
  lockingTxsMax: 4_096,
  prepareRequestsPerTxMax: 4,
  outcomesMax: 32_768,
} as const;

// ---- WAL records -------------------------------------------------------------------

/** Forced before the YES vote leaves. `data` is what the resource needs at commit (redo/undo). */
export interface PreparedRecord {
  readonly type: 'PREPARED';
  readonly txId: TxId;
  readonly coordinator: string;
  readonly participants: readonly string[];
  readonly keys: readonly string[];
  readonly data: unknown;
  readonly at: number;
  /** The coordinator presumes commit: this participant's ABORTED must be forced before it acks. */
  readonly abortForced?: true;
  /** What the prepare asked for (see shared/digest.ts); absent in records written before it existed. */
  readonly opsDigest?: string;
}
/** Forced before the commit is acknowledged. One-phase commits carry their `data`, having no PREPARED. */
export interface CommittedRecord {
  readonly type: 'COMMITTED';
  readonly txId: TxId;
  readonly at: number;
  readonly data?: unknown;
  readonly onePhase?: true;
  /** One-phase commits only, having no PREPARED to carry it. */
  readonly opsDigest?: string;
}
/** Lazy under presumed abort, except a peer-inquiry tombstone, which is a promise and is forced. */
export interface AbortedRecord {
  readonly type: 'ABORTED';
  readonly txId: TxId;
  readonly at: number;
  readonly reason?: string;
}
/** An operator's decision for an in-doubt transaction; forced. */
export interface HeuristicRecord {
  readonly type: 'HEURISTIC';
  readonly txId: TxId;
  readonly outcome: Outcome;
  readonly at: number;
}
export type ParticipantRecord = PreparedRecord | CommittedRecord | AbortedRecord | HeuristicRecord;

// ---- Checkpoint snapshot ---------------------------------------------------------

export interface OutcomeEntry {
  readonly outcome: Outcome;
  /** When it settled. */
  readonly at: number;
  /** Set when an operator settled it by hand. */
  readonly heuristic?: Outcome;
  /** Why it aborted, when this participant voted no. */
  readonly reason?: string;
  /** For a transaction that voted yes: what it prepared, so a prepare for other work is refused. */
  readonly opsDigest?: string;
}

/** A PREPARED record as a checkpoint keeps it (the record may go with its segment). */
export type PreparedSnapshot = Omit<PreparedRecord, 'type'>;

/**
 * What a checkpoint stores: the resource's own snapshot, the in-doubt
 * transactions (their PREPARED records may be dropped with old segments), and
 * the remembered outcomes, oldest first.
 */
export interface ParticipantSnapshot {
  readonly version: 1;
  readonly resource: unknown;
  readonly prepared: readonly PreparedSnapshot[];
  readonly outcomes: readonly (readonly [TxId, OutcomeEntry])[];
  /** What the outcome memory has dropped so far (see ./outcomes.ts); absent when nothing was. */
  readonly forgotten?: ForgetHorizon;
}

// ---- Events ------------------------------------------------------------------------

interface Timed {
  readonly now: number;
}
interface Request extends Timed {
  readonly requestId: RequestId;
}

export interface PrepareEvent extends Request {
  readonly type: 'prepare';
  readonly txId: TxId;
  readonly coordinator: string;
  readonly participants: readonly string[];
  readonly ops: readonly unknown[];
  readonly onePhase: boolean;
  /** The prepare said the coordinator presumes commit. */
  readonly abortForced?: boolean;
  /**
   * A digest of `ops` (shared/digest.ts), computed at the edge. A second prepare of the same txId
   * with another digest is refused: it asks for work this participant did not prepare.
   */
  readonly opsDigest?: string;
}
export interface DecisionEvent extends Request {
  readonly type: 'commit' | 'abort';
  readonly txId: TxId;
}
/** The resource's answer to `resourcePrepare`. The runtime turns a thrown error into `vote: 'no'`. */
export interface ResourcePreparedEvent extends Timed {
  readonly type: 'resourcePrepared';
  readonly txId: TxId;
  readonly vote: Vote;
  readonly reason?: string;
  readonly data?: unknown;
}
/** The coordinator answered an inquiry with a decision. */
export interface OutcomeLearnedEvent extends Timed {
  readonly type: 'outcomeLearned';
  readonly txId: TxId;
  readonly outcome: Outcome;
}
/** The coordinator had no decision yet (`pending`, reachable) or gave no answer at all (unreachable). */
export interface InquiryFailedEvent extends Timed {
  readonly type: 'inquiryFailed';
  readonly txId: TxId;
  readonly reason: string;
  readonly coordinatorReachable: boolean;
}
/** A peer's answer to a cooperative-termination inquiry. A heuristic answer is no evidence of the decision. */
export interface PeerAnsweredEvent extends Timed {
  readonly type: 'peerAnswered';
  readonly txId: TxId;
  readonly peerUrl: string;
  readonly answer: 'committed' | 'aborted' | 'prepared' | 'unreachable';
  readonly heuristic?: boolean;
}
/** A peer asks what became of txId; we answer and, if we never voted, promise never to vote yes. */
export interface PeerInquiryEvent extends Request {
  readonly type: 'peerInquiry';
  readonly txId: TxId;
}
export interface HeuristicEvent extends Request {
  readonly type: 'heuristic';
  readonly txId: TxId;
  readonly outcome: Outcome;
}
export interface GetTxEvent extends Request {
  readonly type: 'getTx';
  readonly txId: TxId;
}
export interface ListTxEvent extends Request {
  readonly type: 'listTx';
  readonly state: 'prepared';
}
/** Replays a checkpoint and the records after it; the first event of every run. */
export interface RecoverEvent extends Timed {
  readonly type: 'recover';
  readonly snapshot?: ParticipantSnapshot;
  readonly records: readonly ParticipantRecord[];
  /** What a resource that keeps prepared work of its own holds now; absent for one that keeps none. */
  readonly resource?: ResourceRecovery;
}

/**
 * The resource's side of recovery (XA recover), gathered by the runtime before the
 * core runs, so recovery can reconcile it with the WAL (./reconcile.ts).
 */
export interface ResourceRecovery {
  /** The branches the resource holds prepared now (its `recoverPrepared()`). */
  readonly prepared: readonly TxId[];
  /**
   * `outcomeOf()` of the WAL's in-doubt and committed branches the resource does not hold
   * (`reconcileQuestions` names them). A branch not listed was not asked.
   */
  readonly outcomes: readonly (readonly [TxId, ResourceOutcome])[];
}

export type ParticipantEvent =
  | PrepareEvent
  | DecisionEvent
  | ResourcePreparedEvent
  | TimerFired
  | OutcomeLearnedEvent
  | InquiryFailedEvent
  | PeerAnsweredEvent
  | PeerInquiryEvent
  | HeuristicEvent
  | GetTxEvent
  | ListTxEvent
  | RecoverEvent;

// ---- Effects -----------------------------------------------------------------------

/**
 * Resource calls of live transactions carry the keys the core locked for them
 * (none when the resource locks for itself). The driver may run such a call
 * beside other transactions' calls, after any earlier call of the same
 * transaction or on one of the same keys (./lanes.ts). Without `keys` (recovery's
 * replays) a call runs in strict queue order.
 */
interface ResourceCall {
  readonly txId: TxId;
  readonly keys?: readonly string[];
}
/** Validate `ops` under the locks already held and compute the commit data; answer with `resourcePrepared`. */
export interface ResourcePrepareEffect extends ResourceCall {
  readonly kind: 'resourcePrepare';
  readonly ops: readonly unknown[];
}
/** Apply a committed transaction. Must be idempotent: recovery replays it. */
export interface ResourceCommitEffect extends ResourceCall {
  readonly kind: 'resourceCommit';
  readonly data: unknown;
}
/** Forget a prepared transaction. Must be idempotent. */
export interface ResourceAbortEffect extends ResourceCall {
  readonly kind: 'resourceAbort';
  readonly data: unknown;
}
/** A reply about one transaction: it leaves only after that transaction's resource call in flight (its apply). */
export interface TxReplyEffect extends ReplyEffect {
  readonly txId: TxId;
}
/** Load the resource's state from a checkpoint, before any record is replayed. */
export interface ResourceRestoreEffect {
  readonly kind: 'resourceRestore';
  readonly snapshot: unknown;
}
/** GET {coordinator}/v1/transactions/:txId/outcome; answer with `outcomeLearned` or `inquiryFailed`. */
export interface InquireEffect {
  readonly kind: 'inquire';
  readonly txId: TxId;
  readonly coordinator: string;
}
/** POST {peerUrl}/v1/2pc/transactions/:txId/inquiry; answer with `peerAnswered`. */
export interface AskPeerEffect {
  readonly kind: 'askPeer';
  readonly txId: TxId;
  readonly peerUrl: string;
}

export type ParticipantEffect =
  | CommonEffect<ParticipantRecord>
  | TxReplyEffect
  | ResourcePrepareEffect
  | ResourceCommitEffect
  | ResourceAbortEffect
  | ResourceRestoreEffect
  | InquireEffect
  | AskPeerEffect;

// ---- State -------------------------------------------------------------------------

/** A prepare that has not voted yet: queued behind locks, or with the resource. */
export interface PendingTx {
  readonly phase: 'waiting' | 'preparing';
  readonly txId: TxId;
  readonly coordinator: string;
  readonly participants: readonly string[];
  readonly ops: readonly unknown[];
  readonly keys: readonly string[];
  readonly onePhase: boolean;
  readonly abortForced?: boolean;
  readonly opsDigest?: string;
  /** Requests awaiting the vote (the original and its retries). */
  readonly requestIds: readonly RequestId[];
  readonly arrivedAt: number;
  /** Aborted while the resource was still preparing: its locks go when the resource answers. */
  readonly cancelled: boolean;
}

export type PeerState = 'asked' | 'prepared' | 'unreachable';

/**
 * Voted yes, outcome unknown: holds its locks until it learns the decision.
 *
 * It is its PREPARED record (less `type`; `at` is `preparedAt`) plus what it
 * learns while in doubt. The record's fields come by type, not by a list
 * written out again, and ./recovery.ts moves them whole (see there why).
 */
export interface PreparedTx extends Omit<PreparedSnapshot, 'at'>, InDoubtProgress {
  readonly phase: 'prepared';
  readonly preparedAt: number;
}

/** What an in-doubt transaction learns beyond its PREPARED record: never logged, started afresh on recovery. */
export interface InDoubtProgress {
  /** Outcome inquiries sent to the coordinator so far. */
  readonly inquiries: number;
  readonly inquiryInFlight: boolean;
  /** Cooperative termination: what each peer said in the latest round. */
  readonly peers: Readonly<Record<string, PeerState>>;
  /** When the peers that said "prepared" were last asked (the round's `now`); see `preparedPeerReaskMs`. */
  readonly preparedPeersAskedAt?: number;
  /** Set when every peer is prepared too: only the coordinator can decide now. */
  readonly blocked?: string;
}

export type LiveTx = PendingTx | PreparedTx;

export interface ParticipantState {
  readonly config: ResolvedConfig;
  /** Transactions not yet settled. */
  readonly txs: ReadonlyMap<TxId, LiveTx>;
  /** Exclusive locks: key → holder. Strict 2PL: taken at prepare, released at commit/abort. */
  readonly locks: ReadonlyMap<string, TxId>;
  /** Prepares waiting for locks, in arrival order (FIFO per key follows from it). */
  readonly waiting: readonly TxId[];
  /** Settled transactions, bounded. */
  readonly outcomes: RecentOutcomes;
  /**
   * How many of `txs` are prepared (in doubt), for the gauge the runtime sets after every step,
   * kept beside the very `txs` it counts: a state whose `txs` was replaced by hand (a test) is
   * counted afresh rather than misread (./state.ts `inDoubtCount`). Absent in such states too.
   */
  readonly inDoubt?: { readonly txs: ReadonlyMap<TxId, LiveTx>; readonly count: number };
  /**
   * In-doubt transactions whose branch the resource no longer held at recovery, with what the
   * resource said of it (./reconcile.ts); a decision that disagrees is reported as heuristic.
   * Absent when there are none.
   */
  readonly branchesGone?: ReadonlyMap<TxId, ResourceOutcome>;
}

export type { RequestId, TxId, Outcome, Vote };
