/**
 * The process harness: real twopc processes on loopback, started, SIGKILLed,
 * SIGSTOPped and restarted, for integration tests, scenarios, the bench and
 * `twopc cluster`. Each process's output goes to a log file beside its data,
 * so a failing test can show what the node said.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHttpClient } from '../shared/http/client.ts';
import { freePorts } from './ports.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/**
 * Built (this module is dist/scenarios/harness.js in an installed package): the nodes run the
 * built CLI on plain Node. From a clone: the TypeScript sources, through tsx.
 */
const RUNS_BUILT = import.meta.url.endsWith('.js');
export const CLI = path.join(ROOT, 'bin', RUNS_BUILT ? 'twopc.js' : 'twopc.ts');
/** Node's arguments that run the CLI, before the command's own. */
export const CLI_NODE_ARGS: readonly string[] = RUNS_BUILT ? [CLI] : ['--import', 'tsx', CLI];

/** How long a start may take before it counts as failed (tsx compiles on first load). */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const POLL_MS = 50;

export interface NodeSpec {
  readonly name: string;
  readonly role: 'coordinator' | 'participant';
  readonly port: number;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly logFile: string;
  /**
   * Node's arguments in place of the twopc CLI and its role (a service's own script, or an
   * installed package's bin); `args` follow them. The process must answer /healthz as the CLI does.
   */
  readonly command?: readonly string[];
  /** Working directory; the repository root by default. */
  readonly cwd?: string;
  /** Run as this user and group (a container's unprivileged user); the harness's own by default. */
  readonly uid?: number;
  readonly gid?: number;
}

export type ExitInfo = { code: number | null; signal: NodeJS.Signals | null };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Health checks go through the services' own HTTP client, each bounded by HEALTH_TIMEOUT_MS. */
const HEALTH_TIMEOUT_MS = 1_000;
const health = createHttpClient({ timeoutMs: HEALTH_TIMEOUT_MS });

export class NodeProcess {
  private child: ChildProcess | undefined;
  private exitPromise: Promise<ExitInfo> | undefined;
  /** Set once for each start: env entries for that start only (e.g. TWOPC_CRASH_AT). */
  private extraEnv: Record<string, string> = {};

  constructor(readonly spec: NodeSpec) {}

