/**
 * The runtime around the core: it must keep the driver's ordering (a vote is
 * durable before it is answered), stop dead on a failed write, and take
 * checkpoints that, with the records after them, rebuild exactly the state.
 */
import { describe, expect, it } from 'vitest';
import { Timers, type Clock } from '../../../shared/clock.ts';
import { CrashPoints } from '../../../shared/crash.ts';
import { createHttpClient } from '../../../shared/http/client.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { Metrics } from '../../../shared/metrics.ts';
import { asTxId, type Op, type TxId } from '../../../shared/types.ts';
import type { AppendOptions, Checkpoint, Log, LogEntry, Lsn, Recovered } from '../../../wal/log.ts';
import { KvStore } from '../../../participant/resources/kv.ts';
import type { Resource } from '../../../participant/resources/resource.ts';
import { ParticipantRuntime, type Answer } from '../../../participant/runtime/runtime.ts';
import { participantCodec } from '../../../participant/runtime/records.ts';

/**
 * An in-memory Log that honours `durable` as a disk would: an append resolves at once into the
 * "page cache", and becomes durable only when it asked to be (or a sync covers it). `hold` keeps
 * durable appends and syncs from finishing, so a test can see what the runtime does before its
 * records are durable; `durableLsn` is how far a crash now would keep.
 */
class TestLog implements Log {
  entries: LogEntry[] = [];
  saved: Checkpoint | undefined;
  lastLsn: Lsn = 0;
  durableLsn: Lsn = 0;
  hold: Promise<void> | undefined;
  failFromLsn = Infinity;

  append(type: number, payload: Uint8Array, options?: AppendOptions): Promise<Lsn> {
    const lsn = ++this.lastLsn;
    if (lsn >= this.failFromLsn) return Promise.reject(new Error('EIO: the disk went away'));
    this.entries.push({ lsn, type, payload });
    if (options?.durable !== true) return Promise.resolve(lsn);
    return this.flushed(lsn).then(() => lsn);
  }
  async sync(): Promise<void> {
    await this.flushed(this.lastLsn);
  }
  private async flushed(upTo: Lsn): Promise<void> {
    await this.hold;
    this.durableLsn = Math.max(this.durableLsn, upTo);
  }
  async checkpoint(lsn: Lsn, data: Uint8Array): Promise<void> {
    this.saved = { lsn, data };
    this.entries = this.entries.filter((e) => e.lsn > lsn);
  }
  async close(): Promise<void> {}
  /** What a reopen after a crash would find. */
  recovered(): Recovered {
    return this.saved === undefined ? { entries: [...this.entries] } : { checkpoint: this.saved, entries: [...this.entries] };
  }
}

const clock: Clock = { now: () => 1_000 };

function runtime<R extends Resource<Op> = KvStore>(log: TestLog, kv: R = new KvStore() as unknown as R, extra: { checkpointEveryRecords?: number } = {}) {
  const fatal: unknown[] = [];
  const http = createHttpClient({ timeoutMs: 200 });
  const rt = new ParticipantRuntime({
    name: 't',
    log,
    recovered: log.recovered(),
    resource: kv,
    http,
    clock,
    timers: new Timers(),
    crashPoints: new CrashPoints(),
    logger: silentLogger(),
    metrics: new Metrics(),
    coordinatorUrl: 'http://127.0.0.1:9',
    onFatal: (e) => fatal.push(e),
    core: { decisionWaitMs: 600_000 },
    ...extra,
  });
  return { rt, kv, fatal, close: async () => { await rt.stop(); http.close(); } };
}

/** The store with its commit replaced, e.g. by one that waits for the test: a slow database round trip. */
function withCommit(kv: KvStore, commit: (txId: TxId, data: unknown) => void | Promise<void>): Resource<Op> {
  return {
    opsSchema: kv.opsSchema,
    locking: 'core',
    keysOf: (ops) => kv.keysOf(ops),
    prepare: (txId, ops) => kv.prepare(txId, ops),
    commit,
    abort: () => kv.abort(),
    snapshot: () => kv.snapshot(),
    restore: (snapshot) => kv.restore(snapshot),
  };
}

