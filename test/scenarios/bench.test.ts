/**
 * `twopc bench` as a user runs it: the real CLI, real node processes, a short run.
 * These tests check what the bench reports (every field the contract names, the
 * per-process figures, each target with its verdict) and what it writes (an HTML
 * page with its pictures inline), never how fast anything was.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../../scenarios/bench.ts';
import type { RecoveryReport } from '../../scenarios/bench-recovery.ts';
import { CLI } from '../../scenarios/harness.ts';

/** A short bench on a busy 2-core machine: two clusters started and stopped, a few hundred transactions. */
const BENCH_WAIT_MS_MAX = 400_000;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-bench-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * Runs `twopc ...args` in a process group of its own, so that if it must be killed the
 * nodes it started go with it and nothing is left behind.
 */
function runBenchCli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TWOPC_LOG_LEVEL: 'warn' },
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const killGroup = () => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const timer = setTimeout(killGroup, BENCH_WAIT_MS_MAX);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      killGroup();
      resolve({ code, stdout, stderr });
    });
  });
}

const latencyShape = { p50Ms: expect.any(Number), p95Ms: expect.any(Number), p99Ms: expect.any(Number), meanMs: expect.any(Number) };
const ratioShape = { value: expect.any(Number), target: expect.any(Number), comparison: expect.stringMatching(/^(atLeast|atMost)$/), met: expect.any(Boolean) };

describe('twopc bench --json', () => {
  it('prints one JSON object with every figure, the unbatched run beside, and each target judged; --html draws them', async () => {
    const html = path.join(dir, 'bench.html');
    const r = await runBenchCli(['bench', '--transactions', '120', '--warmup', '30', '--concurrency', '4', '--participants', '2', '--one-client', '10', '--json', '--html', html]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0] as string) as BenchReport;

    expect(report).toMatchObject({
      throughputTxPerS: expect.any(Number),
      latency: latencyShape,
      batching: true,
      // The transactions are sent as the floor's round trips are, on bare node:http, unless asked otherwise.
      options: { loadClient: 'node' },
      oneClient: { transactions: 10, latency: latencyShape },
      noBatching: { batching: false, throughputTxPerS: expect.any(Number), latency: latencyShape, noBatchingFlagPassed: expect.any(Boolean) },
      machine: {
        cpus: expect.any(Number),
        fdatasync: latencyShape,
        httpRoundTrip: latencyShape,
        httpRequestsPerS: expect.any(Number),
        axiosRequestsPerS: expect.any(Number),
        floorMs: expect.any(Number),
      },
    });
    for (const phase of [report, report.noBatching!]) {
      expect(phase.transactions.errors).toBe(0);
      expect(phase.transactions.committed).toBeGreaterThan(0);
      // Every node is measured: the coordinator and both participants, and the sum.
      expect(Object.keys(phase.cpuMsPerTx).sort()).toEqual(['coordinator', 'p1', 'p2', 'total']);
      expect(phase.cpuMsPerTx.total).toBeGreaterThan(0);
      expect(Object.keys(phase.rssMb).sort()).toEqual(['coordinator', 'max', 'p1', 'p2']);
      expect(phase.rssMb.max).toBeGreaterThan(0);
      // A two-branch transaction is at least the client's request, and its fsync-group
      // commit forces at least the participants' PREPARED and the coordinator's DECISION.
      expect(phase.httpRequestsPerTx).toBeGreaterThanOrEqual(1);
      expect(phase.forcedWritesPerTx).toBeGreaterThan(0);
      // The services sync on the event loop while the disk is fast; never more of them than there are syncs.
      expect(phase.forcedWritesBlockingPerTx).toBeGreaterThanOrEqual(0);
      expect(phase.forcedWritesBlockingPerTx).toBeLessThanOrEqual(phase.forcedWritesPerTx!);
      expect(phase.series.txPerS.length).toBeGreaterThan(0);
      expect(phase.histogram.counts.reduce((a, b) => a + b, 0)).toBe(phase.transactions.committed + phase.transactions.aborted);
      // The 30 transfers of warm-up ran first on the same cluster, apart from the 120 measured, with figures of their own.
      expect(phase.transactions.total).toBe(120);
      expect(phase.warmup).toMatchObject({ requested: 30, transactions: 30, elapsedS: expect.any(Number), throughputTxPerS: expect.any(Number) });
      expect(phase.warmup?.cpuMsPerTx).toBeGreaterThan(0);
    }
    expect(Object.keys(report.ratios).sort()).toEqual(['cpuMsPerTx', 'oneClientP50OverFloor', 'p99Ms', 'throughputOverBareHttp', 'throughputOverNoBatching']);
    for (const ratio of Object.values(report.ratios)) expect(ratio).toMatchObject(ratioShape);
    // The unbatched run is only honest if the nodes were told: either they were, or the report says they were not.
    if (!report.noBatching?.noBatchingFlagPassed) expect(report.ratios.throughputOverNoBatching?.note).toMatch(/no --no-batching/);

    const page = fs.readFileSync(html, 'utf8');
    expect(page.match(/<svg /g)).toHaveLength(3);
    for (const title of ['Committed transactions per second', 'Transaction latency', 'CPU per committed transaction']) expect(page).toContain(title);
    // Self-contained: nothing fetched from elsewhere.
    expect(page).not.toMatch(/<script|<link|src=|href="http/);
  }, BENCH_WAIT_MS_MAX + 10_000);
});

