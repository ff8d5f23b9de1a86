/**
 * Configuration defaults, the initial state, and the small pure helpers the
 * protocol and the views share.
 */
import { PersistentMap } from '../../shared/persistent-map.ts';
import { serviceIdentity } from '../../shared/urls.ts';
import { trimUrl, type Outcome, type OutcomeReport, type TxId } from '../../shared/types.ts';
import type { BranchState, CoordinatorConfig, CoordinatorState, ParticipantRef, ResolvedConfig, Tx, TxPhase } from './types.ts';

export const CONFIG_DEFAULTS = {
  protocol: 'presumed-abort',
  prepareTimeoutMs: 5_000,
  // An interactive transaction's timeout when the client names none; never more than txTimeoutMsMax.
  defaultTxTimeoutMs: 30_000,
  replyWaitMs: 2_000,
  resendBaseMs: 100,
  resendMaxMs: 5_000,
  maxActiveTransactions: 1_000,
  maxBranchesPerTx: 32,
  maxOpsPerBranch: 256,
  finishedHistoryMax: 1_000,
  waitersPerTxMax: 16,
  // The longest a client may make a transaction live before it commits or aborts (interactive) or
  // wait for votes (run whole). It bounds how long one caller holds one of the maxActiveTransactions
  // slots, and how long yes voters hold their locks waiting for a slow vote; see docs/limits.md.
  txTimeoutMsMax: 30_000,
  listMax: 500,
} as const satisfies Omit<ResolvedConfig, 'name' | 'selfUrl' | 'participants'>;

export function resolveConfig(config: CoordinatorConfig): ResolvedConfig {
  const participants: Record<string, string> = {};
  for (const [name, url] of Object.entries(config.participants)) participants[name] = trimUrl(url);
  const defined = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
  const resolved = { ...CONFIG_DEFAULTS, ...defined, selfUrl: trimUrl(config.selfUrl), participants } as ResolvedConfig;
  // A lowered maximum lowers the defaults with it: an idle interactive transaction, and a vote
  // nobody gave a timeout for, are bounded by the maximum too.
  const max = resolved.txTimeoutMsMax;
  return { ...resolved, defaultTxTimeoutMs: Math.min(resolved.defaultTxTimeoutMs, max), prepareTimeoutMs: Math.min(resolved.prepareTimeoutMs, max) };
}

/** Recovering, and empty: the `recover` event fills it from the WAL. */
export function initialState(config: CoordinatorConfig): CoordinatorState {
  return { config: resolveConfig(config), recovering: true, epoch: 0, nextSeq: 1, txs: PersistentMap.empty(), finished: PersistentMap.empty() };
}

/** A branch names a participant by its configured name or URL; anything else is refused. */
export function resolveParticipant(config: ResolvedConfig, participant: string): ParticipantRef | undefined {
  const byName = Object.hasOwn(config.participants, participant) ? config.participants[participant] : undefined;
  if (byName !== undefined) return { name: participant, url: byName };
  // By URL: any spelling that reaches the configured address (shared/urls.ts) is that participant.
  const identity = serviceIdentity(participant);
  const hit = Object.entries(config.participants).find(([, u]) => serviceIdentity(u) === identity);
  return hit ? { name: hit[0], url: hit[1] } : undefined;
}

export function newTx(txId: TxId, now: number, fields: Partial<Tx> = {}): Tx {
  return {
    txId,
    phase: 'active',
    createdAt: now,
    branches: [],
    onePhase: false,
    inDoubt: false,
    collecting: false,
    logged: false,
    prepareTimeoutMs: 0,
    heuristicMixed: false,
    waiters: [],
    replyReleased: false,
    ...fields,
  };
}

export function newBranch(ref: ParticipantRef, fields: Partial<BranchState> = {}): BranchState {
  return { participant: ref.name, url: ref.url, ops: [], enlistments: [], target: false, acked: false, attempts: 0, ...fields };
}

export function updateBranch(tx: Tx, participant: string, change: Partial<BranchState>): Tx {
  return { ...tx, branches: tx.branches.map((b) => (b.participant === participant ? { ...b, ...change } : b)) };
}

export const refOf = (b: BranchState): ParticipantRef => ({ name: b.participant, url: b.url });

/** Every branch phase 2 must reach has acknowledged. */
export const allAcked = (tx: Tx): boolean => tx.branches.every((b) => !b.target || b.acked);

export const isDecided = (phase: TxPhase): boolean => phase !== 'active' && phase !== 'preparing';

export const finalPhase = (outcome: Outcome): TxPhase => (outcome === 'committed' ? 'committed' : 'aborted');

export const deciding = (outcome: Outcome): TxPhase => (outcome === 'committed' ? 'committing' : 'aborting');

// ---- What clients see ------------------------------------------------------------------

export interface BranchView {
  readonly participant: string;
  readonly vote?: BranchState['vote'];
  /** The participant acknowledged the outcome, or needs no acknowledgement (read-only, voted no). */
  readonly acked: boolean;
}

export interface TxView {
  readonly txId: TxId;
  readonly state: TxPhase;
  readonly outcome?: OutcomeReport['outcome'];
  readonly reason?: string;
  readonly onePhase?: true;
  readonly inDoubt?: true;
  readonly createdAt: number;
  readonly branches: readonly BranchView[];
}

const reported = (tx: Tx): OutcomeReport['outcome'] | undefined =>
  tx.outcome === undefined ? undefined : tx.heuristicMixed ? 'heuristic-mixed' : tx.outcome;

function branchViews(tx: Tx): BranchView[] {
  const decided = isDecided(tx.phase);
  return tx.branches.map((b) => ({
    participant: b.participant,
    ...(b.vote === undefined ? {} : { vote: b.vote }),
    acked: b.acked || (decided && !b.target),
  }));
}

export function txView(tx: Tx): TxView {
  const outcome = reported(tx);
  return {
    txId: tx.txId,
    state: tx.phase,
    ...(outcome === undefined ? {} : { outcome }),
    ...(tx.reason === undefined ? {} : { reason: tx.reason }),
    ...(tx.onePhase ? { onePhase: true as const } : {}),
    ...(tx.inDoubt ? { inDoubt: true as const } : {}),
    createdAt: tx.createdAt,
    branches: branchViews(tx),
  };
}

/** The answer to commit and runWhole. Only for decided transactions. */
export function outcomeReport(tx: Tx): OutcomeReport {
  return {
    txId: tx.txId,
    outcome: reported(tx) ?? 'aborted',
    applied: allAcked(tx),
    ...(tx.reason === undefined ? {} : { reason: tx.reason }),
    branches: branchViews(tx),
  };
}
