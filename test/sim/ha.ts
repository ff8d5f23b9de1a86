/**
 * The HA coordinator group in the simulator: two or three members sharing the
 * simulated etcd (./etcd.ts), as coordinator/ha.ts runs them on a real one.
 *
 * Each member is a process that runs the services' own election code
 * (coordinator/adapters/etcd-leadership.ts, on the simulated clock) and, while
 * it leads, the real coordinator core and effect driver (./coordinator-node.ts)
 * on the services' own etcd log (coordinator/adapters/etcd-log.ts): a term
 * opens the group's log, recovers from it (a BOOT with the next epoch, decided
 * outcomes sent again, the rest presumed aborted) and writes every record in a
 * transaction fenced by its leader key. A follower answers outcome inquiries
 * from the log in etcd and any other request with a 503 naming no leader.
 *
 * As in coordinator/ha.ts, a term ends when the member stops leading by its
 * own lease clock, when etcd refuses or fails a log write (the driver's
 * fail-stop ends the term, not the process), or when the process dies; the
 * runtime stops at once, its log is abandoned, and every protocol message asks
 * the lease clock before it leaves.
 *
 * Faults of the group (drawn from the seed by the world): a member crashes
 * (the leader, often) and restarts; a member pauses past its lease (all its
 * events wait until it wakes; a pause may strike right as it sends a log
 * write, which then leaves when it wakes); etcd loses its quorum for a while;
 * a member's client is cut off from etcd; etcd messages are lost.
 */
import type { Etcd3 } from 'etcd3';
import { Leadership, leaderKey, type LeaseClock } from '../../coordinator/adapters/etcd-leadership.ts';
import { openEtcdLog, readEtcdLog, type EtcdLog, type Fence } from '../../coordinator/adapters/etcd-log.ts';
import { coordinatorCodec, decodeSnapshot } from '../../coordinator/runtime/records.ts';
import type { Log, Recovered } from '../../wal/log.ts';
import { CoordinatorNode, type CoordinatorNodeOptions } from './coordinator-node.ts';
import type { Backend } from './disk.ts';
import type { SimEtcd, SimEtcdClient } from './etcd.ts';
import type { NodeId, RequestMsg } from './messages.ts';
import type { CallResult, Endpoint, Host } from './node.ts';

/** The group's lease and campaign pace in the simulator: one etcd second, so a seed sees several terms. */
export const HA_TIMING = {
  leaseMs: 1_000,
  campaignIntervalMs: 100,
} as const;

/** What a member needs from the world beyond a node's Host. */
export interface HaHost extends Host {
  /** The world's virtual time (no node's skew). */
  simNow(): number;
  /** Runs `run` after `delayMs` as an event of `node`'s process (deferred while it is paused). */
  nodeEvent(delayMs: number, node: NodeId, what: string, run: () => void): void;
  /** A log write is about to leave `node`: the seed may pause the process right there. */
  pauseMidWrite(node: NodeId): void;
}

/** Planted bugs of the group (./bugs.ts). */
export interface HaBugs {
  /** The etcd log's writes go without their fencing compare. */
  readonly unfenced: boolean;
  /** A leader ignores its own lease clock (etcd-leadership.ts `blind`). */
  readonly blind: boolean;
}

/** The log of one term in etcd, under the `Log` port the runtime's disk expects. */
class EtcdBackend implements Backend {
  readonly appendsDurable = true;
  private log: EtcdLog | undefined;
  term: { readonly client: SimEtcdClient; readonly fence: () => Fence | undefined } | undefined;

  constructor(private readonly prefix: string) {}

  async open(): Promise<{ log: Log; recovered: Recovered }> {
    const term = this.term;
    if (term === undefined) throw new Error('the etcd log is opened only in a term');
    const { log, recovered } = await openEtcdLog({ client: term.client as unknown as Etcd3, prefix: this.prefix, fence: term.fence });
    this.log = log;
    return { log, recovered };
  }

  /** The term ended or the process died: nothing more of it reaches etcd (coordinator/ha.ts `abandon`). */
  crash(): void {
    this.log?.abandon('this coordinator stopped leading');
    this.log = undefined;
  }

  /** An etcd write fails by the network or a lost quorum, never by an fsync of ours. */
  failNextSync(): void {}
}

interface Term {
  readonly fence: Fence;
  readonly client: SimEtcdClient;
  ended: boolean;
}

