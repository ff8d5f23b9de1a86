/**
 * `twopc bench`: throughput and latency of whole transactions on real
 * processes (a coordinator and P participants, real WALs, real HTTP), with the
 * machine's own limits measured in the same run, so the figures read as ratios
 * rather than as absolute numbers from a noisy shared machine:
 *
 * - raw write+fdatasync latency (a 2PC commit forces three records in sequence:
 *   PREPARED at the participants, the DECISION, COMMITTED at the participants);
 * - raw HTTP round trips on loopback with keep-alive: one at a time for the
 *   floor (a transaction is three sequential round trips: the client's request,
 *   the prepares, the commits), and at the bench's concurrency for the rate.
 *
 * In one run it measures the batched path (the default) and then, on a fresh
 * cluster, the same load with `--no-batching` on every node, so the two read as
 * a ratio; then one client alone for the latency floor. For each node process it
 * reports CPU ms per transaction and RSS (from /proc), and HTTP requests and
 * forced writes per transaction (from the nodes' /metrics counters).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  machineInfo,
  measureFdatasync,
  measureHttp,
  measureHttpFloor,
  sampleNodes,
  summarize,
  type LatencySummary,
  type MachineInfo,
  type NodeRef,
  type NodeSample,
} from './bench-probes.ts';
import { CLI, ProcessCluster } from './harness.ts';
import { LOAD_CLIENT_DEFAULT, RSS_CHECK_RUN_MS_MAX, WARMUP_TRANSACTIONS_DEFAULT } from './bench-cli.ts';
import { createPrng } from './prng.ts';
import { accounts, openingTransaction, randomTransfer, type BankOptions } from './workloads/bank.ts';
import { createProgress } from './progress.ts';
import { createLoadClient, type LoadClient, type LoadClientKind } from './load-client.ts';

export { measureFdatasync, measureHttp, summarize, type LatencySummary } from './bench-probes.ts';

type Transfer = NonNullable<ReturnType<typeof randomTransfer>>;

export interface BenchOptions {
  readonly transactions: number;
  readonly concurrency: number;
  readonly participants: number;
  readonly fsync: 'always' | 'group' | 'none';
  /** Stop issuing new transactions after this long, whatever the count (`--duration`). */
  readonly durationMaxMs?: number;
  readonly seed?: number;
  /** The participants' resource; `postgres` runs the key-value bench too, for figures side by side. */
  readonly resource?: 'kv' | 'postgres';
  /** With `resource: 'postgres'`: the server the bench makes its databases on (TWOPC_TEST_PG_URL by default). */
  readonly pgUrl?: string;
  /** False: every node runs `--no-batching` and there is no second, unbatched run to compare with. */
  readonly batching?: boolean;
  /** With batching on: also run the same load with `--no-batching` (default true). */
  readonly compareNoBatching?: boolean;
  /** Sequential transactions for the one-client latency (default ONE_CLIENT_TRANSACTIONS, at most `transactions`). */
  readonly oneClientTransactions?: number;
  /**
   * `--rss-check`: run this many transactions, let the load drain and read every node's memory,
   * then run the rest and read it again (20,000 of 200,000); in between, a series under load.
   * Without `durationMaxMs` the run may then last up to RSS_CHECK_RUN_MS_MAX, not the usual 120 s.
   */
  readonly rssSampleAfter?: number;
  /** Transactions run before each measured phase, not measured (default WARMUP_TRANSACTIONS_DEFAULT, none with `rssSampleAfter`; at most `transactions`; 0: none). */
  readonly warmupTransactions?: number;
  /** Draw a progress bar of each measured run on stderr, when it is a terminal (the CLI without --json). */
  readonly progress?: boolean;
  /**
   * The bench's clients' HTTP client for POST /v1/transactions (load-client.ts): bare node:http, as the
   * floor's round trips are (the default), or `axios`, the services' own client. The report's options
   * always name it.
   */
  readonly loadClient?: LoadClientKind;
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
  readonly transactions: TxCounts;
}

export interface TxCounts {
  readonly total: number;
  readonly committed: number;
  readonly aborted: number;
  readonly errors: number;
}

/** Per node process, keyed by node name (coordinator, p1, ...), with `total` over all of them. */
export type PerProcess = Readonly<Record<string, number>>;

