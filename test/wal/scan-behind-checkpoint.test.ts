/**
 * A log whose records end before its checkpoint lost records that were durable when the
 * checkpoint was written (a checkpoint is written only after what it covers is durable). Such a
 * log must be refused, not opened: opened, it took its next append at the LSN after the
 * checkpoint, wrote it right after the last surviving record, and refused to open ever after.
 */
import { describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import { checkpointName, encodeCheckpoint, encodeFrame, encodeSegmentHeader, segmentName } from '../../wal/format.ts';
import { verifyWal } from '../../wal/inspect.ts';
import { scanLog } from '../../wal/scan.ts';
import { LOG_DIR, diskWith } from './helpers/build.ts';

const SALT = 3;

/** One segment holding records firstLsn..firstLsn+count-1. */
function segment(firstLsn: number, count: number): { name: string; bytes: Buffer } {
  const bytes = Buffer.alloc(4096);
  encodeSegmentHeader(firstLsn, SALT).copy(bytes, 0);
  let at = 32;
  for (let i = 0; i < count; i++) at += encodeFrame(bytes, at, SALT, firstLsn + i, 1, new Uint8Array(4).fill(firstLsn + i));
  return { name: segmentName(firstLsn), bytes };
}

/** Records 1 to 3 on disk beside a checkpoint that covers up to LSN 5: records 4 and 5 are gone. */
const cutBehindCheckpoint = () => diskWith([segment(1, 3), { name: checkpointName(5), bytes: encodeCheckpoint(5, new Uint8Array([5])) }]);

describe('a log that ends before its checkpoint', () => {
  it('is corrupt to the scan, which names where it ends and what the checkpoint covers', async () => {
    const scan = await scanLog(await cutBehindCheckpoint(), LOG_DIR);
    expect(scan.corruption).toMatchObject({
      code: 'WAL_CORRUPT',
      segment: segmentName(1),
      reason: `the log ends at LSN 3 but checkpoint ${checkpointName(5)} covers up to LSN 5`,
    });
  });

  it('is reported by verify and refused by open, before any append can land after the gap', async () => {
    const fs = await cutBehindCheckpoint();
    const report = await verifyWal(LOG_DIR, { fs });
    expect(report.ok).toBe(false);
    await expect(openFileLog(LOG_DIR, { fs })).rejects.toMatchObject({ code: 'WAL_CORRUPT' });
  });

  it('is fine when the segment after the checkpoint is still empty (a roll right after it)', async () => {
    const scan = await scanLog(await diskWith([segment(1, 5), segment(6, 0), { name: checkpointName(5), bytes: encodeCheckpoint(5, new Uint8Array([5])) }]), LOG_DIR);
    expect(scan.corruption).toBeUndefined();
    expect(scan.lastLsn).toBe(5);
  });
});
