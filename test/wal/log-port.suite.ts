/**
 * The acceptance suite of the `Log` port (wal/log.ts). Every implementation runs it:
 * memory-log.test.ts, file-log-sim.test.ts and file-log-node.test.ts.
 *
 * What a "crash" proves depends on the harness. A simulated power loss (MemoryLog, FileLog on
 * SimFs) drops what was not synced, so the durability cases can fail there. On the real disk a
 * test can only kill the process: the kernel's page cache keeps every write, so those cases show
 * that recovery reads back what was written, and cannot fail on a missing fdatasync. The test
 * names say which run proves what.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Log, LogEntry, Recovered } from '../../wal/log.ts';

/** What the harness's `crash()` is: a simulated power loss, or a process kill that keeps the page cache. */
export type CrashKind = 'power-loss' | 'process-kill';

const CRASH_WORDS: Record<CrashKind, string> = { 'power-loss': 'a power loss', 'process-kill': 'a kill -9' };
const DURABILITY_NOTE: Record<CrashKind, string> = {
  'power-loss': '',
  'process-kill': ' (page cache kept: proves the read-back, not durability; the power-loss runs prove that)',
};

export interface LogHarness {
  /** Opens the log (recovering what is there). The previous instance must be closed or crashed. */
  open(): Promise<{ log: Log; recovered: Recovered }>;
  /** The open instance dies: a power loss (unsynced data may be lost) or a process kill, as `CrashKind` says. */
  crash(): Promise<void>;
  /** Makes the next sync fail like an fsync error (EIO). */
  failNextSync: () => void;
  readonly recordBytesMax: number;
  readonly pendingAppendsMax: number;
  dispose(): Promise<void>;
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const payloadOf = (i: number): Uint8Array => text(JSON.stringify({ record: i, txId: `tx-${i}` }));

/** Asserts that `entries` are exactly `appended` from LSN `from` on, for some prefix length; returns the length. */
function expectPrefix(entries: readonly LogEntry[], appended: readonly { type: number; payload: Uint8Array }[], from = 1): number {
  entries.forEach((entry, i) => {
    const want = appended[from - 1 + i];
    expect(entry.lsn).toBe(from + i);
    expect(want).toBeDefined();
    expect(entry.type).toBe(want?.type);
    expect(Buffer.from(entry.payload).equals(Buffer.from(want?.payload ?? []))).toBe(true);
  });
  return entries.length;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ name: 'WalError', code });
}

