/**
 * The lab's wire: every internal message passes a fault proxy (scenarios/proxy.ts)
 * whose tap tells the lab what went by. One proxy in front of each participant
 * (the coordinator's prepares and decisions, peers' inquiries) and one per
 * participant in front of the coordinator (that participant's outcome
 * inquiries), so each message's sender and receiver are known.
 *
 * Step mode: each protocol message, and each answer to it (a vote, an ack),
 * waits in a bounded queue until a person delivers, duplicates, delays or
 * drops it. Turning step mode off delivers everything still waiting.
 */
import { freePorts } from '../ports.ts';
import { startFaultProxy, type FaultProxy, type TappedRequest, type TapVerdict } from '../proxy.ts';
import type { HeldMessage, LabHub } from './events.ts';

/** Messages waiting in step mode at once; past it a message passes untouched (and says so). */
export const STEP_QUEUE_MAX = 64;
/** The longest a person may delay a message by. */
export const STEP_DELAY_MS_MAX = 30_000;
/** Bytes of a request or answer body read to label it (its txId, a vote). */
const LABEL_BODY_BYTES_MAX = 64 * 1024;

export type StepAction = 'deliver' | 'drop' | 'duplicate' | 'delay';
export const STEP_ACTIONS: readonly StepAction[] = ['deliver', 'drop', 'duplicate', 'delay'];

interface Waiting {
  readonly message: HeldMessage;
  readonly decide: (verdict: TapVerdict) => void;
}

/** What the lab knows of a link: who sends on it and who receives. */
interface Link {
  readonly from: string | 'peer';
  readonly to: string;
  readonly port: number;
  /** The node's real URL, learned when the cluster asks for the URL to tell the others. */
  target?: string;
}

export class LabWire {
  private readonly proxies: FaultProxy[] = [];
  private readonly waiting = new Map<number, Waiting>();
  private seq = 0;
  private stepOn = false;

  private constructor(
    private readonly hub: LabHub,
    private readonly links: readonly Link[],
  ) {}

  /**
   * Picks the proxies' ports (before the nodes start: they are told these URLs) and returns
   * the wire with `peerUrlOf` for ProcessCluster.create; `start` opens the proxies.
   */
  static async plan(hub: LabHub, participants: readonly string[]): Promise<LabWire> {
    const ports = await freePorts(participants.length * 2);
    const links: Link[] = [];
    participants.forEach((name, i) => {
      links.push({ from: 'peer', to: name, port: ports[2 * i] as number });
      links.push({ from: name, to: 'coordinator', port: ports[2 * i + 1] as number });
    });
    return new LabWire(hub, links);
  }

  /** For ProcessCluster.create: the URL `from` is told for `name`. */
  peerUrlOf = (name: string, url: string, from: string): string => {
    const link = name === 'coordinator' ? this.links.find((l) => l.from === from && l.to === 'coordinator') : this.links.find((l) => l.to === name);
    if (!link) return url;
    link.target = url;
    return `http://127.0.0.1:${link.port}`;
  };

  async start(): Promise<void> {
    for (const link of this.links) {
      if (link.target === undefined) throw new Error(`the lab's proxy to ${link.to} was never given its target`);
      this.proxies.push(
        await startFaultProxy({
          target: link.target,
          port: link.port,
          seed: 1,
          tap: {
            request: (r) => this.onRequest(link, r),
            response: (r, status, body) => this.onResponse(link, r, status, body),
          },
        }),
      );
    }
  }

  get stepping(): boolean {
    return this.stepOn;
  }

  setStep(on: boolean): void {
    this.stepOn = on;
    if (!on) for (const id of [...this.waiting.keys()]) this.decide(id, 'deliver');
    this.publishQueue();
  }

  /** A person's choice for a waiting message; false when it waits no more (or never did). */
  decide(id: number, action: StepAction, delayMs = 1_000): boolean {
    const w = this.waiting.get(id);
    if (!w) return false;
    this.waiting.delete(id);
    const verdict: TapVerdict = action === 'delay' ? { action, delayMs: Math.min(Math.max(0, delayMs), STEP_DELAY_MS_MAX) } : { action };
    this.hub.publish({ type: 'message', ...w.message, fate: fateOf(action) });
    w.decide(verdict);
    this.publishQueue();
    return true;
  }

  queue(): HeldMessage[] {
    return [...this.waiting.values()].map((w) => w.message);
  }

  async close(): Promise<void> {
    this.stepOn = false;
    for (const id of [...this.waiting.keys()]) this.decide(id, 'drop');
    await Promise.all(this.proxies.map((p) => p.close()));
  }

