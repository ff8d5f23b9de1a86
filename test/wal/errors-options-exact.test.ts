/**
 * What callers match on: a WalError's code and only the details it was given, I/O error texts
 * that keep the errno code, and the file log's options resolved to exact defaults and refused
 * at each edge with the message that names the edge.
 */
import { describe, expect, it } from 'vitest';
import { WalError, describeIoError, isWalError } from '../../wal/errors.ts';
import { frameBytesFor } from '../../wal/format.ts';
import { nodeFs } from '../../wal/fs.ts';
import type { FileLogOptions } from '../../wal/options.ts';
import {
  BLOCKING_SYNC_MS_LIMIT,
  BLOCKING_SYNC_MS_MAX_DEFAULT,
  FLUSH_INTERVAL_MS_DEFAULT,
  PENDING_APPENDS_MAX_DEFAULT,
  PENDING_BYTES_MAX_DEFAULT,
  RECORD_BYTES_MAX_DEFAULT,
  SEGMENT_BYTES_DEFAULT,
  recordBytesLimitFor,
  resolveOptions,
} from '../../wal/options.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { seededRandom } from './helpers/random.ts';

describe('WalError', () => {
  it('carries its code, message and name, and no detail it was not given', () => {
    const error = new WalError('WAL_CLOSED', 'the log is closed');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('WalError');
    expect(error.code).toBe('WAL_CLOSED');
    expect(error.message).toBe('the log is closed');
    // No `cause` key at all, as Error leaves it (the detail fields are class fields, present as undefined).
    expect('cause' in error).toBe(false);
    for (const key of ['segment', 'offset', 'path', 'holder'] as const) expect(error[key], key).toBeUndefined();
  });

  it('keeps every detail it was given, an offset of 0 included', () => {
    const cause = new Error('EIO');
    const holder = { pid: 7, processStartTime: null, bootId: null, pidNamespace: null, hostname: 'h' } as unknown as NonNullable<WalError['holder']>;
    const error = new WalError('WAL_CORRUPT', 'bad', { cause, segment: '00000000000000000001.wal', offset: 0, path: '/d/x', holder });
    expect(error.cause).toBe(cause);
    expect(error.segment).toBe('00000000000000000001.wal');
    expect(error.offset).toBe(0);
    expect(error.path).toBe('/d/x');
    expect(error.holder).toBe(holder);
  });

  it('is matched by isWalError with or without a code', () => {
    const error = new WalError('WAL_POISONED', 'x');
    expect(isWalError(error)).toBe(true);
    expect(isWalError(error, 'WAL_POISONED')).toBe(true);
    expect(isWalError(error, 'WAL_CLOSED')).toBe(false);
    expect(isWalError(Object.assign(new Error('x'), { code: 'WAL_POISONED' }), 'WAL_POISONED')).toBe(false);
    expect(isWalError(undefined)).toBe(false);
  });
});

describe('describeIoError', () => {
  it('puts the errno code in front of a message that lacks it, and only then', () => {
    expect(describeIoError(Object.assign(new Error('i/o error'), { code: 'EIO' }))).toBe('EIO: i/o error');
    expect(describeIoError(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }))).toBe('EIO: i/o error, write');
    expect(describeIoError(Object.assign(new Error('odd'), { code: 5 }))).toBe('odd');
    expect(describeIoError(new Error('plain'))).toBe('plain');
    expect(describeIoError('a string')).toBe('a string');
    expect(describeIoError(42)).toBe('42');
  });
});

const refused = (options: unknown, message: string) => {
  expect(() => resolveOptions(options as FileLogOptions)).toThrow(expect.objectContaining({ name: 'WalError', code: 'WAL_INVALID_OPTION', message }));
};

