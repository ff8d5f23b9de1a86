/**
 * What the coordinator and the participants say to each other and to clients.
 * These are the wire types of ../shared/design.md section 4; the validators in
 * shared/schemas.ts check every inbound body against them.
 */

/** A transaction id, unique across coordinator restarts: `tx-<epoch>-<seq>`. */
export type TxId = string & { readonly __brand: 'TxId' };
export const asTxId = (s: string): TxId => s as TxId;

/** A base URL without its trailing slashes, so URLs compare equal and paths append cleanly. */
export const trimUrl = (url: string): string => url.replace(/\/+$/, '');

/** Operations on the built-in key-value resource. Custom resources may define their own. */
export type Op =
  | { readonly op: 'put'; readonly key: string; readonly value: unknown }
  | { readonly op: 'delete'; readonly key: string }
  | { readonly op: 'add'; readonly key: string; readonly amount: number; readonly min?: number }
  | { readonly op: 'read'; readonly key: string };

export type Vote = 'yes' | 'no' | 'read-only';
export type Outcome = 'committed' | 'aborted';

/** Presumed abort is the default; the others exist so their costs can be compared. */
export type ProtocolVariant = 'presumed-abort' | 'presumed-nothing' | 'presumed-commit';

/** Participant-side transaction state as reported by GET /v1/2pc/transactions/:txId. */
export type ParticipantTxState = 'prepared' | 'committed' | 'aborted' | 'unknown';

// ---- Coordinator -> participant ------------------------------------------------

export interface PrepareRequest {
  readonly txId: TxId;
  /** The coordinator's base URL, for outcome inquiries. */
  readonly coordinator: string;
  /** Every branch's URL, so an in-doubt participant can ask its peers. */
  readonly participants: readonly string[];
  readonly ops?: readonly Op[];
  /**
   * Extension: single-branch transactions use one-phase commit. The participant
   * prepares and commits in one step and answers `{vote:"yes", state:"committed"}`.
   */
  readonly onePhase?: boolean;
  /**
   * Extension: the coordinator's presumption, sent when it is not presumed abort.
   * Under presumed commit a participant must force its ABORTED record before it
   * acks an abort: the coordinator forgets aborts after the acks, and a
   * participant that lost an unforced ABORTED would be told "committed".
   */
  readonly protocol?: ProtocolVariant;
}
export interface PrepareResponse {
  readonly vote: Vote;
  readonly reason?: string;
  /** Only for one-phase prepares: the participant's outcome. */
  readonly state?: ParticipantTxState;
}
export interface DecisionRequest {
  readonly txId: TxId;
}
export interface DecisionResponse {
  readonly txId: TxId;
  readonly state: ParticipantTxState;
  /** Set when an operator settled the transaction by hand before the decision arrived. */
  readonly heuristic?: Outcome;
}

// ---- Client -> coordinator -------------------------------------------------------

export interface Branch {
  /** A participant's name (p1) or URL, as listed in the coordinator's --participants. */
  readonly participant: string;
  readonly ops: readonly Op[];
}
export interface CreateTransactionRequest {
  readonly timeoutMs?: number;
  readonly branches?: readonly Branch[];
}
export interface BranchReport {
  readonly participant: string;
  readonly vote?: Vote;
  readonly acked?: boolean;
}
export interface OutcomeReport {
  readonly txId: TxId;
  readonly outcome: Outcome | 'heuristic-mixed';
  readonly applied?: boolean;
  readonly reason?: string;
  readonly branches: readonly BranchReport[];
}

/** The body of every error response. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}
