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
    // CPU and the group commit are measured, not assumed: every node used some CPU, and each etcd
    // transaction carried at least one record (a DECISION; an END may share it).
    for (const f of [r.localWal, r.etcdLog]) expect(f.cpuMsPerTx).toBeGreaterThan(0);
    expect(r.localWal.etcd).toBeUndefined();
    expect(r.etcdLog.etcd?.txnsPerTx).toBeGreaterThan(0);
    expect(r.etcdLog.etcd?.recordsPerTxn).toBeGreaterThanOrEqual(1);
    expect(r.ratios.throughput).toBeCloseTo(r.etcdLog.throughputTxPerS / r.localWal.throughputTxPerS, 1);
  }, 180_000);
});
