/**
 * The simulated disk's semantics, each checked exactly: which bytes survive a crash in each
 * mode (with the random draws scripted, so every kept prefix, torn sector and scattered sector
 * is known), which calls fail and with which error, what a sync reports and counts, and what a
 * clone shares. Every durability claim of the WAL is proved on this disk, so a disk that, say,
 * kept unsynced writes across a crash must fail here, not only in the WAL's tests.
 */
import { describe, expect, it } from 'vitest';
import { SimFs, ioError, type SimSyncEvent, type SimWriteEvent } from '../../wal/sim-fs.ts';

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
};

/**
 * A random function that returns `values` in order and throws when asked for one more: a crash
 * that draws more (or fewer, checked by `drained`) numbers than the semantics need fails.
 */
function scripted(...values: number[]): (() => number) & { drained: () => boolean } {
  const queue = [...values];
  const next = (): number => {
    const value = queue.shift();
    if (value === undefined) throw new Error('the simulated disk drew one random number more than scripted');
    return value;
  };
  return Object.assign(next, { drained: () => queue.length === 0 });
}

const noRandom = (): number => {
  throw new Error('the simulated disk drew a random number where none is needed');
};

/** A file `path` holding `content`, durable with its directory entry. */
async function durableFile(fs: SimFs, path: string, content: Uint8Array): Promise<void> {
  const file = await fs.open(path, 'create');
  if (content.length > 0) await file.writev([content], 0);
  await file.datasync();
  await fs.syncDir(path.slice(0, path.lastIndexOf('/')) || '/');
  await file.close();
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof Error)) throw new Error(`expected a rejection, got ${String(error)}`);
  return error;
}

describe('SimFs file contents', () => {
  it('reads what was written, past the first allocation, with the gap before a far write zero', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    const file = await fs.open('/d/a', 'create');
    await file.writev([bytes(100, 1)], 0);
    // Grows the buffer (first allocation 256 bytes): the first 100 bytes must be carried over.
    await file.writev([bytes(10, 2)], 1000);
    expect(fs.readFile('/d/a')).toEqual(concat(bytes(100, 1), bytes(900, 0), bytes(10, 2)));
    expect(await file.size()).toBe(1010);
    // A write inside the file changes those bytes and not the size.
    await file.writev([bytes(5, 3)], 10);
    expect(await file.size()).toBe(1010);
    expect(fs.readFile('/d/a')?.subarray(8, 17)).toEqual(new Uint8Array([1, 1, 3, 3, 3, 3, 3, 1, 1]));
  });

  it('writes the buffers of one writev one after another', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    const file = await fs.open('/d/a', 'create');
    await file.writev([bytes(3, 1), bytes(0, 9), bytes(2, 2), bytes(1, 3)], 4);
    expect(fs.readFile('/d/a')).toEqual(new Uint8Array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3]));
  });

  it('copies what it writes: the caller may reuse its buffer at once', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    const file = await fs.open('/d/a', 'create');
    const staging = Buffer.alloc(4, 7);
    await file.writev([staging], 0);
    staging.fill(9);
    fs.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/d/a')).toEqual(bytes(4, 7));
  });

  it('reads at most the buffer, only up to the end, and nothing at or past the end', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', new Uint8Array([1, 2, 3, 4, 5]));
    const file = await fs.open('/d/a', 'read');
    const two = new Uint8Array(2);
    expect(await file.read(two, 1)).toBe(2);
    expect(two).toEqual(new Uint8Array([2, 3]));
    const ten = new Uint8Array(10).fill(8);
    expect(await file.read(ten, 3)).toBe(2);
    expect(ten).toEqual(new Uint8Array([4, 5, 8, 8, 8, 8, 8, 8, 8, 8]));
    const one = new Uint8Array(1).fill(8);
    expect(await file.read(one, 5)).toBe(0);
    expect(await file.read(one, 6)).toBe(0);
    expect(one).toEqual(new Uint8Array([8]));
  });

  it('zeroes what a truncate cuts off, so growing the file again reads zeros', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    const file = await fs.open('/d/a', 'create');
    await file.writev([bytes(10, 1)], 0);
    await file.truncate(4);
    expect(await file.size()).toBe(4);
    expect(fs.readFile('/d/a')).toEqual(bytes(4, 1));
    await file.truncate(8);
    expect(fs.readFile('/d/a')).toEqual(concat(bytes(4, 1), bytes(4, 0)));
    await file.writev([bytes(1, 2)], 9);
    expect(fs.readFile('/d/a')).toEqual(concat(bytes(4, 1), bytes(5, 0), bytes(1, 2)));
  });

  it('grows a file by truncate to exactly that many zero bytes, past the first allocation', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    const file = await fs.open('/d/a', 'create');
    await file.truncate(1000);
    expect(await file.size()).toBe(1000);
    expect(fs.readFile('/d/a')).toEqual(bytes(1000, 0));
    const tail = new Uint8Array(8).fill(5);
    expect(await file.read(tail, 996)).toBe(4);
    expect(tail).toEqual(new Uint8Array([0, 0, 0, 0, 5, 5, 5, 5]));
  });

  it('returns copies from readFile, and undefined for no such file', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(3, 1));
    const seen = fs.readFile('/d/a') as Uint8Array;
    seen.fill(9);
    expect(fs.readFile('/d/a')).toEqual(bytes(3, 1));
    expect(fs.readFile('/d/b')).toBeUndefined();
  });
});

