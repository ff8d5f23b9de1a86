/**
 * What a chaos run did, over time, for the `--html` pages of chaos-soak and
 * network-faults, as Jepsen's reports draw it: transfers per second
 * (committed, failed, unknown) and latency (p50, p99) per time bucket, with a
 * vertical mark for every kill, restart, pause and proxy fault, and per
 * participant its in-doubt count and its longest blocked time.
 *
 * The data comes from what the run already keeps: the bank client's history
 * (each transfer's start, end and result, bounded by its transfer budget),
 * the harness's marks (kit.ts), and a sampler that asks each participant for
 * its prepared transactions at a bounded interval and count.
 */
import { COLORS, lineChart, type ChartMark, type Series } from './bench-svg.ts';
import type { TransferRecord } from './checker.ts';
import { sleep, type InDoubtEntry } from './kit.ts';
import type { TimelineEvent } from './scenario.ts';

export interface PlotTransfer {
  readonly startMs: number;
  readonly endMs: number;
  readonly result: TransferRecord['result'];
}

export interface PlotMark {
  readonly atMs: number;
  /** kill, restart, pause, resume or fault. */
  readonly kind: string;
  readonly label: string;
}

export interface InDoubtSample {
  readonly atMs: number;
  readonly participant: string;
  readonly inDoubt: number;
  /** The longest any of them has been blocked, in ms (0 when none is). */
  readonly blockedMsMax: number;
}

export interface RunPlots {
  readonly transfers: readonly PlotTransfer[];
  readonly marks: readonly PlotMark[];
  readonly inDoubt: readonly InDoubtSample[];
}

/** How often the sampler asks every participant for its in-doubt list. */
export const IN_DOUBT_SAMPLE_EVERY_MS = 1_000;
/** The sampler's bound: at one sample a second per participant, over an hour of a three-participant run. */
export const IN_DOUBT_SAMPLES_MAX = 12_000;
/** Time buckets per chart at most; a longer run gets wider buckets. */
const BUCKETS_MAX = 120;
const BUCKET_MS_MIN = 1_000;
/** Marks drawn per chart at most (the soak's default run makes about a hundred). */
const MARKS_MAX = 400;

const MARK_COLORS: Readonly<Record<string, string>> = { kill: '#cf222e', restart: '#1a7f37', pause: '#6e7781', resume: '#6e7781', fault: '#bf8700' };
const RESULT_COLORS = { ok: '#1a7f37', fail: '#cf222e', info: '#bf8700' } as const;
const PARTICIPANT_COLORS = ['#2f6fdf', '#d9822b', '#8250df', '#1a7f37', '#cf222e', '#57606a'];

export interface InDoubtSampler {
  readonly samples: InDoubtSample[];
  /** Resolves when the sampler ends: stopped, or at its bound. */
  readonly finished: Promise<void>;
  stop(): Promise<void>;
}

/** Polls `GET /v1/2pc/transactions?state=prepared` on each participant until stopped or bounded; a node that does not answer adds no sample. */
export function sampleInDoubt(
  participants: readonly string[],
  inDoubt: (name: string) => Promise<readonly InDoubtEntry[] | undefined>,
  options: { everyMs?: number; samplesMax?: number } = {},
): InDoubtSampler {
  const samples: InDoubtSample[] = [];
  const samplesMax = options.samplesMax ?? IN_DOUBT_SAMPLES_MAX;
  let running = true;
  const loop = (async () => {
    while (running && samples.length + participants.length <= samplesMax) {
      const atMs = Date.now();
      const lists = await Promise.all(participants.map((p) => inDoubt(p)));
      lists.forEach((list, i) => {
        if (!list) return;
        const blockedMsMax = Math.max(0, ...list.map((t) => t.blockedMs ?? 0));
        samples.push({ atMs, participant: participants[i] as string, inDoubt: list.length, blockedMsMax });
      });
      await sleep(options.everyMs ?? IN_DOUBT_SAMPLE_EVERY_MS);
    }
  })();
  return {
    samples,
    finished: loop,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** The harness's own marks of what the nemesis did (a node's log lines make marks too; those are not faults). */
export function nemesisMarks(timeline: readonly TimelineEvent[]): PlotMark[] {
  const out: PlotMark[] = [];
  for (const e of timeline) {
    if (e.kind !== 'mark') continue;
    const kind =
      e.mark === 'crash' && e.label === 'SIGKILL' ? 'kill' : e.mark === 'restart' && e.label === 'start' ? 'restart' : ['pause', 'resume', 'fault'].includes(e.mark) ? e.mark : undefined;
    if (kind) out.push({ atMs: e.atMs, kind, label: kind === 'fault' ? e.label : `${kind} ${e.lane}` });
  }
  return out;
}

export function runPlots(history: readonly TransferRecord[], marks: readonly PlotMark[], inDoubt: readonly InDoubtSample[]): RunPlots {
  return { transfers: history.map((t) => ({ startMs: t.startMs, endMs: t.endMs, result: t.result })), marks, inDoubt };
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number);
}

interface Buckets {
  readonly t0Ms: number;
  readonly bucketMs: number;
  readonly count: number;
  index(atMs: number): number;
}

