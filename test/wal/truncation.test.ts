/**
 * Truncation at every byte offset: whatever prefix of the log's bytes reaches the disk,
 * recovery gives back exactly the records wholly inside it (a prefix of what was
 * acknowledged), cuts the rest, and the log takes and reads back a new append afterwards.
 */
import { describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import type { Recovered } from '../../wal/log.ts';
import { nodeFs } from '../../wal/fs.ts';
import { LOG_DIR, buildLog, diskWith, lastRecord } from './helpers/build.ts';
import type { BuiltLog } from './helpers/build.ts';
import { tempDir } from './helpers/temp-dir.ts';
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

const SEGMENT_BYTES = 4096;
const RECORDS = 204;
const after = new TextEncoder().encode('{"after":"recovery"}');

/** The files on disk when the log is cut at global offset `t` of its concatenated segments. */
function cutAt(built: BuiltLog, t: number): { files: { name: string; bytes: Uint8Array }[]; expected: number } {
  const files: { name: string; bytes: Uint8Array }[] = [];
  let expected = 0;
  let left = t;
  for (const segment of built.segments) {
    if (left <= 0 && files.length > 0) break;
    if (left >= segment.endOffset) {
      files.push({ name: segment.name, bytes: segment.bytes });
      expected += built.frames.filter((frame) => frame.segment === segment.name).length;
      left -= segment.endOffset;
      continue;
    }
    files.push({ name: segment.name, bytes: segment.bytes.slice(0, left) });
    const cut = left;
    expected += built.frames.filter((frame) => frame.segment === segment.name && frame.offset + frame.frameBytes <= cut).length;
    left = 0;
    break;
  }
  return { files, expected };
}

/** True when `recovered` holds exactly the first `count` records of `built`. */
function isExactPrefix(built: BuiltLog, recovered: Recovered, count: number): boolean {
  if (recovered.entries.length !== count) return false;
  return recovered.entries.every((entry, i) => entry.lsn === i + 1 && Buffer.from(entry.payload).equals(Buffer.from(built.payloads[i] ?? [])));
}

describe('truncation at every byte offset', () => {
  it(`recovers exactly a prefix at each offset of a ${RECORDS}-record log over several segments (simulated disk)`, async () => {
    const built = await buildLog(RECORDS, SEGMENT_BYTES, (i) => (i % 9 === 0 ? 6 : 0));
    expect(built.segments.length).toBeGreaterThanOrEqual(2);
    const total = built.segments.reduce((sum, segment) => sum + segment.endOffset, 0);
    let tried = 0;
    let notPrefix = 0;
    let readBackFailures = 0;
    for (let t = 0; t <= total; t++) {
      const { files, expected } = cutAt(built, t);
      const fs = await diskWith(files, t);
      const { log, recovered } = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
      tried++;
      if (!isExactPrefix(built, recovered, expected)) notPrefix++;
      const lsn = await log.append(1, after, { durable: true });
      await log.close();
      // Read back with the scan the next open would run.
      const last = await lastRecord(fs);
      if (lsn !== expected + 1 || last?.lsn !== lsn || !Buffer.from(last.payload).equals(Buffer.from(after)) || last.records !== expected + 1) readBackFailures++;
    }
    console.log(`truncation (simulated disk): ${built.segments.length} segments, ${RECORDS} records, offsets tried 0..${total} (${tried}), non-prefix recoveries: ${notPrefix}, failed read-backs: ${readBackFailures}`);
    expect(tried).toBe(total + 1);
    expect(notPrefix).toBe(0);
    expect(readBackFailures).toBe(0);
  });

  it('does the same on the real file system at a sample of offsets', async () => {
    const built = await buildLog(RECORDS, SEGMENT_BYTES, (i) => (i % 9 === 0 ? 6 : 0));
    const total = built.segments.reduce((sum, segment) => sum + segment.endOffset, 0);
    const { dir: root, remove } = await tempDir();
    try {
      const offsets = [0, 1, 31, 32, 33, ...Array.from({ length: 24 }, (_, i) => Math.floor(((i + 1) * total) / 25) + (i % 8)), total];
      let notPrefix = 0;
      for (const t of offsets) {
        const dir = path.join(root, `cut-${t}`);
        await mkdir(dir);
        const { files, expected } = cutAt(built, t);
        for (const file of files) await writeFile(path.join(dir, file.name), file.bytes);
        const { log, recovered } = await openFileLog(dir, { fs: nodeFs, segmentBytes: SEGMENT_BYTES, syncPolicy: 'always' });
        if (!isExactPrefix(built, recovered, expected)) notPrefix++;
        expect(await log.append(1, after, { durable: true })).toBe(expected + 1);
        await log.close();
        const again = await openFileLog(dir, { segmentBytes: SEGMENT_BYTES });
        expect(again.recovered.entries.length).toBe(expected + 1);
        await again.log.close();
      }
      console.log(`truncation (real disk): offsets tried ${offsets.length} of 0..${total}, non-prefix recoveries: ${notPrefix}`);
      expect(notPrefix).toBe(0);
    } finally {
      await remove();
    }
  });
});
