/**
 * `twopc bench --resource postgres` on real processes and a real PostgreSQL: a short
 * run that reports PostgreSQL's figures beside the key-value store's from the same
 * run, with PostgreSQL's own floor measured, and leaves no database behind.
 */
import { describe, expect, it } from 'vitest';
import { runBench } from '../../scenarios/bench.ts';
import { requirePostgres, sql, testPgUrl } from '../../scenarios/postgres.ts';

describe('bench --resource postgres', () => {
  it('reports PostgreSQL beside the key-value store and drops its databases', async () => {
    await requirePostgres();
    const report = await runBench({ transactions: 40, concurrency: 4, participants: 2, fsync: 'group', resource: 'postgres' });
    expect(report.resource).toBe('postgres');
    expect(report.transactions.errors).toBe(0);
    expect(report.transactions.committed).toBeGreaterThan(0);
    expect(report.throughputTxPerS).toBeGreaterThan(0);
    expect(report.beside).toMatchObject({ resource: 'kv', throughputTxPerS: expect.any(Number) });
    expect(report.beside?.transactions.committed).toBeGreaterThan(0);
    expect(Object.keys(report.machine.postgres ?? {})).toEqual(['round trip', 'prepare+commit']);
    const left = await sql<{ datname: string }>(testPgUrl(), `SELECT datname FROM pg_database WHERE datname LIKE $1`, [`twopc_bench_%_${process.pid}_%`]);
    expect(left).toEqual([]);
  }, 300_000);
});
