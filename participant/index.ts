/**
 * `twopc/participant`: put a service's own state under two-phase commit.
 * `createParticipant` (library.ts) gives an express router for /v1/2pc/* and
 * the WAL and recovery behind it; a `Resource` (resources/resource.ts) is the
 * state it changes. The built-in key-value store and the PostgreSQL resource
 * are resources too. `listen` starts an HTTP server with the services'
 * connection bounds (see ../docs/limits.md).
 */
export { createParticipant } from './library.ts';
export type { CreateParticipantOptions, Participant } from './library.ts';
export type { PrepareResult, Resource, ResourceOutcome } from './resources/resource.ts';
export { KvStore } from './resources/kv.ts';
export type { KvCommitData, KvSnapshot, KvWrite } from './resources/kv.ts';
export { createPostgresResource, defineOp, PostgresResource, PostgresStartError, VoteNo } from './resources/postgres.ts';
export type { BranchSql, DomainOp, PostgresOp, PostgresResourceOptions, SqlOp } from './resources/postgres.ts';
export type { InDoubtView } from './core/index.ts';
export { listen } from '../shared/http/app.ts';
export type { Listening, ListenOptions } from '../shared/http/app.ts';
export { createLogger, silentLogger } from '../shared/logger.ts';
export type { Logger, LoggerOptions } from '../shared/logger.ts';
export { TwopcError } from '../shared/errors.ts';
export type { ErrorCode } from '../shared/errors.ts';
/** The validators a Resource's `opsSchema` is built from, as the routes use them. */
export * as schemas from '../shared/schemas.ts';
export type { Schema } from '../shared/schemas.ts';
export type { Op, TxId, Vote } from '../shared/types.ts';
