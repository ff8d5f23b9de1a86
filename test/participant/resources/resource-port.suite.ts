/**
 * The acceptance suite of the Resource port (participant/resources/resource.ts).
 * Every resource runs it: kv-port.test.ts (the key-value store),
 * inventory-port.test.ts (the embedded example), durable-port.test.ts (a test
 * resource that keeps prepared branches in a file, like a database), and the
 * PostgreSQL resource's own file.
 *
 * ## The factory
 *
 *   describeResourcePort<MyOp>('my resource', async () => ({
 *     open: async () => resource,        // the resource over fresh, empty state (called once per test)
 *     afterCrash: async () => resource,  // the same resource after its process died: a NEW instance
 *                                        // over whatever state survived. The old instance must never
 *                                        // touch that state again (close its connections, as death would).
 *                                        // For an in-memory resource nothing survives: an empty instance,
 *                                        // which recovery restores from the participant's checkpoint and WAL.
 *     add: (key, amount) => ops,         // ops adding `amount` (> 0) to the number under `key` (absent: 0)
 *     refused: (key) => ops,             // ops on `key` the resource votes no on (a violated constraint)
 *     read: async (resource, key) => n,  // the committed number under `key` (0 when absent)
 *     dispose: async () => {},           // removes what the harness made (files, databases)
 *   }));
 *
 * A harness is made per test, so keys need not be unique across tests.
 *
 * ## What it checks
 *
 * "the resource": the port called directly. Idempotent commit and abort; a
 * commit replayed after a crash (what recovery does: restore the last
 * checkpoint's snapshot, replay the commit) lands once; abort of a branch never
 * prepared is a no-op; concurrent branches on disjoint keys; a NO vote leaves
 * nothing prepared; recoverPrepared/outcomeOf, or, for a resource without
 * them, that nothing it held survives a crash; who locks.
 *
 * "under a participant runtime": the real ParticipantRuntime (the real CoreHost
 * and driver, a file WAL in a temp dir) over the resource, driven through its
 * request API, crashed at every point between "the resource prepared" and "the
 * ack is sent": the named crash points, and cuts right after the resource's own
 * prepare/commit/abort returned. A crash abandons the runtime without stop():
 * the WAL's file handles die (KillableFs), a crash point stops the effects after
 * it, and the resource is reopened with afterCrash(). After the restart: the
 * resource holds nothing prepared that the participant does not know as in
 * doubt (an orphan is rolled back), the coordinator's (re)sent decision is
 * answered, the value is applied exactly once or not at all, nothing stays
 * prepared, the keys are free for the next transaction, and one more crash
 * changes nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ParticipantEvent } from '../../../participant/core/index.ts';
import type { Resource } from '../../../participant/resources/resource.ts';
import { ParticipantRuntime, type Answer } from '../../../participant/runtime/runtime.ts';
import { Timers, systemClock } from '../../../shared/clock.ts';
import type { CrashPoint } from '../../../shared/crash-points.ts';
import { CrashPoints } from '../../../shared/crash.ts';
import { createHttpClient, type HttpClient } from '../../../shared/http/client.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { Metrics } from '../../../shared/metrics.ts';
import { asTxId, type TxId } from '../../../shared/types.ts';
import { openFileLog, type FileLog } from '../../../wal/file-log.ts';
import { KillableFs } from '../../wal/helpers/killable-fs.ts';

export interface ResourceHarness<Op = unknown, R extends Resource<Op> = Resource<Op>> {
  /** The resource over fresh, empty state. Called once per test. */
  open(): Promise<R>;
  /** The same resource after its process died: a new instance over what survived; the old one is dead. */
  afterCrash(): Promise<R>;
  /** Ops that add `amount` (> 0) to the number under `key` (a missing key counts as 0). */
  add(key: string, amount: number): readonly Op[];
  /** Ops on `key` that the resource votes no on (a violated constraint). */
  refused(key: string): readonly Op[];
  /** The committed number under `key`, read from `resource` (0 when absent). */
  read(resource: R, key: string): Promise<number>;
  /** Removes what the harness made. */
  dispose(): Promise<void>;
}

export type ResourceFactory<Op = unknown, R extends Resource<Op> = Resource<Op>> = () => Promise<ResourceHarness<Op, R>>;

const tx = (n: number): TxId => asTxId(`tx-1-${n}`);
/** Nothing listens here: an in-doubt participant's inquiries fail at once, and it waits for the test's decision. */
const COORDINATOR_URL = 'http://127.0.0.1:9';
/** How long a case waits for the participant to die at its cut (a condition, polled). */
const CRASH_WAIT_MS = 10_000;

