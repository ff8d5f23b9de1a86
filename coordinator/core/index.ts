/**
 * The coordinator's protocol core: `step(state, event) -> { state, effects }`,
 * pure and deterministic. Read step.ts for phase 1 and the client API,
 * decision.ts for the decision and phase 2, recovery.ts for restarts.
 *
 * States are persistent: their tables are persistent maps (shared/persistent-map.ts),
 * so a step never changes a state anyone holds (the simulator and the tests step
 * from old states again) and costs what it touches, not how many transactions are
 * active or remembered. Why not mutate in place: see draft.ts and
 * docs/performance.md, "Core step cost".
 */
export { step } from './step.ts';
export { initialState, resolveConfig, txView, outcomeReport, CONFIG_DEFAULTS } from './state.ts';
export type { TxView, BranchView } from './state.ts';
export { snapshotOf } from './recovery.ts';
export { timerId } from './decision.ts';
export { TX_PHASES } from './types.ts';
export type {
  BranchInput,
  BranchState,
  ClientEvent,
  CoordinatorConfig,
  CoordinatorEffect,
  CoordinatorEvent,
  CoordinatorMessage,
  CoordinatorRecord,
  CoordinatorSnapshot,
  CoordinatorState,
  ParticipantRef,
  RecoverEvent,
  ResolvedConfig,
  SendEffect,
  SendFailure,
  TransportEvent,
  Tx,
  TxPhase,
} from './types.ts';
