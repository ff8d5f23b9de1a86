/**
 * The effect driver's less travelled paths, each with the exact order of what ran: the sync
 * flag handed to the log as the effect says, a write that throws instead of rejecting, an
 * effect that fails, crash points armed by default, strict batches that keep later ones
 * strict, and the pending count.
 */
import { describe, expect, it } from 'vitest';
import { EffectDriver } from '../../shared/driver.ts';

type Eff = { kind: 'persist'; record: string; sync: boolean } | { kind: 'send'; to: string } | { kind: 'crashPoint'; point: string };

function controlled() {
  const pending: { record: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  const events: string[] = [];
  const fatal: unknown[] = [];
  const persist = (record: string, sync: boolean) => {
    events.push(`issued ${record}${sync ? ' sync' : ''}`);
    return new Promise<void>((resolve, reject) => pending.push({ record, resolve, reject })).then(() => void events.push(`persisted ${record}`));
  };
  const execute = (e: Eff) => void events.push(e.kind === 'send' ? `send ${e.to}` : e.kind === 'crashPoint' ? `point ${e.point}` : 'persist?');
  return { pending, events, fatal, persist, execute, onFatal: (e: unknown) => void fatal.push(e) };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('EffectDriver, edges', () => {
  it('hands each write its own sync flag', async () => {
    const c = controlled();
    const driver = new EffectDriver<string, Eff>(c);
    void driver.run([
      { kind: 'persist', record: 'a', sync: false },
      { kind: 'persist', record: 'b', sync: true },
    ]);
    expect(c.events).toEqual(['issued a', 'issued b sync']);
    for (const p of c.pending) p.resolve();
    await driver.idle();
    expect(c.events).toEqual(['issued a', 'issued b sync', 'persisted a', 'persisted b']);
  });

  it('a write that throws at once is fail-stop like one that rejects', async () => {
    const c = controlled();
    const driver = new EffectDriver<string, Eff>({
      ...c,
      persist: () => {
        throw new Error('EBADF');
      },
    });
    await driver.run([{ kind: 'persist', record: 'a', sync: true }, { kind: 'send', to: 'p1' }]);
    expect(c.events).toEqual([]);
    expect(c.fatal.map(String)).toEqual(['Error: EBADF']);
    expect(driver.poisoned).toBe(true);
    // Nothing runs any more, and run() still resolves.
    await driver.run([{ kind: 'send', to: 'later' }]);
    expect(c.events).toEqual([]);
  });

  it('an effect that fails stops the batch and every later one, and is reported once', async () => {
    const c = controlled();
    const driver = new EffectDriver<string, Eff>({
      ...c,
      execute: (e) => {
        if (e.kind === 'send' && e.to === 'bad') throw new Error('boom');
        c.execute(e);
      },
    });
    const first = driver.run([{ kind: 'send', to: 'p1' }, { kind: 'send', to: 'bad' }, { kind: 'send', to: 'p2' }]);
    const second = driver.run([{ kind: 'send', to: 'p3' }]);
    await Promise.all([first, second]);
    expect(c.events).toEqual(['send p1']);
    expect(c.fatal.map(String)).toEqual(['Error: boom']);
    expect(driver.poisoned).toBe(true);
  });

  it('without isArmed every crash point is armed: the batch runs in strict order', async () => {
    const c = controlled();
    const driver = new EffectDriver<string, Eff>(c);
    const done = driver.run([
      { kind: 'send', to: 'early' },
      { kind: 'crashPoint', point: 'x' },
      { kind: 'persist', record: 'a', sync: true },
      { kind: 'send', to: 'late' },
    ]);
    await turn();
    // Strict: the send before the point ran before it, the write after it waits for it.
    expect(c.events).toEqual(['send early', 'point x', 'issued a sync']);
    c.pending[0]?.resolve();
    await done;
    expect(c.events).toEqual(['send early', 'point x', 'issued a sync', 'persisted a', 'send late']);
  });

  it('a batch queued behind a strict one runs strictly too: its write waits for the strict batch', async () => {
    const c = controlled();
    const driver = new EffectDriver<string, Eff>({ ...c, isArmed: (p) => p === 'armed' });
    const strict = driver.run([{ kind: 'persist', record: 'a', sync: true }, { kind: 'crashPoint', point: 'armed' }]);
    const next = driver.run([{ kind: 'persist', record: 'b', sync: true }, { kind: 'send', to: 'p1' }]);
    expect(driver.pending).toBe(2);
    await turn();
    // The fast path would have issued b at once; behind a strict batch it may not.
    expect(c.events).toEqual(['issued a sync']);
    c.pending[0]?.resolve();
    await strict;
    await turn();
    expect(c.events).toEqual(['issued a sync', 'persisted a', 'point armed', 'issued b sync']);
    c.pending[1]?.resolve();
    await next;
    expect(c.events).toEqual(['issued a sync', 'persisted a', 'point armed', 'issued b sync', 'persisted b', 'send p1']);
    expect(driver.pending).toBe(0);
    // With nothing strict left, the fast path is back: two batches' writes are issued at once.
    void driver.run([{ kind: 'persist', record: 'c', sync: false }]);
    void driver.run([{ kind: 'persist', record: 'd', sync: false }]);
    expect(c.pending.map((p) => p.record)).toEqual(['a', 'b', 'c', 'd']);
    for (const p of c.pending.slice(2)) p.resolve();
    await driver.idle();
  });

  it('a failed write in a strict batch stops it before its crash point and its effects', async () => {
    const c = controlled();
    const driver = new EffectDriver<string, Eff>(c);
    const done = driver.run([{ kind: 'persist', record: 'a', sync: true }, { kind: 'crashPoint', point: 'x' }, { kind: 'send', to: 'p1' }]);
    await turn();
    expect(c.pending).toHaveLength(1);
    c.pending[0]?.reject(new Error('EIO'));
    await done;
    expect(c.events).toEqual(['issued a sync']);
    expect(c.fatal.map(String)).toEqual(['Error: EIO']);
    expect(driver.pending).toBe(0);
  });

  it('counts batches in flight, and idle() waits for all of them', async () => {
    const c = controlled();
    const driver = new EffectDriver<string, Eff>(c);
    expect(driver.pending).toBe(0);
    void driver.run([{ kind: 'persist', record: 'a', sync: true }]);
    void driver.run([{ kind: 'send', to: 'p1' }]);
    expect(driver.pending).toBe(2);
    let idle = false;
    const waiting = driver.idle().then(() => (idle = true));
    await turn();
    expect(idle).toBe(false);
    c.pending[0]?.resolve();
    await waiting;
    expect(driver.pending).toBe(0);
    expect(c.events).toEqual(['issued a sync', 'persisted a', 'send p1']);
  });

  it('once poisoned, a new batch issues no write at all', async () => {
    const c = controlled();
    const driver = new EffectDriver<string, Eff>(c);
    const failing = driver.run([{ kind: 'persist', record: 'a', sync: true }]);
    c.pending[0]?.reject(new Error('EIO'));
    await failing;
    await driver.run([{ kind: 'persist', record: 'b', sync: true }, { kind: 'send', to: 'p1' }]);
    expect(c.events).toEqual(['issued a sync']);
    expect(c.pending).toHaveLength(1);
  });

  it('an effect that fails in a strict batch is fail-stop too, and reported', async () => {
    const c = controlled();
    const driver = new EffectDriver<string, Eff>({
      ...c,
      execute: (e) => {
        if (e.kind === 'crashPoint') throw new Error('crash point handler failed');
        c.execute(e);
      },
    });
    await driver.run([{ kind: 'send', to: 'p0' }, { kind: 'crashPoint', point: 'x' }, { kind: 'send', to: 'p1' }]);
    expect(c.events).toEqual(['send p0']);
    expect(c.fatal.map(String)).toEqual(['Error: crash point handler failed']);
    expect(driver.poisoned).toBe(true);
  });

  it("a later batch's failed write stops an earlier batch's sends that have not run yet", async () => {
    const c = controlled();
    let releaseP1 = () => {};
    const driver = new EffectDriver<string, Eff>({
      ...c,
      execute: (e) => {
        c.execute(e);
        // p1's send takes a while: the later batch's write fails meanwhile.
        if (e.kind === 'send' && e.to === 'p1') return new Promise<void>((resolve) => (releaseP1 = resolve));
      },
    });
    const first = driver.run([{ kind: 'persist', record: 'a', sync: true }, { kind: 'send', to: 'p1' }, { kind: 'send', to: 'p2' }]);
    const second = driver.run([{ kind: 'persist', record: 'b', sync: true }, { kind: 'send', to: 'p3' }]);
    c.pending[0]?.resolve();
    for (let i = 0; i < 10 && !c.events.includes('send p1'); i++) await turn();
    expect(c.events).toEqual(['issued a sync', 'issued b sync', 'persisted a', 'send p1']);
    c.pending[1]?.reject(new Error('EIO'));
    for (let i = 0; i < 10 && c.fatal.length === 0; i++) await turn();
    releaseP1();
    await Promise.all([first, second]);
    expect(c.events).toEqual(['issued a sync', 'issued b sync', 'persisted a', 'send p1']);
    expect(c.fatal.map(String)).toEqual(['Error: EIO']);
  });

  it('a laned effect that fails in a strict batch stops the effects after it', async () => {
    const c = controlled();
    const driver = new EffectDriver<string, Eff>({
      ...c,
      execute: (e) => {
        c.execute(e);
        if (e.kind === 'send' && e.to === 'laned') return Promise.reject(new Error('resource failed'));
      },
      lanesOf: (e) => (e.kind === 'send' && e.to === 'laned' ? ['key a'] : undefined),
    });
    await driver.run([{ kind: 'crashPoint', point: 'x' }, { kind: 'send', to: 'laned' }, { kind: 'send', to: 'p2' }]);
    expect(c.events).toEqual(['point x', 'send laned']);
    expect(c.fatal.map(String)).toEqual(['Error: resource failed']);
  });

  it('a laned effect that fails in a strict batch stops the crash point after it too', async () => {
    const c = controlled();
    const driver = new EffectDriver<string, Eff>({
      ...c,
      execute: (e) => {
        c.execute(e);
        if (e.kind === 'send' && e.to === 'laned') return Promise.reject(new Error('resource failed'));
      },
      lanesOf: (e) => (e.kind === 'send' && e.to === 'laned' ? ['key a'] : undefined),
    });
    await driver.run([{ kind: 'send', to: 'laned' }, { kind: 'crashPoint', point: 'after' }, { kind: 'send', to: 'p2' }]);
    expect(c.events).toEqual(['send laned']);
    expect(c.fatal.map(String)).toEqual(['Error: resource failed']);
  });

  it('a laned effect that waited for its lane and then fails is fail-stop, and reported', async () => {
    const c = controlled();
    let releaseFirst = (): void => undefined;
    const driver = new EffectDriver<string, Eff>({
      ...c,
      execute: (e) => {
        c.execute(e);
        if (e.kind !== 'send') return;
        if (e.to === 'first') return new Promise<void>((resolve) => (releaseFirst = resolve));
        if (e.to === 'second') return Promise.reject(new Error('resource failed'));
      },
      lanesOf: (e) => (e.kind === 'send' && e.to !== 'p2' ? ['key a'] : undefined),
    });
    await driver.run([{ kind: 'send', to: 'first' }]);
    await driver.run([{ kind: 'send', to: 'second' }]);
    expect(c.events).toEqual(['send first']);
    releaseFirst();
    await driver.idle();
    expect(c.events).toEqual(['send first', 'send second']);
    expect(c.fatal.map(String)).toEqual(['Error: resource failed']);
    expect(driver.poisoned).toBe(true);
  });
});
