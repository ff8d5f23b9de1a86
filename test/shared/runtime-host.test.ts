/**
 * The runtime host (shared/runtime.ts) around a toy core, so every path is driven on purpose:
 * recovery from the log, requests refused while recovering, stopping or poisoned, the request
 * bound, each effect kind, fail-stop on a throwing core, and checkpoints at exact LSNs.
 * The log is a MemoryLog wrapped to record what the host asks of it.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Timers } from '../../shared/clock.ts';
import type { CommonEffect, StepResult, TimerFired } from '../../shared/core.ts';
import { CrashPoints } from '../../shared/crash.ts';
import { Metrics } from '../../shared/metrics.ts';
import { RecordCodec } from '../../shared/records.ts';
import { CoreHost, type CoreBinding, type RuntimeHostOptions } from '../../shared/runtime.ts';
import type { AppendOptions, Log, Lsn } from '../../wal/log.ts';
import { MemoryLog, MemoryLogStore } from '../../wal/memory-log.ts';

type Rec = { type: 'NOTE'; n: number; txId: string };
type Ev =
  | { type: 'recover'; now: number; records: Rec[]; checkpoint?: string }
  | { type: 'note'; requestId: string; now: number; sync: boolean }
  | { type: 'silent'; requestId: string; now: number }
  | { type: 'effects'; requestId: string; now: number; effects: (CommonEffect<Rec> | Poke)[] }
  | { type: 'boom'; requestId: string; now: number };
type Poke = { kind: 'poke'; what: string };
type S = { notes: number; recovered?: { records: number[]; checkpoint?: string }; timers: string[] };

const codec = new RecordCodec<Rec>({ NOTE: 1 });

function toyStep(s: S, e: Ev | TimerFired): StepResult<S, CommonEffect<Rec> | Poke> {
  switch (e.type) {
    case 'recover':
      return { state: { ...s, recovered: { records: e.records.map((r) => r.n), ...(e.checkpoint ? { checkpoint: e.checkpoint } : {}) } }, effects: [] };
    case 'note': {
      const n = s.notes + 1;
      return { state: { ...s, notes: n }, effects: [{ kind: 'persist', record: { type: 'NOTE', n, txId: `tx-1-${n}` }, sync: e.sync }, { kind: 'reply', requestId: e.requestId, status: 200, body: { n } }] };
    }
    case 'silent':
      return { state: s, effects: [] };
    case 'effects':
      return { state: s, effects: [...e.effects, { kind: 'reply', requestId: e.requestId, status: 202, body: {} }] };
    case 'boom':
      throw new Error('core bug');
    case 'timer':
      return { state: { ...s, timers: [...s.timers, `${e.id}@${e.now}`] }, effects: [] };
  }
}

/** A MemoryLog that records appends and checkpoints, and can fail the next checkpoint. */
class SpyLog implements Log {
  appends: { type: number; durable: boolean }[] = [];
  checkpoints: { lsn: number; data: string }[] = [];
  failCheckpoint = false;
  /** While set, checkpoints are recorded but not written until `releaseCheckpoints()`. */
  holdCheckpoints = false;
  private held: (() => void)[] = [];
  constructor(private readonly inner: MemoryLog) {}
  releaseCheckpoints(): void {
    this.holdCheckpoints = false;
    for (const release of this.held.splice(0)) release();
  }
  get lastLsn(): Lsn {
    return this.inner.lastLsn;
  }
  append(type: number, payload: Uint8Array, options?: AppendOptions): Promise<Lsn> {
    this.appends.push({ type, durable: options?.durable === true });
    return this.inner.append(type, payload, options);
  }
  sync(): Promise<void> {
    return this.inner.sync();
  }
  checkpoint(lsn: Lsn, data: Uint8Array): Promise<void> {
    this.checkpoints.push({ lsn, data: new TextDecoder().decode(data) });
    if (this.failCheckpoint) {
      this.failCheckpoint = false;
      return Promise.reject(new Error('ENOSPC'));
    }
    if (this.holdCheckpoints) return new Promise<void>((resolve) => this.held.push(resolve)).then(() => this.inner.checkpoint(lsn, data));
    return this.inner.checkpoint(lsn, data);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const hosts: CoreHost<S, Ev, Poke, Rec>[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.stop();
  vi.useRealTimers();
});

function toy(options: { store?: MemoryLogStore; host?: Partial<RuntimeHostOptions>; side?: Partial<CoreBinding<S, Ev, Poke, Rec>> } = {}) {
  const store = options.store ?? new MemoryLogStore(() => 0.5);
  const opened = MemoryLog.open(store);
  const log = new SpyLog(opened.log);
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  // Debug: protocol steps and WAL records are logged at debug (one line per message).
  const logger = pino({ level: 'debug' }, sink);
  const fatal: unknown[] = [];
  const pokes: string[] = [];
  const reached: string[] = [];
  const metrics = new Metrics();
  const timers = new Timers();
  const host = new CoreHost<S, Ev, Poke, Rec>(
    {
      log,
      recovered: opened.recovered,
      clock: { now: () => 5_000 },
      timers,
      crashPoints: new CrashPoints({ armed: 'participant.after-prepare-logged', kill: (p) => void reached.push(p) }),
      logger,
      metrics,
      onFatal: (e) => void fatal.push(e),
      ...options.host,
    },
    {
      role: 'toy',
      initialState: { notes: 0, timers: [] },
      step: toyStep,
      codec,
      recoverEvent: (now, records, checkpoint) => ({ type: 'recover', now, records, ...(checkpoint ? { checkpoint: new TextDecoder().decode(checkpoint) } : {}) }),
      execute: (p) => void pokes.push(p.what),
      checkpointBytes: (s) => new TextEncoder().encode(`notes=${s.notes}`),
      warnSteps: new Set(['alarm']),
      afterStep: () => undefined,
      ...options.side,
    },
  );
  hosts.push(host);
  return { host, log, store, lines, fatal, pokes, reached, metrics, timers };
}

const note = (host: CoreHost<S, Ev, Poke, Rec>, sync = true) => host.request((requestId, now) => ({ type: 'note', requestId, now, sync }));
const settle = () => new Promise((r) => setImmediate(r));

describe('CoreHost', () => {
  it('reports how long recovery took and when it ended, on its own clock', async () => {
    // The clock reads 10 s when recovery starts and 12.5 s at every later read.
    let reads = 0;
    const t = toy({ host: { clock: { now: () => (reads++ === 0 ? 10_000 : 12_500) } } });
    await t.host.start();
    expect(await t.metrics.get('recovery_duration_seconds')).toBe(2.5);
    expect(await t.metrics.get('recovery_completed_timestamp_seconds')).toBe(12.5);
  });

  it('recovers from the checkpoint and the records after it, then takes requests; start twice is refused', async () => {
    const store = new MemoryLogStore(() => 0.5);
    const first = toy({ store });
    await first.host.start();
    for (let i = 0; i < 3; i++) await note(first.host);
    await first.host.stop();
    // The clean stop checkpointed at LSN 3 with the state then.
    expect(first.log.checkpoints).toEqual([{ lsn: 3, data: 'notes=3' }]);

    const second = toy({ store });
    expect(second.host.recovering).toBe(true);
    await expect(note(second.host)).rejects.toMatchObject({ code: 'unavailable', message: 'The toy is recovering.' });
    await second.host.start();
    expect(second.host.recovering).toBe(false);
    expect(second.host.state.recovered).toEqual({ records: [], checkpoint: 'notes=3' });
    await note(second.host);
    await expect(second.host.start()).rejects.toThrow('ToyRuntime.start() called twice');
  });

  it('hands records to the log with their sync flag, and logs each one with its LSN', async () => {
    const t = toy();
    await t.host.start();
    expect(await note(t.host, true)).toEqual({ status: 200, body: { n: 1 } });
    expect(await note(t.host, false)).toEqual({ status: 200, body: { n: 2 } });
    expect(t.log.appends).toEqual([
      { type: 1, durable: true },
      { type: 1, durable: false },
    ]);
    await settle();
    expect(t.lines.filter((l) => l.step === 'wal.NOTE').map((l) => [l.txId, l.lsn, l.forced])).toEqual([
      ['tx-1-1', 1, true],
      ['tx-1-2', 2, false],
    ]);
    // One line per record is the hot path: debug, never above.
    expect(new Set(t.lines.filter((l) => l.step === 'wal.NOTE').map((l) => l.level))).toEqual(new Set([20]));
    expect(await t.metrics.get('wal_writes_total')).toBe(2);
    expect(await t.metrics.get('wal_forced_writes_total')).toBe(1);
  });

  it('answers requests during recovery only when asked to, and bounds the requests waiting for a reply', async () => {
    const t = toy({ host: { pendingRequestsMax: 1 } });
    const early = t.host.request((requestId, now) => ({ type: 'effects', requestId, now, effects: [] }), true);
    expect(await early).toEqual({ status: 202, body: {} });
    await t.host.start();
    const waiting = t.host.request((requestId, now) => ({ type: 'silent', requestId, now }));
    await expect(note(t.host)).rejects.toMatchObject({ code: 'unavailable', message: 'Too many requests in flight (max 1).' });
    await t.host.stop();
    // Stopping answers what still waits with a 503, and refuses what comes after.
    expect(await waiting).toEqual({ status: 503, body: { error: { code: 'unavailable', message: 'The toy stopped.' } } });
    expect(t.host.stopped).toBe(true);
    await expect(note(t.host)).rejects.toMatchObject({ code: 'unavailable', message: 'The toy is stopping.' });
    await t.host.stop();
  });

  it('runs each effect kind: timers (set and cancelled), warnings, metrics, crash points, and the side effects', async () => {
    const t = toy();
    await t.host.start();
    const run = (effects: (CommonEffect<Rec> | Poke)[]) => t.host.request((requestId, now) => ({ type: 'effects', requestId, now, effects }));
    await run([
      { kind: 'setTimer', id: 'fires', ms: 1 },
      { kind: 'setTimer', id: 'cancelled', ms: 1 },
      { kind: 'cancelTimer', id: 'cancelled' },
      { kind: 'log', step: 'hello', txId: 'tx-1-1', fields: { a: 1 } },
      { kind: 'log', step: 'alarm' },
      { kind: 'crashPoint', point: 'participant.after-prepare-logged' },
      { kind: 'crashPoint', point: 'participant.before-ack' },
      { kind: 'poke', what: 'resource' },
    ]);
    expect(t.timers.size).toBe(1);
    for (let i = 0; i < 2_000 && t.host.state.timers.length === 0; i++) await new Promise((r) => setTimeout(r, 1));
    expect(t.host.state.timers).toEqual(['fires@5000']);
    expect(t.reached).toEqual(['participant.after-prepare-logged']);
    expect(t.pokes).toEqual(['resource']);
    expect(await t.metrics.get('toy_steps_total', { step: 'hello' })).toBe(1);
    expect(await t.metrics.get('toy_steps_total', { step: 'alarm' })).toBe(1);
    expect(await t.metrics.render()).toContain('toy_steps_total Protocol steps taken, by step.');
    const hello = t.lines.find((l) => l.step === 'hello');
    expect(hello).toMatchObject({ level: 20, txId: 'tx-1-1', a: 1 });
    expect(t.lines.find((l) => l.step === 'alarm')).toMatchObject({ level: 40 });
  });

  it('reports a throwing core as fatal, once, with a fatal line; the waiting request gets no answer', async () => {
    const t = toy();
    await t.host.start();
    let answered = false;
    const boom = t.host.request((requestId, now) => ({ type: 'boom', requestId, now })).then((a) => ((answered = true), a));
    expect(t.fatal.map(String)).toEqual(['Error: core bug']);
    expect(t.lines.filter((l) => l.level === 60)).toMatchObject([
      { err: { message: 'core bug' }, msg: 'fail-stop: a WAL write or a step failed; stopping so recovery can start from the WAL' },
    ]);
    await settle();
    expect(answered).toBe(false);
    // The services exit in onFatal. The host itself does not refuse later requests after a core
    // throw (only after a failed write or effect): see docs/testing.md.
    await t.host.stop();
    expect(await boom).toMatchObject({ status: 503 });
  });

  it('is fail-stop after a failed write: nothing accepted, no dispatch runs, no last checkpoint', async () => {
    const store = new MemoryLogStore(() => 0.5);
    const t = toy({ store });
    await t.host.start();
    store.failSyncs(1);
    const failed = note(t.host);
    for (let i = 0; i < 100 && t.fatal.length === 0; i++) await settle();
    expect(t.fatal).toHaveLength(1);
    await expect(note(t.host)).rejects.toMatchObject({
      code: 'unavailable',
      message: 'The toy hit a fatal error and is stopping; a restart recovers from its WAL.',
    });
    t.host.dispatch({ type: 'timer', id: 'late', now: 1 });
    expect(t.host.state.timers).toEqual([]);
    await t.host.stop();
    expect(await failed).toMatchObject({ status: 503 });
    expect(t.log.checkpoints).toEqual([]);
  });

  it('fails start when recovery cannot write', async () => {
    const store = new MemoryLogStore(() => 0.5);
    store.failSyncs(1);
    const t = toy({
      store,
      side: {
        step: (s, e) => (e.type === 'recover' ? { state: s, effects: [{ kind: 'persist', record: { type: 'NOTE', n: 0, txId: 'tx-0-0' }, sync: true }] } : toyStep(s, e)),
      },
    });
    await expect(t.host.start()).rejects.toThrow('toy recovery failed; see the fatal log line');
    expect(t.fatal).toHaveLength(1);
  });

  it('checkpoints every N records at the exact LSN with the state of that moment, also from an async snapshot', async () => {
    const t = toy({
      host: { checkpointEveryRecords: 2 },
      side: { checkpointBytes: (s) => Promise.resolve(new TextEncoder().encode(`async notes=${s.notes}`)) },
    });
    await t.host.start();
    for (let i = 0; i < 5; i++) await note(t.host);
    await settle();
    expect(t.log.checkpoints).toEqual([
      { lsn: 2, data: 'async notes=2' },
      { lsn: 4, data: 'async notes=4' },
    ]);
    expect(t.lines.filter((l) => l.step === 'checkpoint').map((l) => [l.lsn, l.bytes])).toEqual([
      [2, 13],
      [4, 13],
    ]);
    await t.host.stop();
    expect(t.log.checkpoints.at(-1)).toEqual({ lsn: 5, data: 'async notes=5' });
  });

  it('a failed checkpoint is logged, and the next one is still taken', async () => {
    const t = toy({ host: { checkpointEveryRecords: 1 } });
    await t.host.start();
    t.log.failCheckpoint = true;
    await note(t.host);
    for (let i = 0; i < 100 && !t.lines.some((l) => l.step === 'checkpoint-failed'); i++) await settle();
    expect(t.lines.find((l) => l.step === 'checkpoint-failed')).toMatchObject({ level: 50, lsn: 1 });
    await note(t.host);
    for (let i = 0; i < 100 && t.log.checkpoints.length < 2; i++) await settle();
    expect(t.log.checkpoints).toEqual([
      { lsn: 1, data: 'notes=1' },
      { lsn: 2, data: 'notes=2' },
    ]);
    expect(t.fatal).toEqual([]);
  });

  it('checkpoints on its interval only when records were written since the last one', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const t = toy({ host: { checkpointIntervalMs: 1_000 } });
    await t.host.start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(t.log.checkpoints).toEqual([]);
    await note(t.host);
    await vi.advanceTimersByTimeAsync(999);
    expect(t.log.checkpoints).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.log.checkpoints).toEqual([{ lsn: 1, data: 'notes=1' }]);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(t.log.checkpoints).toHaveLength(1);
  });

