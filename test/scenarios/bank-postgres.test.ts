/**
 * The CI run of `twopc scenario run bank-postgres` (issue 8, "must show" 5): the bank
 * workload over two PostgreSQL databases and a key-value participant, at least 10
 * SIGKILLs of the coordinator and the participants, and PostgreSQL itself crashed and
 * restarted once while transactions are prepared in it. The scenario runs its own
 * PostgreSQL server (initdb in a temp directory), so the shared one other tests use is
 * never restarted. A failure prints the seed and the narration.
 */
import { describe, expect, it } from 'vitest';
import { runBankPostgres } from '../../scenarios/bank-postgres.ts';

const SEED = 8;
const KILLS = 10;

describe('bank-postgres scenario', () => {
  it(`survives ${KILLS} kills and a PostgreSQL restart with the total unchanged and nothing left prepared`, async () => {
    const lines: string[] = [];
    const r = await runBankPostgres({ seed: SEED, json: true, log: (l) => lines.push(l), kills: KILLS, durationMs: 420_000 });
    const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    expect(failed, `seed ${SEED}\n${lines.join('\n')}`).toEqual([]);
    expect(Number(r.figures.kills)).toBeGreaterThanOrEqual(KILLS);
    expect(r.figures).toMatchObject({ pgRestarts: 1, preparedLeft: 0, inDoubtAtEnd: 0, splitOutcomes: 0, ackedCommitsLost: 0, ackedAbortsCommitted: 0, negativeBalances: 0 });
    expect(Number(r.figures.preparedAtPgRestart)).toBeGreaterThan(0);
    expect(r.figures.total).toBe(r.figures.expectedTotal);
    // The run did real work under the faults: commits acknowledged.
    expect(Number(r.figures.ok)).toBeGreaterThan(0);
  }, 600_000);
});