export function describeResourcePort<Op, R extends Resource<Op> = Resource<Op>>(name: string, factory: ResourceFactory<Op, R>): void {
  describe(`Resource port: ${name}`, () => {
    let harness: ResourceHarness<Op, R> | undefined;
    let rig: Rig<Op, R> | undefined;
    const fresh = async (): Promise<ResourceHarness<Op, R>> => (harness = await factory());
    afterEach(async () => {
      await rig?.stop();
      rig = undefined;
      await harness?.dispose();
      harness = undefined;
    });

    describe('the resource', () => {
      it('commit is idempotent: a second commit of the same branch changes nothing', async () => {
        const h = await fresh();
        const r = await h.open();
        const p = await r.prepare(tx(1), h.add('k', 5));
        expect(p.vote).toBe('yes');
        await r.commit(tx(1), p.data);
        await r.commit(tx(1), p.data);
        expect(await h.read(r, 'k')).toBe(5);
      });

      it('abort is idempotent, applies nothing, and frees the keys', async () => {
        const h = await fresh();
        const r = await h.open();
        const p = await r.prepare(tx(1), h.add('k', 5));
        expect(p.vote).toBe('yes');
        await r.abort(tx(1), p.data);
        await r.abort(tx(1), p.data);
        expect(await h.read(r, 'k')).toBe(0);
        const next = await r.prepare(tx(2), h.add('k', 2));
        expect(next.vote).toBe('yes');
        await r.commit(tx(2), next.data);
        expect(await h.read(r, 'k')).toBe(2);
      });

      it('abort of a branch never prepared here is a no-op', async () => {
        const h = await fresh();
        const r = await h.open();
        const p = await r.prepare(tx(1), h.add('k', 3));
        await r.commit(tx(1), p.data);
        await r.abort(tx(9), undefined);
        expect(await h.read(r, 'k')).toBe(3);
        expect((await r.recoverPrepared?.()) ?? []).toEqual([]);
      });

      it('a commit replayed after a crash lands once, whether or not it was applied before the crash', async () => {
        const h = await fresh();
        const r = await h.open();
        const a = await r.prepare(tx(1), h.add('a', 4));
        const b = await r.prepare(tx(2), h.add('b', 7));
        // The last checkpoint: taken with both prepared, neither applied.
        const snapshot = await r.snapshot();
        await r.commit(tx(1), a.data);
        // The crash: tx1 was applied, tx2's COMMITTED record was durable but not yet applied.
        const after = await h.afterCrash();
        await after.restore(snapshot);
        // Recovery replays both outcomes logged after the checkpoint, and a second crash would replay them again.
        for (let round = 0; round < 2; round++) {
          await after.commit(tx(1), a.data);
          await after.commit(tx(2), b.data);
        }
        expect(await h.read(after, 'a')).toBe(4);
        expect(await h.read(after, 'b')).toBe(7);
      });

      it('runs concurrent branches on disjoint keys', async () => {
        const h = await fresh();
        const r = await h.open();
        const n = 8;
        const prepared = await Promise.all(Array.from({ length: n }, (_, i) => r.prepare(tx(i + 1), h.add(`k${i}`, i + 1))));
        expect(prepared.map((p) => p.vote)).toEqual(Array.from({ length: n }, () => 'yes'));
        await Promise.all(prepared.map((p, i) => (i % 2 === 0 ? r.commit(tx(i + 1), p.data) : r.abort(tx(i + 1), p.data))));
        const values = await Promise.all(Array.from({ length: n }, (_, i) => h.read(r, `k${i}`)));
        expect(values).toEqual(Array.from({ length: n }, (_, i) => (i % 2 === 0 ? i + 1 : 0)));
        expect((await r.recoverPrepared?.()) ?? []).toEqual([]);
      });

      it('a NO vote names its reason and leaves nothing prepared', async () => {
        const h = await fresh();
        const r = await h.open();
        const no = await r.prepare(tx(1), h.refused('k'));
        expect(no.vote).toBe('no');
        expect(typeof no.reason === 'string' && no.reason.length > 0).toBe(true);
        expect((await r.recoverPrepared?.()) ?? []).toEqual([]);
        const next = await r.prepare(tx(2), h.add('k', 1));
        expect(next.vote).toBe('yes');
        await r.commit(tx(2), next.data);
        expect(await h.read(r, 'k')).toBe(1);
      });

      it('lists what it holds prepared across a crash and tells committed from unknown, or holds nothing across one', async () => {
        const h = await fresh();
        const r = await h.open();
        const committed = await r.prepare(tx(1), h.add('a', 1));
        await r.commit(tx(1), committed.data);
        const aborted = await r.prepare(tx(2), h.add('b', 1));
        await r.abort(tx(2), aborted.data);
        const held = await r.prepare(tx(3), h.add('c', 1));
        expect(held.vote).toBe('yes');
        const after = await h.afterCrash();
        if (r.recoverPrepared === undefined) {
          // Nothing survives in the resource itself: the participant's checkpoint and WAL bring it back.
          expect(r.outcomeOf).toBeUndefined();
          expect(await h.read(after, 'a')).toBe(0);
          return;
        }
        expect(r.outcomeOf).toBeTypeOf('function');
        expect(await after.recoverPrepared?.()).toEqual([tx(3)]);
        expect(await after.outcomeOf?.(tx(1))).toBe('committed');
        expect(await after.outcomeOf?.(tx(2))).toBe('unknown');
        expect(await after.outcomeOf?.(tx(9))).toBe('unknown');
        await after.commit(tx(3), held.data);
        expect(await h.read(after, 'c')).toBe(1);
        expect(await after.outcomeOf?.(tx(3))).toBe('committed');
        expect(await after.recoverPrepared?.()).toEqual([]);
      });

      it('locks: the core by keysOf (pure, naming the keys), or the resource itself, voting no on a conflict', async () => {
        const h = await fresh();
        const r = await h.open();
        if (r.locking === 'resource') {
          const first = await r.prepare(tx(1), h.add('k', 1));
          expect(first.vote).toBe('yes');
          // The second waits at most the resource's own lock timeout, then votes no, naming why.
          const second = await r.prepare(tx(2), h.add('k', 1));
          expect(second.vote).toBe('no');
          expect(second.reason ?? '').not.toBe('');
          await r.abort(tx(1), first.data);
          return;
        }
        expect(r.locking ?? 'core').toBe('core');
        const ops = h.add('k', 1);
        const keys = r.keysOf?.(ops);
        expect(keys).toHaveLength(1);
        expect(r.keysOf?.(ops)).toEqual(keys);
        expect(r.keysOf?.(h.add('m', 1))).not.toEqual(keys);
      });
    });

    describe('under a participant runtime, crashed between "resource prepared" and "ack sent"', () => {
      it.each(CRASH_CASES)('$at ($decision)', async (c) => {
        const h = await fresh();
        rig = await Rig.start(h, await tempDir());
        await runCrashCase(h, rig, c);
      });

      it('one phase: a crash after the resource prepared leaves no orphan, and the re-sent prepare is answered once', async () => {
        const h = await fresh();
        const r = (rig = await Rig.start(h, await tempDir(), 'participant.after-resource-prepared'));
        void r.request(prepareEvent(tx(1), h.add('k', 5), true));
        await r.untilCrashed();
        await r.restart();
        await expectNothingOrphaned(r);
        // The coordinator re-sends a one-phase prepare that got no answer.
        const again = await r.request(prepareEvent(tx(1), h.add('k', 5), true));
        if (r.resource.recoverPrepared !== undefined) {
          // The orphan was rolled back and remembered aborted: the retry votes no.
          expect(again).toMatchObject({ status: 200, body: { vote: 'no' } });
          expect(await h.read(r.resource, 'k')).toBe(0);
          expect((await r.resource.recoverPrepared()).length).toBe(0);
          return expectKeyFree(h, r, 'k', 0);
        }
        // Nothing of it survived anywhere: the retry prepares afresh and commits, once.
        expect(again).toEqual({ status: 200, body: { vote: 'yes', state: 'committed' } });
        expect(await h.read(r.resource, 'k')).toBe(5);
        await expectKeyFree(h, r, 'k', 5);
      });
    });
  });
}

