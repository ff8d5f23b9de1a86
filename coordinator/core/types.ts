/**
 * The coordinator's vocabulary: configuration, persisted records, the state the
 * core keeps in memory, the events it reacts to and the effects it returns.
 * Nothing here does I/O; the runtime (coordinator/runtime/) turns effects into
 * WAL appends, HTTP calls, replies and timers.
 */
import type { CommonEffect, RequestId, Timed, TimerFired } from '../../shared/core.ts';
import type {
  DecisionRequest,
  Op,
  Outcome,
  ParticipantTxState,
  PrepareRequest,
  ProtocolVariant,
  TxId,
  Vote,
} from '../../shared/types.ts';

// ---- Configuration ------------------------------------------------------------------

export interface CoordinatorConfig {
  readonly name: string;
  /** This coordinator's base URL, sent in every prepare so participants can inquire. */
  readonly selfUrl: string;
  /** The only participants this coordinator talks to: name -> base URL. */
  readonly participants: Readonly<Record<string, string>>;
  readonly protocol?: ProtocolVariant;
  /** How long phase 1 waits for every vote before it aborts. */
  readonly prepareTimeoutMs?: number;
  /** How long an interactive transaction without a `timeoutMs` may stay active before it is aborted (capped at txTimeoutMsMax). */
  readonly defaultTxTimeoutMs?: number;
  /** How long a commit/runWhole reply waits for phase-2 acks after the decision is durable. */
  readonly replyWaitMs?: number;
  readonly resendBaseMs?: number;
  readonly resendMaxMs?: number;
  /** Unfinished transactions (active, voting, or waiting for acks) before new ones get a 503 (`--active-tx-max`). */
  readonly maxActiveTransactions?: number;
  readonly maxBranchesPerTx?: number;
  readonly maxOpsPerBranch?: number;
  /** Finished transactions remembered for GET and duplicate requests; the oldest are forgotten first. */
  readonly finishedHistoryMax?: number;
  /** Client requests that may wait on one transaction's outcome at once. */
  readonly waitersPerTxMax?: number;
  /** Largest client-chosen `timeoutMs` (`--tx-timeout-max-ms`); a larger one is a 400. */
  readonly txTimeoutMsMax?: number;
  /** Most transactions one list request returns. */
  readonly listMax?: number;
}

export type ResolvedConfig = Required<CoordinatorConfig>;

// ---- Records (the coordinator's WAL) --------------------------------------------------

/** Where a decision must be delivered. The URL is kept so a restart can resend even if the config changed. */
export interface ParticipantRef {
  readonly name: string;
  readonly url: string;
}

export type CoordinatorRecord =
  /** Written (synced) once per start; tx ids embed the epoch, so they never repeat across restarts. */
  | { readonly type: 'BOOT'; readonly epoch: number }
  /** Presumed-nothing and presumed-commit: forced before any prepare goes out. */
  | { readonly type: 'COLLECTING'; readonly txId: TxId; readonly participants: readonly ParticipantRef[] }
  /** `participants` are those phase 2 must reach (yes voters, or everyone who may be prepared). */
  | { readonly type: 'DECISION'; readonly txId: TxId; readonly outcome: Outcome; readonly participants: readonly ParticipantRef[] }
  /** Lazy: every participant acknowledged; the transaction can be forgotten. */
  | { readonly type: 'END'; readonly txId: TxId };

/** A checkpoint: everything recovery needs besides the records after it. */
export interface CoordinatorSnapshot {
  readonly version: 1;
  readonly epoch: number;
  /** Decided transactions whose END is not yet written. */
  readonly decided: readonly { readonly txId: TxId; readonly outcome: Outcome; readonly participants: readonly ParticipantRef[] }[];
  /** Presumed-nothing/commit: transactions with a COLLECTING record and no decision yet. */
  readonly collecting: readonly { readonly txId: TxId; readonly participants: readonly ParticipantRef[] }[];
}

// ---- State ----------------------------------------------------------------------------

/**
 * active: interactive, enlisting branches. preparing: phase 1. committing/aborting:
 * decided, phase 2 in progress. committed/aborted: finished (every needed ack is in).
 */
export type TxPhase = 'active' | 'preparing' | 'committing' | 'aborting' | 'committed' | 'aborted';
export const TX_PHASES: readonly TxPhase[] = ['active', 'preparing', 'committing', 'aborting', 'committed', 'aborted'];

export interface BranchState {
  readonly participant: string;
  readonly url: string;
  readonly ops: readonly Op[];
  /** Each accepted enlist call's ops as JSON, so a retried enlist is recognised and applied once. */
  readonly enlistments: readonly string[];
  readonly vote?: Vote;
  /** Phase 2 must reach this branch (it voted yes, or its vote is unknown and the decision is abort). */
  readonly target: boolean;
  readonly acked: boolean;
  /** Failed deliveries in a row (phase 2, or one-phase re-prepares), for the backoff. */
  readonly attempts: number;
  /** The outcome an operator forced at this participant, as reported in its ack. */
  readonly heuristic?: Outcome;
}

