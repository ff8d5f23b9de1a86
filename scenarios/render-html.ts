/**
 * A scenario result as one self-contained HTML page: the checks, the figures,
 * and the timeline as a sequence diagram in inline SVG (no script, no external
 * file), with a lane per node, an arrow per message and a mark per crash,
 * restart, pause or forced WAL write.
 *
 * Rows are ordinal, one per moment something happened, so a burst of
 * messages stays readable; a long silence (a blocked participant waiting for
 * a dead coordinator) is drawn as a break labelled with its length, and the
 * left margin shows the time since the first event.
 */
import { renderRunPlots } from './run-plots.ts';
import type { Lane, ScenarioResult, TimelineEvent } from './scenario.ts';
import { CLIENT_LANE, COORDINATOR_LANE } from './timeline.ts';

const LANE_WIDTH = 170;
const LEFT_MARGIN = 90;
const TOP = 60;
const ROW_HEIGHT = 22;
/** A silence longer than this gets a visible break with its length. */
const GAP_BREAK_MS = 400;
const GAP_EXTRA_PX = 18;

const COLOURS: Readonly<Record<string, string>> = {
  prepare: '#1f6feb',
  vote: '#8250df',
  commit: '#1a7f37',
  abort: '#cf222e',
  ack: '#57606a',
  inquiry: '#bf8700',
  client: '#0a3069',
  wal: '#0969da',
  crash: '#cf222e',
  restart: '#1a7f37',
  pause: '#6e7781',
  resume: '#6e7781',
  blocked: '#bc4c00',
  heuristic: '#8250df',
  fault: '#bf8700',
  note: '#57606a',
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** Lanes in reading order: client, coordinator, participants by number, anything else after. */
export function lanesOf(events: readonly TimelineEvent[], given?: readonly Lane[]): Lane[] {
  const seen = new Set<Lane>(given ?? []);
  for (const e of events) {
    seen.add(e.lane);
    if (e.kind === 'message') seen.add(e.to);
  }
  if (given) return [...given, ...[...seen].filter((l) => !given.includes(l))];
  const rank = (l: Lane) => (l === CLIENT_LANE ? 0 : l === COORDINATOR_LANE ? 1 : /^p\d+$/.test(l) ? 2 : 3);
  const num = (l: Lane) => Number(/^p(\d+)$/.exec(l)?.[1] ?? 0);
  return [...seen].sort((a, b) => rank(a) - rank(b) || num(a) - num(b) || a.localeCompare(b));
}

interface Anchor {
  readonly atMs: number;
  /** Order of creation, so simultaneous anchors keep the order they were emitted in. */
  readonly seq: number;
}

function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

export function renderSequenceSvg(events: readonly TimelineEvent[], lanesGiven?: readonly Lane[]): string {
  const lanes = lanesOf(events, lanesGiven);
  const laneX = new Map(lanes.map((l, i) => [l, LEFT_MARGIN + LANE_WIDTH / 2 + i * LANE_WIDTH]));
  // Every moment that needs a row: sends, receives and marks.
  const anchors: Anchor[] = [];
  let seq = 0;
  const anchorOf = new Map<TimelineEvent, { from: Anchor; to?: Anchor }>();
  for (const e of events) {
    const from = { atMs: e.atMs, seq: seq++ };
    anchors.push(from);
    if (e.kind === 'message' && e.toAtMs !== undefined && e.toAtMs !== e.atMs) {
      const to = { atMs: e.toAtMs, seq: seq++ };
      anchors.push(to);
      anchorOf.set(e, { from, to });
    } else {
      anchorOf.set(e, { from });
    }
  }
  anchors.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
  const t0 = anchors[0]?.atMs ?? 0;
  const rowY = new Map<Anchor, number>();
  const breaks: { y: number; gapMs: number }[] = [];
  const ticks: { y: number; ms: number }[] = [];
  let y = TOP + ROW_HEIGHT;
  let prev: number | undefined;
  for (const a of anchors) {
    if (prev !== undefined) {
      const gap = a.atMs - prev;
      if (gap > GAP_BREAK_MS) {
        breaks.push({ y: y - ROW_HEIGHT / 2 + GAP_EXTRA_PX / 2, gapMs: gap });
        y += GAP_EXTRA_PX;
      }
      if (a.atMs !== prev) ticks.push({ y, ms: a.atMs - t0 });
      y += ROW_HEIGHT;
    } else {
      ticks.push({ y, ms: 0 });
      y += ROW_HEIGHT;
    }
    rowY.set(a, y - ROW_HEIGHT);
    prev = a.atMs;
  }
  const height = y + ROW_HEIGHT;
  const width = LEFT_MARGIN + lanes.length * LANE_WIDTH + 20;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="ui-monospace, Menlo, monospace" font-size="11">`);
  out.push('<defs>');
  for (const [name, colour] of Object.entries(COLOURS)) {
    out.push(`<marker id="arrow-${name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${colour}"/></marker>`);
  }
  out.push('</defs>');
  // Lanes.
  for (const l of lanes) {
    const x = laneX.get(l) as number;
    out.push(`<text x="${x}" y="${TOP - 24}" text-anchor="middle" font-size="13" font-weight="bold">${escapeHtml(l)}</text>`);
    out.push(`<line x1="${x}" y1="${TOP - 14}" x2="${x}" y2="${height - 8}" stroke="#d0d7de" stroke-width="2"/>`);
  }
  for (const t of ticks) {
    out.push(`<text x="${LEFT_MARGIN - 8}" y="${t.y + 4}" text-anchor="end" fill="#6e7781">+${escapeHtml(fmtMs(t.ms))}</text>`);
  }
  for (const b of breaks) {
    out.push(`<rect x="${LEFT_MARGIN - 4}" y="${b.y - 6}" width="${width - LEFT_MARGIN}" height="12" fill="#f6f8fa"/>`);
    out.push(`<text x="${LEFT_MARGIN + 4}" y="${b.y + 4}" fill="#6e7781" font-style="italic">… ${escapeHtml(fmtMs(b.gapMs))} pass …</text>`);
  }
  for (const e of events) {
    const a = anchorOf.get(e);
    if (!a) continue;
    const y1 = rowY.get(a.from) as number;
    const x1 = laneX.get(e.lane) as number;
    const title = `<title>${escapeHtml(`${fmtMs(e.atMs - t0)} ${e.lane}: ${e.label}${e.txId ? ` [${e.txId}]` : ''}`)}</title>`;
    if (e.kind === 'mark') {
      const colour = COLOURS[e.mark] ?? COLOURS.note;
      let shape: string;
      if (e.mark === 'crash') shape = `<path d="M${x1 - 6},${y1 - 6} L${x1 + 6},${y1 + 6} M${x1 + 6},${y1 - 6} L${x1 - 6},${y1 + 6}" stroke="${colour}" stroke-width="3"/>`;
      else if (e.mark === 'wal') shape = `<rect x="${x1 - 5}" y="${y1 - 5}" width="10" height="10" fill="${colour}"/>`;
      else if (e.mark === 'restart') shape = `<path d="M${x1 - 6},${y1 + 5} L${x1 + 6},${y1 + 5} L${x1},${y1 - 6} z" fill="${colour}"/>`;
      else shape = `<circle cx="${x1}" cy="${y1}" r="5" fill="${colour}"/>`;
      out.push(`<g>${title}${shape}<text x="${x1 + 10}" y="${y1 + 4}" fill="${colour}">${escapeHtml(e.label)}</text></g>`);
      continue;
    }
    const x2 = laneX.get(e.to) as number;
    const colour = COLOURS[e.message] ?? COLOURS.note;
    const marker = COLOURS[e.message] ? e.message : 'note';
    const dashed = e.message === 'inquiry' ? ' stroke-dasharray="4 3"' : '';
    if (e.toAtMs === undefined) {
      // No receipt in the receiver's log: lost on the way, or the receiver died
      // before its log line was written. The arrow stops short, with a cross.
      const xe = x1 + (x2 - x1) * 0.6;
      out.push(
        `<g>${title}<line x1="${x1}" y1="${y1}" x2="${xe}" y2="${y1}" stroke="${colour}" stroke-width="1.5" stroke-dasharray="2 3"/>` +
          `<path d="M${xe - 4},${y1 - 4} L${xe + 4},${y1 + 4} M${xe + 4},${y1 - 4} L${xe - 4},${y1 + 4}" stroke="${colour}" stroke-width="2"/>` +
          `<text x="${(x1 + xe) / 2}" y="${y1 - 4}" text-anchor="middle" fill="${colour}">${escapeHtml(e.label)} (receipt not logged)</text></g>`,
      );
      continue;
    }
    const y2 = a.to ? (rowY.get(a.to) as number) : y1;
    out.push(
      `<g>${title}<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${colour}" stroke-width="1.5"${dashed} marker-end="url(#arrow-${marker})"/>` +
        `<text x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2 - 4}" text-anchor="middle" fill="${colour}">${escapeHtml(e.label)}</text></g>`,
    );
  }
  out.push('</svg>');
  return out.join('\n');
}

