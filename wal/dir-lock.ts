/**
 * One writer per WAL directory.
 *
 * Two processes appending to one log overwrite each other's frames (issue 7): a writer must
 * own its directory. Node has no flock(2), so ownership is built from two pieces:
 *
 * 1. A guard the kernel releases: an abstract Unix socket (Linux) whose name is the
 *    directory's device and inode number. Only one process in a network namespace can bind
 *    it, and it disappears the instant its holder dies, SIGKILL included, so it never goes
 *    stale. A process that fails to bind it asks the holder who it is (the holder answers
 *    every connection with its identity) and refuses to open. Because at most one starter
 *    per network namespace ever gets past this point, it also serialises everything below:
 *    two starters racing to break one stale LOCK file cannot both do it; the second is
 *    refused naming the first.
 *
 * 2. The `LOCK` file in the directory, JSON naming the holder: pid, the process's start
 *    time (field 22 of /proc/<pid>/stat, so a reused pid is told apart), the kernel's boot
 *    id, its pid namespace and host name, who it is ("participant p1") and when it started.
 *    It is what `twopc wal verify` and people read, and it guards what the socket cannot
 *    see: a holder in another network namespace (a container sharing the volume). A LOCK
 *    file is live when its process can be checked and runs (exists, is not a zombie, has the
 *    recorded start time, same boot); when it cannot be checked (another host, another pid
 *    namespace) the holder's lease decides: a holder touches its LOCK file every
 *    `leaseRenewMs`, and a LOCK file left untouched for `leaseStaleMs` is stale.
 *
 * What is left: two starters in different network namespaces that break one stale LOCK
 * file within the same moment can both write theirs (rename has no compare-and-swap); the
 * loser finds its LOCK file replaced at its next renewal and fails stop (`onLost`). A SIGSTOPped
 * holder in another namespace stops renewing and can lose its lease. On platforms without
 * abstract sockets only the LOCK file guards, with the same window for every starter.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { posix as path } from 'node:path';
import { WalError } from './errors.ts';

export const LOCK_FILE = 'LOCK';

export const LEASE_RENEW_MS_DEFAULT = 1_000;
export const LEASE_STALE_MS_DEFAULT = 5_000;
/** How often a starter looks at a LOCK file whose holder it cannot check. */
const LEASE_POLL_MS = 100;
/** How long a refused starter waits for the holder to say who it is. */
const HOLDER_QUERY_TIMEOUT_MS = 2_000;
/** A LOCK file or a holder's answer is a few hundred bytes; anything longer is not one. */
const HOLDER_BYTES_MAX = 4096;
/** Binding the guard is retried when its holder vanished between our bind and our question. */
const BIND_ATTEMPTS_MAX = 3;
const ABSTRACT_SOCKETS = process.platform === 'linux';

/** Who holds a directory: the content of its LOCK file, and what the guard answers. */
export interface LockHolder {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot; null where there is no /proc. */
  readonly processStartTime: number | null;
  readonly bootId: string | null;
  /** The link /proc/self/ns/pid, e.g. "pid:[4026531836]". */
  readonly pidNamespace: string | null;
  readonly hostname: string;
  /**
   * Device and inode of the directory it holds ("2049:1234"): a LOCK file copied along with
   * a directory (a backup of a live log) names a live process but not this directory.
   */
  readonly directory: string | null;
  /** What the holder is, e.g. "participant p1"; null when it did not say. */
  readonly owner: string | null;
  readonly createdAt: string;
  /** Tells this holding apart from every other, pid reuse or not. */
  readonly nonce: string;
}

export interface DirLockOptions {
  /** What the holder is, named in the LOCK file and in refusals ("participant p1"). */
  readonly owner?: string;
  readonly leaseRenewMs?: number;
  readonly leaseStaleMs?: number;
}

export interface DirLock {
  readonly dir: string;
  readonly holder: LockHolder;
  /** Called once if the LOCK file is found replaced or removed while held: stop writing. */
  onLost(listener: (error: WalError) => void): void;
  /** Removes the LOCK file (if still ours) and releases the guard. Idempotent, never rejects. */
  release(): Promise<void>;
}

export type Liveness = { readonly state: 'alive' | 'dead' | 'unknown'; readonly why: string };

// ------------------------------------------------------------ identity and liveness

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** State (field 3) and start time (field 22) of a process; undefined when there is no such process. */
export function procStat(pid: number | 'self'): { state: string; startTime: number } | undefined {
  const text = readText(`/proc/${pid}/stat`);
  if (text === null) return undefined;
  // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', startTime: Number(fields[22 - 3]) };
}

