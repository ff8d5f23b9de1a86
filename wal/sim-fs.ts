/**
 * A simulated file system with crash semantics, for the power-loss and fsync-failure
 * tests (and anyone who wants to drive the file WAL deterministically).
 *
 * What it models:
 * - Per file, durable bytes (as of the last datasync/sync) and volatile bytes (what reads
 *   see). Writes since the last sync are pending; a crash keeps all, none, an ordered prefix
 *   torn at a 512- or 4096-byte boundary, or a random scatter of sectors (page writeback is
 *   not ordered) of them.
 * - Per directory, durable entries (as of the last syncDir) and current entries. A crash keeps
 *   none, all, or an ordered prefix of the entry changes since the last syncDir, so a new file
 *   whose directory was never synced can disappear.
 * - Injected sync failures the way Linux reports them: the pending writes are dropped (the
 *   page cache still shows them, the disk never gets them) and the next sync succeeds.
 *
 * Directories made with `mkdir` are durable at once. Everything is synchronous underneath and
 * deterministic: the only randomness is the `random` function given to the constructor.
 */
import { posix as path } from 'node:path';
import type { OpenMode, WalFile, WalFs } from './fs.ts';

export type DataCrashMode = 'lose' | 'keep' | 'prefix' | 'scatter';
export type DirCrashMode = 'lose' | 'keep' | 'prefix';

export interface CrashOptions {
  /** What happens to file writes since the last sync. Default 'prefix'. */
  readonly data?: DataCrashMode;
  /** What happens to directory changes since the last syncDir. Default 'prefix'. */
  readonly dir?: DirCrashMode;
  /** The unit torn writes and scattered writeback use; random between 512 and 4096 when unset. */
  readonly sectorBytes?: 512 | 4096;
}

export interface SimSyncEvent {
  /** 1 for the first sync of any kind on this file system, then +1. */
  readonly seq: number;
  readonly kind: 'datasync' | 'sync' | 'dir';
  readonly path: string;
}

export interface SimWriteEvent {
  readonly seq: number;
  readonly path: string;
  readonly position: number;
  readonly bytes: number;
}

export interface SimFsFaults {
  /** Return an Error to fail this sync, Linux style: the pending data is dropped and forgotten. */
  sync?(event: SimSyncEvent): Error | undefined;
  /** Return an Error to fail this write; nothing is written. */
  write?(event: SimWriteEvent): Error | undefined;
}

export interface SimFsStats {
  writes: number;
  datasyncs: number;
  syncs: number;
  dirSyncs: number;
}

export const ioError = (code: string, message: string): Error => Object.assign(new Error(`${code}: ${message}`), { code });

/** A growable byte array with a size. */
class Bytes {
  constructor(
    public data: Uint8Array = new Uint8Array(0),
    public size = 0,
  ) {}

  clone(): Bytes {
    return new Bytes(this.data.slice(0, this.size), this.size);
  }

  private ensure(capacity: number): void {
    if (capacity <= this.data.length) return;
    const next = new Uint8Array(Math.max(capacity, this.data.length * 2, 256));
    next.set(this.data.subarray(0, this.size));
    this.data = next;
  }

  write(position: number, source: Uint8Array): void {
    this.ensure(position + source.length);
    // Bytes between the old end and `position` are zero: they were zeroed on truncate, or are new.
    this.data.set(source, position);
    this.size = Math.max(this.size, position + source.length);
  }

  truncate(size: number): void {
    if (size < this.size) this.data.fill(0, size, this.size);
    else this.ensure(size);
    this.size = size;
  }

  read(position: number, target: Uint8Array): number {
    if (position >= this.size) return 0;
    const count = Math.min(target.length, this.size - position);
    target.set(this.data.subarray(position, position + count));
    return count;
  }

  view(): Uint8Array {
    return this.data.subarray(0, this.size);
  }
}

