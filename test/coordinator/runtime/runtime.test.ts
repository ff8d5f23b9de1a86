/**
 * The runtime on the in-memory log: fail-stop on a sync error, crash points at
 * their exact place relative to the WAL, recovery after a simulated crash, and
 * checkpoints that bound the log.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SendEffect } from '../../../coordinator/core/index.ts';
import type { Transport, TransportAnswer } from '../../../coordinator/adapters/http-transport.ts';
import { CoordinatorRuntime, type Answer } from '../../../coordinator/runtime/runtime.ts';
import { coordinatorCodec } from '../../../coordinator/runtime/records.ts';
import { Timers, systemClock } from '../../../shared/clock.ts';
import { CrashPoints } from '../../../shared/crash.ts';
import type { CrashPoint } from '../../../shared/crash-points.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { Metrics } from '../../../shared/metrics.ts';
import type { AppendOptions, Log, Lsn } from '../../../wal/log.ts';
import { MemoryLog, MemoryLogStore } from '../../../wal/memory-log.ts';

const participants = { p1: 'http://p1.test', p2: 'http://p2.test' };
const transfer = {
  type: 'runWhole' as const,
  branches: [
    { participant: 'p1', ops: [{ op: 'put' as const, key: 'a', value: 1 }] },
    { participant: 'p2', ops: [{ op: 'put' as const, key: 'b', value: 2 }] },
  ],
};

/** A transport that answers from a script and remembers what it was asked to send. */
class ScriptedTransport implements Transport {
  readonly sent: SendEffect[] = [];
  constructor(private readonly answer: (e: SendEffect) => TransportAnswer | undefined = defaultAnswer) {}
  deliver(e: SendEffect): Promise<TransportAnswer> {
    this.sent.push(e);
    const a = this.answer(e);
    // No answer: the call hangs, as to a participant that never replies. An answer comes on a
    // later turn of the event loop, as over a network, never before the step's other sends.
    return new Promise((resolve) => {
      if (a !== undefined) setImmediate(() => resolve(a));
    });
  }
  kinds(): string[] {
    return this.sent.map((e) => `${e.to}:${e.message.type}`);
  }
}

function defaultAnswer(e: SendEffect): TransportAnswer {
  const base = { txId: e.message.body.txId, participant: e.to };
  return e.message.type === 'prepare' ? { type: 'prepareResult', ...base, vote: 'yes' } : { type: 'decisionAcked', ...base };
}

/**
 * A MemoryLog whose durable writes the test can hold, then fail: a disk whose fdatasync takes its
 * time and ends in EIO. While a write is held, the runtime has every chance to (wrongly) run the
 * step's outward effects; a log that failed at once would hide a driver that sends before it persists.
 */
class GatedLog implements Log {
  private gate: { promise: Promise<void>; fail: (error: Error) => void } | undefined;
  /** Durable writes waiting at the gate. */
  waiting = 0;
  constructor(private readonly inner: Log) {}

  get lastLsn(): Lsn {
    return this.inner.lastLsn;
  }
  /** From now on, durable appends and syncs wait until `fail` is called. */
  hold(): { fail: (error: Error) => void } {
    let fail!: (error: Error) => void;
    const promise = new Promise<void>((_resolve, reject) => (fail = reject));
    promise.catch(() => undefined);
    this.gate = { promise, fail };
    return { fail };
  }
  append(type: number, payload: Uint8Array, options?: AppendOptions): Promise<Lsn> {
    const gate = this.gate;
    if (options?.durable !== true || gate === undefined) return this.inner.append(type, payload, options);
    return this.inner.append(type, payload).then(async (lsn) => {
      this.waiting++;
      await gate.promise;
      return lsn;
    });
  }
  async sync(): Promise<void> {
    await this.gate?.promise;
    await this.inner.sync();
  }
  checkpoint(lsn: Lsn, data: Uint8Array): Promise<void> {
    return this.inner.checkpoint(lsn, data);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Turns the event loop until `cond` holds; gives up after a generous bound (a bound on the wait, not a timing). */
async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Lets pending promise callbacks and immediates run: what an early (wrong) send would need. */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((r) => setImmediate(r));
}

const runtimes: CoordinatorRuntime[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.stop();
});

function startRuntime(
  store: MemoryLogStore,
  transport: Transport,
  extra: { crashPoints?: CrashPoints; onFatal?: (e: unknown) => void; checkpointEveryRecords?: number; wrap?: (log: Log) => Log } = {},
): CoordinatorRuntime {
  const opened = MemoryLog.open(store);
  const recovered = opened.recovered;
  const log = extra.wrap ? extra.wrap(opened.log) : opened.log;
  const runtime = new CoordinatorRuntime({
    config: { name: 'c', selfUrl: 'http://c.test', participants, replyWaitMs: 50, resendBaseMs: 10, resendMaxMs: 20 },
    log,
    recovered,
    transport,
    clock: systemClock,
    timers: new Timers(),
    crashPoints: extra.crashPoints ?? new CrashPoints(),
    logger: silentLogger(),
    metrics: new Metrics(),
    onFatal: extra.onFatal ?? (() => undefined),
    ...(extra.checkpointEveryRecords !== undefined && { checkpointEveryRecords: extra.checkpointEveryRecords }),
  });
  runtimes.push(runtime);
  return runtime;
}

const decoded = (store: MemoryLogStore) => store.records.map((r) => coordinatorCodec.decode(r.type, r.payload));
const fresh = () => new MemoryLogStore(() => 0.5);