describe('resolveOptions', () => {
  it('resolves no options to the documented defaults', () => {
    const resolved = resolveOptions(undefined);
    expect(resolved).toMatchObject({
      fs: nodeFs,
      syncPolicy: 'group',
      segmentBytes: SEGMENT_BYTES_DEFAULT,
      recordBytesMax: RECORD_BYTES_MAX_DEFAULT,
      pendingAppendsMax: PENDING_APPENDS_MAX_DEFAULT,
      pendingBytesMax: PENDING_BYTES_MAX_DEFAULT,
      flushIntervalMs: FLUSH_INTERVAL_MS_DEFAULT,
      owner: undefined,
      onSync: undefined,
      startWriter: setImmediate,
      blockingSyncMsMax: 10,
    });
    // The default clock is performance.now's.
    const before = performance.now();
    const read = resolved.now();
    expect(read).toBeGreaterThanOrEqual(before);
    expect(read).toBeLessThanOrEqual(performance.now());
    expect(BLOCKING_SYNC_MS_MAX_DEFAULT).toBe(10);
    expect([SEGMENT_BYTES_DEFAULT, RECORD_BYTES_MAX_DEFAULT, PENDING_APPENDS_MAX_DEFAULT, PENDING_BYTES_MAX_DEFAULT, FLUSH_INTERVAL_MS_DEFAULT]).toEqual([64 * 1024 * 1024, 1024 * 1024, 16_384, 64 * 1024 * 1024, 1000]);
    expect(resolveOptions({})).toMatchObject({ syncPolicy: 'group', segmentBytes: SEGMENT_BYTES_DEFAULT });
  });

  it('passes every given option through', () => {
    const fs = new SimFs(seededRandom(1));
    const onSync = (): void => undefined;
    const startWriter = (run: () => void): void => queueMicrotask(run);
    const now = (): number => 42;
    const resolved = resolveOptions({ fs, syncPolicy: 'none', segmentBytes: 8192, recordBytesMax: 100, pendingAppendsMax: 3, pendingBytesMax: 4096, flushIntervalMs: 7, owner: 'p1', onSync, startWriter, blockingSyncMsMax: 0.5, now });
    expect(resolved).toMatchObject({ fs, syncPolicy: 'none', segmentBytes: 8192, recordBytesMax: 100, pendingAppendsMax: 3, pendingBytesMax: 4096, flushIntervalMs: 7, owner: 'p1', onSync, startWriter, blockingSyncMsMax: 0.5, now });
    expect(resolveOptions({ syncPolicy: 'always' }).syncPolicy).toBe('always');
  });

  it('accepts each bound itself', () => {
    expect(resolveOptions({ segmentBytes: 4096 }).segmentBytes).toBe(4096);
    expect(resolveOptions({ segmentBytes: 1024 * 1024 * 1024 }).segmentBytes).toBe(1024 * 1024 * 1024);
    expect(resolveOptions({ segmentBytes: 4096, recordBytesMax: recordBytesLimitFor(4096) }).recordBytesMax).toBe(4040);
    expect(resolveOptions({ recordBytesMax: 1, pendingBytesMax: frameBytesFor(1) })).toMatchObject({ recordBytesMax: 1, pendingBytesMax: 24 });
    expect(resolveOptions({ pendingAppendsMax: 1 << 24 }).pendingAppendsMax).toBe(1 << 24);
    expect(resolveOptions({ pendingBytesMax: 1 << 30 }).pendingBytesMax).toBe(1 << 30);
    expect(resolveOptions({ flushIntervalMs: 1 }).flushIntervalMs).toBe(1);
    expect(resolveOptions({ flushIntervalMs: 60_000 }).flushIntervalMs).toBe(60_000);
    expect(resolveOptions({ owner: 'x'.repeat(200) }).owner).toHaveLength(200);
    expect(resolveOptions({ blockingSyncMsMax: 0 }).blockingSyncMsMax).toBe(0);
    expect(resolveOptions({ blockingSyncMsMax: 1000 }).blockingSyncMsMax).toBe(BLOCKING_SYNC_MS_LIMIT);
    // The default record limit is the smaller of 1 MiB and what fits in a segment.
    expect(resolveOptions({ segmentBytes: 2 * 1024 * 1024 }).recordBytesMax).toBe(1024 * 1024);
    expect(resolveOptions({ segmentBytes: 1024 * 1024 }).recordBytesMax).toBe(1024 * 1024 - 56);
  });

  it('refuses one past each bound, naming the bound', () => {
    refused({ segmentBytes: 1024 * 1024 * 1024 + 8 }, 'Expected `segmentBytes` to be between 4096 and 1073741824, got 1073741832.');
    refused({ segmentBytes: 4088 }, 'Expected `segmentBytes` to be between 4096 and 1073741824, got 4088.');
    refused({ segmentBytes: 4096, recordBytesMax: 4041 }, 'Expected `recordBytesMax` to be between 1 and 4040, got 4041.');
    refused({ pendingAppendsMax: (1 << 24) + 1 }, 'Expected `pendingAppendsMax` to be between 1 and 16777216, got 16777217.');
    refused({ pendingBytesMax: (1 << 30) + 1 }, 'Expected `pendingBytesMax` to be between 1 and 1073741824, got 1073741825.');
    refused({ recordBytesMax: 1, pendingBytesMax: 23 }, 'Expected `pendingBytesMax` to hold at least one record of `recordBytesMax` (24 bytes).');
    refused({ flushIntervalMs: 60_001 }, 'Expected `flushIntervalMs` to be between 1 and 60000, got 60001.');
    refused({ flushIntervalMs: 0 }, 'Expected `flushIntervalMs` to be a positive integer.');
    refused({ pendingBytesMax: 2 ** 53 }, 'Expected `pendingBytesMax` to be a positive integer.');
    refused({ owner: 'x'.repeat(201) }, 'Expected `owner` to be a string of at most 200 characters.');
    refused({ blockingSyncMsMax: 1000.5 }, 'Expected `blockingSyncMsMax` to be a number of ms from 0 to 1000.');
    refused({ blockingSyncMsMax: -0.001 }, 'Expected `blockingSyncMsMax` to be a number of ms from 0 to 1000.');
  });

  it('refuses values of the wrong kind', () => {
    refused(null, 'Expected `options` to be an object.');
    refused('group', 'Expected `options` to be an object.');
    refused({ fs: {} }, 'Expected `fs` to be a WalFs.');
    refused({ fs: 'disk' }, 'Expected `fs` to be a WalFs.');
    // A function that happens to carry an `open` is not a file system object either.
    refused({ fs: Object.assign(() => undefined, { open: () => undefined }) }, 'Expected `fs` to be a WalFs.');
    refused({ random: 0.5 }, 'Expected `random` to be a function returning numbers in [0, 1).');
    refused({ owner: 5 }, 'Expected `owner` to be a string of at most 200 characters.');
    refused({ onSync: 'log' }, 'Expected `onSync` to be a function.');
    refused({ startWriter: 'soon' }, 'Expected `startWriter` to be a function.');
    refused({ blockingSyncMsMax: '1' }, 'Expected `blockingSyncMsMax` to be a number of ms from 0 to 1000.');
    refused({ blockingSyncMsMax: Number.NaN }, 'Expected `blockingSyncMsMax` to be a number of ms from 0 to 1000.');
    refused({ now: 5 }, 'Expected `now` to be a function returning ms.');
    // null is not "off" and not "the default": it is refused like any other wrong kind.
    refused({ blockingSyncMsMax: null }, 'Expected `blockingSyncMsMax` to be a number of ms from 0 to 1000.');
    refused({ now: null }, 'Expected `now` to be a function returning ms.');
    refused({ syncPolicy: 'Group' }, "Expected `syncPolicy` to be one of 'always', 'group', 'none'.");
    refused({ extra: 1 }, 'Unknown option `extra`; expected one of fs, syncPolicy, segmentBytes, recordBytesMax, pendingAppendsMax, pendingBytesMax, flushIntervalMs, random, owner, onSync, startWriter, blockingSyncMsMax, now.');
  });

  it('draws salts from the given source as 32-bit words, or at random without one', () => {
    const values = [0, 0.5, 0.999_999_999_9];
    const resolved = resolveOptions({ random: () => values.shift() ?? 0 });
    expect([resolved.newSalt(), resolved.newSalt(), resolved.newSalt()]).toEqual([0, 0x8000_0000, 0xffff_ffff]);
    const random = resolveOptions({});
    const salts = new Set(Array.from({ length: 8 }, () => random.newSalt()));
    // Eight random 32-bit salts: all equal with probability 2^-224.
    expect(salts.size).toBeGreaterThan(1);
    for (const salt of salts) expect(Number.isInteger(salt) && salt >= 0 && salt < 2 ** 32).toBe(true);
  });
});
