/**
 * `nodeFs`'s file handle, the calls not covered by the write tests: `truncate` cuts the real file,
 * and `sync` is node's fsync of this file's descriptor, its failure passed on. An fsync's effect
 * cannot be seen on a disk that does not lose power, so the test watches node's `fs.fsync` (the
 * adapter looks it up at each call) and lets the real call run where it succeeds.
 */
import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { nodeFs, type WalFile } from '../../wal/fs.ts';
import { tempDir } from './helpers/temp-dir.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function created(): Promise<{ file: WalFile; name: string }> {
  const { dir, remove } = await tempDir('twopc-node-fs-file-');
  cleanups.push(remove);
  const name = path.join(dir, 'f');
  const file = await nodeFs.open(name, 'create');
  cleanups.push(() => file.close().catch(() => undefined));
  return { file, name };
}

describe("nodeFs's file handle", () => {
  it('truncates the real file to the given length, keeping the bytes before it', async () => {
    const { file, name } = await created();
    await file.writev([Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])], 0);
    await file.truncate(3);
    expect([...(await readFile(name))]).toEqual([1, 2, 3]);
  });

  it("syncs with node's fsync of its own descriptor, once, and passes its failure on", async () => {
    const { file } = await created();
    const fsync = vi.spyOn(fs, 'fsync');
    await file.sync();
    expect(fsync).toHaveBeenCalledTimes(1);
    expect(typeof fsync.mock.calls[0]?.[0]).toBe('number');
    const failure = Object.assign(new Error('EIO: injected'), { code: 'EIO' });
    fsync.mockImplementation(((_fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => callback(failure)) as typeof fs.fsync);
    await expect(file.sync()).rejects.toBe(failure);
  });
});
