/**
 * `verifyWal` and `inspectWal` warn that a log is open in a running process (it may change
 * while it is read) only on the real disk, where LOCK files and their holders exist: with the
 * default file system or `nodeFs` named, and never for a simulated disk, even one whose log
 * sits at the same path as a held directory on the real disk.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import { nodeFs } from '../../wal/fs.ts';
import { inspectWal, verifyWal } from '../../wal/inspect.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { seededRandom } from './helpers/random.ts';
import { tempDir } from './helpers/temp-dir.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A real directory held by an open log of this process, with one record in it. */
async function heldDir(): Promise<string> {
  const { dir, remove } = await tempDir('twopc-inspect-held-');
  cleanups.push(remove);
  const { log } = await openFileLog(dir, { segmentBytes: 64 * 1024, owner: 'participant p7' });
  cleanups.push(() => log.close());
  await log.append(1, new TextEncoder().encode('{"a":1}'), { durable: true });
  return dir;
}

const HELD = /^the log is open in participant p7 \(pid \d+, since .+\); it may change while it is read, and a torn tail may be a write in progress$/;

describe('the "log is open" warning', () => {
  it('is given for a held directory on the real disk, by default and with nodeFs named', async () => {
    const dir = await heldDir();
    for (const options of [{}, { fs: nodeFs }]) {
      const verified = await verifyWal(dir, options);
      expect(verified.warnings).toHaveLength(1);
      expect(verified.warnings[0]).toMatch(HELD);
      expect((await inspectWal(dir, options)).warnings).toEqual(verified.warnings);
    }
  });

  it('is not given for a simulated disk, even at the path of a held real directory', async () => {
    const dir = await heldDir();
    const fs = new SimFs(seededRandom(5));
    const { log } = await openFileLog(dir, { fs, segmentBytes: 4096 });
    await log.append(1, new TextEncoder().encode('{"b":2}'));
    await log.close();
    expect(await verifyWal(dir, { fs })).toMatchObject({ status: 'intact', records: 1, warnings: [] });
    expect((await inspectWal(dir, { fs })).warnings).toEqual([]);
  });
});
