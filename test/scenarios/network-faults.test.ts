/**
 * The bank workload through fault proxies on real processes: drop-request,
 * drop-response, duplicate, delay, reorder and hang on prepare, vote, commit,
 * abort, ack and outcome inquiries; then heal, and the checker must pass.
 */
import { describe, expect, it } from 'vitest';
import { runNetworkFaults } from '../../scenarios/network-faults.ts';

describe('network-faults scenario', () => {
  it('keeps the total, agreement and exact balances under every proxy fault, and converges after healing', async () => {
    const lines: string[] = [];
    const r = await runNetworkFaults({ seed: 3, json: true, log: (l) => lines.push(l), durationMs: 42_000 });
    const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    expect(failed, lines.join('\n')).toEqual([]);
    expect(r.figures.total).toBe(r.figures.expectedTotal);
    expect(Number(r.figures.ok)).toBeGreaterThan(0);
    expect(Number(r.figures.fail)).toBeGreaterThan(0);
    // Every message of the protocol was hit by at least one fault.
    for (const m of ['prepare', 'vote', 'commit', 'abort', 'ack', 'outcome inquiry']) {
      expect(r.checks.find((c) => c.name === `faults injected on ${m}`)?.ok).toBe(true);
    }
  }, 240_000);
});
