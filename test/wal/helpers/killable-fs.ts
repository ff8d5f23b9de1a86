/**
 * The real file system, with a `kill()` that acts like the death of the process using it:
 * every later operation through this instance fails with EBADF, operations already running
 * finish, and then every descriptor it opened is closed. `kill()` resolves only then, so a
 * log opened afterwards (through a new KillableFs) never races a write from the dead one.
 */
import type { OpenMode, WalFile, WalFs } from '../../../wal/fs.ts';
import { nodeFs } from '../../../wal/fs.ts';

const ebadf = (what: string): Error => Object.assign(new Error(`EBADF: ${what} after the process was killed`), { code: 'EBADF' });

export class KillableFs implements WalFs {
  private dead = false;
  private inflight = 0;
  /** Syncs still to fail with EIO, the way a dying disk reports a lost write. */
  private syncsToFail = 0;

  /** The next file sync (fdatasync or fsync) fails with EIO without reaching the disk. */
  failNextSync(): void {
    this.syncsToFail++;
  }

  private failOrSync(what: string, sync: () => Promise<void>): Promise<void> {
    if (this.syncsToFail > 0) {
      this.syncsToFail--;
      return Promise.reject(Object.assign(new Error(`EIO: i/o error, ${what} (injected)`), { code: 'EIO' }));
    }
    return sync();
  }
  private idle: (() => void) | undefined;
  private readonly files = new Set<WalFile>();

  private async call<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (this.dead) throw ebadf(what);
    this.inflight++;
    try {
      return await op();
    } finally {
      this.inflight--;
      if (this.inflight === 0) this.idle?.();
    }
  }

  async open(path: string, mode: OpenMode): Promise<WalFile> {
    const inner = await this.call(`open ${path}`, () => nodeFs.open(path, mode));
    if (this.dead) {
      await inner.close();
      throw ebadf(`open ${path}`);
    }
    this.files.add(inner);
    const call = <T>(op: string, fn: () => Promise<T>) => this.call(`${op} ${path}`, fn);
    return {
      path,
      read: (buffer, position) => call('read', () => inner.read(buffer, position)),
      writev: (buffers, position) => call('write', () => inner.writev(buffers, position)),
      datasync: () => call('fdatasync', () => this.failOrSync(`fdatasync ${path}`, () => inner.datasync())),
      sync: () => call('fsync', () => this.failOrSync(`fsync ${path}`, () => inner.sync())),
      truncate: (bytes) => call('ftruncate', () => inner.truncate(bytes)),
      size: () => call('fstat', () => inner.size()),
      close: () =>
        call('close', async () => {
          this.files.delete(inner);
          await inner.close();
        }),
    };
  }
  readdir(dir: string): Promise<string[]> {
    return this.call('readdir', () => nodeFs.readdir(dir));
  }
  mkdir(dir: string): Promise<void> {
    return this.call('mkdir', () => nodeFs.mkdir(dir));
  }
  rename(from: string, to: string): Promise<void> {
    return this.call('rename', () => nodeFs.rename(from, to));
  }
  unlink(path: string): Promise<void> {
    return this.call('unlink', () => nodeFs.unlink(path));
  }
  syncDir(dir: string): Promise<void> {
    return this.call('fsync of a directory', () => nodeFs.syncDir(dir));
  }

  async kill(): Promise<void> {
    this.dead = true;
    if (this.inflight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    for (const file of this.files) await file.close().catch(() => undefined);
    this.files.clear();
  }
}