/** One load phase on one cluster: the batched run, or the unbatched one. */
export interface PhaseFigures {
  readonly batching: boolean;
  /** False when the nodes do not know `--no-batching` yet, so the "unbatched" run took the default path. */
  readonly noBatchingFlagPassed: boolean;
  readonly transactions: TxCounts;
  readonly elapsedS: number;
  /** Committed transactions per second. */
  readonly throughputTxPerS: number;
  readonly latency: LatencySummary;
  /** CPU (user+system) of each node process per committed transaction, and their sum. */
  readonly cpuMsPerTx: PerProcess;
  /** RSS of each node process at the end of the phase, and the largest. */
  readonly rssMb: PerProcess;
  /** HTTP requests the nodes received per committed transaction (null: the nodes do not count them). */
  readonly httpRequestsPerTx: number | null;
  /** fdatasync calls on every node's WAL per committed transaction (null: the nodes do not count them). */
  readonly forcedWritesPerTx: number | null;
  /** Of those, the ones that held the node's event loop rather than run in libuv's thread pool (wal/options.ts `blockingSyncMsMax`). */
  readonly forcedWritesBlockingPerTx: number | null;
  /** The bench client's own CPU per transaction (not in cpuMsPerTx: it stands for the users). */
  readonly clientCpuMsPerTx: number;
  /** Committed transactions per second over the run, one entry per `bucketMs`. */
  readonly series: { readonly bucketMs: number; readonly txPerS: readonly number[] };
  /** Latencies in buckets whose upper bounds grow by a fixed factor. */
  readonly histogram: { readonly upperMs: readonly number[]; readonly counts: readonly number[] };
  /** V8 heap in use in each node process at the end of the phase (not after a GC), and the largest. */
  readonly heapUsedMb: PerProcess;
  /** The warm-up before the measured run, on the same cluster: what a node costs while it starts. */
  readonly warmup?: WarmupFigures;
  /** With `rssSampleAfter`: each node's RSS once that many transactions had finished and the load had drained. */
  readonly rssMbAtSample?: PerProcess;
  /** With `rssSampleAfter`: each node's heap in use at the same moment. */
  readonly heapUsedMbAtSample?: PerProcess;
  /** With `rssSampleAfter`: each node's RSS at the end over its RSS at the sample, and the largest (`max`). */
  readonly rssGrowth?: PerProcess;
  /** With `rssSampleAfter`: every node's memory every 1/MEMORY_SERIES_POINTS of the run, so a leak shows as a slope. */
  readonly memorySeries?: readonly MemorySample[];
}

/** The warm-up's own figures: its transactions are not in the measured ones. */
export interface WarmupFigures {
  /** Transfers asked for; `transactions` is fewer when the time bound (WARMUP_MS_MAX, or `--duration`) stopped it. */
  readonly requested: number;
  readonly transactions: number;
  readonly elapsedS: number;
  readonly throughputTxPerS: number;
  /** CPU of all node processes per committed warm-up transaction (null: none committed, or some node's CPU unreadable). */
  readonly cpuMsPerTx: number | null;
}

/** One reading of every node's memory during an `--rss-check` run. */
export interface MemorySample {
  /** Measured transactions finished when it was taken. */
  readonly transactions: number;
  /** True: the load had drained (the two points the target compares); false: taken under load. */
  readonly quiescent: boolean;
  readonly rssMb: PerProcess;
  readonly heapUsedMb: PerProcess;
}

export interface Ratio {
  readonly value: number | null;
  readonly target: number;
  readonly comparison: 'atLeast' | 'atMost';
  readonly met: boolean;
  readonly note?: string;
}

export interface BenchReport extends Omit<PhaseFigures, 'batching'> {
  readonly options: BenchOptions;
  readonly resource: 'kv' | 'postgres';
  readonly batching: boolean;
  /** The same load with `--no-batching`, measured in the same run (null when not run). */
  readonly noBatching: PhaseFigures | null;
  /** One client, one transaction at a time, on the batched cluster. */
  readonly oneClient: { readonly transactions: number; readonly latency: LatencySummary };
  readonly machine: MachineInfo & {
    readonly fdatasync: LatencySummary;
    /** One bare round trip at a time (the floor's). */
    readonly httpRoundTrip: LatencySummary;
    /** Bare node:http requests per second at the bench's concurrency (client and server in one process). */
    readonly httpRequestsPerS: number;
    readonly httpCpuUsPerRequest: number;
    /** The same through the services' axios client. */
    readonly axiosRequestsPerS: number;
    readonly axiosCpuUsPerRequest: number;
    /** 3 sequential fdatasyncs + 3 sequential bare round trips (p50s). */
    readonly floorMs: number;
    /** With PostgreSQL: a bare round trip, and a bare BEGIN/UPDATE/PREPARE TRANSACTION/COMMIT PREPARED cycle. */
    readonly postgres?: Record<string, LatencySummary>;
  };
  /** With `resource: 'postgres'`: the key-value store's figures from the same run. */
  readonly beside?: BesideFigures;
  readonly ratios: Readonly<Record<string, Ratio>>;
}