export interface Tx {
  readonly txId: TxId;
  readonly phase: TxPhase;
  readonly createdAt: number;
  readonly branches: readonly BranchState[];
  /** Single branch: the participant prepares and commits in one step and decides itself. */
  readonly onePhase: boolean;
  /** A one-phase prepare got no answer; the coordinator keeps re-sending it until one comes. */
  readonly inDoubt: boolean;
  /** COLLECTING was written (presumed-nothing/commit). */
  readonly collecting: boolean;
  /** A DECISION record was written, so END is owed once every target acked. */
  readonly logged: boolean;
  readonly prepareTimeoutMs: number;
  readonly outcome?: Outcome;
  readonly reason?: string;
  /** A participant reported a heuristic outcome that disagrees with the decision. */
  readonly heuristicMixed: boolean;
  /** Client requests (commit, runWhole) waiting for the outcome report. */
  readonly waiters: readonly RequestId[];
  /** The reply wait has elapsed (or every ack is in): waiters are answered at once. */
  readonly replyReleased: boolean;
}

export interface CoordinatorState {
  readonly config: ResolvedConfig;
  /** True until the `recover` event has rebuilt the state from the WAL. */
  readonly recovering: boolean;
  readonly epoch: number;
  readonly nextSeq: number;
  /** Unfinished transactions, in creation order. */
  readonly txs: ReadonlyMap<string, Tx>;
  /** Recently finished transactions, oldest first, at most `finishedHistoryMax`. */
  readonly finished: ReadonlyMap<string, Tx>;
}

// ---- Events ---------------------------------------------------------------------------

interface Request extends Timed {
  readonly requestId: RequestId;
}

export interface BranchInput {
  /** A participant's name or URL from the config. */
  readonly participant: string;
  readonly ops: readonly Op[];
}

/** Why a call got no usable answer. `rejected` (4xx) and `unreachable` mean the participant did not act on it. */
export type SendFailure = 'timeout' | 'unreachable' | 'reset' | 'rejected' | 'server-error';

export type ClientEvent =
  | (Request & { readonly type: 'begin'; readonly timeoutMs?: number })
  | (Request & { readonly type: 'enlist'; readonly txId: string; readonly participant: string; readonly ops: readonly Op[] })
  | (Request & { readonly type: 'commit'; readonly txId: string })
  | (Request & { readonly type: 'abort'; readonly txId: string })
  | (Request & { readonly type: 'runWhole'; readonly timeoutMs?: number; readonly branches: readonly BranchInput[] })
  | (Request & { readonly type: 'getTx'; readonly txId: string })
  | (Request & { readonly type: 'getOutcome'; readonly txId: string })
  /** The batched inquiry (`POST /v1/outcomes`): one step and one reply, `{outcomes: {txId: outcome}}`. */
  | (Request & { readonly type: 'getOutcomes'; readonly txIds: readonly string[] })
  | (Request & { readonly type: 'list'; readonly state?: TxPhase });

export type TransportEvent =
  | (Timed & {
      readonly type: 'prepareResult';
      readonly txId: TxId;
      readonly participant: string;
      readonly vote: Vote;
      readonly reason?: string;
      /** One-phase answers carry the participant's outcome. */
      readonly state?: ParticipantTxState;
    })
  | (Timed & { readonly type: 'prepareFailed'; readonly txId: TxId; readonly participant: string; readonly error: SendFailure; readonly message?: string })
  | (Timed & { readonly type: 'decisionAcked'; readonly txId: TxId; readonly participant: string; readonly heuristic?: Outcome })
  | (Timed & { readonly type: 'decisionFailed'; readonly txId: TxId; readonly participant: string; readonly error: SendFailure; readonly message?: string });

export type RecoverEvent = Timed & {
  readonly type: 'recover';
  readonly entries: readonly CoordinatorRecord[];
  readonly snapshot?: CoordinatorSnapshot;
};

export type CoordinatorEvent = RecoverEvent | ClientEvent | TransportEvent | TimerFired;

// ---- Effects --------------------------------------------------------------------------

export type CoordinatorMessage =
  | { readonly type: 'prepare'; readonly body: PrepareRequest }
  | { readonly type: 'commit' | 'abort'; readonly body: DecisionRequest };

/** Call a participant; the runtime feeds the answer back as a TransportEvent. */
export interface SendEffect {
  readonly kind: 'send';
  readonly to: string;
  readonly url: string;
  readonly message: CoordinatorMessage;
  /** For prepares: how long the call may take (the transaction's voting bound). */
  readonly timeoutMs?: number;
}

export type CoordinatorEffect = CommonEffect<CoordinatorRecord> | SendEffect;
