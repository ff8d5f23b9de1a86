/**
 * The file-system port: the handful of calls the WAL makes, so that the same log code
 * runs on the real disk (`nodeFs`) and on the simulated disk with crash semantics
 * (wal/sim-fs.ts) that the power-loss tests drive.
 *
 * Contract, for both implementations:
 * - `writev` writes every byte or rejects; `read` may return fewer bytes only at end of file.
 * - `datasync`/`sync` make the file's bytes durable, not its directory entry.
 * - A created, renamed or deleted name is durable only after `syncDir` of its directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { acquireDirLock, type DirLock, type DirLockOptions } from './dir-lock.ts';

export type OpenMode =
  /** Read only; the file must exist. */
  | 'read'
  /** Read and write; the file must exist. */
  | 'readwrite'
  /** Read and write; the file must not exist yet (O_CREAT | O_EXCL). */
  | 'create';

export interface WalFile {
  readonly path: string;
  /** Reads up to `buffer.length` bytes at `position`; returns how many were read. */
  read(buffer: Uint8Array, position: number): Promise<number>;
  /** Writes all `buffers`, one after another, starting at `position`. */
  writev(buffers: readonly Uint8Array[], position: number): Promise<void>;
  /**
   * The same, blocking, for small writes that only copy into the page cache: it saves the
   * thread-pool round trip that `writev` costs. Optional; callers fall back to `writev`.
   */
  writevSync?(buffers: readonly Uint8Array[], position: number): void;
  /** fdatasync(2). */
  datasync(): Promise<void>;
  /**
   * fdatasync(2), blocking: it saves the thread-pool round trip that `datasync` costs, and holds
   * the event loop for as long as the disk takes. Optional; the log calls it only while its syncs
   * are short (`blockingSyncMsMax`, wal/options.ts) and otherwise calls `datasync`.
   */
  datasyncSync?(): void;
  /** fsync(2): also makes the size and other metadata durable. */
  sync(): Promise<void>;
  truncate(bytes: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface WalFs {
  open(path: string, mode: OpenMode): Promise<WalFile>;
  /** Names in `dir` (not paths); rejects with code ENOENT when it does not exist. */
  readdir(dir: string): Promise<string[]>;
  /** Creates `dir` and missing parents; fine when it exists. */
  mkdir(dir: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** fsync(2) of the directory itself, which makes its entries durable. */
  syncDir(dir: string): Promise<void>;
  /**
   * Takes `dir` (which exists) for this process alone, or rejects with WAL_LOCKED naming its
   * holder (wal/dir-lock.ts). Only a real file system has one; a simulated disk's processes
   * are simulated too, and opening a log on a file system without it takes no lock.
   */
  lock?(dir: string, options: DirLockOptions): Promise<DirLock>;
}

const FLAGS: Record<OpenMode, string> = { read: 'r', readwrite: 'r+', create: 'wx+' };

/**
 * The real file system through node's callback API. Callbacks, not `fs.promises`, because a
 * FileHandle operation costs noticeably more per call and the writer makes two per batch.
 */
class NodeFile implements WalFile {
  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  read(buffer: Uint8Array, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      fs.read(this.fd, buffer, 0, buffer.length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead)));
    });
  }

  writev(buffers: readonly Uint8Array[], position: number): Promise<void> {
    let rest = buffers as Uint8Array[];
    let total = 0;
    for (const buffer of buffers) total += buffer.length;
    return new Promise((resolve, reject) => {
      const onWritten = (error: Error | null, written: number): void => {
        if (error) return reject(error);
        if (written === total) return resolve();
        // A short write (a full disk, a signal) is finished from where it stopped; a write
        // that makes no progress at all is an error rather than a loop. The rest is cut from
        // what this write was given: cut from the first list, a second short write in a row
        // wrote bytes already written, and went on past the end without stopping.
        if (written === 0) return reject(Object.assign(new Error(`short write to ${this.path}`), { code: 'EIO' }));
        rest = restAfter(rest, written);
        total -= written;
        position += written;
        fs.writev(this.fd, rest, position, onWritten);
      };
      // One buffer (the usual batch) takes the plain pwrite path.
      const only = buffers.length === 1 ? buffers[0] : undefined;
      if (only) fs.write(this.fd, only, 0, only.length, position, onWritten);
      else fs.writev(this.fd, buffers as Uint8Array[], position, onWritten);
    });
  }

  writevSync(buffers: readonly Uint8Array[], position: number): void {
    let rest = buffers as Uint8Array[];
    let total = 0;
    for (const buffer of rest) total += buffer.length;
    while (total > 0) {
      const only = rest.length === 1 ? rest[0] : undefined;
      const written = only ? fs.writeSync(this.fd, only, 0, only.length, position) : fs.writevSync(this.fd, rest, position);
      if (written === 0) throw Object.assign(new Error(`short write to ${this.path}`), { code: 'EIO' });
      total -= written;
      position += written;
      if (total > 0) rest = restAfter(rest, written);
    }
  }

  datasync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fdatasync(this.fd, (error) => (error ? reject(error) : resolve())));
  }

  datasyncSync(): void {
    fs.fdatasyncSync(this.fd);
  }

  sync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fsync(this.fd, (error) => (error ? reject(error) : resolve())));
  }

  truncate(bytes: number): Promise<void> {
    return new Promise((resolve, reject) => fs.ftruncate(this.fd, bytes, (error) => (error ? reject(error) : resolve())));
  }

  size(): Promise<number> {
    return new Promise((resolve, reject) => fs.fstat(this.fd, (error, stats) => (error ? reject(error) : resolve(stats.size))));
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => fs.close(this.fd, (error) => (error ? reject(error) : resolve())));
  }
}

