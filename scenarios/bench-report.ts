/**
 * How a bench report is shown: as text for the terminal, as SVG pictures (the
 * same ones docs/performance.md embeds) and as one self-contained HTML page
 * (`twopc bench --html FILE`).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LatencySummary } from './bench-probes.ts';
import type { BenchReport, PerProcess, PhaseFigures, Ratio } from './bench.ts';
import { barChart, COLORS, escapeXml, histogramChart, lineChart, type Series } from './bench-svg.ts';

const l = (s: LatencySummary) => `p50 ${s.p50Ms} ms, p95 ${s.p95Ms} ms, p99 ${s.p99Ms} ms`;
const perProcess = (p: PerProcess) =>
  Object.entries(p)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
const orNa = (x: number | null) => (x === null ? 'n/a (the nodes do not count it)' : String(x));

function phaseLines(p: Omit<PhaseFigures, 'batching'>): string[] {
  const w = p.warmup;
  return [
    ...(w !== undefined && w.transactions > 0 ? [`  warm-up           ${w.transactions}${w.transactions < w.requested ? ` of ${w.requested}` : ''} transfers in ${w.elapsedS} s, ${w.throughputTxPerS} tx/s, CPU ${w.cpuMsPerTx ?? 'n/a'} ms per tx (not measured below)`] : []),
    `  committed ${p.transactions.committed}, aborted ${p.transactions.aborted}, errors ${p.transactions.errors} in ${p.elapsedS} s`,
    `  throughput        ${p.throughputTxPerS} tx/s committed`,
    `  latency           ${l(p.latency)}`,
    `  CPU ms per tx     ${perProcess(p.cpuMsPerTx)}   (bench client ${p.clientCpuMsPerTx})`,
    `  RSS MB            ${perProcess(p.rssMb)}`,
    `  HTTP requests/tx  ${orNa(p.httpRequestsPerTx)}`,
    `  fdatasyncs/tx     ${orNa(p.forcedWritesPerTx)}${p.forcedWritesBlockingPerTx === null ? '' : ` (${p.forcedWritesBlockingPerTx} on the event loop)`}`,
    `  heap used MB      ${perProcess(p.heapUsedMb)}`,
    ...(p.rssMbAtSample ? [`  RSS MB at sample  ${perProcess(p.rssMbAtSample)}`] : []),
    ...(p.heapUsedMbAtSample ? [`  heap MB at sample ${perProcess(p.heapUsedMbAtSample)}`] : []),
    ...(p.rssGrowth ? [`  RSS growth        ${perProcess(p.rssGrowth)}`] : []),
  ];
}

export function formatRatio(name: string, r: Ratio): string {
  const sign = r.comparison === 'atLeast' ? '>=' : '<=';
  return `  ${name.padEnd(26)} ${String(r.value ?? 'n/a').padStart(8)}  target ${sign} ${r.target}  ${r.met ? 'met' : 'NOT met'}${r.note ? `  (${r.note})` : ''}`;
}

export function formatReport(r: BenchReport): string {
  const m = r.machine;
  const beside = r.beside;
  return [
    `twopc bench: ${r.transactions.total} transfers over ${r.options.participants} participants on ${r.resource}, concurrency ${r.options.concurrency}, fsync ${r.options.fsync}, ${r.batching ? 'batching' : '--no-batching'}, load client ${r.options.loadClient === 'axios' ? 'axios' : 'node:http'}`,
    ...phaseLines(r),
    `  one client        ${l(r.oneClient.latency)} over ${r.oneClient.transactions} transfers`,
    ...(r.noBatching
      ? [`the same load with --no-batching${r.noBatching.noBatchingFlagPassed ? '' : ' (NOT PASSED: the nodes have no such flag yet, default path)'}:`, ...phaseLines(r.noBatching)]
      : []),
    ...(beside
      ? [
          `the same run on ${beside.resource}:`,
          `  throughput        ${beside.throughputTxPerS} tx/s`,
          `  latency           ${l(beside.latency)}`,
        ]
      : []),
    `machine, same run: ${m.cpus} × ${m.cpuModel}, ${m.memoryMb} MB, node ${m.node}, load ${m.loadAverage1m} at the start`,
    `  write+fdatasync   ${l(m.fdatasync)}`,
    `  bare round trip   ${l(m.httpRoundTrip)} (one at a time)`,
    `  bare node:http    ${m.httpRequestsPerS} req/s at concurrency ${r.options.concurrency}, ${m.httpCpuUsPerRequest} µs CPU per request (client + server)`,
    `  axios client      ${m.axiosRequestsPerS} req/s at concurrency ${r.options.concurrency}, ${m.axiosCpuUsPerRequest} µs CPU per request (client + server)`,
    `  floor             ${m.floorMs} ms (3 fdatasyncs + 3 round trips, p50s)`,
    ...Object.entries(m.postgres ?? {}).map(([k, v]) => `  ${`pg ${k}`.padEnd(17)} ${l(v)}`),
    `targets (issue 12):`,
    ...Object.entries(r.ratios).map(([k, v]) => formatRatio(k, v)),
  ].join('\n');
}

/** Writes the pictures as throughput.svg, latency.svg and cpu.svg in `dir`. */
export function writeSvgs(r: BenchReport, dir: string, log: (line: string) => void): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, svg] of Object.entries(benchSvgs(r))) fs.writeFileSync(path.join(dir, `${name}.svg`), `${svg}\n`);
  log(`wrote the pictures to ${dir}`);
}