describe('coordinator runtime', () => {
  it('commits through the driver: BOOT, DECISION, END in the log; the client hears committed', async () => {
    const store = fresh();
    const transport = new ScriptedTransport();
    const runtime = startRuntime(store, transport);
    expect(runtime.recovering).toBe(true);
    await runtime.start();
    expect(runtime.recovering).toBe(false);
    const answer = await runtime.request(transfer);
    expect(answer).toMatchObject({ status: 200, body: { txId: 'tx-1-1', outcome: 'committed', applied: true } });
    expect(decoded(store).map((r) => r.type)).toEqual(['BOOT', 'DECISION', 'END']);
    expect(transport.kinds()).toEqual(['p1:prepare', 'p2:prepare', 'p1:commit', 'p2:commit']);
  });

  it('is fail-stop: a failed sync of the COMMIT decision stops everything; nobody hears commit', async () => {
    const store = fresh();
    const transport = new ScriptedTransport();
    const fatal: unknown[] = [];
    let gated: GatedLog | undefined;
    const runtime = startRuntime(store, transport, { onFatal: (e) => fatal.push(e), wrap: (log) => (gated = new GatedLog(log)) });
    await runtime.start();
    const disk = (gated as GatedLog).hold();
    let answered: Answer | undefined;
    void runtime.request(transfer).then((a) => (answered = a));
    // The DECISION's sync is under way (both votes are in): the only durable write of the transaction.
    await until('the DECISION waits for its sync', () => gated?.waiting === 1);
    await turns(20);
    expect(decoded(store).map((r) => r.type)).toEqual(['BOOT', 'DECISION']);
    expect(transport.kinds()).toEqual(['p1:prepare', 'p2:prepare']);
    expect(answered).toBeUndefined();
    // The sync fails: fail-stop, and still nobody hears commit.
    disk.fail(Object.assign(new Error('EIO: injected'), { code: 'EIO' }));
    await until('the runtime stops', () => fatal.length > 0);
    await turns(20);
    expect(fatal).toHaveLength(1);
    expect(String(fatal[0])).toMatch(/EIO/);
    expect(transport.kinds()).toEqual(['p1:prepare', 'p2:prepare']);
    expect(answered).toBeUndefined();
    // After the failure, nothing more is accepted.
    await expect(runtime.request({ type: 'begin' })).rejects.toMatchObject({ code: 'unavailable' });
  });

  it.each<[CrashPoint, number, string[]]>([
    // [point, records in the WAL when it is reached, sends made by then]
    ['coordinator.after-prepare-sent', 1, ['p1:prepare', 'p2:prepare']],
    ['coordinator.before-decision-logged', 1, ['p1:prepare', 'p2:prepare']],
    ['coordinator.after-decision-logged', 2, ['p1:prepare', 'p2:prepare']],
    ['coordinator.after-first-commit-sent', 2, ['p1:prepare', 'p2:prepare', 'p1:commit', 'p2:commit']],
    ['coordinator.before-end-logged', 2, ['p1:prepare', 'p2:prepare', 'p1:commit', 'p2:commit']],
  ])('reaches %s with %i durable record(s) and sends %j', async (point, records, sends) => {
    const store = fresh();
    const transport = new ScriptedTransport();
    const seen: { records: number; durable: number; sends: string[] }[] = [];
    const crashPoints = new CrashPoints({
      armed: point,
      kill: () => seen.push({ records: store.records.length, durable: store.durableCount, sends: transport.kinds() }),
    });
    const runtime = startRuntime(store, transport, { crashPoints });
    await runtime.start();
    await runtime.request(transfer);
    expect(seen).toEqual([{ records, durable: records, sends }]);
  });

  it('after a crash with a decided but unacknowledged commit, a new runtime re-sends it in a new epoch', async () => {
    const store = fresh();
    // p2 never answers the commit.
    const hanging = new ScriptedTransport((e) => (e.to === 'p2' && e.message.type === 'commit' ? undefined : defaultAnswer(e)));
    const first = startRuntime(store, hanging);
    await first.start();
    expect((await first.request(transfer)).body).toMatchObject({ outcome: 'committed', applied: false });
    store.crash();

    const transport = new ScriptedTransport();
    const second = startRuntime(store, transport);
    await second.start();
    expect(transport.kinds()).toEqual(['p1:commit', 'p2:commit']);
    await until('both commits are acknowledged', () => second.coreState.txs.size === 0);
    expect(second.coreState.finished.get('tx-1-1')?.phase).toBe('committed');
    expect((await second.request({ type: 'begin' })).body).toEqual({ txId: 'tx-2-1', state: 'active' });
  });

  it('checkpoints every N records, so the log stays bounded and recovery still knows the epoch', async () => {
    const store = fresh();
    const runtime = startRuntime(store, new ScriptedTransport(), { checkpointEveryRecords: 4 });
    await runtime.start();
    for (let i = 0; i < 10; i++) await runtime.request(transfer);
    await runtime.stop();
    expect(store.checkpoint).toBeDefined();
    expect(store.records.length).toBeLessThan(4);

    const again = startRuntime(store, new ScriptedTransport());
    await again.start();
    expect((await again.request({ type: 'begin' })).body).toEqual({ txId: 'tx-2-1', state: 'active' });
  });

  it('answers outcome inquiries before recovery ("pending"), and refuses other requests', async () => {
    const runtime = startRuntime(fresh(), new ScriptedTransport());
    await expect(runtime.request({ type: 'getOutcome', txId: 'tx-1-1' })).resolves.toEqual({ status: 200, body: { outcome: 'pending' } });
    await expect(runtime.request({ type: 'begin' })).rejects.toMatchObject({ code: 'unavailable' });
  });
});
