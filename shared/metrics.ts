/**
 * A node's Prometheus metrics, on prom-client: Node's default metrics, the
 * protocol's counters, gauges and histograms, and the HTTP server's requests.
 * Each node has its own registry, so several nodes in one process (tests, the
 * simulator, an embedding service) never mix their numbers.
 *
 * Hot-path cost: a histogram is observed per message and a counter bumped
 * per request, so every labelled series is looked up once and kept (`child`),
 * never rebuilt from a label object per call. Label values are escaped by
 * prom-client, not rewritten; label sets stay bounded because callers pass
 * enum-like values, and `SERIES_PER_METRIC_MAX` caps them anyway.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { heapGrowingPercentApplied } from './heap-growing.ts';

type Labels = Readonly<Record<string, string>>;

/** Every metric's name starts with it. */
export const METRIC_PREFIX = 'twopc_';

/** Distinct label sets per metric; beyond it, new sets are folded into one `overflow="true"` series. */
export const SERIES_PER_METRIC_MAX = 256;

/** Seconds: from a fast local fsync (~0.3 ms) to a stalled peer (tens of seconds). */
const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds an in-doubt branch may block: from a prompt decision to hours of a lost coordinator. */
const BLOCKED_BUCKETS_S = [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14_400];
/** Records made durable by one fdatasync: one (sync always) up to group commit's large batches. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/** One series of a metric, found once and kept: `inc`/`set`/`observe` cost no label object. */
interface Child {
  inc(by?: number): void;
  set(value: number): void;
  observe(value: number): void;
}

type Metric = Counter<string> | Gauge<string> | Histogram<string>;

