/**
 * `npm run bench:wal [-- --json] [-- --seconds 0.4] [-- --rounds 5]`: durable-append throughput
 * and latency of the file WAL, beside the raw limits of this machine's disk measured in the
 * same run.
 *
 * Each WAL configuration is paired with the raw loop it is compared with, and the pair runs in
 * alternating slices (raw, WAL, raw, WAL, ...), so a neighbour's burst of disk traffic hits both
 * sides alike; throughput is the median over the slices, latency percentiles are over all
 * samples, and the ratios against the raw limits are medians of the per-round ratios. Pairs:
 * - `always` (one writer)       vs a bare write + fdatasync loop;
 * - `group` with N writers      vs bare batched write + fdatasync of N records, N = 1, 8, 64, 256;
 * - `none` (one writer), alone; the same loop through the callback API, once, for reference.
 * The bare loops block on each write and fdatasync and yield to the event loop between
 * iterations, as the WAL's writer does while its blocking syncs stay fast (docs/wal-format.md,
 * "Where fdatasync runs"); until session 14 they went through the callback API (libuv's thread
 * pool), which on this machine costs more per sync than the WAL now spends.
 * then recovery: records/s of opening a log (scan, CRC check and collection of every record).
 * Every phase is bounded in count and time; files live in a temp dir under the OS tmpdir that
 * is removed afterwards.
 */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FileLog } from './file-log.ts';
import { openFileLog } from './file-log.ts';
import { frameBytesFor } from './format.ts';
import { verifyWal } from './inspect.ts';
import type { SyncPolicy } from './options.ts';

interface Args {
  readonly json: boolean;
  readonly sliceSeconds: number;
  readonly rounds: number;
  readonly recoveryRecords: number;
}

const USAGE = 'usage: tsx wal/bench.ts [--json] [--seconds S per slice (default 0.4)] [--rounds R (default 5)] [--recovery-records N (default 300000)]\n';

function parseArgs(argv: readonly string[]): Args {
  let json = false;
  let sliceSeconds = 0.4;
  let rounds = 5;
  let recoveryRecords = 300_000;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') json = true;
    else if (arg === '--seconds') sliceSeconds = Number(argv[++i]);
    else if (arg === '--rounds') rounds = Number(argv[++i]);
    else if (arg === '--recovery-records') recoveryRecords = Number(argv[++i]);
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`Unknown argument ${String(arg)}.\n${USAGE}`);
  }
  if (!(sliceSeconds > 0 && sliceSeconds <= 5)) throw new Error('Expected `--seconds` to be a number in (0, 5].');
  if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 10) throw new Error('Expected `--rounds` to be an integer in 1..10.');
  if (!Number.isSafeInteger(recoveryRecords) || recoveryRecords < 1000 || recoveryRecords > 2_000_000) throw new Error('Expected `--recovery-records` to be an integer in 1000..2000000.');
  return { json, sliceSeconds, rounds, recoveryRecords };
}

/** A typical 2PC record: a small JSON object, about 100 bytes. */
const PAYLOAD = Buffer.from(JSON.stringify({ type: 'PREPARED', txId: 'tx-00000000-0000-4000-8000-000000000000', coordinator: 'http://127.0.0.1:7000', n: 1 }).padEnd(100, ' '));
const FRAME_BYTES = frameBytesFor(PAYLOAD.length);
const SEGMENT_BYTES = 64 * 1024 * 1024;
/** Latency samples kept per runner; also a bound on operations per slice. */
const SAMPLES_MAX = 500_000;

const round = (value: number, digits = 0): number => Number(value.toFixed(digits));

