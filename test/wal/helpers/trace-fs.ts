/**
 * A WalFs over the simulated disk that writes down every call the log makes, in order, as one
 * line each ("write 00000000000000000001.wal @32 [1024,1024] sync"), so a test can check what a
 * log does on disk exactly: which writes, of which buffers, synchronous or not, and which syncs,
 * renames and deletions. Names are relative to the log's directory.
 *
 * `before` runs synchronously before each call reaches the disk, so a test can act at an exact
 * point (append more, or lose the directory lock). `lock` hands out a lock the test can lose at
 * will, the way another process taking the directory would.
 */
import type { DirLock } from '../../../wal/dir-lock.ts';
import { WalError } from '../../../wal/errors.ts';
import type { OpenMode, WalFile, WalFs } from '../../../wal/fs.ts';
import { SimFs } from '../../../wal/sim-fs.ts';
import { seededRandom } from './random.ts';

export class TraceFs implements WalFs {
  readonly sim: SimFs;
  readonly calls: string[] = [];
  before: ((call: string) => void) | undefined;
  private lostListener: ((error: WalError) => void) | undefined;
  released = false;

  constructor(
    private readonly dir: string,
    options: { readonly seed?: number; readonly withWritevSync?: boolean } = {},
  ) {
    this.sim = new SimFs(seededRandom(options.seed ?? 7));
    this.withWritevSync = options.withWritevSync ?? true;
  }

  private readonly withWritevSync: boolean;

  /** The calls since `from` (an index into `calls`). */
  since(from: number): string[] {
    return this.calls.slice(from);
  }

  private name(file: string): string {
    return file.startsWith(`${this.dir}/`) ? file.slice(this.dir.length + 1) : file;
  }

  private record(call: string): void {
    this.calls.push(call);
    this.before?.(call);
  }

  async open(file: string, mode: OpenMode): Promise<WalFile> {
    this.record(`open ${this.name(file)} ${mode}`);
    const inner = await this.sim.open(file, mode);
    const name = this.name(file);
    const lengths = (buffers: readonly Uint8Array[]) => `[${buffers.map((b) => b.length).join(',')}]`;
    const traced: WalFile = {
      path: inner.path,
      read: (buffer, position) => inner.read(buffer, position),
      writev: (buffers, position) => {
        this.record(`write ${name} @${position} ${lengths(buffers)} async`);
        return inner.writev(buffers, position);
      },
      datasync: () => {
        this.record(`datasync ${name}`);
        return inner.datasync();
      },
      sync: () => {
        this.record(`sync ${name}`);
        return inner.sync();
      },
      truncate: (bytes) => {
        this.record(`truncate ${name} ${bytes}`);
        return inner.truncate(bytes);
      },
      size: () => inner.size(),
      close: () => {
        this.record(`close ${name}`);
        return inner.close();
      },
    };
    if (this.withWritevSync) {
      traced.writevSync = (buffers, position) => {
        this.record(`write ${name} @${position} ${lengths(buffers)} sync`);
        inner.writevSync?.(buffers, position);
      };
    }
    return traced;
  }

  readdir(dir: string): Promise<string[]> {
    return this.sim.readdir(dir);
  }

  mkdir(dir: string): Promise<void> {
    return this.sim.mkdir(dir);
  }

  rename(from: string, to: string): Promise<void> {
    this.record(`rename ${this.name(from)} ${this.name(to)}`);
    return this.sim.rename(from, to);
  }

  unlink(file: string): Promise<void> {
    this.record(`unlink ${this.name(file)}`);
    return this.sim.unlink(file);
  }

  syncDir(dir: string): Promise<void> {
    this.record(`syncdir ${dir === this.dir ? '.' : dir}`);
    return this.sim.syncDir(dir);
  }

  lock(dir: string): Promise<DirLock> {
    const lock: DirLock = {
      dir,
      holder: { pid: process.pid, processStartTime: null, bootId: null, pidNamespace: null, hostname: 'test', directory: null, owner: null, createdAt: '', nonce: 'trace' },
      onLost: (listener) => {
        this.lostListener = listener;
      },
      release: () => {
        this.released = true;
        return Promise.resolve();
      },
    };
    return Promise.resolve(lock);
  }

  /** Another process took the directory: the lock's holder is told, synchronously. */
  loseLock(): void {
    this.lostListener?.(new WalError('WAL_LOCKED', `The lock on ${this.dir} was lost.`));
  }
}
