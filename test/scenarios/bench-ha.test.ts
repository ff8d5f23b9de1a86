/**
 * `twopc bench --ha` on a small load: both logs measured in one run, every transfer committed on
 * each, and the ratios computed from the figures it prints (no timed assertion: only that each
 * figure was measured).
 */
import { describe, expect, it } from 'vitest';
import { runHaBench } from '../../scenarios/bench-ha.ts';

describe('bench --ha', () => {
  it('measures the local WAL and the etcd log with the same transfers', async () => {
    const r = await runHaBench({ transactions: 200, concurrency: 8, participants: 2, fsync: 'group' }, () => undefined);
    for (const f of [r.localWal, r.etcdLog]) {
      expect(f.committed).toBe(200);
      expect(f.throughputTxPerS).toBeGreaterThan(0);
      expect(f.latency.p50Ms).toBeGreaterThan(0);
      expect(f.latency.p99Ms).toBeGreaterThanOrEqual(f.latency.p50Ms);
    }
    expect(r.ratios.throughput).toBeCloseTo(r.etcdLog.throughputTxPerS / r.localWal.throughputTxPerS, 1);
  }, 180_000);
});