const DURATION_MAX_MS_DEFAULT = 120_000;
/** Readings of every node's memory under load in an `--rss-check` run (plus the two quiescent ones). */
const MEMORY_SERIES_POINTS = 20;
export const ONE_CLIENT_TRANSACTIONS = 1_000;
/** The warm-up ends after this long whatever its count, so a slow resource (PostgreSQL) does not wait for it. */
const WARMUP_MS_MAX = 30_000;
/** Added to the run's seed for the warm-up's own transfers. */
const WARMUP_SEED_OFFSET = 1_000_003;
const REQUEST_TIMEOUT_MS = 30_000;
/** Points in the throughput-over-time series; the bucket widens for long runs. */
const SERIES_POINTS_MAX = 120;
const SERIES_BUCKET_MS_MIN = 250;
const HISTOGRAM_FIRST_UPPER_MS = 0.5;
const HISTOGRAM_FACTOR = 1.25;
const HISTOGRAM_BUCKETS = 48;

/**
 * The warm-up's length: `--warmup` when given, else WARMUP_TRANSACTIONS_DEFAULT; at most the run's own count.
 * An `--rss-check` run has none by default: its first reading is after `rssSampleAfter` transfers of the
 * cluster's life, which is what its target (and every reading recorded before session 10) means.
 */
function warmupCount(options: BenchOptions): number {
  const asked = options.warmupTransactions ?? (options.rssSampleAfter !== undefined ? 0 : WARMUP_TRANSACTIONS_DEFAULT);
  return Math.min(asked, options.transactions);
}

/** The issue's targets (issue 12), one place. */
export const TARGETS = {
  throughputOverBareHttp: 1 / 6,
  throughputOverNoBatching: 4,
  p99Ms: 100,
  oneClientP50OverFloor: 3,
  cpuMsPerTx: 1,
  rssGrowth: 1.2,
} as const;

/** The built-in key-value store: funded by one transaction of puts, transfers as `add` ops. */
export const kvTarget: BenchTarget = {
  resource: 'kv',
  fund: async (coordinatorUrl, bank) => {
    const client = createLoadClient(LOAD_CLIENT_DEFAULT, { timeoutMs: REQUEST_TIMEOUT_MS, socketsMax: 1 });
    try {
      const funded = await postTransaction(client, coordinatorUrl, openingTransaction(bank));
      if (funded.outcome !== 'committed') throw new Error(`could not fund the accounts: ${JSON.stringify(funded)}`);
    } finally {
      client.close();
    }
  },
  transfer: (t) => t.body,
  close: async () => undefined,
};

async function postTransaction(client: LoadClient, coordinatorUrl: string, body: unknown): Promise<{ outcome?: string }> {
  const res = await client.post<{ outcome?: string }>(`${coordinatorUrl}/v1/transactions`, body);
  if (res.status !== 200) throw new Error(`POST /v1/transactions answered ${res.status}: ${JSON.stringify(res.data)}`);
  return res.data;
}

let noBatchingKnown: boolean | undefined;

/** Whether the nodes know `--no-batching` (helper "wire" adds it); asked once, from their --help. */
export function nodesKnowNoBatching(): boolean {
  if (noBatchingKnown === undefined) {
    const help = (role: string) =>
      spawnSync(process.execPath, ['--import', 'tsx', CLI, role, '--help'], { encoding: 'utf8', timeout: 60_000 }).stdout ?? '';
    noBatchingKnown = help('coordinator').includes('--no-batching') && help('participant').includes('--no-batching');
  }
  return noBatchingKnown;
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
  const kv = await runBenchOn({ ...options, resource: 'kv', compareNoBatching: false }, kvTarget, log);
  return { ...report, beside: { resource: 'kv', throughputTxPerS: kv.throughputTxPerS, latency: kv.latency, transactions: kv.transactions } };
}

