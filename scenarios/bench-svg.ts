/**
 * Small self-contained SVG charts for `twopc bench --html` and for the
 * pictures in docs/performance.md: a line chart (throughput over time), a
 * histogram on a log scale (latency, with percentile markers) and grouped bars
 * (CPU per process). No external assets, fonts or scripts, so a page or a
 * Markdown file can embed the SVG as it is.
 */

export interface Series<T> {
  readonly name: string;
  readonly color: string;
  readonly values: T;
}

const WIDTH = 640;
const HEIGHT = 260;
const MARGIN = { left: 56, right: 16, top: 48, bottom: 44 } as const;
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;
const TICKS = 5;
const FONT = 'font-family="system-ui, sans-serif" font-size="11"';

export const COLORS = { batched: '#2f6fdf', unbatched: '#d9822b', marker: '#555' } as const;

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

const fmt = (x: number) => (x >= 100 ? String(Math.round(x)) : x >= 10 ? x.toFixed(1).replace(/\.0$/, '') : x.toFixed(2).replace(/\.?0+$/, ''));

/** A tick step of 1, 2 or 5 times a power of ten that splits [0, max] into at most TICKS parts. */
function niceMax(max: number): { top: number; step: number } {
  const raw = Math.max(max, 1e-9) / TICKS;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  return { top: Math.ceil(max / step) * step || step, step };
}

function frame(title: string, xLabel: string, yLabel: string, body: string[], legend: readonly Series<unknown>[]): string {
  const legendItems = legend.map(
    (s, i) =>
      `<rect x="${MARGIN.left + 8 + i * 190}" y="22" width="10" height="10" fill="${s.color}"/>` +
      `<text x="${MARGIN.left + 22 + i * 190}" y="31" ${FONT}>${escapeXml(s.name)}</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${escapeXml(title)}">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="14" text-anchor="middle" font-family="system-ui, sans-serif" font-size="13" font-weight="600">${escapeXml(title)}</text>`,
    ...legendItems,
    ...body,
    `<text x="${MARGIN.left + PLOT_W / 2}" y="${HEIGHT - 6}" text-anchor="middle" ${FONT}>${escapeXml(xLabel)}</text>`,
    `<text transform="translate(12 ${MARGIN.top + PLOT_H / 2}) rotate(-90)" text-anchor="middle" ${FONT}>${escapeXml(yLabel)}</text>`,
    `</svg>`,
  ].join('\n');
}

function yAxis(top: number, step: number): string[] {
  const out: string[] = [];
  for (let v = 0; v <= top + step / 2; v += step) {
    const y = MARGIN.top + PLOT_H - (v / top) * PLOT_H;
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + PLOT_W}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" ${FONT}>${fmt(v)}</text>`);
  }
  out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + PLOT_H}" stroke="#999"/>`);
  return out;
}

/** A vertical line across a line chart at `x` (in the x axis's units), labelled: a kill, a pause, a fault. */
export interface ChartMark {
  readonly x: number;
  readonly label: string;
  readonly color: string;
  /** Written as the line's data-mark attribute, so a reader (or a test) can pick the marks of one kind. */
  readonly kind: string;
}

/** Rows the mark labels cycle through, so neighbouring marks do not print over each other. */
const MARK_LABEL_ROWS = 6;

function markLines(marks: readonly ChartMark[], xOf: (x: number) => number): string[] {
  return marks.flatMap((m, j) => {
    const x = xOf(m.x).toFixed(1);
    const y = MARGIN.top + 9 + (j % MARK_LABEL_ROWS) * 10;
    return [
      `<line data-mark="${escapeXml(m.kind)}" x1="${x}" x2="${x}" y1="${MARGIN.top}" y2="${MARGIN.top + PLOT_H}" stroke="${m.color}" stroke-opacity="0.6" stroke-dasharray="2 2"><title>${escapeXml(m.label)}</title></line>`,
      `<text x="${(Number(x) + 2).toFixed(1)}" y="${y}" font-family="system-ui, sans-serif" font-size="8" fill="${m.color}">${escapeXml(m.label)}</text>`,
    ];
  });
}

/** Lines over a shared x axis: each series is its y values at x = i * xStep; `marks` draw labelled vertical lines. */
export function lineChart(o: {
  title: string;
  xLabel: string;
  yLabel: string;
  xStep: number;
  series: readonly Series<readonly number[]>[];
  marks?: readonly ChartMark[];
}): string {
  const points = Math.max(2, ...o.series.map((s) => s.values.length));
  const { top, step } = niceMax(Math.max(0, ...o.series.flatMap((s) => s.values)));
  const xOf = (i: number) => MARGIN.left + (i / (points - 1)) * PLOT_W;
  const yOf = (v: number) => MARGIN.top + PLOT_H - (v / top) * PLOT_H;
  const body = yAxis(top, step);
  const xTicks = Math.min(TICKS, points - 1);
  for (let k = 0; k <= xTicks; k++) {
    const i = Math.round((k / xTicks) * (points - 1));
    body.push(`<text x="${xOf(i).toFixed(1)}" y="${MARGIN.top + PLOT_H + 16}" text-anchor="middle" ${FONT}>${fmt(i * o.xStep)}</text>`);
  }
  for (const s of o.series) {
    if (s.values.length === 0) continue;
    const d = s.values.map((v, i) => `${i === 0 ? 'M' : 'L'}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`).join(' ');
    body.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"/>`);
  }
  body.push(...markLines(o.marks ?? [], (x) => xOf(x / o.xStep)));
  return frame(o.title, o.xLabel, o.yLabel, body, o.series);
}