export interface HtmlOptions {
  /** The command line that produced the run, shown so a reader can replay it. */
  readonly command?: string;
  readonly seed?: number;
}

export function renderHtml(result: ScenarioResult, options: HtmlOptions = {}): string {
  const timeline = result.timeline ?? [];
  const checks = result.checks
    .map((c) => `<tr class="${c.ok ? 'ok' : 'bad'}"><td>${c.ok ? '✔' : '✘'}</td><td>${escapeHtml(c.name)}</td><td>${escapeHtml(c.detail)}</td></tr>`)
    .join('\n');
  const figures = Object.entries(result.figures)
    .map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(String(v))}</td></tr>`)
    .join('\n');
  const legend = ['prepare', 'vote', 'commit', 'abort', 'ack', 'inquiry', 'client']
    .map((k) => `<span style="color:${COLOURS[k]}">━ ${k}</span>`)
    .concat(['wal', 'crash', 'restart', 'blocked', 'heuristic', 'pause'].map((k) => `<span style="color:${COLOURS[k]}">● ${k}</span>`))
    .join(' &nbsp; ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>twopc scenario ${escapeHtml(result.name)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; }
td { border-bottom: 1px solid #d0d7de; padding: 3px 10px; vertical-align: top; }
tr.ok td:first-child { color: #1a7f37; } tr.bad td:first-child { color: #cf222e; } tr.bad { background: #ffebe9; }
.verdict { font-weight: bold; color: ${result.ok ? '#1a7f37' : '#cf222e'}; }
.legend { font-size: 12px; margin: 8px 0; }
.chart { margin: 8px 0; }
.diagram { overflow-x: auto; border: 1px solid #d0d7de; padding: 8px; }
code { background: #f6f8fa; padding: 1px 4px; }
</style>
</head>
<body>
<h1>twopc scenario <code>${escapeHtml(result.name)}</code>: <span class="verdict">${result.ok ? 'every check held' : 'a check failed'}</span></h1>
${options.command ? `<p>Command: <code>${escapeHtml(options.command)}</code></p>` : ''}
${options.seed !== undefined ? `<p>Seed: <code>${options.seed}</code></p>` : ''}
<h2>Checks</h2>
<table>${checks}</table>
<h2>Figures</h2>
<table>${figures}</table>
${result.plots ? renderRunPlots(result.plots) : ''}
<h2>Timeline</h2>
<p>Built from the nodes' JSON log lines and the harness's own events. Time runs down; rows are ordinal, and a long silence is shown as a break with its length. Hover an arrow or mark for its transaction id.</p>
<div class="legend">${legend}</div>
<div class="diagram">
${timeline.length > 0 ? renderSequenceSvg(timeline, result.lanes) : '<p>(no timeline recorded)</p>'}
</div>
</body>
</html>
`;
}
