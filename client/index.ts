/**
 * `twopc/client`: the typed coordinator client (coordinator-client.ts) and the
 * errors its calls reject with (errors.ts).
 */
export {
  createCoordinatorClient,
  CALL_TIMEOUT_MS_DEFAULT,
  CALL_TIMEOUT_MS_MAX,
  RETRIES_DEFAULT,
  RETRIES_MAX,
  SOCKETS_MAX_DEFAULT,
} from './coordinator-client.ts';
export type {
  Aborted,
  BeginOptions,
  Begun,
  Branch,
  BranchView,
  CallControl,
  CoordinatorClient,
  CoordinatorClientOptions,
  InquiryOutcome,
  OpenTransaction,
  OutcomeReport,
  TxId,
  TxList,
  TxPhase,
  TxView,
} from './coordinator-client.ts';
export { CoordinatorError, TransportError } from './errors.ts';
export type { CoordinatorErrorCode, TransportErrorCode } from './errors.ts';
export type { Op, Outcome, Vote } from '../shared/types.ts';