/** The bench's pictures, as SVG text: throughput over time, the latency histogram, CPU per process. */
export function benchSvgs(r: BenchReport): { throughput: string; latency: string; cpu: string } {
  const phases: { name: string; color: string; p: Omit<PhaseFigures, 'batching'> }[] = [
    { name: r.batching ? 'batched' : 'unbatched', color: r.batching ? COLORS.batched : COLORS.unbatched, p: r },
    ...(r.noBatching ? [{ name: 'unbatched (--no-batching)', color: COLORS.unbatched, p: r.noBatching }] : []),
  ];
  const throughput = lineChart({
    title: `Committed transactions per second, concurrency ${r.options.concurrency}`,
    xLabel: 'seconds into the run',
    yLabel: 'tx/s',
    xStep: r.series.bucketMs / 1000,
    series: phases.map((x): Series<readonly number[]> => ({ name: x.name, color: x.color, values: x.p.series.txPerS })),
  });
  const latency = histogramChart({
    title: `Transaction latency, concurrency ${r.options.concurrency}`,
    upperMs: r.histogram.upperMs,
    series: phases.map((x) => ({ name: x.name, color: x.color, values: x.p.histogram.counts })),
    markers: phases.flatMap((x) => [
      { label: `${x.name.split(' ')[0]} p50 ${x.p.latency.p50Ms}`, ms: x.p.latency.p50Ms, color: x.color },
      { label: `${x.name.split(' ')[0]} p99 ${x.p.latency.p99Ms}`, ms: x.p.latency.p99Ms, color: x.color },
    ]),
  });
  const names = Object.keys(r.cpuMsPerTx);
  const cpu = barChart({
    title: 'CPU per committed transaction, by process',
    yLabel: 'CPU ms per tx',
    labels: names,
    series: phases.map((x) => ({ name: x.name, color: x.color, values: names.map((n) => x.p.cpuMsPerTx[n] ?? null) })),
  });
  return { throughput, latency, cpu };
}

function table(rows: readonly (readonly string[])[]): string {
  const [head, ...body] = rows;
  const cells = (r: readonly string[], tag: string) => `<tr>${r.map((c) => `<${tag}>${escapeXml(c)}</${tag}>`).join('')}</tr>`;
  return `<table>${head ? cells(head, 'th') : ''}${body.map((r) => cells(r, 'td')).join('')}</table>`;
}

/** One self-contained page: the pictures, the figures beside each other, and every target. */
export function renderBenchHtml(r: BenchReport, command: string): string {
  const svgs = benchSvgs(r);
  const col = (p: Omit<PhaseFigures, 'batching'> | null, pick: (p: Omit<PhaseFigures, 'batching'>) => unknown) => (p === null ? '—' : String(pick(p)));
  const figures = table([
    ['', r.batching ? 'batched' : 'unbatched', 'unbatched (--no-batching)'],
    ['committed tx/s', col(r, (p) => p.throughputTxPerS), col(r.noBatching, (p) => p.throughputTxPerS)],
    ['p50 / p95 / p99 ms', col(r, (p) => `${p.latency.p50Ms} / ${p.latency.p95Ms} / ${p.latency.p99Ms}`), col(r.noBatching, (p) => `${p.latency.p50Ms} / ${p.latency.p95Ms} / ${p.latency.p99Ms}`)],
    ['CPU ms per tx (all nodes)', col(r, (p) => p.cpuMsPerTx.total), col(r.noBatching, (p) => p.cpuMsPerTx.total)],
    ['HTTP requests per tx', col(r, (p) => p.httpRequestsPerTx ?? 'n/a'), col(r.noBatching, (p) => p.httpRequestsPerTx ?? 'n/a')],
    ['fdatasyncs per tx', col(r, (p) => p.forcedWritesPerTx ?? 'n/a'), col(r.noBatching, (p) => p.forcedWritesPerTx ?? 'n/a')],
    ['largest RSS, MB', col(r, (p) => p.rssMb.max), col(r.noBatching, (p) => p.rssMb.max)],
  ]);
  const targets = table([
    ['target', 'measured', 'wanted', 'met'],
    ...Object.entries(r.ratios).map(([k, v]) => [k, String(v.value ?? 'n/a'), `${v.comparison === 'atLeast' ? '≥' : '≤'} ${v.target}`, v.met ? 'yes' : `no${v.note ? ` (${v.note})` : ''}`]),
  ]);
  const m = r.machine;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twopc bench</title>
<style>body{font-family:system-ui,sans-serif;max-width:1320px;margin:1.5em auto;padding:0 1em;color:#222}
.row{display:flex;flex-wrap:wrap;gap:12px}table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child{text-align:left}code{background:#f3f3f3;padding:1px 4px}</style></head>
<body><h1>twopc bench</h1>
<p><code>${escapeXml(command)}</code>: ${r.options.participants} participants on ${escapeXml(r.resource)}, two-branch transfers, concurrency ${r.options.concurrency}, fsync ${escapeXml(r.options.fsync)}.
Machine: ${m.cpus} × ${escapeXml(m.cpuModel)}, node ${escapeXml(m.node)}; floor ${m.floorMs} ms; bare node:http ${m.httpRequestsPerS} req/s; axios ${m.axiosRequestsPerS} req/s; one client p50 ${r.oneClient.latency.p50Ms} ms.</p>
<div class="row">${svgs.throughput}${svgs.latency}</div>
<div class="row">${svgs.cpu}<div><h2>Figures</h2>${figures}<h2>Targets (issue 12)</h2>${targets}</div></div>
</body></html>
`;
}