function restAfter(buffers: readonly Uint8Array[], skipBytes: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  for (const buffer of buffers) {
    if (skipBytes >= buffer.length) {
      skipBytes -= buffer.length;
      continue;
    }
    rest.push(skipBytes > 0 ? buffer.subarray(skipBytes) : buffer);
    skipBytes = 0;
  }
  return rest;
}

/**
 * Node's recursive mkdir reports ENOENT when it cannot create a missing directory for another
 * reason (a read-only file system, no permission), which names the wrong problem. After such a
 * failure this creates the missing directories one at a time, so the error thrown is the real one.
 */
async function mkdirOneByOne(dir: string, first: unknown): Promise<void> {
  if ((first as { code?: unknown }).code !== 'ENOENT') throw first;
  const missing: string[] = [];
  // Bounded by the path's depth: each turn moves one component up, and the root exists.
  for (let at = path.resolve(dir); !fs.existsSync(at) && path.dirname(at) !== at; at = path.dirname(at)) missing.unshift(at);
  for (const each of missing) await fs.promises.mkdir(each).catch((error: { code?: unknown }) => {
    if (error.code !== 'EEXIST') throw error;
  });
}

export const nodeFs: WalFs = {
  open(path, mode) {
    return new Promise((resolve, reject) => {
      fs.open(path, FLAGS[mode], 0o644, (error, fd) => (error ? reject(error) : resolve(new NodeFile(path, fd))));
    });
  },
  readdir: (dir) => fs.promises.readdir(dir),
  mkdir: async (dir) => {
    try {
      await fs.promises.mkdir(dir, { recursive: true });
    } catch (error) {
      await mkdirOneByOne(dir, error);
    }
  },
  rename: (from, to) => fs.promises.rename(from, to),
  unlink: (path) => fs.promises.unlink(path),
  async syncDir(dir) {
    const handle = await fs.promises.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  lock: (dir, options) => acquireDirLock(dir, options),
};

/**
 * Fault injection for chaos tests: a WalFs whose file syncs (fdatasync and fsync, counted
 * across every file it opens) succeed `syncsOk` times, then all fail with EIO, as on a
 * failing disk. Everything else passes through. The log above it must fail stop at the
 * first failure: no retry of the sync, no acknowledgement of anything after it.
 */
export function failSyncsAfter(inner: WalFs, syncsOk: number): WalFs {
  if (!Number.isSafeInteger(syncsOk) || syncsOk < 0) {
    throw new RangeError(`Expected \`syncsOk\` to be a non-negative integer, got ${syncsOk}.`);
  }
  let syncs = 0;
  /** The next sync's failure, once `syncsOk` syncs have passed; undefined while they may succeed. */
  const failure = (file: WalFile, syscall: 'fdatasync' | 'fsync'): Error | undefined => {
    syncs++;
    if (syncs <= syncsOk) return undefined;
    return Object.assign(new Error(`EIO: i/o error, ${syscall} '${file.path}' (injected after ${syncsOk} syncs)`), {
      code: 'EIO',
      errno: -5,
      syscall,
      path: file.path,
    });
  };
  const sync = (file: WalFile, run: () => Promise<void>, syscall: 'fdatasync' | 'fsync'): Promise<void> => {
    const error = failure(file, syscall);
    return error === undefined ? run() : Promise.reject(error);
  };
  const syncNow = (file: WalFile, run: () => void): void => {
    const error = failure(file, 'fdatasync');
    if (error !== undefined) throw error;
    run();
  };
  const wrap = (file: WalFile): WalFile => ({
    get path() {
      return file.path;
    },
    read: (buffer, position) => file.read(buffer, position),
    writev: (buffers, position) => file.writev(buffers, position),
    // Keep the blocking small-write path the log takes when the file offers it.
    ...(file.writevSync !== undefined && { writevSync: (buffers: readonly Uint8Array[], position: number) => file.writevSync?.(buffers, position) }),
    datasync: () => sync(file, () => file.datasync(), 'fdatasync'),
    // And the blocking fdatasync, counted and failed with the others.
    ...(file.datasyncSync !== undefined && { datasyncSync: () => syncNow(file, () => file.datasyncSync?.()) }),
    sync: () => sync(file, () => file.sync(), 'fsync'),
    truncate: (bytes) => file.truncate(bytes),
    size: () => file.size(),
    close: () => file.close(),
  });
  return {
    open: (path, mode) => inner.open(path, mode).then(wrap),
    readdir: (dir) => inner.readdir(dir),
    mkdir: (dir) => inner.mkdir(dir),
    rename: (from, to) => inner.rename(from, to),
    unlink: (path) => inner.unlink(path),
    syncDir: (dir) => inner.syncDir(dir),
    // Injected sync failures are about the disk, not about who owns the directory.
    ...(inner.lock !== undefined && { lock: (dir: string, options: DirLockOptions) => (inner.lock as NonNullable<WalFs['lock']>)(dir, options) }),
  };
}
