/**
 * The `--html` pages of short real chaos runs: chaos-soak with two kills and
 * network-faults with short phases. Each page has the four charts, every
 * chart marks each kill, pause and proxy fault the run reports, and the
 * charts' numbers parse. Nothing here depends on how fast the machine is.
 */
import { describe, expect, it } from 'vitest';
import { networkPhases, runNetworkFaults } from '../../scenarios/network-faults.ts';
import { renderHtml } from '../../scenarios/render-html.ts';
import type { ScenarioResult } from '../../scenarios/scenario.ts';
import { runChaosSoak } from '../../scenarios/soak.ts';

const CHART_TITLES = ['Transfers per second, by result', 'Transfer latency per bucket', 'In-doubt transactions per participant', 'Longest blocked time per participant'];

/** The charts of the "What happened" section, by title. */
function chartsOf(html: string): Map<string, string> {
  const svgs = html.match(/<svg[^>]*aria-label="[^"]*"[\s\S]*?<\/svg>/g) ?? [];
  return new Map(svgs.map((s) => [/aria-label="([^"]*)"/.exec(s)?.[1] as string, s]));
}

const marksIn = (svg: string, kind: string): number => (svg.match(new RegExp(`data-mark="${kind}"`, 'g')) ?? []).length;

/** Every coordinate of the page's charts: paths, lines and texts. */
function chartNumbers(svg: string): number[] {
  const paths = [...svg.matchAll(/<path d="([^"]*)"/g)].flatMap((m) => (m[1] as string).split(/[ ,ML]+/).filter(Boolean));
  const attrs = [...svg.matchAll(/ (?:x|y|x1|x2|y1|y2)="([^"]*)"/g)].map((m) => m[1] as string);
  return [...paths, ...attrs].map(Number);
}

function expectCharts(r: ScenarioResult, expected: Record<string, number>): void {
  const html = renderHtml(r);
  expect(html).toContain('<h2>What happened</h2>');
  const charts = chartsOf(html);
  expect([...charts.keys()]).toEqual(expect.arrayContaining(CHART_TITLES));
  for (const title of CHART_TITLES) {
    const svg = charts.get(title) as string;
    for (const [kind, n] of Object.entries(expected)) expect(marksIn(svg, kind), `${title}: ${kind}`).toBe(n);
    const numbers = chartNumbers(svg);
    expect(numbers.length).toBeGreaterThan(10);
    expect(numbers.filter((n) => !Number.isFinite(n))).toEqual([]);
  }
  // The data behind them: every transfer the checker judged, and in-doubt samples from each participant.
  expect(r.plots?.transfers.length).toBe(Number(r.figures.transfers));
  expect(new Set(r.plots?.inDoubt.map((s) => s.participant))).toEqual(new Set(['p1', 'p2', 'p3']));
}

describe('chaos run pages', () => {
  it('chaos-soak --kills 2: one mark per kill and pause the run reports, on every chart', async () => {
    const lines: string[] = [];
    const r = await runChaosSoak({ seed: 5, json: true, log: (l) => lines.push(l), kills: 2, timeline: true });
    expect(r.checks.filter((c) => !c.ok), lines.join('\n')).toEqual([]);
    expect(Number(r.figures.kills)).toBeGreaterThanOrEqual(2);
    const faultMarks = r.plots?.marks.filter((m) => m.kind === 'fault').length ?? 0;
    // A fault phase may draw no rules at all, so the marks are at most the phases, and the seed gives at least one.
    expect(faultMarks).toBeGreaterThan(0);
    expect(faultMarks).toBeLessThanOrEqual(Number(r.figures.proxyFaultPhases));
    expectCharts(r, { kill: Number(r.figures.kills), pause: Number(r.figures.pauses), fault: faultMarks });
  }, 240_000);

  it('network-faults: one proxy-fault mark per phase on every chart', async () => {
    const lines: string[] = [];
    const r = await runNetworkFaults({ seed: 3, json: true, log: (l) => lines.push(l), durationMs: 14_000, timeline: true });
    expect(r.plots, lines.join('\n')).toBeDefined();
    expectCharts(r, { fault: networkPhases().length, kill: 0 });
  }, 240_000);
});
