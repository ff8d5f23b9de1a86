import { describe, expect, it } from 'vitest';
import { EffectDriver } from '../../shared/driver.ts';

type Eff = { kind: 'persist'; record: string; sync: boolean } | { kind: 'send'; to: string };

/** A log whose writes complete only when the test says so. */
function controlledLog() {
  const pending: { record: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  const persist = (record: string) =>
    new Promise<void>((resolve, reject) => {
      pending.push({ record, resolve, reject });
    });
  return { pending, persist };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('EffectDriver', () => {
  it('runs no send of a batch before that batch is persisted', async () => {
    const log = controlledLog();
    const events: string[] = [];
    const driver = new EffectDriver<string, Eff>({
      persist: (r) => log.persist(r).then(() => events.push(`persisted ${r}`)),
      execute: (e) => void events.push(`send ${e.kind === 'send' ? e.to : ''}`),
      onFatal: () => events.push('fatal'),
    });
    const done = driver.run([
      { kind: 'send', to: 'p1' },
      { kind: 'persist', record: 'DECISION', sync: true },
    ]);
    await flush();
    expect(events).toEqual([]);
    log.pending[0]?.resolve();
    await done;
    expect(events).toEqual(['persisted DECISION', 'send p1']);
  });

  it('holds a later batch without persists until every earlier persist completed', async () => {
    const log = controlledLog();
    const events: string[] = [];
    const driver = new EffectDriver<string, Eff>({
      persist: (r) => log.persist(r),
      execute: (e) => void events.push(e.kind === 'send' ? e.to : ''),
      onFatal: () => events.push('fatal'),
    });
    const first = driver.run([{ kind: 'persist', record: 'DECISION', sync: true }, { kind: 'send', to: 'p1' }]);
    // A reply that only reveals the decision: it must wait for the decision's record.
    const second = driver.run([{ kind: 'send', to: 'client' }]);
    await flush();
    expect(events).toEqual([]);
    log.pending[0]?.resolve();
    await Promise.all([first, second]);
    expect(events).toEqual(['p1', 'client']);
  });

  it('issues the appends of consecutive batches at once, so one flush can cover them', async () => {
    const log = controlledLog();
    const driver = new EffectDriver<string, Eff>({ persist: (r) => log.persist(r), execute: () => undefined, onFatal: () => undefined });
    void driver.run([{ kind: 'persist', record: 'a', sync: true }]);
    void driver.run([{ kind: 'persist', record: 'b', sync: true }]);
    expect(log.pending.map((p) => p.record)).toEqual(['a', 'b']);
    for (const p of log.pending) p.resolve();
    await driver.idle();
  });

  it('is fail-stop: after a failed persist no effect of that or any later batch runs', async () => {
    const log = controlledLog();
    const events: string[] = [];
    const fatal: unknown[] = [];
    const driver = new EffectDriver<string, Eff>({
      persist: (r) => log.persist(r),
      execute: (e) => void events.push(e.kind === 'send' ? e.to : ''),
      onFatal: (e) => fatal.push(e),
    });
    const a = driver.run([{ kind: 'persist', record: 'a', sync: true }, { kind: 'send', to: 'after-a' }]);
    const b = driver.run([{ kind: 'persist', record: 'b', sync: true }, { kind: 'send', to: 'after-b' }]);
    log.pending[0]?.reject(new Error('EIO'));
    log.pending[1]?.resolve();
    await Promise.all([a, b]);
    await driver.run([{ kind: 'send', to: 'later' }]);
    expect(events).toEqual([]);
    expect(fatal).toHaveLength(1);
    expect(driver.poisoned).toBe(true);
  });
});

describe('EffectDriver crash points', () => {
  type CEff = Eff | { kind: 'crashPoint'; point: string };

  function setup(armed: string | undefined) {
    const log = controlledLog();
    const events: string[] = [];
    const driver = new EffectDriver<string, CEff>({
      persist: (r, sync) => {
        events.push(`issued ${r}`);
        return log.persist(r).then(() => events.push(`persisted ${r}${sync ? ' (synced)' : ''}`));
      },
      execute: (e) => void events.push(e.kind === 'crashPoint' ? `crash point ${e.point}` : `send ${e.kind === 'send' ? e.to : ''}`),
      onFatal: () => events.push('fatal'),
      isArmed: (p) => p === armed,
    });
    return { log, events, driver };
  }

  it('an armed point before a record is reached before that record is written', async () => {
    const { log, events, driver } = setup('before');
    const done = driver.run([
      { kind: 'crashPoint', point: 'before' },
      { kind: 'persist', record: 'COMMITTED', sync: true },
      { kind: 'crashPoint', point: 'after' },
      { kind: 'send', to: 'ack' },
    ]);
    await flush();
    expect(events).toEqual(['crash point before', 'issued COMMITTED']);
    log.pending[0]?.resolve();
    await done;
    expect(events).toEqual(['crash point before', 'issued COMMITTED', 'persisted COMMITTED (synced)', 'crash point after', 'send ack']);
  });

  it("an armed point holds back later batches' writes until it has been passed", async () => {
    const { log, events, driver } = setup('after-prepare-sent');
    const first = driver.run([{ kind: 'crashPoint', point: 'after-prepare-sent' }]);
    const second = driver.run([{ kind: 'persist', record: 'DECISION', sync: true }, { kind: 'send', to: 'p1' }]);
    // The decision must not be written before the crash point that says nothing is decided.
    expect(log.pending).toHaveLength(0);
    await first;
    await flush();
    expect(events).toEqual(['crash point after-prepare-sent', 'issued DECISION']);
    log.pending[0]?.resolve();
    await second;
    expect(events).toEqual(['crash point after-prepare-sent', 'issued DECISION', 'persisted DECISION (synced)', 'send p1']);
  });

  it('unarmed points keep the fast path: appends of the next batch are issued at once', async () => {
    const { log, driver } = setup(undefined);
    void driver.run([{ kind: 'crashPoint', point: 'x' }, { kind: 'persist', record: 'a', sync: true }]);
    void driver.run([{ kind: 'persist', record: 'b', sync: true }]);
    expect(log.pending.map((p) => p.record)).toEqual(['a', 'b']);
    for (const p of log.pending) p.resolve();
    await driver.idle();
  });
});