describe('twopc bench --rss-check', () => {
  it("reads every node's memory with the load drained after a tenth of the run and at its end, a series under load between, and judges the growth", async () => {
    const r = await runBenchCli(['bench', '--rss-check', '--transactions', '400', '--concurrency', '4', '--participants', '2', '--one-client', '5', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.trim()) as BenchReport;
    const nodes = ['coordinator', 'p1', 'p2'];
    // Only the batched run: the unbatched comparison is left out of an RSS check.
    expect(report.noBatching).toBeNull();
    expect(report.transactions.total).toBe(400);
    // No warm-up by default in an RSS check: its readings count transfers from the cluster's start.
    expect(report.warmup).toMatchObject({ requested: 0, transactions: 0, cpuMsPerTx: null });
    for (const perProcess of [report.rssMb, report.rssMbAtSample!, report.heapUsedMb, report.heapUsedMbAtSample!, report.rssGrowth!]) {
      expect(Object.keys(perProcess).sort()).toEqual([...nodes, 'max'].sort());
      for (const name of nodes) expect(perProcess[name]).toBeGreaterThan(0);
    }
    // The growth is each process's own end over its own sample, and the ratio judges the largest.
    for (const name of nodes) expect(report.rssGrowth![name]).toBeCloseTo(report.rssMb[name]! / report.rssMbAtSample![name]!, 2);
    expect(report.rssGrowth!.max).toBe(Math.max(...nodes.map((n) => report.rssGrowth![n]!)));
    expect(report.ratios.rssGrowth).toMatchObject({ ...ratioShape, target: 1.2, comparison: 'atMost' });
    // The ratio is the largest growth (kept to 0.001) rounded to 0.01: off by at most half of that. toBeCloseTo(…, 2)
    // wanted less than 0.005 and failed on a half rounded up (1.045 -> 1.05 in npm test, 1.055 -> 1.06 in CI).
    expect(Math.abs(report.ratios.rssGrowth!.value! - report.rssGrowth!.max!)).toBeLessThanOrEqual(0.005 + 1e-9);
    expect(report.ratios.rssGrowth!.note).toBeUndefined();

    // The two points compared are taken with nothing in flight, after exactly 40 and 400 transactions;
    // between them the readings under load climb in transactions, so a leak would show as a slope.
    const series = report.memorySeries!;
    const quiescent = series.filter((m) => m.quiescent);
    expect(quiescent.map((m) => m.transactions)).toEqual([40, 400]);
    expect(quiescent[0]!.rssMb).toEqual(report.rssMbAtSample);
    expect(quiescent[1]!.rssMb).toEqual(report.rssMb);
    const underLoad = series.filter((m) => !m.quiescent);
    expect(underLoad.length).toBeGreaterThanOrEqual(2);
    const counts = series.map((m) => m.transactions);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    for (const m of series) {
      expect(m.transactions).toBeGreaterThan(0);
      for (const name of nodes) {
        expect(m.rssMb[name]).toBeGreaterThan(0);
        expect(m.heapUsedMb[name]).toBeGreaterThan(0);
      }
    }
  }, BENCH_WAIT_MS_MAX + 10_000);
});

describe('twopc bench --recovery', () => {
  it('restarts a coordinator and a participant on a backlog written to their WALs, and both settle all of it', async () => {
    const r = await runBenchCli(['bench', '--recovery', '--recovery-transactions', '200', '--participants', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.trim()) as RecoveryReport;
    for (const who of ['coordinator', 'participant'] as const) {
      expect(report[who]).toMatchObject({ backlog: 200, settled: true, readyMs: expect.any(Number), settleMs: expect.any(Number), met: expect.any(Boolean) });
    }
    // The backlog was real: the coordinator's decided commits reached the participants, and the
    // in-doubt participant learned (by asking) that the coordinator never decided: presumed abort.
    expect(report.coordinator.outcomeSample).toEqual({ committed: 100 });
    expect(report.participant.outcomeSample).toEqual({ aborted: 100 });
    expect(report.method).toMatch(/real log API/);
  }, BENCH_WAIT_MS_MAX + 10_000);
});
