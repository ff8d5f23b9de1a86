/**
 * The participant side of two-phase commit, as a pure core.
 *
 *   prepare ──locks free──▶ resourcePrepare ──yes──▶ PREPARED (forced) ─▶ vote yes ─▶ in doubt
 *      │                                    ├─no──▶ ABORTED (lazy) ─▶ vote no
 *      └─locked─▶ wait ≤ lockWaitMs (FIFO)  └─read-only──▶ vote read-only, nothing logged
 *
 *   in doubt ──commit──▶ COMMITTED (forced) ─▶ resourceCommit ─▶ release locks ─▶ ack
 *            ──abort───▶ ABORTED (lazy)     ─▶ resourceAbort  ─▶ release locks ─▶ ack
 *            ──no word──▶ ask the coordinator (capped backoff); if it is silent, ask the
 *                         peers; if every peer is prepared too, stay blocked and say so
 *            ──operator─▶ HEURISTIC (forced), reported as heuristic from then on
 *
 * A participant that voted yes never decides alone. Every message is
 * idempotent: duplicates get the answer the first one got, contrary decisions
 * get a 409 and change nothing, and an abort (or a peer's inquiry) that comes
 * before its prepare leaves a tombstone so the late prepare votes no.
 *
 * The core holds the protocol state and the lock table (strict two-phase
 * locking: exclusive locks on `keysOf(ops)`, taken at prepare, released at
 * commit/abort; none when the resource takes its own). The data under 2PC
 * lives in a Resource the runtime drives through the `resource*` effects; one
 * that keeps prepared work of its own is reconciled with the WAL at recovery
 * (./reconcile.ts).
 *
 * States are persistent: the transaction table, the lock table and the outcome
 * memory are persistent maps (shared/persistent-map.ts), so a step never changes a
 * state anyone holds and costs what it touches, not how many transactions are live
 * or remembered (./state.ts, docs/performance.md "Core step cost").
 */
export { initialState, resolveConfig } from './state.ts';
export { step } from './step.ts';
export { reconcileQuestions } from './reconcile.ts';
export { effectLanes } from './lanes.ts';
export { prepareEvent } from './events.ts';
export { checkpointOf, getTx, inDoubtCount, listTx, lockHolder, type InDoubtView, type TxView } from './queries.ts';
export { outcomeCount } from './outcomes.ts';
export { CONFIG_DEFAULTS } from './types.ts';
export type {
  AbortedRecord,
  AskPeerEffect,
  CommittedRecord,
  HeuristicRecord,
  InquireEffect,
  LiveTx,
  OutcomeEntry,
  ParticipantConfig,
  ParticipantEffect,
  ParticipantEvent,
  ParticipantRecord,
  ParticipantSnapshot,
  ParticipantState,
  PendingTx,
  PreparedRecord,
  PreparedTx,
  ResolvedConfig,
  ResourceAbortEffect,
  ResourceCommitEffect,
  ResourcePrepareEffect,
  ResourceRecovery,
  ResourceRestoreEffect,
  TxReplyEffect,
} from './types.ts';
