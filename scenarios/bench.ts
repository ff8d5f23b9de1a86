/**
 * `twopc bench`: throughput and latency of whole transactions on real
 * processes (a coordinator and P participants, real WALs, real HTTP), with the
 * machine's own limits measured in the same run, so the figures read as ratios
 * rather than as absolute numbers from a noisy shared machine:
 *
 * - raw write+fdatasync latency (a 2PC commit forces three records in sequence:
 *   PREPARED at the participants, the DECISION, COMMITTED at the participants);
 * - raw HTTP round trips on loopback with keep-alive, at the same concurrency
 *   (a two-branch 2PC transaction is one client request plus four internal ones).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ProcessCluster } from './harness.ts';
import { createPrng } from './prng.ts';
import { accounts, openingTransaction, randomTransfer, type BankOptions } from './workloads/bank.ts';

type Transfer = NonNullable<ReturnType<typeof randomTransfer>>;

export interface BenchOptions {
  readonly transactions: number;
  readonly concurrency: number;
  readonly participants: number;
  readonly fsync: 'always' | 'group' | 'none';
  /** Stop issuing new transactions after this long, whatever the count. */
  readonly durationMaxMs?: number;
  readonly seed?: number;
  /** The participants' resource; `postgres` runs the key-value bench too, for figures side by side. */
  readonly resource?: 'kv' | 'postgres';
  /** With `resource: 'postgres'`: the server the bench makes its databases on (TWOPC_TEST_PG_URL by default). */
  readonly pgUrl?: string;
}

/** Where the accounts live and how a transfer is written for them: the key-value store or PostgreSQL. */
export interface BenchTarget {
  readonly resource: 'kv' | 'postgres';
  readonly participantArgsOf?: (name: string) => readonly string[];
  /** Funds every account; the cluster is running. */
  fund(coordinatorUrl: string, bank: BankOptions): Promise<void>;
  /** A transfer's body for POST /v1/transactions. */
  transfer(t: Transfer): unknown;
  /** Extra machine figures for this target, measured in the same run. */
  machine?(): Promise<Record<string, LatencySummary>>;
  close(): Promise<void>;
}

/** The key-value side of `bench --resource postgres`: the same run on the built-in store. */
export interface BesideFigures {
  readonly resource: 'kv' | 'postgres';
  readonly throughputTxPerS: number;
  readonly latency: LatencySummary;
  readonly transactions: BenchReport['transactions'];
}

export interface LatencySummary {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
}

export interface BenchReport {
  readonly options: BenchOptions;
  readonly resource: 'kv' | 'postgres';
  readonly transactions: { readonly total: number; readonly committed: number; readonly aborted: number; readonly errors: number };
  readonly throughputTxPerS: number;
  readonly latency: LatencySummary;
  readonly machine: {
    readonly fdatasync: LatencySummary;
    readonly httpRoundTrip: LatencySummary;
    readonly httpRequestsPerS: number;
    /** With PostgreSQL: a bare round trip, and a bare BEGIN/UPDATE/PREPARE TRANSACTION/COMMIT PREPARED cycle. */
    readonly postgres?: Record<string, LatencySummary>;
  };
  /** With `resource: 'postgres'`: the key-value store's figures from the same run. */
  readonly beside?: BesideFigures;
  readonly ratios: {
    /** Transaction p50 over the floor of three sequential fdatasyncs and five sequential round trips. */
    readonly latencyP50OverFloor: number;
    /** Transactions/s × 5 HTTP requests per transaction, over the bare HTTP rate at the same concurrency. */
    readonly httpUtilisation: number;
  };
}

const FSYNC_SAMPLES = 300;
const HTTP_SAMPLES = 4_000;
const DURATION_MAX_MS_DEFAULT = 120_000;

