/**
 * `nodeFs`, the real-disk adapter, in process on a temporary directory: buffer lists (empty
 * buffers included) written whole through both writes, short writes finished from where they
 * stopped, a write that makes no progress refused rather than looped, write errors passed on,
 * mkdir's real error instead of node's misleading ENOENT, and `syncDir`'s fsync of the
 * directory. A real disk cannot be made to write short, fail a mkdir or an fsync on demand (and
 * this machine runs tests as root), so those cases spy on node's `fs` calls, which the adapter
 * looks up at each call, and let the real call do the work where there is work to do.
 */
import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { nodeFs } from '../../wal/fs.ts';
import type { WalFile } from '../../wal/fs.ts';
import { tempDir } from './helpers/temp-dir.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function scratch(): Promise<string> {
  const { dir, remove } = await tempDir('twopc-node-fs-');
  cleanups.push(remove);
  return dir;
}

async function created(): Promise<{ file: WalFile; name: string }> {
  const name = path.join(await scratch(), 'f');
  const file = await nodeFs.open(name, 'create');
  cleanups.push(() => file.close().catch(() => undefined));
  return { file, name };
}

const bytes = (from: number, count: number): Uint8Array => Uint8Array.from({ length: count }, (_, i) => from + i);
const concat = (buffers: readonly Uint8Array[]): Buffer => Buffer.concat(buffers.map((b) => Buffer.from(b)));
const errno = (code: string): Error => Object.assign(new Error(`${code}: injected`), { code });

/** Writes a test lets through before it fails them: a write loop that does not end fails the test instead of filling the disk. */
const WRITES_PER_TEST_MAX = 64;

/** Makes every data write take at most `limit` bytes (0: none), as a full disk or a signal can. */
function writesAtMost(limit: number): void {
  const { write, writeSync } = fs;
  let writes = 0;
  const counted = (): void => {
    if (++writes > WRITES_PER_TEST_MAX) throw errno('ELOOP');
  };
  const cut = (buffers: readonly Uint8Array[]): Buffer => concat(buffers).subarray(0, limit);
  type Done = (error: Error | null, written: number) => void;
  const later = (callback: Done, error: unknown): void => void setImmediate(() => callback(error as Error, 0));
  vi.spyOn(fs, 'write').mockImplementation(((fd: number, buffer: Uint8Array, offset: number, length: number, position: number, callback: Done) => {
    try {
      counted();
      write(fd, buffer, offset, Math.min(length, limit), position, callback);
    } catch (error) {
      later(callback, error);
    }
  }) as unknown as typeof fs.write);
  vi.spyOn(fs, 'writev').mockImplementation(((fd: number, buffers: Uint8Array[], position: number, callback: Done) => {
    try {
      counted();
      const part = cut(buffers);
      write(fd, part, 0, part.length, position, callback);
    } catch (error) {
      later(callback, error);
    }
  }) as unknown as typeof fs.writev);
  vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => {
    counted();
    return writeSync(fd, buffer, offset, Math.min(length, limit), position);
  }) as unknown as typeof fs.writeSync);
  vi.spyOn(fs, 'writevSync').mockImplementation((fd: number, buffers: readonly NodeJS.ArrayBufferView[], position?: number | null) => {
    counted();
    const part = cut(buffers as Uint8Array[]);
    return writeSync(fd, part, 0, part.length, position);
  });
}

describe('nodeFs writes', () => {
  it('writes a list of buffers, empty ones included, whole and in order, through both writes', async () => {
    const { file, name } = await created();
    const first = [new Uint8Array(0), bytes(1, 5), bytes(10, 3)];
    await file.writev(first, 0);
    await file.writev([bytes(20, 2)], 8);
    const second = [new Uint8Array(0), bytes(30, 4)];
    file.writevSync?.(second, 10);
    file.writevSync?.([bytes(40, 1)], 14);
    expect(await readFile(name)).toEqual(concat([...first, bytes(20, 2), ...second, bytes(40, 1)]));
    const back = new Uint8Array(20);
    expect(await file.read(back, 0)).toBe(15);
    expect(await file.size()).toBe(15);
  });

  it('finishes a list of buffers written short again and again, within a buffer and across buffers', async () => {
    const { file, name } = await created();
    writesAtMost(3);
    const buffers = [bytes(1, 5), bytes(10, 4), new Uint8Array(0), bytes(20, 6)];
    await file.writev(buffers, 0);
    file.writevSync?.(buffers, 15);
    vi.restoreAllMocks();
    expect(await readFile(name)).toEqual(concat([...buffers, ...buffers]));
  });

  it('finishes one buffer written short again and again, and stops at its end', async () => {
    const { file, name } = await created();
    writesAtMost(3);
    await file.writev([bytes(50, 7)], 0);
    file.writevSync?.([bytes(60, 7)], 7);
    vi.restoreAllMocks();
    expect(await readFile(name)).toEqual(concat([bytes(50, 7), bytes(60, 7)]));
  });

  it('refuses a write that makes no progress with an EIO naming the file, rather than looping', async () => {
    const { file, name } = await created();
    writesAtMost(0);
    const shortWrite = { code: 'EIO', message: `short write to ${name}` };
    await expect(file.writev([bytes(1, 4)], 0)).rejects.toMatchObject(shortWrite);
    await expect(file.writev([bytes(1, 4), bytes(5, 4)], 0)).rejects.toMatchObject(shortWrite);
    expect(() => file.writevSync?.([bytes(1, 4)], 0)).toThrow(expect.objectContaining(shortWrite));
    expect(() => file.writevSync?.([bytes(1, 4), bytes(5, 4)], 0)).toThrow(expect.objectContaining(shortWrite));
  });

  it('passes a write error on', async () => {
    const { name } = await created();
    const readOnly = await nodeFs.open(name, 'read');
    cleanups.push(() => readOnly.close());
    await expect(readOnly.writev([bytes(1, 4)], 0)).rejects.toMatchObject({ code: 'EBADF' });
    await expect(readOnly.writev([bytes(1, 4), bytes(5, 1)], 0)).rejects.toMatchObject({ code: 'EBADF' });
  });
});

