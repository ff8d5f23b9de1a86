/** Options are validated at the edge, with messages that say what was expected. */
import { describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import type { FileLogOptions } from '../../wal/options.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { seededRandom } from './helpers/random.ts';

const open = (options: Record<string, unknown>) => openFileLog('/w', { fs: new SimFs(seededRandom(1)), ...options } as FileLogOptions);

describe('FileLog options', () => {
  it.each([
    [{ segmentBytes: 0 }, 'Expected `segmentBytes` to be a positive integer.'],
    [{ segmentBytes: 1.5 }, 'Expected `segmentBytes` to be a positive integer.'],
    [{ segmentBytes: '4096' }, 'Expected `segmentBytes` to be a positive integer.'],
    [{ segmentBytes: 1024 }, 'Expected `segmentBytes` to be between 4096 and 1073741824, got 1024.'],
    [{ segmentBytes: 4100 }, 'Expected `segmentBytes` to be a multiple of 8.'],
    [{ recordBytesMax: -1 }, 'Expected `recordBytesMax` to be a positive integer.'],
    [{ segmentBytes: 4096, recordBytesMax: 8192 }, 'Expected `recordBytesMax` to be between 1 and 4040, got 8192.'],
    [{ pendingAppendsMax: 0 }, 'Expected `pendingAppendsMax` to be a positive integer.'],
    [{ flushIntervalMs: 120_000 }, 'Expected `flushIntervalMs` to be between 1 and 60000, got 120000.'],
    [{ syncPolicy: 'sometimes' }, "Expected `syncPolicy` to be one of 'always', 'group', 'none'."],
    [{ pendingBytesMax: 10, recordBytesMax: 100 }, 'Expected `pendingBytesMax` to hold at least one record of `recordBytesMax` (120 bytes).'],
    [{ segmentByte: 4096 }, 'Unknown option `segmentByte`'],
  ])('refuses %o', async (options, message) => {
    await expect(open(options)).rejects.toMatchObject({ name: 'WalError', code: 'WAL_INVALID_OPTION', message: expect.stringContaining(message) });
  });

  it('refuses an empty directory name', async () => {
    await expect(openFileLog('')).rejects.toMatchObject({ code: 'WAL_INVALID_OPTION', message: 'Expected `dir` to be a non-empty string.' });
  });

  it('clamps the default record limit to what fits in a small segment', async () => {
    const { log } = await open({ segmentBytes: 4096 });
    await expect(log.append(1, new Uint8Array(4040))).resolves.toBe(1);
    await expect(log.append(1, new Uint8Array(4041))).rejects.toMatchObject({ code: 'WAL_RECORD_TOO_LARGE' });
    await log.close();
  });
});
