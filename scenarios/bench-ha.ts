/**
 * `twopc bench --ha`: the same transfers through a coordinator whose decision
 * log is its local WAL, and through the leader of an HA group whose log is in
 * etcd (one member, group commit, fenced transactions), in one run on this
 * machine. Figures are meaningful as ratios of one run.
 *
 * Each of `concurrency` clients sends whole transactions (`POST /v1/transactions`
 * with branches) back to back, each on keys of its own, so no lock conflicts
 * interfere; latency is the client's round trip.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHttpClient } from '../shared/http/client.ts';
import { HaCluster } from './ha-kit.ts';
import { ProcessCluster } from './harness.ts';

export interface HaBenchOptions {
  readonly transactions: number;
  readonly concurrency: number;
  readonly participants: number;
  readonly fsync: 'always' | 'group' | 'none';
}

export interface HaBenchFigures {
  readonly throughputTxPerS: number;
  readonly latency: { readonly p50Ms: number; readonly p95Ms: number; readonly p99Ms: number };
  readonly committed: number;
}

export interface HaBenchReport {
  readonly localWal: HaBenchFigures;
  readonly etcdLog: HaBenchFigures;
  /** etcd log ÷ local WAL. */
  readonly ratios: { readonly throughput: number; readonly p50: number; readonly p99: number };
  readonly options: HaBenchOptions;
}

/** A request slower than this counts as failed; the bench stops rather than wait on a stuck node. */
const REQUEST_TIMEOUT_MS = 30_000;
/** As the other benches: per-message debug lines would cost more than the logs under test. */
const NODE_ENV = { TWOPC_LOG_LEVEL: 'warn' } as const;
/** Transactions of warm-up before the clock starts (tsx compiles, connections open). */
const WARMUP_TRANSACTIONS = 50;

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

async function drive(url: string, participants: readonly string[], transactions: number, concurrency: number): Promise<HaBenchFigures> {
  const http = createHttpClient({ timeoutMs: REQUEST_TIMEOUT_MS, socketsPerHostMax: concurrency });
  const latencies: number[] = [];
  let next = 0;
  let committed = 0;
  const body = (worker: number, i: number) => ({
    branches: participants.map((p) => ({ participant: p, ops: [{ op: 'put', key: `w${worker}`, value: i }] })),
  });
  try {
    for (let i = 0; i < WARMUP_TRANSACTIONS; i++) await http.post(`${url}/v1/transactions`, body(0, i));
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        while (next < transactions) {
          const i = next++;
          const t0 = performance.now();
          const res = await http.post<{ outcome?: string }>(`${url}/v1/transactions`, body(worker, i));
          latencies.push(performance.now() - t0);
          if (res.status === 200 && res.data.outcome === 'committed') committed++;
        }
      }),
    );
    const elapsedS = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const round = (n: number) => Math.round(n * 100) / 100;
    return {
      throughputTxPerS: Math.round(transactions / elapsedS),
      latency: { p50Ms: round(quantile(latencies, 0.5)), p95Ms: round(quantile(latencies, 0.95)), p99Ms: round(quantile(latencies, 0.99)) },
      committed,
    };
  } finally {
    http.close();
  }
}

export async function runHaBench(o: HaBenchOptions, say: (line: string) => void): Promise<HaBenchReport> {
  const dataDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twopc-bench-ha-'));
  let localWal: HaBenchFigures;
  const single = await ProcessCluster.create({ participants: o.participants, dataDir: path.join(dataDir, 'single'), fsync: o.fsync, env: NODE_ENV });
  try {
    await single.start();
    say(`bench --ha: ${o.transactions} transfers, concurrency ${o.concurrency}, ${o.participants} participants, fsync ${o.fsync}`);
    localWal = await drive(single.coordinator.url, single.participants.map((p) => p.name), o.transactions, o.concurrency);
    say(`  local WAL:  ${localWal.throughputTxPerS} tx/s, p50 ${localWal.latency.p50Ms} ms, p99 ${localWal.latency.p99Ms} ms`);
  } finally {
    await single.stop();
  }
  const ha = await HaCluster.start({ prefix: 'bench', participants: o.participants, env: NODE_ENV });
  let etcdLog: HaBenchFigures;
  try {
    const leader = await ha.leader();
    if (leader === undefined) throw new Error('no coordinator of the HA group leads');
    etcdLog = await drive(leader.url, ha.names, o.transactions, o.concurrency);
    say(`  etcd log:   ${etcdLog.throughputTxPerS} tx/s, p50 ${etcdLog.latency.p50Ms} ms, p99 ${etcdLog.latency.p99Ms} ms`);
  } finally {
    await ha.close();
    await fs.promises.rm(dataDir, { recursive: true, force: true });
  }
  const ratio = (a: number, b: number) => (b === 0 ? 0 : Math.round((a / b) * 100) / 100);
  return {
    localWal,
    etcdLog,
    ratios: { throughput: ratio(etcdLog.throughputTxPerS, localWal.throughputTxPerS), p50: ratio(etcdLog.latency.p50Ms, localWal.latency.p50Ms), p99: ratio(etcdLog.latency.p99Ms, localWal.latency.p99Ms) },
    options: o,
  };
}
