/**
 * Issue 11: `protocol-variants` measures, on real processes, what each presumption costs, and
 * the textbook's counts hold (stated here from the protocol, not read back from the scenario's
 * own expectations): presumed abort forces nothing at the coordinator for an abort, presumed
 * nothing and presumed commit force COLLECTING before the first prepare, a no-voter is sent no
 * decision, and so on.
 */
import { describe, expect, it } from 'vitest';
import { checkRows, EXPECTED, renderTable, runProtocolVariants, VARIANTS, type Row } from '../../scenarios/protocol-variants.ts';
import type { ScenarioResult } from '../../scenarios/scenario.ts';

const expectedRows = (): Row[] =>
  VARIANTS.flatMap((variant) =>
    (['commit', 'abort'] as const).flatMap((path) =>
      (['coordinator', 'p1', 'p2'] as const).map((node) => ({ variant, path, node, ...EXPECTED[variant][path][node] })),
    ),
  );

describe('protocol-variants checks', () => {
  it('pass on the prescribed counts and name the node and count that differ', () => {
    expect(checkRows(expectedRows()).every((c) => c.ok)).toBe(true);
    const wrong = expectedRows().map((r) => (r.variant === 'presumed-abort' && r.path === 'abort' && r.node === 'coordinator' ? { ...r, forced: 1 } : r));
    const failed = checkRows(wrong).filter((c) => !c.ok);
    expect(failed.map((c) => c.name)).toEqual(['presumed-abort abort', 'presumed abort forces nothing at the coordinator for an abort']);
    expect(failed[0]?.detail).toBe('coordinator: forced 1 (expected 0)');
  });

  it('render one line per variant, path and node under a header', () => {
    const lines = renderTable(expectedRows()).split('\n');
    expect(lines).toHaveLength(1 + 18);
    expect(lines[0]).toMatch(/^variant\s+path\s+node\s+forced writes\s+all writes\s+messages sent/);
  });
});

describe('protocol-variants on real processes', () => {
  let r: ScenarioResult;
  const fig = (key: string) => r.figures[key];

  it('runs one committed and one aborted transaction per presumption, and every check holds', { timeout: 300_000 }, async () => {
    const lines: string[] = [];
    r = await runProtocolVariants({ seed: 1, json: false, log: (l) => lines.push(l) });
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
    expect(lines.join('\n')).toMatch(/presumed-commit\s+abort\s+p2/);
  });

  it('shows the textbook counts', () => {
    // Presumed abort: an abort forces nothing at the coordinator; a commit forces only the decision.
    expect(fig('presumed-abort.abort.coordinator.forced')).toBe(0);
    expect(fig('presumed-abort.commit.coordinator.forced')).toBe(1);
    // Presumed nothing and presumed commit force COLLECTING and then the decision, on both paths.
    for (const v of ['presumed-nothing', 'presumed-commit']) {
      for (const p of ['commit', 'abort']) expect(fig(`${v}.${p}.coordinator.forced`)).toBe(2);
    }
    for (const v of VARIANTS) {
      // Two prepares and two commits; on the abort path the no-voter is sent no decision.
      expect(fig(`${v}.commit.coordinator.messages`)).toBe(4);
      expect(fig(`${v}.abort.coordinator.messages`)).toBe(3);
      // A vote and an ack from each yes-voter; the no-voter only votes.
      expect(fig(`${v}.commit.p1.messages`)).toBe(2);
      expect(fig(`${v}.abort.p2.messages`)).toBe(1);
      // PREPARED and COMMITTED are forced at each participant of a commit.
      expect(fig(`${v}.commit.p1.forced`)).toBe(2);
      expect(fig(`${v}.commit.p2.forced`)).toBe(2);
    }
    // Presumed commit forces the participants' abort records; the others write them lazily.
    expect(fig('presumed-commit.abort.p1.forced')).toBe(2);
    expect(fig('presumed-abort.abort.p1.forced')).toBe(1);
    expect(fig('presumed-nothing.abort.p1.forced')).toBe(1);
  });
});