describe('nodeFs file syncs', () => {
  it('runs the blocking fdatasync on its own descriptor, and passes its error on', async () => {
    const { file, name } = await created();
    const seen: number[] = [];
    const real = fs.fdatasyncSync;
    vi.spyOn(fs, 'fdatasyncSync').mockImplementation((fd: number) => {
      seen.push(fd);
      real(fd);
    });
    await file.writev([bytes(1, 4)], 0);
    file.datasyncSync?.();
    expect(seen).toHaveLength(1);
    // The descriptor is the file's own: fstat through it names the file just written.
    expect(fs.fstatSync(seen[0] as number).ino).toBe(fs.statSync(name).ino);
    vi.restoreAllMocks();
    vi.spyOn(fs, 'fdatasyncSync').mockImplementation(() => {
      throw errno('EIO');
    });
    expect(() => file.datasyncSync?.()).toThrow(expect.objectContaining({ code: 'EIO' }));
  });
});

describe('nodeFs.mkdir', () => {
  /** Node's recursive mkdir fails with `recursive`; each single mkdir with its entry in `single`, else for real. */
  function mkdirFails(root: string, recursive: Error, single: Record<string, Error | 'after creating'> = {}): string[] {
    const calls: string[] = [];
    const real = fs.promises.mkdir;
    vi.spyOn(fs.promises, 'mkdir').mockImplementation(async (dir, options): Promise<string | undefined> => {
      const at = String(dir);
      calls.push(`${path.relative(root, at)}${options === undefined ? '' : ' (recursive)'}`);
      if (options !== undefined) throw recursive;
      // Never create anything outside the scratch directory.
      if (!at.startsWith(`${root}${path.sep}`)) throw errno('EACCES');
      const failure = single[path.relative(root, at)];
      if (failure === 'after creating') {
        await real(at);
        throw errno('EEXIST');
      }
      if (failure) throw failure;
      await real(at);
      return undefined;
    });
    return calls;
  }

  it("after node's recursive mkdir reports ENOENT, creates the missing directories one at a time", async () => {
    const root = await scratch();
    const calls = mkdirFails(root, errno('ENOENT'));
    await nodeFs.mkdir(path.join(root, 'a', 'b', 'c'));
    expect(calls).toEqual([`${path.join('a', 'b', 'c')} (recursive)`, 'a', path.join('a', 'b'), path.join('a', 'b', 'c')]);
    expect(fs.statSync(path.join(root, 'a', 'b', 'c')).isDirectory()).toBe(true);
  });

  it('throws the real reason a missing directory cannot be created, not ENOENT', async () => {
    const root = await scratch();
    const calls = mkdirFails(root, errno('ENOENT'), { [path.join('a', 'b')]: errno('EROFS') });
    await expect(nodeFs.mkdir(path.join(root, 'a', 'b', 'c'))).rejects.toMatchObject({ code: 'EROFS' });
    expect(calls).toEqual([`${path.join('a', 'b', 'c')} (recursive)`, 'a', path.join('a', 'b')]);
  });

  it('throws any other error of the recursive mkdir as it is', async () => {
    const root = await scratch();
    const calls = mkdirFails(root, errno('EACCES'));
    await expect(nodeFs.mkdir(path.join(root, 'a'))).rejects.toMatchObject({ code: 'EACCES' });
    expect(calls).toEqual(['a (recursive)']);
  });

  it('takes a directory that another process created meanwhile (EEXIST) and goes on', async () => {
    const root = await scratch();
    mkdirFails(root, errno('ENOENT'), { a: 'after creating' });
    await nodeFs.mkdir(path.join(root, 'a', 'b'));
    expect(fs.statSync(path.join(root, 'a', 'b')).isDirectory()).toBe(true);
  });
});

describe('nodeFs.syncDir', () => {
  it('fsyncs the directory itself and closes it, also when the fsync fails', async () => {
    const dir = await scratch();
    const handles: fs.promises.FileHandle[] = [];
    const open = fs.promises.open;
    let failSync = false;
    vi.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof open>) => {
      const handle = await open(...args);
      vi.spyOn(handle, 'close');
      const sync = handle.sync.bind(handle);
      vi.spyOn(handle, 'sync').mockImplementation(() => (failSync ? Promise.reject(errno('EIO')) : sync()));
      handles.push(handle);
      return handle;
    });
    await nodeFs.syncDir(dir);
    failSync = true;
    await expect(nodeFs.syncDir(dir)).rejects.toMatchObject({ code: 'EIO' });
    expect(vi.mocked(fs.promises.open).mock.calls).toEqual([
      [dir, 'r'],
      [dir, 'r'],
    ]);
    for (const handle of handles) {
      expect(handle.sync).toHaveBeenCalledTimes(1);
      expect(handle.close).toHaveBeenCalledTimes(1);
    }
  });

  it('refuses a directory that does not exist', async () => {
    await expect(nodeFs.syncDir(path.join(await scratch(), 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
