/**
 * Issue 9, "must show" 3: /metrics of real processes parses (a strict parser
 * of the exposition format, scenarios/exposition.ts) and has the histograms
 * the issue names, whose counts move when a transaction commits: phase
 * latencies (prepare, decision, ack) at the coordinator, blocked seconds at a
 * participant, WAL fsync latency and batch size at both; also the counters a
 * bench reads (HTTP requests by route, forced WAL writes) and Node's defaults.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessCluster } from '../../scenarios/harness.ts';
import { startCluster } from '../helpers/cluster.ts';
import { parseExposition, valueOf, type Family } from '../../scenarios/exposition.ts';
import { eventually, post } from '../helpers/http.ts';

let c: ProcessCluster;
let teardown: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ cluster: c, teardown } = await startCluster('metrics', { participants: 2 }));
});
// A start that failed leaves nothing to tear down, and must not hide its own error behind another.
afterAll(() => teardown?.());

async function scrape(url: string): Promise<Map<string, Family>> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(15_000) });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** A histogram family with buckets for `labels`, and its _count. */
function histogram(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): { buckets: number; count: number } {
  const f = families.get(name);
  expect(f?.type, name).toBe('histogram');
  const matches = (l: Readonly<Record<string, string>>) => Object.entries(labels).every(([k, v]) => l[k] === v);
  return {
    buckets: f?.samples.filter((s) => s.name === `${name}_bucket` && matches(s.labels)).length ?? 0,
    count: valueOf(families, name, `${name}_count`, labels),
  };
}

describe('GET /metrics', () => {
  it('parses, and its histograms and counters move when a transaction commits', async () => {
    const p1 = c.participants[0] as ProcessCluster['coordinator'];
    const [cBefore, pBefore] = await Promise.all([scrape(c.coordinator.url), scrape(p1.url)]);

    const ops = [{ op: 'add', key: 'n', amount: 1 }];
    const res = await post(`${c.coordinator.url}/v1/transactions`, { branches: [{ participant: 'p1', ops }, { participant: 'p2', ops }] });
    expect(res.body).toMatchObject({ outcome: 'committed' });

    // The ack phase ends when END is logged, after the last ack: wait for that, not for a time.
    const cAfter = await eventually('the ack phase observed', async () => {
      const m = await scrape(c.coordinator.url);
      return histogram(m, 'twopc_phase_seconds', { phase: 'ack' }).count > histogram(cBefore, 'twopc_phase_seconds', { phase: 'ack' }).count ? m : undefined;
    });
    const pAfter = await eventually('the blocked time observed', async () => {
      const m = await scrape(p1.url);
      return histogram(m, 'twopc_blocked_seconds').count > histogram(pBefore, 'twopc_blocked_seconds').count ? m : undefined;
    });

    for (const phase of ['prepare', 'decision', 'ack']) {
      const after = histogram(cAfter, 'twopc_phase_seconds', { phase });
      expect(after.buckets, phase).toBeGreaterThan(5);
      expect(after.count, phase).toBe(histogram(cBefore, 'twopc_phase_seconds', { phase }).count + 1);
    }
    expect(valueOf(cAfter, 'twopc_transactions_total', 'twopc_transactions_total', { outcome: 'committed' })).toBe(
      valueOf(cBefore, 'twopc_transactions_total', 'twopc_transactions_total', { outcome: 'committed' }) + 1,
    );
    const route = { route: '/v1/transactions', method: 'POST', status: '200' };
    expect(valueOf(cAfter, 'twopc_http_requests_total', 'twopc_http_requests_total', route)).toBe(valueOf(cBefore, 'twopc_http_requests_total', 'twopc_http_requests_total', route) + 1);
    // The prepare reached p1 alone or in a batch (batching is on by default): one of the two routes counted it.
    const protocolRequests = (m: typeof pAfter) =>
      ['/v1/2pc/prepare', '/v1/2pc/batch'].reduce((sum, r) => sum + valueOf(m, 'twopc_http_requests_total', 'twopc_http_requests_total', { route: r, method: 'POST', status: '200' }), 0);
    expect(protocolRequests(pAfter)).toBeGreaterThan(protocolRequests(pBefore));

    for (const [before, after, who] of [
      [cBefore, cAfter, 'coordinator'],
      [pBefore, pAfter, 'participant'],
    ] as const) {
      for (const name of ['twopc_wal_fsync_seconds', 'twopc_wal_sync_batch_records']) {
        expect(histogram(after, name).buckets, `${who} ${name}`).toBeGreaterThan(5);
        expect(histogram(after, name).count, `${who} ${name}`).toBeGreaterThan(histogram(before, name).count);
      }
      const forced = (m: Map<string, Family>) => valueOf(m, 'twopc_wal_forced_writes_total', 'twopc_wal_forced_writes_total');
      expect(forced(after), who).toBeGreaterThan(forced(before));
      expect(valueOf(after, 'twopc_wal_fsyncs_total', 'twopc_wal_fsyncs_total'), who).toBeGreaterThan(valueOf(before, 'twopc_wal_fsyncs_total', 'twopc_wal_fsyncs_total'));
      // Node's default metrics, and the last recovery's duration, are there too.
      expect(after.get('twopc_process_cpu_user_seconds_total')?.type, who).toBe('counter');
      expect(after.get('twopc_nodejs_eventloop_lag_seconds')?.type, who).toBe('gauge');
      expect(after.get('twopc_recovery_duration_seconds')?.samples.length, who).toBe(1);
      // When that recovery ended, by the node's own clock (`twopc bench --recovery` times settling from it):
      // after the process started, and not after this scrape.
      const recoveredAt = valueOf(after, 'twopc_recovery_completed_timestamp_seconds', 'twopc_recovery_completed_timestamp_seconds');
      expect(recoveredAt, who).toBeGreaterThanOrEqual(valueOf(after, 'twopc_process_start_time_seconds', 'twopc_process_start_time_seconds'));
      expect(recoveredAt, who).toBeLessThanOrEqual(Date.now() / 1000);
    }
    expect(pAfter.get('twopc_participant_in_doubt')?.type).toBe('gauge');
  });
});
