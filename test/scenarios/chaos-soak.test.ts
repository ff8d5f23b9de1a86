/**
 * The CI soak: the bank workload on real processes with at least 20 SIGKILLs
 * (and SIGSTOP/SIGCONT and proxy faults), then a heal phase, judged by the
 * checker. A failure prints the seed and the violations. The duration is a
 * bound; the kills usually take under two minutes.
 */
import { describe, expect, it } from 'vitest';
import { runChaosSoak } from '../../scenarios/soak.ts';

const SEED = 20;
const KILLS = 20;

describe('chaos-soak scenario', () => {
  it(`survives ${KILLS} kills with nothing lost, split, negative or in doubt`, async () => {
    const lines: string[] = [];
    const r = await runChaosSoak({ seed: SEED, json: true, log: (l) => lines.push(l), kills: KILLS, durationMs: 200_000 });
    const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    expect(failed, `seed ${SEED}\n${lines.join('\n')}`).toEqual([]);
    expect(Number(r.figures.kills)).toBeGreaterThanOrEqual(KILLS);
    expect(r.figures).toMatchObject({ ackedCommitsLost: 0, ackedAbortsCommitted: 0, splitOutcomes: 0, negativeBalances: 0, wrongTotalReads: 0, inDoubtAtEnd: 0 });
    expect(r.figures.total).toBe(r.figures.expectedTotal);
    // The run did real work under the faults: commits acknowledged and faults injected.
    expect(Number(r.figures.ok)).toBeGreaterThan(0);
    expect(Number(r.figures.proxyFaults)).toBeGreaterThan(0);
  }, 300_000);
});
