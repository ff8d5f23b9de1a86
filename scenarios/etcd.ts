/**
 * Real etcd members on loopback for tests, scenarios and `twopc cluster --ha`:
 * one member, or three where a test kills one. Each member gets free ports and a
 * temporary data directory; its output goes to a log file beside the data, so a
 * failing test can show what etcd said. No mock of etcd stands in anywhere.
 *
 * The `etcd` binary comes from Debian's `etcd-server` (scripts/ci-etcd.sh installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHttpClient } from '../shared/http/client.ts';
import { freePorts } from './ports.ts';

/** etcd's own start is quick; a loaded machine (2 cores, five agents) may still take seconds. */
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const POLL_MS = 50;
const HEALTH_TIMEOUT_MS = 1_000;
const health = createHttpClient({ timeoutMs: HEALTH_TIMEOUT_MS });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The etcd binary: TWOPC_ETCD_BIN, else `etcd` on the PATH. */
export function etcdBinary(): string {
  return process.env.TWOPC_ETCD_BIN ?? 'etcd';
}

/** True when the etcd binary runs here; tests that need it fail with a clear message otherwise. */
export function etcdAvailable(): boolean {
  const r = spawnSync(etcdBinary(), ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

export class EtcdMember {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
    private readonly initialCluster: string,
  ) {}

  get clientUrl(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  get peerUrl(): string {
    return `http://127.0.0.1:${this.peerPort}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get logFile(): string {
    return `${this.dataDir}.log`;
  }

  /** Spawns the member; with `waitReady`, resolves once it answers /health (which needs a quorum). */
  async start(options: { waitReady?: boolean } = {}): Promise<void> {
    if (this.running) throw new Error(`etcd ${this.name} is already running`);
    fs.mkdirSync(this.dataDir, { recursive: true });
    const log = fs.openSync(this.logFile, 'a');
    // prettier-ignore
    const args = [
      '--name', this.name,
      '--data-dir', this.dataDir,
      '--listen-client-urls', this.clientUrl,
      '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', this.peerUrl,
      '--initial-advertise-peer-urls', this.peerUrl,
      '--initial-cluster', this.initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `twopc-${path.basename(path.dirname(this.dataDir))}`,
      // Short elections: a test that kills one member of three should not wait a default second.
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      '--log-level', 'warn',
    ];
    const child = spawn(etcdBinary(), args, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('error', () => undefined);
    if (options.waitReady !== false) await this.waitReady();
  }

  async waitReady(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`etcd ${this.name} exited during start; log:\n${this.tail()}`);
      try {
        const res = await health.get<{ health?: unknown }>(`${this.clientUrl}/health`);
        if (res.status === 200 && (res.data.health === 'true' || res.data.health === true)) return;
      } catch {
        // Not listening yet, or no quorum yet.
      }
      await sleep(POLL_MS);
    }
    throw new Error(`etcd ${this.name} did not become healthy in ${timeoutMs} ms; log:\n${this.tail()}`);
  }

  /** SIGKILL: the member dies without a word, as in a crash. */
  async kill(): Promise<void> {
    if (this.running) this.child?.kill('SIGKILL');
    await this.exited;
  }

  pause(): void {
    if (this.running) this.child?.kill('SIGSTOP');
  }

  resume(): void {
    if (this.running) this.child?.kill('SIGCONT');
  }

  /** SIGTERM, then SIGKILL when it does not exit in time. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGCONT');
    this.child?.kill('SIGTERM');
    const timedOut = await Promise.race([this.exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
    if (timedOut) await this.kill();
  }

  tail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

export interface EtcdClusterOptions {
  /** 1 or 3 members. */
  readonly members?: 1 | 3;
  /** Where the members' data directories go; a new temporary directory by default (removed by `remove`). */
  readonly dir?: string;
  /**
   * Fixed ports, client ports first then peer ports (2 per member), for a cluster that is started
   * again on the same data (`twopc cluster --ha`): a member keeps its peer URL across restarts.
   * Free ports by default.
   */
  readonly ports?: readonly number[];
}

/** One or three etcd members forming one cluster. */
export class EtcdCluster {
  private constructor(
    readonly members: readonly EtcdMember[],
    readonly dir: string,
    private readonly ownsDir: boolean,
  ) {}

  static async create(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const count = options.members ?? 1;
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-etcd-'));
    const ports = options.ports ?? (await freePorts(count * 2));
    if (ports.length !== count * 2) throw new Error(`etcd needs ${count * 2} ports for ${count} member(s), got ${ports.length}`);
    const names = Array.from({ length: count }, (_, i) => `e${i + 1}`);
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[count + i]}`).join(',');
    const members = names.map((n, i) => new EtcdMember(n, ports[i] as number, ports[count + i] as number, path.join(dir, n), initialCluster));
    return new EtcdCluster(members, dir, ownsDir);
  }

  /** Comma-separated client URLs, as `--etcd` takes them. */
  get urls(): string {
    return this.members.map((m) => m.clientUrl).join(',');
  }

  /** Starts every member and waits until the cluster has a quorum. */
  async start(): Promise<void> {
    // Started together: a member of three is healthy only once a quorum has formed.
    await Promise.all(this.members.map((m) => m.start({ waitReady: false })));
    await Promise.all(this.members.map((m) => m.waitReady()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }

  /** Stops every member and removes the data directory when this cluster made it. */
  async remove(): Promise<void> {
    await this.stop();
    if (this.ownsDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Starts a cluster of `members`; the caller must `remove()` it (afterAll/finally). */
export async function startEtcd(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const cluster = await EtcdCluster.create(options);
  try {
    await cluster.start();
  } catch (error) {
    await cluster.remove();
    throw error;
  }
  return cluster;
}