  private onRequest(link: Link, r: TappedRequest): Promise<TapVerdict> {
    const from = link.from === 'peer' ? (r.route === 'inquiry' ? peerOf(r.body) : 'coordinator') : link.from;
    const message: HeldMessage = { id: ++this.seq, from, to: link.to, stage: 'request', label: requestLabel(r), txIds: txIdsOf(r.body) };
    return this.gate(message, r.route !== 'other');
  }

  private async onResponse(link: Link, r: TappedRequest, status: number, body: Buffer): Promise<'deliver' | 'drop'> {
    const from = link.to;
    const to = link.from === 'peer' ? (r.route === 'inquiry' ? peerOf(r.body) : 'coordinator') : link.from;
    const message: HeldMessage = { id: ++this.seq, from, to, stage: 'response', label: responseLabel(r, status, body), txIds: txIdsOf(r.body) };
    const verdict = await this.gate(message, r.route !== 'other');
    if (verdict.action === 'drop') return 'drop';
    // A delayed answer is held here; a duplicated answer reaches its caller once, as HTTP allows.
    if (verdict.action === 'delay') await new Promise((resolve) => setTimeout(resolve, verdict.delayMs));
    return 'deliver';
  }

  private gate(message: HeldMessage, protocol: boolean): Promise<TapVerdict> {
    if (!this.stepOn || !protocol) {
      if (protocol) this.hub.publish({ type: 'message', ...message, fate: 'passed' });
      return Promise.resolve({ action: 'rules' });
    }
    if (this.waiting.size >= STEP_QUEUE_MAX) {
      this.hub.publish({ type: 'action', action: 'step-overflow', detail: `step queue full (${STEP_QUEUE_MAX}): ${message.label} passed untouched`, ok: false });
      this.hub.publish({ type: 'message', ...message, fate: 'passed' });
      return Promise.resolve({ action: 'rules' });
    }
    return new Promise((resolve) => {
      this.waiting.set(message.id, { message, decide: resolve });
      this.hub.publish({ type: 'message', ...message, fate: 'held' });
      this.publishQueue();
    });
  }

  private publishQueue(): void {
    this.hub.publish({ type: 'step', on: this.stepOn, queue: this.queue() });
  }
}

function fateOf(action: StepAction): 'delivered' | 'dropped' | 'duplicated' | 'delayed' {
  return action === 'deliver' ? 'delivered' : action === 'drop' ? 'dropped' : action === 'duplicate' ? 'duplicated' : 'delayed';
}

function jsonOf(body: Buffer): unknown {
  if (body.length === 0 || body.length > LABEL_BODY_BYTES_MAX) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The transaction ids a request carries: its own, or each of a batch's messages'. */
export function txIdsOf(body: Buffer): string[] {
  const v = jsonOf(body);
  if (!isObj(v)) return [];
  if (typeof v.txId === 'string') return [v.txId];
  const list = Array.isArray(v.messages) ? v.messages : Array.isArray(v.txIds) ? v.txIds : [];
  return list.map((m) => (typeof m === 'string' ? m : isObj(m) && isObj(m.body) && typeof m.body.txId === 'string' ? m.body.txId : undefined)).filter((t): t is string => t !== undefined);
}

function peerOf(body: Buffer): string {
  const v = jsonOf(body);
  return isObj(v) && typeof v.from === 'string' ? v.from : 'peer';
}

export function requestLabel(r: TappedRequest): string {
  if (r.carries.length > 0) {
    const kinds = [...new Set(r.carries)];
    return r.carries.length === 1 ? (kinds[0] as string) : `${kinds.join('+')} ×${r.carries.length}`;
  }
  return r.route === 'outcome' ? 'outcome?' : r.route;
}

/** What an answer says: a vote, an ack, an outcome; `failed` when the node answered an error. */
export function responseLabel(r: TappedRequest, status: number, body: Buffer): string {
  if (status >= 400) return `${requestLabel(r)} failed (${status})`;
  const v = jsonOf(body);
  const one = (reply: unknown, route: string): string => {
    const b = isObj(reply) && isObj(reply.body) ? reply.body : reply;
    if (!isObj(b)) return route;
    if (route === 'prepare' && typeof b.vote === 'string') return `vote ${b.vote}`;
    if ((route === 'commit' || route === 'abort') && typeof b.state === 'string') return `ack ${b.state}`;
    if (typeof b.outcome === 'string') return `outcome ${b.outcome}`;
    if (typeof b.state === 'string') return `state ${b.state}`;
    return route;
  };
  if (r.carries.length > 0 && isObj(v) && Array.isArray(v.replies)) {
    const labels = v.replies.map((reply, i) => one(reply, r.carries[i] ?? 'other'));
    const kinds = [...new Set(labels)];
    return labels.length === 1 ? (kinds[0] as string) : `${kinds.join(', ')} ×${labels.length}`;
  }
  return one(v, r.route);
}
