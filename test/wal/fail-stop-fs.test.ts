/**
 * The fail-stop wrapper on its own, against a file system that records every call: the first
 * error is reported once, every later call is refused without reaching the disk (a failed
 * fsync is never retried), and closing a file stays allowed.
 */
import { describe, expect, it } from 'vitest';
import { failStopFs } from '../../wal/fail-stop-fs.ts';
import type { OpenMode, WalFile, WalFs } from '../../wal/fs.ts';

/** A file system that records each call and fails the ones `failing` names. */
class RecordingFs implements WalFs {
  readonly calls: string[] = [];
  /** Calls to fail, by name, each with its error (`eio` when added with `add`). */
  readonly failing = new Map<string, Error>();
  readonly eio = Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
  fail(name: string, error: Error = this.eio): void {
    this.failing.set(name, error);
  }
  withSyncWrites = true;

  private op<T>(name: string, value: T): Promise<T> {
    this.calls.push(name);
    const error = this.failing.get(name);
    return error ? Promise.reject(error) : Promise.resolve(value);
  }

  file(path: string): WalFile {
    const file: WalFile = {
      path,
      read: (buffer, position) => this.op(`read ${path} ${buffer.length}@${position}`, 3),
      writev: (buffers, position) => this.op(`writev ${path} ${buffers.length}@${position}`, undefined),
      datasync: () => this.op(`datasync ${path}`, undefined),
      sync: () => this.op(`sync ${path}`, undefined),
      truncate: (bytes) => this.op(`truncate ${path} ${bytes}`, undefined),
      size: () => this.op(`size ${path}`, 42),
      close: () => this.op(`close ${path}`, undefined),
    };
    if (!this.withSyncWrites) return file;
    return {
      ...file,
      writevSync: (buffers, position) => {
        const name = `writevSync ${path} ${buffers.length}@${position}`;
        this.calls.push(name);
        const error = this.failing.get(name);
        if (error) throw error;
      },
      datasyncSync: () => {
        const name = `datasyncSync ${path}`;
        this.calls.push(name);
        const error = this.failing.get(name);
        if (error) throw error;
      },
    };
  }

  open(path: string, mode: OpenMode): Promise<WalFile> {
    return this.op(`open ${path} ${mode}`, this.file(path));
  }
  readdir(dir: string): Promise<string[]> {
    return this.op(`readdir ${dir}`, ['a', 'b']);
  }
  mkdir(dir: string): Promise<void> {
    return this.op(`mkdir ${dir}`, undefined);
  }
  rename(from: string, to: string): Promise<void> {
    return this.op(`rename ${from} ${to}`, undefined);
  }
  unlink(path: string): Promise<void> {
    return this.op(`unlink ${path}`, undefined);
  }
  syncDir(dir: string): Promise<void> {
    return this.op(`syncDir ${dir}`, undefined);
  }
}

function setUp(withSyncWrites = true) {
  const inner = new RecordingFs();
  inner.withSyncWrites = withSyncWrites;
  const errors: unknown[] = [];
  const fs = failStopFs(inner, (error) => errors.push(error));
  return { inner, errors, fs };
}

