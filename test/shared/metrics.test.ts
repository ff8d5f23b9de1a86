/**
 * The counters `twopc bench` reads from every node: requests served (the
 * observer's own scrapes and health probes left out) and the WAL's appends and
 * fdatasyncs, read from the log when /metrics is scraped.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrashPoints } from '../../shared/crash.ts';
import { createBaseApp, finishApp, listen, type Listening } from '../../shared/http/app.ts';
import { collectWalStats, Metrics } from '../../shared/metrics.ts';
import { openFileLog } from '../../wal/file-log.ts';

const metrics = new Metrics();
let node: Listening;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-metrics-test-'));
let closeLog: () => Promise<void> = async () => undefined;

beforeAll(async () => {
  const app = createBaseApp({ role: 'participant', name: 'p', isRecovering: () => false, metrics, crashPoints: new CrashPoints() });
  app.get('/v1/thing', (_req, res) => {
    res.json({ ok: true });
  });
  finishApp(app);
  node = await listen(app, 0, '127.0.0.1', { metrics });
});
afterAll(async () => {
  await node.close();
  await closeLog();
  fs.rmSync(dir, { recursive: true, force: true });
});

const scrape = async () => (await fetch(`${node.url}/metrics`)).text();
const valueOf = (text: string, name: string) => Number(new RegExp(`^twopc_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

describe('node counters on /metrics', () => {
  it('counts the requests served, but not /metrics or /healthz', async () => {
    const before = valueOf(await scrape(), 'http_requests_total');
    for (let i = 0; i < 3; i++) await (await fetch(`${node.url}/v1/thing`)).text();
    await (await fetch(`${node.url}/healthz`)).text();
    await (await fetch(`${node.url}/v1/no-such-route`)).text();
    const text = await scrape();
    expect(valueOf(text, 'http_requests_total') - (Number.isNaN(before) ? 0 : before)).toBe(4);
    expect(text).toContain('# TYPE twopc_http_requests_total counter');
  });

  it("reads the WAL's appends and fdatasyncs at each scrape", async () => {
    const { log } = await openFileLog(dir, { syncPolicy: 'always' });
    closeLog = () => log.close();
    collectWalStats(metrics, log);
    const first = await scrape();
    await log.append(1, new Uint8Array([1]), { durable: true });
    await log.append(1, new Uint8Array([2]), { durable: true });
    const second = await scrape();
    expect(valueOf(second, 'wal_appends_total') - valueOf(first, 'wal_appends_total')).toBe(2);
    // Policy `always`: each durable append has its own fdatasync.
    expect(valueOf(second, 'wal_datasyncs_total') - valueOf(first, 'wal_datasyncs_total')).toBe(2);
    expect(second).toContain('# TYPE twopc_wal_datasyncs_total counter');
  });
});
