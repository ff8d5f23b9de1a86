/**
 * One writer per WAL directory (wal/dir-lock.ts), each behaviour checked exactly and in
 * process: the liveness verdict for every kind of holder and the reason it gives, the LOCK
 * file's parsing and its size limit, the refusal's words and holder, the guard's answer and
 * its fallbacks, the lease's edges, renewal and loss on a fake interval, and release.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  LOCK_FILE,
  acquireDirLock,
  describeHolder,
  heldWarning,
  holderLiveness,
  parseHolder,
  procStat,
  readLockFile,
  type DirLock,
  type HostView,
  type LockHolder,
} from '../../wal/dir-lock.ts';
import { WalError } from '../../wal/errors.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** Polls are bounded in count; what they wait for happens within milliseconds. */
const POLLS_MAX = 400;
const POLL_MS = 10;
/** No pid reaches this: pid_max is at most 2^22 on Linux. */
const PID_NEVER = 99_999_999;
const SLEEP = fs.realpathSync('/bin/sleep');

let dir: string;
let remove: () => Promise<void>;
const held: DirLock[] = [];
const servers: net.Server[] = [];

beforeEach(async () => {
  ({ dir, remove } = await tempDir('twopc-dir-lock-exact-'));
});
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(held.splice(0).map((lock) => lock.release()));
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  await remove();
});

async function acquire(options: Parameters<typeof acquireDirLock>[1] = {}): Promise<DirLock> {
  const lock = await acquireDirLock(dir, options);
  held.push(lock);
  return lock;
}

async function refusal(options: Parameters<typeof acquireDirLock>[1] = {}): Promise<WalError> {
  const error = await acquire(options).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof WalError)) throw new Error(`expected a WalError, got ${String(error)}`);
  return error;
}

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < POLLS_MAX; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`timed out waiting until ${what}`);
}

const directoryId = (): string => `${fs.statSync(dir).dev}:${fs.statSync(dir).ino}`;
const lockPath = (): string => path.join(dir, LOCK_FILE);

/** How this process sees itself, as dir-lock.ts does. */
function ownView(): HostView {
  return { hostname: os.hostname(), bootId: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), pidNamespace: fs.readlinkSync('/proc/self/ns/pid'), hasProc: true };
}

/** A holder record for this process and directory, with `changes`. */
function holder(changes: Partial<LockHolder> = {}): LockHolder {
  const view = ownView();
  return {
    pid: process.pid,
    processStartTime: procStat('self')?.startTime ?? null,
    bootId: view.bootId,
    pidNamespace: view.pidNamespace,
    hostname: view.hostname,
    directory: directoryId(),
    owner: 'participant old',
    createdAt: '2026-01-02T03:04:05.000Z',
    nonce: 'old-nonce',
    ...changes,
  };
}

function writeLock(content: string | LockHolder): void {
  fs.writeFileSync(lockPath(), typeof content === 'string' ? content : JSON.stringify(content));
}

const lockedMessage = (who: string, detail = ''): string => `WAL directory ${dir} is in use by ${who}${detail}; a log has one writer, so this process will not open it.`;

/** Binds the directory's guard name as another holder would, answering each connection with `answer`. */
async function foreignGuard(answer: string): Promise<void> {
  const server = net.createServer((conn) => {
    conn.on('error', () => undefined);
    conn.end(answer);
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: `\0twopc-wal-lock/${directoryId()}` }, () => resolve());
  });
}

/** As `foreignGuard`, but the answer leaves in two writes, split at `at` bytes, a little apart. */
async function foreignGuardInTwo(answer: string, at: number): Promise<void> {
  const bytes = Buffer.from(answer);
  const server = net.createServer((conn) => {
    conn.on('error', () => undefined);
    conn.write(bytes.subarray(0, at));
    setTimeout(() => conn.end(bytes.subarray(at)), 20);
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: `\0twopc-wal-lock/${directoryId()}` }, () => resolve());
  });
}