describe('SimFs errors', () => {
  it('builds an I/O error with its code in the message and as a property', () => {
    const error = ioError('EIO', 'the disk is gone') as Error & { code?: string };
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe('EIO: the disk is gone');
    expect(error.code).toBe('EIO');
  });

  it('refuses to create a file that exists, and to open one that does not', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(3, 1));
    const exists = await rejection(fs.open('/d/a', 'create'));
    expect(exists).toMatchObject({ code: 'EEXIST', message: "EEXIST: file already exists, open '/d/a'" });
    expect(fs.readFile('/d/a')).toEqual(bytes(3, 1));
    for (const mode of ['read', 'readwrite'] as const) {
      expect(await rejection(fs.open('/d/b', mode))).toMatchObject({ code: 'ENOENT', message: "ENOENT: no such file, open '/d/b'" });
    }
    expect(await rejection(fs.open('/x/a', 'create'))).toMatchObject({ code: 'ENOENT', message: "ENOENT: no such directory '/x'" });
  });

  it('refuses writes and truncates on a read-only handle, and allows reads and syncs there', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(3, 1));
    const file = await fs.open('/d/a', 'read');
    expect(await rejection(file.writev([bytes(1, 2)], 0))).toMatchObject({ code: 'EBADF', message: 'EBADF: write on a read-only handle of /d/a' });
    expect(() => file.writevSync?.([bytes(1, 2)], 0)).toThrow('EBADF: write on a read-only handle of /d/a');
    expect(await rejection(file.truncate(0))).toMatchObject({ code: 'EBADF', message: 'EBADF: ftruncate on a read-only handle of /d/a' });
    expect(fs.readFile('/d/a')).toEqual(bytes(3, 1));
    expect(fs.stats.writes).toBe(1);
    await file.datasync();
    await file.sync();
    expect(await file.size()).toBe(3);
    // 'readwrite' and 'create' handles write.
    const writable = await fs.open('/d/a', 'readwrite');
    await writable.truncate(1);
    expect(fs.readFile('/d/a')).toEqual(bytes(1, 1));
  });

  it('refuses every call on a closed handle, closing included, naming the call', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(3, 1));
    const file = await fs.open('/d/a', 'readwrite');
    await file.close();
    const calls: [string, () => Promise<unknown>][] = [
      ['read', () => file.read(new Uint8Array(1), 0)],
      ['write', () => file.writev([bytes(1, 2)], 0)],
      ['fdatasync', () => file.datasync()],
      ['fsync', () => file.sync()],
      ['ftruncate', () => file.truncate(0)],
      ['fstat', () => file.size()],
      ['close', () => file.close()],
    ];
    for (const [name, call] of calls) {
      expect(await rejection(call())).toMatchObject({ code: 'EBADF', message: `EBADF: ${name} on a closed or crashed handle of /d/a` });
    }
    expect(fs.readFile('/d/a')).toEqual(bytes(3, 1));
    expect(fs.stats).toEqual({ writes: 1, datasyncs: 1, syncs: 0, dirSyncs: 1 });
  });

  it('refuses every call on a handle from before a crash, and serves a new one', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(3, 1));
    const file = await fs.open('/d/a', 'readwrite');
    fs.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 });
    expect(await rejection(file.read(new Uint8Array(1), 0))).toMatchObject({ code: 'EBADF', message: 'EBADF: read on a closed or crashed handle of /d/a' });
    expect(await rejection(file.size())).toMatchObject({ code: 'EBADF' });
    expect(await rejection(file.datasync())).toMatchObject({ code: 'EBADF' });
    expect(await rejection(file.close())).toMatchObject({ code: 'EBADF' });
    const again = await fs.open('/d/a', 'readwrite');
    expect(await again.size()).toBe(3);
    await again.close();
  });

  it('fails rename and unlink of no such file, and readdir and syncDir of no such directory', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    expect(await rejection(fs.rename('/d/a', '/d/b'))).toMatchObject({ code: 'ENOENT', message: "ENOENT: no such file, rename '/d/a'" });
    expect(await rejection(fs.unlink('/d/a'))).toMatchObject({ code: 'ENOENT', message: "ENOENT: no such file, unlink '/d/a'" });
    expect(await rejection(fs.readdir('/x'))).toMatchObject({ code: 'ENOENT', message: "ENOENT: no such directory, scandir '/x'" });
    expect(await rejection(fs.syncDir('/x'))).toMatchObject({ code: 'ENOENT', message: "ENOENT: no such directory, open '/x'" });
    expect(fs.stats.dirSyncs).toBe(0);
    expect(fs.syncSeq).toBe(0);
  });

  it('fails an injected write whole: nothing written, nothing pending, the fault delivered once', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(4, 1));
    const writes: SimWriteEvent[] = [];
    const failure = ioError('ENOSPC', 'no space left');
    fs.faults.write = (event) => {
      writes.push(event);
      return event.seq === 3 ? failure : undefined;
    };
    const delivered: Error[] = [];
    fs.onFaultDelivered = (error) => delivered.push(error);
    const file = await fs.open('/d/a', 'readwrite');
    await file.writev([bytes(2, 2), bytes(3, 3)], 4);
    expect(await rejection(file.writev([bytes(6, 6)], 9))).toBe(failure);
    expect(() => file.writevSync?.([bytes(1, 7)], 0)).not.toThrow();
    expect(writes).toEqual([
      { seq: 2, path: '/d/a', position: 4, bytes: 5 },
      { seq: 3, path: '/d/a', position: 9, bytes: 6 },
      { seq: 4, path: '/d/a', position: 0, bytes: 1 },
    ]);
    expect(fs.stats.writes).toBe(4);
    expect(delivered).toEqual([failure]);
    expect(fs.readFile('/d/a')).toEqual(new Uint8Array([7, 1, 1, 1, 2, 2, 3, 3, 3]));
    // An error the disk raises by itself is no injected fault.
    await rejection(fs.open('/d/missing', 'read'));
    expect(delivered).toEqual([failure]);
  });
});