export class HaMember implements Endpoint {
  up = false;
  incarnation = 0;
  /** The member's process is stopped (SIGSTOP, a long GC) until then; its events wait. */
  pausedUntil = Number.NEGATIVE_INFINITY;
  readonly runtime: CoordinatorNode;
  private readonly backend: EtcdBackend;
  private leadership: Leadership | undefined;
  private client: SimEtcdClient | undefined;
  private term: Term | undefined;
  /** Terms this member won, and the ones a refused or failed write ended (counted for the report). */
  terms = 0;
  resigned = 0;

  constructor(
    private readonly host: HaHost,
    readonly id: NodeId,
    private readonly etcd: SimEtcd,
    private readonly prefix: string,
    runtimeOptions: CoordinatorNodeOptions,
    random: () => number,
    private readonly bugs: HaBugs,
  ) {
    this.backend = new EtcdBackend(prefix);
    this.runtime = new CoordinatorNode(host, id, { ...runtimeOptions, backend: this.backend, mayAct: () => this.leads() }, random, 'etcd');
  }

  get calls(): Map<number, unknown> {
    return this.runtime.calls;
  }

  /** Only a leading member's runtime may be recovering; a follower takes what it can at once. */
  get recovering(): boolean {
    return this.leads() && this.runtime.recovering;
  }

  /** The term this member believes it has, if any (its runtime runs in it). */
  get termRevision(): string | undefined {
    return this.term !== undefined && !this.term.ended ? this.term.fence.createRevision : undefined;
  }

  /** Leading and recovered: it takes client requests. */
  get ready(): boolean {
    return this.up && this.term !== undefined && !this.term.ended && this.runtime.up && !this.runtime.recovering;
  }

  /** Whether this member leads now, by its own lease clock (ending its term if the lease ran out). */
  leads(): boolean {
    const term = this.term;
    if (term === undefined || term.ended || this.leadership === undefined) return false;
    return this.leadership.isLeader() && !term.ended;
  }

  /** The process starts: it keeps a lease, registers and campaigns. */
  start(): Promise<void> {
    this.incarnation++;
    this.up = true;
    this.pausedUntil = Number.NEGATIVE_INFINITY;
    const incarnation = this.incarnation;
    const client = this.etcd.client(this.id);
    this.client = client;
    const clock: LeaseClock = {
      now: () => this.host.nodeNow(this.id),
      sleep: (ms) =>
        new Promise<void>((resolve) => {
          this.host.nodeEvent(ms, this.id, 'lease round', () => {
            if (this.up && this.incarnation === incarnation) resolve();
          });
        }),
    };
    this.leadership = new Leadership({
      client: client as unknown as Etcd3,
      prefix: this.prefix,
      name: this.id,
      url: `sim://${this.id}`,
      leaseMs: HA_TIMING.leaseMs,
      campaignIntervalMs: HA_TIMING.campaignIntervalMs,
      onElected: (fence) => this.lead(fence),
      onDeposed: (reason) => this.follow(reason),
      onError: () => undefined,
      clock,
      ...(this.bugs.blind && { blind: true }),
    });
    this.leadership.start();
    return Promise.resolve();
  }

  /** The process dies: its leadership loop, its term and its runtime with it; its lease lives on in etcd until it expires. */
  crash(): { callId: number; from: NodeId }[] {
    this.up = false;
    this.client?.kill();
    this.term?.client.kill();
    if (this.term) this.term.ended = true;
    this.term = undefined;
    this.leadership = undefined;
    return this.runtime.up ? this.runtime.crash() : [];
  }

  /** A write of the term was refused or failed: the term is over, the process lives on (coordinator/ha.ts `onFatal`). */
  resign(reason: string): void {
    if (this.term === undefined || this.term.ended) return;
    this.resigned++;
    this.leadership?.resign(reason);
  }

