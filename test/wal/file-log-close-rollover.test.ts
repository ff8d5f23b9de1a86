/**
 * Closing a log whose accepted appends still need new segments: the close must write them all
 * (rolling over as often as they need) rather than stop preparing segments and poison the log.
 */
import { describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { seededRandom } from './helpers/random.ts';
import { TraceFs } from './helpers/trace-fs.ts';

const DIR = '/w';
const SIZE = 4096;

describe('close while appends wait for rollovers', () => {
  it('writes appends that span two new segments, made in the same tick as close', async () => {
    const fs = new SimFs(seededRandom(1));
    const { log } = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    // Three 1,000-byte records fill a 4 KiB segment: records 4 and 7 each start a new one.
    const appends = Array.from({ length: 7 }, (_, i) => log.append(1, new Uint8Array(1000).fill(i + 1)));
    const closing = log.close();
    expect(await Promise.all(appends)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await closing;
    expect(log.poisoned).toBe(false);
    expect((await fs.readdir(DIR)).filter((n) => !n.endsWith('.ckpt')).sort()).toEqual(['00000000000000000001.wal', '00000000000000000004.wal', '00000000000000000007.wal']);
    const again = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    expect(again.recovered.entries.map((e) => e.payload[0])).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await again.log.close();
  });

  it('writes them when close comes while the writer is already rolling over', async () => {
    const fs = new SimFs(seededRandom(2), { settle: 'immediate' });
    const { log } = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    const appends = Array.from({ length: 10 }, (_, i) => log.append(1, new Uint8Array(1000).fill(i + 1)));
    // Let the writer start (it seals segment 1 first), then close.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const closing = log.close();
    expect(await Promise.all(appends)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await closing;
    const again = await openFileLog(DIR, { fs, segmentBytes: SIZE });
    expect(again.recovered.entries.map((e) => e.payload[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await again.log.close();
  });

  it('prepares no spare segment once closed when no append needs one', async () => {
    const fs = new TraceFs(DIR);
    const { log } = await openFileLog(DIR, { fs, segmentBytes: SIZE, syncPolicy: 'none', flushIntervalMs: 60_000 });
    await log.append(1, new Uint8Array(1000));
    // The second record takes the segment past half only in the batch that close writes.
    const appended = log.append(1, new Uint8Array(1000));
    await log.close();
    expect(await appended).toBe(2);
    expect(fs.calls.filter((c) => c.includes('prepared-'))).toEqual([]);
  });
});
