/**
 * The charts of a chaos run's page (scenarios/run-plots.ts) from known data:
 * one mark per nemesis action, transfers and latency where they happened, the
 * in-doubt counts per participant; and the sampler's bound. Real runs are in
 * run-plots-html.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { nemesisMarks, renderRunPlots, runPlots, sampleInDoubt, type RunPlots } from '../../scenarios/run-plots.ts';
import type { TransferRecord } from '../../scenarios/checker.ts';
import type { TimelineEvent } from '../../scenarios/scenario.ts';

const T0 = 1_700_000_000_000;

const transfer = (id: number, startS: number, latencyMs: number, result: TransferRecord['result']): TransferRecord => ({
  id,
  deltas: [],
  result,
  startMs: T0 + startS * 1000,
  endMs: T0 + startS * 1000 + latencyMs,
});

const mark = (atS: number, lane: string, m: string, label: string): TimelineEvent => ({ kind: 'mark', atMs: T0 + atS * 1000, lane, mark: m, label });

/** Every `<svg>` of the page, in order. */
const svgsOf = (html: string): string[] => html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
const marksIn = (svg: string, kind: string): number => (svg.match(new RegExp(`data-mark="${kind}"`, 'g')) ?? []).length;
/** The numbers of every path's coordinates: each must parse. */
const pathNumbers = (svg: string): number[] => [...svg.matchAll(/<path d="([^"]*)"/g)].flatMap((m) => (m[1] as string).split(/[ ,ML]+/).filter(Boolean).map(Number));

describe('run plots', () => {
  const timeline: TimelineEvent[] = [
    mark(1, 'proxies', 'fault', 'proxy faults: p1 coordinator'),
    mark(2, 'p1', 'crash', 'SIGKILL'),
    mark(2, 'coordinator', 'crash', 'SIGKILL'),
    mark(3, 'p1', 'restart', 'start'),
    mark(3, 'coordinator', 'restart', 'start'),
    // Marks made from a node's own log lines are not the nemesis's.
    mark(4, 'p1', 'restart', 'ready, 1 in doubt'),
    mark(4, 'p2', 'crash', 'fatal: disk gone'),
    mark(5, 'p2', 'pause', 'SIGSTOP'),
    mark(6, 'p2', 'resume', 'SIGCONT'),
  ];

  it('keeps only what the nemesis did, one mark per action', () => {
    const marks = nemesisMarks(timeline);
    expect(marks.map((m) => m.kind)).toEqual(['fault', 'kill', 'kill', 'restart', 'restart', 'pause', 'resume']);
    expect(marks[1]?.label).toBe('kill p1');
  });

  it('draws transfers, latency, in-doubt counts and blocked time, each with every mark', () => {
    const history = [transfer(1, 0, 10, 'ok'), transfer(2, 0.5, 30, 'ok'), transfer(3, 2, 900, 'info'), transfer(4, 5, 20, 'fail'), transfer(5, 7, 40, 'ok')];
    const inDoubt = [
      { atMs: T0 + 2_500, participant: 'p2', inDoubt: 3, blockedMsMax: 1_200 },
      { atMs: T0 + 2_500, participant: 'p1', inDoubt: 0, blockedMsMax: 0 },
      { atMs: T0 + 3_500, participant: 'p2', inDoubt: 1, blockedMsMax: 2_400 },
    ];
    const plots: RunPlots = runPlots(history, nemesisMarks(timeline), inDoubt);
    const html = renderRunPlots(plots);
    const svgs = svgsOf(html);
    expect(svgs.map((s) => /aria-label="([^"]*)"/.exec(s)?.[1])).toEqual([
      'Transfers per second, by result',
      'Transfer latency per bucket',
      'In-doubt transactions per participant',
      'Longest blocked time per participant',
    ]);
    for (const svg of svgs) {
      expect(marksIn(svg, 'kill')).toBe(2);
      expect(marksIn(svg, 'restart')).toBe(2);
      expect(marksIn(svg, 'pause')).toBe(1);
      expect(marksIn(svg, 'resume')).toBe(1);
      expect(marksIn(svg, 'fault')).toBe(1);
      const numbers = pathNumbers(svg);
      expect(numbers.length).toBeGreaterThan(0);
      for (const n of numbers) expect(Number.isFinite(n)).toBe(true);
    }
    // The latency chart's axis reaches the slow unknown transfer; the in-doubt chart's, p2's three.
    const yTicks = (svg: string) => [...svg.matchAll(/text-anchor="end"[^>]*>([\d.]+)</g)].map((m) => Number(m[1]));
    expect(Math.max(...yTicks(svgs[1] as string))).toBeGreaterThanOrEqual(900);
    expect(Math.max(...yTicks(svgs[2] as string))).toBeGreaterThanOrEqual(3);
    expect(svgs[2]).toContain('>p1<');
    expect(svgs[2]).toContain('>p2<');
    expect(html).toContain('kill ×2');
    expect(html).toContain('5 transfers, 3 in-doubt samples');
  });

  it('the sampler stops at its bound by itself and skips a participant that does not answer', async () => {
    const asked: string[] = [];
    const sampler = sampleInDoubt(
      ['p1', 'p2'],
      async (name) => {
        asked.push(name);
        return name === 'p2' ? undefined : [{ txId: 't1', blockedMs: 500 }, { txId: 't2' }];
      },
      { everyMs: 1, samplesMax: 5 },
    );
    // No stop(): the bound alone ends the loop. A round adds one sample (p2 never answers) and
    // starts only when a full round still fits under the bound, so four rounds run.
    await sampler.finished;
    expect(sampler.samples).toHaveLength(4);
    expect(asked).toHaveLength(8);
    expect(sampler.samples.every((s) => s.participant === 'p1' && s.inDoubt === 2 && s.blockedMsMax === 500)).toBe(true);
  });
});
