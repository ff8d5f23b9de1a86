/**
 * The bench's SVG pictures are embedded as they are in an HTML page and in
 * docs/performance.md, so each must be one well-formed, self-contained <svg>
 * with finite coordinates, whatever the figures (empty, all zero, one point).
 */
import { describe, expect, it } from 'vitest';
import { barChart, escapeXml, histogramChart, lineChart } from '../../scenarios/bench-svg.ts';

const upperMs = Array.from({ length: 48 }, (_, i) => 0.5 * 1.25 ** i);

function expectSound(svg: string): void {
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  expect(svg.match(/<svg /g)).toHaveLength(1);
  expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  // Nothing fetched from elsewhere.
  expect(svg).not.toMatch(/href=|<image|<script|url\(/);
}

describe('bench pictures', () => {
  it('draws lines, including an empty series and a single point', () => {
    const svg = lineChart({
      title: 'tx/s',
      xLabel: 's',
      yLabel: 'tx/s',
      xStep: 0.25,
      series: [
        { name: 'batched', color: '#00f', values: [10, 20, 15] },
        { name: 'none', color: '#f00', values: [] },
        { name: 'one', color: '#0f0', values: [3] },
      ],
    });
    expectSound(svg);
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg).toContain('batched');
  });

  it('draws a histogram with percentile markers, and an empty one', () => {
    const counts = upperMs.map((_, i) => (i >= 20 && i < 25 ? i : 0));
    const svg = histogramChart({ title: 'latency', upperMs, series: [{ name: 'a', color: '#00f', values: counts }], markers: [{ label: 'p99 9.1', ms: 9.1, color: '#555' }] });
    expectSound(svg);
    expect(svg.match(/<rect x=[^>]*fill="#00f"/g)?.length).toBeGreaterThanOrEqual(5);
    expect(svg).toContain('p99 9.1');
    expectSound(histogramChart({ title: 'empty', upperMs, series: [{ name: 'a', color: '#00f', values: upperMs.map(() => 0) }] }));
  });

  it('draws grouped bars, leaving out a missing value, and escapes text', () => {
    const svg = barChart({
      title: 'CPU <per> "tx"',
      yLabel: 'ms',
      labels: ['coordinator', 'p1'],
      series: [
        { name: 'batched', color: '#00f', values: [1.2, 0.4] },
        { name: 'unbatched', color: '#f00', values: [null, 0.6] },
      ],
    });
    expectSound(svg);
    expect(svg).toContain(escapeXml('CPU <per> "tx"'));
    expect(svg).not.toContain('CPU <per>');
    // Three bars (besides the two legend swatches, at the top): one value is missing.
    const bars = (svg.match(/<rect x=[^>]*fill="#(00f|f00)"\/>/g) ?? []).filter((r) => !r.includes('y="22"'));
    expect(bars).toHaveLength(3);
  });
});