type PendingWrite = { readonly kind: 'write'; readonly position: number; readonly data: Uint8Array } | { readonly kind: 'truncate'; readonly size: number };

class Inode {
  constructor(
    public current = new Bytes(),
    public durable = new Bytes(),
    public pending: PendingWrite[] = [],
  ) {}
}

type DirOp = { readonly kind: 'link'; readonly name: string; readonly inode: Inode } | { readonly kind: 'unlink'; readonly name: string } | { readonly kind: 'rename'; readonly from: string; readonly to: string };

class Dir {
  constructor(
    public entries = new Map<string, Inode>(),
    public durable = new Map<string, Inode>(),
    public pending: DirOp[] = [],
  ) {}
}

function applyWrite(bytes: Bytes, op: PendingWrite): void {
  if (op.kind === 'write') bytes.write(op.position, op.data);
  else bytes.truncate(op.size);
}

function applyDirOp(entries: Map<string, Inode>, op: DirOp): void {
  if (op.kind === 'link') entries.set(op.name, op.inode);
  else if (op.kind === 'unlink') entries.delete(op.name);
  else {
    const inode = entries.get(op.from);
    entries.delete(op.from);
    if (inode) entries.set(op.to, inode);
  }
}

class SimFile implements WalFile {
  private closed = false;
  constructor(
    private readonly fs: SimFs,
    readonly path: string,
    private readonly inode: Inode,
    private readonly epoch: number,
    private readonly writable: boolean,
  ) {}

  private check(op: string, write = false): void {
    if (this.closed || this.epoch !== this.fs.epoch) throw ioError('EBADF', `${op} on a closed or crashed handle of ${this.path}`);
    if (write && !this.writable) throw ioError('EBADF', `${op} on a read-only handle of ${this.path}`);
  }

  read(buffer: Uint8Array, position: number): Promise<number> {
    return this.fs.deliver(() => {
      this.check('read');
      return this.inode.current.read(position, buffer);
    });
  }

  writev(buffers: readonly Uint8Array[], position: number): Promise<void> {
    return this.fs.deliver(() => this.writevSync(buffers, position));
  }

  writevSync(buffers: readonly Uint8Array[], position: number): void {
    {
      this.check('write', true);
      let bytes = 0;
      for (const buffer of buffers) bytes += buffer.length;
      const event: SimWriteEvent = { seq: ++this.fs.writeSeq, path: this.path, position, bytes };
      this.fs.stats.writes++;
      const error = this.fs.faults.write?.(event);
      if (error) throw this.fs.injected(error);
      for (const buffer of buffers) {
        const op: PendingWrite = { kind: 'write', position, data: copyOf(buffer) };
        this.inode.current.write(position, op.data);
        this.inode.pending.push(op);
        position += buffer.length;
      }
    }
  }

  datasync(): Promise<void> {
    return this.fs.deliver(() => {
      this.check('fdatasync');
      this.fs.syncInode(this.inode, 'datasync', this.path);
    });
  }

  sync(): Promise<void> {
    return this.fs.deliver(() => {
      this.check('fsync');
      this.fs.syncInode(this.inode, 'sync', this.path);
    });
  }

  truncate(bytes: number): Promise<void> {
    return this.fs.deliver(() => {
      this.check('ftruncate', true);
      this.inode.current.truncate(bytes);
      this.inode.pending.push({ kind: 'truncate', size: bytes });
    });
  }

  size(): Promise<number> {
    return this.fs.deliver(() => {
      this.check('fstat');
      return this.inode.current.size;
    });
  }

  close(): Promise<void> {
    return this.fs.deliver(() => {
      this.check('close');
      this.closed = true;
    });
  }
}

