/**
 * The guard's retry: a starter whose bind fails asks the guard's holder who it is, and when nobody
 * answers (the holder died between the failed bind and the question) binds again, at most
 * BIND_ATTEMPTS_MAX (3) times. The holder's death is made at that exact point: the test's guard is
 * closed inside the starter's `net.connect`, before the real connect runs. Linux only (abstract
 * socket names), as the guard itself.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LOCK_FILE, acquireDirLock, describeHolder, readLockFile, type DirLock } from '../../wal/dir-lock.ts';
import { WalError } from '../../wal/errors.ts';
import { tempDir } from './helpers/temp-dir.ts';

const BIND_ATTEMPTS_MAX = 3;

let dir = '';
let remove: () => Promise<void> = async () => undefined;
const held: DirLock[] = [];
const servers: net.Server[] = [];

beforeEach(async () => {
  ({ dir, remove } = await tempDir('twopc-dir-lock-retry-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(held.splice(0).map((lock) => lock.release()));
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  await remove();
});

const guardName = (): string => `\0twopc-wal-lock/${fs.statSync(dir).dev}:${fs.statSync(dir).ino}`;
const otherHolder = { pid: 1, nonce: 'other', hostname: 'elsewhere', owner: 'participant other' };

/** A guard on the directory's name, held by "another process" that answers `answer`. */
async function foreignGuard(answer: string): Promise<net.Server> {
  const server = net.createServer((conn) => {
    conn.on('error', () => undefined);
    conn.end(answer);
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: guardName() }, () => resolve());
  });
  return server;
}

/** Counts the starter's questions to the guard; `before` runs first, awaited, on each. */
function watchQuestions(before: (n: number) => Promise<string | undefined> = async () => undefined): () => number {
  let questions = 0;
  vi.spyOn(net, 'connect').mockImplementation(((options: net.NetConnectOpts) => {
    questions += 1;
    // A socket now, connected once `before` is done: the starter listens on it at once.
    const socket = new net.Socket();
    void before(questions).then((redirect) => socket.connect({ path: redirect ?? (options as net.IpcNetConnectOpts).path }));
    return socket;
  }) as typeof net.connect);
  return () => questions;
}

async function refusal(): Promise<WalError> {
  const error = await acquireDirLock(dir, { leaseStaleMs: 0 }).then(
    (lock) => {
      held.push(lock);
      return undefined;
    },
    (e: unknown) => e,
  );
  if (!(error instanceof WalError)) throw new Error(`expected a WalError, got ${String(error)}`);
  return error;
}

describe.runIf(process.platform === 'linux')("the guard's retry", () => {
  it('binds again when the holder dies between the failed bind and the question, and takes the directory', async () => {
    const guard = await foreignGuard(`${JSON.stringify(otherHolder)}\n`);
    const questions = watchQuestions(async () => {
      await new Promise((resolve) => guard.close(resolve));
      return undefined;
    });
    const lock = await acquireDirLock(dir, { leaseStaleMs: 0 });
    held.push(lock);
    expect(questions()).toBe(1);
    expect((await readLockFile(dir))?.holder?.nonce).toBe(lock.holder.nonce);
  });

  it('asks a live holder once and refuses, naming it', async () => {
    await foreignGuard(`${JSON.stringify(otherHolder)}\n`);
    const questions = watchQuestions();
    const error = await refusal();
    expect(questions()).toBe(1);
    expect(error.code).toBe('WAL_LOCKED');
    expect(error.holder?.nonce).toBe('other');
  });

  it("takes a question that fails otherwise (EAGAIN: a holder too busy to accept) for a live holder, not a dead one", async () => {
    await foreignGuard(`${JSON.stringify(otherHolder)}\n`);
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify(otherHolder));
    let questions = 0;
    vi.spyOn(net, 'connect').mockImplementation((() => {
      questions += 1;
      const socket = new net.Socket();
      setImmediate(() => socket.destroy(Object.assign(new Error('connect EAGAIN'), { code: 'EAGAIN' })));
      return socket;
    }) as typeof net.connect);
    const error = await refusal();
    // Asked once, not retried as if the holder had died; named from its LOCK file.
    expect(questions).toBe(1);
    expect(error.holder?.nonce).toBe('other');
  });

  it(`gives up after ${BIND_ATTEMPTS_MAX} binds when every question finds nobody, and names nobody`, async () => {
    await foreignGuard(`${JSON.stringify(otherHolder)}\n`);
    // A LOCK file naming someone: a holder that is gone is not looked up there.
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify(otherHolder));
    // Every question goes to a name nobody listens on: ECONNREFUSED, "gone", while the bind keeps failing.
    const questions = watchQuestions(async () => `\0twopc-wal-lock-test-nobody/${process.pid}/${dir}`);
    const error = await refusal();
    expect(questions()).toBe(BIND_ATTEMPTS_MAX);
    expect(error.code).toBe('WAL_LOCKED');
    expect(error.holder).toBeUndefined();
    expect(error.message).toBe(`WAL directory ${dir} is in use by ${describeHolder(undefined)}; a log has one writer, so this process will not open it.`);
  });
});

/** The guard servers `acquireDirLock` creates, as it creates them. */
function watchGuards(): net.Server[] {
  const created: net.Server[] = [];
  const createServer = net.createServer.bind(net) as (listener: (socket: net.Socket) => void) => net.Server;
  vi.spyOn(net, 'createServer').mockImplementation(((listener: (socket: net.Socket) => void) => {
    const server = createServer(listener);
    created.push(server);
    return server;
  }) as typeof net.createServer);
  return created;
}

describe.runIf(process.platform === 'linux')('the bound guard', () => {
  it('survives an error of its own after binding, and still answers who holds the directory', async () => {
    const guards = watchGuards();
    const lock = await acquireDirLock(dir, { leaseStaleMs: 0 });
    held.push(lock);
    const guard = guards.at(-1);
    expect(() => guard?.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }))).not.toThrow();
    vi.restoreAllMocks();
    const error = await refusal();
    expect(error.holder?.nonce).toBe(lock.holder.nonce);
  });

  it('survives a client that hangs up before its answer is written', async () => {
    const guards = watchGuards();
    const lock = await acquireDirLock(dir, { leaseStaleMs: 0 });
    held.push(lock);
    const guard = guards.at(-1) as net.Server;
    // The error such a client causes (EPIPE on the answer) is raised on the guard's side of the
    // connection, after the guard's own handler is on it.
    const outcome = new Promise<string>((resolve) => {
      guard.once('connection', (conn: net.Socket) => {
        try {
          conn.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
          resolve('handled');
        } catch (e) {
          resolve(`thrown: ${String(e)}`);
        }
      });
    });
    const client = net.connect({ path: guardName() });
    client.on('error', () => undefined);
    const seen = await outcome;
    // Before the check: an open connection would hold the guard's close, and the release, up.
    client.destroy();
    expect(seen).toBe('handled');
  });
});
