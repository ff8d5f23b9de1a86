/**
 * Model-based property test: random sequences of append / batch / sync / crash / reopen /
 * checkpoint against the file log on the simulated disk (and against the in-memory log) agree
 * with a simple model: LSNs are +1, a clean reopen gives back everything, a crash keeps every
 * durable append and the last completed checkpoint and gives back only a prefix of what was
 * appended, and the log continues after the last recovered record.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openFileLog } from '../../wal/file-log.ts';
import type { Log, Recovered } from '../../wal/log.ts';
import { MemoryLog, MemoryLogStore } from '../../wal/memory-log.ts';
import type { SyncPolicy } from '../../wal/options.ts';
import type { CrashOptions } from '../../wal/sim-fs.ts';
import { SimFs } from '../../wal/sim-fs.ts';
import { seededRandom } from './helpers/random.ts';

type Command =
  | { readonly kind: 'append'; readonly type: number; readonly bytes: number; readonly durable: boolean }
  | { readonly kind: 'batch'; readonly durable: readonly boolean[]; readonly bytes: number }
  | { readonly kind: 'sync' }
  | { readonly kind: 'checkpoint'; readonly back: number }
  | { readonly kind: 'crash'; readonly crash: CrashOptions }
  | { readonly kind: 'reopen' };

const crashArb: fc.Arbitrary<CrashOptions> = fc.record({
  data: fc.constantFrom('lose', 'keep', 'prefix', 'scatter'),
  dir: fc.constantFrom('lose', 'keep', 'prefix'),
  sectorBytes: fc.constantFrom(512, 4096),
});

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('append'), type: fc.integer({ min: 1, max: 255 }), bytes: fc.integer({ min: 0, max: 700 }), durable: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('batch'), durable: fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }), bytes: fc.integer({ min: 0, max: 200 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'sync' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('checkpoint'), back: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash'), crash: crashArb }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

interface Subject {
  open(): Promise<{ log: Log; recovered: Recovered }>;
  crash(crash: CrashOptions): void;
}

function fileSubject(seed: number, syncPolicy: SyncPolicy): Subject {
  const random = seededRandom(seed);
  const fs = new SimFs(random);
  return {
    open: () => openFileLog('/model/wal', { fs, segmentBytes: 4096, syncPolicy, random }),
    crash: (crash) => fs.crash(crash),
  };
}

function memorySubject(seed: number, syncPolicy: SyncPolicy): Subject {
  const store = new MemoryLogStore(seededRandom(seed));
  return {
    open: async () => MemoryLog.open(store, { syncPolicy }),
    crash: () => store.crash(),
  };
}

const bytesFor = (lsn: number, length: number): Uint8Array => {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (lsn * 31 + i * 7) & 0xff;
  return bytes;
};

/** Runs `commands` against `subject` and checks every step against the model. */
async function check(subject: Subject, syncPolicy: SyncPolicy, commands: readonly Command[]): Promise<void> {
  const appended: { type: number; payload: Uint8Array }[] = [];
  let durableLsn = 0;
  let checkpoint: { lsn: number; data: Uint8Array } | undefined;

  const recover = async (exact: boolean): Promise<Log> => {
    const { log, recovered } = await subject.open();
    expect(recovered.checkpoint?.lsn).toBe(checkpoint?.lsn);
    if (checkpoint) expect(Buffer.from(recovered.checkpoint?.data ?? []).equals(Buffer.from(checkpoint.data))).toBe(true);
    const base = checkpoint?.lsn ?? 0;
    recovered.entries.forEach((entry, i) => {
      expect(entry.lsn).toBe(base + 1 + i);
      const want = appended[entry.lsn - 1];
      expect(entry.type).toBe(want?.type);
      expect(Buffer.from(entry.payload).equals(Buffer.from(want?.payload ?? []))).toBe(true);
    });
    const last = base + recovered.entries.length;
    expect(last).toBeGreaterThanOrEqual(durableLsn);
    if (exact) expect(last).toBe(appended.length);
    expect(log.lastLsn).toBe(last);
    appended.length = last;
    // Open syncs what it recovered: all of it is durable from now on.
    durableLsn = last;
    return log;
  };

  let log = await recover(true);
  for (const command of commands) {
    switch (command.kind) {
      case 'append': {
        const lsn = appended.length + 1;
        const payload = bytesFor(lsn, command.bytes);
        appended.push({ type: command.type, payload });
        expect(await log.append(command.type, payload, { durable: command.durable })).toBe(lsn);
        if (command.durable && syncPolicy !== 'none') durableLsn = lsn;
        break;
      }
      case 'batch': {
        const first = appended.length + 1;
        const promises = command.durable.map((durable, i) => {
          const payload = bytesFor(first + i, command.bytes);
          appended.push({ type: 1 + i, payload });
          return log.append(1 + i, payload, { durable });
        });
        expect(await Promise.all(promises)).toEqual(command.durable.map((_, i) => first + i));
        if (syncPolicy !== 'none') command.durable.forEach((durable, i) => durable && (durableLsn = Math.max(durableLsn, first + i)));
        break;
      }
      case 'sync':
        await log.sync();
        durableLsn = appended.length;
        break;
      case 'checkpoint': {
        const floor = Math.max(1, checkpoint?.lsn ?? 1);
        if (appended.length < floor) break;
        const lsn = Math.max(floor, appended.length - command.back);
        const data = bytesFor(lsn, 40);
        await log.checkpoint(lsn, data);
        checkpoint = { lsn, data };
        durableLsn = Math.max(durableLsn, lsn);
        break;
      }
      case 'crash':
        subject.crash(command.crash);
        log = await recover(false);
        break;
      case 'reopen':
        await log.close();
        log = await recover(true);
        break;
    }
  }
  await log.close();
  await recover(true).then((last) => last.close());
}

const runs = (numRuns: number) => ({ numRuns });

describe('model-based: random append / batch / sync / crash / reopen / checkpoint', () => {
  it('the file log on the simulated disk agrees with the model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.constantFrom<SyncPolicy>('group', 'always', 'none'), fc.array(commandArb, { minLength: 1, maxLength: 40 }), async (seed, syncPolicy, commands) => {
        await check(fileSubject(seed, syncPolicy), syncPolicy, commands);
      }),
      runs(150),
    );
  });

  it('the in-memory log agrees with the same model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.constantFrom<SyncPolicy>('group', 'always', 'none'), fc.array(commandArb, { minLength: 1, maxLength: 40 }), async (seed, syncPolicy, commands) => {
        await check(memorySubject(seed, syncPolicy), syncPolicy, commands);
      }),
      runs(300),
    );
  });
});