export class Metrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly metrics = new Map<string, Metric>();
  private readonly children = new Map<string, Map<string, Child>>();

  // ---- The protocol's metrics, each created once, here --------------------------------------
  /** Coordinator: decisions by outcome. */
  readonly transactions = this.counter('transactions_total', 'Transactions decided by this coordinator, by outcome.', ['outcome']);
  /** Coordinator: per transaction, the time of each phase. */
  readonly phaseSeconds = this.histogram('phase_seconds', 'Coordinator phase latency per transaction: prepare (first prepare sent to decision), decision (decision to durable), ack (durable decision to the last ack).', ['phase'], LATENCY_BUCKETS_S);
  /** Participant: how long each in-doubt branch held its locks, observed when it settles. */
  readonly blockedSeconds = this.histogram('blocked_seconds', 'Participant: how long a branch stayed prepared (in doubt, holding its locks) before its outcome arrived.', [], BLOCKED_BUCKETS_S);
  readonly walFsyncSeconds = this.histogram('wal_fsync_seconds', 'WAL fdatasync latency, per sync of a write batch.', [], LATENCY_BUCKETS_S);
  readonly walBatchRecords = this.histogram('wal_sync_batch_records', 'WAL records made durable by one fdatasync (group commit batch size).', [], BATCH_BUCKETS);
  readonly walFsyncs = this.counter('wal_fsyncs_total', 'WAL fdatasync calls for write batches.', []);
  /** Of walFsyncs, those that held the event loop (wal/options.ts `blockingSyncMsMax`); the rest ran in libuv's thread pool. */
  readonly walFsyncsBlocking = this.counter('wal_fsyncs_blocking_total', "WAL fdatasync calls for write batches that ran on the event loop (the rest of wal_fsyncs_total ran in libuv's thread pool: an embedded participant by default, or a log backed off from a slow disk).", []);
  readonly walForcedWrites = this.counter('wal_forced_writes_total', 'WAL records appended durably (forced): the protocol asked for an fsync before going on.', []);
  readonly walWrites = this.counter('wal_writes_total', 'WAL records appended, forced or not.', []);
  readonly recoverySeconds = this.gauge('recovery_duration_seconds', 'How long the last start-up recovery took (WAL replay to ready).', []);
  /** When the last start-up recovery ended, so a bench can time what follows from the node's own clock, not from a /healthz poll the busy node answers late. */
  readonly recoveredAtSeconds = this.gauge('recovery_completed_timestamp_seconds', 'When the last start-up recovery ended (WAL replayed, re-sends issued), in Unix seconds.', []);
  readonly retries = this.counter('retries_total', 'Messages sent again (prepare, decision) after a failure or timeout.', ['message']);
  readonly inquiries = this.counter('inquiries_total', 'Outcome inquiries sent by a participant, to the coordinator or to a peer.', ['to']);
  readonly httpRequests = this.counter('http_requests_total', 'HTTP requests served, by route (the route template, not the path), method and status.', ['route', 'method', 'status']);

  /** Beside the heap's sizes, so a reader of RSS knows which factor V8 was asked for (shared/heap-growing.ts). */
  readonly heapGrowingPercent = this.gauge('heap_growing_percent', "The V8 heap growing percent this process's CLI set (--heap-growing-percent); 0 when V8 chooses its own factor.", []);

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    this.heapGrowingPercent.set(heapGrowingPercentApplied());
  }

  /** The WAL's `onSync` (wal/options.ts): one fdatasync of a write batch, its latency and size, and where it ran. */
  readonly observeWalSync = (syncMs: number, records: number, blocking: boolean): void => {
    this.walFsyncSeconds.observe(syncMs / 1000);
    this.walBatchRecords.observe(records);
    this.walFsyncs.inc();
    if (blocking) this.walFsyncsBlocking.inc();
  };

  /** The series of `metric` for these label values (in the metric's label order), created on first use. */
  child(metric: Metric, ...values: string[]): Child {
    const name = (metric as unknown as { name: string }).name;
    let series = this.children.get(name);
    if (series === undefined) {
      series = new Map();
      this.children.set(name, series);
    }
    const key = values.join('\u0000');
    let found = series.get(key);
    if (found !== undefined) return found;
    if (series.size >= SERIES_PER_METRIC_MAX) {
      const overflow = series.get('\u0001overflow');
      if (overflow !== undefined) return overflow;
    }
    const full = series.size >= SERIES_PER_METRIC_MAX ? values.map(() => 'overflow') : values;
    found = (values.length === 0 ? metric : (metric as Counter<string>).labels(...full)) as unknown as Child;
    series.set(series.size >= SERIES_PER_METRIC_MAX ? '\u0001overflow' : key, found);
    return found;
  }

  // ---- Generic counters and gauges, for series named at their call site ----------------------

  /** The counter `name`, created on first use; bump its series with `child(counter, ...values).inc()`. */
  counterFor(name: string, help: string, labelNames: readonly string[]): Counter<string> {
    return (this.metrics.get(name) as Counter<string> | undefined) ?? this.counter(name, help, labelNames);
  }

  /** Adds `by` to a counter, created on first use with `help`. */
  inc(name: string, help: string, labels?: Labels, by = 1): void {
    const names = labels === undefined ? [] : Object.keys(labels);
    const metric = (this.metrics.get(name) as Counter<string> | undefined) ?? this.counter(name, help, names);
    this.child(metric, ...names.map((n) => labels?.[n] ?? '')).inc(by);
  }

  /** Sets a gauge, created on first use with `help`. */
  set(name: string, help: string, value: number, labels?: Labels): void {
    const names = labels === undefined ? [] : Object.keys(labels);
    const metric = (this.metrics.get(name) as Gauge<string> | undefined) ?? this.gauge(name, help, names);
    this.child(metric, ...names.map((n) => labels?.[n] ?? '')).set(value);
  }

  /** A counter's or gauge's value for these labels (0 when never set). For tests and the CLI. */
  async get(name: string, labels: Labels = {}): Promise<number> {
    const metric = this.metrics.get(name);
    if (metric === undefined) return 0;
    const { values } = await metric.get();
    const match = values.find((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want));
    return match?.value ?? 0;
  }

  /** The exposition text for GET /metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  private counter(name: string, help: string, labelNames: readonly string[]): Counter<string> {
    return this.keep(name, new Counter({ name: METRIC_PREFIX + name, help, labelNames, registers: [this.registry] }));
  }

  private gauge(name: string, help: string, labelNames: readonly string[]): Gauge<string> {
    return this.keep(name, new Gauge({ name: METRIC_PREFIX + name, help, labelNames, registers: [this.registry] }));
  }

  private histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram<string> {
    return this.keep(name, new Histogram({ name: METRIC_PREFIX + name, help, labelNames, buckets: [...buckets], registers: [this.registry] }));
  }

  private keep<M extends Metric>(name: string, metric: M): M {
    this.metrics.set(name, metric);
    return metric;
  }
}