// ---- the crash cases ---------------------------------------------------------------------

type Cut = CrashPoint | 'in resource.prepare' | 'in resource.commit' | 'in resource.abort';

interface CrashCase {
  /** Where the participant dies: a named crash point, or right after the resource's own call returned. */
  readonly at: Cut;
  /** The coordinator's decision, sent again after the restart. */
  readonly decision: 'commit' | 'abort';
  /** The vote got out before the crash, so the decision was sent before it too. */
  readonly voted: boolean;
}

const CRASH_CASES: readonly CrashCase[] = [
  // The resource prepared; no record names the branch: an orphan, rolled back at recovery.
  { at: 'in resource.prepare', decision: 'abort', voted: false },
  { at: 'participant.after-resource-prepared', decision: 'abort', voted: false },
  // PREPARED is durable, the vote never left: in doubt, and the coordinator (no vote) aborts.
  { at: 'participant.after-prepare-logged', decision: 'abort', voted: false },
  { at: 'participant.before-commit-logged', decision: 'commit', voted: true },
  { at: 'participant.after-commit-logged', decision: 'commit', voted: true },
  { at: 'in resource.commit', decision: 'commit', voted: true },
  { at: 'participant.before-abort-logged', decision: 'abort', voted: true },
  { at: 'participant.after-abort-logged', decision: 'abort', voted: true },
  { at: 'in resource.abort', decision: 'abort', voted: true },
];

