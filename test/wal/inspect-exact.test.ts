/**
 * What `twopc wal verify` and `inspect` print, exactly: the payload preview (text flattened and
 * cut with an ellipsis, binary as hex), the warnings for leftovers a later open deletes, the
 * status and `ok` for each verdict, and the record list's limit. On the simulated disk.
 */
import { describe, expect, it } from 'vitest';
import { checkpointName, encodeCheckpoint, encodeFrame, encodeSegmentHeader, segmentName } from '../../wal/format.ts';
import { inspectWal, previewOf, verifyWal } from '../../wal/inspect.ts';
import { LOG_DIR, diskWith } from './helpers/build.ts';

const flip = (bytes: Uint8Array, at: number): void => {
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
};
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function segment(firstLsn: number, payloads: readonly Uint8Array[]): { name: string; bytes: Buffer } {
  const bytes = Buffer.alloc(4096);
  encodeSegmentHeader(firstLsn, 5).copy(bytes, 0);
  let at = 32;
  payloads.forEach((payload, i) => (at += encodeFrame(bytes, at, 5, firstLsn + i, 1 + i, payload)));
  return { name: segmentName(firstLsn), bytes };
}

describe('previewOf', () => {
  it('shows text with its whitespace flattened, cut to the width with an ellipsis', () => {
    expect(previewOf(text('{"a":\n\t 1}'), 80)).toBe('{"a": 1}');
    expect(previewOf(text('abcdef'), 6)).toBe('abcdef');
    expect(previewOf(text('abcdefg'), 6)).toBe('abcde…');
    expect(previewOf(text(''), 10)).toBe('');
    expect(previewOf(text('tab\there\r\n'), 80)).toBe('tab here ');
  });

  it('shows binary, and text with control characters, as hex cut to the width', () => {
    expect(previewOf(new Uint8Array([0xff, 0x00, 0x10]), 80)).toBe('0xff0010');
    expect(previewOf(text('a\u0001b'), 80)).toBe('0x610162');
    expect(previewOf(text('a\u001fb'), 80)).toBe('0x611f62');
    // (12 - 4) / 2 = 4 bytes fit.
    expect(previewOf(new Uint8Array([1, 2, 3, 4, 5]), 12)).toBe('0x01020304…');
    expect(previewOf(new Uint8Array([1, 2, 3, 4]), 12)).toBe('0x01020304');
    // At least one byte, however narrow.
    expect(previewOf(new Uint8Array([0xab, 0xcd]), 3)).toBe('0xab…');
  });
});

describe('verify and inspect reports', () => {
  it('lists the segments, the checkpoint, and a warning for each leftover open deletes', async () => {
    const fs = await diskWith([
      segment(1, [text('a'), text('b')]),
      segment(3, [text('c')]),
      { name: checkpointName(2), bytes: encodeCheckpoint(2, text('st')) },
      { name: 'x.tmp', bytes: new Uint8Array(1) },
      { name: 'y.tmp', bytes: new Uint8Array(1) },
    ]);
    const report = await verifyWal(LOG_DIR, { fs });
    expect(report).toEqual({
      dir: LOG_DIR,
      status: 'intact',
      ok: true,
      segments: [{ name: segmentName(3), firstLsn: 3, lastLsn: 3, records: 1, endOffset: 56, fileBytes: 4096 }],
      records: 1,
      lastLsn: 3,
      checkpoint: { file: checkpointName(2), lsn: 2, dataBytes: 2 },
      tornTail: null,
      corruption: null,
      warnings: ['1 segment(s) wholly covered by the checkpoint are still present; open deletes them', '2 unfinished *.tmp file(s); open deletes them'],
    });
  });

  it('says torn-tail (still ok) and corrupt (not ok), with where and why', async () => {
    const torn = segment(1, [text('a'), text('b')]);
    flip(torn.bytes, 32 + 24 + 20);
    const tornReport = await verifyWal(LOG_DIR, { fs: await diskWith([torn]) });
    expect(tornReport).toMatchObject({ status: 'torn-tail', ok: true, corruption: null, tornTail: { segment: torn.name, offset: 56, bytes: 21, reason: 'frame CRC mismatch, nothing valid after it' } });
    const corrupt = segment(1, [text('a'), text('b')]);
    flip(corrupt.bytes, 32 + 20);
    const corruptReport = await verifyWal(LOG_DIR, { fs: await diskWith([corrupt]) });
    expect(corruptReport).toMatchObject({ status: 'corrupt', ok: false, tornTail: null, corruption: { code: 'WAL_CORRUPT', segment: corrupt.name, offset: 32, reason: 'frame CRC mismatch, yet a valid frame (LSN 2) follows at offset 56' } });
  });

  it('lists every record, covered ones included, up to the limit, and says when it cut the list', async () => {
    const fs = await diskWith([segment(1, [text('one'), text('two'), new Uint8Array([0, 1])]), { name: checkpointName(1), bytes: encodeCheckpoint(1, text('x')) }]);
    const all = await inspectWal(LOG_DIR, { fs });
    expect(all.truncated).toBe(false);
    expect(all.entries).toEqual([
      { lsn: 1, type: 1, bytes: 3, segment: segmentName(1), offset: 32, preview: 'one' },
      { lsn: 2, type: 2, bytes: 3, segment: segmentName(1), offset: 56, preview: 'two' },
      { lsn: 3, type: 3, bytes: 2, segment: segmentName(1), offset: 80, preview: '0x0001' },
    ]);
    const two = await inspectWal(LOG_DIR, { fs, limit: 2, previewChars: 2 });
    expect(two.truncated).toBe(true);
    expect(two.entries.map((e) => [e.lsn, e.preview])).toEqual([
      [1, 'o…'],
      [2, 't…'],
    ]);
    expect((await inspectWal(LOG_DIR, { fs, limit: 3 })).truncated).toBe(false);
    // verify counts every record of the segments it read, the covered ones in them included.
    expect((await verifyWal(LOG_DIR, { fs })).records).toBe(3);
  });
});
