/**
 * An HA cluster of real processes for scenarios and tests: etcd (one member,
 * or three), coordinators c1..cN of one group (`--etcd --group --lease-ms`),
 * and participants p1..pN that know every coordinator (`--coordinator
 * URL,URL`). Who leads is read from each coordinator's /metrics
 * (`twopc_coordinator_leader 1`), never assumed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodeProcess, type ExitInfo } from './harness.ts';
import { startEtcd, type EtcdCluster } from './etcd.ts';
import { call, getJson, settledCluster, unfinishedAt, waitFor, waitSettledCluster, type CallResult, type InDoubtEntry } from './kit.ts';
import { freePorts } from './ports.ts';
import { parseLogLines, type LogLine } from './timeline.ts';
import { createHttpClient } from '../shared/http/client.ts';

export interface HaClusterOptions {
  /** Names the data directory. */
  readonly prefix: string;
  readonly coordinators?: number;
  readonly participants?: number;
  readonly etcdMembers?: 1 | 3;
  readonly leaseMs?: number;
  readonly keepData?: boolean;
  readonly lockWaitMs?: number;
  readonly env?: Readonly<Record<string, string>>;
  /** Environment for the coordinators only (chaos knobs such as TWOPC_CHAOS_HA_BLIND_LEADER). */
  readonly coordinatorEnv?: Readonly<Record<string, string>>;
}

/** A single /metrics read is bounded; a paused or dead node simply does not lead. */
const METRICS_TIMEOUT_MS = 1_000;
const metricsClient = createHttpClient({ timeoutMs: METRICS_TIMEOUT_MS });

export class HaCluster {
  private closed = false;
  /** The leader as last seen (`trackLeader`); the bank client sends its transfers there. */
  private lastLeaderUrl: string;
  private tracking: Promise<void> | undefined;
  /** No proxies in an HA cluster; the bank client's quiet check reads these. */
  readonly proxies: ReadonlyMap<string, { stats(): { held: number } }> = new Map();
  readonly coordinatorProxy = undefined;

  private constructor(
    readonly dataDir: string,
    readonly etcd: EtcdCluster,
    readonly coordinators: readonly NodeProcess[],
    readonly participants: readonly NodeProcess[],
    readonly leaseMs: number,
    private readonly keepData: boolean,
  ) {
    this.lastLeaderUrl = (coordinators[0] as NodeProcess).url;
  }

  /** The coordinator the bank client talks to: the leader as last seen. */
  get coordinator(): { readonly url: string } {
    return { url: this.lastLeaderUrl };
  }

  /** Keeps `coordinator.url` on the current leader, reading who leads every `everyMs` until close. */
  trackLeader(everyMs = 100): void {
    this.tracking ??= (async () => {
      while (!this.closed) {
        for (const c of this.coordinators) {
          if (await this.leads(c)) {
            this.lastLeaderUrl = c.url;
            break;
          }
        }
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
  }

  async kv(name: string): Promise<Record<string, unknown> | undefined> {
    return (await getJson<{ entries?: Record<string, unknown> }>(`${this.node(name).url}/v1/kv`))?.entries;
  }

  /** Transactions the leader has not finished; undefined when no leader answers. */
  async unfinished(): Promise<number | undefined> {
    const leader = await this.leader(5_000);
    return leader === undefined ? undefined : unfinishedAt(leader.url);
  }

  settled(options: { coordinator?: boolean } = {}): Promise<boolean> {
    return settledCluster(this, options);
  }

  waitSettled(timeoutMs: number, options: { coordinator?: boolean } = {}): Promise<boolean> {
    return waitSettledCluster(this, timeoutMs, options);
  }

  static async start(o: HaClusterOptions): Promise<HaCluster> {
    const dataDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), `twopc-ha-${o.prefix}-`));
    const cn = o.coordinators ?? 2;
    const pn = o.participants ?? 3;
    const leaseMs = o.leaseMs ?? 2_000;
    const etcd = await startEtcd({ members: o.etcdMembers ?? 1, dir: path.join(dataDir, 'etcd') });
    const ports = await freePorts(cn + pn);
    const cports = ports.slice(0, cn);
    const pports = ports.slice(cn);
    const coordUrls = cports.map((p) => `http://127.0.0.1:${p}`);
    const env = o.env ? { env: o.env } : {};
    // prettier-ignore
    const participants = pports.map((port, i) => new NodeProcess({
      name: `p${i + 1}`, role: 'participant', port, logFile: path.join(dataDir, 'logs', `p${i + 1}.log`), ...env,
      args: ['--name', `p${i + 1}`, '--port', String(port), '--data', path.join(dataDir, `p${i + 1}`), '--coordinator', coordUrls.join(','),
        '--lock-wait-ms', String(o.lockWaitMs ?? 200), '--fsync', 'group', '--chaos'],
    }));
    const list = participants.map((p) => `${p.name}=${p.url}`).join(',');
    // prettier-ignore
    const coordinators = cports.map((port, i) => new NodeProcess({
      name: `c${i + 1}`, role: 'coordinator', port, logFile: path.join(dataDir, 'logs', `c${i + 1}.log`), env: { ...o.env, ...o.coordinatorEnv },
      args: ['--name', `c${i + 1}`, '--port', String(port), '--data', path.join(dataDir, `c${i + 1}`), '--participants', list,
        '--etcd', etcd.urls, '--group', o.prefix, '--lease-ms', String(leaseMs), '--chaos'],
    }));
    const c = new HaCluster(dataDir, etcd, coordinators, participants, leaseMs, o.keepData === true);
    try {
      await Promise.all([...participants, ...coordinators].map((n) => n.start()));
    } catch (error) {
      await c.close();
      throw error;
    }
    return c;
  }