async function runCrashCase<Op, R extends Resource<Op>>(h: ResourceHarness<Op, R>, rig: Rig<Op, R>, c: CrashCase): Promise<void> {
  const amount = 5;
  rig.armCut(c.at);
  const vote = rig.request(prepareEvent(tx(1), h.add('k', amount)));
  if (c.voted) {
    expect(await vote).toEqual({ status: 200, body: { vote: 'yes' } });
    void rig.request(decisionEvent(c.decision, tx(1)));
  }
  await rig.untilCrashed();
  await rig.restart();

  await expectNothingOrphaned(rig);
  const outcome = c.decision === 'commit' ? 'committed' : 'aborted';
  // The coordinator's decision, re-sent after the participant came back.
  expect(await rig.request(decisionEvent(c.decision, tx(1)))).toEqual({ status: 200, body: { txId: tx(1), state: outcome } });
  const expected = outcome === 'committed' ? amount : 0;
  expect(await h.read(rig.resource, 'k')).toBe(expected);
  expect(rig.runtime.inDoubt()).toEqual([]);
  expect((await rig.resource.recoverPrepared?.()) ?? []).toEqual([]);
  await expectKeyFree(h, rig, 'k', expected);
}

/** Whatever the resource holds prepared, the participant knows as in doubt: no orphan holds locks for ever. */
async function expectNothingOrphaned<Op, R extends Resource<Op>>(rig: Rig<Op, R>): Promise<void> {
  const held = (await rig.resource.recoverPrepared?.()) ?? [];
  const inDoubt = rig.runtime.inDoubt().map((t) => t.txId);
  expect(held.filter((txId) => !inDoubt.includes(txId))).toEqual([]);
}

/** The key takes a new transaction, and one more crash applies nothing twice. */
async function expectKeyFree<Op, R extends Resource<Op>>(h: ResourceHarness<Op, R>, rig: Rig<Op, R>, key: string, before: number): Promise<void> {
  expect(await rig.request(prepareEvent(tx(2), h.add(key, 1)))).toEqual({ status: 200, body: { vote: 'yes' } });
  expect(await rig.request(decisionEvent('commit', tx(2)))).toEqual({ status: 200, body: { txId: tx(2), state: 'committed' } });
  expect(await h.read(rig.resource, key)).toBe(before + 1);
  await rig.restart();
  expect(await h.read(rig.resource, key)).toBe(before + 1);
  expect(rig.runtime.inDoubt()).toEqual([]);
  expect((await rig.resource.recoverPrepared?.()) ?? []).toEqual([]);
}

const prepareEvent =
  (txId: TxId, ops: readonly unknown[], onePhase = false) =>
  (requestId: string, now: number): ParticipantEvent => ({
    type: 'prepare',
    requestId,
    now,
    txId,
    coordinator: COORDINATOR_URL,
    participants: [],
    ops,
    onePhase,
  });

const decisionEvent =
  (type: 'commit' | 'abort', txId: TxId) =>
  (requestId: string, now: number): ParticipantEvent => ({ type, requestId, now, txId });

async function tempDir(): Promise<string> {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), 'twopc-resource-port-'));
}

// ---- a participant runtime that can die anywhere -------------------------------------------

/**
 * One participant process over the harness's resource, with a file WAL in
 * `dir`. `die` is the process's death: its WAL file handles close (nothing it
 * does later reaches the disk), its timers and connections go, and at a crash
 * point the effects after it do not run.
 */
class Rig<Op, R extends Resource<Op>> {
  runtime!: ParticipantRuntime;
  resource!: R;
  private fs = new KillableFs();
  private log: FileLog | undefined;
  private timers = new Timers();
  private http: HttpClient = createHttpClient({ timeoutMs: 200 });
  private readonly crashPoints = new CrashPoints({ kill: (point) => this.die(`crash point ${point}`) });
  private cut: Cut | undefined;
  private killed: Promise<void> | undefined;
  private crashed = false;