async function runBenchOn(asked: BenchOptions, target: BenchTarget, log: (line: string) => void): Promise<BenchReport> {
  // The report names the client whether or not it was asked for.
  const options: BenchOptions = { ...asked, loadClient: asked.loadClient ?? LOAD_CLIENT_DEFAULT };
  const batching = options.batching !== false;
  const flagKnown = nodesKnowNoBatching();
  if (!flagKnown) log('these nodes have no --no-batching flag yet: the unbatched run takes the default path (marked in the report)');
  const probeDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twopc-bench-probe-'));
  let machine: BenchReport['machine'];
  try {
    log('measuring the machine: fdatasync, bare HTTP one at a time and at the bench concurrency, the axios client…');
    const fdatasync = measureFdatasync(probeDir);
    const httpRoundTrip = await measureHttpFloor();
    const bare = await measureHttp(options.concurrency);
    const viaAxios = await measureHttp(options.concurrency, undefined, 'axios');
    const postgres = await target.machine?.();
    machine = {
      ...machineInfo(),
      fdatasync,
      httpRoundTrip,
      httpRequestsPerS: bare.perS,
      httpCpuUsPerRequest: bare.cpuUsPerRequest,
      axiosRequestsPerS: viaAxios.perS,
      axiosCpuUsPerRequest: viaAxios.cpuUsPerRequest,
      floorMs: round2(3 * fdatasync.p50Ms + 3 * httpRoundTrip.p50Ms),
      ...(postgres !== undefined && { postgres }),
    };
  } finally {
    await fs.promises.rm(probeDir, { recursive: true, force: true });
  }

  const main = await runPhase(options, target, { batching, flagKnown, oneClient: true }, log);
  const noBatching =
    batching && options.compareNoBatching !== false ? (await runPhase(options, target, { batching: false, flagKnown, oneClient: false }, log)).figures : null;
  const { figures } = main;
  const { batching: _b, ...rest } = figures;
  return {
    ...rest,
    options,
    resource: target.resource,
    batching,
    noBatching,
    oneClient: main.oneClient,
    machine,
    ratios: ratiosOf(figures, noBatching, main.oneClient.latency, machine, options.transactions),
  };
}

interface PhaseResult {
  readonly figures: PhaseFigures;
  readonly oneClient: BenchReport['oneClient'];
}

