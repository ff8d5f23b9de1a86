/**
 * fsync failure, modelled as Linux reports it: the failing sync drops the unsynced pages
 * (they never reach the disk) and a later fsync reports success. The log must fail-stop at
 * the first failure: no append resolves as durable after it, everything pending and later
 * rejects with WAL_POISONED, and no fsync is retried. Tried at every k-th sync of a workload.
 */
import { describe, expect, it } from 'vitest';
import { isWalError } from '../../wal/errors.ts';
import { openFileLog } from '../../wal/file-log.ts';
import type { SyncPolicy } from '../../wal/options.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { seededRandom } from './helpers/random.ts';

const DIR = '/data/wal';
const SEGMENT_BYTES = 4096;
const WRITERS = 6;
const APPENDS_PER_WRITER = 14;

interface Outcome {
  readonly syncs: number;
  readonly failed: boolean;
  readonly resolvedAfterFailure: number;
  readonly retriedSyncs: number;
  readonly rejectedCodes: string[];
  readonly lostDurable: number;
  readonly laterSyncRejected: boolean;
}

/** Runs the workload, failing the `failAt`-th sync after open (never when 0). */
async function run(syncPolicy: SyncPolicy, failAt: number): Promise<Outcome> {
  const random = seededRandom(5000 + failAt);
  // Each call completes in its own macrotask, as real I/O does, so "after the failure" is exact.
  const fs = new SimFs(random, { settle: 'immediate' });
  const { log } = await openFileLog(DIR, { fs, segmentBytes: SEGMENT_BYTES, syncPolicy, random });
  let syncs = 0;
  let failedPath: string | undefined;
  let delivered = false;
  fs.onFaultDelivered = () => {
    delivered = true;
  };
  let retriedSyncs = 0;
  fs.faults.sync = (event) => {
    if (failedPath !== undefined && event.path === failedPath) retriedSyncs++;
    if (++syncs !== failAt) return undefined;
    failedPath = event.path;
    return Object.assign(new Error(`EIO: injected failure of ${event.kind} ${event.path}`), { code: 'EIO' });
  };
  const acked: number[] = [];
  const rejectedCodes: string[] = [];
  let resolvedAfterFailure = 0;
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; i < APPENDS_PER_WRITER; i++) {
      try {
        const lsn = await log.append(1, new TextEncoder().encode(JSON.stringify({ w, i, pad: 'z'.repeat((w * 7 + i * 13) % 60) })), { durable: true });
        // The failed sync has completed (the log has seen the error): any resolution now is a lie.
        if (delivered) resolvedAfterFailure++;
        acked.push(lsn);
      } catch (error) {
        rejectedCodes.push(isWalError(error) ? error.code : String(error));
        return;
      }
      if (w === 0 && i === 6) {
        await log.checkpoint(Math.max(1, log.lastLsn - 2), new TextEncoder().encode('state')).catch((error: unknown) => {
          rejectedCodes.push(isWalError(error) ? error.code : String(error));
        });
      }
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  // A failure in background work (preparing a segment) may still be on its way; once the log
  // has seen it, everything must be refused.
  for (let tick = 0; failedPath !== undefined && !delivered && tick < 100; tick++) await new Promise((resolve) => setImmediate(resolve));
  const laterSyncRejected = await log.sync().then(
    () => false,
    (error: unknown) => isWalError(error, 'WAL_POISONED'),
  );
  await log.close();

  // Power loss after the failure: acknowledged appends must all be there.
  let lostDurable = 0;
  for (const data of ['lose', 'keep'] as const) {
    const disk = fs.clone(seededRandom(failAt));
    disk.crash({ data, dir: data });
    const { log: reopened, recovered } = await openFileLog(DIR, { fs: disk, segmentBytes: SEGMENT_BYTES });
    const base = recovered.checkpoint?.lsn ?? 0;
    const present = new Set(recovered.entries.map((entry) => entry.lsn));
    for (const lsn of acked) if (lsn > base && !present.has(lsn)) lostDurable++;
    await reopened.close();
  }
  return { syncs, failed: failedPath !== undefined, resolvedAfterFailure, retriedSyncs, rejectedCodes, lostDurable, laterSyncRejected };
}

describe('fsync failure (fail-stop, no retry)', () => {
  for (const syncPolicy of ['group', 'always'] as const) {
    it(`fails stop at every k-th sync (${syncPolicy})`, async () => {
      const baseline = await run(syncPolicy, 0);
      expect(baseline.failed).toBe(false);
      expect(baseline.rejectedCodes).toEqual([]);
      const total = baseline.syncs;
      expect(total).toBeGreaterThan(10);
      let resolvedAfterFailure = 0;
      let retried = 0;
      let lost = 0;
      let rejected = 0;
      for (let k = 1; k <= total; k++) {
        const outcome = await run(syncPolicy, k);
        expect(outcome.failed, `sync ${k} of ${total} was never reached`).toBe(true);
        resolvedAfterFailure += outcome.resolvedAfterFailure;
        retried += outcome.retriedSyncs;
        lost += outcome.lostDurable;
        expect(outcome.laterSyncRejected).toBe(true);
        for (const code of outcome.rejectedCodes) expect(code).toBe('WAL_POISONED');
        rejected += outcome.rejectedCodes.length;
      }
      console.log(
        `fsync failure (${syncPolicy}): failed each of ${total} syncs in turn; appends resolved after the failure: ${resolvedAfterFailure}; appends and checkpoints rejected with WAL_POISONED: ${rejected}; fsyncs retried: ${retried}; durable appends lost after power loss: ${lost}`,
      );
      // The failures must have hit appends in flight, or the test proves nothing.
      expect(rejected).toBeGreaterThan(total);
      expect(resolvedAfterFailure).toBe(0);
      expect(retried).toBe(0);
      expect(lost).toBe(0);
    });
  }
});

describe('write failure', () => {
  for (const [label, payloadBytes] of [
    ['small batches (blocking pwrite)', 100],
    ['large batches (async pwritev)', 8000],
  ] as const) {
    it(`poisons the log on a failed write: ${label}`, async () => {
      const fs = new SimFs(seededRandom(77));
      const { log } = await openFileLog(DIR, { fs, segmentBytes: 1024 * 1024, random: seededRandom(78) });
      await log.append(1, new Uint8Array(payloadBytes), { durable: true });
      fs.faults.write = () => Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
      const appends = Array.from({ length: 20 }, () => log.append(1, new Uint8Array(payloadBytes).fill(1), { durable: true }));
      const outcomes = await Promise.allSettled(appends);
      expect(outcomes.every((outcome) => outcome.status === 'rejected' && isWalError(outcome.reason, 'WAL_POISONED'))).toBe(true);
      const first = outcomes[0];
      expect(first?.status === 'rejected' && String((first.reason as Error).message)).toMatch(/ENOSPC/);
      await expect(log.append(1, new Uint8Array(1))).rejects.toMatchObject({ code: 'WAL_POISONED' });
      await log.close();
    });
  }
});
