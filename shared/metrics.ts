/**
 * A few Prometheus counters and gauges, rendered as text for GET /metrics.
 * Label sets are bounded by construction: callers pass enum-like values only.
 */
type Labels = Readonly<Record<string, string>>;

interface Series {
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly values: Map<string, number>;
}

const labelKey = (labels: Labels | undefined): string =>
  labels === undefined
    ? ''
    : Object.entries(labels)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
        .join(',');

/** Distinct label sets per metric; beyond it, new sets are folded into one, so memory stays bounded. */
const SERIES_PER_METRIC_MAX = 256;

/** Render-time collectors per registry: a few per process (the WAL's counters), never one per request. */
const COLLECTORS_MAX = 16;

export class Metrics {
  private readonly series = new Map<string, Series>();
  private readonly collectors: (() => void)[] = [];

  constructor(private readonly prefix = 'twopc_') {}

  inc(name: string, help: string, labels?: Labels, by = 1): void {
    this.update(name, help, 'counter', labels, (v) => v + by);
  }

  set(name: string, help: string, value: number, labels?: Labels): void {
    this.update(name, help, 'gauge', labels, () => value);
  }

  /** Sets a counter kept elsewhere (e.g. the WAL's own stats) to its current total. */
  setTotal(name: string, help: string, value: number, labels?: Labels): void {
    this.update(name, help, 'counter', labels, () => value);
  }

  /**
   * Runs `collect` before each render, so figures another module keeps (the WAL's
   * fdatasync count) are read when scraped rather than pushed on the hot path.
   */
  collect(collect: () => void): void {
    if (this.collectors.length >= COLLECTORS_MAX) throw new Error(`Expected at most ${COLLECTORS_MAX} metric collectors.`);
    this.collectors.push(collect);
  }

  get(name: string, labels?: Labels): number {
    return this.series.get(name)?.values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    for (const collect of this.collectors) collect();
    const lines: string[] = [];
    for (const [name, s] of this.series) {
      const full = this.prefix + name;
      lines.push(`# HELP ${full} ${s.help}`, `# TYPE ${full} ${s.type}`);
      for (const [k, v] of s.values) lines.push(k === '' ? `${full} ${v}` : `${full}{${k}} ${v}`);
    }
    return lines.join('\n') + '\n';
  }

  private update(name: string, help: string, type: Series['type'], labels: Labels | undefined, f: (v: number) => number): void {
    let s = this.series.get(name);
    if (!s) {
      s = { help, type, values: new Map() };
      this.series.set(name, s);
    }
    let k = labelKey(labels);
    if (!s.values.has(k) && s.values.size >= SERIES_PER_METRIC_MAX) k = 'overflow="true"';
    s.values.set(k, f(s.values.get(k) ?? 0));
  }
}

/** The WAL's own counters, as the log keeps them (wal/file-log.ts FileLogStats). */
interface WalStats {
  readonly appends: number;
  readonly datasyncs: number;
}

/** Exposes a WAL's appends and fdatasyncs on /metrics, read at scrape time (forced writes per transaction in `twopc bench`). */
export function collectWalStats(metrics: Metrics, log: { readonly stats: Readonly<WalStats> }): void {
  metrics.collect(() => {
    const stats = log.stats;
    metrics.setTotal('wal_appends_total', 'Records appended to the WAL.', stats.appends);
    metrics.setTotal('wal_datasyncs_total', 'fdatasync calls on WAL segments (group commit shares one among many appends).', stats.datasyncs);
  });
}
