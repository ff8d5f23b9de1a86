/**
 * The in-memory log the simulator runs, exactly: its refusals and their messages, what a crash
 * keeps (the synced records always, a prefix of the rest, a torn record reported once), what a
 * failed sync drops, and what a checkpoint trims. The store's `random` is scripted here, so each
 * crash's choice is the one the test names.
 */
import { describe, expect, it } from 'vitest';
import { MemoryLog, MemoryLogStore } from '../../wal/memory-log.ts';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
/** A `random` that returns `values` in turn, then 0. */
const scripted = (...values: number[]) => () => values.shift() ?? 0;

describe('MemoryLog refusals', () => {
  it('refuses bad options and a store without a random source, naming them', () => {
    const store = new MemoryLogStore(scripted());
    expect(() => MemoryLog.open(store, { recordBytesMax: 0 })).toThrow(expect.objectContaining({ code: 'WAL_INVALID_OPTION', message: 'Expected `recordBytesMax` to be a positive integer.' }));
    expect(() => MemoryLog.open(store, { pendingAppendsMax: 1.5 })).toThrow(expect.objectContaining({ code: 'WAL_INVALID_OPTION', message: 'Expected `pendingAppendsMax` to be a positive integer.' }));
    expect(() => MemoryLog.open(store, { syncPolicy: 'never' as 'none' })).toThrow(expect.objectContaining({ code: 'WAL_INVALID_OPTION', message: "Expected `syncPolicy` to be one of 'always', 'group', 'none'." }));
    expect(() => new MemoryLogStore(0.5 as unknown as () => number)).toThrow(expect.objectContaining({ code: 'WAL_INVALID_OPTION', message: 'Expected `random` to be a function returning numbers in [0, 1).' }));
    expect(MemoryLog.open(store, { recordBytesMax: 1, pendingAppendsMax: 1 }).recovered).toEqual({ entries: [] });
  });

  it('names the type, payload, size and queue limits it refuses', async () => {
    const { log } = MemoryLog.open(new MemoryLogStore(scripted()), { recordBytesMax: 4, pendingAppendsMax: 1 });
    await expect(log.append(0, bytes(1))).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Expected `type` to be an integer in 1..255, got 0.' });
    await expect(log.append(256, bytes(1))).rejects.toMatchObject({ message: 'Expected `type` to be an integer in 1..255, got 256.' });
    await expect(log.append(1, 'x' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Expected `payload` to be a Uint8Array.' });
    await expect(log.append(1, bytes(1, 2, 3, 4, 5))).rejects.toMatchObject({ code: 'WAL_RECORD_TOO_LARGE', message: 'Record of 5 bytes is larger than `recordBytesMax` (4).' });
    // All three in one tick, before the sync that would empty the queue.
    const first = log.append(255, bytes(1, 2, 3, 4), { durable: true });
    const second = log.append(1, bytes(1), { durable: true });
    const sync = log.sync();
    await expect(second).rejects.toMatchObject({ code: 'WAL_QUEUE_FULL', message: 'Too many appends in flight (1; limit `pendingAppendsMax` 1).' });
    await expect(sync).rejects.toMatchObject({ code: 'WAL_QUEUE_FULL', message: 'Too many appends and syncs in flight (1; limit `pendingAppendsMax` 1).' });
    expect(await first).toBe(1);
    await log.close();
    await expect(log.append(1, bytes(1))).rejects.toMatchObject({ code: 'WAL_CLOSED', message: 'The log is closed.' });
  });

  it('names the checkpoint range and the older checkpoint it refuses, also against one in flight', async () => {
    const { log } = MemoryLog.open(new MemoryLogStore(scripted()));
    for (let i = 0; i < 4; i++) await log.append(1, bytes(i));
    await expect(log.checkpoint(5, bytes())).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Expected checkpoint `lsn` to be an integer in 1..4 (the last LSN), got 5.' });
    await expect(log.checkpoint(0, bytes())).rejects.toMatchObject({ message: 'Expected checkpoint `lsn` to be an integer in 1..4 (the last LSN), got 0.' });
    await expect(log.checkpoint(2, [1] as unknown as Uint8Array)).rejects.toMatchObject({ message: 'Expected checkpoint `data` to be a Uint8Array.' });
    const inFlight = log.checkpoint(3, bytes(3));
    await expect(log.checkpoint(2, bytes(2))).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Checkpoint LSN 2 is older than the checkpoint at LSN 3.' });
    await inFlight;
    await log.checkpoint(3, bytes(33));
    await log.close();
  });
});

describe('MemoryLog crashes', () => {
  it('keeps every synced record and the prefix of the rest that random picks, and reports a torn one once', async () => {
    // kept = floor(0.5 * (3 + 1)) = 2 of the 3 unsynced records; 0.2 < 0.5 tears the third,
    // its torn bytes floor(0.5 * (3 + 20)) = 11.
    const store = new MemoryLogStore(scripted(0.5, 0.2, 0.5));
    const { log } = MemoryLog.open(store);
    await log.append(1, bytes(1), { durable: true });
    for (let i = 2; i <= 4; i++) void log.append(2, bytes(i, i, i));
    const pending = log.append(3, bytes(9), { durable: true });
    log.crash();
    await expect(pending).rejects.toMatchObject({ code: 'WAL_CRASHED', message: 'The log died in a simulated crash.' });
    await expect(log.append(1, bytes(1))).rejects.toMatchObject({ code: 'WAL_CRASHED' });
    const reopened = MemoryLog.open(store);
    expect(reopened.recovered).toEqual({
      entries: [
        { lsn: 1, type: 1, payload: bytes(1) },
        { lsn: 2, type: 2, payload: bytes(2, 2, 2) },
        { lsn: 3, type: 2, payload: bytes(3, 3, 3) },
      ],
      tornTail: { segment: 'memory', offset: 3, bytes: 11 },
    });
    expect(reopened.log.lastLsn).toBe(3);
    // Reported once: the next open after a clean close has no torn tail.
    await reopened.log.close();
    expect(MemoryLog.open(store).recovered.tornTail).toBeUndefined();
  });

  it('tears nothing when random says so, and keeps nothing unsynced when random says 0', async () => {
    const store = new MemoryLogStore(scripted(0, 0.5));
    const { log } = MemoryLog.open(store);
    await log.append(1, bytes(1), { durable: true });
    void log.append(1, bytes(2));
    log.crash();
    expect(MemoryLog.open(store).recovered).toEqual({ entries: [{ lsn: 1, type: 1, payload: bytes(1) }] });
  });

  it('keeps every unsynced record at the top of random, with nothing left to tear', async () => {
    const store = new MemoryLogStore(scripted(0.999));
    const { log } = MemoryLog.open(store);
    void log.append(1, bytes(1));
    void log.append(1, bytes(2));
    store.crash();
    expect(MemoryLog.open(store).recovered.entries.map((e) => e.lsn)).toEqual([1, 2]);
  });

  it('keeps a copy of the payload, not the caller\'s buffer', async () => {
    const store = new MemoryLogStore(scripted());
    const { log } = MemoryLog.open(store);
    const payload = bytes(1, 2);
    await log.append(1, payload, { durable: true });
    payload[0] = 9;
    expect(MemoryLog.open(store).recovered.entries[0]?.payload).toEqual(bytes(1, 2));
  });

  it('a failed sync drops the unsynced records, poisons the log, and names the error', async () => {
    const store = new MemoryLogStore(scripted());
    const { log } = MemoryLog.open(store);
    await log.append(1, bytes(1), { durable: true });
    store.failSyncs(1);
    const failing = log.append(1, bytes(2), { durable: true });
    await expect(failing).rejects.toMatchObject({ code: 'WAL_POISONED', message: 'The log is poisoned by an I/O error (EIO: injected sync failure); nothing after it is acknowledged. Restart to recover.' });
    expect(log.poisoned).toBe(true);
    await expect(log.sync()).rejects.toMatchObject({ code: 'WAL_POISONED' });
    await log.close();
    const again = MemoryLog.open(store);
    expect(again.recovered.entries.map((e) => e.lsn)).toEqual([1]);
    // One failure only: the next sync succeeds.
    expect(await again.log.append(1, bytes(3), { durable: true })).toBe(2);
  });

  it("'none' resolves a durable append unsynced, so a crash may lose it", async () => {
    const store = new MemoryLogStore(scripted(0));
    const { log } = MemoryLog.open(store, { syncPolicy: 'none' });
    expect(await log.append(1, bytes(1), { durable: true })).toBe(1);
    store.crash();
    expect(MemoryLog.open(store).recovered.entries).toEqual([]);
  });

  it('a second open kills the first instance', async () => {
    const store = new MemoryLogStore(scripted());
    const first = MemoryLog.open(store).log;
    MemoryLog.open(store);
    await expect(first.append(1, bytes(1))).rejects.toMatchObject({ code: 'WAL_CRASHED' });
  });
});

describe('MemoryLog checkpoints', () => {
  it('trims the records it covers, keeps the rest in order, and recovers them after a crash', async () => {
    // The crash keeps none of the unsynced records (0) and tears none (0.9).
    const store = new MemoryLogStore(scripted(0, 0.9));
    const { log } = MemoryLog.open(store);
    for (let i = 1; i <= 5; i++) await log.append(1, bytes(i), { durable: i === 5 });
    const data = bytes(7);
    await log.checkpoint(3, data);
    data[0] = 0;
    expect(log.lastLsn).toBe(5);
    await log.checkpoint(5, bytes(5));
    expect(log.lastLsn).toBe(5);
    expect(await log.append(1, bytes(6))).toBe(6);
    // Record 6 was never synced, and the crash keeps none of it.
    store.crash();
    const again = MemoryLog.open(store);
    expect(again.recovered).toEqual({ checkpoint: { lsn: 5, data: bytes(5) }, entries: [] });
    expect(again.log.lastLsn).toBe(5);
  });

  it('keeps the records after the checkpoint, and their durability', async () => {
    const store = new MemoryLogStore(scripted(0));
    const { log } = MemoryLog.open(store);
    for (let i = 1; i <= 4; i++) await log.append(1, bytes(i), { durable: true });
    await log.checkpoint(2, bytes(2));
    store.crash();
    const again = MemoryLog.open(store);
    expect(again.recovered).toEqual({ checkpoint: { lsn: 2, data: bytes(2) }, entries: [3, 4].map((lsn) => ({ lsn, type: 1, payload: bytes(lsn) })) });
    expect(again.log.lastLsn).toBe(4);
  });
});