/**
 * The answer, if it comes once the event loop has run a bounded number of turns (no timer involved);
 * undefined if it is still held back, e.g. behind another transaction's resource call.
 */
async function answerSoon(pending: Promise<Answer>, turnsMax = 200): Promise<Answer | undefined> {
  let answer: Answer | undefined;
  void pending.then((a) => (answer = a));
  for (let i = 0; i < turnsMax && answer === undefined; i++) await new Promise((r) => setImmediate(r));
  return answer;
}

const decide = (rt: ParticipantRuntime, type: 'commit' | 'abort', txId: string): Promise<Answer> =>
  rt.request((requestId, now) => ({ type, requestId, now, txId: asTxId(txId) }));

const prepare = (rt: ParticipantRuntime, txId: string, ops: unknown[], onePhase = false): Promise<Answer> =>
  rt.request((requestId, now) => ({ type: 'prepare', requestId, now, txId: asTxId(txId), coordinator: 'http://127.0.0.1:9', participants: [], ops, onePhase }));

describe('the participant runtime', () => {
  it('answers a YES only after PREPARED is durable', async () => {
    const log = new TestLog();
    const { rt, close } = runtime(log);
    await rt.start();
    let release!: () => void;
    log.hold = new Promise((r) => (release = r));
    let answered: Answer | undefined;
    let durableWhenAnswered: Lsn | undefined;
    const pending = prepare(rt, 'tx-1-1', [{ op: 'put', key: 'a', value: 1 }]).then((a) => {
      durableWhenAnswered = log.durableLsn;
      return (answered = a);
    });
    // Give the resource and the driver every chance to (wrongly) answer early. An unforced PREPARED
    // would resolve at once (the log holds back durable writes only) and the vote would go out here.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(log.entries.map((e) => participantCodec.decode(e.type, e.payload).type)).toEqual(['PREPARED']);
    expect(log.durableLsn).toBe(0);
    expect(answered).toBeUndefined();
    release();
    await pending;
    expect(answered).toEqual({ status: 200, body: { vote: 'yes' } });
    // The vote went out with the PREPARED record (LSN 1) already durable.
    expect(durableWhenAnswered).toBeGreaterThanOrEqual(1);
    await close();
  });

  it('is fail-stop: a failed write answers nothing, calls onFatal once, and refuses what follows', async () => {
    const log = new TestLog();
    log.failFromLsn = 1;
    const { rt, fatal, close } = runtime(log);
    await rt.start();
    let answered: Answer | undefined;
    const pending = prepare(rt, 'tx-1-1', [{ op: 'put', key: 'a', value: 1 }]).then((a) => (answered = a));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(fatal).toHaveLength(1);
    expect(String(fatal[0])).toMatch(/EIO/);
    expect(answered).toBeUndefined();
    await expect(prepare(rt, 'tx-1-2', [])).rejects.toMatchObject({ code: 'unavailable' });
    await close();
    // Stopping releases the waiting request with a 503, never a vote.
    expect((await pending, answered)).toMatchObject({ status: 503 });
  });

  it('checkpoints in step order: the checkpoint plus the records after it rebuild exactly the same store', async () => {
    const log = new TestLog();
    const { rt, kv, close } = runtime(log, new KvStore(), { checkpointEveryRecords: 3 });
    await rt.start();
    // Concurrent one-phase adds on a few keys, so checkpoints land between steps of live transactions.
    const all: Promise<Answer>[] = [];
    for (let i = 0; i < 40; i++) all.push(prepare(rt, `tx-1-${i}`, [{ op: 'add', key: `k${i % 3}`, amount: i }], true));
    const answers = await Promise.all(all);
    expect(answers.every((a) => (a.body as { state?: string }).state === 'committed')).toBe(true);
    const sum = (r: number) => Array.from({ length: 40 }, (_, i) => i).filter((i) => i % 3 === r).reduce((a, b) => a + b, 0);
    const expected = kv.entries();
    expect(expected).toEqual({ k0: sum(0), k1: sum(1), k2: sum(2) });
    // Several checkpoints were taken while transactions were in flight.
    expect(log.saved?.lsn).toBeGreaterThanOrEqual(3);

    // A crash now: reopen from what the log holds, without the clean-stop checkpoint.
    const crashed = log.recovered();
    const reopened = new TestLog();
    reopened.saved = crashed.checkpoint;
    reopened.entries = [...crashed.entries];
    reopened.lastLsn = log.lastLsn;
    const again = runtime(reopened);
    await again.rt.start();
    expect(again.kv.entries()).toEqual(expected);
    await again.close();
    await close();
  });

  it("a slow resource commit of tx A holds back neither tx B's vote nor its commit; A's ack waits for A's apply", async () => {
    // Issue 8: resource I/O ran on the driver's single queue, so one database round trip held back every reply.
    const gate = new Map<string, () => void>();
    const kv = new KvStore();
    const slow = withCommit(kv, (txId, data) =>
      txId === 'tx-1-1' ? new Promise<void>((resolve) => gate.set(txId, resolve)).then(() => kv.commit(txId, data)) : kv.commit(txId, data),
    );
    const { rt, close } = runtime(new TestLog(), slow);
    await rt.start();
    expect(await prepare(rt, 'tx-1-1', [{ op: 'put', key: 'a', value: 1 }])).toEqual({ status: 200, body: { vote: 'yes' } });
    let ackA: Answer | undefined;
    void decide(rt, 'commit', 'tx-1-1').then((a) => (ackA = a));
    for (let i = 0; i < 50 && !gate.has('tx-1-1'); i++) await new Promise((r) => setImmediate(r));
    expect(gate.has('tx-1-1')).toBe(true);
    // While A's apply is in flight, B (another key) prepares, commits and is acknowledged.
    expect(await answerSoon(prepare(rt, 'tx-1-2', [{ op: 'put', key: 'b', value: 2 }]))).toEqual({ status: 200, body: { vote: 'yes' } });
    expect(await answerSoon(decide(rt, 'commit', 'tx-1-2'))).toEqual({ status: 200, body: { txId: 'tx-1-2', state: 'committed' } });
    expect(kv.entries()).toEqual({ b: 2 });
    // A is durable but not applied: no ack yet, and a duplicate commit of A waits too.
    expect(ackA).toBeUndefined();
    let dupA: Answer | undefined;
    void decide(rt, 'commit', 'tx-1-1').then((a) => (dupA = a));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(dupA).toBeUndefined();
    gate.get('tx-1-1')?.();
    for (let i = 0; i < 50 && (ackA === undefined || dupA === undefined); i++) await new Promise((r) => setImmediate(r));
    expect(ackA).toEqual({ status: 200, body: { txId: 'tx-1-1', state: 'committed' } });
    expect(dupA).toEqual({ status: 200, body: { txId: 'tx-1-1', state: 'committed' } });
    expect(kv.entries()).toEqual({ a: 1, b: 2 });
    await close();
  });

  it('a prepare on a key just released waits for the previous holder\'s apply, so it reads the committed value', async () => {
    const gate: (() => void)[] = [];
    const kv = new KvStore();
    const { rt, close } = runtime(new TestLog(), withCommit(kv, (txId, data) => new Promise<void>((resolve) => gate.push(resolve)).then(() => kv.commit(txId, data))));
    await rt.start();
    await prepare(rt, 'tx-1-1', [{ op: 'add', key: 'n', amount: 5 }]);
    void decide(rt, 'commit', 'tx-1-1');
    for (let i = 0; i < 50 && gate.length === 0; i++) await new Promise((r) => setImmediate(r));
    // The core released n when it asked for the apply; the next add must still see 5, not 0.
    const second = prepare(rt, 'tx-1-2', [{ op: 'add', key: 'n', amount: 1 }], true);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    gate.shift()?.();
    for (let i = 0; i < 50 && gate.length === 0; i++) await new Promise((r) => setImmediate(r));
    gate.shift()?.();
    expect(await second).toEqual({ status: 200, body: { vote: 'yes', state: 'committed' } });
    expect(kv.entries()).toEqual({ n: 6 });
    await close();
  });

  it('refuses requests until recovery is done', async () => {
    const { rt, close } = runtime(new TestLog());
    await expect(prepare(rt, 'tx-1-1', [])).rejects.toMatchObject({ code: 'unavailable', message: 'The participant is recovering.' });
    await rt.start();
    expect(await prepare(rt, 'tx-1-1', [])).toEqual({ status: 200, body: { vote: 'read-only' } });
    await close();
  });
});

