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
import { createLoadClient, type LoadClientKind } from './load-client.ts';
import { processCpuMs } from './bench-probes.ts';
import { HaCluster } from './ha-kit.ts';
import { ProcessCluster } from './harness.ts';

export interface HaBenchOptions {
  readonly transactions: number;
  readonly concurrency: number;
  readonly participants: number;
  readonly fsync: 'always' | 'group' | 'none';
  /** The clients' HTTP client (load-client.ts): bare node:http by default, as `twopc bench`'s. */
  readonly loadClient?: LoadClientKind;
}

export interface HaBenchFigures {
  readonly throughputTxPerS: number;
  readonly latency: { readonly p50Ms: number; readonly p95Ms: number; readonly p99Ms: number };
  readonly committed: number;
  /** User plus system CPU of every node of the run (coordinators, participants, etcd), per transaction. */
  readonly cpuMsPerTx: number;
  /** The etcd log only: its transactions per client transaction, and records per etcd transaction (group commit). */
  readonly etcd?: { readonly txnsPerTx: number; readonly recordsPerTxn: number };
}

/** What a run reads of its nodes just before and just after the measured transfers. */
interface Probe {
  readonly cpuMs: number;
  readonly etcdTxns?: number;
  readonly etcdRecords?: number;
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

/** Summed CPU of the processes with these pids (a pid without /proc counts 0: the figure is then low, never made up). */
const cpuMsOf = (pids: readonly (number | undefined)[]): number => pids.reduce<number>((sum, pid) => sum + ((pid === undefined ? undefined : processCpuMs(pid)) ?? 0), 0);

/** A counter's value in Prometheus text, or undefined when the node does not expose it. */
function counterIn(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

const round = (n: number) => Math.round(n * 100) / 100;
const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

async function drive(
  url: string,
  participants: readonly string[],
  transactions: number,
  concurrency: number,
  loadClient: LoadClientKind | undefined,
  probe: () => Promise<Probe>,
): Promise<HaBenchFigures> {
  const http = createLoadClient(loadClient, { timeoutMs: REQUEST_TIMEOUT_MS, socketsMax: concurrency });
  const latencies: number[] = [];
  let next = 0;
  let committed = 0;
  const body = (worker: number, i: number) => ({
    branches: participants.map((p) => ({ participant: p, ops: [{ op: 'put', key: `w${worker}`, value: i }] })),
  });
  try {
    for (let i = 0; i < WARMUP_TRANSACTIONS; i++) await http.post(`${url}/v1/transactions`, body(0, i));
    const before = await probe();
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
    const after = await probe();
    latencies.sort((a, b) => a - b);
    const txns = (after.etcdTxns ?? 0) - (before.etcdTxns ?? 0);
    const records = (after.etcdRecords ?? 0) - (before.etcdRecords ?? 0);
    return {
      throughputTxPerS: Math.round(transactions / elapsedS),
      latency: { p50Ms: round(quantile(latencies, 0.5)), p95Ms: round(quantile(latencies, 0.95)), p99Ms: round(quantile(latencies, 0.99)) },
      committed,
      cpuMsPerTx: round((after.cpuMs - before.cpuMs) / transactions),
      ...(after.etcdTxns !== undefined && { etcd: { txnsPerTx: round(txns / transactions), recordsPerTxn: txns === 0 ? 0 : round(records / txns) } }),
    };
  } finally {
    http.close();
  }
}

const line = (f: HaBenchFigures) => `${f.throughputTxPerS} tx/s, p50 ${f.latency.p50Ms} ms, p95 ${f.latency.p95Ms} ms, p99 ${f.latency.p99Ms} ms, CPU ${f.cpuMsPerTx} ms per tx`;

export async function runHaBench(o: HaBenchOptions, say: (line: string) => void): Promise<HaBenchReport> {
  const dataDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twopc-bench-ha-'));
  let localWal: HaBenchFigures;
  const single = await ProcessCluster.create({ participants: o.participants, dataDir: path.join(dataDir, 'single'), fsync: o.fsync, env: NODE_ENV });
  try {
    await single.start();
    say(`bench --ha: ${o.transactions} transfers, concurrency ${o.concurrency}, ${o.participants} participants, fsync ${o.fsync}`);
    const probe = () => Promise.resolve({ cpuMs: cpuMsOf(single.nodes.map((n) => n.pid)) });
    localWal = await drive(single.coordinator.url, single.participants.map((p) => p.name), o.transactions, o.concurrency, o.loadClient, probe);
    say(`  local WAL:  ${line(localWal)}`);
  } finally {
    await single.stop();
  }
  const ha = await HaCluster.start({ prefix: 'bench', participants: o.participants, env: NODE_ENV });
  let etcdLog: HaBenchFigures;
  try {
    const leader = await ha.leader();
    if (leader === undefined) throw new Error('no coordinator of the HA group leads');
    const metrics = createHttpClient({ timeoutMs: REQUEST_TIMEOUT_MS });
    // The group commit's figures come from the leader's own counters; the CPU is every node's, etcd's too.
    const probe = async (): Promise<Probe> => {
      const text = String((await metrics.get<string>(`${leader.url}/metrics`)).data);
      const cpuMs = cpuMsOf([...ha.nodes.map((n) => n.pid), ...ha.etcd.members.map((m) => m.pid)]);
      return { cpuMs, etcdTxns: counterIn(text, 'twopc_coordinator_etcd_txns_total') ?? 0, etcdRecords: counterIn(text, 'twopc_coordinator_etcd_records_total') ?? 0 };
    };
    try {
      etcdLog = await drive(leader.url, ha.names, o.transactions, o.concurrency, o.loadClient, probe);
    } finally {
      metrics.close();
    }
    say(`  etcd log:   ${line(etcdLog)}; ${etcdLog.etcd?.txnsPerTx ?? '?'} etcd txns per tx, ${etcdLog.etcd?.recordsPerTxn ?? '?'} records per etcd txn`);
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
