/**
 * What every scenario needs around the process harness: a cluster of real
 * processes (optionally with a fault proxy in front of each participant and
 * one in front of the coordinator for outcome inquiries), bounded HTTP calls
 * that never throw, waits with deadlines, and a record of the harness's own
 * events (kills, restarts, pauses, client requests) for the timeline.
 *
 * Start order with proxies: the coordinator's proxy first (its target port is
 * chosen up front), then the participants (their --coordinator is that
 * proxy), then one proxy per participant, then the coordinator (its
 * --participants are the proxies).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHttpClient, TransportError } from '../shared/http/client.ts';
import { NodeProcess, type ExitInfo } from './harness.ts';
import { freePorts } from './ports.ts';
import { startFaultProxy, type FaultProxy } from './proxy.ts';
import type { TimelineEvent } from './scenario.ts';
import { buildTimeline, CLIENT_LANE, COORDINATOR_LANE, parseLogLines, type LogLine, type TimelineOptions } from './timeline.ts';

// ---- HTTP: bounded, and never throwing ------------------------------------------------

export type CallResult<T = Record<string, unknown>> =
  | { readonly ok: true; readonly status: number; readonly body: T }
  | { readonly ok: false; readonly error: 'timeout' | 'reset' | 'unreachable'; readonly message: string };

export const CALL_TIMEOUT_MS = 10_000;

/** The services' own HTTP client (axios, keep-alive), so scenarios call nodes the way nodes call each other. */
const client = createHttpClient({ timeoutMs: CALL_TIMEOUT_MS });