export class SimFs implements WalFs {
  /** Bumped by every crash: handles from before it fail with EBADF, as a dead process's would. */
  epoch = 0;
  writeSeq = 0;
  syncSeq = 0;
  faults: SimFsFaults = {};
  /** Called at every sync boundary, before the sync takes effect; tests snapshot with `clone()` here. */
  onSync: ((event: SimSyncEvent) => void) | undefined;
  /** Called when an injected fault is delivered to the caller (the failed call completes). */
  onFaultDelivered: ((error: Error) => void) | undefined;
  readonly stats: SimFsStats = { writes: 0, datasyncs: 0, syncs: 0, dirSyncs: 0 };
  private dirs = new Map<string, Dir>();
  private readonly injectedErrors = new WeakSet<Error>();
  private readonly settle: 'microtask' | 'immediate';

  /**
   * `settle`: when calls complete. 'microtask' (default) is fastest; 'immediate' completes each
   * call in its own macrotask, as real I/O completions arrive one libuv callback at a time, so
   * that tests can tell what happened before a completion from what happened after it.
   */
  constructor(
    private readonly random: () => number,
    options: { readonly settle?: 'microtask' | 'immediate' } = {},
  ) {
    this.settle = options.settle ?? 'microtask';
    this.dirs.set('/', new Dir());
  }

  /** @internal Runs `op` now and completes the call as `settle` says. */
  async deliver<T>(op: () => T): Promise<T> {
    let result: T | undefined;
    let failure: { error: unknown } | undefined;
    try {
      result = op();
    } catch (error) {
      failure = { error };
    }
    if (this.settle === 'immediate') await new Promise<void>((resolve) => setImmediate(resolve));
    if (failure) {
      if (failure.error instanceof Error && this.injectedErrors.has(failure.error)) this.onFaultDelivered?.(failure.error);
      throw failure.error;
    }
    return result as T;
  }

  /** @internal Marks an error as injected by `faults`. */
  injected(error: Error): Error {
    this.injectedErrors.add(error);
    return error;
  }

  // ------------------------------------------------------------ WalFs

  open(file: string, mode: OpenMode): Promise<WalFile> {
    return this.deliver(() => this.openNow(file, mode));
  }

  private openNow(file: string, mode: OpenMode): WalFile {
    const { dir, name, full } = this.locate(file);
    let inode = dir.entries.get(name);
    if (mode === 'create') {
      if (inode) throw ioError('EEXIST', `file already exists, open '${full}'`);
      inode = new Inode();
      dir.entries.set(name, inode);
      dir.pending.push({ kind: 'link', name, inode });
    } else if (!inode) {
      throw ioError('ENOENT', `no such file, open '${full}'`);
    }
    return new SimFile(this, full, inode, this.epoch, mode !== 'read');
  }

  readdir(dirPath: string): Promise<string[]> {
    return this.deliver(() => this.readdirNow(dirPath));
  }

  private readdirNow(dirPath: string): string[] {
    const dir = this.dirs.get(normalize(dirPath));
    if (!dir) throw ioError('ENOENT', `no such directory, scandir '${dirPath}'`);
    return [...dir.entries.keys()].sort();
  }

  mkdir(dirPath: string): Promise<void> {
    return this.deliver(() => this.mkdirNow(dirPath));
  }

  private mkdirNow(dirPath: string): void {
    let at = normalize(dirPath);
    const missing: string[] = [];
    while (!this.dirs.has(at)) {
      missing.push(at);
      at = path.dirname(at);
    }
    for (const created of missing) this.dirs.set(created, new Dir());
  }

  rename(from: string, to: string): Promise<void> {
    return this.deliver(() => this.renameNow(from, to));
  }

  private renameNow(from: string, to: string): void {
    const source = this.locate(from);
    const target = this.locate(to);
    const inode = source.dir.entries.get(source.name);
    if (!inode) throw ioError('ENOENT', `no such file, rename '${source.full}'`);
    if (source.dir === target.dir) {
      const op: DirOp = { kind: 'rename', from: source.name, to: target.name };
      applyDirOp(source.dir.entries, op);
      source.dir.pending.push(op);
      return;
    }
    target.dir.entries.set(target.name, inode);
    target.dir.pending.push({ kind: 'link', name: target.name, inode });
    source.dir.entries.delete(source.name);
    source.dir.pending.push({ kind: 'unlink', name: source.name });
  }

