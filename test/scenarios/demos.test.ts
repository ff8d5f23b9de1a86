/**
 * The teaching demos on real processes: each must hold every one of its
 * checks. The checks are the lesson (blocked while the coordinator is down,
 * settled by presumed abort, learned from a peer, reported heuristic-mixed).
 */
import { describe, expect, it } from 'vitest';
import { blocking, cooperativeTermination, coordinatorCrash, heuristic, participantCrash } from '../../scenarios/demos.ts';
import type { ScenarioContext, ScenarioResult } from '../../scenarios/scenario.ts';

const DEMO_TIMEOUT_MS = 180_000;

function ctx(seed: number): ScenarioContext & { lines: string[] } {
  const lines: string[] = [];
  return { seed, json: true, log: (l) => lines.push(l), timeline: true, lines };
}

function expectAllHeld(r: ScenarioResult): void {
  const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
  expect(failed).toEqual([]);
  expect(r.ok).toBe(true);
  expect(r.timeline?.length ?? 0).toBeGreaterThan(5);
}

describe('teaching demos', () => {
  it('blocking: all prepared, coordinator gone, blocked; presumed abort after its restart', async () => {
    const c = ctx(1);
    const r = await blocking(c);
    expectAllHeld(r);
    expect(Number(r.figures.p1BlockedMs)).toBeGreaterThan(0);
    expect(c.lines.join('\n')).toMatch(/BLOCKED/);
  }, DEMO_TIMEOUT_MS);

  it('coordinator-crash: in doubt until the restart, then committed', async () => {
    expectAllHeld(await coordinatorCrash(ctx(2)));
  }, DEMO_TIMEOUT_MS);

  it('participant-crash: back in doubt holding its lock after everyone else aborted, then aborts', async () => {
    expectAllHeld(await participantCrash(ctx(3)));
  }, DEMO_TIMEOUT_MS);

  it('cooperative-termination: learned from a peer while the coordinator is down', async () => {
    const r = await cooperativeTermination(ctx(4));
    expectAllHeld(r);
  }, DEMO_TIMEOUT_MS);

  it('heuristic: an operator abort against a commit is reported heuristic-mixed', async () => {
    const r = await heuristic(ctx(5));
    expectAllHeld(r);
    expect(r.figures.coordinatorOutcome).toBe('heuristic-mixed');
  }, DEMO_TIMEOUT_MS);
});
