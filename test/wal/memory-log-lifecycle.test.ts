/**
 * The in-memory log across its lifecycle, where the simulator's crashes and restarts land:
 * a crash after a clean close, a crash of an instance a later open replaced, a close that a
 * new open overtakes, a crash between a checkpoint's sync and its write, a dead instance's
 * queued sync, and which sync covers an append. Also the refusals' order and exact errors, and
 * when a crash draws from `random` (a seed replays a run only if every draw is where it was).
 */
import { describe, expect, it } from 'vitest';
import { MemoryLog, MemoryLogStore } from '../../wal/memory-log.ts';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
/** A `random` that returns `values` in turn, then 0. */
const scripted = (...values: number[]) => () => values.shift() ?? 0;
/** Lets every queued microtask run (the memory log's "fdatasync" is one). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const lsnsOf = (store: MemoryLogStore): number[] => MemoryLog.open(store).recovered.entries.map((entry) => entry.lsn);
/** How `promise` settles, with a handler attached at once (a crash may reject it before the test looks). */
const outcome = (promise: Promise<unknown>): Promise<string> => promise.then(
  () => 'acknowledged',
  (error: unknown) => String((error as { code?: unknown }).code),
);

describe('MemoryLog around close and crash', () => {
  it('a crash after a clean close keeps what close flushed, and the closed log still says WAL_CLOSED', async () => {
    // random 0: a crash would keep none of the unsynced records.
    const store = new MemoryLogStore(scripted(0, 0.9));
    const { log } = MemoryLog.open(store);
    void log.append(1, bytes(1));
    void log.append(1, bytes(2));
    await log.close();
    // No log is open on the store now; the crash must still work.
    store.crash();
    await expect(log.append(1, bytes(3))).rejects.toMatchObject({ code: 'WAL_CLOSED', message: 'The log is closed.' });
    expect(lsnsOf(store)).toEqual([1, 2]);
  });

  it('a crash of an instance a later open replaced kills only that instance', async () => {
    const store = new MemoryLogStore(scripted(0, 0.9));
    const first = MemoryLog.open(store).log;
    const second = MemoryLog.open(store).log;
    void second.append(1, bytes(1));
    first.crash();
    // The store did not crash: the unsynced record is still there and the second log works.
    expect(await second.append(1, bytes(2), { durable: true })).toBe(2);
    await second.close();
    expect(lsnsOf(store)).toEqual([1, 2]);
  });

  it('a close that a new open overtakes leaves the new instance open on the store, so a crash kills it', async () => {
    const store = new MemoryLogStore(scripted());
    const first = MemoryLog.open(store).log;
    // close() waits for its sync; the restart comes first and kills the closing instance.
    const closing = first.close();
    const second = MemoryLog.open(store).log;
    await closing;
    store.crash();
    await expect(second.append(1, bytes(1))).rejects.toMatchObject({ code: 'WAL_CRASHED', message: 'The log died in a simulated crash.' });
  });

  it('says why a crashed log refuses, and a failed sync keeps the I/O error as its cause', async () => {
    const store = new MemoryLogStore(scripted());
    const { log } = MemoryLog.open(store);
    expect(log.poisoned).toBe(false);
    store.failSyncs(1);
    await expect(log.sync()).rejects.toMatchObject({ code: 'WAL_POISONED' });
    expect(log.poisoned).toBe(true);
    const error = await log.append(1, bytes(1)).catch((e: unknown) => e);
    expect((error as { cause?: Error }).cause?.message).toBe('EIO: injected sync failure');
    log.crash();
    await expect(log.append(1, bytes(1))).rejects.toMatchObject({ code: 'WAL_CRASHED', message: 'The log died in a simulated crash.' });
    expect(MemoryLog.open(store).log.poisoned).toBe(false);
  });

  it('a crash with nothing unsynced draws nothing from random, so the next crash gets the next draw', async () => {
    // The second crash draws 0.5 (keep floor(0.5 * 3) = 1 of its 2 unsynced records) and 0.9 (no tear).
    const store = new MemoryLogStore(scripted(0.5, 0.9));
    const { log } = MemoryLog.open(store);
    await log.append(1, bytes(1), { durable: true });
    store.crash();
    const again = MemoryLog.open(store).log;
    void again.append(1, bytes(2));
    void again.append(1, bytes(3));
    store.crash();
    expect(lsnsOf(store)).toEqual([1, 2]);
  });

  it("a dead instance's queued sync makes nothing of the next instance durable", async () => {
    // First crash: keep none of the unsynced record (0), tear nothing (0.9); the second keeps none (0, 0.9).
    const store = new MemoryLogStore(scripted(0, 0.9, 0, 0.9));
    const first = MemoryLog.open(store).log;
    const lost = outcome(first.append(1, bytes(1), { durable: true }));
    store.crash();
    const second = MemoryLog.open(store).log;
    expect(await second.append(1, bytes(2))).toBe(1);
    // The first instance's sync was queued before the crash; it runs now and must do nothing.
    await settle();
    expect(await lost).toBe('WAL_CRASHED');
    store.crash();
    expect(lsnsOf(store)).toEqual([]);
  });

  it('a durable append made after the pending sync ran waits for the next sync, and a crash before it loses the append', async () => {
    // The crash keeps none of the unsynced records (0) and tears none (0.9).
    const store = new MemoryLogStore(scripted(0, 0.9));
    const { log } = MemoryLog.open(store);
    const first = log.append(1, bytes(1), { durable: true });
    let late: Promise<string> | undefined;
    // Runs after the sync that `first` scheduled, before that sync's acknowledgements are seen.
    void Promise.resolve().then(() => {
      late = outcome(log.append(1, bytes(3), { durable: true }));
    });
    // Same tick as `first`: it joins the sync already scheduled and schedules none of its own.
    const second = log.append(1, bytes(2), { durable: true });
    void first.then(() => store.crash());
    expect(await second).toBe(2);
    await settle();
    expect(await late).toBe('WAL_CRASHED');
    expect(lsnsOf(store)).toEqual([1, 2]);
  });
});

