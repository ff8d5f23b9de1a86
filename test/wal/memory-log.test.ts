import { describe, expect, it } from 'vitest';
import { MemoryLog, MemoryLogStore } from '../../wal/memory-log.ts';
import { describeLogPort } from './log-port.suite.ts';
import { seededRandom } from './helpers/random.ts';

describeLogPort('MemoryLog', 'power-loss', async () => {
  const store = new MemoryLogStore(seededRandom(7));
  const options = { recordBytesMax: 2048, pendingAppendsMax: 64 };
  return {
    recordBytesMax: options.recordBytesMax,
    pendingAppendsMax: options.pendingAppendsMax,
    open: async () => MemoryLog.open(store, options),
    crash: async () => store.crash(),
    failNextSync: () => store.failSyncs(1),
    dispose: async () => undefined,
  };
});

describe('MemoryLog crash semantics', () => {
  it('loses or tears unsynced records deterministically: the same seed gives the same survivors', () => {
    const survivors = (seed: number): number[] => {
      const store = new MemoryLogStore(seededRandom(seed));
      let log = MemoryLog.open(store).log;
      const counts: number[] = [];
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 10; i++) void log.append(1, new Uint8Array([i]));
        store.crash();
        const reopened = MemoryLog.open(store);
        counts.push(reopened.recovered.entries.length);
        log = reopened.log;
      }
      return counts;
    };
    expect(survivors(1)).toEqual(survivors(1));
    expect(survivors(1)).not.toEqual(survivors(2));
  });

  it('never resolves a durable append that a crash interrupted, and rejects it with WAL_CRASHED', async () => {
    const store = new MemoryLogStore(seededRandom(3));
    const { log } = MemoryLog.open(store);
    const append = log.append(1, new Uint8Array([1]), { durable: true });
    log.crash();
    await expect(append).rejects.toMatchObject({ code: 'WAL_CRASHED' });
    await expect(log.append(1, new Uint8Array([2]))).rejects.toMatchObject({ code: 'WAL_CRASHED' });
  });

  it('reports a torn record as a torn tail on the next open', () => {
    let reported = 0;
    for (let seed = 0; seed < 50; seed++) {
      const store = new MemoryLogStore(seededRandom(seed));
      const { log } = MemoryLog.open(store);
      for (let i = 0; i < 5; i++) void log.append(1, new Uint8Array([i]));
      store.crash();
      const { recovered } = MemoryLog.open(store);
      if (recovered.tornTail) {
        reported++;
        expect(recovered.tornTail.offset).toBe(recovered.entries.length);
      }
    }
    expect(reported).toBeGreaterThan(0);
  });
});
