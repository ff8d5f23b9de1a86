/** Recovery's repairs and housekeeping: torn-tail copies, temp files, checkpoints, new segments. */
import { describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import { encodeCheckpoint } from '../../wal/format.ts';
import { verifyWal } from '../../wal/inspect.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { LOG_DIR, buildLog, diskWith } from './helpers/build.ts';
import { seededRandom } from './helpers/random.ts';

const SEGMENT_BYTES = 4096;
const enc = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('recovery', () => {
  it('cuts a torn tail: keeps the cut bytes in a .broken copy, truncates, and keeps the file size', async () => {
    const built = await buildLog(50, SEGMENT_BYTES);
    const last = built.segments.at(-1);
    const frame = built.frames.at(-1);
    if (!last || !frame) throw new Error('empty');
    const torn = last.bytes.slice();
    torn.fill(0, frame.offset + 12, frame.offset + frame.frameBytes);
    const fs = await diskWith([...built.segments.slice(0, -1), { name: last.name, bytes: torn }]);
    const { log, recovered } = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    // The copy runs to the last non-zero byte of what was cut.
    let cutBytes = 12;
    while (cutBytes > 0 && torn[frame.offset + cutBytes - 1] === 0) cutBytes--;
    expect(recovered.tornTail).toEqual({ segment: last.name, offset: frame.offset, bytes: cutBytes, copy: `${last.name}.${frame.offset}.broken` });
    expect(fs.readFile(`${LOG_DIR}/${recovered.tornTail?.copy}`)).toEqual(torn.subarray(frame.offset, frame.offset + cutBytes));
    const after = fs.readFile(`${LOG_DIR}/${last.name}`) ?? new Uint8Array();
    expect(after.length).toBe(last.bytes.length);
    expect(after.subarray(frame.offset).every((byte) => byte === 0)).toBe(true);
    await log.close();
    expect((await verifyWal(LOG_DIR, { fs })).status).toBe('intact');
  });

  it('drops a last segment whose header never reached the disk, and continues in the one before', async () => {
    const built = await buildLog(50, SEGMENT_BYTES);
    const lastLsn = built.frames.length;
    const fs = await diskWith([...built.segments, { name: `${String(lastLsn + 1).padStart(20, '0')}.wal`, bytes: new Uint8Array(SEGMENT_BYTES) }]);
    const { log, recovered } = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    expect(recovered.tornTail).toMatchObject({ offset: 0, bytes: 0 });
    expect(recovered.entries.length).toBe(lastLsn);
    expect(await log.append(1, enc('next'), { durable: true })).toBe(lastLsn + 1);
    await log.close();
  });

  it('deletes *.tmp files left by a crash', async () => {
    const built = await buildLog(20, SEGMENT_BYTES);
    const fs = await diskWith([...built.segments, { name: 'prepared-00000001-0.wal.tmp', bytes: new Uint8Array(100) }, { name: 'checkpoint-00000000000000000005.ckpt.tmp', bytes: new Uint8Array(3) }]);
    const { log } = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    expect((await fs.readdir(LOG_DIR)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    await log.close();
  });

  it('after a checkpoint, deletes the segments and checkpoints it covers (never the active one)', async () => {
    const fs = new SimFs(seededRandom(4));
    const { log } = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    for (let i = 0; i < 300; i++) await log.append(1, enc(JSON.stringify({ i, pad: 'p'.repeat(i % 30) })));
    const segmentsBefore = (await fs.readdir(LOG_DIR)).filter((name) => name.endsWith('.wal'));
    expect(segmentsBefore.length).toBeGreaterThan(3);
    await log.checkpoint(100, enc('a'));
    await log.checkpoint(300, enc('b'));
    const names = await fs.readdir(LOG_DIR);
    expect(names.filter((name) => name.endsWith('.wal'))).toEqual([segmentsBefore.at(-1)]);
    expect(names.filter((name) => name.endsWith('.ckpt'))).toEqual(['checkpoint-00000000000000000300.ckpt']);
    await log.close();
    const again = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    expect(again.recovered.checkpoint?.lsn).toBe(300);
    expect(again.recovered.entries).toEqual([]);
    expect(again.log.lastLsn).toBe(300);
    await again.log.close();
  });

  it('falls back to an older checkpoint when the newest does not validate, if the log still covers the gap', async () => {
    const fs = new SimFs(seededRandom(5));
    const { log } = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    for (let i = 0; i < 30; i++) await log.append(1, enc(`r${i}`));
    await log.checkpoint(10, enc('ten'));
    await log.close();
    const bad = encodeCheckpoint(20, enc('twenty'));
    bad[34] = (bad[34] ?? 0) ^ 1;
    fs.setFile(`${LOG_DIR}/checkpoint-00000000000000000020.ckpt`, bad);
    const report = await verifyWal(LOG_DIR, { fs });
    expect(report.status).toBe('intact');
    expect(report.warnings.join(' ')).toMatch(/checkpoint-00000000000000000020\.ckpt is unreadable/);
    const again = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    expect(again.recovered.checkpoint?.lsn).toBe(10);
    expect(again.recovered.entries.map((entry) => entry.lsn)).toEqual(Array.from({ length: 20 }, (_, i) => i + 11));
    await again.log.close();
  });

  it('syncs what it recovered: records a dead process left unsynced survive a later power loss', async () => {
    const fs = new SimFs(seededRandom(6));
    const first = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES, syncPolicy: 'none' });
    for (let i = 0; i < 20; i++) await first.log.append(1, enc(`r${i}`));
    // kill -9 (the first instance is simply abandoned): the page cache keeps the writes, unsynced.
    const second = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    expect(second.recovered.entries.length).toBe(20);
    // Then the power goes: what the second open read must still be there.
    fs.crash({ data: 'lose', dir: 'lose' });
    const third = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    expect(third.recovered.entries.length).toBe(20);
    await third.log.close();
  });

  it('creates the directory and a first segment on a fresh open', async () => {
    const fs = new SimFs(seededRandom(7));
    const { log, recovered } = await openFileLog('/fresh/nested/wal', { fs, segmentBytes: SEGMENT_BYTES });
    expect(recovered).toEqual({ entries: [] });
    expect(await fs.readdir('/fresh/nested/wal')).toEqual(['00000000000000000001.wal']);
    await log.close();
  });

  it('reads segments larger than its read window: frames across window edges, garbage in a far window', async () => {
    const segmentBytes = 12 * 1024 * 1024;
    const fs = new SimFs(seededRandom(8));
    const { log } = await openFileLog(LOG_DIR, { fs, segmentBytes });
    const payload = new Uint8Array(3000).fill(0x41);
    // About 5 MiB of frames: some straddle the 4 MiB window edge.
    for (let i = 0; i < 1800; i++) await log.append(1, payload);
    await log.close();
    const name = '00000000000000000001.wal';
    const again = await openFileLog(LOG_DIR, { fs, segmentBytes });
    expect(again.recovered.entries.length).toBe(1800);
    expect(again.recovered.entries.every((entry) => entry.payload.length === 3000 && entry.payload[2999] === 0x41)).toBe(true);
    await again.log.close();
    // A stray byte far after the records, in a window of its own, is a torn tail up to it.
    const bytes = fs.readFile(`${LOG_DIR}/${name}`) ?? new Uint8Array();
    const stray = 9 * 1024 * 1024 + 5;
    bytes[stray] = 7;
    fs.setFile(`${LOG_DIR}/${name}`, bytes);
    const report = await verifyWal(LOG_DIR, { fs });
    const end = report.segments[0]?.endOffset ?? 0;
    expect(report).toMatchObject({ status: 'torn-tail', tornTail: { segment: name, offset: end, bytes: stray + 1 - end } });
    const third = await openFileLog(LOG_DIR, { fs, segmentBytes });
    expect(third.recovered.entries.length).toBe(1800);
    await third.log.close();
    expect((await verifyWal(LOG_DIR, { fs })).status).toBe('intact');
  });
});