describe('MemoryLog checkpoint edges', () => {
  it('refuses a checkpoint on a closed or poisoned log as such, before looking at its arguments', async () => {
    const closed = MemoryLog.open(new MemoryLogStore(scripted())).log;
    await closed.append(1, bytes(1));
    await closed.close();
    await expect(closed.checkpoint(99, bytes())).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    const store = new MemoryLogStore(scripted());
    const poisoned = MemoryLog.open(store).log;
    store.failSyncs(1);
    await expect(poisoned.append(1, bytes(1), { durable: true })).rejects.toMatchObject({ code: 'WAL_POISONED' });
    await expect(poisoned.checkpoint(99, 'not bytes' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'WAL_POISONED' });
  });

  it('takes a checkpoint at LSN 1, and names the code of a refused one', async () => {
    const store = new MemoryLogStore(scripted());
    const { log } = MemoryLog.open(store);
    await log.append(1, bytes(1));
    await log.append(1, bytes(2));
    await expect(log.checkpoint(2.5, bytes())).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Expected checkpoint `lsn` to be an integer in 1..2 (the last LSN), got 2.5.' });
    await expect(log.checkpoint(1, [1] as unknown as Uint8Array)).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: 'Expected checkpoint `data` to be a Uint8Array.' });
    await log.checkpoint(1, bytes(7));
    await log.close();
    expect(MemoryLog.open(store).recovered).toEqual({ checkpoint: { lsn: 1, data: bytes(7) }, entries: [{ lsn: 2, type: 1, payload: bytes(2) }] });
  });

  it('a crash between the checkpoint\'s sync and its write leaves no checkpoint, and the checkpoint rejects', async () => {
    const store = new MemoryLogStore(scripted());
    const { log } = MemoryLog.open(store);
    const append = log.append(1, bytes(1), { durable: true });
    // The append's acknowledgement is seen before the checkpoint resumes after the same sync.
    void append.then(() => store.crash());
    await expect(log.checkpoint(1, bytes(9))).rejects.toMatchObject({ code: 'WAL_CRASHED' });
    expect(MemoryLog.open(store).recovered).toStrictEqual({ entries: [{ lsn: 1, type: 1, payload: bytes(1) }] });
  });
});
