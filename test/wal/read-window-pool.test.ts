/**
 * The scan reads segments through 4 MiB windows that it keeps for the next read, at most
 * WINDOWS_POOLED_MAX (2) of them: a later read allocates no window while one is kept, and reads
 * beyond two at once allocate their own and drop them afterwards, so the pool stays bounded.
 * Windows are counted as the Buffer.allocUnsafeSlow calls of their size.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { OpenMode, WalFile, WalFs } from '../../wal/fs.ts';
import { readSegment } from '../../wal/scan.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { seededRandom } from './helpers/random.ts';

const WINDOW_BYTES = 4 * 1024 * 1024;
const FILE = '/data/segment';

/** A disk on which `size()` waits until `readers` calls are waiting: by then each reader has taken its window. */
function gatedDisk(inner: SimFs, readers: number): WalFs {
  let waiting: (() => void)[] = [];
  const gate = (): Promise<void> =>
    new Promise((resolve) => {
      waiting.push(resolve);
      if (waiting.length === readers) {
        for (const release of waiting) release();
        waiting = [];
      }
    });
  const open = async (path: string, mode: OpenMode): Promise<WalFile> => {
    const file = await inner.open(path, mode);
    return {
      ...({} as WalFile),
      path: file.path,
      read: (buffer, position) => file.read(buffer, position),
      close: () => file.close(),
      size: async () => {
        await gate();
        return file.size();
      },
    };
  };
  return { open } as unknown as WalFs;
}

const windowsAllocated = (spy: { mock: { calls: unknown[][] } }): number => spy.mock.calls.filter(([size]) => size === WINDOW_BYTES).length;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the read windows', () => {
  it('are kept for later reads, at most two of them', async () => {
    const inner = new SimFs(seededRandom(8));
    await inner.mkdir('/data');
    const content = Buffer.alloc(4096);
    content.fill(7, 100, 200);
    inner.setFile(FILE, content);
    const readAll = async (count: number) => {
      const disk = gatedDisk(inner, count);
      const results = await Promise.all(Array.from({ length: count }, () => readSegment(disk, FILE, 8192)));
      for (const { bytes, zeroFrom } of results) expect([bytes.equals(content), zeroFrom]).toEqual([true, 200]);
    };

    // Whatever earlier tests left in the pool, four reads at once leave it full.
    await readAll(4);
    const spy = vi.spyOn(Buffer, 'allocUnsafeSlow');
    // Four at once again: two take the kept windows, two allocate theirs (and drop them after).
    await readAll(4);
    expect(windowsAllocated(spy)).toBe(2);
    // One read after that allocates nothing.
    await readAll(1);
    expect(windowsAllocated(spy)).toBe(2);
  });
});