export function summarize(samplesMs: readonly number[]): LatencySummary {
  const s = [...samplesMs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { p50Ms: r(at(0.5)), p99Ms: r(at(0.99)), meanMs: r(mean) };
}

/** A bare write + fdatasync loop in `dir`, the floor for one forced record. */
export function measureFdatasync(dir: string, samples = FSYNC_SAMPLES): LatencySummary {
  const file = path.join(dir, 'fdatasync.probe');
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(256, 1);
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      fs.writeSync(fd, buf, 0, buf.length, i * buf.length);
      fs.fdatasyncSync(fd);
      times.push(performance.now() - t0);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  return summarize(times);
}

/** Bare HTTP POSTs with small JSON bodies over keep-alive on loopback, `concurrency` in flight. */
export async function measureHttp(concurrency: number, samples = HTTP_SAMPLES): Promise<{ rtt: LatencySummary; perS: number }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(Buffer.concat(chunks).length > 0 ? '{"vote":"yes"}' : '{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const body = JSON.stringify({ txId: 'tx-1-1', coordinator: 'http://127.0.0.1:1', participants: [] });
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(body);
    });
  const times: number[] = [];
  let issued = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < samples) {
        issued++;
        const s = performance.now();
        await once();
        times.push(performance.now() - s);
      }
    }),
  );
  const elapsedS = (performance.now() - t0) / 1000;
  agent.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return { rtt: summarize(times), perS: Math.round(times.length / elapsedS) };
}

/** The built-in key-value store: funded by one transaction of puts, transfers as `add` ops. */
export const kvTarget: BenchTarget = {
  resource: 'kv',
  fund: async (coordinatorUrl, bank) => {
    const funded = await postTransaction(coordinatorUrl, openingTransaction(bank));
    if (funded.outcome !== 'committed') throw new Error(`could not fund the accounts: ${JSON.stringify(funded)}`);
  },
  transfer: (t) => t.body,
  close: async () => undefined,
};