/** Runs `renew` every few milliseconds until `start` settles, as a holder renewing its lease would. */
async function whileRenewing<T>(start: () => Promise<T>, renew: () => void): Promise<T> {
  const timer = setInterval(renew, 20);
  try {
    return await start();
  } finally {
    clearInterval(timer);
  }
}

/** What the directory's guard answers, '' when nobody holds it. */
function askGuard(): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const conn = net.connect({ path: `\0twopc-wal-lock/${directoryId()}` });
    conn.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    conn.on('error', () => resolve(''));
    conn.on('close', () => resolve(text));
  });
}

describe('procStat', () => {
  it("reads this process's state and its start time, field 22 of its stat line", () => {
    const text = fs.readFileSync('/proc/self/stat', 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const stat = procStat('self');
    expect(stat?.startTime).toBe(Number(fields[19]));
    expect(Number.isSafeInteger(stat?.startTime)).toBe(true);
    // Running or, in a worker thread whose main thread waits, sleeping: which one is a race.
    expect(stat?.state).toMatch(/^[RSD]$/);
    expect(procStat(process.pid)?.startTime).toBe(stat?.startTime);
    expect(procStat(PID_NEVER)).toBeUndefined();
  });

  it("reads past a command name that holds ') ' itself", async () => {
    // The kernel names a process after the file it ran: here a link to sleep called "x) y z".
    const program = path.join(dir, 'x) y z');
    fs.symlinkSync(SLEEP, program);
    const child = spawn(program, ['300'], { stdio: 'ignore' });
    try {
      const pid = child.pid as number;
      await until('the child sleeps', () => procStat(pid)?.state === 'S');
      const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      expect(text).toContain('(x) y z) S ');
      expect(procStat(pid)?.startTime).toBe(Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]));
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('holderLiveness', () => {
  const view = (changes: Partial<HostView> = {}): HostView => ({ ...ownView(), ...changes });

  it('calls this process alive, with its pid', () => {
    expect(holderLiveness(holder(), directoryId(), view())).toEqual({ state: 'alive', why: `pid ${process.pid} runs` });
    // An unknown start time is no reason to doubt it.
    expect(holderLiveness(holder({ processStartTime: null }), directoryId(), view())).toEqual({ state: 'alive', why: `pid ${process.pid} runs` });
  });

  it('leaves a holder on another host to its lease, before looking at anything else', () => {
    const far = holder({ hostname: 'far-host', bootId: 'another-boot', directory: '1:2', pid: PID_NEVER });
    expect(holderLiveness(far, directoryId(), view())).toEqual({ state: 'unknown', why: 'it runs on host far-host' });
  });

  it('calls a holder of an earlier boot dead, but only when both boot ids are known', () => {
    const rebooted = { state: 'dead', why: 'the machine has rebooted since' };
    expect(holderLiveness(holder({ bootId: 'another-boot', directory: '1:2' }), directoryId(), view())).toEqual(rebooted);
    expect(holderLiveness(holder({ bootId: null }), directoryId(), view())).toEqual({ state: 'alive', why: `pid ${process.pid} runs` });
    expect(holderLiveness(holder({ bootId: 'another-boot' }), directoryId(), view({ bootId: null }))).toEqual({ state: 'alive', why: `pid ${process.pid} runs` });
  });

  it('calls a LOCK file copied from another directory dead, unless it names no directory', () => {
    expect(holderLiveness(holder({ directory: '1:2', pidNamespace: 'pid:[1]' }), directoryId(), view())).toEqual({ state: 'dead', why: 'the LOCK file was copied from another directory' });
    expect(holderLiveness(holder({ directory: null }), directoryId(), view())).toEqual({ state: 'alive', why: `pid ${process.pid} runs` });
  });

  it('leaves a holder in another pid namespace to its lease', () => {
    const why = 'it runs in another pid namespace (another container?)';
    expect(holderLiveness(holder({ pidNamespace: 'pid:[1]', pid: PID_NEVER }), directoryId(), view())).toEqual({ state: 'unknown', why });
    expect(holderLiveness(holder({ pidNamespace: null }), directoryId(), view())).toEqual({ state: 'unknown', why });
  });

  it('calls a pid that runs no process dead, and one that runs another process dead', () => {
    expect(holderLiveness(holder({ pid: PID_NEVER }), directoryId(), view())).toEqual({ state: 'dead', why: `no process ${PID_NEVER}` });
    const startTime = procStat('self')?.startTime ?? 0;
    for (const other of [startTime - 1, startTime + 1]) {
      expect(holderLiveness(holder({ processStartTime: other }), directoryId(), view())).toEqual({ state: 'dead', why: `pid ${process.pid} is now another process` });
    }
  });

  it('asks the kernel by signal 0 where there is no /proc', () => {
    const noProc = view({ hasProc: false });
    expect(holderLiveness(holder({ processStartTime: 1 }), directoryId(), noProc)).toEqual({ state: 'alive', why: `pid ${process.pid} runs` });
    expect(holderLiveness(holder({ pid: PID_NEVER }), directoryId(), noProc)).toEqual({ state: 'dead', why: `no process ${PID_NEVER}` });
  });

  it('calls alive a process it may not signal (EPERM), where there is no /proc', () => {
    // The tests run as root here, which may signal anything: the kernel's refusal is faked.
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => {
      throw Object.assign(new Error('kill EPERM'), { code: 'EPERM' });
    });
    try {
      expect(holderLiveness(holder({ pid: 1 }), directoryId(), view({ hasProc: false }))).toEqual({ state: 'alive', why: 'pid 1 runs' });
    } finally {
      kill.mockRestore();
    }
  });

  it('calls a process the kernel shows as dead (X) or a zombie (Z) dead', () => {
    // A process is in state X only for an instant while it is torn down: its stat line is faked.
    const real = fs.readFileSync;
    for (const state of ['X', 'Z']) {
      const read = vi.spyOn(fs, 'readFileSync').mockImplementation(((file: fs.PathOrFileDescriptor, options?: unknown) =>
        file === `/proc/${PID_NEVER}/stat` ? `${PID_NEVER} (gone) ${state} ${'0 '.repeat(18)}77 0` : real(file, options as BufferEncoding)) as typeof fs.readFileSync);
      try {
        expect(procStat(PID_NEVER)).toEqual({ state, startTime: 77 });
        expect(holderLiveness(holder({ pid: PID_NEVER, processStartTime: 77 }), directoryId(), view())).toEqual({ state: 'dead', why: `process ${PID_NEVER} has exited` });
      } finally {
        read.mockRestore();
      }
    }
  });

  it('looks at the host as this process sees it when given no view', () => {
    expect(holderLiveness(holder(), directoryId())).toEqual({ state: 'alive', why: `pid ${process.pid} runs` });
    expect(holderLiveness(holder({ hostname: `${os.hostname()}-not` }), directoryId()).state).toBe('unknown');
    expect(holderLiveness(holder({ pidNamespace: 'pid:[1]' }), directoryId()).state).toBe('unknown');
    // It reads /proc where there is one: a start time that differs is another process.
    expect(holderLiveness(holder({ processStartTime: 1 }), directoryId()).state).toBe('dead');
  });
});

describe('parseHolder', () => {
  const full = {
    pid: 7,
    processStartTime: 123,
    bootId: 'boot',
    pidNamespace: 'pid:[9]',
    hostname: 'h',
    directory: '3:4',
    owner: 'participant p1',
    createdAt: '2026-01-02T03:04:05.000Z',
    nonce: 'n',
  };

  it('keeps every field of a whole record, and only those', () => {
    expect(parseHolder(JSON.stringify({ ...full, extra: 1 }))).toEqual(full);
  });

  it('refuses a record without an integer pid, a string nonce or a string host name', () => {
    for (const broken of [
      { ...full, pid: undefined },
      { ...full, pid: 1.5 },
      { ...full, pid: '7' },
      { ...full, nonce: undefined },
      { ...full, nonce: 5 },
      { ...full, hostname: undefined },
      { ...full, hostname: 1 },
    ]) {
      expect(parseHolder(JSON.stringify(broken))).toBeUndefined();
    }
    for (const text of ['null', '7', '"text"', '[]', 'not json', '']) expect(parseHolder(text)).toBeUndefined();
  });

  it('reads a missing or mistyped optional field as unknown', () => {
    expect(parseHolder(JSON.stringify({ pid: 7, hostname: 'h', nonce: 'n' }))).toEqual({
      pid: 7,
      processStartTime: null,
      bootId: null,
      pidNamespace: null,
      hostname: 'h',
      directory: null,
      owner: null,
      createdAt: '?',
      nonce: 'n',
    });
    const mistyped = { ...full, processStartTime: '123', bootId: 1, pidNamespace: 2, directory: 3, owner: 4, createdAt: 5 };
    expect(parseHolder(JSON.stringify(mistyped))).toMatchObject({ processStartTime: null, bootId: null, pidNamespace: null, directory: null, owner: null, createdAt: '?' });
  });
});

describe('describeHolder', () => {
  it('names the owner, the pid, the host when it is another, and the start', () => {
    const view = ownView();
    expect(describeHolder(holder({ owner: 'participant p1', pid: 5 }), view)).toBe('participant p1 (pid 5, since 2026-01-02T03:04:05.000Z)');
    expect(describeHolder(holder({ owner: null, pid: 5, hostname: 'far' }), view)).toBe('a twopc process (pid 5 on host far, since 2026-01-02T03:04:05.000Z)');
    expect(describeHolder(undefined, view)).toBe('a process that does not say who it is');
    expect(describeHolder(holder({ pid: 5 }))).toBe('participant old (pid 5, since 2026-01-02T03:04:05.000Z)');
  });
});

describe('readLockFile', () => {
  it('says there is none, reads what there is with its modification time, and fails on anything but a missing file', async () => {
    expect(await readLockFile(dir)).toBeUndefined();
    writeLock(holder());
    const seconds = 1_700_000_000;
    fs.utimesSync(lockPath(), seconds, seconds);
    expect(await readLockFile(dir)).toEqual({ holder: holder(), mtimeNs: BigInt(seconds) * 1_000_000_000n });
    writeLock('{"pid":');
    expect((await readLockFile(dir))?.holder).toBeUndefined();
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, '');
    await expect(readLockFile(file)).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('closes the LOCK file after reading it', async () => {
    writeLock(holder());
    const open = (): number => fs.readdirSync('/proc/self/fd').length;
    const before = open();
    for (let i = 0; i < 20; i++) await readLockFile(dir);
    expect(open()).toBe(before);
  });

  it('reads at most 4096 bytes: a longer LOCK file is not one', async () => {
    const base = JSON.stringify(holder({ owner: '' }));
    const fits = holder({ owner: 'x'.repeat(4096 - base.length) });
    writeLock(fits);
    expect(JSON.stringify(fits).length).toBe(4096);
    expect((await readLockFile(dir))?.holder).toEqual(fits);
    writeLock(holder({ owner: 'x'.repeat(4097 - base.length) }));
    expect((await readLockFile(dir))?.holder).toBeUndefined();
  });
});

describe('heldWarning', () => {
  it('warns of a live holder, with its lease for one it cannot check, and says nothing otherwise', async () => {
    expect(await heldWarning(dir)).toBeUndefined();
    expect(await heldWarning(path.join(dir, 'missing'))).toBeUndefined();
    writeLock('not json');
    expect(await heldWarning(dir)).toBeUndefined();
    writeLock(holder({ pid: PID_NEVER }));
    expect(await heldWarning(dir)).toBeUndefined();
    writeLock(holder({ owner: 'participant p1' }));
    expect(await heldWarning(dir)).toBe(
      `the log is open in participant p1 (pid ${process.pid}, since 2026-01-02T03:04:05.000Z); it may change while it is read, and a torn tail may be a write in progress`,
    );
    writeLock(holder({ owner: 'participant p1', hostname: 'far' }));
    expect(await heldWarning(dir)).toBe(
      `the log is open in participant p1 (pid ${process.pid} on host far, since 2026-01-02T03:04:05.000Z) as far as its LOCK file says (it runs on host far); it may change while it is read, and a torn tail may be a write in progress`,
    );
  });
});

describe('acquireDirLock', () => {
  it('writes exactly its holder record, one line, readable by all, and nothing else', async () => {
    const before = new Date().toISOString();
    const writeFile = vi.spyOn(fs.promises, 'writeFile');
    const lock = await acquire();
    const after = new Date().toISOString();
    const view = ownView();
    expect(lock.dir).toBe(dir);
    expect(lock.holder).toEqual({
      pid: process.pid,
      processStartTime: procStat('self')?.startTime,
      bootId: view.bootId,
      pidNamespace: view.pidNamespace,
      hostname: view.hostname,
      directory: directoryId(),
      owner: null,
      createdAt: lock.holder.createdAt,
      nonce: lock.holder.nonce,
    });
    expect(lock.holder.createdAt >= before && lock.holder.createdAt <= after).toBe(true);
    expect(lock.holder.nonce).toMatch(/^[0-9a-f]{16}$/);
    expect(fs.readFileSync(lockPath(), 'utf8')).toBe(`${JSON.stringify(lock.holder)}\n`);
    expect(fs.statSync(lockPath()).mode & 0o777).toBe(0o644 & ~process.umask());
    // Whatever the umask lets through, the LOCK file is never writable by others: it is created
    // with mode 0644, which the usual umask (022) cannot tell from the default 0666.
    expect(writeFile.mock.calls[0]?.[2]).toEqual({ flag: 'wx', mode: 0o644 });
    await lock.release();
    // A worker thread (Stryker's runner) may not set the umask; the call's mode above still holds.
    if (isMainThread) {
      const umask = process.umask(0);
      try {
        await acquire();
      } finally {
        process.umask(umask);
      }
      expect(fs.statSync(lockPath()).mode & 0o777).toBe(0o644);
    } else {
      await acquire();
    }
    expect(fs.readdirSync(dir)).toEqual([LOCK_FILE]);
    // Each holding has its own nonce.
    expect((await readLockFile(dir))?.holder?.nonce).not.toBe(lock.holder.nonce);
  });

  it('refuses a second holder with the answer of the guard, not the LOCK file, and leaves both alone', async () => {
    const first = await acquire({ owner: 'coordinator c1' });
    writeLock(holder({ owner: 'what the file says' }));
    const error = await refusal({ owner: 'coordinator c2' });
    expect(error.code).toBe('WAL_LOCKED');
    expect(error.holder).toEqual(first.holder);
    expect(error.path).toBe(dir);
    expect(error.message).toBe(lockedMessage(`coordinator c1 (pid ${process.pid}, since ${first.holder.createdAt})`));
    expect((await readLockFile(dir))?.holder?.owner).toBe('what the file says');
    expect(fs.readdirSync(dir)).toEqual([LOCK_FILE]);
  });

  it("names the LOCK file's holder when the guard's holder does not say who it is, and nobody when neither does", async () => {
    await foreignGuard('garbage');
    writeLock(holder({ owner: 'participant far', pid: 4242 }));
    const named = await refusal();
    expect(named.message).toBe(lockedMessage('participant far (pid 4242, since 2026-01-02T03:04:05.000Z)'));
    expect(named.holder).toEqual(holder({ owner: 'participant far', pid: 4242 }));
    fs.unlinkSync(lockPath());
    const nobody = await refusal();
    expect(nobody.message).toBe(lockedMessage('a process that does not say who it is'));
    expect(nobody.holder).toBeUndefined();
  });

  it("stops waiting for a guard's holder that never answers, and names the LOCK file's holder", async () => {
    const silent = net.createServer(() => undefined);
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen({ path: `\0twopc-wal-lock/${directoryId()}` }, () => resolve()));
    writeLock(holder({ owner: 'participant mute', pid: 4242 }));
    const error = await refusal();
    expect(error.message).toBe(lockedMessage('participant mute (pid 4242, since 2026-01-02T03:04:05.000Z)'));
    // The refused starter closed its side: the silent holder is left with no connection.
    await until('the connection is closed', () => new Promise((resolve) => silent.getConnections((_, count) => resolve(count === 0))));
  });

  it("reads at most 4096 bytes of the guard's answer", async () => {
    const base = JSON.stringify(holder({ owner: '' }));
    await foreignGuard(`${JSON.stringify(holder({ owner: 'x'.repeat(4097 - base.length) }))}`);
    writeLock(holder({ owner: 'the file', pid: 4242 }));
    expect((await refusal()).holder?.owner).toBe('the file');
  });

  it("reads a guard's answer whose character arrives split between two writes", async () => {
    const answer = holder({ owner: 'participant zoë' });
    const text = JSON.stringify(answer);
    // Inside the ë: its first byte ends the first write, its second begins the next.
    await foreignGuardInTwo(text, Buffer.byteLength(text.slice(0, text.indexOf('ë'))) + 1);
    writeLock(holder({ owner: 'the file', pid: 4242 }));
    expect((await refusal()).holder).toEqual(answer);
  });

  it("refuses a guard's answer that passes 4096 bytes after a holder that would parse on its own", async () => {
    const text = JSON.stringify(holder({ owner: 'participant long' }));
    // The holder leaves first, whole; what follows takes the answer past the bound.
    await foreignGuardInTwo(`${text}${' '.repeat(4097 - Buffer.byteLength(text))}`, Buffer.byteLength(text));
    writeLock(holder({ owner: 'the file', pid: 4242 }));
    expect((await refusal()).holder?.owner).toBe('the file');
  });

  it("counts the guard's answer in bytes, as the LOCK file's: 4097 bytes in fewer characters is too long", async () => {
    const base = JSON.stringify(holder({ owner: '' }));
    // Each é is two bytes in one character: 4097 bytes in all, in fewer characters.
    const free = 4097 - base.length;
    const answer = JSON.stringify(holder({ owner: `${'é'.repeat(Math.floor(free / 2))}${'x'.repeat(free % 2)}` }));
    expect(Buffer.byteLength(answer)).toBe(4097);
    expect(answer.length).toBeLessThan(4096);
    await foreignGuard(answer);
    writeLock(holder({ owner: 'the file', pid: 4242 }));
    expect((await refusal()).holder?.owner).toBe('the file');
  });

  it("reads the guard's answer of exactly 4096 bytes", async () => {
    const base = JSON.stringify(holder({ owner: '' }));
    const answer = holder({ owner: 'y'.repeat(4096 - base.length) });
    await foreignGuard(JSON.stringify(answer));
    writeLock(holder({ owner: 'the file', pid: 4242 }));
    expect((await refusal()).holder).toEqual(answer);
  });

  it('refuses when a LOCK file names a live process, and gives the guard back', async () => {
    writeLock(holder({ owner: 'participant p9' }));
    const error = await refusal({ owner: 'participant p1' });
    expect(error.message).toBe(lockedMessage(`participant p9 (pid ${process.pid}, since 2026-01-02T03:04:05.000Z)`));
    expect(error.holder).toEqual(holder({ owner: 'participant p9' }));
    expect(fs.readdirSync(dir)).toEqual([LOCK_FILE]);
    // The refused starter holds nothing: once the LOCK file is a dead one's, the next start takes it.
    writeLock(holder({ pid: PID_NEVER }));
    await acquire();
  });

  it('refuses when the LOCK file appears between its look and its link, and gives the guard back', async () => {
    // A dangling symbolic link: reading it finds no file, linking over it finds the name taken.
    fs.symlinkSync(path.join(dir, 'nowhere'), lockPath());
    const error = await refusal();
    expect(error.code).toBe('WAL_LOCKED');
    expect(error.message).toBe(lockedMessage('a process that does not say who it is', ' (it took the directory just now)'));
    expect(fs.readdirSync(dir)).toEqual([LOCK_FILE]);
    fs.unlinkSync(lockPath());
    await acquire();
  });

  it('takes over the LOCK file of a dead holder by replacing it', async () => {
    writeLock(holder({ pid: PID_NEVER }));
    const lock = await acquire();
    expect((await readLockFile(dir))?.holder).toEqual(lock.holder);
    expect(fs.readdirSync(dir)).toEqual([LOCK_FILE]);
  });

  it('waits out the default lease (5 s) when given none, so a holder renewing it is refused', async () => {
    writeLock(holder({ hostname: 'far' }));
    let seconds = 1_000_000;
    const error = await whileRenewing(() => refusal(), () => fs.utimesSync(lockPath(), ++seconds, seconds));
    expect(error.code).toBe('WAL_LOCKED');
  });

  it('takes over at once, without polling, a lease that is stale at zero', async () => {
    writeLock(holder({ hostname: 'far' }));
    const lock = await acquire({ leaseStaleMs: 0 });
    expect((await readLockFile(dir))?.holder?.nonce).toBe(lock.holder.nonce);
  });

  it("refuses while a holder it cannot check touches its LOCK file, naming the lease and why it cannot check", async () => {
    const far = holder({ hostname: 'far', owner: 'participant far', pid: 4242 });
    writeLock(far);
    let seconds = 1_000_000;
    const error = await whileRenewing(() => refusal({ leaseStaleMs: 600_000 }), () => fs.utimesSync(lockPath(), ++seconds, seconds));
    expect(error.message).toBe(lockedMessage('participant far (pid 4242 on host far, since 2026-01-02T03:04:05.000Z)', ' (it runs on host far; its lease is being renewed)'));
    expect(error.holder).toEqual(far);
  });

  it('refuses when a holder it cannot check rewrites its LOCK file, even with the same modification time', async () => {
    writeLock(holder({ hostname: 'far' }));
    fs.utimesSync(lockPath(), 1_000_000, 1_000_000);
    let holding = 0;
    // Written aside with the old time and renamed over it, so no read ever sees another time.
    const renew = (): void => {
      const aside = path.join(dir, 'LOCK.aside');
      fs.writeFileSync(aside, JSON.stringify(holder({ hostname: 'far', nonce: `holding-${++holding}` })));
      fs.utimesSync(aside, 1_000_000, 1_000_000);
      fs.renameSync(aside, lockPath());
    };
    // A starter that only compared the times would wait the lease out and take the directory.
    const error = await whileRenewing(() => refusal({ leaseStaleMs: 30_000 }), renew);
    expect(error.code).toBe('WAL_LOCKED');
  });

  it('takes the directory when the LOCK file it waits on goes away', async () => {
    writeLock(holder({ hostname: 'far' }));
    const pending = acquire({ leaseStaleMs: 600_000 });
    // Once the starter's guard answers, it reads the LOCK file and starts polling it.
    await until("the starter's guard answers", async () => (await askGuard()) !== '');
    await new Promise((resolve) => setTimeout(resolve, 250));
    fs.unlinkSync(lockPath());
    const lock = await pending;
    expect((await readLockFile(dir))?.holder?.nonce).toBe(lock.holder.nonce);
  });

  it('fails with the disk error when the directory does not exist', async () => {
    await expect(acquireDirLock(path.join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('the held lease', () => {
  // Not the default period (1 s): a lock that ignored the option would renew at the wrong time.
  const renewMs = 700;

  it('touches its LOCK file once per period, not before', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    await acquire({ leaseRenewMs: renewMs });
    fs.utimesSync(lockPath(), 1_000_000, 1_000_000);
    const mtime = (): number => fs.statSync(lockPath()).mtimeMs;
    await vi.advanceTimersByTimeAsync(renewMs - 1);
    // A renewal would have been started by now; give its file calls time to finish.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(mtime()).toBe(1_000_000_000);
    await vi.advanceTimersByTimeAsync(1);
    await until('the lease is renewed', () => mtime() !== 1_000_000_000);
    expect(Math.abs(mtime() - Date.now())).toBeLessThan(60_000);
    // And again at the next period: one renewal does not stop the next.
    fs.utimesSync(lockPath(), 1_000_000, 1_000_000);
    await vi.advanceTimersByTimeAsync(renewMs);
    await until('the lease is renewed again', () => mtime() !== 1_000_000_000);
  });

  it('reports a removed LOCK file once, to a listener added before or after, and stops renewing', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const lock = await acquire({ leaseRenewMs: renewMs });
    const before: WalError[] = [];
    lock.onLost((error) => before.push(error));
    fs.unlinkSync(lockPath());
    await vi.advanceTimersByTimeAsync(renewMs);
    await until('the loss is reported', () => before.length > 0);
    expect(before[0]?.code).toBe('WAL_LOCK_LOST');
    expect(before[0]?.path).toBe(dir);
    expect(before[0]?.message).toBe(`The LOCK file of ${dir} was removed while this process held it; stopping writes.`);
    const after: WalError[] = [];
    lock.onLost((error) => after.push(error));
    expect(after).toEqual([before[0]]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reports a LOCK file replaced by one that does not parse', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const lock = await acquire({ leaseRenewMs: renewMs });
    const lost: WalError[] = [];
    lock.onLost((error) => lost.push(error));
    writeLock('not json');
    await vi.advanceTimersByTimeAsync(renewMs);
    await until('the loss is reported', () => lost.length > 0);
    expect(lost[0]?.message).toBe(`The LOCK file of ${dir} was replaced by a process that does not say who it is while this process held it; stopping writes.`);
  });

  it('reports a replaced LOCK file naming who replaced it, and leaves that file alone', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const lock = await acquire({ leaseRenewMs: renewMs });
    const lost: WalError[] = [];
    lock.onLost((error) => lost.push(error));
    writeLock(holder({ owner: 'participant p2', nonce: 'intruder' }));
    fs.utimesSync(lockPath(), 1_000_000, 1_000_000);
    await vi.advanceTimersByTimeAsync(renewMs);
    await until('the loss is reported', () => lost.length > 0);
    expect(lost[0]?.message).toBe(`The LOCK file of ${dir} was replaced by participant p2 (pid ${process.pid}, since 2026-01-02T03:04:05.000Z) while this process held it; stopping writes.`);
    expect(fs.statSync(lockPath()).mtimeMs).toBe(1_000_000_000);
    await lock.release();
    expect((await readLockFile(dir))?.holder?.nonce).toBe('intruder');
  });

  it('stops renewing at release, once, even if released twice', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const lock = await acquire({ leaseRenewMs: renewMs });
    const release = lock.release();
    expect(lock.release()).toBe(release);
    await release;
    expect(fs.existsSync(lockPath())).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    // A released holder reports no loss of the file it removed itself.
    const lost: WalError[] = [];
    lock.onLost((error) => lost.push(error));
    expect(lost).toEqual([]);
  });

  it('releases without complaint when its directory is gone', async () => {
    const lock = await acquire();
    await remove();
    await expect(lock.release()).resolves.toBeUndefined();
    fs.mkdirSync(dir);
  });
});
