/**
 * fsync failure injection on real processes: a participant and then the
 * coordinator hit an EIO on fdatasync mid-workload. Each exits non-zero at
 * once, its WAL opens, it recovers on restart, and the checker passes, so
 * nothing acknowledged was lost with the failed sync.
 */
import { describe, expect, it } from 'vitest';
import { runFsyncFailure } from '../../scenarios/fsync-failure.ts';

describe('fsync-failure scenario', () => {
  it('a failed fdatasync is fail-stop in a participant and in the coordinator, and both recover from their WAL', async () => {
    const lines: string[] = [];
    const r = await runFsyncFailure({ seed: 4, json: true, log: (l) => lines.push(l) });
    const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    expect(failed, lines.join('\n')).toEqual([]);
    expect(r.figures).toMatchObject({ 'p2.exitCode': '1', 'coordinator.exitCode': '1' });
    // Work was acknowledged while each node ran on the failing disk: the check had something to check.
    expect(Number(r.figures['p2.okWhileFailing'])).toBeGreaterThan(0);
    expect(Number(r.figures['coordinator.okWhileFailing'])).toBeGreaterThan(0);
  }, 300_000);
});
