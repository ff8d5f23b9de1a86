/**
 * A WalFs wrapper that makes the log fail-stop at the first I/O error it sees.
 *
 * The error is reported (`onError`, which poisons the log) in the very reaction to the failed
 * call, before any cleanup the caller might await, so that no other completion can slip in and
 * acknowledge an append after the failure. Once an error has been seen, every new call except
 * `close` is refused without touching the disk: in particular a failed fsync is never retried
 * (on Linux the second fsync would report success for data that was dropped).
 */
import type { OpenMode, WalFile, WalFs } from './fs.ts';

export interface FailStopFs extends WalFs {
  /** Wraps a file opened elsewhere (by recovery) so that it fails stop too. */
  wrap(file: WalFile): WalFile;
}

export function failStopFs(inner: WalFs, onError: (error: unknown) => void): FailStopFs {
  let failed: unknown;
  const guard = <T>(op: () => Promise<T>): Promise<T> => {
    if (failed !== undefined) return Promise.reject(failed);
    return op().then(undefined, (error: unknown) => {
      if (failed === undefined) {
        failed = error;
        onError(error);
      }
      throw error;
    });
  };
  const guardSync = (op: () => void): void => {
    if (failed !== undefined) throw failed;
    try {
      op();
    } catch (error) {
      if (failed === undefined) {
        failed = error;
        onError(error);
      }
      throw error;
    }
  };
  const wrap = (file: WalFile): WalFile => ({
    get path() {
      return file.path;
    },
    read: (buffer, position) => guard(() => file.read(buffer, position)),
    writev: (buffers, position) => guard(() => file.writev(buffers, position)),
    ...(file.writevSync ? { writevSync: (buffers: readonly Uint8Array[], position: number) => guardSync(() => file.writevSync?.(buffers, position)) } : {}),
    datasync: () => guard(() => file.datasync()),
    ...(file.datasyncSync ? { datasyncSync: () => guardSync(() => file.datasyncSync?.()) } : {}),
    sync: () => guard(() => file.sync()),
    truncate: (bytes) => guard(() => file.truncate(bytes)),
    size: () => guard(() => file.size()),
    // Closing releases a descriptor and risks nothing, so it is allowed after a failure.
    close: () => file.close(),
  });
  return {
    wrap,
    open: (path: string, mode: OpenMode) => guard(() => inner.open(path, mode)).then(wrap),
    readdir: (dir) => guard(() => inner.readdir(dir)),
    mkdir: (dir) => guard(() => inner.mkdir(dir)),
    rename: (from, to) => guard(() => inner.rename(from, to)),
    unlink: (path) => guard(() => inner.unlink(path)),
    syncDir: (dir) => guard(() => inner.syncDir(dir)),
  };
}
