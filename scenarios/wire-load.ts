/**
 * A hand-run load for profiling the wire: a coordinator and participants as
 * separate processes (optionally under `node --cpu-prof`), an outside client
 * at a given concurrency, and per process the CPU time and the protocol
 * requests and messages per transaction, read from /proc and /metrics.
 *
 *   npx tsx scenarios/wire-load.ts [--transactions N] [--concurrency C] [--no-batching] [--prof DIR]
 *
 * Not a benchmark (`twopc bench` is): CPU per transaction is the figure that
 * stays meaningful on a shared, noisy machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createHttpClient } from '../shared/http/client.ts';
import { freePort } from './ports.ts';
import { createPrng } from './prng.ts';
import { accounts, openingTransaction, randomTransfer } from './workloads/bank.ts';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const transactions = flag('--transactions', 5000);
const concurrency = flag('--concurrency', 64);
const participants = flag('--participants', 3);
const batching = !args.includes('--no-batching');
const profIndex = args.indexOf('--prof');
const profDir = profIndex >= 0 ? args[profIndex + 1] : undefined;
const REQUESTS_TIMEOUT_MS = 30_000;

const root = path.resolve(import.meta.dirname, '..');
const data = fs.mkdtempSync(path.join(os.tmpdir(), 'wire-load-'));
const children: ChildProcess[] = [];

function start(name: string, cliArgs: string[]): ChildProcess {
  // One directory per process: tsx's loader thread writes a profile of its own beside the main thread's.
  const node = [...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profDir, name)}`] : []), '--import', 'tsx', path.join(root, 'bin/twopc.ts')];
  const child = spawn(process.execPath, [...node, ...cliArgs, ...(batching ? [] : ['--no-batching'])], {
    cwd: root,
    env: { ...process.env, TWOPC_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}

/** utime + stime of a process, in ms. */
function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

const http = createHttpClient({ timeoutMs: REQUESTS_TIMEOUT_MS, socketsPerHostMax: concurrency });
async function until(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      const r = await http.get<{ recovering?: boolean }>(`${url}/healthz`, { timeoutMs: 1_000 });
      if (r.status === 200 && r.data.recovering === false) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

async function metric(url: string, name: string): Promise<Record<string, number>> {
  const text = (await http.get<string>(`${url}/metrics`)).data;
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) if (line.startsWith(`twopc_${name}`)) out[line.split(' ')[0] ?? ''] = Number(line.split(' ')[1]);
  return out;
}

/** A reason without its transaction ids and keys, so equal causes count together. */
function reasonKind(reason: string): string {
  return reason.replace(/tx-[0-9a-z-]+/g, 'TX').replace(/acct-p\d+-\d+/g, 'KEY').slice(0, 120);
}

try {
  const cPort = await freePort();
  const pPorts = await Promise.all(Array.from({ length: participants }, () => freePort()));
  const cUrl = `http://127.0.0.1:${cPort}`;
  const names = pPorts.map((_, i) => `p${i + 1}`);
  const pList = pPorts.map((p, i) => `${names[i]}=http://127.0.0.1:${p}`).join(',');
  const pChildren = pPorts.map((p, i) => start(names[i] as string, ['participant', '--name', names[i] as string, '--port', String(p), '--data', path.join(data, `p${i}`), '--coordinator', cUrl, '--lock-wait-ms', '200']));
  const coordinator = start('coordinator', ['coordinator', '--port', String(cPort), '--data', path.join(data, 'c'), '--participants', pList]);
  await until(cUrl);
  for (const p of pPorts) await until(`http://127.0.0.1:${p}`);
  const bank = { participants: names, accountsPerParticipant: Math.max(20, concurrency * 4), openingBalance: 1_000_000 };
  await http.post(`${cUrl}/v1/transactions`, openingTransaction(bank));
  const all = accounts(bank);
  const rng = createPrng(1);
  const procs = [['coordinator', coordinator], ...pChildren.map((c, i) => [names[i], c])] as [string, ChildProcess][];
  const cpu0 = procs.map(([, c]) => cpuMs(c.pid as number));
  let issued = 0;
  let committed = 0;
  let aborted = 0;
  /** Why transfers aborted, by the kind of reason the coordinator gave: the head-of-line measurement. */
  const abortReasons = new Map<string, number>();
  const latencies: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < transactions) {
        issued++;
        let t = randomTransfer(rng, all, 10);
        for (let i = 0; i < 8 && t && t.from.participant === t.to.participant; i++) t = randomTransfer(rng, all, 10);
        if (!t) continue;
        const s = performance.now();
        const r = await http.post<{ outcome?: string; reason?: string }>(`${cUrl}/v1/transactions`, t.body);
        latencies.push(performance.now() - s);
        if (r.data.outcome === 'committed') committed++;
        else {
          aborted++;
          const kind = reasonKind(r.data.reason ?? String(r.status));
          abortReasons.set(kind, (abortReasons.get(kind) ?? 0) + 1);
        }
      }
    }),
  );
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu1 = procs.map(([, c]) => cpuMs(c.pid as number));
  const done = committed + aborted;
  latencies.sort((a, b) => a - b);
  const q = (x: number) => Math.round(latencies[Math.floor(x * latencies.length)] ?? 0);
  console.log(JSON.stringify({
    batching,
    transactions: done,
    committed,
    aborted,
    txPerS: Math.round(done / elapsedS),
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    abortReasons: Object.fromEntries(abortReasons),
    cpuMsPerTx: Object.fromEntries(procs.map(([n], i) => [n, Math.round((((cpu1[i] ?? 0) - (cpu0[i] ?? 0)) / done) * 1000) / 1000])),
    coordinatorSent: await metric(cUrl, 'coordinator_participant_'),
    p1Received: await metric(`http://127.0.0.1:${pPorts[0]}`, 'participant_2pc_'),
  }));
} finally {
  for (const c of children) c.kill('SIGINT');
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
  http.close();
  fs.rmSync(data, { recursive: true, force: true });
}
