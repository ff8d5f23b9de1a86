/**
 * The lab's events and the hub that fans them out to the browsers (server-sent
 * events, `GET /lab/events`). The supervisor is the only one that looks at the
 * nodes; browsers only listen. Every list here has a named bound: clients, the
 * replay buffer a new client is sent, the transactions remembered, the bytes a
 * slow client may fall behind.
 */
import type http from 'node:http';

export type NodeState = 'starting' | 'up' | 'recovering' | 'paused' | 'down';

export interface NodeView {
  readonly name: string;
  readonly role: 'coordinator' | 'participant';
  readonly url: string;
  readonly state: NodeState;
  readonly pid?: number;
  readonly walDir: string;
  readonly logFile: string;
}

export interface InDoubtEntry {
  readonly txId: string;
  /** Wall-clock ms when it prepared: the page's timer counts from here. */
  readonly since: number;
  readonly blockedMs: number;
  readonly keys: readonly string[];
  readonly inquiries: number;
}

export interface TxView {
  readonly txId: string;
  readonly state: string;
  readonly outcome?: string;
  readonly reason?: string;
  readonly branches: readonly { readonly participant: string; readonly vote?: string; readonly acked: boolean }[];
}

/** One message in the step queue, waiting for a person to decide its fate. */
export interface HeldMessage {
  readonly id: number;
  readonly from: string;
  readonly to: string;
  readonly stage: 'request' | 'response';
  readonly label: string;
  readonly txIds: readonly string[];
}

export type MessageFate = 'passed' | 'held' | 'delivered' | 'dropped' | 'duplicated' | 'delayed';

export type LabEvent =
  | { readonly type: 'node'; readonly node: NodeView }
  | { readonly type: 'tx'; readonly tx: TxView }
  | { readonly type: 'indoubt'; readonly node: string; readonly transactions: readonly InDoubtEntry[] }
  /** `timeMs`: when the node wrote it (its log line's time); the lab reads logs a little later. */
  | { readonly type: 'wal'; readonly node: string; readonly lsn: number; readonly record: string; readonly forced: boolean; readonly txId?: string; readonly timeMs?: number }
  | {
      readonly type: 'message';
      readonly id: number;
      readonly from: string;
      readonly to: string;
      readonly stage: 'request' | 'response';
      readonly label: string;
      readonly txIds: readonly string[];
      readonly fate: MessageFate;
    }
  | { readonly type: 'step'; readonly on: boolean; readonly queue: readonly HeldMessage[] }
  | { readonly type: 'action'; readonly action: string; readonly node?: string; readonly detail: string; readonly ok: boolean };

export type Stamped = LabEvent & { readonly seq: number; readonly atMs: number };

/** Browsers connected at once; one more gets 503. */
export const LAB_CLIENTS_MAX = 8;
/** Events kept for a browser that connects later, and for the saved session log. */
export const LAB_EVENTS_BUFFERED_MAX = 2_000;
/** Transactions whose latest view is kept for the snapshot a new browser gets. */
export const LAB_TXS_KEPT_MAX = 200;
/** A browser that falls this far behind is disconnected rather than buffered for without end. */
export const LAB_CLIENT_BACKLOG_BYTES_MAX = 1024 * 1024;

export interface Snapshot {
  readonly nodes: readonly NodeView[];
  readonly txs: readonly TxView[];
  readonly inDoubt: Readonly<Record<string, readonly InDoubtEntry[]>>;
  readonly step: { readonly on: boolean; readonly queue: readonly HeldMessage[] };
  readonly chaos: boolean;
  readonly lanes: readonly string[];
}

export class LabHub {
  private seq = 0;
  private readonly buffer: Stamped[] = [];
  private readonly clients = new Set<http.ServerResponse>();
  private readonly nodes = new Map<string, NodeView>();
  private readonly txs = new Map<string, TxView>();
  private readonly inDoubt = new Map<string, readonly InDoubtEntry[]>();
  private step: { on: boolean; queue: readonly HeldMessage[] } = { on: false, queue: [] };

  constructor(
    private readonly chaos: boolean,
    private readonly lanes: readonly string[],
    private readonly now: () => number = Date.now,
  ) {}

  publish(event: LabEvent): Stamped {
    const stamped = { ...event, seq: ++this.seq, atMs: this.now() } as Stamped;
    this.remember(stamped);
    this.buffer.push(stamped);
    if (this.buffer.length > LAB_EVENTS_BUFFERED_MAX) this.buffer.splice(0, this.buffer.length - LAB_EVENTS_BUFFERED_MAX);
    const frame = `id: ${stamped.seq}\nevent: lab\ndata: ${JSON.stringify(stamped)}\n\n`;
    for (const res of this.clients) this.write(res, frame);
    return stamped;
  }

  private remember(e: Stamped): void {
    if (e.type === 'node') this.nodes.set(e.node.name, e.node);
    else if (e.type === 'indoubt') this.inDoubt.set(e.node, e.transactions);
    else if (e.type === 'step') this.step = { on: e.on, queue: e.queue };
    else if (e.type === 'tx') {
      this.txs.delete(e.tx.txId);
      this.txs.set(e.tx.txId, e.tx);
      if (this.txs.size > LAB_TXS_KEPT_MAX) this.txs.delete(this.txs.keys().next().value as string);
    }
  }

  snapshot(): Snapshot {
    return {
      nodes: [...this.nodes.values()],
      txs: [...this.txs.values()],
      inDoubt: Object.fromEntries(this.inDoubt),
      step: this.step,
      chaos: this.chaos,
      lanes: this.lanes,
    };
  }

  /** The buffered events, oldest first: the session log a teacher saves. */
  events(): readonly Stamped[] {
    return this.buffer.slice();
  }

  /** Takes a browser's stream: a snapshot, then the buffered messages and WAL records, then live events. */
  attach(res: http.ServerResponse): boolean {
    if (this.clients.size >= LAB_CLIENTS_MAX) return false;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    this.clients.add(res);
    res.once('close', () => this.clients.delete(res));
    this.write(res, `event: snapshot\ndata: ${JSON.stringify(this.snapshot())}\n\n`);
    const history = this.buffer.filter((e) => e.type === 'message' || e.type === 'wal' || e.type === 'action');
    for (const e of history) this.write(res, `id: ${e.seq}\nevent: lab\ndata: ${JSON.stringify(e)}\n\n`);
    return true;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  private write(res: http.ServerResponse, frame: string): void {
    if (res.writableLength > LAB_CLIENT_BACKLOG_BYTES_MAX) {
      this.clients.delete(res);
      res.destroy();
      return;
    }
    res.write(frame);
  }

  close(): void {
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}