interface Latency {
  readonly p50Ms: number;
  readonly p99Ms: number;
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

function quantile(samples: Float64Array, q: number): number {
  const sorted = samples.slice().sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/** Collects per-slice rates and p50s, and all latency samples, of one runner. */
class Meter {
  readonly rates: number[] = [];
  readonly sliceP50sMs: number[] = [];
  private readonly samples = new Float64Array(SAMPLES_MAX);
  private count = 0;
  private sliceStart = 0;

  sample(ms: number): void {
    if (this.count < SAMPLES_MAX) this.samples[this.count++] = ms;
  }

  get full(): boolean {
    return this.count >= SAMPLES_MAX;
  }

  endSlice(rate: number): void {
    this.rates.push(rate);
    this.sliceP50sMs.push(quantile(this.samples.subarray(this.sliceStart, this.count), 0.5));
    this.sliceStart = this.count;
  }

  rate(): number {
    return round(median(this.rates));
  }

  latency(): Latency {
    const all = this.samples.subarray(0, this.count);
    return { p50Ms: round(quantile(all, 0.5), 4), p99Ms: round(quantile(all, 0.99), 4) };
  }
}

/** Median over rounds of WAL / raw: each round's slices ran back to back, so drift cancels. */
const pairedRatio = (wal: readonly number[], raw: readonly number[]): number => median(wal.map((value, i) => value / (raw[i] ?? Number.NaN)));

interface Runner {
  readonly meter: Meter;
  /** Runs for about `seconds`, adding one rate to the meter. */
  slice(seconds: number): Promise<void>;
  close(): Promise<void>;
}

/** A file laid out as the WAL's first segment is: sparse, at its full size. */
function rawFile(dir: string, name: string): number {
  const fd = fs.openSync(path.join(dir, name), 'wx+');
  fs.ftruncateSync(fd, SEGMENT_BYTES);
  fs.fsyncSync(fd);
  return fd;
}

/**
 * Bare write of `batch` records + fdatasync per iteration, both blocking, the next iteration after
 * `setImmediate`: the least JavaScript can do per durable write in a process that still serves its
 * event loop. With batch 1 it is the raw write+fdatasync loop.
 */
function rawRunner(dir: string, batch: number): Runner {
  const fd = rawFile(dir, `raw-${batch}`);
  const bytes = Buffer.alloc(FRAME_BYTES * batch, 7);
  const meter = new Meter();
  let offset = 4096;
  return {
    meter,
    slice: (seconds) =>
      new Promise((resolve, reject) => {
        let records = 0;
        const start = performance.now();
        const deadline = start + seconds * 1000;
        const next = (): void => {
          const t0 = performance.now();
          if (t0 >= deadline || meter.full) {
            meter.endSlice(records / ((t0 - start) / 1000));
            return resolve();
          }
          if (offset + bytes.length > SEGMENT_BYTES) offset = 4096;
          try {
            fs.writeSync(fd, bytes, 0, bytes.length, offset);
            fs.fdatasyncSync(fd);
          } catch (error) {
            return reject(error as Error);
          }
          offset += bytes.length;
          meter.sample(performance.now() - t0);
          records += batch;
          setImmediate(next);
        };
        next();
      }),
    close: async () => fs.closeSync(fd),
  };
}

/** `writers` concurrent writers, each appending durable records one after another. */
async function walRunner(dir: string, policy: SyncPolicy, writers: number): Promise<Runner & { log: FileLog }> {
  const { log } = await openFileLog(dir, { syncPolicy: policy, segmentBytes: SEGMENT_BYTES });
  const meter = new Meter();
  return {
    log,
    meter,
    async slice(seconds) {
      let count = 0;
      const start = performance.now();
      const deadline = start + seconds * 1000;
      const writer = async (): Promise<void> => {
        for (;;) {
          const t0 = performance.now();
          if (t0 >= deadline || meter.full) return;
          await log.append(1, PAYLOAD, { durable: true });
          meter.sample(performance.now() - t0);
          count++;
        }
      };
      await Promise.all(Array.from({ length: writers }, writer));
      meter.endSlice(count / ((performance.now() - start) / 1000));
    },
    close: () => log.close(),
  };
}

/** The write + fdatasync loop through the callback API (libuv's thread pool), for reference. */
async function callbackLoop(dir: string, seconds: number): Promise<{ opsPerSec: number } & Latency> {
  const fd = rawFile(dir, 'raw-callback');
  const frame = Buffer.alloc(FRAME_BYTES, 7);
  const meter = new Meter();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let n = 0;
  let now = start;
  try {
    while (now < deadline && !meter.full) {
      const position = 4096 + ((n++ * FRAME_BYTES) % (SEGMENT_BYTES - 8192));
      await new Promise<void>((resolve, reject) => fs.write(fd, frame, 0, FRAME_BYTES, position, (error) => (error ? reject(error) : resolve())));
      await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
      const after = performance.now();
      meter.sample(after - now);
      now = after;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { opsPerSec: round(n / ((now - start) / 1000)), ...meter.latency() };
}

interface RecoveryRun {
  readonly records: number;
  /** Opening the log: read, validate and collect every record (what a restart costs). */
  readonly recordsPerSec: number;
  readonly seconds: number;
  /** CPU time of that open: on a busy machine wall time also counts waiting for a core or the disk. */
  readonly cpuSeconds: number;
  /** The scan alone (read and validate every frame, collect nothing), as `wal verify` runs it. */
  readonly scanOnlyRecordsPerSec: number;
}

async function recoveryRun(dir: string, records: number): Promise<RecoveryRun> {
  const { log } = await openFileLog(dir, { syncPolicy: 'none', segmentBytes: SEGMENT_BYTES });
  // Built in bounded batches so that the pending limits hold.
  for (let written = 0; written < records; ) {
    const batch = Math.min(4096, records - written);
    const appends: Promise<number>[] = [];
    for (let i = 0; i < batch; i++) appends.push(log.append(1 + (i % 5), PAYLOAD));
    await Promise.all(appends);
    written += batch;
  }
  await log.close();
  // Best of three opens: the first also pays for warming the page cache and the JIT.
  let best: Omit<RecoveryRun, 'scanOnlyRecordsPerSec'> | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const cpu = process.cpuUsage();
    const start = performance.now();
    const { log: reopened, recovered } = await openFileLog(dir, { segmentBytes: SEGMENT_BYTES });
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    await reopened.close();
    if (recovered.entries.length !== records) throw new Error(`recovery returned ${recovered.entries.length} of ${records} records`);
    const run = { records, recordsPerSec: round(records / seconds), seconds: round(seconds, 3), cpuSeconds: round((used.user + used.system) / 1e6, 3) };
    if (!best || run.seconds < best.seconds) best = run;
  }
  let scanSeconds = Infinity;
  for (let attempt = 0; attempt < 3; attempt++) {
    const start = performance.now();
    const report = await verifyWal(dir);
    scanSeconds = Math.min(scanSeconds, (performance.now() - start) / 1000);
    if (report.records !== records) throw new Error(`verify counted ${report.records} of ${records} records`);
  }
  if (!best) throw new Error('no recovery run');
  return { ...best, scanOnlyRecordsPerSec: round(records / scanSeconds) };
}

export interface WalRunResult extends Latency {
  readonly policy: SyncPolicy;
  readonly writers: number;
  readonly appendsPerSec: number;
  /** Appends per fdatasync the log issued. */
  readonly appendsPerDatasync: number;
  /** The raw loop it is paired with, measured in alternating slices. */
  readonly raw?: { readonly batch: number; readonly recordsPerSec: number } & Latency;
  /** Median over rounds of WAL throughput / raw throughput, and of WAL p50 / raw p50. */
  readonly throughputRatio?: number;
  readonly p50Ratio?: number;
}

export interface WalBenchResult {
  readonly machine: { readonly node: string; readonly platform: string; readonly cpus: number; readonly loadavg: readonly number[]; readonly tmpdir: string };
  readonly recordBytes: number;
  readonly frameBytes: number;
  readonly sliceSeconds: number;
  readonly rounds: number;
  /** The raw write+fdatasync loop through the callback API (libuv's thread pool), for reference. */
  readonly rawCallback: { opsPerSec: number } & Latency;
  readonly wal: readonly WalRunResult[];
  readonly recovery: RecoveryRun;
  readonly targets: readonly { readonly name: string; readonly value: number; readonly target: string; readonly ok: boolean }[];
  readonly seconds: number;
}

export async function runWalBench(args: Args, progress: (line: string) => void): Promise<WalBenchResult> {
  const began = performance.now();
  const root = await mkdtemp(path.join(os.tmpdir(), 'twopc-wal-bench-'));
  const runners: Runner[] = [];
  try {
    let n = 0;
    const fresh = (): string => {
      const dir = path.join(root, `run-${n++}`);
      fs.mkdirSync(dir);
      return dir;
    };
    const pairs: { policy: SyncPolicy; writers: number; wal: Runner & { log: FileLog }; raw?: { batch: number; runner: Runner } }[] = [];
    const pair = async (policy: SyncPolicy, writers: number, rawBatch: number | undefined) => {
      const wal = await walRunner(fresh(), policy, writers);
      runners.push(wal);
      const raw = rawBatch === undefined ? undefined : { batch: rawBatch, runner: rawRunner(fresh(), rawBatch) };
      if (raw) runners.push(raw.runner);
      pairs.push({ policy, writers, wal, ...(raw ? { raw } : {}) });
    };
    await pair('always', 1, 1);
    for (const writers of [1, 8, 64, 256]) await pair('group', writers, writers);
    await pair('none', 1, undefined);

    for (let r = 0; r < args.rounds; r++) {
      for (const p of pairs) {
        progress(`round ${r + 1}/${args.rounds}: ${p.policy}${p.policy === 'group' ? ` x${p.writers}` : ''}${p.raw ? ` vs raw batch ${p.raw.batch}` : ''}`);
        if (p.raw) await p.raw.runner.slice(args.sliceSeconds);
        await p.wal.slice(args.sliceSeconds);
      }
    }
    const wal: WalRunResult[] = pairs.map((p) => {
      const stats = p.wal.log.stats;
      return {
        policy: p.policy,
        writers: p.writers,
        appendsPerSec: p.wal.meter.rate(),
        ...p.wal.meter.latency(),
        appendsPerDatasync: round(stats.appends / Math.max(1, stats.datasyncs), 1),
        ...(p.raw
          ? {
              raw: { batch: p.raw.batch, recordsPerSec: p.raw.runner.meter.rate(), ...p.raw.runner.meter.latency() },
              throughputRatio: round(pairedRatio(p.wal.meter.rates, p.raw.runner.meter.rates), 3),
              p50Ratio: round(pairedRatio(p.wal.meter.sliceP50sMs, p.raw.runner.meter.sliceP50sMs), 3),
            }
          : {}),
      };
    });
    for (const runner of runners.splice(0)) await runner.close();
    progress('write+fdatasync loop through the callback API (reference) ...');
    const rawCallback = await callbackLoop(fresh(), args.sliceSeconds);
    progress(`recovery of ${args.recoveryRecords} records ...`);
    const recovery = await recoveryRun(fresh(), args.recoveryRecords);

    const always = wal.find((run) => run.policy === 'always');
    const group64 = wal.find((run) => run.policy === 'group' && run.writers === 64);
    const alwaysRatio = always?.p50Ratio ?? Infinity;
    const groupRatio = group64?.throughputRatio ?? 0;
    const targets = [
      { name: 'always p50 / raw write+fdatasync p50 (median over rounds)', value: round(alwaysRatio, 3), target: '<= 1.3', ok: alwaysRatio <= 1.3 },
      { name: 'group (64 writers) / raw batched fdatasync (64) throughput (median over rounds)', value: round(groupRatio, 3), target: '>= 0.7', ok: groupRatio >= 0.7 },
      { name: 'group (64 writers) durable appends/s', value: group64?.appendsPerSec ?? 0, target: '>= 20000', ok: (group64?.appendsPerSec ?? 0) >= 20_000 },
      { name: 'recovery (open, records collected) records/s', value: recovery.recordsPerSec, target: '>= 500000', ok: recovery.recordsPerSec >= 500_000 },
    ];
    return {
      machine: { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: os.cpus().length, loadavg: os.loadavg().map((l) => round(l, 2)), tmpdir: os.tmpdir() },
      recordBytes: PAYLOAD.length,
      frameBytes: FRAME_BYTES,
      sliceSeconds: args.sliceSeconds,
      rounds: args.rounds,
      rawCallback,
      wal,
      recovery,
      targets,
      seconds: round((performance.now() - began) / 1000, 1),
    };
  } finally {
    for (const runner of runners) await runner.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

function formatResult(result: WalBenchResult): string {
  const ms = (value: number): string => `${value.toFixed(3)} ms`;
  const num = (value: number, width = 8): string => String(value).padStart(width);
  const lines = [
    `WAL bench: ${result.recordBytes}-byte records (${result.frameBytes}-byte frames); ${result.rounds} rounds of ${result.sliceSeconds} s slices, WAL and raw alternating; node ${result.machine.node}, ${result.machine.cpus} CPUs, load ${result.machine.loadavg.join(' ')}; ${result.seconds} s in all`,
    '',
    'durable appends                         WAL                                      raw limit, same run',
  ];
  for (const run of result.wal) {
    const label = run.policy === 'group' ? `group, ${run.writers} writers` : run.policy;
    const wal = `${num(run.appendsPerSec)}/s  p50 ${ms(run.p50Ms)}  p99 ${ms(run.p99Ms)}  ${num(run.appendsPerDatasync, 5)}/fdatasync`;
    const raw = run.raw
      ? run.raw.batch === 1 && run.policy === 'always'
        ? `write+fdatasync loop ${num(run.raw.recordsPerSec, 6)}/s  p50 ${ms(run.raw.p50Ms)}  p99 ${ms(run.raw.p99Ms)}`
        : `batch ${String(run.raw.batch).padEnd(3)} ${num(run.raw.recordsPerSec)}/s  -> WAL at ${(100 * (run.throughputRatio ?? 0)).toFixed(0)}%`
      : '';
    lines.push(`  ${label.padEnd(18)} ${wal}   ${raw}`);
  }
  lines.push(`  ${'(callback API)'.padEnd(18)} ${''.padEnd(67)}   write+fdatasync loop ${num(result.rawCallback.opsPerSec, 6)}/s  p50 ${ms(result.rawCallback.p50Ms)}  p99 ${ms(result.rawCallback.p99Ms)}`);
  lines.push('');
  lines.push(`recovery (open): ${result.recovery.records} records in ${result.recovery.seconds} s = ${result.recovery.recordsPerSec} records/s (CPU ${result.recovery.cpuSeconds} s; best of 3 opens)`);
  lines.push(`scan only (wal verify): ${result.recovery.scanOnlyRecordsPerSec} records/s`);
  lines.push('');
  lines.push('targets');
  for (const t of result.targets) lines.push(`  ${t.ok ? 'ok  ' : 'MISS'} ${t.name}: ${t.value} (target ${t.target})`);
  return `${lines.join('\n')}\n`;
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename);
if (isMain) {
  const args = parseArgs(process.argv.slice(2));
  const result = await runWalBench(args, (line) => {
    if (!args.json) process.stderr.write(`${line}\n`);
  });
  process.stdout.write(args.json ? `${JSON.stringify(result)}\n` : formatResult(result));
}