/**
 * Counts per bucket (the share of each series, so series of different sizes compare), buckets
 * given by their upper bounds on a log x axis; `markers` draw vertical lines (percentiles).
 */
export function histogramChart(o: {
  title: string;
  upperMs: readonly number[];
  series: readonly Series<readonly number[]>[];
  markers?: readonly { label: string; ms: number; color: string }[];
}): string {
  const used = o.upperMs.map((_, i) => o.series.some((s) => (s.values[i] ?? 0) > 0));
  const first = Math.max(0, used.indexOf(true) - 1);
  const last = Math.min(o.upperMs.length - 1, used.lastIndexOf(true) + 1);
  const lo = Math.log(o.upperMs[first]! / 1.25);
  const hi = Math.log(o.upperMs[Math.max(last, first + 1)]!);
  const xOf = (ms: number) => MARGIN.left + ((Math.log(ms) - lo) / (hi - lo)) * PLOT_W;
  const shares = o.series.map((s) => {
    const total = Math.max(1, s.values.reduce((a, b) => a + b, 0));
    return s.values.map((c) => (100 * c) / total);
  });
  const { top, step } = niceMax(Math.max(0, ...shares.flat()));
  const body = yAxis(top, step);
  const width = o.series.length;
  for (let i = first; i <= last; i++) {
    const x0 = xOf(o.upperMs[i]! / 1.25);
    const x1 = xOf(o.upperMs[i]!);
    o.series.forEach((s, k) => {
      const h = ((shares[k]![i] ?? 0) / top) * PLOT_H;
      if (h <= 0) return;
      const w = (x1 - x0) / width;
      body.push(`<rect x="${(x0 + k * w).toFixed(1)}" y="${(MARGIN.top + PLOT_H - h).toFixed(1)}" width="${Math.max(0.5, w - 0.5).toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"/>`);
    });
  }
  for (let i = first; i <= last; i += Math.max(1, Math.round((last - first) / 8))) {
    body.push(`<text x="${xOf(o.upperMs[i]!).toFixed(1)}" y="${MARGIN.top + PLOT_H + 16}" text-anchor="middle" ${FONT}>${fmt(o.upperMs[i]!)}</text>`);
  }
  for (const [j, m] of (o.markers ?? []).entries()) {
    const x = xOf(Math.max(m.ms, o.upperMs[first]! / 1.25));
    body.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${MARGIN.top}" y2="${MARGIN.top + PLOT_H}" stroke="${m.color}" stroke-dasharray="3 3"/>`);
    // Labels near the right edge run leftwards, so they stay inside the picture.
    const right = x > MARGIN.left + PLOT_W * 0.7;
    body.push(
      `<text x="${(right ? x - 3 : x + 3).toFixed(1)}" y="${MARGIN.top + 12 + (j % 6) * 12}" text-anchor="${right ? 'end' : 'start'}" ${FONT} fill="${m.color}">${escapeXml(m.label)}</text>`,
    );
  }
  return frame(o.title, 'latency, ms (log scale)', '% of transactions', body, o.series);
}

/** Grouped bars: one group per label, one bar per series. */
export function barChart(o: { title: string; yLabel: string; labels: readonly string[]; series: readonly Series<readonly (number | null)[]>[] }): string {
  const { top, step } = niceMax(Math.max(0, ...o.series.flatMap((s) => s.values.map((v) => v ?? 0))));
  const body = yAxis(top, step);
  const groupW = PLOT_W / Math.max(1, o.labels.length);
  const barW = (groupW * 0.7) / Math.max(1, o.series.length);
  o.labels.forEach((label, g) => {
    const gx = MARGIN.left + g * groupW + groupW * 0.15;
    body.push(`<text x="${(MARGIN.left + (g + 0.5) * groupW).toFixed(1)}" y="${MARGIN.top + PLOT_H + 16}" text-anchor="middle" ${FONT}>${escapeXml(label)}</text>`);
    o.series.forEach((s, k) => {
      const v = s.values[g];
      if (v === null || v === undefined) return;
      const h = (v / top) * PLOT_H;
      const x = gx + k * barW;
      body.push(`<rect x="${x.toFixed(1)}" y="${(MARGIN.top + PLOT_H - h).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"/>`);
      body.push(`<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(MARGIN.top + PLOT_H - h - 3).toFixed(1)}" text-anchor="middle" ${FONT}>${fmt(v)}</text>`);
    });
  });
  return frame(o.title, '', o.yLabel, body, o.series);
}