describe('cooperative termination behind a gateway', () => {
  // Found by the chaos scenarios: a gateway's 502 for a dead coordinator counted as "reachable",
  // so an in-doubt participant never asked the peer that knew the outcome.
  it('asks its peers when the coordinator answers only through a failing gateway', async () => {
    const http = await import('node:http');
    const serve = (handler: (path: string) => [number, unknown]) =>
      new Promise<{ url: string; close: () => Promise<void> }>((resolve) => {
        const srv = http.createServer((req, res) => {
          req.resume();
          const [status, body] = handler(req.url ?? '');
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        });
        srv.listen(0, '127.0.0.1', () => {
          const { port } = srv.address() as { port: number };
          resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }) });
        });
      });
    let asked = 0;
    const gateway = await serve((p) => {
      if (p === '/v1/outcomes') asked++;
      return [502, { error: { code: 'bad_gateway', message: 'upstream is down' } }];
    });
    const peer = await serve((p) => (p.includes('/inquiry') ? [200, { txId: 'tx-1-1', state: 'committed' }] : [404, {}]));

    const kv = new KvStore();
    const prepared = kv.prepare(asTxId('tx-1-1'), [{ op: 'put', key: 'a', value: 7 }]);
    const log = new TestLog();
    const { type, payload } = participantCodec.encode({
      type: 'PREPARED', txId: asTxId('tx-1-1'), coordinator: gateway.url, participants: [peer.url], keys: ['a'], data: prepared.data, at: 1,
    });
    await log.append(type, payload);
    const timers = new Timers();
    const client = createHttpClient({ timeoutMs: 1_000 });
    const metrics = new Metrics();
    const rt = new ParticipantRuntime({
      name: 't', log, recovered: log.recovered(), resource: kv, http: client, clock, timers,
      crashPoints: new CrashPoints(), logger: silentLogger(), metrics, coordinatorUrl: gateway.url,
      onFatal: () => undefined, core: { decisionWaitMs: 600_000, inquiryBackoffBaseMs: 10, inquiryBackoffMaxMs: 50 },
    });
    try {
      await rt.start();
      expect(rt.inDoubt().map((t) => t.txId)).toEqual(['tx-1-1']);
      const deadline = Date.now() + 10_000;
      while (rt.inDoubt().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(rt.inDoubt()).toEqual([]);
      expect(kv.entries()).toEqual({ a: 7 });
      // Every question counted as it left, recovery's first one included: one id a request here. A
      // retry counted as it left may still be on its way to the gateway when the outcome arrives.
      expect(asked).toBeGreaterThanOrEqual(1);
      const counted = await metrics.get('inquiries_total', { to: 'coordinator' });
      expect(counted).toBeGreaterThanOrEqual(asked);
      expect(counted).toBeLessThanOrEqual(asked + 1);
      expect(await metrics.get('inquiries_total', { to: 'peer' })).toBeGreaterThanOrEqual(1);
    } finally {
      await rt.stop();
      timers.clearAll();
      client.close();
      await gateway.close();
      await peer.close();
    }
  });
});
