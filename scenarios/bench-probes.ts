/**
 * What `twopc bench` measures besides the transactions themselves: the
 * machine's own limits (a bare write+fdatasync, bare HTTP round trips with
 * node:http and with the project's axios client), and, for every node process,
 * its CPU time and RSS (from /proc, so any build of the nodes can be measured)
 * and the counters it exposes on /metrics (HTTP requests served, fdatasyncs).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLoadClient, type LoadClientKind } from './load-client.ts';
import { parseExposition } from './exposition.ts';

export interface LatencySummary {
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
}

const FSYNC_SAMPLES = 300;
const HTTP_SAMPLES = 4_000;
/** Sequential round trips for the floor: enough for a stable p50, few enough to take well under a second. */
const HTTP_FLOOR_SAMPLES = 1_000;
const METRICS_TIMEOUT_MS = 5_000;
/** Linux's usual USER_HZ, used when `getconf CLK_TCK` cannot be asked. */
const CLOCK_TICKS_PER_S_DEFAULT = 100;

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export function summarize(samplesMs: readonly number[]): LatencySummary {
  const s = Float64Array.from(samplesMs).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  let sum = 0;
  for (const x of s) sum += x;
  return { p50Ms: round3(at(0.5)), p95Ms: round3(at(0.95)), p99Ms: round3(at(0.99)), meanMs: round3(sum / Math.max(1, s.length)) };
}

/** A bare write + fdatasync loop in `dir`, the floor for one forced record. */
export function measureFdatasync(dir: string, samples = FSYNC_SAMPLES): LatencySummary {
  const file = path.join(dir, 'fdatasync.probe');
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(256, 1);
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      fs.writeSync(fd, buf, 0, buf.length, i * buf.length);
      fs.fdatasyncSync(fd);
      times.push(performance.now() - t0);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  return summarize(times);
}

export interface HttpFigures {
  readonly rtt: LatencySummary;
  readonly perS: number;
  /** CPU of this process (client and server both live in it) per request. */
  readonly cpuUsPerRequest: number;
}

/**
 * Bare HTTP POSTs with small JSON bodies over keep-alive on loopback, `concurrency`
 * in flight, against a bare node:http server in this process. `client: 'axios'`
 * sends them through the services' own client (shared/http/client.ts) instead of
 * node:http, so the two rates side by side give the client's cost per request.
 */
export async function measureHttp(concurrency: number, samples = HTTP_SAMPLES, client: LoadClientKind = 'node'): Promise<HttpFigures> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(Buffer.concat(chunks).length > 0 ? '{"vote":"yes"}' : '{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  const payload = { txId: 'tx-1-1', coordinator: 'http://127.0.0.1:1', participants: [] };
  const send = client === 'axios' ? axiosSender(url, concurrency) : nodeSender(url, concurrency);
  const times: number[] = [];
  let issued = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (issued < samples) {
          issued++;
          const s = performance.now();
          await send.once(payload);
          times.push(performance.now() - s);
        }
      }),
    );
  } finally {
    send.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    rtt: summarize(times),
    perS: Math.round(times.length / elapsedS),
    cpuUsPerRequest: Math.round(((cpu.user + cpu.system) / Math.max(1, times.length)) * 10) / 10,
  };
}

interface Sender {
  once(payload: unknown): Promise<void>;
  close(): void;
}

function nodeSender(url: string, concurrency: number): Sender {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  return {
    once: (payload) =>
      new Promise<void>((resolve, reject) => {
        const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end(JSON.stringify(payload));
      }),
    close: () => agent.destroy(),
  };
}

/** The services' client, as the bench's `--load-client axios` sends transfers. */
function axiosSender(url: string, concurrency: number): Sender {
  const client = createLoadClient('axios', { socketsMax: concurrency, timeoutMs: 30_000 });
  return {
    once: async (payload) => {
      await client.post(url, payload);
    },
    close: () => client.close(),
  };
}

/** The sequential floor's round trip: one request at a time, nothing else in flight. */
export async function measureHttpFloor(): Promise<LatencySummary> {
  return (await measureHttp(1, HTTP_FLOOR_SAMPLES)).rtt;
}

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryMb: number;
  readonly node: string;
  readonly platform: string;
  readonly loadAverage1m: number;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryMb: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    platform: `${process.platform} ${os.release()}`,
    loadAverage1m: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}

// ---- Per process: CPU and RSS from /proc, counters from /metrics ----------------------------

let clockTicksPerS: number | undefined;

function ticksPerS(): number {
  if (clockTicksPerS === undefined) {
    try {
      clockTicksPerS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || CLOCK_TICKS_PER_S_DEFAULT;
    } catch {
      clockTicksPerS = CLOCK_TICKS_PER_S_DEFAULT;
    }
  }
  return clockTicksPerS;
}

/** User plus system CPU of a process (all its threads) in ms, or undefined where there is no /proc. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses; the fields after its last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / ticksPerS() : undefined;
  } catch {
    return undefined;
  }
}

/** Resident set size in MiB, or undefined where there is no /proc. */
export function processRssMb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
}

/** The counters `twopc bench` reads from a node's /metrics; undefined when the node does not expose one. */
export interface NodeCounters {
  readonly httpRequests?: number;
  readonly walDatasyncs?: number;
  /** Of walDatasyncs, those that held the node's event loop. */
  readonly walDatasyncsBlocking?: number;
  /** V8 heap in use (prom-client's default gauge, process.memoryUsage().heapUsed at scrape time, not after a GC). */
  readonly heapUsedBytes?: number;
}

export async function scrapeCounters(baseUrl: string): Promise<NodeCounters> {
  try {
    const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(METRICS_TIMEOUT_MS) });
    const text = await res.text();
    const families = parseExposition(text);
    // Sums every series of a counter; for requests, leaves out the observer's own (/metrics, /healthz).
    const total = (family: string, skip?: (labels: Readonly<Record<string, string>>) => boolean): number | undefined =>
      families.get(family)?.samples.reduce((sum, x) => (skip?.(x.labels) === true ? sum : sum + x.value), 0);
    const httpRequests = total('twopc_http_requests_total', (l) => l.route === '/metrics' || l.route === '/healthz');
    const walDatasyncs = total('twopc_wal_fsyncs_total');
    const walDatasyncsBlocking = total('twopc_wal_fsyncs_blocking_total');
    const heapUsedBytes = total('twopc_nodejs_heap_size_used_bytes');
    return {
      ...(httpRequests !== undefined && { httpRequests }),
      ...(walDatasyncs !== undefined && { walDatasyncs }),
      ...(walDatasyncsBlocking !== undefined && { walDatasyncsBlocking }),
      ...(heapUsedBytes !== undefined && { heapUsedBytes }),
    };
  } catch {
    return {};
  }
}

export interface NodeRef {
  readonly name: string;
  readonly url: string;
  readonly pid: number | undefined;
}

export interface NodeSample {
  readonly cpuMs?: number;
  readonly rssMb?: number;
  readonly counters: NodeCounters;
}

export async function sampleNodes(nodes: readonly NodeRef[]): Promise<Record<string, NodeSample>> {
  const out: Record<string, NodeSample> = {};
  for (const n of nodes) {
    const counters = await scrapeCounters(n.url);
    const cpuMs = n.pid === undefined ? undefined : processCpuMs(n.pid);
    const rssMb = n.pid === undefined ? undefined : processRssMb(n.pid);
    out[n.name] = { counters, ...(cpuMs !== undefined && { cpuMs }), ...(rssMb !== undefined && { rssMb }) };
  }
  return out;
}