/** One fresh cluster: warm up, the measured load at the bench's concurrency, then (optionally) one client alone. */
async function runPhase(
  options: BenchOptions,
  target: BenchTarget,
  mode: { batching: boolean; flagKnown: boolean; oneClient: boolean },
  log: (line: string) => void,
): Promise<PhaseResult> {
  const dataDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twopc-bench-'));
  const noBatchingArgs = !mode.batching && mode.flagKnown ? ['--no-batching'] : [];
  const cluster = await ProcessCluster.create({
    participants: options.participants,
    dataDir,
    fsync: options.fsync,
    lockWaitMs: 200,
    // Said both ways, so a TWOPC_BATCHING in the caller's environment cannot turn one run into the other.
    env: { TWOPC_LOG_LEVEL: 'warn', TWOPC_BATCHING: String(mode.batching) },
    coordinatorArgs: noBatchingArgs,
    participantArgs: noBatchingArgs,
    ...(target.participantArgsOf !== undefined && { participantArgsOf: target.participantArgsOf }),
  });
  const client = createLoadClient(options.loadClient, { timeoutMs: REQUEST_TIMEOUT_MS, socketsMax: options.concurrency });
  try {
    log(`starting a coordinator and ${options.participants} participants on ${target.resource} (fsync ${options.fsync}, ${mode.batching ? 'batching' : '--no-batching'})…`);
    await cluster.start();
    const bank = benchBank(
      cluster.participants.map((p) => p.name),
      options.concurrency,
    );
    const coordinatorUrl = cluster.coordinator.url;
    await target.fund(coordinatorUrl, bank);
    const post = (body: unknown) => postTransaction(client, coordinatorUrl, body);
    const all = accounts(bank);
    const load = new Load(options, target, all, post);
    const nodes = cluster.nodes.map((n) => ({ name: n.name, url: n.url, pid: n.pid }));

    // The warm-up draws its transfers from a generator of its own, so the measured ones do not depend on its length.
    const warmLoad = new Load({ ...options, seed: (options.seed ?? 1) + WARMUP_SEED_OFFSET }, target, all, post);
    const requested = warmupCount(options);
    const warmMsMax = Math.min(WARMUP_MS_MAX, options.durationMaxMs ?? WARMUP_MS_MAX);
    if (requested > 0) log(`warming up: ${requested} transfers, ${options.concurrency} at a time, for at most ${warmMsMax / 1000} s (not measured)…`);
    // Without a warm-up, the measured phase's first reading serves as both: one sampling of the nodes, not two.
    const cold = requested > 0 ? await sampleNodes(nodes) : undefined;
    const warmed = await warmLoad.run(requested, options.concurrency, warmMsMax);
    const before = await sampleNodes(nodes);
    const warmup = warmupFigures(requested, warmed, cold ?? before, before);
    if (requested > 0) log(`  warm-up: ${warmup.transactions} transfers in ${warmup.elapsedS} s, ${warmup.throughputTxPerS} tx/s, CPU ${warmup.cpuMsPerTx ?? 'n/a'} ms per tx`);
    log(`running ${options.durationMaxMs !== undefined ? `for ${options.durationMaxMs / 1000} s` : `${options.transactions} transfers`}, ${options.concurrency} at a time…`);
    const clientCpu0 = process.cpuUsage();
    const rssSampleAfter = mode.batching && options.rssSampleAfter !== undefined && options.rssSampleAfter < options.transactions ? options.rssSampleAfter : undefined;
    // A --duration run counts seconds, since its transaction count is only a ceiling; others count transactions.
    const byTime = options.durationMaxMs !== undefined;
    const progress = createProgress({
      label: `bench${mode.batching ? '' : ' (no batching)'}`,
      total: byTime ? Math.ceil((options.durationMaxMs ?? 0) / 1000) : options.transactions,
      json: options.progress !== true,
    });
    const onFinished = (finished: number, elapsedMs: number) => progress.update(byTime ? Math.floor(elapsedMs / 1000) : finished);
    const runMsMax = options.durationMaxMs ?? (rssSampleAfter !== undefined ? RSS_CHECK_RUN_MS_MAX : DURATION_MAX_MS_DEFAULT);
    const { measured, memory } =
      rssSampleAfter === undefined
        ? { measured: await load.run(options.transactions, options.concurrency, runMsMax, { onFinished }), memory: undefined }
        : await runWatchingMemory(load, options, rssSampleAfter, runMsMax, nodes, onFinished);
    progress.finish();
    const clientCpu = process.cpuUsage(clientCpu0);
    const after = await sampleNodes(nodes);
    memory?.record(after, measured.counts.total, true);
    const figures = { ...phaseFigures(mode, measured, before, after, (clientCpu.user + clientCpu.system) / 1000, memory), warmup };
    log(`  ${figures.throughputTxPerS} tx/s, p50 ${figures.latency.p50Ms} ms, p99 ${figures.latency.p99Ms} ms`);

    let oneClient: BenchReport['oneClient'] = { transactions: 0, latency: summarize([]) };
    if (mode.oneClient) {
      if (options.concurrency === 1) oneClient = { transactions: measured.latenciesMs.length, latency: figures.latency };
      else {
        const n = Math.min(options.oneClientTransactions ?? ONE_CLIENT_TRANSACTIONS, options.transactions);
        log(`one client alone: ${n} transfers, one at a time…`);
        const alone = await load.run(n, 1, options.durationMaxMs ?? DURATION_MAX_MS_DEFAULT);
        oneClient = { transactions: alone.latenciesMs.length, latency: summarize(alone.latenciesMs) };
      }
    }
    return { figures, oneClient };
  } finally {
    client.close();
    await cluster.stop();
    await fs.promises.rm(dataDir, { recursive: true, force: true });
  }
}

interface LoadResult {
  readonly counts: TxCounts;
  readonly elapsedMs: number;
  readonly latenciesMs: number[];
  /** When each committed transaction finished, ms after the start. */
  readonly committedAtMs: number[];
}

/** Closed-loop clients issuing random two-participant transfers, each waiting for its answer before the next. */
class Load {
  private readonly rng;

  constructor(
    private readonly options: BenchOptions,
    private readonly target: BenchTarget,
    private readonly all: ReturnType<typeof accounts>,
    private readonly post: (body: unknown) => Promise<{ outcome?: string }>,
  ) {
    this.rng = createPrng(options.seed ?? 1);
  }

  /** Transfers between two participants only, so every transaction is a real two-phase one. */
  private nextTransfer(): Transfer | undefined {
    let t = randomTransfer(this.rng, this.all, 10);
    for (let i = 0; i < 8 && t && t.from.participant === t.to.participant; i++) t = randomTransfer(this.rng, this.all, 10);
    return t;
  }

