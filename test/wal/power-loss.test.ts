/**
 * Simulated power loss through the file-system port. A workload runs on the simulated disk
 * and the disk is copied at every sync boundary (just before each fdatasync, fsync or
 * directory fsync takes effect). Each copy is then crashed in every way the model knows:
 * unsynced writes lost, kept, kept as an ordered prefix torn at a 512- or 4096-byte boundary,
 * or scattered sector by sector; directory changes since the last directory fsync lost, kept
 * or kept in part (so a new file whose directory was never synced disappears). Recovery must
 * give back every append acknowledged as durable before the crash point, and only records
 * that were appended, in order.
 */
import { describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import type { SyncPolicy } from '../../wal/options.ts';
import type { CrashOptions } from '../../wal/sim-fs.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { lastRecord } from './helpers/build.ts';
import { seededRandom } from './helpers/random.ts';

const DIR = '/data/wal';
const SEGMENT_BYTES = 4096;

interface Snapshot {
  readonly fs: SimFs;
  readonly syncSeq: number;
  /** Highest LSN acknowledged as durable when the snapshot was taken (acks are in LSN order). */
  readonly ackedLsn: number;
  /** Highest checkpoint LSN whose checkpoint() had resolved. */
  readonly checkpointLsn: number;
}

interface Workload {
  readonly snapshots: Snapshot[];
  readonly payloads: Map<number, string>;
  readonly checkpoints: Set<number>;
}

async function runWorkload(syncPolicy: SyncPolicy, seed: number): Promise<Workload> {
  const random = seededRandom(seed);
  const fs = new SimFs(random);
  const snapshots: Snapshot[] = [];
  const payloads = new Map<number, string>();
  const checkpoints = new Set<number>();
  let ackedLsn = 0;
  let checkpointLsn = 0;
  fs.onSync = (event) => snapshots.push({ fs: fs.clone(), syncSeq: event.seq, ackedLsn, checkpointLsn });
  const { log } = await openFileLog(DIR, { fs, segmentBytes: SEGMENT_BYTES, syncPolicy, random });
  let n = 0;
  for (let wave = 0; wave < 24; wave++) {
    const size = 1 + Math.floor(random() * 9);
    const appends: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      const body = JSON.stringify({ n: n++, fill: 'y'.repeat(Math.floor(random() * 90)) });
      const durable = random() < 0.6;
      appends.push(
        log.append(1 + (n % 4), new TextEncoder().encode(body), { durable }).then((lsn) => {
          payloads.set(lsn, body);
          if (durable) ackedLsn = Math.max(ackedLsn, lsn);
        }),
      );
    }
    await Promise.all(appends);
    if (wave % 5 === 2) {
      await log.sync();
      ackedLsn = log.lastLsn;
    }
    if (wave === 7 || wave === 16) {
      const lsn = log.lastLsn - 3;
      checkpoints.add(lsn);
      await log.checkpoint(lsn, new TextEncoder().encode(`state@${lsn}`));
      checkpointLsn = lsn;
    }
  }
  await log.close();
  return { snapshots, payloads, checkpoints };
}

const CRASHES: CrashOptions[] = [];
for (const data of ['lose', 'keep', 'prefix', 'scatter'] as const) {
  for (const dir of ['lose', 'keep', 'prefix'] as const) {
    for (const sectorBytes of data === 'prefix' || data === 'scatter' ? ([512, 4096] as const) : ([512] as const)) CRASHES.push({ data, dir, sectorBytes });
  }
}

describe('power loss at every sync boundary', () => {
  for (const syncPolicy of ['group', 'always'] as const) {
    it(`loses no durable append (${syncPolicy})`, async () => {
      const workload = await runWorkload(syncPolicy, syncPolicy === 'group' ? 101 : 202);
      expect(workload.snapshots.length).toBeGreaterThan(25);
      let states = 0;
      let durableLost = 0;
      let wrongRecords = 0;
      let vanishedFiles = 0;
      let tornTails = 0;
      let readBackFailures = 0;
      for (const [index, snapshot] of workload.snapshots.entries()) {
        for (const [c, crash] of CRASHES.entries()) {
          for (let trial = 0; trial < (crash.data === 'scatter' || crash.dir === 'prefix' ? 2 : 1); trial++) {
            const fs = snapshot.fs.clone(seededRandom(index * 1000 + c * 10 + trial));
            const before = new Set(await fs.readdir(DIR));
            fs.crash(crash);
            const afterNames = new Set(await fs.readdir(DIR));
            for (const name of before) if (name.endsWith('.wal') && !afterNames.has(name)) vanishedFiles++;
            states++;
            const { log, recovered } = await openFileLog(DIR, { fs, segmentBytes: SEGMENT_BYTES, syncPolicy });
            if (recovered.tornTail) tornTails++;
            const base = recovered.checkpoint?.lsn ?? 0;
            if (base !== 0 && !workload.checkpoints.has(base)) wrongRecords++;
            if (base < snapshot.checkpointLsn) durableLost++;
            recovered.entries.forEach((entry, i) => {
              const body = new TextDecoder().decode(entry.payload);
              if (entry.lsn !== base + 1 + i || (workload.payloads.has(entry.lsn) && workload.payloads.get(entry.lsn) !== body)) wrongRecords++;
            });
            const lastLsn = base + recovered.entries.length;
            if (lastLsn < snapshot.ackedLsn) durableLost += snapshot.ackedLsn - lastLsn;
            const lsn = await log.append(9, new TextEncoder().encode('after-crash'), { durable: true });
            await log.close();
            // Read back with the scan the next open would run.
            const last = await lastRecord(fs, DIR);
            if (lsn !== lastLsn + 1 || last?.lsn !== lsn || new TextDecoder().decode(last.payload) !== 'after-crash') readBackFailures++;
          }
        }
      }
      console.log(
        `power loss (${syncPolicy}): ${workload.snapshots.length} sync boundaries x ${CRASHES.length} crash kinds = ${states} crash states; durable appends lost: ${durableLost}; wrong records: ${wrongRecords}; torn tails cut: ${tornTails}; segment files vanished with their unsynced directory: ${vanishedFiles}; failed read-backs: ${readBackFailures}`,
      );
      expect(durableLost).toBe(0);
      expect(wrongRecords).toBe(0);
      expect(readBackFailures).toBe(0);
      // The crash model must have exercised what it claims to.
      expect(tornTails).toBeGreaterThan(0);
      expect(vanishedFiles).toBeGreaterThan(0);
    });
  }
});
