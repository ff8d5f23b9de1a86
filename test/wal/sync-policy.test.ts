/** What each sync policy costs in fdatasyncs, and the background segment preparation. */
import { describe, expect, it, vi } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import type { SyncPolicy } from '../../wal/options.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { seededRandom } from './helpers/random.ts';

const payload = new TextEncoder().encode('{"txId":"t"}');

/**
 * Turns the event loop until `cond` holds, at most `turnsMax` times. SimFs completes its calls in
 * microtasks, so this counts turns, not milliseconds: machine load cannot change the outcome.
 */
async function untilTurns(cond: () => boolean | Promise<boolean>, turnsMax = 100): Promise<boolean> {
  for (let i = 0; i < turnsMax; i++) {
    if (await cond()) return true;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return cond();
}

async function opened(syncPolicy: SyncPolicy, extra: { flushIntervalMs?: number; segmentBytes?: number } = {}) {
  const fs = new SimFs(seededRandom(9));
  const { log } = await openFileLog('/w', { fs, syncPolicy, segmentBytes: extra.segmentBytes ?? 64 * 1024, ...(extra.flushIntervalMs ? { flushIntervalMs: extra.flushIntervalMs } : {}) });
  const datasyncsAtOpen = fs.stats.datasyncs;
  return { fs, log, datasyncs: () => fs.stats.datasyncs - datasyncsAtOpen };
}

describe('sync policies', () => {
  it('always: one fdatasync per durable append, even when they arrive together', async () => {
    const { log, datasyncs } = await opened('always');
    await Promise.all(Array.from({ length: 20 }, () => log.append(1, payload, { durable: true })));
    expect(datasyncs()).toBe(20);
    // Non-durable appends ride along with the next durable one.
    await Promise.all([log.append(1, payload), log.append(1, payload), log.append(1, payload, { durable: true })]);
    expect(datasyncs()).toBe(21);
    expect(log.stats.datasyncs).toBe(21);
    await log.close();
  });

  it('group: appends that arrive while a flush is in flight share the next one', async () => {
    const { log, datasyncs } = await opened('group');
    const lsns = await Promise.all(Array.from({ length: 100 }, () => log.append(1, payload, { durable: true })));
    expect(lsns).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(datasyncs()).toBe(1);
    // Writers that append again as soon as they are acknowledged form batches, not single syncs.
    const writer = async () => {
      for (let i = 0; i < 10; i++) await log.append(1, payload, { durable: true });
    };
    await Promise.all(Array.from({ length: 16 }, writer));
    expect(datasyncs()).toBeLessThanOrEqual(1 + 10 + 2);
    expect(log.stats.batches).toBeLessThan(log.stats.appends / 8);
    await log.close();
  });

  it('none: durable appends do not wait for an fdatasync; the periodic flush comes at the interval, and not for nothing', async () => {
    // The flush timer runs on a fake clock: the test moves time, so load cannot make it late or early.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const { log, datasyncs } = await opened('none', { flushIntervalMs: 20 });
      await Promise.all(Array.from({ length: 10 }, () => log.append(1, payload, { durable: true })));
      expect(datasyncs()).toBe(0);
      await vi.advanceTimersByTimeAsync(19);
      expect(await untilTurns(() => datasyncs() > 0, 20)).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await untilTurns(() => datasyncs() > 0)).toBe(true);
      expect(datasyncs()).toBe(1);
      // Nothing to flush: later ticks of the timer do not sync for nothing.
      await vi.advanceTimersByTimeAsync(5 * 20);
      expect(await untilTurns(() => datasyncs() > 1, 20)).toBe(false);
      // A new append is flushed by the next tick.
      await log.append(1, payload);
      await vi.advanceTimersByTimeAsync(20);
      expect(await untilTurns(() => datasyncs() > 1)).toBe(true);
      expect(datasyncs()).toBe(2);
      await log.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('sync() issues a real fdatasync under every policy', async () => {
    for (const policy of ['always', 'group', 'none'] as const) {
      const { log, datasyncs } = await opened(policy);
      await log.append(1, payload);
      await log.sync();
      expect(datasyncs(), policy).toBe(1);
      // Nothing new to sync: no fdatasync.
      await log.sync();
      expect(datasyncs(), policy).toBe(1);
      await log.close();
    }
  });

  it('prepares the next segment in the background, so rollovers do not wait for it', async () => {
    const { fs, log } = await opened('group', { segmentBytes: 4096 });
    const big = new Uint8Array(300).fill(65);
    for (let i = 0; i < 7; i++) await log.append(1, big, { durable: true });
    // More than half full: a zero-filled segment is being prepared under a temporary name.
    expect(await untilTurns(async () => (await fs.readdir('/w')).some((name) => name.startsWith('prepared-') && name.endsWith('.wal.tmp')))).toBe(true);
    for (let i = 0; i < 60; i++) await log.append(1, big, { durable: true });
    const segments = (await fs.readdir('/w')).filter((name) => name.endsWith('.wal'));
    expect(segments.length).toBeGreaterThanOrEqual(5);
    expect(log.stats.rollovers).toBe(segments.length - 1);
    expect(log.stats.rolloverWaits).toBe(0);
    await log.close();
    // close removes the spare; open would anyway.
    expect((await fs.readdir('/w')).some((name) => name.endsWith('.tmp'))).toBe(false);
  });
});