  get nodes(): NodeProcess[] {
    return [...this.coordinators, ...this.participants];
  }

  get names(): string[] {
    return this.participants.map((p) => p.name);
  }

  node(name: string): NodeProcess {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Whether `node` says it leads (its `twopc_coordinator_leader` gauge); false when it does not answer. */
  async leads(node: NodeProcess): Promise<boolean> {
    if (!node.running) return false;
    try {
      const res = await metricsClient.get<string>(`${node.url}/metrics`);
      return res.status === 200 && /^twopc_coordinator_leader 1$/m.test(String(res.data));
    } catch {
      return false;
    }
  }

  /** The one coordinator that leads, waiting (bounded) until exactly one says so and it has recovered. */
  async leader(timeoutMs = 30_000): Promise<NodeProcess | undefined> {
    return waitFor(async () => {
      const leading: NodeProcess[] = [];
      for (const c of this.coordinators) if (await this.leads(c)) leading.push(c);
      if (leading.length !== 1) return undefined;
      const health = await getJson<{ recovering?: boolean }>(`${(leading[0] as NodeProcess).url}/healthz`, 1, METRICS_TIMEOUT_MS);
      return health?.recovering === false ? leading[0] : undefined;
    }, timeoutMs, 50);
  }

  async arm(node: NodeProcess, point: string): Promise<boolean> {
    const r = await call('POST', `${node.url}/v1/chaos/crash-at`, { point }, 5_000);
    return r.ok && r.status === 200;
  }

  runTx(node: NodeProcess, branches: unknown, timeoutMs = 10_000): Promise<CallResult> {
    return call('POST', `${node.url}/v1/transactions`, { branches }, timeoutMs);
  }

  async inDoubt(name: string): Promise<InDoubtEntry[] | undefined> {
    return (await getJson<{ transactions?: InDoubtEntry[] }>(`${this.node(name).url}/v1/2pc/transactions?state=prepared`))?.transactions;
  }

  async txState(name: string, txId: string): Promise<string | undefined> {
    return (await getJson<{ state?: string }>(`${this.node(name).url}/v1/2pc/transactions/${encodeURIComponent(txId)}`))?.state;
  }

  async kvKey(name: string, key: string): Promise<{ value?: unknown; lockedBy?: string } | undefined> {
    return getJson(`${this.node(name).url}/v1/kv/${encodeURIComponent(key)}`);
  }

  logLines(name: string): LogLine[] {
    try {
      return parseLogLines(fs.readFileSync(this.node(name).spec.logFile, 'utf8'));
    } catch {
      return [];
    }
  }

  /**
   * How long the participants held their transactions in doubt: one sample per participant and
   * transaction, from its YES vote to its outcome (committed or aborted), both read from that
   * participant's own log so one clock stamps them. A participant killed while prepared counts
   * its own down time too: its locks were held all along. Needs the nodes' debug log.
   */
  inDoubtMs(): number[] {
    const out: number[] = [];
    for (const p of this.participants) {
      const votedAt = new Map<string, number>();
      for (const l of this.logLines(p.name)) {
        if (l.txId === undefined || l.time === undefined) continue;
        const voted = votedAt.get(l.txId);
        if (l.step === 'vote-yes' && voted === undefined) votedAt.set(l.txId, l.time);
        if ((l.step === 'committed' || l.step === 'aborted') && voted !== undefined) {
          out.push(l.time - voted);
          votedAt.delete(l.txId);
        }
      }
    }
    return out;
  }

  steps(name: string, txId: string | undefined, step: string): LogLine[] {
    return this.logLines(name).filter((l) => (txId === undefined || l.txId === txId) && l.step === step);
  }

  async waitExit(node: NodeProcess, timeoutMs: number): Promise<ExitInfo | undefined> {
    return node.waitExit(timeoutMs).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tracking;
    for (const n of this.nodes) n.resume();
    for (const m of this.etcd.members) m.resume();
    await Promise.all(this.nodes.map((n) => n.stop().catch(() => n.kill().catch(() => undefined))));
    await this.etcd.stop().catch(() => undefined);
    if (!this.keepData) await fs.promises.rm(this.dataDir, { recursive: true, force: true });
  }
}
