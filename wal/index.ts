/**
 * wal/ — a write-ahead log library that knows nothing of 2PC.
 *
 * - `openFileLog(dir, options)`: the file WAL (segments, CRC frames, group commit, torn-tail
 *   repair, checkpoints, fail-stop). Format: docs/wal-format.md.
 * - `MemoryLog` on a `MemoryLogStore`: the same `Log` port in memory, with crash semantics,
 *   for the deterministic simulator.
 * - `verifyWal` / `inspectWal`: read-only reports (the CLI is in wal/cli.ts).
 * - `WalFs`, `nodeFs`, `SimFs`: the file-system port and its real and simulated implementations.
 */
export type { AppendOptions, Checkpoint, Log, LogEntry, Lsn, Recovered } from './log.ts';
export { FileLog, openFileLog } from './file-log.ts';
export type { FileLogStats, OpenedFileLog } from './file-log.ts';
export type { FileLogOptions, SyncPolicy } from './options.ts';
export { SYNC_POLICIES } from './options.ts';
export { MemoryLog, MemoryLogStore } from './memory-log.ts';
export type { MemoryLogOptions } from './memory-log.ts';
export { WalError, isWalError } from './errors.ts';
export type { WalErrorCode } from './errors.ts';
export { inspectWal, verifyWal } from './inspect.ts';
export type { InspectOptions, InspectReport, InspectedRecord, ReadOptions, VerifyReport, WalStatus } from './inspect.ts';
export { nodeFs } from './fs.ts';
export type { OpenMode, WalFile, WalFs } from './fs.ts';
export { SimFs } from './sim-fs.ts';
export type { CrashOptions, DataCrashMode, DirCrashMode, SimFsFaults, SimSyncEvent, SimWriteEvent } from './sim-fs.ts';
