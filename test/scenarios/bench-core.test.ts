/**
 * `npm run bench:core`: the report's shape on a tiny run, and its argument checks. No figure is
 * asserted: speed is measured by the bench, never by a test.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCoreBenchArgs, runCoreBench, type CoreFigures } from '../../scenarios/bench-core.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

function expectFigures(f: CoreFigures, steps: readonly string[]): void {
  expect(Object.keys(f.steps)).toEqual(steps);
  for (const x of [...Object.values(f.steps), f.transaction]) {
    expect(Object.keys(x).sort()).toEqual(['largeNsPerStep', 'ratio', 'smallNsPerStep']);
    for (const v of Object.values(x)) expect(Number.isFinite(v)).toBe(true);
  }
  expect(f.worstRatio).toBe(Math.max(...Object.values(f.steps).map((x) => x.ratio)));
}

describe('bench:core', () => {
  it('reports each core step for the small and the large state, with their ratio', () => {
    const r = runCoreBench({ active: 20, remembered: 50, rounds: 2, batch: 4 });
    expect(r.small).toEqual({ active: 10, remembered: 10 });
    expect(r.large).toEqual({ active: 20, remembered: 50 });
    expect(r.ratioTarget).toBe(1.5);
    expect(r.machine.cpus).toBeGreaterThan(0);
    expectFigures(r.coordinator, ['runWhole', 'vote', 'decision', 'ack', 'finish']);
    expectFigures(r.participant, ['prepare', 'vote', 'commit']);
    expect(r.withinTarget).toBe(r.coordinator.transaction.ratio <= 1.5 && r.participant.transaction.ratio <= 1.5);
  });

  it('takes its bounds from the command line and refuses what is out of them', () => {
    expect(parseCoreBenchArgs(['--json', '--rounds', '3', '--batch', '5', '--active', '40', '--remembered', '60'])).toEqual({
      json: true,
      options: { rounds: 3, batch: 5, active: 40, remembered: 60 },
    });
    expect(() => parseCoreBenchArgs(['--rounds', '0'])).toThrow('Expected `--rounds` to be an integer from 1 to 1000, got 0.');
    expect(() => parseCoreBenchArgs(['--active', '5'])).toThrow('Expected `--active` to be an integer from 10 to 100000, got 5.');
    expect(() => parseCoreBenchArgs(['--fast'])).toThrow('Unknown argument --fast.');
  });

  it('prints one JSON object with --json, and one clear line and exit code 2 for a bad argument', () => {
    const ok = spawnSync(TSX, ['scenarios/bench-core.ts', '--json', '--active', '12', '--remembered', '12', '--rounds', '1', '--batch', '2'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(ok.status).toBe(0);
    const report = JSON.parse(ok.stdout) as { coordinator: CoreFigures; participant: CoreFigures };
    expect(Object.keys(report.coordinator.steps)).toHaveLength(5);
    const bad = spawnSync(TSX, ['scenarios/bench-core.ts', '--batch', 'x'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr.split('\n')[0]).toBe('Expected `--batch` to be an integer from 1 to 1000, got x.');
    expect(bad.stderr).not.toContain('    at ');
  });
});
