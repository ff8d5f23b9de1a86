/**
 * The scan's readers trust the size a file reported when it was opened, and no more: a file that
 * ends before that size (it shrank between the size and the read) is read as far as it goes,
 * stopping at the first read that returns nothing, and handed back without the unread rest of
 * the buffer; a file that grew is read up to that size, its extra bytes neither in the result nor
 * in the zero tail's start; and a file of exactly that size takes no read past its end. Under the
 * directory lock no file changes size while it is read; this pins what the readers do if one does.
 */
import { describe, expect, it } from 'vitest';
import type { WalFile, WalFs } from '../../wal/fs.ts';
import { readSegment, readWhole } from '../../wal/scan.ts';

const READS_MAX = 16;

/**
 * A disk of one file holding `content` that says it holds `claimed` bytes. Read number `i`
 * (from 0) returns at most `chunkOf(i)` bytes, as a short pread may.
 */
function diskOf(content: Uint8Array, claimed: number, chunkOf: (read: number) => number): { fs: WalFs; reads: () => number } {
  let reads = 0;
  const file = {
    path: '/data/f',
    size: () => Promise.resolve(claimed),
    read: (buffer: Uint8Array, position: number) => {
      const n = Math.max(0, Math.min(buffer.length, chunkOf(reads), content.length - position));
      reads++;
      // Bounded so that a reader that ignored a read of 0 bytes fails here instead of spinning.
      if (reads > READS_MAX) return Promise.reject(new Error(`more than ${READS_MAX} reads`));
      buffer.set(content.subarray(position, position + n));
      return Promise.resolve(n);
    },
    close: () => Promise.resolve(),
  } as unknown as WalFile;
  return { fs: { open: () => Promise.resolve(file) } as unknown as WalFs, reads: () => reads };
}

const content = Uint8Array.from({ length: 150 }, (_, i) => (i % 7) + 1);
const first100 = content.subarray(0, 100);

describe('a file shorter than its reported size', () => {
  it('is read whole as far as it goes', async () => {
    const { fs, reads } = diskOf(first100, 160, () => 40);
    const bytes = await readWhole(fs, '/data/f', 1024);
    expect(bytes.length).toBe(100);
    expect(bytes.equals(first100)).toBe(true);
    expect(reads()).toBe(4);
  });

  it('is read as a segment as far as it goes, its zero tail after the last byte read', async () => {
    const { fs, reads } = diskOf(first100, 160, () => 1 << 30);
    const { bytes, zeroFrom } = await readSegment(fs, '/data/f', 1024);
    expect(bytes.length).toBe(100);
    expect(bytes.equals(first100)).toBe(true);
    expect(zeroFrom).toBe(100);
    expect(reads()).toBe(2);
  });
});

describe('a file longer than its reported size', () => {
  it('is read as a segment up to that size, after a short first read too', async () => {
    const { fs, reads } = diskOf(content, 100, (read) => (read === 0 ? 40 : 1 << 30));
    const { bytes, zeroFrom } = await readSegment(fs, '/data/f', 1024);
    expect(bytes.length).toBe(100);
    expect(bytes.equals(first100)).toBe(true);
    expect(zeroFrom).toBe(100);
    expect(reads()).toBe(2);
  });
});

describe('a file of exactly its reported size', () => {
  it('is handed back whole, with no read past its end', async () => {
    const whole = diskOf(first100, 100, () => 30);
    expect((await readWhole(whole.fs, '/data/f', 1024)).equals(first100)).toBe(true);
    expect(whole.reads()).toBe(4);
    const segment = diskOf(first100, 100, () => 30);
    expect((await readSegment(segment.fs, '/data/f', 1024)).bytes.equals(first100)).toBe(true);
    expect(segment.reads()).toBe(4);
  });
});
