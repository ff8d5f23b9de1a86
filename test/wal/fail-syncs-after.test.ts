/**
 * `failSyncsAfter`, the fsync fault injection behind `--chaos` (shared/fsync-fault.ts), in
 * process against a file system that records every call: it lets exactly n file syncs through
 * (counted across every file it opened), fails every later one with an EIO that names the call,
 * and passes everything else through with its arguments and results, the blocking write and
 * the directory lock only where the wrapped file system has them. (The real-disk run of the
 * same wrapper is test/scenarios/fsync-fault.test.ts, outside the mutation set.)
 */
import { describe, expect, it } from 'vitest';
import type { DirLock, DirLockOptions } from '../../wal/dir-lock.ts';
import { failSyncsAfter } from '../../wal/fs.ts';
import type { OpenMode, WalFile, WalFs } from '../../wal/fs.ts';

/** A file system that records each call with its arguments and answers with a value naming it. */
class RecordingFs implements WalFs {
  readonly calls: string[] = [];
  constructor(private readonly withExtras: boolean) {
    if (withExtras) this.lock = (dir: string, options: DirLockOptions) => this.record(`lock ${dir} ${options.owner ?? ''}`, { dir } as DirLock);
  }
  lock?: (dir: string, options: DirLockOptions) => Promise<DirLock>;

  private record<T>(call: string, value: T): Promise<T> {
    this.calls.push(call);
    return Promise.resolve(value);
  }

  private file(path: string): WalFile {
    const file: WalFile = {
      path,
      read: (buffer, position) => this.record(`read ${path} ${buffer.length}@${position}`, 7),
      writev: (buffers, position) => this.record(`writev ${path} ${buffers.length}@${position}`, undefined),
      datasync: () => this.record(`datasync ${path}`, undefined),
      sync: () => this.record(`sync ${path}`, undefined),
      truncate: (bytes) => this.record(`truncate ${path} ${bytes}`, undefined),
      size: () => this.record(`size ${path}`, 42),
      close: () => this.record(`close ${path}`, undefined),
    };
    if (!this.withExtras) return file;
    return {
      ...file,
      writevSync: (buffers, position) => void this.calls.push(`writevSync ${path} ${buffers.length}@${position}`),
      datasyncSync: () => void this.calls.push(`datasyncSync ${path}`),
    };
  }

  open(path: string, mode: OpenMode): Promise<WalFile> {
    return this.record(`open ${path} ${mode}`, this.file(path));
  }
  readdir(dir: string): Promise<string[]> {
    return this.record(`readdir ${dir}`, ['a', 'b']);
  }
  mkdir(dir: string): Promise<void> {
    return this.record(`mkdir ${dir}`, undefined);
  }
  rename(from: string, to: string): Promise<void> {
    return this.record(`rename ${from} ${to}`, undefined);
  }
  unlink(path: string): Promise<void> {
    return this.record(`unlink ${path}`, undefined);
  }
  syncDir(dir: string): Promise<void> {
    return this.record(`syncDir ${dir}`, undefined);
  }
}

const eio = (syscall: string, path: string, syncsOk: number) => ({
  message: `EIO: i/o error, ${syscall} '${path}' (injected after ${syncsOk} syncs)`,
  code: 'EIO',
  errno: -5,
  syscall,
  path,
});

describe('failSyncsAfter', () => {
  it('lets exactly n file syncs through, counted across files, then fails every later one with an EIO naming the call', async () => {
    const inner = new RecordingFs(false);
    const fs = failSyncsAfter(inner, 2);
    const a = await fs.open('/d/a', 'create');
    const b = await fs.open('/d/b', 'readwrite');
    await a.datasync();
    await b.sync();
    await expect(a.sync()).rejects.toMatchObject(eio('fsync', '/d/a', 2));
    await expect(b.datasync()).rejects.toMatchObject(eio('fdatasync', '/d/b', 2));
    // The failed ones never reached the disk; the directory sync is not a file sync and passes.
    await fs.syncDir('/d');
    expect(inner.calls).toEqual(['open /d/a create', 'open /d/b readwrite', 'datasync /d/a', 'sync /d/b', 'syncDir /d']);
  });

  it('counts the blocking fdatasync with the others, and fails it the same way once they are spent', async () => {
    const inner = new RecordingFs(true);
    const fs = failSyncsAfter(inner, 2);
    const a = await fs.open('/d/a', 'create');
    a.datasyncSync?.();
    await a.datasync();
    expect(() => a.datasyncSync?.()).toThrow(expect.objectContaining(eio('fdatasync', '/d/a', 2)));
    await expect(a.datasync()).rejects.toMatchObject(eio('fdatasync', '/d/a', 2));
    expect(inner.calls).toEqual(['open /d/a create', 'datasyncSync /d/a', 'datasync /d/a']);
  });

  it('fails the very first sync when n is 0', async () => {
    const file = await failSyncsAfter(new RecordingFs(false), 0).open('/d/a', 'create');
    await expect(file.datasync()).rejects.toMatchObject(eio('fdatasync', '/d/a', 0));
  });

  it('passes every other call through with its arguments and results', async () => {
    const inner = new RecordingFs(true);
    const fs = failSyncsAfter(inner, 0);
    const file = await fs.open('/d/f', 'read');
    expect(file.path).toBe('/d/f');
    expect(await file.read(new Uint8Array(5), 3)).toBe(7);
    await file.writev([new Uint8Array(1), new Uint8Array(2)], 9);
    file.writevSync?.([new Uint8Array(1)], 4);
    await file.truncate(11);
    expect(await file.size()).toBe(42);
    await file.close();
    expect(await fs.readdir('/d')).toEqual(['a', 'b']);
    await fs.mkdir('/e');
    await fs.rename('/d/f', '/d/g');
    await fs.unlink('/d/g');
    expect(await fs.lock?.('/d', { owner: 'participant p1' })).toEqual({ dir: '/d' });
    expect(inner.calls).toEqual([
      'open /d/f read',
      'read /d/f 5@3',
      'writev /d/f 2@9',
      'writevSync /d/f 1@4',
      'truncate /d/f 11',
      'size /d/f',
      'close /d/f',
      'readdir /d',
      'mkdir /e',
      'rename /d/f /d/g',
      'unlink /d/g',
      'lock /d participant p1',
    ]);
  });

  it('offers the blocking write and the directory lock only where the wrapped file system has them', async () => {
    const plain = failSyncsAfter(new RecordingFs(false), 1);
    expect('lock' in plain).toBe(false);
    expect('writevSync' in (await plain.open('/d/f', 'read'))).toBe(false);
    expect('datasyncSync' in (await plain.open('/d/f', 'read'))).toBe(false);
    const full = failSyncsAfter(new RecordingFs(true), 1);
    expect(typeof full.lock).toBe('function');
    expect(typeof (await full.open('/d/f', 'read')).writevSync).toBe('function');
    expect(typeof (await full.open('/d/f', 'read')).datasyncSync).toBe('function');
  });

  it('refuses a count that is not a non-negative integer, naming it', () => {
    const inner = new RecordingFs(false);
    expect(() => failSyncsAfter(inner, -1)).toThrow(new RangeError('Expected `syncsOk` to be a non-negative integer, got -1.'));
    expect(() => failSyncsAfter(inner, 1.5)).toThrow(new RangeError('Expected `syncsOk` to be a non-negative integer, got 1.5.'));
    expect(() => failSyncsAfter(inner, 0)).not.toThrow();
  });
});