  get name(): string {
    return this.spec.name;
  }
  get url(): string {
    return `http://127.0.0.1:${this.spec.port}`;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the process and resolves once /healthz answers (`waitReady: false` returns at once). */
  async start(options: { env?: Record<string, string>; waitReady?: boolean } = {}): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    this.extraEnv = options.env ?? {};
    fs.mkdirSync(path.dirname(this.spec.logFile), { recursive: true });
    const log = fs.openSync(this.spec.logFile, 'a');
    const command = this.spec.command ?? [...CLI_NODE_ARGS, this.spec.role];
    const child = spawn(process.execPath, [...command, ...this.spec.args], {
      cwd: this.spec.cwd ?? ROOT,
      ...(this.spec.uid !== undefined && { uid: this.spec.uid }),
      ...(this.spec.gid !== undefined && { gid: this.spec.gid }),
      env: { ...process.env, TWOPC_LOG_LEVEL: process.env.TWOPC_LOG_LEVEL ?? 'debug', ...this.spec.env, ...this.extraEnv },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    this.child = child;
    this.exitPromise = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    if (options.waitReady !== false) await this.waitReady();
  }

  /**
   * Polls /healthz until the node says it is up and done recovering (its WAL
   * replayed, a coordinator's BOOT record durable), or fails if the process
   * exits or the time runs out. A node answers /healthz while it recovers.
   */
  async waitReady(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited during start; log:\n${this.tail()}`);
      try {
        const res = await health.get<{ recovering?: unknown }>(`${this.url}/healthz`);
        if (res.status === 200 && res.data.recovering === false) return;
      } catch {
        // Not listening yet.
      }
      await sleep(POLL_MS);
    }
    throw new Error(`${this.name} did not become ready in ${timeoutMs} ms; log:\n${this.tail()}`);
  }

  /** Resolves when the process has exited (for crash points, which kill the process themselves). */
  async waitExit(timeoutMs = STOP_TIMEOUT_MS): Promise<ExitInfo> {
    if (!this.exitPromise) throw new Error(`${this.name} was never started`);
    const timeout = sleep(timeoutMs).then(() => undefined);
    const info = await Promise.race([this.exitPromise, timeout]);
    if (!info) throw new Error(`${this.name} did not exit within ${timeoutMs} ms`);
    return info;
  }

  /** SIGKILL: no flush, no handler, like a power cut to this process. */
  async kill(): Promise<ExitInfo> {
    if (this.running) this.child?.kill('SIGKILL');
    return this.waitExit();
  }

  pause(): void {
    if (this.running) this.child?.kill('SIGSTOP');
  }

  resume(): void {
    if (this.running) this.child?.kill('SIGCONT');
  }

  /** SIGTERM, then SIGKILL if it does not exit in time. */
  async stop(): Promise<ExitInfo | undefined> {
    if (!this.child || !this.exitPromise) return undefined;
    if (!this.running) return this.exitPromise;
    this.child.kill('SIGCONT');
    this.child.kill('SIGTERM');
    try {
      return await this.waitExit(STOP_TIMEOUT_MS);
    } catch {
      return this.kill();
    }
  }

  async restart(options: { env?: Record<string, string> } = {}): Promise<void> {
    await this.stop();
    await this.start(options);
  }

  /** The last lines of the node's log. */
  tail(lines = 40): string {
    try {
      return fs.readFileSync(this.spec.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

export interface ClusterOptions {
  readonly participants?: number;
  readonly dataDir: string;
  readonly fsync?: 'always' | 'group' | 'none';
  readonly chaos?: boolean;
  readonly token?: string;
  /** First port; 0 picks free ports. */
  readonly basePort?: number;
  readonly lockWaitMs?: number;
  readonly coordinatorArgs?: readonly string[];
  readonly participantArgs?: readonly string[];
  /** Arguments for one participant only, e.g. `--resource postgres --pg-url URL` for p1. */
  readonly participantArgsOf?: (name: string) => readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /**
   * The URL node `from` is told for node `name` (whose own URL is `url`): a proxy in front of
   * it, as in the lab (scenarios/lab). The node's own URL by default.
   */
  readonly peerUrlOf?: (name: string, url: string, from: string) => string;
}

/** A coordinator plus participants p1..pN, each a real process with its own WAL under dataDir. */
export class ProcessCluster {
  private constructor(
    readonly coordinator: NodeProcess,
    readonly participants: readonly NodeProcess[],
  ) {}

  static async create(options: ClusterOptions): Promise<ProcessCluster> {
    const n = options.participants ?? 3;
    const ports =
      options.basePort && options.basePort > 0
        ? Array.from({ length: n + 1 }, (_, i) => (options.basePort as number) + i)
        : await freePorts(n + 1);
    const [cport, ...pports] = ports as [number, ...number[]];
    const peerUrlOf = options.peerUrlOf ?? ((_name: string, url: string) => url);
    const coordUrl = `http://127.0.0.1:${cport}`;
    const common = [
      '--fsync', options.fsync ?? 'group',
      ...(options.chaos ? ['--chaos'] : []),
      ...(options.token ? ['--token', options.token] : []),
    ];
    const participants = pports.map(
      (port, i) =>
        new NodeProcess({
          name: `p${i + 1}`,
          role: 'participant',
          port,
          logFile: path.join(options.dataDir, 'logs', `p${i + 1}.log`),
          env: options.env,
          args: [
            '--name', `p${i + 1}`,
            '--port', String(port),
            '--data', path.join(options.dataDir, `p${i + 1}`),
            '--coordinator', peerUrlOf('coordinator', coordUrl, `p${i + 1}`),
            ...(options.lockWaitMs !== undefined ? ['--lock-wait-ms', String(options.lockWaitMs)] : []),
            ...common,
            ...(options.participantArgs ?? []),
            ...(options.participantArgsOf?.(`p${i + 1}`) ?? []),
          ],
        }),
    );
    const coordinator = new NodeProcess({
      name: 'coordinator',
      role: 'coordinator',
      port: cport,
      logFile: path.join(options.dataDir, 'logs', 'coordinator.log'),
      env: options.env,
      args: [
        '--port', String(cport),
        '--data', path.join(options.dataDir, 'coordinator'),
        '--participants', participants.map((p) => `${p.name}=${peerUrlOf(p.name, p.url, 'coordinator')}`).join(','),
        ...common,
        ...(options.coordinatorArgs ?? []),
      ],
    });
    return new ProcessCluster(coordinator, participants);
  }

  get nodes(): NodeProcess[] {
    return [this.coordinator, ...this.participants];
  }

  participant(name: string): NodeProcess {
    const p = this.participants.find((x) => x.name === name);
    if (!p) throw new Error(`no participant ${name}`);
    return p;
  }

  async start(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