export interface HostView {
  readonly hostname: string;
  readonly bootId: string | null;
  readonly pidNamespace: string | null;
  readonly hasProc: boolean;
}

function hostView(): HostView {
  let pidNamespace: string | null = null;
  try {
    pidNamespace = fs.readlinkSync('/proc/self/ns/pid');
  } catch {
    // No /proc, or not allowed to read it: the namespace stays unknown.
  }
  return { hostname: os.hostname(), bootId: readText('/proc/sys/kernel/random/boot_id'), pidNamespace, hasProc: procStat('self') !== undefined };
}

function selfHolder(owner: string | undefined, view: HostView, directory: string): LockHolder {
  return {
    pid: process.pid,
    processStartTime: procStat('self')?.startTime ?? null,
    bootId: view.bootId,
    pidNamespace: view.pidNamespace,
    hostname: view.hostname,
    directory,
    owner: owner ?? null,
    createdAt: new Date().toISOString(),
    nonce: randomBytes(8).toString('hex'),
  };
}

/**
 * Whether `holder` still runs, as far as this process can see. "unknown" means its process
 * cannot be checked from here (another host or pid namespace): only its lease can tell.
 */
export function holderLiveness(holder: LockHolder, directory: string, view: HostView = hostView()): Liveness {
  if (holder.hostname !== view.hostname) return { state: 'unknown', why: `it runs on host ${holder.hostname}` };
  if (holder.bootId !== null && view.bootId !== null && holder.bootId !== view.bootId) return { state: 'dead', why: 'the machine has rebooted since' };
  // Device numbers are this kernel's: compared only on this host and boot.
  if (holder.directory !== null && holder.directory !== directory) return { state: 'dead', why: 'the LOCK file was copied from another directory' };
  if (holder.pidNamespace !== view.pidNamespace) return { state: 'unknown', why: 'it runs in another pid namespace (another container?)' };
  if (!view.hasProc) {
    try {
      process.kill(holder.pid, 0);
      return { state: 'alive', why: `pid ${holder.pid} runs` };
    } catch (error) {
      const code = (error as { code?: string }).code;
      return code === 'EPERM' ? { state: 'alive', why: `pid ${holder.pid} runs` } : { state: 'dead', why: `no process ${holder.pid}` };
    }
  }
  const stat = procStat(holder.pid);
  if (!stat) return { state: 'dead', why: `no process ${holder.pid}` };
  if (stat.state === 'Z' || stat.state === 'X') return { state: 'dead', why: `process ${holder.pid} has exited` };
  if (holder.processStartTime !== null && stat.startTime !== holder.processStartTime) return { state: 'dead', why: `pid ${holder.pid} is now another process` };
  return { state: 'alive', why: `pid ${holder.pid} runs` };
}

export function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value !== 'object' || value === null || !Number.isSafeInteger(value.pid) || typeof value.nonce !== 'string' || typeof value.hostname !== 'string') return undefined;
    return {
      pid: value.pid as number,
      processStartTime: typeof value.processStartTime === 'number' ? value.processStartTime : null,
      bootId: typeof value.bootId === 'string' ? value.bootId : null,
      pidNamespace: typeof value.pidNamespace === 'string' ? value.pidNamespace : null,
      hostname: value.hostname,
      directory: typeof value.directory === 'string' ? value.directory : null,
      owner: typeof value.owner === 'string' ? value.owner : null,
      createdAt: typeof value.createdAt === 'string' ? value.createdAt : '?',
      nonce: value.nonce,
    };
  } catch {
    return undefined;
  }
}

export function describeHolder(holder: LockHolder | undefined, view: HostView = hostView()): string {
  if (!holder) return 'a process that does not say who it is';
  const where = holder.hostname === view.hostname ? '' : ` on host ${holder.hostname}`;
  return `${holder.owner ?? 'a twopc process'} (pid ${holder.pid}${where}, since ${holder.createdAt})`;
}

function lockedError(dir: string, holder: LockHolder | undefined, detail: string): WalError {
  return new WalError('WAL_LOCKED', `WAL directory ${dir} is in use by ${describeHolder(holder)}${detail}; a log has one writer, so this process will not open it.`, {
    path: dir,
    holder,
  });
}

// ------------------------------------------------------------ the LOCK file

interface LockFileState {
  /** Undefined when the file exists but does not parse. */
  readonly holder: LockHolder | undefined;
  readonly mtimeNs: bigint;
}

