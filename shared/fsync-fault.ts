/**
 * fsync failure injection, for chaos mode only: with --chaos and
 * TWOPC_FAIL_FSYNC_AFTER=n in its environment, a service's WAL lets n file
 * syncs succeed and fails every later one with EIO (wal/fs.ts failSyncsAfter).
 * The service must stop at once, acknowledge nothing after the failure, and
 * recover from its WAL on restart. Without --chaos the variable is ignored.
 */
import { failSyncsAfter, nodeFs, type WalFs } from '../wal/fs.ts';

export const FAIL_FSYNC_ENV = 'TWOPC_FAIL_FSYNC_AFTER';

/** The WalFs to open the log with, or undefined for the default. Throws on a malformed value. */
export function chaosWalFs(chaos: boolean, env: Readonly<Record<string, string | undefined>> = process.env): WalFs | undefined {
  const raw = env[FAIL_FSYNC_ENV];
  if (!chaos || raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`Expected ${FAIL_FSYNC_ENV} to be a non-negative integer, got "${raw}".`);
  return failSyncsAfter(nodeFs, n);
}
