/**
 * How the simulated disk turns its random draws into what a crash keeps, at the edges the exact
 * tests (sim-fs-exact.test.ts) leave open: a crash chooses its prefix of directory changes among
 * exactly the changes made since the directory's last sync, crash or failed sync; scattered
 * writeback draws its sectors in ascending order whatever order they were written in, keeps a
 * sector on a draw of one half, and never grows a file past the size the crash kept; and a random
 * function that returns 1 still tears the write in flight inside it. The draws are scripted, so
 * each outcome is known.
 */
import { describe, expect, it } from 'vitest';
import { SimFs } from '../../wal/sim-fs.ts';

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

/** A random function that returns `values` in order and throws when asked for one more. */
function scripted(...values: number[]): (() => number) & { drained: () => boolean } {
  const queue = [...values];
  const next = (): number => {
    const value = queue.shift();
    if (value === undefined) throw new Error('the simulated disk drew one random number more than scripted');
    return value;
  };
  return Object.assign(next, { drained: () => queue.length === 0 });
}

/** A file `path` holding `content`, durable with its directory entry. */
async function durableFile(fs: SimFs, path: string, content: Uint8Array): Promise<void> {
  const file = await fs.open(path, 'create');
  if (content.length > 0) await file.writev([content], 0);
  await file.datasync();
  await fs.syncDir(path.slice(0, path.lastIndexOf('/')) || '/');
  await file.close();
}

/**
 * With exactly one change pending, a prefix draw of 0.5 keeps it: 0.5 * (1 + 1) = 1 of 1. Had the
 * directory counted one change more (one left over from before its last sync), the same draw would
 * keep 1 of 2 (0.5 * 3) and lose the new name: so each case below shows that the choice is made
 * among the changes since the last sync and nothing else.
 */
describe('SimFs crash: the prefix of directory changes is drawn over the changes since the last sync', () => {
  it('in the root of a new file system, never synced', async () => {
    const random = scripted(0.5);
    const fs = new SimFs(random);
    await (await fs.open('/a', 'create')).close();
    fs.crash({ data: 'lose', dir: 'prefix', sectorBytes: 512 });
    expect(await fs.readdir('/')).toEqual(['a']);
    expect(random.drained()).toBe(true);
  });

  it('in a directory made by mkdir, never synced', async () => {
    // The root draws first (no changes), then /d.
    const random = scripted(0.5, 0.5);
    const fs = new SimFs(random);
    await fs.mkdir('/d');
    await (await fs.open('/d/a', 'create')).close();
    fs.crash({ data: 'lose', dir: 'prefix', sectorBytes: 512 });
    expect(await fs.readdir('/d')).toEqual(['a']);
    expect(random.drained()).toBe(true);
  });

  it('after a failed directory sync: the changes it dropped are not counted again', async () => {
    const random = scripted(0.5);
    const fs = new SimFs(random);
    await (await fs.open('/dropped', 'create')).close();
    fs.faults.sync = () => new Error('EIO: injected');
    await expect(fs.syncDir('/')).rejects.toThrow('EIO: injected');
    fs.faults = {};
    await (await fs.open('/a', 'create')).close();
    fs.crash({ data: 'lose', dir: 'prefix', sectorBytes: 512 });
    // The dropped name never reached the disk; the one change since is kept whole.
    expect(await fs.readdir('/')).toEqual(['a']);
    expect(random.drained()).toBe(true);
  });

  it('after a crash: the changes that crash settled are not counted again', async () => {
    const random = scripted(0.5);
    const fs = new SimFs(random);
    await (await fs.open('/before', 'create')).close();
    fs.crash({ data: 'keep', dir: 'keep', sectorBytes: 512 });
    await (await fs.open('/a', 'create')).close();
    fs.crash({ data: 'lose', dir: 'prefix', sectorBytes: 512 });
    expect(await fs.readdir('/')).toEqual(['a', 'before']);
    expect(random.drained()).toBe(true);
  });
});

describe('SimFs crash: scattered writeback', () => {
  it('draws its sectors in ascending order, whatever order they were written in', async () => {
    // Durable: 1536 bytes of 1 (sectors 0 to 2 of 512). Pending: sector 2 written, then sector 0.
    // Draws: the size (0.9: the old one, equal to the new), then sector 0 kept (0.9), sector 2 lost (0.1).
    const random = scripted(0.9, 0.9, 0.1);
    const fs = new SimFs(random);
    await durableFile(fs, '/a', bytes(1536, 1));
    const file = await fs.open('/a', 'readwrite');
    await file.writev([bytes(512, 3)], 1024);
    await file.writev([bytes(512, 2)], 0);
    fs.crash({ data: 'scatter', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/a')).toEqual(concat(bytes(512, 2), bytes(1024, 1)));
    expect(random.drained()).toBe(true);
  });

  it('keeps a sector on a draw of exactly one half, and loses it just below', async () => {
    // Durable: 1024 bytes of 1. Pending: 1024 bytes of 2 over both sectors. The size draw (0.9) keeps the old one.
    const random = scripted(0.9, 0.5, 0.4999);
    const fs = new SimFs(random);
    await durableFile(fs, '/a', bytes(1024, 1));
    const file = await fs.open('/a', 'readwrite');
    await file.writev([bytes(1024, 2)], 0);
    fs.crash({ data: 'scatter', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/a')).toEqual(concat(bytes(512, 2), bytes(512, 1)));
    expect(random.drained()).toBe(true);
  });

  it('never grows a file past the size the crash kept, even by sectors drawn as written back', async () => {
    // Durable: 512 bytes of 1. Pending: 1536 bytes of 2 from 0 (sectors 0 to 2). The size draw (0.9)
    // keeps the old size, 512; every sector is drawn as written back (0.9), but only sector 0 lies inside.
    const random = scripted(0.9, 0.9, 0.9, 0.9);
    const fs = new SimFs(random);
    await durableFile(fs, '/a', bytes(512, 1));
    const file = await fs.open('/a', 'readwrite');
    await file.writev([bytes(1536, 2)], 0);
    fs.crash({ data: 'scatter', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/a')).toEqual(bytes(512, 2));
    expect(random.drained()).toBe(true);
  });
});

describe('SimFs crash: a random function that returns 1', () => {
  it('still tears the write in flight at a boundary inside it, never past its end', async () => {
    // Pending: 1024 bytes of 4 from 0, whose only boundary inside is 512. Draws: none of the one
    // write kept (0), then the tear at the last of its boundaries (1, the top of the range).
    const random = scripted(0, 1);
    const fs = new SimFs(random);
    await durableFile(fs, '/a', new Uint8Array(0));
    const file = await fs.open('/a', 'readwrite');
    await file.writev([bytes(1024, 4)], 0);
    fs.crash({ data: 'prefix', dir: 'keep', sectorBytes: 512 });
    expect(fs.readFile('/a')).toEqual(bytes(512, 4));
    expect(random.drained()).toBe(true);
  });

  it('keeps all the directory changes and all the writes at most, never more', async () => {
    // The root's prefix (1: both changes), then the file's (1: its one write, whole).
    const random = scripted(1, 1);
    const fs = new SimFs(random);
    const file = await fs.open('/a', 'create');
    await file.writev([bytes(1024, 4)], 0);
    await fs.rename('/a', '/b');
    fs.crash({ data: 'prefix', dir: 'prefix', sectorBytes: 512 });
    expect(await fs.readdir('/')).toEqual(['b']);
    expect(fs.readFile('/b')).toEqual(bytes(1024, 4));
    expect(random.drained()).toBe(true);
  });
});