/** The LOCK file of `dir`, or undefined when there is none. Read-only: `twopc wal verify` uses it. */
export async function readLockFile(dir: string): Promise<LockFileState | undefined> {
  const file = path.join(dir, LOCK_FILE);
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const stat = await handle.stat({ bigint: true });
    const buffer = Buffer.alloc(HOLDER_BYTES_MAX);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return { holder: parseHolder(buffer.subarray(0, bytesRead).toString('utf8')), mtimeNs: stat.mtimeNs };
  } finally {
    await handle.close();
  }
}

/**
 * Watches a LOCK file whose holder cannot be checked directly, for up to `staleMs`: true as
 * soon as it is renewed (touched or rewritten), false when it stays untouched or goes away.
 */
async function leaseRenewed(dir: string, seen: LockFileState, staleMs: number): Promise<boolean> {
  const started = performance.now();
  while (performance.now() - started < staleMs) {
    await new Promise((resolve) => setTimeout(resolve, LEASE_POLL_MS));
    const now = await readLockFile(dir);
    if (!now) return false;
    if (now.mtimeNs !== seen.mtimeNs || now.holder?.nonce !== seen.holder?.nonce) return true;
  }
  return false;
}

/**
 * Writes our LOCK file whole under a temporary name, then gives it its name: by link(2) when
 * there was none (which fails if one appeared meanwhile), by rename(2) over a stale one.
 * Not fsynced: after a power loss every holder of the old boot is dead anyway.
 */
async function writeLockFile(dir: string, holder: LockHolder, replace: boolean): Promise<void> {
  const tmp = path.join(dir, `${LOCK_FILE}.${holder.nonce}.tmp`);
  try {
    await fs.promises.writeFile(tmp, `${JSON.stringify(holder)}\n`, { flag: 'wx', mode: 0o644 });
    if (replace) await fs.promises.rename(tmp, path.join(dir, LOCK_FILE));
    else await fs.promises.link(tmp, path.join(dir, LOCK_FILE));
  } finally {
    await fs.promises.unlink(tmp).catch(() => undefined);
  }
}

/**
 * For `twopc wal verify` and `inspect`, which take no lock: a sentence when the directory is
 * held by a process that runs (or may run), since its log may change while it is read.
 */
export async function heldWarning(dir: string): Promise<string | undefined> {
  const file = await readLockFile(dir).catch(() => undefined);
  if (!file?.holder) return undefined;
  const liveness = holderLiveness(file.holder, await directoryId(dir));
  if (liveness.state === 'dead') return undefined;
  return `the log is open in ${describeHolder(file.holder)}${liveness.state === 'unknown' ? ` as far as its LOCK file says (${liveness.why})` : ''}; it may change while it is read, and a torn tail may be a write in progress`;
}

// ------------------------------------------------------------ the guard

/** The directory's identity: its device and inode, the same whatever path names it. */
async function directoryId(dir: string): Promise<string> {
  const stat = await fs.promises.stat(dir);
  return `${stat.dev}:${stat.ino}`;
}

/** Asks the guard's holder who it is; 'gone' when nobody answers (it died a moment ago). */
function askHolder(name: string): Promise<LockHolder | undefined | 'gone'> {
  return new Promise((resolve) => {
    const conn = net.connect({ path: name });
    // Bytes, decoded once whole: a character split between two chunks, decoded chunk by chunk,
    // became two replacement characters. Counted in bytes, as the LOCK file is.
    const chunks: Buffer[] = [];
    let bytes = 0;
    conn.setTimeout(HOLDER_QUERY_TIMEOUT_MS, () => conn.destroy());
    conn.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > HOLDER_BYTES_MAX) conn.destroy();
      else chunks.push(chunk);
    });
    conn.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? 'gone' : undefined));
    // An answer cut off at the limit is no holder's, even if what arrived would parse.
    conn.on('close', () => resolve(bytes > HOLDER_BYTES_MAX ? undefined : parseHolder(Buffer.concat(chunks).toString('utf8'))));
  });
}

function listenOn(server: net.Server, name: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const onError = (error: NodeJS.ErrnoException) => resolve(error);
    server.once('error', onError);
    server.listen({ path: name }, () => {
      server.off('error', onError);
      resolve(undefined);
    });
  });
}

