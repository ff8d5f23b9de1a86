/**
 * One writer per WAL directory (wal/dir-lock.ts), on the real file system and real
 * processes: who is alive is read from /proc, so the holders here are real processes too
 * (a sleeping child, a zombie, an exited one). The refusals must name the directory and the
 * holder; a dead holder's LOCK file must never block a start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOCK_FILE, acquireDirLock, procStat, readLockFile, type DirLock, type LockHolder } from '../../wal/dir-lock.ts';
import { WalError } from '../../wal/errors.ts';
import { openFileLog } from '../../wal/file-log.ts';
import { inspectWal, verifyWal } from '../../wal/inspect.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** Polls are bounded in count; the conditions they wait for happen within milliseconds. */
const POLLS_MAX = 400;
const POLL_MS = 25;

let dir: string;
let remove: () => Promise<void>;
const held: DirLock[] = [];
const children: ChildProcess[] = [];

beforeEach(async () => {
  ({ dir, remove } = await tempDir('twopc-dir-lock-'));
});
afterEach(async () => {
  await Promise.all(held.splice(0).map((lock) => lock.release()));
  for (const child of children.splice(0)) child.kill('SIGKILL');
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

/** What a holder with `pid` would have written, with `changes` applied. */
function holderLike(pid: number, changes: Partial<LockHolder> = {}): LockHolder {
  const own = JSON.parse(JSON.stringify({ ...readSelf(), pid, processStartTime: procStat(pid)?.startTime ?? null, nonce: `test-${pid}` })) as LockHolder;
  return { ...own, owner: 'participant old', ...changes };
}

function readSelf(): LockHolder {
  // The fields a LOCK file holds for this process: the same host, boot and pid namespace.
  return {
    pid: process.pid,
    processStartTime: procStat('self')?.startTime ?? null,
    bootId: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    pidNamespace: fs.readlinkSync('/proc/self/ns/pid'),
    hostname: os.hostname(),
    directory: `${fs.statSync(dir).dev}:${fs.statSync(dir).ino}`,
    owner: null,
    createdAt: new Date().toISOString(),
    nonce: 'self',
  };
}

function writeLock(content: string | LockHolder): void {
  fs.writeFileSync(path.join(dir, LOCK_FILE), typeof content === 'string' ? content : JSON.stringify(content));
}

function sleeper(): ChildProcess {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  children.push(child);
  return child;
}

describe('acquireDirLock', () => {
  it('writes a LOCK file naming this process, and removes it on release', async () => {
    const lock = await acquire({ owner: 'participant p1' });
    const file = await readLockFile(dir);
    expect(file?.holder).toEqual(lock.holder);
    expect(lock.holder).toMatchObject({ pid: process.pid, owner: 'participant p1', processStartTime: procStat('self')?.startTime });
    expect(lock.holder.bootId).toMatch(/^[0-9a-f-]{36}$/);
    await lock.release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    // Released means free: the next one gets it at once.
    await acquire();
  });

  it('refuses a second holder, naming the directory, the holder pid and what it is', async () => {
    await acquire({ owner: 'coordinator c1' });
    const error = await refusal({ owner: 'coordinator c2' });
    expect(error.code).toBe('WAL_LOCKED');
    expect(error.message).toContain(dir);
    expect(error.message).toContain(`pid ${process.pid}`);
    expect(error.message).toContain('coordinator c1');
    expect(error.holder).toMatchObject({ pid: process.pid, owner: 'coordinator c1' });
  });

  it('lets exactly one of two racing starters break one stale LOCK file', async () => {
    const gone = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    const pid = gone.pid as number;
    await new Promise((resolve) => gone.once('exit', resolve));
    writeLock(holderLike(pid, { processStartTime: 1 }));
    const results = await Promise.allSettled([acquire({ owner: 'a' }), acquire({ owner: 'b' })]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.reason).toMatchObject({ code: 'WAL_LOCKED' });
    expect((await readLockFile(dir))?.holder?.owner).toBe((won[0] as PromiseFulfilledResult<DirLock>).value.holder.owner);
  });

  it('takes over the LOCK file of a process that has exited', async () => {
    const gone = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((resolve) => gone.once('exit', resolve));
    writeLock(holderLike(gone.pid as number, { processStartTime: 12345 }));
    const lock = await acquire();
    expect((await readLockFile(dir))?.holder?.nonce).toBe(lock.holder.nonce);
  });

  it('takes over when the pid now belongs to another process (start time differs)', async () => {
    const child = sleeper();
    const pid = child.pid as number;
    await until('the child runs', () => procStat(pid) !== undefined);
    writeLock(holderLike(pid, { processStartTime: (procStat(pid)?.startTime ?? 0) - 1 }));
    await acquire();
  });

  it('takes over from a zombie', async () => {
    // `sleep 1` exits after its parent has become `sleep 300`, which never reaps it. (`sleep 0` could exit
    // before the exec, and the shell would reap it: no zombie.)
    const shell = spawn('sh', ['-c', 'sleep 1 & echo $!; exec sleep 300'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(shell);
    let out = '';
    shell.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await until('the shell prints the pid', () => out.includes('\n'));
    const zombie = Number(out.trim());
    await until('the child is a zombie', () => procStat(zombie)?.state === 'Z');
    writeLock(holderLike(zombie));
    await acquire();
  });

  it('refuses when the LOCK file names a live process (a holder the guard cannot see)', async () => {
    const child = sleeper();
    const pid = child.pid as number;
    await until('the child runs', () => procStat(pid) !== undefined);
    writeLock(holderLike(pid));
    const error = await refusal();
    expect(error.code).toBe('WAL_LOCKED');
    expect(error.message).toContain(`pid ${pid}`);
    expect(error.message).toContain('participant old');
  });

  it('takes over a LOCK file copied from another directory, even though its holder runs', async () => {
    const child = sleeper();
    await until('the child runs', () => procStat(child.pid as number) !== undefined);
    writeLock(holderLike(child.pid as number, { directory: '1:2' }));
    await acquire();
  });

  it('takes over a LOCK file from an earlier boot of this machine', async () => {
    const child = sleeper();
    await until('the child runs', () => procStat(child.pid as number) !== undefined);
    writeLock(holderLike(child.pid as number, { bootId: '00000000-0000-0000-0000-000000000000' }));
    await acquire();
  });

  it('waits out the lease of a holder it cannot check: refuses while it is renewed, takes over once it is not', async () => {
    const foreign = holderLike(4242, { hostname: 'another-host', owner: 'participant far' });
    writeLock(foreign);
    const file = path.join(dir, LOCK_FILE);
    let tick = 0;
    const renewing = setInterval(() => {
      tick++;
      fs.utimesSync(file, 1_000_000 + tick, 1_000_000 + tick);
    }, 20);
    try {
      const error = await refusal({ leaseStaleMs: 10_000 });
      expect(error.message).toContain('pid 4242 on host another-host');
      expect(error.message).toContain('lease');
    } finally {
      clearInterval(renewing);
    }
    await acquire({ leaseStaleMs: 300 });
  });

  it('treats an unreadable LOCK file as a lease nobody renews', async () => {
    writeLock('not json');
    await acquire({ leaseStaleMs: 200 });
    expect((await readLockFile(dir))?.holder?.pid).toBe(process.pid);
  });

  it('renews its lease, and reports the loss when its LOCK file is replaced', async () => {
    const lock = await acquire({ leaseRenewMs: 20 });
    const file = path.join(dir, LOCK_FILE);
    const before = fs.statSync(file).mtimeMs;
    await until('the lease is renewed', () => fs.statSync(file).mtimeMs !== before);
    const lost = new Promise<WalError>((resolve) => lock.onLost(resolve));
    writeLock(holderLike(process.pid, { nonce: 'someone-else' }));
    const error = await lost;
    expect(error.code).toBe('WAL_LOCK_LOST');
    // Release leaves the other holder's file alone.
    await lock.release();
    expect((await readLockFile(dir))?.holder?.nonce).toBe('someone-else');
  });
});

describe('openFileLog takes the directory', () => {
  it('refuses a second log on one directory until the first is closed', async () => {
    const first = await openFileLog(dir, { segmentBytes: 64 * 1024, owner: 'participant p1' });
    await first.log.append(1, new Uint8Array([1, 2, 3]), { durable: true });
    const error = await openFileLog(dir, { segmentBytes: 64 * 1024 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'WAL_LOCKED' });
    expect(String((error as Error).message)).toContain('participant p1');
    // The refused open changed nothing: the first log goes on, and its record is there.
    await first.log.append(1, new Uint8Array([4]), { durable: true });
    await first.log.close();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    const again = await openFileLog(dir, { segmentBytes: 64 * 1024 });
    expect(again.recovered.entries.map((e) => [...e.payload])).toEqual([[1, 2, 3], [4]]);
    await again.log.close();
  });

  it('fails stop when its LOCK file is taken from it', async () => {
    const { log } = await openFileLog(dir, { segmentBytes: 64 * 1024 });
    writeLock(holderLike(process.pid, { nonce: 'intruder' }));
    // The lease is renewed (and checked) every second.
    await until('the log is poisoned', () => log.poisoned);
    await expect(log.append(1, new Uint8Array([1]))).rejects.toMatchObject({ code: 'WAL_POISONED' });
    await log.close().catch(() => undefined);
  });

  it('is left alone by verify and inspect, which say the log is open', async () => {
    const { log } = await openFileLog(dir, { segmentBytes: 64 * 1024, owner: 'participant p1' });
    const lockBefore = fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8');
    const verified = await verifyWal(dir);
    const inspected = await inspectWal(dir);
    for (const report of [verified, inspected]) expect(report.warnings.join('\n')).toContain(`open in participant p1 (pid ${process.pid}`);
    expect(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).toBe(lockBefore);
    // The holder was not disturbed: it still appends, and closes cleanly.
    await log.append(1, new Uint8Array([1]), { durable: true });
    await log.close();
    expect((await verifyWal(dir)).warnings).toEqual([]);
  });

  it('takes no lock on a simulated disk', async () => {
    const sim = new SimFs(() => 0.5);
    const first = await openFileLog('/wal', { fs: sim, segmentBytes: 4096 });
    expect((await sim.readdir('/wal')).includes(LOCK_FILE)).toBe(false);
    await first.log.close();
  });
});