describe('failStopFs', () => {
  it('passes every call and its arguments through while nothing has failed', async () => {
    const { inner, errors, fs } = setUp();
    const file = await fs.open('/d/f', 'create');
    expect(file.path).toBe('/d/f');
    expect(await file.read(new Uint8Array(5), 7)).toBe(3);
    await file.writev([new Uint8Array(1), new Uint8Array(2)], 9);
    file.writevSync?.([new Uint8Array(1)], 11);
    await file.datasync();
    await file.sync();
    await file.truncate(13);
    expect(await file.size()).toBe(42);
    expect(await fs.readdir('/d')).toEqual(['a', 'b']);
    await fs.mkdir('/e');
    await fs.rename('/d/a', '/d/b');
    await fs.unlink('/d/b');
    await fs.syncDir('/d');
    await file.close();
    expect(inner.calls).toEqual([
      'open /d/f create',
      'read /d/f 5@7',
      'writev /d/f 2@9',
      'writevSync /d/f 1@11',
      'datasync /d/f',
      'sync /d/f',
      'truncate /d/f 13',
      'size /d/f',
      'readdir /d',
      'mkdir /e',
      'rename /d/a /d/b',
      'unlink /d/b',
      'syncDir /d',
      'close /d/f',
    ]);
    expect(errors).toEqual([]);
  });

  it('reports the first error once, then refuses every call but close without touching the disk', async () => {
    const { inner, errors, fs } = setUp();
    const file = await fs.open('/d/f', 'readwrite');
    inner.fail('datasync /d/f');
    await expect(file.datasync()).rejects.toBe(inner.eio);
    expect(errors).toEqual([inner.eio]);
    const before = inner.calls.length;
    // A failed fsync is never retried: the second one is refused here.
    await expect(file.datasync()).rejects.toBe(inner.eio);
    await expect(file.sync()).rejects.toBe(inner.eio);
    await expect(file.read(new Uint8Array(1), 0)).rejects.toBe(inner.eio);
    await expect(file.writev([], 0)).rejects.toBe(inner.eio);
    expect(() => file.writevSync?.([], 0)).toThrow(inner.eio);
    expect(() => file.datasyncSync?.()).toThrow(inner.eio);
    await expect(file.truncate(0)).rejects.toBe(inner.eio);
    await expect(file.size()).rejects.toBe(inner.eio);
    await expect(fs.open('/d/g', 'create')).rejects.toBe(inner.eio);
    await expect(fs.readdir('/d')).rejects.toBe(inner.eio);
    await expect(fs.mkdir('/d')).rejects.toBe(inner.eio);
    await expect(fs.rename('/d/f', '/d/g')).rejects.toBe(inner.eio);
    await expect(fs.unlink('/d/f')).rejects.toBe(inner.eio);
    await expect(fs.syncDir('/d')).rejects.toBe(inner.eio);
    expect(inner.calls.slice(before)).toEqual([]);
    await file.close();
    expect(inner.calls.slice(before)).toEqual(['close /d/f']);
    expect(errors).toHaveLength(1);
  });

  it('reports only the first of two failures in flight, and refuses later calls with the first error', async () => {
    const { inner, errors, fs } = setUp();
    const file = await fs.open('/d/f', 'readwrite');
    const second = Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' });
    inner.fail('datasync /d/f');
    inner.fail('rename /a /b', second);
    // Both calls reach the disk before either has failed; the second fails with another error.
    const first = file.datasync();
    const renamed = fs.rename('/a', '/b');
    await expect(first).rejects.toBe(inner.eio);
    await expect(renamed).rejects.toBe(second);
    expect(errors).toEqual([inner.eio]);
    await expect(fs.unlink('/x')).rejects.toBe(inner.eio);
  });

  it('fails stop on a synchronous write too, and reports a synchronous failure only once', async () => {
    const { inner, errors, fs } = setUp();
    const file = await fs.open('/d/f', 'readwrite');
    inner.fail('writevSync /d/f 1@0');
    expect(() => file.writevSync?.([new Uint8Array(1)], 0)).toThrow(inner.eio);
    expect(errors).toEqual([inner.eio]);
    const before = inner.calls.length;
    expect(() => file.writevSync?.([new Uint8Array(1)], 0)).toThrow(inner.eio);
    await expect(file.datasync()).rejects.toBe(inner.eio);
    expect(inner.calls.length).toBe(before);
    expect(errors).toHaveLength(1);
  });

  it('fails stop on a blocking fdatasync, and never retries it', async () => {
    const { inner, errors, fs } = setUp();
    const file = await fs.open('/d/f', 'readwrite');
    file.datasyncSync?.();
    inner.fail('datasyncSync /d/f');
    expect(() => file.datasyncSync?.()).toThrow(inner.eio);
    expect(errors).toEqual([inner.eio]);
    const before = inner.calls.length;
    expect(() => file.datasyncSync?.()).toThrow(inner.eio);
    await expect(file.datasync()).rejects.toBe(inner.eio);
    expect(inner.calls.slice(before)).toEqual([]);
    expect(inner.calls.filter((c) => c.startsWith('datasyncSync'))).toEqual(['datasyncSync /d/f', 'datasyncSync /d/f']);
    expect(errors).toHaveLength(1);
  });

  it('reports a synchronous failure after an asynchronous one only once', async () => {
    const { inner, errors, fs } = setUp();
    const a = await fs.open('/d/a', 'readwrite');
    const b = await fs.open('/d/b', 'readwrite');
    inner.fail('datasync /d/a');
    const pending = a.datasync();
    inner.fail('writevSync /d/b 0@0');
    // The synchronous failure comes first here; the asynchronous one must not be reported after it.
    expect(() => b.writevSync?.([], 0)).toThrow(inner.eio);
    await expect(pending).rejects.toBe(inner.eio);
    expect(errors).toHaveLength(1);
  });

  it('offers a synchronous write only where the file has one', async () => {
    const { fs } = setUp(false);
    const file = await fs.open('/d/f', 'read');
    expect(file.writevSync).toBeUndefined();
    expect('writevSync' in file).toBe(false);
    expect('datasyncSync' in file).toBe(false);
  });

  it('wraps files opened elsewhere so that they fail stop too', async () => {
    const { inner, errors, fs } = setUp();
    const file = fs.wrap(inner.file('/d/r'));
    expect(file.path).toBe('/d/r');
    inner.fail('read /d/r 1@0');
    await expect(file.read(new Uint8Array(1), 0)).rejects.toBe(inner.eio);
    expect(errors).toEqual([inner.eio]);
    await expect(fs.syncDir('/d')).rejects.toBe(inner.eio);
  });

  it('fails stop when an open fails, and the file it opened before still closes', async () => {
    const { inner, errors, fs } = setUp();
    const file = await fs.open('/d/f', 'create');
    inner.fail('open /d/g create');
    await expect(fs.open('/d/g', 'create')).rejects.toBe(inner.eio);
    expect(errors).toEqual([inner.eio]);
    await expect(file.size()).rejects.toBe(inner.eio);
    await expect(file.close()).resolves.toBeUndefined();
    expect(inner.calls.at(-1)).toBe('close /d/f');
  });
});
