/** The metrics registry: escaping, bounded series, one series object per label set, and a strict parse of its text. */
import { describe, expect, it } from 'vitest';
import { Metrics, SERIES_PER_METRIC_MAX } from '../../shared/metrics.ts';
import { parseExposition, valueOf } from '../../scenarios/exposition.ts';

describe('Metrics', () => {
  it('escapes label values instead of rewriting them', async () => {
    const m = new Metrics();
    const odd = 'a "quoted" back\\slash\nnewline';
    m.inc('odd_total', 'Odd labels.', { why: odd });
    const text = await m.render();
    expect(text).toContain('twopc_odd_total{why="a \\"quoted\\" back\\\\slash\\nnewline"} 1');
    expect(valueOf(parseExposition(text), 'twopc_odd_total', 'twopc_odd_total', { why: odd })).toBe(1);
  });

  it('finds a series once and keeps it, and folds label sets past the bound into one', async () => {
    const m = new Metrics();
    expect(m.child(m.retries, 'prepare')).toBe(m.child(m.retries, 'prepare'));
    for (let i = 0; i < SERIES_PER_METRIC_MAX + 10; i++) m.inc('many_total', 'Many.', { n: String(i) });
    const family = parseExposition(await m.render()).get('twopc_many_total');
    expect(family?.samples.length).toBe(SERIES_PER_METRIC_MAX + 1);
    expect(valueOf(parseExposition(await m.render()), 'twopc_many_total', 'twopc_many_total', { n: 'overflow' })).toBe(10);
    expect(await m.get('many_total', { n: '3' })).toBe(1);
  });

  it('observes WAL syncs into the fsync and batch histograms, and counts those that held the event loop', async () => {
    const m = new Metrics();
    m.observeWalSync(0.4, 3, true);
    m.observeWalSync(2, 1, false);
    const families = parseExposition(await m.render());
    expect(valueOf(families, 'twopc_wal_fsync_seconds', 'twopc_wal_fsync_seconds_count')).toBe(2);
    expect(valueOf(families, 'twopc_wal_fsync_seconds', 'twopc_wal_fsync_seconds_bucket', { le: '0.0005' })).toBe(1);
    expect(valueOf(families, 'twopc_wal_sync_batch_records', 'twopc_wal_sync_batch_records_sum')).toBe(4);
    expect(valueOf(families, 'twopc_wal_fsyncs_total', 'twopc_wal_fsyncs_total')).toBe(2);
    expect(valueOf(families, 'twopc_wal_fsyncs_blocking_total', 'twopc_wal_fsyncs_blocking_total')).toBe(1);
  });

  it('keeps two nodes in one process apart', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.walForcedWrites.inc();
    expect(await a.get('wal_forced_writes_total')).toBe(1);
    expect(await b.get('wal_forced_writes_total')).toBe(0);
  });
});