export function describeLogPort(name: string, crashKind: CrashKind, makeHarness: () => Promise<LogHarness>): void {
  const crash = CRASH_WORDS[crashKind];
  const note = DURABILITY_NOTE[crashKind];
  describe(`Log port: ${name}, crash = ${crash}`, () => {
    let harness: LogHarness | undefined;
    const fresh = async (): Promise<LogHarness> => (harness = await makeHarness());
    afterEach(async () => {
      await harness?.dispose();
      harness = undefined;
    });

    it('opens empty: LSN 0, no entries, no checkpoint', async () => {
      const h = await fresh();
      const { log, recovered } = await h.open();
      expect(log.lastLsn).toBe(0);
      expect(recovered.entries).toEqual([]);
      expect(recovered.checkpoint).toBeUndefined();
      await log.close();
    });

    it('assigns LSNs 1, 2, 3, ... strictly +1, also to concurrent appends', async () => {
      const h = await fresh();
      const { log } = await h.open();
      expect(await log.append(1, payloadOf(1))).toBe(1);
      expect(await log.append(2, payloadOf(2), { durable: true })).toBe(2);
      const many = await Promise.all(Array.from({ length: 40 }, (_, i) => log.append(3, payloadOf(i), { durable: i % 3 === 0 })));
      expect(many).toEqual(Array.from({ length: 40 }, (_, i) => i + 3));
      expect(log.lastLsn).toBe(42);
      await log.close();
    });

    it('gives back every record byte for byte after close and reopen', async () => {
      const h = await fresh();
      const appended = [
        { type: 1, payload: payloadOf(1) },
        { type: 255, payload: new Uint8Array(0) },
        { type: 7, payload: Uint8Array.from([0, 0, 0, 1, 2, 255, 0, 0]) },
        { type: 2, payload: new Uint8Array(h.recordBytesMax).fill(0xab) },
        ...Array.from({ length: 30 }, (_, i) => ({ type: 1 + (i % 5), payload: payloadOf(i) })),
      ];
      const first = await h.open();
      for (const { type, payload } of appended) await first.log.append(type, payload);
      await first.log.close();
      const { log, recovered } = await h.open();
      expect(expectPrefix(recovered.entries, appended)).toBe(appended.length);
      expect(log.lastLsn).toBe(appended.length);
      await log.close();
    });

    it(`keeps every durable append through ${crash}, and gives back only a prefix of what was appended${note}`, async () => {
      const h = await fresh();
      const { log } = await h.open();
      const appended: { type: number; payload: Uint8Array }[] = [];
      let durableLsn = 0;
      for (let i = 0; i < 60; i++) {
        appended.push({ type: 1, payload: payloadOf(i) });
        const durable = i % 7 === 3;
        const lsn = await log.append(1, payloadOf(i), { durable });
        if (durable) durableLsn = lsn;
      }
      await h.crash();
      const { log: after, recovered } = await h.open();
      const kept = expectPrefix(recovered.entries, appended);
      expect(kept).toBeGreaterThanOrEqual(durableLsn);
      expect(after.lastLsn).toBe(kept);
      await after.close();
    });

    it(`makes earlier non-durable appends survive ${crash} with sync()${note}`, async () => {
      const h = await fresh();
      const { log } = await h.open();
      for (let i = 0; i < 20; i++) await log.append(2, payloadOf(i));
      await log.sync();
      await h.crash();
      const { log: after, recovered } = await h.open();
      expect(recovered.entries.length).toBeGreaterThanOrEqual(20);
      await after.close();
    });

    it(`continues at lastLsn + 1 after recovery from ${crash}, and the new record reads back`, async () => {
      const h = await fresh();
      const first = await h.open();
      for (let i = 0; i < 5; i++) await first.log.append(1, payloadOf(i), { durable: true });
      await h.crash();
      const second = await h.open();
      const lsn = await second.log.append(9, text('after'), { durable: true });
      expect(lsn).toBe(second.recovered.entries.length + 1);
      await second.log.close();
      const third = await h.open();
      expect(third.recovered.entries.at(-1)).toMatchObject({ lsn, type: 9 });
      expect(new TextDecoder().decode(third.recovered.entries.at(-1)?.payload)).toBe('after');
      await third.log.close();
    });

    it('returns the newest checkpoint and only the entries after it', async () => {
      const h = await fresh();
      const { log } = await h.open();
      for (let i = 1; i <= 30; i++) await log.append(1, payloadOf(i));
      await log.checkpoint(10, text('state@10'));
      await log.checkpoint(25, text('state@25'));
      for (let i = 31; i <= 35; i++) await log.append(1, payloadOf(i), { durable: i === 35 });
      await h.crash();
      const { log: after, recovered } = await h.open();
      expect(recovered.checkpoint?.lsn).toBe(25);
      expect(new TextDecoder().decode(recovered.checkpoint?.data)).toBe('state@25');
      expect(recovered.entries.map((entry) => entry.lsn)).toEqual([26, 27, 28, 29, 30, 31, 32, 33, 34, 35]);
      expect(after.lastLsn).toBe(35);
      await after.close();
    });

    it('refuses a checkpoint beyond the last LSN or older than the current one', async () => {
      const h = await fresh();
      const { log } = await h.open();
      for (let i = 0; i < 5; i++) await log.append(1, payloadOf(i));
      await expectCode(log.checkpoint(6, text('x')), 'WAL_INVALID_ARGUMENT');
      await expectCode(log.checkpoint(0, text('x')), 'WAL_INVALID_ARGUMENT');
      await log.checkpoint(4, text('x'));
      await expectCode(log.checkpoint(3, text('y')), 'WAL_INVALID_ARGUMENT');
      // Also against one still in flight.
      const newer = log.checkpoint(5, text('z'));
      await expectCode(log.checkpoint(4, text('w')), 'WAL_INVALID_ARGUMENT');
      await newer;
      await log.close();
      const { log: again, recovered } = await h.open();
      expect(recovered.checkpoint?.lsn).toBe(5);
      await again.close();
    });

    it('refuses types outside 1..255 without using an LSN', async () => {
      const h = await fresh();
      const { log } = await h.open();
      for (const type of [0, 256, 1.5, -1, Number.NaN]) await expectCode(log.append(type, payloadOf(0)), 'WAL_INVALID_ARGUMENT');
      expect(await log.append(1, payloadOf(0))).toBe(1);
      await log.close();
    });

    it('refuses a record over recordBytesMax with WAL_RECORD_TOO_LARGE, and takes one of exactly the max', async () => {
      const h = await fresh();
      const { log } = await h.open();
      await expectCode(log.append(1, new Uint8Array(h.recordBytesMax + 1)), 'WAL_RECORD_TOO_LARGE');
      expect(await log.append(1, new Uint8Array(h.recordBytesMax), { durable: true })).toBe(1);
      await log.close();
    });

    it('refuses appends beyond pendingAppendsMax with WAL_QUEUE_FULL, and recovers once they resolve', async () => {
      const h = await fresh();
      const { log } = await h.open();
      const accepted = Array.from({ length: h.pendingAppendsMax }, (_, i) => log.append(1, payloadOf(i), { durable: true }));
      await expectCode(log.append(1, payloadOf(-1), { durable: true }), 'WAL_QUEUE_FULL');
      expect((await Promise.all(accepted)).length).toBe(h.pendingAppendsMax);
      expect(await log.append(1, payloadOf(-2), { durable: true })).toBe(h.pendingAppendsMax + 1);
      await log.close();
    });

    it('rejects with WAL_CLOSED after close; close is idempotent and flushes', async () => {
      const h = await fresh();
      const { log } = await h.open();
      const lsn = log.append(1, payloadOf(1));
      await log.close();
      await log.close();
      expect(await lsn).toBe(1);
      await expectCode(log.append(1, payloadOf(2)), 'WAL_CLOSED');
      await expectCode(log.sync(), 'WAL_CLOSED');
      const again = await h.open();
      expect(again.recovered.entries.length).toBe(1);
      await again.log.close();
    });

    it('is fail-stop: after a failed sync every pending and later operation rejects with WAL_POISONED', async () => {
      const h = await fresh();
      const { log } = await h.open();
      for (let i = 0; i < 3; i++) await log.append(1, payloadOf(i), { durable: true });
      h.failNextSync();
      const failing = [log.append(1, payloadOf(3), { durable: true }), log.append(1, payloadOf(4), { durable: true })];
      for (const append of failing) await expectCode(append, 'WAL_POISONED');
      await expectCode(log.append(1, payloadOf(5), { durable: true }), 'WAL_POISONED');
      await expectCode(log.sync(), 'WAL_POISONED');
      await expectCode(log.checkpoint(1, text('x')), 'WAL_POISONED');
      await h.crash();
      const { log: after, recovered } = await h.open();
      expect(recovered.entries.length).toBeGreaterThanOrEqual(3);
      await after.close();
    });
  });
}