  it('recovers from records alone after a crash (no checkpoint), in order', async () => {
    const store = new MemoryLogStore(() => 0.5);
    const first = toy({ store });
    await first.host.start();
    for (let i = 0; i < 3; i++) await note(first.host);
    store.crash();
    const second = toy({ store });
    await second.host.start();
    expect(second.host.state.recovered).toEqual({ records: [1, 2, 3] });
  });

  it('a host stopped before it started writes no checkpoint over the records it never replayed', async () => {
    const store = new MemoryLogStore(() => 0.5);
    const first = toy({ store });
    await first.host.start();
    for (let i = 0; i < 2; i++) await note(first.host);
    store.crash();
    const second = toy({ store });
    await second.host.stop();
    expect(second.log.checkpoints).toEqual([]);
  });

  it('answers concurrent requests each with its own reply, and ignores a reply to nobody', async () => {
    const t = toy();
    await t.host.start();
    const answers = await Promise.all([note(t.host), note(t.host), note(t.host)]);
    expect(answers.map((a) => a.body)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    t.host.dispatch({ type: 'effects', requestId: 'nobody', now: 1, effects: [] });
    await settle();
    expect(t.fatal).toEqual([]);
    expect(await note(t.host)).toEqual({ status: 200, body: { n: 4 } });
  });

  it('an armed crash point is reached before the writes after it in its step are issued', async () => {
    const seen: number[] = [];
    const armed = toy({
      host: { crashPoints: new CrashPoints({ armed: 'participant.after-prepare-logged', kill: () => void seen.push(armedLog.appends.length) }) },
    });
    const armedLog = armed.log;
    await armed.host.start();
    await armed.host.request((requestId, now) => ({
      type: 'effects',
      requestId,
      now,
      effects: [
        { kind: 'crashPoint', point: 'participant.after-prepare-logged' },
        { kind: 'persist', record: { type: 'NOTE', n: 9, txId: 'tx-1-9' }, sync: true },
      ],
    }));
    expect(seen).toEqual([0]);
    expect(armedLog.appends).toHaveLength(1);
  });

  it("an unarmed crash point costs no ordering: the step's write is issued before its outward effects run", async () => {
    let appendsAtPoke = -1;
    const t = toy({ side: { execute: () => void (appendsAtPoke = t.log.appends.length) } });
    await t.host.start();
    await t.host.request((requestId, now) => ({
      type: 'effects',
      requestId,
      now,
      effects: [
        { kind: 'poke', what: 'send' },
        { kind: 'crashPoint', point: 'participant.before-vote-sent' },
        { kind: 'persist', record: { type: 'NOTE', n: 1, txId: 'tx-1-1' }, sync: true },
      ],
    }));
    // Armed, this step would run in exact order: the poke first, with nothing appended yet.
    expect(appendsAtPoke).toBe(1);
    expect(t.reached).toEqual([]);
  });

  it('counts records since the checkpoint it recovered from, not since the start of the log', async () => {
    const store = new MemoryLogStore(() => 0.5);
    const first = toy({ store, host: { checkpointEveryRecords: 2 } });
    await first.host.start();
    for (let i = 0; i < 2; i++) await note(first.host);
    await first.host.stop();
    expect(first.log.checkpoints).toEqual([{ lsn: 2, data: 'notes=2' }]);
    const second = toy({ store, host: { checkpointEveryRecords: 3 } });
    await second.host.start();
    for (let i = 0; i < 2; i++) await note(second.host);
    await settle();
    expect(second.log.checkpoints).toEqual([]);
    await note(second.host);
    await settle();
    expect(second.log.checkpoints).toEqual([{ lsn: 5, data: 'notes=3' }]);
  });

  it('writes one checkpoint at a time: records that reach the bound while one is written wait for the next', async () => {
    const t = toy({ host: { checkpointEveryRecords: 1 } });
    await t.host.start();
    t.log.holdCheckpoints = true;
    try {
      await note(t.host);
      for (let i = 0; i < 100 && t.log.checkpoints.length === 0; i++) await settle();
      await note(t.host);
      await note(t.host);
      await settle();
      expect(t.log.checkpoints).toEqual([{ lsn: 1, data: 'notes=1' }]);
    } finally {
      // Released on failure too, or stopping the host would wait for the held write.
      t.log.releaseCheckpoints();
    }
    for (let i = 0; i < 100 && !t.lines.some((l) => l.step === 'checkpoint'); i++) await settle();
    await note(t.host);
    for (let i = 0; i < 100 && t.log.checkpoints.length < 2; i++) await settle();
    expect(t.log.checkpoints).toEqual([
      { lsn: 1, data: 'notes=1' },
      { lsn: 4, data: 'notes=4' },
    ]);
  });

  it('stops once: a second stop does nothing, and the checkpoint interval is cleared', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let stops = 0;
    const t = toy({ side: { onStop: () => void stops++ } });
    await t.host.start();
    expect(vi.getTimerCount()).toBe(1);
    await t.host.stop();
    await t.host.stop();
    expect(stops).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('with a checkpoint after every step, takes none at LSN 0 and none twice at one LSN', async () => {
    const t = toy({ host: { checkpointEveryRecords: 0 } });
    await t.host.start();
    const nothing = () => t.host.request((requestId, now) => ({ type: 'effects', requestId, now, effects: [] }));
    await nothing();
    await settle();
    expect(t.log.checkpoints).toEqual([]);
    await note(t.host);
    for (let i = 0; i < 100 && !t.lines.some((l) => l.step === 'checkpoint'); i++) await settle();
    await nothing();
    await nothing();
    await settle();
    expect(t.log.checkpoints).toEqual([{ lsn: 1, data: 'notes=1' }]);
  });

  it("a laned effect holds up neither the queue nor the step's reply, and a checkpoint waits for it to finish", async () => {
    let release = (): void => undefined;
    let applied = 0;
    const t = toy({
      host: { checkpointEveryRecords: 1 },
      side: {
        // A resource apply: laned, slow, and part of the state a checkpoint captures.
        lanesOf: (e) => (e.kind === 'poke' ? ['resource'] : undefined),
        execute: () => new Promise<void>((resolve) => (release = resolve)).then(() => void applied++),
        checkpointBytes: (s) => new TextEncoder().encode(`notes=${s.notes} applied=${applied}`),
      },
    });
    await t.host.start();
    let reply: unknown;
    void t.host
      .request((requestId, now) => ({
        type: 'effects',
        requestId,
        now,
        effects: [{ kind: 'persist', record: { type: 'NOTE', n: 1, txId: 'tx-1-1' }, sync: true }, { kind: 'poke', what: 'apply' }],
      }))
      .then((r) => (reply = r));
    try {
      // The reply comes back while the apply is still held, and no checkpoint is taken meanwhile.
      for (let i = 0; i < 100 && reply === undefined; i++) await settle();
      expect(reply).toMatchObject({ status: 202 });
      for (let i = 0; i < 20; i++) await settle();
      expect(t.log.checkpoints).toEqual([]);
    } finally {
      release();
    }
    for (let i = 0; i < 100 && t.log.checkpoints.length === 0; i++) await settle();
    expect(t.log.checkpoints).toEqual([{ lsn: 1, data: 'notes=0 applied=1' }]);
  });
});
