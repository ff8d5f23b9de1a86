/**
 * The supervisor's own look at its nodes, for the lab: one bounded poll loop
 * (never the browsers) that asks each node's /healthz, the coordinator's
 * transaction list and each participant's in-doubt list, and reads the new
 * lines of each node's log for its WAL writes (the nodes log every record
 * with its LSN and whether it was forced). Only changes are published.
 */
import fs from 'node:fs';
import { createHttpClient } from '../../shared/http/client.ts';
import type { NodeProcess } from '../harness.ts';
import { parseLogLines } from '../timeline.ts';
import type { InDoubtEntry, LabHub, NodeState, TxView } from './events.ts';

/** How often the supervisor looks at its nodes. */
export const OBSERVE_INTERVAL_MS = 500;
/** Each look at a node gives up after this long (a SIGSTOPped node never answers). */
const OBSERVE_TIMEOUT_MS = 400;
/** Transactions of the coordinator's list followed at once (its newest). */
const TXS_FOLLOWED_MAX = 50;
/** Bytes of a node's log read in one look; a burst larger than this is skipped past, not queued. */
const LOG_READ_BYTES_MAX = 256 * 1024;
/** WAL records published per node per look; the page shows the latest few anyway. */
const WAL_RECORDS_PER_LOOK_MAX = 50;

export interface ObservedNode {
  readonly process: NodeProcess;
  readonly walDir: string;
}

export class LabObserver {
  private readonly http;
  private readonly lastNode = new Map<string, string>();
  private readonly lastTx = new Map<string, string>();
  private readonly lastInDoubt = new Map<string, string>();
  private readonly logOffset = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly nodes: readonly ObservedNode[],
    private readonly hub: LabHub,
    private readonly isPaused: (name: string) => boolean,
    token: string | undefined,
  ) {
    this.http = createHttpClient({ ...(token !== undefined && { token }), timeoutMs: OBSERVE_TIMEOUT_MS });
    // The WAL records already in the logs are history: the lab shows what happens from now on.
    for (const { process: p } of nodes) this.logOffset.set(p.name, sizeOf(p.spec.logFile));
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.running = this.look().finally(() => {
        if (!this.stopped) this.timer = setTimeout(loop, OBSERVE_INTERVAL_MS);
      });
    };
    loop();
  }

  /** One look now (after an action, so the page need not wait for the next tick). */
  async look(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.lookAt(n).catch(() => undefined)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    this.http.close();
  }

  private async lookAt(node: ObservedNode): Promise<void> {
    const p = node.process;
    const state = await this.stateOf(p);
    const view = { name: p.name, role: p.spec.role, url: p.url, state, ...(p.pid !== undefined && p.running && { pid: p.pid }), walDir: node.walDir, logFile: p.spec.logFile };
    this.publishIfChanged(this.lastNode, p.name, JSON.stringify(view), () => this.hub.publish({ type: 'node', node: view }));
    this.readLog(p);
    if (state !== 'up' && state !== 'recovering') return;
    if (p.spec.role === 'coordinator') await this.lookAtTransactions(p);
    else await this.lookAtInDoubt(p);
  }

  private async stateOf(p: NodeProcess): Promise<NodeState> {
    if (!p.running) return 'down';
    if (this.isPaused(p.name)) return 'paused';
    try {
      const res = await this.http.get<{ recovering?: boolean }>(`${p.url}/healthz`);
      if (res.status !== 200) return 'starting';
      return res.data.recovering === true ? 'recovering' : 'up';
    } catch {
      return 'starting';
    }
  }

  private async lookAtTransactions(p: NodeProcess): Promise<void> {
    const res = await this.http.get<{ transactions?: TxView[] }>(`${p.url}/v1/transactions`);
    if (res.status !== 200 || !Array.isArray(res.data.transactions)) return;
    // Oldest first, so the page lists them in the order they began.
    for (const t of res.data.transactions.slice(0, TXS_FOLLOWED_MAX).reverse()) {
      const tx: TxView = {
        txId: t.txId,
        state: t.state,
        ...(t.outcome !== undefined && { outcome: t.outcome }),
        ...(t.reason !== undefined && { reason: t.reason }),
        branches: t.branches.map((b) => ({ participant: b.participant, ...(b.vote !== undefined && { vote: b.vote }), acked: b.acked })),
      };
      this.publishIfChanged(this.lastTx, t.txId, JSON.stringify(tx), () => this.hub.publish({ type: 'tx', tx }));
    }
    if (this.lastTx.size > TXS_FOLLOWED_MAX * 4) {
      for (const key of [...this.lastTx.keys()].slice(0, this.lastTx.size - TXS_FOLLOWED_MAX * 2)) this.lastTx.delete(key);
    }
  }

  private async lookAtInDoubt(p: NodeProcess): Promise<void> {
    const res = await this.http.get<{ transactions?: InDoubtEntry[] }>(`${p.url}/v1/2pc/transactions?state=prepared`);
    if (res.status !== 200 || !Array.isArray(res.data.transactions)) return;
    const transactions = res.data.transactions.map((t) => ({ txId: t.txId, since: t.since, blockedMs: t.blockedMs, keys: t.keys, inquiries: t.inquiries }));
    // The timer runs on the page from `since`; a new event only when the list itself changes.
    const key = JSON.stringify(transactions.map((t) => [t.txId, t.keys, t.inquiries]));
    this.publishIfChanged(this.lastInDoubt, p.name, key, () => this.hub.publish({ type: 'indoubt', node: p.name, transactions }));
  }

  /** The node's WAL writes since the last look, from its log (a restarted node appends to the same file). */
  private readLog(p: NodeProcess): void {
    const size = sizeOf(p.spec.logFile);
    let offset = this.logOffset.get(p.name) ?? 0;
    if (size < offset) offset = 0;
    if (size - offset > LOG_READ_BYTES_MAX) offset = size - LOG_READ_BYTES_MAX;
    if (size === offset) return;
    const buf = Buffer.alloc(size - offset);
    const fd = fs.openSync(p.spec.logFile, 'r');
    try {
      fs.readSync(fd, buf, 0, buf.length, offset);
    } finally {
      fs.closeSync(fd);
    }
    // Only whole lines: a line still being written is read next time.
    const text = buf.toString('utf8');
    const end = text.lastIndexOf('\n') + 1;
    this.logOffset.set(p.name, offset + Buffer.byteLength(text.slice(0, end)));
    let published = 0;
    for (const line of parseLogLines(text.slice(0, end))) {
      if (published >= WAL_RECORDS_PER_LOOK_MAX) break;
      if (typeof line.step !== 'string' || !line.step.startsWith('wal.') || typeof line.lsn !== 'number') continue;
      published += 1;
      this.hub.publish({ type: 'wal', node: p.name, lsn: line.lsn, record: line.step.slice(4), forced: line.forced === true, ...(line.txId !== undefined && { txId: line.txId }), ...(typeof line.time === 'number' && { timeMs: line.time }) });
    }
  }

  private publishIfChanged(last: Map<string, string>, key: string, value: string, publish: () => void): void {
    if (last.get(key) === value) return;
    last.set(key, value);
    publish();
  }
}

function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}