describe('SimFs syncs', () => {
  it('numbers every sync of any kind in one sequence, counts each kind, and calls onSync before it takes effect', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    const events: SimSyncEvent[] = [];
    const durableAtSync: (number | undefined)[] = [];
    fs.onSync = (event) => {
      events.push(event);
      // What the disk holds at this moment: a clone crashed with everything pending lost.
      const before = fs.clone(noRandom);
      before.crash({ data: 'lose', dir: 'lose', sectorBytes: 512 });
      durableAtSync.push(before.readFile('/d/a')?.length);
    };
    const file = await fs.open('/d/a', 'create');
    await file.writev([bytes(3, 1)], 0);
    await fs.syncDir('/d/');
    await file.datasync();
    await file.writev([bytes(2, 2)], 3);
    await file.sync();
    await file.close();
    expect(events).toEqual([
      { seq: 1, kind: 'dir', path: '/d' },
      { seq: 2, kind: 'datasync', path: '/d/a' },
      { seq: 3, kind: 'sync', path: '/d/a' },
    ]);
    expect(durableAtSync).toEqual([undefined, 0, 3]);
    expect(fs.stats).toEqual({ writes: 2, datasyncs: 1, syncs: 1, dirSyncs: 1 });
    expect(fs.syncSeq).toBe(3);
    expect(fs.writeSeq).toBe(2);
  });

  it('makes the data durable with datasync and with sync alike', async () => {
    for (const kind of ['datasync', 'sync'] as const) {
      const fs = new SimFs(noRandom);
      await fs.mkdir('/d');
      await durableFile(fs, '/d/a', bytes(2, 1));
      const file = await fs.open('/d/a', 'readwrite');
      await file.writev([bytes(2, 2)], 2);
      await file.truncate(3);
      await file[kind]();
      await file.writev([bytes(1, 3)], 0);
      fs.crash({ data: 'lose', dir: 'lose', sectorBytes: 512 });
      expect(fs.readFile('/d/a')).toEqual(new Uint8Array([1, 1, 2]));
    }
  });

  it('drops the pending data of a failed sync, delivers the fault, and keeps the earlier durable data', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(2, 1));
    const file = await fs.open('/d/a', 'readwrite');
    await file.writev([bytes(2, 2)], 2);
    const failure = ioError('EIO', 'writeback failed');
    const seen: SimSyncEvent[] = [];
    fs.faults.sync = (event) => {
      seen.push(event);
      return event.kind === 'sync' ? failure : undefined;
    };
    const delivered: Error[] = [];
    fs.onFaultDelivered = (error) => delivered.push(error);
    expect(await rejection(file.sync())).toBe(failure);
    expect(delivered).toEqual([failure]);
    expect(fs.stats.syncs).toBe(1);
    expect(seen).toEqual([{ seq: 3, kind: 'sync', path: '/d/a' }]);
    // The write is still visible; a later successful sync has nothing to make durable.
    expect(fs.readFile('/d/a')).toEqual(concat(bytes(2, 1), bytes(2, 2)));
    await file.datasync();
    fs.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/d/a')).toEqual(bytes(2, 1));
  });

  it('drops the pending entries of a failed directory sync: a crash then loses them even in keep mode', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/old', bytes(1, 1));
    await durableFile(fs, '/d/gone', bytes(1, 1));
    const file = await fs.open('/d/new', 'create');
    await file.datasync();
    await fs.unlink('/d/gone');
    const failure = ioError('EIO', 'directory writeback failed');
    fs.faults.sync = (event) => (event.kind === 'dir' ? failure : undefined);
    const delivered: Error[] = [];
    fs.onFaultDelivered = (error) => delivered.push(error);
    expect(await rejection(fs.syncDir('/d'))).toBe(failure);
    expect(delivered).toEqual([failure]);
    expect(fs.stats.dirSyncs).toBe(3);
    expect(await fs.readdir('/d')).toEqual(['new', 'old']);
    fs.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual(['gone', 'old']);
  });

  it("makes entry changes durable with syncDir, and only that directory's", async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await fs.mkdir('/e');
    for (const name of ['/d/a', '/e/a']) await durableFile(fs, name, bytes(1, 1));
    for (const dir of ['/d', '/e']) {
      const file = await fs.open(`${dir}/b`, 'create');
      await file.close();
      await fs.unlink(`${dir}/a`);
    }
    await fs.syncDir('/d');
    fs.crash({ data: 'keep', dir: 'lose', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual(['b']);
    expect(await fs.readdir('/e')).toEqual(['a']);
  });
});