function bucketsOf(p: RunPlots): Buckets {
  const times = [...p.transfers.flatMap((t) => [t.startMs, t.endMs]), ...p.marks.map((m) => m.atMs), ...p.inDoubt.map((s) => s.atMs)];
  const t0Ms = times.length > 0 ? Math.min(...times) : 0;
  const spanMs = times.length > 0 ? Math.max(...times) - t0Ms : 0;
  const bucketMs = Math.max(BUCKET_MS_MIN, Math.ceil(spanMs / BUCKETS_MAX / BUCKET_MS_MIN) * BUCKET_MS_MIN);
  const count = Math.floor(spanMs / bucketMs) + 1;
  return { t0Ms, bucketMs, count, index: (atMs) => Math.min(count - 1, Math.max(0, Math.floor((atMs - t0Ms) / bucketMs))) };
}

function chartMarks(p: RunPlots, b: Buckets): ChartMark[] {
  return p.marks.slice(0, MARKS_MAX).map((m) => ({ x: (m.atMs - b.t0Ms) / 1000, label: m.label, kind: m.kind, color: MARK_COLORS[m.kind] ?? COLORS.marker }));
}

/** Transfers ended per second, by result, and latency p50/p99, per bucket of the transfers' end times. */
function transferCharts(p: RunPlots, b: Buckets, marks: readonly ChartMark[]): string[] {
  const perResult = { ok: new Array<number>(b.count).fill(0), fail: new Array<number>(b.count).fill(0), info: new Array<number>(b.count).fill(0) };
  const latencies = Array.from({ length: b.count }, () => [] as number[]);
  for (const t of p.transfers) {
    const i = b.index(t.endMs);
    perResult[t.result][i] = (perResult[t.result][i] as number) + 1000 / b.bucketMs;
    latencies[i]?.push(t.endMs - t.startMs);
  }
  const sorted = latencies.map((l) => l.sort((x, y) => x - y));
  const xStep = b.bucketMs / 1000;
  const xLabel = `seconds since the start (buckets of ${xStep} s)`;
  const rate: Series<number[]>[] = [
    { name: 'committed', color: RESULT_COLORS.ok, values: perResult.ok },
    { name: 'failed (aborted or refused)', color: RESULT_COLORS.fail, values: perResult.fail },
    { name: 'unknown (no answer)', color: RESULT_COLORS.info, values: perResult.info },
  ];
  const latency: Series<number[]>[] = [
    { name: 'p50', color: COLORS.batched, values: sorted.map((l) => percentile(l, 0.5)) },
    { name: 'p99', color: COLORS.unbatched, values: sorted.map((l) => percentile(l, 0.99)) },
  ];
  return [
    lineChart({ title: 'Transfers per second, by result', xLabel, yLabel: 'transfers/s', xStep, series: rate, marks }),
    lineChart({ title: 'Transfer latency per bucket', xLabel, yLabel: 'ms', xStep, series: latency, marks }),
  ];
}

/** Per participant, the largest in-doubt count and the longest blocked time sampled in each bucket. */
function inDoubtCharts(p: RunPlots, b: Buckets, marks: readonly ChartMark[]): string[] {
  const participants = [...new Set(p.inDoubt.map((s) => s.participant))].sort();
  const series = (pick: (s: InDoubtSample) => number): Series<number[]>[] =>
    participants.map((name, k) => {
      const values = new Array<number>(b.count).fill(0);
      for (const s of p.inDoubt) if (s.participant === name) values[b.index(s.atMs)] = Math.max(values[b.index(s.atMs)] as number, pick(s));
      return { name, color: PARTICIPANT_COLORS[k % PARTICIPANT_COLORS.length] as string, values };
    });
  const xStep = b.bucketMs / 1000;
  const xLabel = `seconds since the start (sampled every ${IN_DOUBT_SAMPLE_EVERY_MS / 1000} s)`;
  return [
    lineChart({ title: 'In-doubt transactions per participant', xLabel, yLabel: 'prepared, undecided', xStep, series: series((s) => s.inDoubt), marks }),
    lineChart({ title: 'Longest blocked time per participant', xLabel, yLabel: 'seconds blocked', xStep, series: series((s) => s.blockedMsMax / 1000), marks }),
  ];
}

/** The four charts as one HTML section (inline SVG, no script). */
export function renderRunPlots(p: RunPlots): string {
  const b = bucketsOf(p);
  const marks = chartMarks(p, b);
  const counts = Object.entries(MARK_COLORS)
    .map(([kind, color]) => `<span style="color:${color}">┆ ${kind} ×${p.marks.filter((m) => m.kind === kind).length}</span>`)
    .join(' &nbsp; ');
  const charts = [...transferCharts(p, b, marks), ...inDoubtCharts(p, b, marks)].map((svg) => `<div class="chart">${svg}</div>`);
  return [
    '<h2>What happened</h2>',
    `<p>${p.transfers.length} transfers, ${p.inDoubt.length} in-doubt samples. Every dashed vertical line is something the nemesis did; hover it for its label.</p>`,
    `<div class="legend">${counts}</div>`,
    ...charts,
  ].join('\n');
}