/** Binds the guard of `dir`, or throws WAL_LOCKED naming whoever has it. */
async function bindGuard(dir: string, self: LockHolder): Promise<net.Server> {
  const name = `\0twopc-wal-lock/${self.directory}`;
  const answer = `${JSON.stringify(self)}\n`;
  for (let attempt = 1; ; attempt++) {
    const server = net.createServer((conn) => {
      conn.on('error', () => undefined);
      conn.end(answer);
    });
    const error = await listenOn(server, name);
    if (!error) {
      // A bound guard's later errors (an accept failing with EMFILE) cost one question an answer,
      // not the lock: the name stays bound. Unheard, such an error would end the holder's process.
      server.on('error', () => undefined);
      server.unref();
      return server;
    }
    if (error.code !== 'EADDRINUSE') throw error;
    const holder = await askHolder(name);
    if (holder !== 'gone' || attempt >= BIND_ATTEMPTS_MAX) {
      const known = holder === 'gone' ? undefined : (holder ?? (await readLockFile(dir).catch(() => undefined))?.holder);
      throw lockedError(dir, known, '');
    }
  }
}

// ------------------------------------------------------------ acquire and release

/**
 * Takes `dir` for this process, or throws a WalError with code WAL_LOCKED naming the holder.
 * `dir` must exist. Release with `release()`; a process that dies releases it by dying.
 */
export async function acquireDirLock(dir: string, options: DirLockOptions = {}): Promise<DirLock> {
  const view = hostView();
  const self = selfHolder(options.owner, view, await directoryId(dir));
  const renewMs = options.leaseRenewMs ?? LEASE_RENEW_MS_DEFAULT;
  const staleMs = options.leaseStaleMs ?? LEASE_STALE_MS_DEFAULT;
  const guard = ABSTRACT_SOCKETS ? await bindGuard(dir, self) : undefined;
  try {
    const existing = await readLockFile(dir);
    if (existing) {
      const liveness = existing.holder ? holderLiveness(existing.holder, self.directory as string, view) : ({ state: 'unknown', why: 'its LOCK file does not parse' } as const);
      if (liveness.state === 'alive') throw lockedError(dir, existing.holder, '');
      if (liveness.state === 'unknown' && (await leaseRenewed(dir, existing, staleMs))) {
        throw lockedError(dir, existing.holder, ` (${liveness.why}; its lease is being renewed)`);
      }
    }
    await writeLockFile(dir, self, existing !== undefined);
  } catch (error) {
    guard?.close();
    if ((error as { code?: string }).code === 'EEXIST') throw lockedError(dir, (await readLockFile(dir).catch(() => undefined))?.holder, ' (it took the directory just now)');
    throw error;
  }
  return new HeldLock(dir, self, guard, renewMs);
}

class HeldLock implements DirLock {
  private readonly timer: NodeJS.Timeout;
  private renewing = false;
  private released: Promise<void> | undefined;
  private lostListener: ((error: WalError) => void) | undefined;
  private lost: WalError | undefined;

  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
    private readonly guard: net.Server | undefined,
    renewMs: number,
  ) {
    this.timer = setInterval(() => void this.renew(), renewMs);
    this.timer.unref();
  }

  onLost(listener: (error: WalError) => void): void {
    this.lostListener = listener;
    if (this.lost) listener(this.lost);
  }

  /** Touches the LOCK file (the lease others read), after checking it is still ours. */
  private async renew(): Promise<void> {
    if (this.renewing || this.lost || this.released) return;
    this.renewing = true;
    try {
      const now = await readLockFile(this.dir);
      if (this.released) return;
      if (now?.holder?.nonce !== this.holder.nonce) {
        clearInterval(this.timer);
        this.lost = new WalError('WAL_LOCK_LOST', `The LOCK file of ${this.dir} was ${now ? `replaced by ${describeHolder(now.holder)}` : 'removed'} while this process held it; stopping writes.`, { path: this.dir });
        this.lostListener?.(this.lost);
        return;
      }
      const seconds = Date.now() / 1000;
      await fs.promises.utimes(path.join(this.dir, LOCK_FILE), seconds, seconds);
    } catch {
      // A failed renewal is retried at the next tick; a lease lapses only after many.
    } finally {
      this.renewing = false;
    }
  }

  release(): Promise<void> {
    this.released ??= (async () => {
      clearInterval(this.timer);
      try {
        const now = await readLockFile(this.dir);
        if (now?.holder?.nonce === this.holder.nonce) await fs.promises.unlink(path.join(this.dir, LOCK_FILE));
      } catch {
        // The directory is gone or unreadable: nothing of ours is left to remove.
      }
      await new Promise<void>((resolve) => (this.guard ? this.guard.close(() => resolve()) : resolve()));
    })();
    return this.released;
  }
}