  /** The process stops for `ms` (SIGSTOP): its events and any request it was about to send wait. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.host.simNow() + ms);
    this.client?.holdSendsUntil(this.pausedUntil);
    this.term?.client.holdSendsUntil(this.pausedUntil);
  }

  private lead(fence: Fence): void {
    const client = this.etcd.client(this.id, { term: () => fence.createRevision, unfenced: this.bugs.unfenced, beforeWrite: () => this.host.pauseMidWrite(this.id) });
    const term: Term = { fence, client, ended: false };
    this.term = term;
    this.terms++;
    this.host.note(`${this.id} leads (term ${fence.createRevision})`);
    this.backend.term = { client, fence: () => (term.ended ? undefined : this.leadership?.fence()) };
    this.runtime.start().catch((error: unknown) => {
      if (term.ended) return;
      this.host.note(`${this.id} could not load the log: ${error instanceof Error ? error.message : String(error)}`);
      this.leadership?.resign('the log in etcd could not be loaded');
    });
  }

  private follow(reason: string): void {
    const term = this.term;
    if (term === undefined) return;
    term.ended = true;
    this.term = undefined;
    term.client.kill();
    this.host.note(`${this.id} no longer leads: ${reason}`);
    if (!this.runtime.up) return;
    // Requests the runtime held get the answer coordinator/ha.ts gives once its runtime stops.
    for (const h of this.runtime.crash()) this.host.respond(this.id, h.from, h.callId, 503, notLeader(this.id));
  }

  async onRequest(msg: RequestMsg): Promise<void> {
    if (this.leads() && this.runtime.up) return this.runtime.onRequest(msg);
    if (msg.payload.type === 'getOutcome') return this.answerFromEtcd(msg, msg.payload.txId);
    this.host.respond(this.id, msg.from, msg.callId, 503, notLeader(this.id));
  }

  async onCallResult(context: unknown, result: CallResult): Promise<void> {
    if (this.runtime.up) return this.runtime.onCallResult(context, result);
  }

  fireTimer(id: string, token: number): Promise<boolean> {
    return this.runtime.up ? this.runtime.fireTimer(id, token) : Promise.resolve(false);
  }

  flush(incarnation: number): Promise<void> {
    return this.runtime.flush(incarnation);
  }

  ioDone(incarnation: number, done: () => void): Promise<boolean> {
    return this.runtime.ioDone(incarnation, done);
  }

  checkpointNow(): Promise<boolean> {
    return this.runtime.up ? this.runtime.checkpointNow() : Promise.resolve(false);
  }

  /** A decision in the group's log is final, whoever wrote it; without one the answer is "pending" (coordinator/ha.ts). */
  private answerFromEtcd(msg: RequestMsg, txId: string): Promise<void> {
    const incarnation = this.incarnation;
    const client = this.client;
    if (client === undefined) return Promise.resolve();
    void readEtcdLog(client as unknown as Etcd3, this.prefix)
      .then(({ checkpoint, entries }) => {
        const decided = new Map<string, string>();
        if (checkpoint !== undefined) for (const d of decodeSnapshot(checkpoint.data).decided) decided.set(d.txId, d.outcome);
        for (const e of entries) {
          const r = coordinatorCodec.decode(e.type, e.payload);
          if (r.type === 'DECISION') decided.set(r.txId, r.outcome);
        }
        return decided.get(txId) ?? 'pending';
      })
      .catch(() => 'pending')
      .then((outcome) => {
        if (!this.up || this.incarnation !== incarnation) return;
        // What the ghost learns from the answer, as from the leader's (./coordinator-node.ts onReply).
        if (outcome === 'committed') this.host.ghost.commitSent(txId);
        if (outcome === 'aborted') this.host.ghost.tmDecided(txId, 'aborted', `${this.id} answered an inquiry with aborted from etcd`);
        this.host.respond(this.id, msg.from, msg.callId, 200, { outcome });
      });
    return Promise.resolve();
  }
}

function notLeader(id: NodeId): unknown {
  return { error: { code: 'not_leader', message: `This coordinator (${id}) does not lead its group.` } };
}

/** The group: its members, etcd, and the ground truth the world checks them against. */
export class HaGroup {
  constructor(
    readonly etcd: SimEtcd,
    readonly members: readonly HaMember[],
    readonly prefix: string,
  ) {}

  /** The member etcd names as leader now (ground truth), if any. */
  leaderId(): NodeId | undefined {
    const term = this.etcd.currentTerm();
    return term === undefined ? undefined : this.members.find((m) => m.termRevision === term)?.id;
  }

  /** Who holds the leader key in etcd, by its value (even if that member has not noticed yet, or is down). */
  keyHolder(): NodeId | undefined {
    const kv = this.etcd.range({ key: Buffer.from(leaderKey(this.prefix)) }).kvs[0];
    if (kv === undefined) return undefined;
    try {
      return (JSON.parse(kv.value.toString()) as { name?: string }).name;
    } catch {
      return undefined;
    }
  }

  member(id: NodeId): HaMember | undefined {
    return this.members.find((m) => m.id === id);
  }

  /** The member leading and recovered, if one is. */
  ready(): HaMember | undefined {
    return this.members.find((m) => m.ready && m.termRevision === this.etcd.currentTerm());
  }

  /** A protocol message may leave a member only within its term, as etcd sees the term now. */
  outsideTerm(id: NodeId): string | undefined {
    const m = this.member(id);
    if (m === undefined) return undefined;
    const current = this.etcd.currentTerm();
    if (m.termRevision !== undefined && m.termRevision === current) return undefined;
    return `${id} sent a protocol message in term ${m.termRevision ?? 'none'}, but the current term is ${current ?? 'none'}`;
  }
}