describe('SimFs directories', () => {
  it('lists a directory sorted, the root included, and makes missing parents durable at once', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/a/b/c');
    await fs.mkdir('/a/b/c');
    await fs.mkdir('/a');
    for (const name of ['/a/b/c/z', '/a/b/c/m', '/a/b/c/b', '/r']) await (await fs.open(name, 'create')).close();
    expect(await fs.readdir('/a/b/c')).toEqual(['b', 'm', 'z']);
    expect(await fs.readdir('/a/b/c/')).toEqual(['b', 'm', 'z']);
    expect(await fs.readdir('a/b/c')).toEqual(['b', 'm', 'z']);
    expect(await fs.readdir('/')).toEqual(['r']);
    expect(await fs.readdir('/a/b')).toEqual([]);
    expect(await fs.readdir('/a')).toEqual([]);
    fs.crash({ data: 'lose', dir: 'lose', sectorBytes: 512 });
    for (const dir of ['/a', '/a/b', '/a/b/c', '/']) expect(await fs.readdir(dir)).toEqual([]);
  });

  it('renames within a directory over an existing name, and a crash before syncDir undoes it', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(1, 1));
    await durableFile(fs, '/d/b', bytes(1, 2));
    await fs.rename('/d/a', '/d/b');
    expect(await fs.readdir('/d')).toEqual(['b']);
    expect(fs.readFile('/d/b')).toEqual(bytes(1, 1));
    const copy = fs.clone(noRandom);
    copy.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 });
    expect(await copy.readdir('/d')).toEqual(['b']);
    expect(copy.readFile('/d/b')).toEqual(bytes(1, 1));
    fs.crash({ data: 'keep', dir: 'lose', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual(['a', 'b']);
    expect(fs.readFile('/d/b')).toEqual(bytes(1, 2));
  });

  it('renames within a directory as one change: a crash keeps it whole or not at all', async () => {
    const setUp = async (random: () => number): Promise<SimFs> => {
      const fs = new SimFs(random);
      await fs.mkdir('/d');
      await durableFile(fs, '/d/a', bytes(1, 1));
      await fs.rename('/d/a', '/d/b');
      return fs;
    };
    // The root directory draws first; then /d keeps its one change (0.6 * 2) or none (0.4 * 2).
    const whole = await setUp(scripted(0, 0.6));
    whole.crash({ data: 'keep', dir: 'prefix', sectorBytes: 512 });
    expect(await whole.readdir('/d')).toEqual(['b']);
    const none = await setUp(scripted(0, 0.4));
    none.crash({ data: 'keep', dir: 'prefix', sectorBytes: 512 });
    expect(await none.readdir('/d')).toEqual(['a']);
  });

  it('renames across directories as a link in the target and an unlink in the source, each durable on its own', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await fs.mkdir('/e');
    await durableFile(fs, '/d/a', bytes(2, 1));
    await fs.rename('/d/a', '/e/b');
    expect(await fs.readdir('/d')).toEqual([]);
    expect(await fs.readdir('/e')).toEqual(['b']);
    expect(fs.readFile('/e/b')).toEqual(bytes(2, 1));
    // Both changes pending: a crash that keeps them keeps the move.
    const kept = fs.clone(noRandom);
    kept.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 });
    expect(await kept.readdir('/d')).toEqual([]);
    expect(await kept.readdir('/e')).toEqual(['b']);
    expect(kept.readFile('/e/b')).toEqual(bytes(2, 1));
    // Only the target's directory synced: the file has two names after a crash.
    await fs.syncDir('/e');
    fs.crash({ data: 'keep', dir: 'lose', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual(['a']);
    expect(await fs.readdir('/e')).toEqual(['b']);
  });

  it('undoes an unsynced unlink in a crash, and keeps it once the directory is synced', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(2, 1));
    await fs.unlink('/d/a');
    expect(await fs.readdir('/d')).toEqual([]);
    const copy = fs.clone(noRandom);
    copy.crash({ data: 'keep', dir: 'lose', sectorBytes: 512 });
    expect(copy.readFile('/d/a')).toEqual(bytes(2, 1));
    await fs.syncDir('/d');
    fs.crash({ data: 'keep', dir: 'lose', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual([]);
  });
});

