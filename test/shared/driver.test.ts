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

  it("leaves no unhandled rejection when a later batch's write fails while an earlier batch's is in flight", async () => {
    // Found by the simulator (seed 985): the failed write's promise waited, with no handler, behind
    // the earlier batch; Node reports that as an unhandled rejection, which kills a service with a
    // stack trace instead of the driver's fail-stop.
    const log = controlledLog();
    const events: string[] = [];
    const fatal: unknown[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const driver = new EffectDriver<string, Eff>({
        persist: (r) => log.persist(r),
        execute: (e) => void events.push(e.kind === 'send' ? e.to : ''),
        onFatal: (e) => fatal.push(e),
      });
      const a = driver.run([{ kind: 'persist', record: 'a', sync: true }, { kind: 'send', to: 'after-a' }]);
      const b = driver.run([{ kind: 'persist', record: 'b', sync: true }, { kind: 'send', to: 'after-b' }]);
      log.pending[1]?.reject(new Error('EIO'));
      await flush();
      await flush();
      expect(unhandled).toEqual([]);
      expect(fatal).toHaveLength(1);
      log.pending[0]?.resolve();
      await Promise.all([a, b]);
      // The earlier batch was already accepted when the write failed; nothing of the failed one runs.
      expect(events).not.toContain('after-b');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
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

describe('EffectDriver lanes: slow calls off the queue', () => {
  // A participant's resource apply (issue 8): it must not hold back other transactions' replies,
  // but its own transaction's ack must wait for it, and it must not start before its record is durable.
  type LEff =
    | { kind: 'persist'; record: string; sync: boolean }
    | { kind: 'apply'; tx: string; keys: string[] }
    | { kind: 'reply'; tx: string }
    | { kind: 'send'; to: string }
    | { kind: 'crashPoint'; point: string };

  function setup(armed?: string) {
    const log = controlledLog();
    const events: string[] = [];
    const applies = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
    const fatal: unknown[] = [];
    const driver = new EffectDriver<string, LEff>({
      persist: (r) => log.persist(r).then(() => events.push(`persisted ${r}`)),
      execute: (e) => {
        switch (e.kind) {
          case 'apply':
            events.push(`apply ${e.tx} started`);
            return new Promise<void>((resolve, reject) => applies.set(e.tx, { resolve, reject })).then(() => void events.push(`apply ${e.tx} done`));
          case 'reply':
            events.push(`reply ${e.tx}`);
            return;
          case 'send':
            events.push(`send ${e.to}`);
            return;
          case 'crashPoint':
            events.push(`crash point ${e.point}`);
            return;
          default:
            return;
        }
      },
      onFatal: (e) => fatal.push(e),
      isArmed: (p) => p === armed,
      lanesOf: (e) => (e.kind === 'apply' ? [`tx:${e.tx}`, ...e.keys.map((k) => `key:${k}`)] : e.kind === 'reply' ? [`tx:${e.tx}`] : undefined),
    });
    return { log, events, applies, fatal, driver };
  }
  /** Lets every ready continuation run, without awaiting a batch that a blocked queue would never finish. */
  const settle = async () => {
    for (let i = 0; i < 20; i++) await flush();
  };

  it("a slow apply of tx A does not delay tx B's reply; A's reply waits for A's apply", async () => {
    const { log, events, applies, driver } = setup();
    void driver.run([{ kind: 'persist', record: 'COMMITTED A', sync: true }, { kind: 'apply', tx: 'A', keys: ['a'] }, { kind: 'reply', tx: 'A' }]);
    void driver.run([{ kind: 'persist', record: 'PREPARED B', sync: true }, { kind: 'reply', tx: 'B' }]);
    await flush();
    // Nothing outward before the records are durable: A's apply included.
    expect(events).toEqual([]);
    for (const p of log.pending) p.resolve();
    await settle();
    expect(events).toEqual(['persisted COMMITTED A', 'persisted PREPARED B', 'apply A started', 'reply B']);
    expect(driver.lanedInFlight).toBe(2);
    applies.get('A')?.resolve();
    await driver.idle();
    expect(events.slice(4)).toEqual(['apply A done', 'reply A']);
    expect(driver.lanedInFlight).toBe(0);
  });

  it("the next holder's call on a key waits for the previous holder's apply; other keys do not", async () => {
    const { events, applies, driver } = setup();
    void driver.run([{ kind: 'apply', tx: 'A', keys: ['k'] }, { kind: 'reply', tx: 'A' }]);
    void driver.run([{ kind: 'apply', tx: 'C', keys: ['k', 'm'] }]);
    void driver.run([{ kind: 'apply', tx: 'D', keys: ['z'] }]);
    await settle();
    expect(events).toEqual(['apply A started', 'apply D started']);
    applies.get('A')?.resolve();
    await settle();
    expect(events).toEqual(['apply A started', 'apply D started', 'apply A done', 'reply A', 'apply C started']);
    applies.get('C')?.resolve();
    applies.get('D')?.resolve();
    await driver.idle();
  });

  it('a failed apply is fail-stop: onFatal once, and nothing laned behind it or queued after it runs', async () => {
    const { events, applies, fatal, driver } = setup();
    void driver.run([{ kind: 'apply', tx: 'A', keys: ['k'] }, { kind: 'reply', tx: 'A' }]);
    await settle();
    applies.get('A')?.reject(new Error('the database went away'));
    await driver.idle();
    await driver.run([{ kind: 'send', to: 'later' }]);
    expect(events).toEqual(['apply A started']);
    expect(fatal).toHaveLength(1);
    expect(driver.poisoned).toBe(true);
  });

  it('idle() waits for laned calls in flight, so a stop drains them', async () => {
    const { applies, driver } = setup();
    const ran = driver.run([{ kind: 'apply', tx: 'A', keys: [] }]);
    await settle();
    // The queue itself has moved on; only idle() still waits for the call.
    let batchDone = false;
    void ran.then(() => (batchDone = true));
    await settle();
    expect(batchDone).toBe(true);
    let idle = false;
    const waiting = driver.idle().then(() => (idle = true));
    await settle();
    expect(idle).toBe(false);
    applies.get('A')?.resolve();
    await waiting;
    expect(idle).toBe(true);
  });

  it('under an armed crash point a laned call is awaited in place, so the point sees exactly what precedes it', async () => {
    const { log, events, applies, driver } = setup('after-apply');
    const done = driver.run([
      { kind: 'persist', record: 'COMMITTED A', sync: true },
      { kind: 'apply', tx: 'A', keys: [] },
      { kind: 'crashPoint', point: 'after-apply' },
      { kind: 'reply', tx: 'A' },
    ]);
    await flush();
    log.pending[0]?.resolve();
    await flush();
    expect(events).toEqual(['persisted COMMITTED A', 'apply A started']);
    applies.get('A')?.resolve();
    await done;
    expect(events).toEqual(['persisted COMMITTED A', 'apply A started', 'apply A done', 'crash point after-apply', 'reply A']);
  });

  it('a laned call that returns at once (a synchronous reply) is no failure: nothing is reported', async () => {
    const { events, fatal, driver } = setup();
    await driver.run([{ kind: 'reply', tx: 'A' }, { kind: 'send', to: 'p1' }]);
    await driver.idle();
    expect(events).toEqual(['reply A', 'send p1']);
    expect(fatal).toEqual([]);
    expect(driver.poisoned).toBe(false);
    expect(driver.lanedInFlight).toBe(0);
  });

  it('a laned call that throws at once is fail-stop like one that rejects: reported once, nothing after it runs', async () => {
    const fatal: unknown[] = [];
    const events: string[] = [];
    const driver = new EffectDriver<string, { kind: 'apply' | 'send'; to: string }>({
      persist: () => Promise.resolve(),
      execute: (e) => {
        if (e.kind === 'apply') throw new Error(`apply ${e.to} threw`);
        events.push(`send ${e.to}`);
      },
      onFatal: (e) => fatal.push(e),
      lanesOf: (e) => (e.kind === 'apply' ? [`key:${e.to}`] : undefined),
    });
    await driver.run([{ kind: 'apply', to: 'k' }, { kind: 'send', to: 'p1' }]);
    await driver.run([{ kind: 'send', to: 'later' }]);
    await driver.idle();
    expect(fatal.map(String)).toEqual(['Error: apply k threw']);
    expect(events).toEqual([]);
    expect(driver.poisoned).toBe(true);
  });

  it('a lane stays ordered past its first call: a third call waits for the second, which started when the first ended', async () => {
    const { events, applies, driver } = setup();
    void driver.run([{ kind: 'apply', tx: 'A', keys: ['k'] }]);
    void driver.run([{ kind: 'apply', tx: 'B', keys: ['k'] }]);
    await settle();
    applies.get('A')?.resolve();
    await settle();
    expect(events).toEqual(['apply A started', 'apply A done', 'apply B started']);
    // A's end must not clear the lane B now holds: C, on the same key, waits for B.
    void driver.run([{ kind: 'apply', tx: 'C', keys: ['k'] }]);
    await settle();
    expect(events).toEqual(['apply A started', 'apply A done', 'apply B started']);
    applies.get('B')?.resolve();
    await settle();
    expect(events).toEqual(['apply A started', 'apply A done', 'apply B started', 'apply B done', 'apply C started']);
    applies.get('C')?.resolve();
    await driver.idle();
    expect(driver.lanedInFlight).toBe(0);
  });
});
