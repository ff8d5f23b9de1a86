/**
 * A file that ends before the size it reported (it shrank between the size and the read) is read
 * as far as it goes: the scan's readers hand back exactly the bytes read, never the unread rest
 * of their buffer, and stop at the first read that returns nothing. Under the directory lock no
 * file shrinks while it is read; this pins what the readers do if one does.
 */
import { describe, expect, it } from 'vitest';
import type { WalFile, WalFs } from '../../wal/fs.ts';
import { readSegment, readWhole } from '../../wal/scan.ts';

const READS_MAX = 16;

/** A disk of one file that says it holds `claimed` bytes but has only `content`; each read returns at most `chunk` bytes. */
function shrunkDisk(content: Uint8Array, claimed: number, chunk: number): { fs: WalFs; reads: () => number } {
  let reads = 0;
  const file = {
    path: '/data/f',
    size: () => Promise.resolve(claimed),
    read: (buffer: Uint8Array, position: number) => {
      reads++;
      // Bounded so that a reader that ignored a read of 0 bytes fails here instead of spinning.
      if (reads > READS_MAX) return Promise.reject(new Error(`more than ${READS_MAX} reads`));
      const n = Math.max(0, Math.min(buffer.length, chunk, content.length - position));
      buffer.set(content.subarray(position, position + n));
      return Promise.resolve(n);
    },
    close: () => Promise.resolve(),
  } as unknown as WalFile;
  return { fs: { open: () => Promise.resolve(file) } as unknown as WalFs, reads: () => reads };
}

const content = Uint8Array.from({ length: 100 }, (_, i) => (i % 7) + 1);

describe('a file shorter than its reported size', () => {
  it('is read whole as far as it goes', async () => {
    const { fs, reads } = shrunkDisk(content, 160, 40);
    const bytes = await readWhole(fs, '/data/f', 1024);
    expect(bytes.length).toBe(100);
    expect(bytes.equals(content)).toBe(true);
    expect(reads()).toBe(4);
  });

  it('is read as a segment as far as it goes, its zero tail after the last byte read', async () => {
    const { fs, reads } = shrunkDisk(content, 160, 1 << 30);
    const { bytes, zeroFrom } = await readSegment(fs, '/data/f', 1024);
    expect(bytes.length).toBe(100);
    expect(bytes.equals(content)).toBe(true);
    expect(zeroFrom).toBe(100);
    expect(reads()).toBe(2);
  });

  it('that is read to its reported size is handed back whole', async () => {
    const { fs } = shrunkDisk(content, 100, 30);
    expect((await readWhole(fs, '/data/f', 1024)).equals(content)).toBe(true);
    expect((await readSegment(fs, '/data/f', 1024)).bytes.equals(content)).toBe(true);
  });
});
