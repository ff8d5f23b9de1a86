/**
 * `twopc scenario run coordinator-failover` on real processes and a real etcd: the leader dies
 * right after logging COMMIT, the standby takes over, and every participant commits while the
 * old leader stays down. The scenario's one timed check (blocked at most a lease plus 2 s) is
 * read here but not asserted: this machine is shared and noisy, and tests make no timed
 * assertions; the scenario itself fails on it when run by hand or in CI's scenario step.
 */
import { describe, expect, it } from 'vitest';
import { coordinatorFailover } from '../../scenarios/ha.ts';

const SCENARIO_TIMEOUT_MS = 240_000;

describe('coordinator-failover', () => {
  it('the standby settles every prepared participant without the old leader restarting', async () => {
    const lines: string[] = [];
    const r = await coordinatorFailover({ seed: 1, json: true, log: (l) => lines.push(l) });
    const timed = /^blocked at most one lease/;
    const failed = r.checks.filter((c) => !c.ok && !timed.test(c.name)).map((c) => `${c.name}: ${c.detail}`);
    expect(failed).toEqual([]);
    const names = r.checks.map((c) => c.name);
    expect(names).toContain('the standby takes over');
    expect(names).toContain('every participant commits without the old leader restarting');
    expect(names.some((n) => timed.test(n))).toBe(true);
    // Both blocked times were measured and printed side by side.
    expect(Number(r.figures.haBlockedMsMax)).toBeGreaterThan(0);
    expect(Number(r.figures.singleBlockedMsMax)).toBeGreaterThan(0);
    expect(lines.join('\n')).toMatch(/Blocked \(YES vote to commit, slowest participant\): HA group \d+\.\d s; single coordinator \d+\.\d s/);
  }, SCENARIO_TIMEOUT_MS);
});