  async run(
    count: number,
    concurrency: number,
    durationMs: number,
    hooks: {
      /** Called with the finished count each time it passes another multiple of `every`, one call at a time. */
      readonly sample?: { readonly every: number; readonly take: (finished: number) => Promise<void> };
      readonly onFinished?: (finished: number, elapsedMs: number) => void;
    } = {},
  ): Promise<LoadResult> {
    const latenciesMs: number[] = [];
    const committedAtMs: number[] = [];
    let committed = 0;
    let aborted = 0;
    let errors = 0;
    let issued = 0;
    let sampling: Promise<void> | undefined;
    let nextSampleAt = hooks.sample?.every ?? Infinity;
    const t0 = performance.now();
    const deadline = t0 + durationMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (issued < count && performance.now() < deadline) {
          issued++;
          const t = this.nextTransfer();
          if (!t) continue;
          const s = performance.now();
          try {
            const r = await this.post(this.target.transfer(t));
            const done = performance.now();
            latenciesMs.push(done - s);
            if (r.outcome === 'committed') {
              committed++;
              committedAtMs.push(done - t0);
            } else aborted++;
          } catch {
            errors++;
          }
          const finished = committed + aborted + errors;
          hooks.onFinished?.(finished, performance.now() - t0);
          // One reading at a time: a threshold passed while one is being taken is skipped, not queued.
          if (hooks.sample && sampling === undefined && finished >= nextSampleAt) {
            while (nextSampleAt <= finished) nextSampleAt += hooks.sample.every;
            sampling = hooks.sample.take(finished).finally(() => (sampling = undefined));
          }
        }
      }),
    );
    const elapsedMs = performance.now() - t0;
    await sampling;
    return { counts: { total: committed + aborted + errors, committed, aborted, errors }, elapsedMs, latenciesMs, committedAtMs };
  }
}

/** Readings of every node's memory over one `--rss-check` phase. */
class MemoryWatch {
  readonly series: MemorySample[] = [];
  atSample: { readonly rssMb: PerProcess; readonly heapUsedMb: PerProcess } | undefined;

  record(samples: Record<string, NodeSample>, transactions: number, quiescent: boolean): void {
    // Bounded by construction (MEMORY_SERIES_POINTS under load plus two quiescent), checked all the same.
    if (this.series.length < 2 * MEMORY_SERIES_POINTS + 2) this.series.push({ transactions, quiescent, rssMb: rssOf(samples), heapUsedMb: heapOf(samples) });
  }
}

/**
 * The `--rss-check` load in two legs: `sampleAfter` transfers, then the load drains and every
 * node's memory is read, then the rest; the end reading is taken the same way by the caller, so
 * the two points the target compares are both taken with nothing in flight. Under load, a reading
 * every 1/MEMORY_SERIES_POINTS of the run draws the slope.
 */
async function runWatchingMemory(
  load: Load,
  options: BenchOptions,
  sampleAfter: number,
  runMsMax: number,
  nodes: readonly NodeRef[],
  onFinished: (finished: number, elapsedMs: number) => void,
): Promise<{ measured: LoadResult; memory: MemoryWatch }> {
  const memory = new MemoryWatch();
  const every = Math.max(1, Math.ceil(options.transactions / MEMORY_SERIES_POINTS));
  const t0 = performance.now();
  const sampleFrom = (offset: number) => ({ every, take: async (finished: number) => memory.record(await sampleNodes(nodes), offset + finished, false) });
  const first = await load.run(sampleAfter, options.concurrency, runMsMax, { sample: sampleFrom(0), onFinished });
  const atSample = await sampleNodes(nodes);
  memory.record(atSample, first.counts.total, true);
  memory.atSample = { rssMb: rssOf(atSample), heapUsedMb: heapOf(atSample) };
  const offset = first.counts.total;
  const rest = await load.run(options.transactions - sampleAfter, options.concurrency, Math.max(0, t0 + runMsMax - performance.now()), {
    // The second leg's readings are numbered on from the first's.
    sample: sampleFrom(offset),
    onFinished: (finished, elapsedMs) => onFinished(offset + finished, first.elapsedMs + elapsedMs),
  });
  return { measured: joinLoads(first, rest), memory };
}

