import type { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { Leadership, leaderKey } from '../../coordinator/adapters/etcd-leadership.ts';
import type { Fence } from '../../coordinator/adapters/etcd-log.ts';
import { createPrng } from '../../scenarios/prng.ts';
import { SimEtcd, SimEtcdDeadline, type SimEtcdClient, type TxnRequest } from './etcd.ts';
import { HA_PLANTED_BUGS } from './profile.ts';
import { EventQueue } from './queue.ts';
import { findFailingSeed, runSeeds } from './run.ts';
import { runSeed } from './world.ts';

/** Seeds the clean run covers, and how many seeds each planted HA bug may take to be found. */
const CLEAN_SEEDS = 60;
const BUG_SEEDS_MAX = 60;

describe('the HA coordinator group in the simulator', () => {
  it(`keeps every invariant over ${CLEAN_SEEDS} seeds while leaders crash, pause past their lease, and etcd loses its quorum`, async () => {
    const seeds = Array.from({ length: CLEAN_SEEDS }, (_, i) => 7_000 + i);
    const t = await runSeeds(seeds, { ha: true, stopAtFailure: false });
    const report = t.firstFailure ? `seed ${t.firstFailure.seed}: ${JSON.stringify(t.firstFailure.violations)}\n${t.firstFailure.trace.join('\n')}` : '';
    expect(t.violations, report).toBe(0);
    expect(t.haSeeds).toBe(CLEAN_SEEDS);
    // Not vacuous: every fault of the group happened, leadership changed hands many times, and
    // writes of deposed terms reached etcd and were refused there (the fence at work).
    for (const kind of ['pause', 'pause-mid-write', 'leader-crash', 'quorum-loss', 'etcd-cut', 'etcd-loss', 'crash-point']) {
      expect(t.faults[kind] ?? 0, kind).toBeGreaterThan(0);
    }
    expect(t.terms).toBeGreaterThan(2 * CLEAN_SEEDS);
    expect(t.fencedWrites).toBeGreaterThan(0);
    expect(t.resignedTerms).toBeGreaterThan(0);
    expect(t.committed).toBeGreaterThan(0);
    expect(t.aborted).toBeGreaterThan(0);
    expect(t.tlaSteps).toBeGreaterThan(t.transactions);
  });

  it('without faults, commits every transfer the balances allow and leaves nothing unknown', async () => {
    const t = await runSeeds([1, 2, 3, 4, 5], { ha: true, faults: false, stopAtFailure: false });
    expect(t.violations).toBe(0);
    expect(t.haSeeds).toBe(5);
    expect(t.unknown).toBe(0);
    expect(t.committed + t.aborted).toBe(t.transactions);
    expect(t.committed).toBeGreaterThan(t.transactions / 2);
    // The final power cycle hands the leadership over at least once per seed.
    expect(t.terms).toBeGreaterThanOrEqual(2 * 5);
  });

  it('replays an HA seed exactly, and different seeds differ', async () => {
    const a = await runSeed(7_003, { ha: true });
    const b = await runSeed(7_003, { ha: true });
    expect(b).toEqual(a);
    expect(a.ha?.terms).toBeGreaterThan(1);
    expect(a.steps).toBeGreaterThan(50);
    const hashes = new Set<string>();
    for (let seed = 1; seed <= 5; seed++) hashes.add((await runSeed(seed, { ha: true })).traceHash);
    expect(hashes.size).toBe(5);
  });

  for (const bug of HA_PLANTED_BUGS) {
    it(`finds ${bug} within ${BUG_SEEDS_MAX} seeds, replays it from its seed, and the same seed is clean without it`, async () => {
      const found = await findFailingSeed(BUG_SEEDS_MAX, { bug });
      expect(found, `${bug} not found in ${BUG_SEEDS_MAX} seeds`).toBeDefined();
      const seed = found?.seed ?? -1;
      console.log(`${bug}: seed ${seed}: ${found?.violations.map((v) => `${v.kind}: ${v.message}`).join('; ')}`);
      const replay = await runSeed(seed, { bug });
      expect(replay.traceHash).toBe(found?.traceHash);
      expect(replay.violations).toEqual(found?.violations);
      expect((await runSeed(seed, { ha: true })).violations).toEqual([]);
    });
  }
});

describe('the election adapter on the simulated etcd', () => {
  it('takes up the leader key it won when the answer to its campaign was lost (else nobody would lead again)', async () => {
    const queue = new EventQueue<() => void>();
    const etcd = new SimEtcd(
      {
        now: () => queue.now,
        schedule: (delayMs, _node, _what, run) => queue.after(delayMs, run),
        lost: () => false,
        rng: createPrng(1),
        violation: (kind, message) => {
          throw new Error(`${kind}: ${message}`);
        },
        decided: () => undefined,
      },
      { prefix: 'twopc/t/', leader: leaderKey('twopc/t/') },
    );
    const client = etcd.client('c1');
    let campaigns = 0;
    // The first campaign is applied by etcd, but its answer never comes back: the call fails at its deadline.
    const lossy: SimEtcdClient = Object.assign(Object.create(client) as SimEtcdClient, {
      kv: {
        range: client.kv.range,
        txn: async (req: TxnRequest) => {
          const res = await client.kv.txn(req);
          // A campaign: the create-only-if-absent compare on the leader key.
          const campaign = req.compare?.some((c) => String(c.create_revision) === '0') === true;
          if (campaign && ++campaigns === 1) throw new SimEtcdDeadline('txn');
          return res;
        },
      },
    });
    const elected: Fence[] = [];
    const errors: unknown[] = [];
    const leadership = new Leadership({
      client: lossy as unknown as Etcd3,
      prefix: 'twopc/t/',
      name: 'c1',
      url: 'sim://c1',
      leaseMs: 1_000,
      campaignIntervalMs: 100,
      onElected: (fence) => elected.push(fence),
      onDeposed: () => undefined,
      onError: (_step, error) => errors.push(error),
      clock: { now: () => queue.now, sleep: (ms) => new Promise((resolve) => queue.after(ms, resolve)) },
    });
    leadership.start();
    // Ten simulated seconds at most: ten lease TTLs.
    for (let steps = 0; elected.length === 0 && steps < 10_000 && queue.now < 10_000; steps++) {
      await new Promise((resolve) => setImmediate(resolve));
      queue.pop()?.event();
    }
    expect(campaigns).toBeGreaterThanOrEqual(2);
    expect(errors).toHaveLength(1);
    expect(elected).toEqual([{ key: 'twopc/t/leader', createRevision: etcd.currentTerm() }]);
    expect(leadership.isLeader()).toBe(true);
  });
});
