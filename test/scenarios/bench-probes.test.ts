/**
 * What `twopc bench` reads from a node's /metrics (scenarios/bench-probes.ts `scrapeCounters`),
 * against a real HTTP server serving a fixed exposition: each counter from its own family, the
 * observer's own requests left out, and nothing made up for a family the node does not expose.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { scrapeCounters } from '../../scenarios/bench-probes.ts';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise<void>((r) => server.close(() => r()));
});

async function serving(text: string): Promise<string> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const EXPOSITION = `# HELP twopc_http_requests_total HTTP requests served.
# TYPE twopc_http_requests_total counter
twopc_http_requests_total{route="/v1/transactions",method="POST",status="200"} 120
twopc_http_requests_total{route="/v1/transactions",method="POST",status="409"} 3
twopc_http_requests_total{route="/metrics",method="GET",status="200"} 40
twopc_http_requests_total{route="/healthz",method="GET",status="200"} 7
# HELP twopc_wal_fsyncs_total WAL fdatasync calls for write batches.
# TYPE twopc_wal_fsyncs_total counter
twopc_wal_fsyncs_total 90
# HELP twopc_wal_fsyncs_blocking_total Of those, the ones on the event loop.
# TYPE twopc_wal_fsyncs_blocking_total counter
twopc_wal_fsyncs_blocking_total 61
# HELP twopc_nodejs_heap_size_used_bytes Heap in use.
# TYPE twopc_nodejs_heap_size_used_bytes gauge
twopc_nodejs_heap_size_used_bytes 5242880
`;

describe('scrapeCounters', () => {
  it('reads each counter from its own family and leaves out the /metrics and /healthz requests', async () => {
    expect(await scrapeCounters(await serving(EXPOSITION))).toEqual({ httpRequests: 123, walDatasyncs: 90, walDatasyncsBlocking: 61, heapUsedBytes: 5242880 });
  });

  it('leaves out what a node does not expose (an older node without the blocking counter)', async () => {
    const older = EXPOSITION.split('\n')
      .filter((line) => !line.includes('twopc_wal_fsyncs_blocking_total'))
      .join('\n');
    expect(await scrapeCounters(await serving(older))).toEqual({ httpRequests: 123, walDatasyncs: 90, heapUsedBytes: 5242880 });
  });
});
