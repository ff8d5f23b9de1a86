/** The simulated disk's crash semantics, which the power-loss and fsync tests rely on. */
import { describe, expect, it } from 'vitest';
import { SimFs } from '../../wal/sim-fs.ts';
import { seededRandom } from './helpers/random.ts';

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

async function fileWith(fs: SimFs, path: string, content: Uint8Array, sync: 'none' | 'file' | 'file+dir'): Promise<void> {
  const file = await fs.open(path, 'create');
  await file.writev([content], 0);
  if (sync !== 'none') await file.datasync();
  if (sync === 'file+dir') await fs.syncDir('/d');
  await file.close();
}

describe('SimFs', () => {
  it('keeps synced bytes and may lose unsynced ones', async () => {
    const fs = new SimFs(seededRandom(1));
    await fs.mkdir('/d');
    await fileWith(fs, '/d/a', bytes(100, 1), 'file+dir');
    const file = await fs.open('/d/a', 'readwrite');
    await file.writev([bytes(50, 2)], 100);
    expect(fs.readFile('/d/a')?.length).toBe(150);
    fs.crash({ data: 'lose', dir: 'lose' });
    expect(fs.readFile('/d/a')).toEqual(bytes(100, 1));
  });

  it('loses a new file whose directory was never synced, even though the file was', async () => {
    const fs = new SimFs(seededRandom(1));
    await fs.mkdir('/d');
    await fileWith(fs, '/d/kept', bytes(10, 1), 'file+dir');
    await fileWith(fs, '/d/lost', bytes(10, 1), 'file');
    fs.crash({ data: 'keep', dir: 'lose' });
    expect(await fs.readdir('/d')).toEqual(['kept']);
  });

  it('undoes an unsynced rename', async () => {
    const fs = new SimFs(seededRandom(1));
    await fs.mkdir('/d');
    await fileWith(fs, '/d/a.tmp', bytes(10, 1), 'file+dir');
    await fs.rename('/d/a.tmp', '/d/a');
    fs.crash({ data: 'keep', dir: 'lose' });
    expect(await fs.readdir('/d')).toEqual(['a.tmp']);
  });

  it('fails a sync the way Linux does: the data is dropped and the next sync succeeds', async () => {
    const fs = new SimFs(seededRandom(1));
    await fs.mkdir('/d');
    await fileWith(fs, '/d/a', bytes(8, 1), 'file+dir');
    const file = await fs.open('/d/a', 'readwrite');
    await file.writev([bytes(8, 2)], 8);
    let failures = 1;
    fs.faults.sync = () => (failures-- > 0 ? Object.assign(new Error('EIO'), { code: 'EIO' }) : undefined);
    await expect(file.datasync()).rejects.toMatchObject({ code: 'EIO' });
    // Still visible in the page cache, and a second fsync reports success ...
    expect(fs.readFile('/d/a')?.length).toBe(16);
    await expect(file.datasync()).resolves.toBeUndefined();
    // ... but it never reached the disk.
    fs.crash({ data: 'keep', dir: 'keep' });
    expect(fs.readFile('/d/a')).toEqual(bytes(8, 1));
  });

  it('tears the write in flight at a sector boundary in prefix mode', async () => {
    for (let seed = 0; seed < 30; seed++) {
      const fs = new SimFs(seededRandom(seed));
      await fs.mkdir('/d');
      await fileWith(fs, '/d/a', new Uint8Array(0), 'file+dir');
      const file = await fs.open('/d/a', 'readwrite');
      await file.writev([bytes(10_000, 9)], 0);
      fs.crash({ data: 'prefix', dir: 'keep', sectorBytes: 512 });
      const length = fs.readFile('/d/a')?.length ?? -1;
      expect(length === 0 || length === 10_000 || length % 512 === 0).toBe(true);
    }
  });

  it('scatters sectors in scatter mode: some kept, some zero', async () => {
    const fs = new SimFs(seededRandom(3));
    await fs.mkdir('/d');
    await fileWith(fs, '/d/a', new Uint8Array(8192), 'file+dir');
    const file = await fs.open('/d/a', 'readwrite');
    await file.writev([bytes(8192, 5)], 0);
    fs.crash({ data: 'scatter', dir: 'keep', sectorBytes: 512 });
    const after = fs.readFile('/d/a') ?? new Uint8Array();
    const kept = Array.from({ length: 16 }, (_, s) => after[s * 512] === 5);
    expect(kept.some(Boolean)).toBe(true);
    expect(kept.some((k) => !k)).toBe(true);
  });

  it('makes handles from before a crash unusable', async () => {
    const fs = new SimFs(seededRandom(1));
    await fs.mkdir('/d');
    await fileWith(fs, '/d/a', bytes(4, 1), 'file+dir');
    const file = await fs.open('/d/a', 'readwrite');
    fs.crash();
    await expect(file.writev([bytes(1, 1)], 0)).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('clones deeply: the copy and the original diverge', async () => {
    const fs = new SimFs(seededRandom(1));
    await fs.mkdir('/d');
    await fileWith(fs, '/d/a', bytes(4, 1), 'none');
    const copy = fs.clone();
    copy.crash({ data: 'lose', dir: 'lose' });
    expect(await copy.readdir('/d')).toEqual([]);
    expect(fs.readFile('/d/a')).toEqual(bytes(4, 1));
  });
});