  unlink(file: string): Promise<void> {
    return this.deliver(() => this.unlinkNow(file));
  }

  private unlinkNow(file: string): void {
    const { dir, name, full } = this.locate(file);
    if (!dir.entries.has(name)) throw ioError('ENOENT', `no such file, unlink '${full}'`);
    dir.entries.delete(name);
    dir.pending.push({ kind: 'unlink', name });
  }

  syncDir(dirPath: string): Promise<void> {
    return this.deliver(() => this.syncDirNow(dirPath));
  }

  private syncDirNow(dirPath: string): void {
    const full = normalize(dirPath);
    const dir = this.dirs.get(full);
    if (!dir) throw ioError('ENOENT', `no such directory, open '${dirPath}'`);
    const event: SimSyncEvent = { seq: ++this.syncSeq, kind: 'dir', path: full };
    this.stats.dirSyncs++;
    this.onSync?.(event);
    const error = this.faults.sync?.(event);
    if (error) {
      dir.pending = [];
      throw this.injected(error);
    }
    dir.durable = new Map(dir.entries);
    dir.pending = [];
  }

  /** @internal Used by SimFile. */
  syncInode(inode: Inode, kind: 'datasync' | 'sync', file: string): void {
    const event: SimSyncEvent = { seq: ++this.syncSeq, kind, path: file };
    if (kind === 'datasync') this.stats.datasyncs++;
    else this.stats.syncs++;
    this.onSync?.(event);
    const error = this.faults.sync?.(event);
    // Linux marks the pages clean after a failed writeback: the data stays visible in the
    // page cache but will never reach the disk, and the next fsync has nothing to report.
    const pending = inode.pending;
    inode.pending = [];
    if (error) throw this.injected(error);
    for (const op of pending) applyWrite(inode.durable, op);
  }

  // ------------------------------------------------------------ crash and inspection

  /**
   * Simulates power loss: every directory and file is reduced to what the disk may hold, as
   * `options` says, and every open handle becomes unusable.
   */
  crash(options: CrashOptions = {}): void {
    const dataMode = options.data ?? 'prefix';
    const dirMode = options.dir ?? 'prefix';
    this.epoch++;
    const survivors = new Set<Inode>();
    for (const dir of this.dirs.values()) {
      const entries = new Map(dir.durable);
      const ops = dir.pending;
      const keep = dirMode === 'keep' ? ops.length : dirMode === 'lose' ? 0 : this.randomInt(ops.length + 1);
      for (const op of ops.slice(0, keep)) applyDirOp(entries, op);
      dir.entries = entries;
      dir.durable = new Map(entries);
      dir.pending = [];
      for (const inode of entries.values()) survivors.add(inode);
    }
    for (const inode of survivors) {
      const after = this.crashBytes(inode, dataMode, options.sectorBytes ?? (this.random() < 0.5 ? 512 : 4096));
      inode.durable = after;
      inode.current = after.clone();
      inode.pending = [];
    }
  }

