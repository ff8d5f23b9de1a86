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

const runtimes: CoordinatorRuntime[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.stop();
});

function startRuntime(
  store: MemoryLogStore,
  transport: Transport,
  extra: { crashPoints?: CrashPoints; onFatal?: (e: unknown) => void; checkpointEveryRecords?: number } = {},
): CoordinatorRuntime {
  const { log, recovered } = MemoryLog.open(store);
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
    const runtime = startRuntime(store, transport, { onFatal: (e) => fatal.push(e) });
    await runtime.start();
    store.failSyncs(1);
    let answered: Answer | undefined;
    void runtime.request(transfer).then((a) => (answered = a));
    for (let i = 0; i < 50 && fatal.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(fatal).toHaveLength(1);
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
    for (let i = 0; i < 50 && second.coreState.txs.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
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