describe('SimFs crash', () => {
  /** A durable file of 100 bytes of 1, then an unsynced write of 100 bytes of 2 at 100 and one of 2000 bytes of 3 at 200. */
  async function twoPending(random: () => number): Promise<SimFs> {
    const fs = new SimFs(random);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(100, 1));
    const file = await fs.open('/d/a', 'readwrite');
    await file.writev([bytes(100, 2)], 100);
    await file.writev([bytes(2000, 3)], 200);
    return fs;
  }

  it('keeps every pending write in keep mode and none in lose mode, and reads see the same after', async () => {
    const kept = await twoPending(noRandom);
    kept.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 });
    expect(kept.readFile('/d/a')).toEqual(concat(bytes(100, 1), bytes(100, 2), bytes(2000, 3)));
    const lost = await twoPending(noRandom);
    lost.crash({ data: 'lose', dir: 'keep', sectorBytes: 512 });
    expect(lost.readFile('/d/a')).toEqual(bytes(100, 1));
    // What survived is durable now: a second crash that loses everything pending keeps it.
    kept.crash({ data: 'lose', dir: 'lose', sectorBytes: 512 });
    expect(kept.readFile('/d/a')?.length).toBe(2200);
  });

  it('keeps, in prefix mode, the drawn number of whole writes and the next one torn at a drawn sector boundary', async () => {
    // One write kept (0.4 * 3), the next (bytes 200 to 2200) cut at its 4th boundary of 4: 512, 1024, 1536, 2048.
    const last = scripted(0.4, 0.99);
    const fs = await twoPending(last);
    fs.crash({ data: 'prefix', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/d/a')).toEqual(concat(bytes(100, 1), bytes(100, 2), bytes(1848, 3)));
    expect(last.drained()).toBe(true);
    // Its first boundary, 512.
    const first = scripted(0.4, 0);
    const other = await twoPending(first);
    other.crash({ data: 'prefix', dir: 'keep', sectorBytes: 512 });
    expect(other.readFile('/d/a')).toEqual(concat(bytes(100, 1), bytes(100, 2), bytes(312, 3)));
    expect(first.drained()).toBe(true);
    // With 4096-byte sectors the write has no boundary inside it: it is lost whole, and nothing more is drawn.
    const big = scripted(0.4);
    const none = await twoPending(big);
    none.crash({ data: 'prefix', dir: 'keep', sectorBytes: 4096 });
    expect(none.readFile('/d/a')).toEqual(concat(bytes(100, 1), bytes(100, 2)));
    expect(big.drained()).toBe(true);
  });

  it('keeps all or nothing in prefix mode at the ends of the draw', async () => {
    const all = await twoPending(scripted(0.99));
    all.crash({ data: 'prefix', dir: 'keep', sectorBytes: 512 });
    expect(all.readFile('/d/a')?.length).toBe(2200);
    // Nothing kept; the first write (100 to 200) lies inside one sector, so it is not torn.
    const nothing = await twoPending(scripted(0));
    nothing.crash({ data: 'prefix', dir: 'keep', sectorBytes: 512 });
    expect(nothing.readFile('/d/a')).toEqual(bytes(100, 1));
  });

  it('never tears a write at its own end: one that ends on a boundary has only the boundaries before it', async () => {
    const random = scripted(0, 0.99);
    const fs = new SimFs(random);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', new Uint8Array(0));
    const file = await fs.open('/d/a', 'readwrite');
    await file.writev([bytes(1024, 4)], 0);
    fs.crash({ data: 'prefix', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/d/a')).toEqual(bytes(512, 4));
    expect(random.drained()).toBe(true);
  });

  it('applies a pending truncate in the kept prefix, and never tears one', async () => {
    const fs = new SimFs(scripted(0.5));
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(1000, 1));
    const file = await fs.open('/d/a', 'readwrite');
    await file.truncate(600);
    await file.writev([bytes(10, 2)], 0);
    // Kept: 1 of 2 (0.5 * 3); the next is a 10-byte write inside one sector.
    fs.crash({ data: 'prefix', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/d/a')).toEqual(bytes(600, 1));
    const truncateNext = new SimFs(scripted(0));
    await truncateNext.mkdir('/d');
    await durableFile(truncateNext, '/d/a', bytes(1000, 1));
    const handle = await truncateNext.open('/d/a', 'readwrite');
    await handle.truncate(600);
    truncateNext.crash({ data: 'prefix', dir: 'keep', sectorBytes: 512 });
    expect(truncateNext.readFile('/d/a')).toEqual(bytes(1000, 1));
  });

  it('scatters in scatter mode exactly the sectors drawn, over the size drawn', async () => {
    // Durable: 1024 bytes of 1. Pending: 1536 bytes of 2 from 512 (sectors 1 to 3 of 512 bytes).
    const setUp = async (random: () => number): Promise<SimFs> => {
      const fs = new SimFs(random);
      await fs.mkdir('/d');
      await durableFile(fs, '/d/a', bytes(1024, 1));
      const file = await fs.open('/d/a', 'readwrite');
      await file.writev([bytes(1536, 2)], 512);
      return fs;
    };
    // The new size (0.4 < 0.5); a draw below one half loses a sector: 1 lost (0.2), 2 kept (0.7), 3 kept (0.9).
    const grown = scripted(0.4, 0.2, 0.7, 0.9);
    const fs = await setUp(grown);
    fs.crash({ data: 'scatter', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/d/a')).toEqual(concat(bytes(1024, 1), bytes(1024, 2)));
    expect(grown.drained()).toBe(true);
    // The old size (0.5): sector 1 kept, 2 kept (but it lies past the old size, so nothing of it lands), 3 lost.
    const old = scripted(0.5, 0.7, 0.7, 0.2);
    const kept = await setUp(old);
    kept.crash({ data: 'scatter', dir: 'keep', sectorBytes: 512 });
    expect(kept.readFile('/d/a')).toEqual(concat(bytes(512, 1), bytes(512, 2)));
    expect(old.drained()).toBe(true);
  });

  it('scatters by sector, not by write: the same sectors written in another order get the same draws', async () => {
    const scatter = async (order: readonly number[]): Promise<Uint8Array | undefined> => {
      const fs = new SimFs(scripted(0.1, 0.9, 0.1, 0.5));
      await fs.mkdir('/d');
      await durableFile(fs, '/d/a', new Uint8Array(0));
      const file = await fs.open('/d/a', 'readwrite');
      for (const sector of order) await file.writev([bytes(512, sector + 1)], sector * 512);
      fs.crash({ data: 'scatter', dir: 'keep', sectorBytes: 512 });
      return fs.readFile('/d/a');
    };
    // The new size (0.1), then sector 0 kept (0.9), 1 lost (0.1), 2 kept (a draw of exactly one half keeps it).
    const expected = concat(bytes(512, 1), bytes(512, 0), bytes(512, 3));
    expect(await scatter([0, 1, 2])).toEqual(expected);
    expect(await scatter([2, 0, 1])).toEqual(expected);
    expect(await scatter([1, 2, 0])).toEqual(expected);
  });

  it('writes back in scatter mode nothing of a sector past the old size it kept, and does not grow the file', async () => {
    // Durable: 100 bytes of 1. Pending: 512 bytes of 2 at 1024 (sector 2). The old size kept (0.5), sector 2 written back (0.9).
    const random = scripted(0.5, 0.9);
    const fs = new SimFs(random);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(100, 1));
    await (await fs.open('/d/a', 'readwrite')).writev([bytes(512, 2)], 1024);
    fs.crash({ data: 'scatter', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/d/a')).toEqual(bytes(100, 1));
    expect(random.drained()).toBe(true);
  });

  it('counts in scatter mode every sector a write touches, the partial first and last included', async () => {
    // Pending: 600 bytes of 2 from 300 (sectors 0 and 1 of 512 bytes), the file 900 bytes after.
    // The new size (0.1), sector 0 kept (0.9), sector 1 lost (0.1): three draws, one per sector.
    const random = scripted(0.1, 0.9, 0.1);
    const fs = new SimFs(random);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(300, 1));
    const file = await fs.open('/d/a', 'readwrite');
    await file.writev([bytes(600, 2)], 300);
    fs.crash({ data: 'scatter', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/d/a')).toEqual(concat(bytes(300, 1), bytes(212, 2), bytes(388, 0)));
    expect(random.drained()).toBe(true);
  });

  it('draws the sector size per surviving file when none is given: below one half 512, else 4096', async () => {
    // Prefix mode, nothing kept (0), and the write from 0 to 5000 torn at its first boundary (0).
    const small = scripted(0.49, 0, 0);
    const fs = new SimFs(small);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', new Uint8Array(0));
    await (await fs.open('/d/a', 'readwrite')).writev([bytes(5000, 6)], 0);
    const large = fs.clone(scripted(0.5, 0, 0));
    fs.crash({ data: 'prefix', dir: 'keep' });
    expect(fs.readFile('/d/a')?.length).toBe(512);
    expect(small.drained()).toBe(true);
    large.crash({ data: 'prefix', dir: 'keep' });
    expect(large.readFile('/d/a')?.length).toBe(4096);
  });

  it('defaults to prefix for data and for directory entries', async () => {
    // Draws: the root directory's prefix (no changes), /d's (1 of 2 changes: 0.5 * 3), the sector size (0.1: 512), the data's prefix (0.99: all).
    const random = scripted(0, 0.5, 0.1, 0.99);
    const fs = new SimFs(random);
    await fs.mkdir('/d');
    const kept = await fs.open('/d/kept', 'create');
    await kept.writev([bytes(3, 3)], 0);
    await fs.open('/d/lost', 'create');
    fs.crash();
    expect(await fs.readdir('/d')).toEqual(['kept']);
    expect(fs.readFile('/d/kept')).toEqual(bytes(3, 3));
    expect(random.drained()).toBe(true);
  });

  it('keeps, in prefix mode, the drawn number of entry changes in order', async () => {
    const setUp = async (random: () => number): Promise<SimFs> => {
      const fs = new SimFs(random);
      await fs.mkdir('/d');
      await durableFile(fs, '/d/a', bytes(1, 1));
      await (await fs.open('/d/b', 'create')).close();
      await fs.rename('/d/a', '/d/c');
      await fs.unlink('/d/b');
      return fs;
    };
    const results: string[][] = [];
    for (const draw of [0, 0.3, 0.6, 0.9]) {
      // The root directory draws first (it has no changes).
      const fs = await setUp(scripted(0, draw));
      fs.crash({ data: 'lose', dir: 'prefix', sectorBytes: 512 });
      results.push(await fs.readdir('/d'));
    }
    expect(results).toEqual([['a'], ['a', 'b'], ['b', 'c'], ['c']]);
  });

  it('counts, in prefix mode, exactly the entry changes since the last sync or crash: none from making the directory, a failed sync or the crash', async () => {
    // Each case leaves /d with the two changes below pending; 0.4 of 3 keeps the first, and a phantom change would make it 0.4 of 4 (none).
    const cases: [string, (fs: SimFs) => Promise<void>][] = [
      ['a directory just made', async () => undefined],
      [
        'a failed sync',
        async (fs) => {
          fs.faults.sync = () => ioError('EIO', 'directory writeback failed');
          await rejection(fs.syncDir('/d'));
          fs.faults.sync = undefined;
        },
      ],
      ['a crash', async (fs) => fs.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 })],
    ];
    for (const [what, before] of cases) {
      // The root directory draws first (no changes), then /d.
      const random = scripted(0, 0.4);
      const fs = new SimFs(random);
      await fs.mkdir('/d');
      await before(fs);
      await (await fs.open('/d/a', 'create')).close();
      await (await fs.open('/d/b', 'create')).close();
      fs.crash({ data: 'keep', dir: 'prefix', sectorBytes: 512 });
      expect({ what, names: await fs.readdir('/d') }).toEqual({ what, names: ['a'] });
      expect(random.drained()).toBe(true);
    }
  });

  it('drops files whose names did not survive, and a new file whose data never reached the disk is empty', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    const file = await fs.open('/d/a', 'create');
    await file.writev([bytes(5, 5)], 0);
    await fs.syncDir('/d');
    const orphan = await fs.open('/d/orphan', 'create');
    await orphan.writev([bytes(5, 5)], 0);
    await orphan.datasync();
    fs.crash({ data: 'lose', dir: 'lose', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual(['a']);
    expect(fs.readFile('/d/a')).toEqual(new Uint8Array(0));
    expect(fs.epoch).toBe(1);
  });

  it('starts afresh after a crash: new writes and new names are pending again, and a second crash can lose them', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(8, 1));
    fs.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 });
    const file = await fs.open('/d/a', 'readwrite');
    await file.writev([bytes(4, 2)], 2);
    await (await fs.open('/d/new', 'create')).close();
    expect(fs.readFile('/d/a')).toEqual(new Uint8Array([1, 1, 2, 2, 2, 2, 1, 1]));
    fs.crash({ data: 'lose', dir: 'lose', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual(['a']);
    expect(fs.readFile('/d/a')).toEqual(bytes(8, 1));
    expect(fs.epoch).toBe(2);
  });

  it('leaves a file with nothing pending as it is, drawing nothing, in every mode', async () => {
    for (const data of ['prefix', 'scatter', 'keep', 'lose'] as const) {
      const fs = new SimFs(noRandom);
      await fs.mkdir('/d');
      await durableFile(fs, '/d/a', bytes(600, 1));
      fs.crash({ data, dir: 'keep', sectorBytes: 512 });
      expect(fs.readFile('/d/a')).toEqual(bytes(600, 1));
    }
  });

  it('writes back in scatter mode no bytes past the new size, even where an unsynced truncate shrank the file', async () => {
    // Durable: 1024 bytes of 1. Pending: a truncate to 100, then 10 bytes of 2 at 0 (sector 0 only).
    const random = scripted(0.7, 0.7);
    const fs = new SimFs(random);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(1024, 1));
    const file = await fs.open('/d/a', 'readwrite');
    await file.truncate(100);
    await file.writev([bytes(10, 2)], 0);
    // The old size kept (0.7), sector 0 written back (0.7): only its first 100 bytes are the new file's.
    fs.crash({ data: 'scatter', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/d/a')).toEqual(concat(bytes(10, 2), bytes(1014, 1)));
    expect(random.drained()).toBe(true);
  });
});

describe('SimFs clone, setFile, removeFile, settle', () => {
  it('clones the pending writes and entries too, sharing nothing with the original', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(2, 1));
    const file = await fs.open('/d/a', 'readwrite');
    await file.writev([bytes(2, 2)], 2);
    const created = await fs.open('/d/b', 'create');
    await created.writev([bytes(1, 7)], 0);
    const copy = fs.clone(noRandom);
    // The original goes on; the copy must not see it.
    await file.writev([bytes(1, 9)], 0);
    await created.writev([bytes(1, 9)], 0);
    expect(copy.readFile('/d/a')).toEqual(concat(bytes(2, 1), bytes(2, 2)));
    expect(copy.readFile('/d/b')).toEqual(bytes(1, 7));
    copy.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 });
    expect(await copy.readdir('/d')).toEqual(['a', 'b']);
    expect(copy.readFile('/d/a')).toEqual(concat(bytes(2, 1), bytes(2, 2)));
    expect(copy.readFile('/d/b')).toEqual(bytes(1, 7));
    // And the original was not touched by the copy's crash.
    expect(fs.readFile('/d/a')).toEqual(new Uint8Array([9, 1, 2, 2]));
    fs.crash({ data: 'lose', dir: 'lose', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual(['a']);
    expect(fs.readFile('/d/a')).toEqual(bytes(2, 1));
  });

  it('keeps one file one file in a clone: a name created and still pending is the same file as its entry', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    const created = await fs.open('/d/b', 'create');
    await created.writev([bytes(1, 7)], 0);
    await created.datasync();
    const copy = fs.clone(noRandom);
    // The copy's entry and its pending link must name one inode: a write through the entry is what the link keeps.
    const handle = await copy.open('/d/b', 'readwrite');
    await handle.writev([bytes(1, 8)], 1);
    await handle.datasync();
    copy.crash({ data: 'lose', dir: 'keep', sectorBytes: 512 });
    expect(copy.readFile('/d/b')).toEqual(new Uint8Array([7, 8]));
  });

  it("uses the random function given to clone, or else the original's", async () => {
    const fs = new SimFs(scripted(0.99));
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', new Uint8Array(0));
    await (await fs.open('/d/a', 'readwrite')).writev([bytes(4, 4)], 0);
    const own = fs.clone(scripted(0));
    own.crash({ data: 'prefix', dir: 'keep', sectorBytes: 512 });
    expect(own.readFile('/d/a')).toEqual(new Uint8Array(0));
    const inherited = fs.clone();
    inherited.crash({ data: 'prefix', dir: 'keep', sectorBytes: 512 });
    expect(inherited.readFile('/d/a')).toEqual(bytes(4, 4));
  });

  it('sets a file durably, name and bytes, seen by a handle already open on it', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(4, 1));
    const file = await fs.open('/d/a', 'readwrite');
    await file.writev([bytes(2, 2)], 4);
    fs.setFile('/d/a', bytes(3, 5));
    fs.setFile('/d/new', bytes(2, 6));
    expect(await file.size()).toBe(3);
    fs.crash({ data: 'keep', dir: 'lose', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual(['a', 'new']);
    expect(fs.readFile('/d/a')).toEqual(bytes(3, 5));
    expect(fs.readFile('/d/new')).toEqual(bytes(2, 6));
  });

  it('removes a name durably: a pending rename from it brings nothing back', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(4, 1));
    await fs.rename('/d/a', '/d/b');
    fs.removeFile('/d/a');
    fs.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual([]);
  });

  it('removes a file durably', async () => {
    const fs = new SimFs(noRandom);
    await fs.mkdir('/d');
    await durableFile(fs, '/d/a', bytes(4, 1));
    await durableFile(fs, '/d/b', bytes(4, 1));
    fs.removeFile('/d/a');
    expect(await fs.readdir('/d')).toEqual(['b']);
    fs.crash({ data: 'keep', dir: 'lose', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual(['b']);
  });

  it('completes calls within the microtask queue by default, and one macrotask later with settle immediate', async () => {
    const order = async (fs: SimFs): Promise<string[]> => {
      const seen: string[] = [];
      await fs.mkdir('/d');
      setImmediate(() => seen.push('macrotask'));
      await fs.readdir('/d');
      seen.push('call');
      await new Promise<void>((resolve) => setImmediate(resolve));
      return seen;
    };
    expect(await order(new SimFs(noRandom))).toEqual(['call', 'macrotask']);
    const immediate = new SimFs(noRandom, { settle: 'immediate' });
    expect(await order(immediate)).toEqual(['macrotask', 'call']);
    // A clone settles the same way as its original.
    expect(await order(immediate.clone())).toEqual(['macrotask', 'call']);
  });

  it('completes a failing call in a macrotask too with settle immediate', async () => {
    const fs = new SimFs(noRandom, { settle: 'immediate' });
    const seen: string[] = [];
    setImmediate(() => seen.push('macrotask'));
    await rejection(fs.readdir('/missing'));
    seen.push('call');
    expect(seen).toEqual(['macrotask', 'call']);
  });
});