  private crashBytes(inode: Inode, mode: DataCrashMode, sectorBytes: number): Bytes {
    const ops = inode.pending;
    const result = inode.durable.clone();
    if (ops.length === 0 || mode === 'lose') return result;
    if (mode === 'keep') {
      for (const op of ops) applyWrite(result, op);
      return result;
    }
    if (mode === 'prefix') {
      const kept = this.randomInt(ops.length + 1);
      for (const op of ops.slice(0, kept)) applyWrite(result, op);
      const torn = ops[kept];
      if (torn?.kind === 'write') {
        // The write in flight lands up to some sector boundary inside it, or not at all.
        const end = torn.position + torn.data.length;
        const first = (Math.floor(torn.position / sectorBytes) + 1) * sectorBytes;
        const boundaries = first < end ? Math.floor((end - 1 - first) / sectorBytes) + 1 : 0;
        if (boundaries > 0) {
          const cut = first + this.randomInt(boundaries) * sectorBytes;
          result.write(torn.position, torn.data.subarray(0, cut - torn.position));
        }
      }
      return result;
    }
    // Scatter: any sector written since the last sync may or may not have reached the disk.
    const final = inode.durable.clone();
    const sectors = new Set<number>();
    for (const op of ops) {
      applyWrite(final, op);
      if (op.kind === 'write') {
        for (let s = Math.floor(op.position / sectorBytes); s * sectorBytes < op.position + op.data.length; s++) sectors.add(s);
      }
    }
    result.truncate(this.random() < 0.5 ? final.size : result.size);
    for (const s of [...sectors].sort((a, b) => a - b)) {
      if (this.random() < 0.5) continue;
      const start = s * sectorBytes;
      const end = Math.min((s + 1) * sectorBytes, final.size, result.size);
      if (start < end) result.write(start, final.data.subarray(start, end));
    }
    return result;
  }

  /** A deep copy of the durable and volatile state (no handles, hooks or faults). */
  clone(random: () => number = this.random): SimFs {
    const copy = new SimFs(random, { settle: this.settle });
    const inodes = new Map<Inode, Inode>();
    const copyInode = (inode: Inode): Inode => {
      let twin = inodes.get(inode);
      if (!twin) {
        twin = new Inode(inode.current.clone(), inode.durable.clone(), inode.pending.slice());
        inodes.set(inode, twin);
      }
      return twin;
    };
    const copyEntries = (entries: Map<string, Inode>) => new Map([...entries].map(([name, inode]) => [name, copyInode(inode)] as const));
    copy.dirs = new Map();
    for (const [dirPath, dir] of this.dirs) {
      const pending = dir.pending.map((op): DirOp => (op.kind === 'link' ? { ...op, inode: copyInode(op.inode) } : op));
      copy.dirs.set(dirPath, new Dir(copyEntries(dir.entries), copyEntries(dir.durable), pending));
    }
    return copy;
  }

  /** The bytes a read sees now (a copy); undefined when there is no such file. */
  readFile(file: string): Uint8Array | undefined {
    const { dir, name } = this.locate(file);
    const inode = dir.entries.get(name);
    return inode ? copyOf(inode.current.view()) : undefined;
  }

  /** Replaces a file's bytes on "disk" (durable and volatile), as a test that corrupts or cuts a file. */
  setFile(file: string, bytes: Uint8Array): void {
    const { dir, name } = this.locate(file);
    const inode = dir.entries.get(name) ?? new Inode();
    inode.current = new Bytes(copyOf(bytes), bytes.length);
    inode.durable = new Bytes(copyOf(bytes), bytes.length);
    inode.pending = [];
    dir.entries.set(name, inode);
    dir.durable.set(name, inode);
  }

  /** Removes a file on "disk" at once, durable included. */
  removeFile(file: string): void {
    const { dir, name } = this.locate(file);
    dir.entries.delete(name);
    dir.durable.delete(name);
  }

  private locate(file: string): { dir: Dir; name: string; full: string } {
    const full = normalize(file);
    const dirPath = path.dirname(full);
    const dir = this.dirs.get(dirPath);
    if (!dir) throw ioError('ENOENT', `no such directory '${dirPath}'`);
    return { dir, name: path.basename(full), full };
  }

  private randomInt(bound: number): number {
    return Math.min(bound - 1, Math.floor(this.random() * bound));
  }
}

/**
 * A copy of the bytes. Not `.slice()`: on a Buffer that returns a view, and the writer reuses
 * its staging buffers, so a "copy" that is a view would change under the simulated disk.
 */
const copyOf = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes);

/** An absolute path without a trailing slash (`resolve` drops it), so that `/d/` and `d` name `/d`. */
function normalize(file: string): string {
  return path.resolve('/', file);
}