/** Two legs of one load as one: counts and latencies added, the second leg's times after the first's. */
function joinLoads(a: LoadResult, b: LoadResult): LoadResult {
  return {
    counts: { total: a.counts.total + b.counts.total, committed: a.counts.committed + b.counts.committed, aborted: a.counts.aborted + b.counts.aborted, errors: a.counts.errors + b.counts.errors },
    elapsedMs: a.elapsedMs + b.elapsedMs,
    latenciesMs: [...a.latenciesMs, ...b.latenciesMs],
    committedAtMs: [...a.committedAtMs, ...b.committedAtMs.map((t) => a.elapsedMs + t)],
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** One figure of every node that has it, and the largest (`max`). */
function perProcess(samples: Record<string, NodeSample>, figure: (s: NodeSample) => number | undefined): PerProcess {
  const out: Record<string, number> = {};
  for (const [name, s] of Object.entries(samples)) {
    const value = figure(s);
    if (value !== undefined) out[name] = value;
  }
  return { ...out, max: Math.max(0, ...Object.values(out)) };
}

const rssOf = (samples: Record<string, NodeSample>): PerProcess => perProcess(samples, (s) => s.rssMb);
const heapOf = (samples: Record<string, NodeSample>): PerProcess =>
  perProcess(samples, (s) => (s.counters.heapUsedBytes === undefined ? undefined : round1(s.counters.heapUsedBytes / 2 ** 20)));

function warmupFigures(requested: number, load: LoadResult, before: Record<string, NodeSample>, after: Record<string, NodeSample>): WarmupFigures {
  const cpuMs = changeOverNodes(before, after, (s) => s.cpuMs);
  const committed = load.counts.committed;
  return {
    requested,
    transactions: load.counts.total,
    elapsedS: round2(load.elapsedMs / 1000),
    throughputTxPerS: load.elapsedMs > 0 ? round1(committed / (load.elapsedMs / 1000)) : 0,
    cpuMsPerTx: committed > 0 && cpuMs !== null ? round3(cpuMs / committed) : null,
  };
}

function phaseFigures(
  mode: { batching: boolean; flagKnown: boolean },
  load: LoadResult,
  before: Record<string, NodeSample>,
  after: Record<string, NodeSample>,
  clientCpuMs: number,
  memory: MemoryWatch | undefined,
): PhaseFigures {
  const rssMb = rssOf(after);
  const tx = Math.max(1, load.counts.committed);
  const cpu: Record<string, number> = {};
  let cpuTotal = 0;
  for (const [name, a] of Object.entries(after)) {
    const b = before[name];
    if (a.cpuMs !== undefined && b?.cpuMs !== undefined) {
      cpu[name] = round3((a.cpuMs - b.cpuMs) / tx);
      cpuTotal += a.cpuMs - b.cpuMs;
    }
  }
  const requests = changeOverNodes(before, after, (s) => s.counters.httpRequests);
  const datasyncs = changeOverNodes(before, after, (s) => s.counters.walDatasyncs);
  const blockingDatasyncs = changeOverNodes(before, after, (s) => s.counters.walDatasyncsBlocking);
  return {
    batching: mode.batching,
    noBatchingFlagPassed: !mode.batching && mode.flagKnown,
    transactions: load.counts,
    elapsedS: round2(load.elapsedMs / 1000),
    throughputTxPerS: round1(load.counts.committed / (load.elapsedMs / 1000)),
    latency: summarize(load.latenciesMs),
    cpuMsPerTx: { ...cpu, total: round3(cpuTotal / tx) },
    rssMb,
    heapUsedMb: heapOf(after),
    httpRequestsPerTx: requests === null ? null : round2(requests / tx),
    forcedWritesPerTx: datasyncs === null ? null : round2(datasyncs / tx),
    forcedWritesBlockingPerTx: blockingDatasyncs === null ? null : round2(blockingDatasyncs / tx),
    clientCpuMsPerTx: round3(clientCpuMs / Math.max(1, load.counts.total)),
    series: seriesOf(load.committedAtMs, load.elapsedMs),
    histogram: histogramOf(load.latenciesMs),
    ...(memory?.atSample !== undefined && {
      rssMbAtSample: memory.atSample.rssMb,
      heapUsedMbAtSample: memory.atSample.heapUsedMb,
      rssGrowth: rssGrowthOf(memory.atSample.rssMb, rssMb),
      memorySeries: memory.series,
    }),
  };
}

/** How much `read` grew from `before` to `after`, summed over the nodes; null when some node lacks either reading. */
function changeOverNodes(before: Record<string, NodeSample>, after: Record<string, NodeSample>, read: (s: NodeSample) => number | undefined): number | null {
  let sum = 0;
  for (const [name, a] of Object.entries(after)) {
    const b = before[name];
    const x = b === undefined ? undefined : read(b);
    const y = read(a);
    if (x === undefined || y === undefined) return null;
    sum += y - x;
  }
  return sum;
}

function seriesOf(committedAtMs: readonly number[], elapsedMs: number): PhaseFigures['series'] {
  const bucketMs = Math.max(SERIES_BUCKET_MS_MIN, Math.ceil(elapsedMs / SERIES_POINTS_MAX / 50) * 50);
  const counts = new Array<number>(Math.max(1, Math.ceil(elapsedMs / bucketMs))).fill(0);
  for (const t of committedAtMs) counts[Math.min(counts.length - 1, Math.floor(t / bucketMs))]! += 1;
  return { bucketMs, txPerS: counts.map((c) => round1((c * 1000) / bucketMs)) };
}

function histogramOf(latenciesMs: readonly number[]): PhaseFigures['histogram'] {
  const upperMs = Array.from({ length: HISTOGRAM_BUCKETS }, (_, i) => round3(HISTOGRAM_FIRST_UPPER_MS * HISTOGRAM_FACTOR ** i));
  const counts = new Array<number>(HISTOGRAM_BUCKETS).fill(0);
  for (const x of latenciesMs) {
    const i = x <= HISTOGRAM_FIRST_UPPER_MS ? 0 : Math.ceil(Math.log(x / HISTOGRAM_FIRST_UPPER_MS) / Math.log(HISTOGRAM_FACTOR));
    counts[Math.min(HISTOGRAM_BUCKETS - 1, i)]! += 1;
  }
  return { upperMs, counts };
}

function ratio(value: number | null, target: number, comparison: Ratio['comparison'], note?: string): Ratio {
  const v = value === null || !Number.isFinite(value) ? null : round2(value);
  const met = v !== null && (comparison === 'atLeast' ? v >= target : v <= target);
  return { value: v, target: round3(target), comparison, met, ...(note !== undefined && { note }) };
}

function ratiosOf(
  main: PhaseFigures,
  noBatching: PhaseFigures | null,
  oneClient: LatencySummary,
  machine: BenchReport['machine'],
  transactions: number,
): Record<string, Ratio> {
  const unbatchedNote =
    noBatching === null ? 'no unbatched run in this bench' : noBatching.noBatchingFlagPassed ? undefined : 'the nodes have no --no-batching yet: both runs took the default path';
  return {
    throughputOverBareHttp: ratio(main.throughputTxPerS / machine.httpRequestsPerS, TARGETS.throughputOverBareHttp, 'atLeast'),
    throughputOverNoBatching: ratio(
      noBatching === null ? null : main.throughputTxPerS / Math.max(0.1, noBatching.throughputTxPerS),
      TARGETS.throughputOverNoBatching,
      'atLeast',
      unbatchedNote,
    ),
    p99Ms: ratio(main.latency.p99Ms, TARGETS.p99Ms, 'atMost'),
    oneClientP50OverFloor: ratio(oneClient.p50Ms / Math.max(0.001, machine.floorMs), TARGETS.oneClientP50OverFloor, 'atMost'),
    cpuMsPerTx: ratio(main.cpuMsPerTx.total ?? null, TARGETS.cpuMsPerTx, 'atMost'),
    ...(main.rssGrowth !== undefined && { rssGrowth: rssGrowthRatio(main, transactions) }),
  };
}

/** The largest process's growth, judged; a run the time limit stopped short says how far it got. */
function rssGrowthRatio(main: PhaseFigures, transactions: number): Ratio {
  const done = main.transactions.total;
  const from = main.memorySeries?.find((m) => m.quiescent)?.transactions;
  const note = done < transactions ? `the run stopped at ${done} of ${transactions} transactions (time limit): growth from ${from} to ${done}` : undefined;
  // No process measured (no /proc) is no figure, not a growth of 0.
  const measured = main.rssGrowth !== undefined && Object.keys(main.rssGrowth).length > 1;
  return ratio(measured ? (main.rssGrowth?.max ?? null) : null, TARGETS.rssGrowth, 'atMost', note);
}

/** Each process's RSS at the end over its RSS at the sample, and the largest of them as `max`. */
export function rssGrowthOf(atSample: PerProcess, atEnd: PerProcess): PerProcess {
  const out: Record<string, number> = {};
  for (const [name, mb] of Object.entries(atSample)) {
    const end = atEnd[name];
    if (name !== 'max' && mb > 0 && end !== undefined) out[name] = round3(end / mb);
  }
  return { ...out, max: Math.max(0, ...Object.values(out)) };
}

/** Accounts for the bench: enough that most transfers do not contend for the same key (or row). */
export function benchBank(participants: readonly string[], concurrency: number): BankOptions {
  return { participants, accountsPerParticipant: Math.max(20, concurrency * 4), openingBalance: 1_000_000 };
}
