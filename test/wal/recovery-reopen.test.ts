/**
 * What an open hands the writer after recovery, seen through the next operations: the checkpoint
 * it starts from (an older one is refused), the last segment's salt and end (the next append
 * goes there and reads back), and the bounded search for a free name for a torn tail's copy.
 */
import { describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { LOG_DIR, buildLog, diskWith, payloadFor } from './helpers/build.ts';
import { seededRandom } from './helpers/random.ts';

const SEGMENT_BYTES = 4096;

describe('an open after recovery', () => {
  it('starts from the recovered checkpoint: a checkpoint older than it is refused', async () => {
    const fs = new SimFs(seededRandom(3));
    const first = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES, random: seededRandom(4) });
    for (let i = 0; i < 6; i++) await first.log.append(1, payloadFor(i), { durable: true });
    await first.log.checkpoint(5, new TextEncoder().encode('at 5'));
    await first.log.close();

    const { log, recovered } = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    expect(recovered.checkpoint?.lsn).toBe(5);
    await expect(log.checkpoint(3, new Uint8Array([1]))).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Checkpoint LSN 3 is older than the checkpoint at LSN 5.' });
    await log.checkpoint(6, new TextEncoder().encode('at 6'));
    await log.close();
  });

  it('appends where the last of several segments ends, under its salt, and the record reads back', async () => {
    // Three 1,024-byte frames fill the first segment to 3,104 of 4,096 bytes; the fourth starts
    // the second one, which ends at 1,056. The next append belongs at 1,056 of the second.
    const fs = new SimFs(seededRandom(5));
    const first = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES, random: seededRandom(6) });
    for (let i = 0; i < 4; i++) await first.log.append(1, new Uint8Array(1000).fill(i + 1), { durable: true });
    await first.log.close();
    const segments = (await fs.readdir(LOG_DIR)).filter((name) => name.endsWith('.wal'));
    expect(segments.length).toBeGreaterThanOrEqual(2);

    const { log } = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES, random: seededRandom(7) });
    expect(await log.append(2, new TextEncoder().encode('reopened'), { durable: true })).toBe(5);
    await log.close();

    const again = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    expect(again.recovered.tornTail).toBeUndefined();
    expect(again.recovered.entries.map((entry) => entry.lsn)).toEqual([1, 2, 3, 4, 5]);
    expect(Buffer.from(again.recovered.entries[4]?.payload ?? []).toString()).toBe('reopened');
    await again.log.close();
  });
});

describe("a torn tail's copy", () => {
  it('looks for a free name among at most 1,000, then reuses the last one it tried', async () => {
    const built = await buildLog(40, SEGMENT_BYTES);
    const last = built.segments.at(-1);
    const frame = built.frames.at(-1);
    if (!last || !frame) throw new Error('empty log');
    const bytes = last.bytes.slice();
    bytes[frame.offset + 21] = (bytes[frame.offset + 21] ?? 0) ^ 0xff;
    const stem = `${last.name}.${frame.offset}`;
    const earlier = [`${stem}.broken`, ...Array.from({ length: 999 }, (_, i) => `${stem}.${i + 1}.broken`)];
    const fs = await diskWith([
      ...built.segments.map((segment) => (segment === last ? { name: segment.name, bytes } : segment)),
      ...earlier.map((name) => ({ name, bytes: new Uint8Array([9]) })),
    ]);

    const { log, recovered } = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    expect(recovered.tornTail).toMatchObject({ segment: last.name, offset: frame.offset, copy: `${stem}.999.broken` });
    const cut = recovered.tornTail?.bytes ?? 0;
    expect(Buffer.from(fs.readFile(`${LOG_DIR}/${stem}.999.broken`) ?? []).equals(Buffer.from(bytes.subarray(frame.offset, frame.offset + cut)))).toBe(true);
    expect(fs.readFile(`${LOG_DIR}/${stem}.1000.broken`)).toBeUndefined();
    await log.close();
  });
});