async function postTransaction(coordinatorUrl: string, body: unknown): Promise<{ outcome?: string }> {
  const res = await fetch(`${coordinatorUrl}/v1/transactions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return (await res.json()) as { outcome?: string };
}

/**
 * The bench. With `resource: 'postgres'` the participants run on PostgreSQL databases made
 * for the run (scenarios/bench-postgres.ts), and the same run repeats on the key-value store,
 * so the two sets of figures come from one machine at one time.
 */
export async function runBench(options: BenchOptions, log: (line: string) => void = () => undefined): Promise<BenchReport> {
  if (options.resource !== 'postgres') return runBenchOn(options, kvTarget, log);
  const { postgresTarget } = await import('./bench-postgres.ts');
  const target = await postgresTarget(options, log);
  let report: BenchReport;
  try {
    report = await runBenchOn(options, target, log);
  } finally {
    await target.close();
  }
  log('the same run on the key-value store, for comparison…');
  const kv = await runBenchOn({ ...options, resource: 'kv' }, kvTarget, log);
  return { ...report, beside: { resource: 'kv', throughputTxPerS: kv.throughputTxPerS, latency: kv.latency, transactions: kv.transactions } };
}

async function runBenchOn(options: BenchOptions, target: BenchTarget, log: (line: string) => void): Promise<BenchReport> {
  const dataDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twopc-bench-'));
  const cluster = await ProcessCluster.create({
    participants: options.participants,
    dataDir,
    fsync: options.fsync,
    lockWaitMs: 200,
    env: { TWOPC_LOG_LEVEL: 'warn' },
    ...(target.participantArgsOf !== undefined && { participantArgsOf: target.participantArgsOf }),
  });
  try {
    log('measuring the machine: fdatasync and bare HTTP…');
    const fdatasync = measureFdatasync(dataDir);
    const httpBare = await measureHttp(options.concurrency);

    const postgres = await target.machine?.();

    log(`starting a coordinator and ${options.participants} participants on ${target.resource} (fsync ${options.fsync})…`);
    await cluster.start();
    const names = cluster.participants.map((p) => p.name);
    const bank = benchBank(names, options.concurrency);
    const coordinatorUrl = cluster.coordinator.url;
    const post = (body: unknown) => postTransaction(coordinatorUrl, body);
    await target.fund(coordinatorUrl, bank);

    // Transfers between two participants only, so every transaction is a real two-phase one.
    const all = accounts(bank);
    const rng = createPrng(options.seed ?? 1);
    const latencies: number[] = [];
    let committed = 0;
    let aborted = 0;
    let errors = 0;
    let issued = 0;
    const deadline = performance.now() + (options.durationMaxMs ?? DURATION_MAX_MS_DEFAULT);
    log(`running ${options.transactions} transfers, ${options.concurrency} at a time…`);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (issued < options.transactions && performance.now() < deadline) {
          issued++;
          let t = randomTransfer(rng, all, 10);
          for (let i = 0; i < 8 && t && t.from.participant === t.to.participant; i++) t = randomTransfer(rng, all, 10);
          if (!t) continue;
          const s = performance.now();
          try {
            const r = await post(target.transfer(t));
            latencies.push(performance.now() - s);
            if (r.outcome === 'committed') committed++;
            else aborted++;
          } catch {
            errors++;
          }
        }
      }),
    );
    const elapsedS = (performance.now() - t0) / 1000;
    const latency = summarize(latencies);
    const throughput = Math.round(((committed + aborted) / elapsedS) * 10) / 10;
    const floorMs = 3 * fdatasync.p50Ms + 5 * httpBare.rtt.p50Ms;
    return {
      options,
      resource: target.resource,
      transactions: { total: committed + aborted + errors, committed, aborted, errors },
      throughputTxPerS: throughput,
      latency,
      machine: { fdatasync, httpRoundTrip: httpBare.rtt, httpRequestsPerS: httpBare.perS, ...(postgres !== undefined && { postgres }) },
      ratios: {
        latencyP50OverFloor: Math.round((latency.p50Ms / floorMs) * 100) / 100,
        httpUtilisation: Math.round(((throughput * 5) / httpBare.perS) * 100) / 100,
      },
    };
  } finally {
    await cluster.stop();
    await fs.promises.rm(dataDir, { recursive: true, force: true });
  }
}

/** Accounts for the bench: enough that most transfers do not contend for the same key (or row). */
export function benchBank(participants: readonly string[], concurrency: number): BankOptions {
  return { participants, accountsPerParticipant: Math.max(20, concurrency * 4), openingBalance: 1_000_000 };
}

export function formatReport(r: BenchReport): string {
  const l = (s: { p50Ms: number; p99Ms: number }) => `p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms`;
  const beside = r.beside;
  return [
    `twopc bench: ${r.transactions.total} transfers over ${r.options.participants} participants on ${r.resource}, concurrency ${r.options.concurrency}, fsync ${r.options.fsync}`,
    `  committed ${r.transactions.committed}, aborted ${r.transactions.aborted}, errors ${r.transactions.errors}`,
    `  throughput        ${r.throughputTxPerS} tx/s`,
    `  latency           ${l(r.latency)}`,
    ...(beside
      ? [
          `the same run on ${beside.resource}:`,
          `  throughput        ${beside.throughputTxPerS} tx/s   (${r.resource}/${beside.resource} ${Math.round((r.throughputTxPerS / Math.max(beside.throughputTxPerS, 0.1)) * 100) / 100})`,
          `  latency           ${l(beside.latency)}`,
        ]
      : []),
    `machine, same run:`,
    `  write+fdatasync   ${l(r.machine.fdatasync)}`,
    `  bare HTTP         ${l(r.machine.httpRoundTrip)}, ${r.machine.httpRequestsPerS} req/s at concurrency ${r.options.concurrency}`,
    ...Object.entries(r.machine.postgres ?? {}).map(([k, v]) => `  ${`pg ${k}`.padEnd(17)} ${l(v)}`),
    `ratios:`,
    `  latency p50 / (3 fdatasync + 5 round trips)   ${r.ratios.latencyP50OverFloor}`,
    `  HTTP used (5 requests per tx) / bare HTTP     ${r.ratios.httpUtilisation}`,
  ].join('\n');
}