  private constructor(
    private readonly h: ResourceHarness<Op, R>,
    private readonly dir: string,
  ) {}

  static async start<Op, R extends Resource<Op>>(h: ResourceHarness<Op, R>, dir: string, point?: CrashPoint): Promise<Rig<Op, R>> {
    const rig = new Rig(h, dir);
    if (point !== undefined) rig.armCut(point);
    await rig.boot(await h.open());
    return rig;
  }

  /** The participant dies at `cut` from now on (once). */
  armCut(cut: Cut): void {
    this.cut = cut;
    if (!cut.startsWith('in resource.')) this.crashPoints.arm(cut);
  }

  request(make: (requestId: string, now: number) => ParticipantEvent): Promise<Answer> {
    return this.runtime.request(make);
  }

  async untilCrashed(): Promise<void> {
    const deadline = Date.now() + CRASH_WAIT_MS;
    while (!this.crashed) {
      if (Date.now() > deadline) throw new Error(`the participant did not die at ${String(this.cut)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Dies (if it has not yet) and comes back over what survived: the WAL on disk and the resource's afterCrash(). */
  async restart(): Promise<void> {
    if (!this.crashed) this.cutNow();
    await this.killed;
    this.cut = undefined;
    this.crashPoints.disarm();
    await this.boot(await this.h.afterCrash());
  }

  async stop(): Promise<void> {
    if (this.crashed) {
      await this.killed;
    } else {
      await this.runtime.stop();
      await this.log?.close();
      this.http.close();
      this.timers.clearAll();
    }
    await fs.promises.rm(this.dir, { recursive: true, force: true });
  }

  private async boot(resource: R): Promise<void> {
    this.crashed = false;
    this.killed = undefined;
    this.fs = new KillableFs();
    this.timers = new Timers();
    this.http = createHttpClient({ timeoutMs: 200 });
    this.resource = resource;
    // Small segments: the suite writes a few records, and a fresh segment is prepared at each open.
    const { log, recovered } = await openFileLog(this.dir, { fs: this.fs, syncPolicy: 'group', segmentBytes: 64 * 1024 });
    this.log = log;
    this.runtime = new ParticipantRuntime({
      name: 'p',
      log,
      recovered,
      resource: this.withCuts(resource),
      http: this.http,
      clock: systemClock,
      timers: this.timers,
      crashPoints: this.crashPoints,
      logger: silentLogger(),
      metrics: new Metrics(),
      coordinatorUrl: COORDINATOR_URL,
      onFatal: () => undefined,
      core: { decisionWaitMs: 600_000 },
    });
    await this.runtime.start();
  }

  /** The process's death, right now: nothing it does from here reaches its WAL. */
  private cutNow(): void {
    if (this.crashed) return;
    this.crashed = true;
    this.killed = this.fs.kill();
    this.timers.clearAll();
    this.http.close();
  }

  /** Death that also stops the caller: at a crash point, or after a commit/abort, nothing after it runs. */
  private die(why: string): never {
    this.cutNow();
    throw new Error(`the participant died: ${why}`);
  }

  /** The resource, with the process dying right after its own prepare, commit or abort returned when that is armed. */
  private withCuts(r: Resource<Op>): Resource<Op> {
    const after = (call: string): boolean => this.cut === `in resource.${call}` && !this.crashed;
    return {
      opsSchema: r.opsSchema,
      ...(r.locking !== undefined && { locking: r.locking }),
      ...(r.keysOf !== undefined && { keysOf: (ops: readonly Op[]) => r.keysOf?.(ops) ?? [] }),
      prepare: async (txId, ops) => {
        const result = await r.prepare(txId, ops);
        // Not thrown: the runtime goes on to log PREPARED, and that write is what the death loses.
        if (result.vote === 'yes' && after('prepare')) this.cutNow();
        return result;
      },
      commit: async (txId, data) => {
        await r.commit(txId, data);
        if (after('commit')) this.die('after the resource committed, before the ack');
      },
      abort: async (txId, data) => {
        await r.abort(txId, data);
        if (after('abort')) this.die('after the resource aborted, before the ack');
      },
      snapshot: () => r.snapshot(),
      restore: (snapshot) => r.restore(snapshot),
      ...(r.recoverPrepared !== undefined && { recoverPrepared: () => r.recoverPrepared?.() ?? Promise.resolve([]) }),
      ...(r.outcomeOf !== undefined && { outcomeOf: (txId: TxId) => r.outcomeOf?.(txId) ?? Promise.resolve('unknown' as const) }),
    };
  }
}