export async function call<T = Record<string, unknown>>(
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  timeoutMs = CALL_TIMEOUT_MS,
): Promise<CallResult<T>> {
  try {
    const res = method === 'GET' ? await client.get<unknown>(url, { timeoutMs }) : await client.post<unknown>(url, body, { timeoutMs });
    return { ok: true, status: res.status, body: jsonBody(res.data) as T };
  } catch (error) {
    if (error instanceof TransportError) return { ok: false, error: error.code, message: error.message };
    return { ok: false, error: 'reset', message: `${url}: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** A body axios could not parse as JSON comes as text: kept as `{text}`, and an empty one as `{}`. */
export function jsonBody(data: unknown): unknown {
  if (typeof data !== 'string') return data ?? {};
  return data === '' ? {} : { text: data };
}

/** GETs are idempotent: a stale keep-alive socket to a restarted node gets a few more tries. */
export async function getJson<T = Record<string, unknown>>(url: string, attempts = 3, timeoutMs = 5_000): Promise<T | undefined> {
  for (let i = 0; i < attempts; i++) {
    const r = await call<T>('GET', url, undefined, timeoutMs);
    if (r.ok && r.status === 200) return r.body;
    await sleep(50 * (i + 1));
  }
  return undefined;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every `everyMs` until it returns something other than undefined, or the deadline passes. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 100): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() >= deadline) return undefined;
    await sleep(everyMs);
  }
}

// ---- The cluster ------------------------------------------------------------------------

export interface KitOptions {
  /** Names the data directory, e.g. the scenario's name. */
  readonly prefix: string;
  readonly participants?: number;
  /** A fault proxy between the coordinator and each participant. */
  readonly proxies?: boolean;
  /**
   * A fault proxy in front of the coordinator for the participants' outcome
   * inquiries (default: when `proxies`). While the coordinator is down this
   * proxy answers 502, which the participants read as a coordinator that
   * answered, so they do not turn to their peers; leave it out to show
   * cooperative termination.
   */
  readonly coordinatorProxy?: boolean;
  readonly seed?: number;
  readonly fsync?: 'always' | 'group' | 'none';
  readonly lockWaitMs?: number;
  readonly keepData?: boolean;
  readonly coordinatorArgs?: readonly string[];
  readonly participantArgs?: readonly string[];
  /** Arguments for one participant only, e.g. `--resource postgres --pg-url URL` for p1. */
  readonly participantArgsOf?: (name: string) => readonly string[];
  /** Environment for every node at every start. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface InDoubtEntry {
  readonly txId: string;
  readonly keys?: readonly string[];
  readonly blockedMs?: number;
}

/**
 * Starts `name` when it is down, retrying a failed start up to `attemptsMax` times (the harness's
 * start timeout can pass on a loaded machine, a database can be coming back). Each failure is
 * reported with the tail of its message (the node's last log lines): a node that cannot
 * recover from its WAL would be a bug, not noise. The last failure is thrown.
 */
export async function restartDown(
  c: ScenarioCluster,
  name: string,
  o: { readonly attemptsMax: number; readonly retryMs?: number; readonly onFailure: (attempt: number, message: string) => void },
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      if (!c.node(name).running) await c.start(name);
      return;
    } catch (error) {
      o.onFailure(attempt, (error instanceof Error ? error.message : String(error)).slice(-RESTART_MESSAGE_CHARS_MAX));
      if (attempt >= o.attemptsMax) throw error;
      await c.node(name).kill().catch(() => undefined);
      if (o.retryMs !== undefined) await sleep(o.retryMs);
    }
  }
}

/** How much of a failed start's message a scenario prints. */
const RESTART_MESSAGE_CHARS_MAX = 2_000;

/** Coordinator states in which a transaction is not finished. */
const UNFINISHED_STATES = ['preparing', 'committing', 'aborting'] as const;

/** Transactions the coordinator at `url` has not finished; undefined when it does not answer. */
export async function unfinishedAt(url: string): Promise<number | undefined> {
  let total = 0;
  for (const state of UNFINISHED_STATES) {
    const body = await getJson<{ transactions?: unknown[]; total?: number }>(`${url}/v1/transactions?state=${state}`);
    if (!body) return undefined;
    total += body.total ?? body.transactions?.length ?? 0;
  }
  return total;
}

/** A cluster as its settled check sees it: single coordinator or HA group alike. */
interface Settling {
  readonly participants: readonly { readonly name: string }[];
  inDoubt(name: string): Promise<InDoubtEntry[] | undefined>;
  unfinished(): Promise<number | undefined>;
}

/** Every participant answers and holds nothing in doubt; with `coordinator`, the coordinator too has nothing unfinished. */
export async function settledCluster(c: Settling, options: { coordinator?: boolean } = {}): Promise<boolean> {
  for (const p of c.participants) {
    const list = await c.inDoubt(p.name);
    if (list === undefined || list.length > 0) return false;
  }
  return options.coordinator === true ? (await c.unfinished()) === 0 : true;
}

/** Polls `settledCluster` until it holds or `timeoutMs` passes. */
export async function waitSettledCluster(c: Settling, timeoutMs: number, options: { coordinator?: boolean } = {}): Promise<boolean> {
  return (await waitFor(async () => ((await settledCluster(c, options)) ? true : undefined), timeoutMs, 200)) === true;
}

export class ScenarioCluster {
  /** The harness's own events, for the timeline: crashes, restarts, pauses, client requests. */
  readonly events: TimelineEvent[] = [];
  private closed = false;

  private constructor(
    readonly dataDir: string,
    readonly coordinator: NodeProcess,
    readonly participants: readonly NodeProcess[],
    /** By participant name; empty without proxies. */
    readonly proxies: ReadonlyMap<string, FaultProxy>,
    readonly coordinatorProxy: FaultProxy | undefined,
    private readonly keepData: boolean,
  ) {}

  static async start(options: KitOptions): Promise<ScenarioCluster> {
    const n = options.participants ?? 3;
    const dataDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), `twopc-scenario-${options.prefix}-`));
    const [cport, ...pports] = (await freePorts(n + 1)) as [number, ...number[]];
    const coordUrl = `http://127.0.0.1:${cport}`;
    const seed = options.seed ?? 1;
    const proxies = new Map<string, FaultProxy>();
    let coordinatorProxy: FaultProxy | undefined;
    const common = ['--fsync', options.fsync ?? 'group', '--chaos'];
    const participants: NodeProcess[] = [];
    let coordinator: NodeProcess | undefined;
    try {
      if (options.coordinatorProxy ?? options.proxies) coordinatorProxy = await startFaultProxy({ target: coordUrl, seed: seed * 31 + 7, maxHangMs: 30_000 });
      for (const [i, port] of pports.entries()) {
        const name = `p${i + 1}`;
        participants.push(
          new NodeProcess({
            name,
            role: 'participant',
            port,
            logFile: path.join(dataDir, 'logs', `${name}.log`),
            ...(options.env ? { env: options.env } : {}),
            args: [
              '--name', name,
              '--port', String(port),
              '--data', path.join(dataDir, name),
              '--coordinator', coordinatorProxy?.url ?? coordUrl,
              '--lock-wait-ms', String(options.lockWaitMs ?? 200),
              ...common,
              ...(options.participantArgs ?? []),
              ...(options.participantArgsOf?.(name) ?? []),
            ],
          }),
        );
      }
      await Promise.all(participants.map((p) => p.start()));
      if (options.proxies) {
        for (const [i, p] of participants.entries()) {
          proxies.set(p.name, await startFaultProxy({ target: p.url, seed: seed * 31 + i + 11, maxHangMs: 30_000 }));
        }
      }
      coordinator = new NodeProcess({
        name: COORDINATOR_LANE,
        role: 'coordinator',
        port: cport,
        logFile: path.join(dataDir, 'logs', 'coordinator.log'),
        ...(options.env ? { env: options.env } : {}),
        args: [
          '--port', String(cport),
          '--data', path.join(dataDir, 'coordinator'),
          '--participants', participants.map((p) => `${p.name}=${proxies.get(p.name)?.url ?? p.url}`).join(','),
          ...common,
          ...(options.coordinatorArgs ?? []),
        ],
      });
      // The harness's start resolves only once /healthz says the node is done recovering.
      await coordinator.start();
    } catch (error) {
      await Promise.all([...participants, ...(coordinator ? [coordinator] : [])].map((p) => p.stop().catch(() => undefined)));
      await Promise.all([...proxies.values(), ...(coordinatorProxy ? [coordinatorProxy] : [])].map((p) => p.close()));
      if (!options.keepData) await fs.promises.rm(dataDir, { recursive: true, force: true });
      throw error;
    }
    return new ScenarioCluster(dataDir, coordinator, participants, proxies, coordinatorProxy, options.keepData === true);
  }

  get nodes(): NodeProcess[] {
    return [this.coordinator, ...this.participants];
  }

  get names(): string[] {
    return this.participants.map((p) => p.name);
  }

  node(name: string): NodeProcess {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  mark(lane: string, mark: string, label: string, txId?: string): void {
    this.events.push({ kind: 'mark', atMs: Date.now(), lane, mark, label, ...(txId ? { txId } : {}) });
  }

  /** SIGKILL, recorded on the node's lane. */
  async kill(name: string): Promise<ExitInfo> {
    this.mark(name, 'crash', 'SIGKILL');
    return this.node(name).kill();
  }

  /** Waits for a node that is meant to kill itself (a crash point, a failed fsync). */
  async waitCrash(name: string, timeoutMs: number, label = 'crashed'): Promise<ExitInfo | undefined> {
    const exit = await this.node(name).waitExit(timeoutMs).catch(() => undefined);
    if (exit) this.mark(name, 'crash', `${label} (${exit.signal ?? `exit ${exit.code}`})`);
    return exit;
  }

  /** Starts a node; the harness resolves once it has recovered from its WAL (its /healthz says recovering: false). */
  async start(name: string, env?: Record<string, string>): Promise<void> {
    this.mark(name, 'restart', 'start');
    await this.node(name).start(env ? { env } : {});
  }

  pause(name: string): void {
    this.mark(name, 'pause', 'SIGSTOP');
    this.node(name).pause();
  }

  resume(name: string): void {
    this.mark(name, 'resume', 'SIGCONT');
    this.node(name).resume();
  }

  /** Arms a crash point over /v1/chaos/crash-at; false when the node refused. */
  async arm(name: string, point: string): Promise<boolean> {
    const r = await call('POST', `${this.node(name).url}/v1/chaos/crash-at`, { point }, 5_000);
    const ok = r.ok && r.status === 200;
    if (ok) this.mark(name, 'note', `armed ${point.split('.')[1] ?? point}`);
    return ok;
  }

  /** POST /v1/transactions with `branches`, recorded as a client message with its answer. */
  async runTx(branches: unknown, timeoutMs = CALL_TIMEOUT_MS): Promise<CallResult> {
    const atMs = Date.now();
    const r = await call('POST', `${this.coordinator.url}/v1/transactions`, { branches }, timeoutMs);
    const txId = r.ok && typeof r.body.txId === 'string' ? r.body.txId : undefined;
    this.events.push({ kind: 'message', atMs, lane: CLIENT_LANE, to: COORDINATOR_LANE, toAtMs: atMs, label: 'POST /v1/transactions', message: 'client', ...(txId ? { txId } : {}) });
    const label = r.ok ? (typeof r.body.outcome === 'string' ? `${r.body.outcome}${r.body.applied === false ? ' (not yet applied)' : ''}` : `HTTP ${r.status}`) : `no answer (${r.error})`;
    const end = Date.now();
    if (r.ok) this.events.push({ kind: 'message', atMs: end, lane: COORDINATOR_LANE, to: CLIENT_LANE, toAtMs: end, label, message: 'client', ...(txId ? { txId } : {}) });
    else this.mark(CLIENT_LANE, 'crash', label);
    return r;
  }

  async inDoubt(name: string): Promise<InDoubtEntry[] | undefined> {
    const body = await getJson<{ transactions?: InDoubtEntry[] }>(`${this.node(name).url}/v1/2pc/transactions?state=prepared`);
    return body?.transactions;
  }

  async txState(name: string, txId: string): Promise<string | undefined> {
    const body = await getJson<{ state?: string }>(`${this.node(name).url}/v1/2pc/transactions/${encodeURIComponent(txId)}`);
    return body?.state;
  }

  async kv(name: string): Promise<Record<string, unknown> | undefined> {
    return (await getJson<{ entries?: Record<string, unknown> }>(`${this.node(name).url}/v1/kv`))?.entries;
  }

  /** The JSON lines a node has logged so far (across its restarts). */
  logLines(name: string): LogLine[] {
    try {
      return parseLogLines(fs.readFileSync(this.node(name).spec.logFile, 'utf8'));
    } catch {
      return [];
    }
  }

  /** The node's WAL directory (its --data). */
  walDir(name: string): string {
    return path.join(this.dataDir, name);
  }

  /** Waits (bounded) for a log line: pino writes asynchronously, so a line may trail the state it reports. */
  async waitStep(name: string, txId: string, step: string, timeoutMs = 3_000): Promise<LogLine | undefined> {
    return waitFor(async () => this.steps(name, txId, step)[0], timeoutMs, 50);
  }

  /** Log lines of one node for one transaction and step. */
  steps(name: string, txId: string, step: string): LogLine[] {
    return this.logLines(name).filter((l) => l.txId === txId && l.step === step);
  }

  async kvKey(name: string, key: string): Promise<{ value?: unknown; lockedBy?: string } | undefined> {
    return getJson(`${this.node(name).url}/v1/kv/${encodeURIComponent(key)}`);
  }

  /** The coordinator's view of a transaction (its outcome may be `heuristic-mixed`). */
  async coordinatorTx(txId: string): Promise<{ state?: string; outcome?: string } | undefined> {
    return getJson(`${this.coordinator.url}/v1/transactions/${encodeURIComponent(txId)}`);
  }

  /** Transactions the coordinator has not finished, or undefined when it does not answer. */
  unfinished(): Promise<number | undefined> {
    return unfinishedAt(this.coordinator.url);
  }

  settled(options: { coordinator?: boolean } = {}): Promise<boolean> {
    return settledCluster(this, options);
  }

  waitSettled(timeoutMs: number, options: { coordinator?: boolean } = {}): Promise<boolean> {
    return waitSettledCluster(this, timeoutMs, options);
  }

  healProxies(): void {
    for (const p of this.proxies.values()) p.heal();
    this.coordinatorProxy?.heal();
  }

  /** Reads every node's log and builds the timeline (harness events included). */
  timeline(options: TimelineOptions = {}): TimelineEvent[] {
    const logs = this.nodes.map((n) => ({ lane: n.name, lines: this.logLines(n.name) }));
    return buildTimeline(logs, this.events, options);
  }

  get lanes(): string[] {
    return [CLIENT_LANE, COORDINATOR_LANE, ...this.names];
  }

  /** Resumes and stops every node, closes the proxies, and removes the data unless asked to keep it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const n of this.nodes) n.resume();
    await Promise.all(this.nodes.map((n) => n.stop().catch(() => n.kill().catch(() => undefined))));
    await Promise.all([...this.proxies.values(), ...(this.coordinatorProxy ? [this.coordinatorProxy] : [])].map((p) => p.close()));
    if (!this.keepData) await fs.promises.rm(this.dataDir, { recursive: true, force: true });
  }
}
