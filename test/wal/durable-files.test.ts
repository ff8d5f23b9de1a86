/**
 * The durable-file idioms, call by call: a file is written, synced and closed before its name
 * appears, the directory is synced after the rename, and zero-filling covers exactly the range
 * asked for in bounded writes. A recording file system shows the order; failures show that a
 * half-written temporary file never gets the real name.
 */
import { describe, expect, it } from 'vitest';
import { prepareSegmentFile, writeFileDurably, zeroFill } from '../../wal/durable-files.ts';
import type { OpenMode, WalFile, WalFs } from '../../wal/fs.ts';

const MIB = 1024 * 1024;
const ZEROS = Buffer.alloc(MIB);
/** A native compare: a byte-by-byte loop over 16 MiB would take seconds. */
const isZero = (b: Uint8Array): boolean => b.length <= MIB && Buffer.from(b.buffer, b.byteOffset, b.length).equals(ZEROS.subarray(0, b.length));

interface Write {
  readonly path: string;
  readonly position: number;
  readonly lengths: number[];
  readonly allZero: boolean;
  readonly bytes: number[];
}

/** Records every call; `failing` names calls that reject. */
class RecordingFs implements WalFs {
  readonly calls: string[] = [];
  readonly writes: Write[] = [];
  readonly failing = new Set<string>();

  private op(name: string): Promise<void> {
    this.calls.push(name);
    return this.failing.has(name) ? Promise.reject(new Error(`EIO: ${name}`)) : Promise.resolve();
  }

  file(path: string): WalFile {
    return {
      path,
      read: () => Promise.resolve(0),
      writev: (buffers, position) => {
        const small = buffers.reduce((n, b) => n + b.length, 0) <= 64;
        this.writes.push({
          path,
          position,
          lengths: buffers.map((b) => b.length),
          allZero: buffers.every(isZero),
          bytes: small ? buffers.flatMap((b) => [...b]) : [],
        });
        return this.op(`writev ${path} @${position}`);
      },
      datasync: () => this.op(`datasync ${path}`),
      sync: () => this.op(`sync ${path}`),
      truncate: () => this.op(`truncate ${path}`),
      size: () => Promise.resolve(0),
      close: () => this.op(`close ${path}`),
    };
  }
  async open(path: string, mode: OpenMode): Promise<WalFile> {
    await this.op(`open ${path} ${mode}`);
    return this.file(path);
  }
  readdir(): Promise<string[]> {
    return Promise.resolve([]);
  }
  mkdir(dir: string): Promise<void> {
    return this.op(`mkdir ${dir}`);
  }
  rename(from: string, to: string): Promise<void> {
    return this.op(`rename ${from} ${to}`);
  }
  unlink(path: string): Promise<void> {
    return this.op(`unlink ${path}`);
  }
  syncDir(dir: string): Promise<void> {
    return this.op(`syncDir ${dir}`);
  }
}

describe('zeroFill', () => {
  it('writes zeros over exactly [from, to), at most 16 MiB a call', async () => {
    const fs = new RecordingFs();
    await zeroFill(fs.file('/f'), 100, 100 + 16 * MIB + 5);
    expect(fs.writes.map((w) => ({ position: w.position, lengths: w.lengths, allZero: w.allZero }))).toEqual([
      { position: 100, lengths: Array.from({ length: 16 }, () => MIB), allZero: true },
      { position: 100 + 16 * MIB, lengths: [5], allZero: true },
    ]);
  });

  it('writes a range shorter than a chunk in one call, and nothing for an empty range', async () => {
    const fs = new RecordingFs();
    await zeroFill(fs.file('/f'), 8, 40);
    await zeroFill(fs.file('/f'), 40, 40);
    expect(fs.writes).toEqual([{ path: '/f', position: 8, lengths: [32], allZero: true, bytes: Array.from({ length: 32 }, () => 0) }]);
  });

  it('splits a range of whole and part chunks at the chunk size', async () => {
    const fs = new RecordingFs();
    await zeroFill(fs.file('/f'), 0, 2 * MIB + 1);
    expect(fs.writes.map((w) => w.lengths)).toEqual([[MIB, MIB, 1]]);
  });
});

describe('writeFileDurably', () => {
  it('writes, syncs and closes a temporary file, then renames it and syncs the directory', async () => {
    const fs = new RecordingFs();
    await writeFileDurably(fs, '/d', 'LOCK', [new Uint8Array([1, 2]), new Uint8Array([3])]);
    expect(fs.calls).toEqual(['open /d/LOCK.tmp create', 'writev /d/LOCK.tmp @0', 'sync /d/LOCK.tmp', 'close /d/LOCK.tmp', 'rename /d/LOCK.tmp /d/LOCK', 'syncDir /d']);
    expect(fs.writes[0]?.bytes).toEqual([1, 2, 3]);
  });

  it('never renames a temporary file whose write or sync failed, and closes it all the same', async () => {
    for (const failing of ['writev /d/c.tmp @0', 'sync /d/c.tmp']) {
      const fs = new RecordingFs();
      fs.failing.add(failing);
      await expect(writeFileDurably(fs, '/d', 'c', [new Uint8Array(1)])).rejects.toThrow(`EIO: ${failing}`);
      expect(fs.calls.at(-1)).toBe('close /d/c.tmp');
      expect(fs.calls.some((c) => c.startsWith('rename'))).toBe(false);
    }
  });

  it('fails when the rename or the directory sync fails', async () => {
    for (const failing of ['rename /d/c.tmp /d/c', 'syncDir /d']) {
      const fs = new RecordingFs();
      fs.failing.add(failing);
      await expect(writeFileDurably(fs, '/d', 'c', [new Uint8Array(1)])).rejects.toThrow(`EIO: ${failing}`);
    }
  });
});

describe('prepareSegmentFile', () => {
  it('zero-fills the whole file, syncs it and its directory, and hands it back open', async () => {
    const fs = new RecordingFs();
    const prepared = await prepareSegmentFile(fs, '/d', 'next.tmp', 4096);
    expect(prepared.path).toBe('/d/next.tmp');
    expect(prepared.file.path).toBe('/d/next.tmp');
    expect(fs.calls).toEqual(['open /d/next.tmp create', 'writev /d/next.tmp @0', 'sync /d/next.tmp', 'syncDir /d']);
    expect(fs.writes.map((w) => ({ position: w.position, lengths: w.lengths, allZero: w.allZero }))).toEqual([{ position: 0, lengths: [4096], allZero: true }]);
  });

  it('closes the file and passes the error on when a step fails, even if closing fails too', async () => {
    for (const failing of ['writev /d/n.tmp @0', 'sync /d/n.tmp', 'syncDir /d']) {
      const fs = new RecordingFs();
      fs.failing.add(failing);
      fs.failing.add('close /d/n.tmp');
      await expect(prepareSegmentFile(fs, '/d', 'n.tmp', 64)).rejects.toThrow(`EIO: ${failing}`);
      expect(fs.calls.at(-1)).toBe('close /d/n.tmp');
    }
  });
});
