/**
 * Bit rot. A flipped byte anywhere in a sealed segment is mid-log corruption: open refuses
 * and names the segment and the byte offset. A flipped byte in the last record of the last
 * segment is indistinguishable from a torn write and is cut as a torn tail.
 */
import { describe, expect, it } from 'vitest';
import { WalError } from '../../wal/errors.ts';
import { openFileLog } from '../../wal/file-log.ts';
import { SEGMENT_HEADER_BYTES } from '../../wal/format.ts';
import { verifyWal } from '../../wal/inspect.ts';
import { LOG_DIR, buildLog, diskWith } from './helpers/build.ts';
import type { BuiltLog, Frame } from './helpers/build.ts';

const SEGMENT_BYTES = 4096;

async function openError(built: BuiltLog, flipIn: string, at: number): Promise<unknown> {
  const files = built.segments.map((segment) => {
    if (segment.name !== flipIn) return segment;
    const bytes = segment.bytes.slice();
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    return { name: segment.name, bytes };
  });
  const fs = await diskWith(files, at);
  try {
    const { log } = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
    await log.close();
    return undefined;
  } catch (error) {
    return error;
  }
}

/**
 * Where the error must point for a flip at `at`: the header; the frame holding it; just after
 * the records when it lands in the 8-byte word where the next frame would start (it reads as a
 * bad frame there); else, in the zeros after the records, the flipped byte itself.
 */
function expectedOffset(frames: readonly Frame[], segment: string, endOffset: number, at: number): number {
  if (at < SEGMENT_HEADER_BYTES) return 0;
  const frame = frames.find((f) => f.segment === segment && f.offset <= at && at < f.offset + f.frameBytes);
  if (frame) return frame.offset;
  return at < endOffset + 8 ? endOffset : at;
}

describe('corruption', () => {
  it('refuses to open when any byte of a sealed segment is flipped, naming segment and offset', async () => {
    const built = await buildLog(240, SEGMENT_BYTES);
    expect(built.segments.length).toBeGreaterThanOrEqual(2);
    const sealed = built.segments[0];
    if (!sealed) throw new Error('no sealed segment');
    let refused = 0;
    let misplaced = 0;
    for (let at = 0; at < sealed.bytes.length; at++) {
      const error = await openError(built, sealed.name, at);
      if (!(error instanceof WalError) || error.code !== 'WAL_CORRUPT') {
        throw new Error(`flip at ${sealed.name}:${at} was not refused: ${String(error)}`);
      }
      refused++;
      const want = expectedOffset(built.frames, sealed.name, sealed.endOffset, at);
      if (error.segment !== sealed.name || error.offset !== want || !error.message.includes(sealed.name) || !error.message.includes(`byte offset ${want}`)) {
        misplaced++;
      }
    }
    console.log(`corruption: flipped each of the ${sealed.bytes.length} bytes of sealed segment ${sealed.name} (records end at ${sealed.endOffset}): refused ${refused}, misplaced ${misplaced}`);
    expect(refused).toBe(sealed.bytes.length);
    expect(misplaced).toBe(0);
  });

  it('refuses a flip in any record of the last segment but its last: valid records follow it', async () => {
    const built = await buildLog(240, SEGMENT_BYTES);
    const last = built.segments.at(-1);
    const frames = built.frames.filter((frame) => frame.segment === last?.name).slice(0, -1);
    if (!last || frames.length < 3) throw new Error('too few frames in the last segment');
    let refused = 0;
    for (const frame of frames) {
      for (let at = frame.offset; at < frame.offset + frame.frameBytes; at++) {
        const error = await openError(built, last.name, at);
        expect(error).toBeInstanceOf(WalError);
        expect(error).toMatchObject({ code: 'WAL_CORRUPT', segment: last.name, offset: frame.offset });
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(100);
  });

  it('cuts a flipped last record of the last segment as a torn tail, keeping a copy and all earlier records', async () => {
    const built = await buildLog(240, SEGMENT_BYTES);
    const last = built.segments.at(-1);
    const frame = built.frames.at(-1);
    if (!last || !frame) throw new Error('empty log');
    for (let at = frame.offset; at < frame.offset + frame.frameBytes; at++) {
      const bytes = last.bytes.slice();
      bytes[at] = (bytes[at] ?? 0) ^ 0xff;
      const fs = await diskWith(
        built.segments.map((segment) => (segment === last ? { name: segment.name, bytes } : segment)),
        at,
      );
      // verify sees a torn tail, says so, and changes nothing.
      const report = await verifyWal(LOG_DIR, { fs });
      expect(report).toMatchObject({ status: 'torn-tail', ok: true, tornTail: { segment: last.name, offset: frame.offset } });
      expect(Buffer.from(fs.readFile(`${LOG_DIR}/${last.name}`) ?? []).equals(Buffer.from(bytes))).toBe(true);

      const { log, recovered } = await openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES });
      expect(recovered.entries.length).toBe(built.frames.length - 1);
      expect(recovered.tornTail).toMatchObject({ segment: last.name, offset: frame.offset });
      const copy = recovered.tornTail?.copy;
      expect(copy).toBeDefined();
      const kept = fs.readFile(`${LOG_DIR}/${copy}`);
      expect(kept?.[at - frame.offset]).toBe(bytes[at]);
      expect(await log.append(1, new Uint8Array([1, 2, 3]), { durable: true })).toBe(frame.lsn);
      await log.close();
    }
  });

  it('refuses a corrupted header of the last segment rather than dropping the segment', async () => {
    const built = await buildLog(240, SEGMENT_BYTES);
    const last = built.segments.at(-1);
    if (!last) throw new Error('empty log');
    for (let at = 0; at < SEGMENT_HEADER_BYTES; at++) {
      const error = await openError(built, last.name, at);
      expect(error).toMatchObject({ code: 'WAL_CORRUPT', segment: last.name, offset: 0 });
    }
  });

  it('refuses a log whose segments do not continue each other', async () => {
    const built = await buildLog(240, SEGMENT_BYTES);
    const fs = await diskWith(built.segments.slice(1));
    await expect(openFileLog(LOG_DIR, { fs, segmentBytes: SEGMENT_BYTES })).rejects.toMatchObject({ code: 'WAL_CORRUPT', offset: 0 });
    const report = await verifyWal(LOG_DIR, { fs });
    expect(report.status).toBe('corrupt');
    expect(report.corruption?.reason).toMatch(/records 1\.\.\d+ are missing/);
  });
});
