/**
 * A simulated etcd for the HA group (./ha.ts): one linearizable key-value store
 * with a global revision, each key's create revision, leases with a TTL on the
 * simulated clock (an expired or revoked lease deletes its keys), transactions
 * that compare create revisions and then put or delete, and range reads.
 *
 * It is one logical store, as etcd's Raft group is to its clients: the
 * replication inside it is etcd's business, not ours. What the coordinators can
 * see of it is modelled: every request and answer crosses the simulated
 * network (a delay, a loss, a member's client cut off from etcd), and in seeded
 * windows etcd has no quorum and answers nothing, so calls run into their
 * deadline. While it has no quorum no lease expires, and when the quorum is
 * back every lease is extended by one TTL, as etcd's new Raft leader does.
 *
 * `SimEtcdClient` exposes exactly the subset of the `etcd3` client that the real
 * adapters call (coordinator/adapters/etcd-log.ts, etcd-leadership.ts), so the
 * simulator runs the services' own log and election code against it.
 *
 * Ground truth for the checks: each log write carries the term that issued it
 * (the simulator's label, not part of the request etcd judges), so etcd can
 * tell when a write of a deposed term was applied, and every DECISION applied
 * to the log is compared with the others for its transaction.
 */
import { coordinatorCodec } from '../../coordinator/runtime/records.ts';
import type { Prng } from '../../scenarios/prng.ts';
import type { NodeId } from './messages.ts';

/** One network hop between a coordinator and etcd. */
export const ETCD_TIMING = {
  latencyMinMs: 1,
  latencyMaxMs: 4,
  /** A unary call etcd does not answer in time fails (coordinator/adapters/etcd-client.ts `callMsMax`, scaled to the sim). */
  callMsMax: 1_500,
} as const;

interface StoredKv {
  readonly value: Buffer;
  readonly create: number;
  readonly mod: number;
  readonly lease: string | undefined;
}

interface SimLeaseState {
  readonly ttlMs: number;
  expiresAt: number;
  readonly keys: Set<string>;
}

/** What etcd needs from the world: its clock, its events, its faults, and where to report a broken rule. */
export interface EtcdHost {
  now(): number;
  /** Runs `run` after `delayMs`; with `node`, as an event of that member's process (deferred while it is paused). */
  schedule(delayMs: number, node: NodeId | undefined, what: string, run: () => void): void;
  /** Whether a message between `node` and etcd is lost now (loss, or the member's client cut off). */
  lost(node: NodeId): boolean;
  readonly rng: Prng;
  violation(kind: string, message: string, txId?: string): void;
  /** A DECISION reached the group's log: it is durable now, whoever wrote it and whether or not the writer hears so. */
  decided(txId: string, outcome: 'committed' | 'aborted', writer: NodeId): void;
}

type Compare = { readonly key: Buffer; readonly target: 'Create'; readonly result: 'Equal'; readonly create_revision: string | number };
type RequestOp =
  | { readonly request_put: { readonly key: Buffer; readonly value: Buffer; readonly lease?: string } }
  | { readonly request_delete_range: { readonly key: Buffer; readonly range_end?: Buffer } };

export interface TxnRequest {
  readonly compare?: readonly Compare[];
  readonly success?: readonly RequestOp[];
  /** Run when a compare fails: only range reads (the leadership adapter reads the leader key). */
  readonly failure?: readonly { readonly request_range: RangeRequest }[];
}

type TxnResponse = { succeeded: boolean; header: { revision: string }; responses: { response_range?: ReturnType<SimEtcd['range']> }[] };

export interface RangeRequest {
  readonly key: Buffer;
  readonly range_end?: Buffer;
  readonly limit?: number;
}

/** The group's layout in etcd (coordinator/adapters/etcd-log.ts). */
export interface GroupKeys {
  readonly prefix: string;
  readonly leader: string;
}

export class SimEtcd {
  revision = 0;
  private readonly kvs = new Map<string, StoredKv>();
  private readonly leases = new Map<string, SimLeaseState>();
  private leaseSeq = 0;
  private noQuorumUntil = Number.NEGATIVE_INFINITY;
  /** txId -> the outcome of the first DECISION applied to the group's log. */
  private readonly decisions = new Map<string, string>();
  /** Transactions etcd applied, and log writes it refused on their compare (fenced). */
  applied = 0;
  refused = 0;

  constructor(
    readonly host: EtcdHost,
    private readonly group: GroupKeys,
  ) {}

  /** The leader key's create revision now (the current term), if a leader key exists. */
  currentTerm(): string | undefined {
    const kv = this.kvs.get(this.group.leader);
    return kv === undefined ? undefined : String(kv.create);
  }

  get quorum(): boolean {
    return this.host.now() >= this.noQuorumUntil;
  }

  /** etcd loses its quorum for `ms`: nothing is answered; leases neither expire nor renew. */
  loseQuorum(ms: number): void {
    this.noQuorumUntil = Math.max(this.noQuorumUntil, this.host.now() + ms);
    this.host.schedule(this.noQuorumUntil - this.host.now(), undefined, 'etcd quorum back', () => this.regainQuorum());
  }

  /** As etcd's new Raft leader does, every lease gets one full TTL from now. */
  private regainQuorum(): void {
    if (!this.quorum) return;
    for (const [id, l] of this.leases) {
      l.expiresAt = Math.max(l.expiresAt, this.host.now() + l.ttlMs);
      this.expireAt(id, l.expiresAt);
    }
  }

  // ---- the operations, applied at etcd -----------------------------------------------------------

  grant(ttlSeconds: number): string {
    const id = String(++this.leaseSeq);
    const ttlMs = ttlSeconds * 1000;
    this.leases.set(id, { ttlMs, expiresAt: this.host.now() + ttlMs, keys: new Set() });
    this.expireAt(id, this.host.now() + ttlMs);
    return id;
  }

  /** A keepalive: the lease's TTL in seconds, or 0 when it is gone. */
  keepalive(id: string): number {
    const l = this.leases.get(id);
    if (l === undefined) return 0;
    l.expiresAt = this.host.now() + l.ttlMs;
    this.expireAt(id, l.expiresAt);
    return l.ttlMs / 1000;
  }

  revoke(id: string): void {
    const l = this.leases.get(id);
    if (l === undefined) return;
    this.leases.delete(id);
    if (l.keys.size > 0) {
      this.revision++;
      for (const k of l.keys) this.kvs.delete(k);
    }
  }

  private expireAt(id: string, at: number): void {
    this.host.schedule(at - this.host.now(), undefined, `etcd lease ${id} due`, () => {
      const l = this.leases.get(id);
      // Renewed since, or no quorum to expire it (it is extended when the quorum is back).
      if (l === undefined || l.expiresAt > this.host.now() || !this.quorum) return;
      this.revoke(id);
    });
  }

  put(key: string, value: Buffer, lease: string | undefined): void {
    if (lease !== undefined && !this.leases.has(lease)) throw new Error('etcdserver: requested lease not found');
    this.revision++;
    this.putAt(key, value, lease);
  }

  private putAt(key: string, value: Buffer, lease: string | undefined): void {
    const old = this.kvs.get(key);
    if (old?.lease !== undefined) this.leases.get(old.lease)?.keys.delete(key);
    this.kvs.set(key, { value, create: old?.create ?? this.revision, mod: this.revision, lease });
    if (lease !== undefined) this.leases.get(lease)?.keys.add(key);
  }

  /**
   * One transaction, atomically: every compare must hold for its ops to apply. `term` is the term
   * that issued it, when a coordinator's log did (ground truth for the fencing check).
   */
  txn(req: TxnRequest, term: string | undefined, writer: NodeId): TxnResponse {
    const holds = (req.compare ?? []).every((c) => String(this.kvs.get(c.key.toString())?.create ?? 0) === String(c.create_revision));
    if (!holds) {
      if (term !== undefined) this.refused++;
      const responses = (req.failure ?? []).map((op) => ({ response_range: this.range(op.request_range) }));
      return { succeeded: false, header: { revision: String(this.revision) }, responses };
    }
    const ops = req.success ?? [];
    for (const op of ops) {
      if ('request_put' in op && op.request_put.lease !== undefined && !this.leases.has(String(op.request_put.lease))) throw new Error('etcdserver: requested lease not found');
    }
    if (ops.length > 0) this.revision++;
    for (const op of ops) {
      if ('request_put' in op) {
        const key = op.request_put.key.toString();
        this.checkLogWrite(key, op.request_put.value, term, writer);
        this.putAt(key, Buffer.from(op.request_put.value), op.request_put.lease === undefined ? undefined : String(op.request_put.lease));
      } else {
        const from = op.request_delete_range.key.toString();
        const end = op.request_delete_range.range_end?.toString();
        this.checkLogWrite(from, undefined, term, writer);
        for (const k of [...this.kvs.keys()]) if (end === undefined ? k === from : k >= from && k < end) this.deleteKey(k);
      }
    }
    this.applied++;
    return { succeeded: true, header: { revision: String(this.revision) }, responses: [] };
  }

  private deleteKey(key: string): void {
    const old = this.kvs.get(key);
    if (old?.lease !== undefined) this.leases.get(old.lease)?.keys.delete(key);
    this.kvs.delete(key);
  }

  /** Keys in [key, range_end) (or exactly `key`), in key order, at most `limit`. */
  range(req: RangeRequest): { kvs: { key: Buffer; value: Buffer; create_revision: string; lease: string }[]; more: boolean; count: string } {
    const from = req.key.toString();
    const end = req.range_end?.toString();
    const keys = [...this.kvs.keys()].filter((k) => (end === undefined ? k === from : k >= from && (end === '\0' || k < end))).sort();
    const limit = req.limit !== undefined && req.limit > 0 ? req.limit : keys.length;
    const kvs = keys.slice(0, limit).map((k) => {
      const kv = this.kvs.get(k) as StoredKv;
      return { key: Buffer.from(k), value: kv.value, create_revision: String(kv.create), lease: kv.lease ?? '0' };
    });
    return { kvs, more: keys.length > limit, count: String(keys.length) };
  }

  /**
   * The rules only etcd's view can judge: a write to the group's log is applied only while the
   * term that issued it is the current one (fencing), and no transaction gets two decisions.
   */
  private checkLogWrite(key: string, value: Buffer | undefined, term: string | undefined, writer: NodeId): void {
    if (!key.startsWith(`${this.group.prefix}log/`) && key !== `${this.group.prefix}checkpoint`) return;
    const current = this.currentTerm();
    if (term === undefined || term !== current) {
      this.host.violation('fencing', `etcd applied a log write of ${writer}'s term ${term ?? '?'} while the current term is ${current ?? 'none'} (a deposed leader's write got through)`);
    }
    if (value === undefined || !key.startsWith(`${this.group.prefix}log/`)) return;
    const record = coordinatorCodec.decode(value[0] as number, new Uint8Array(value.subarray(1)));
    if (record.type !== 'DECISION') return;
    this.host.decided(record.txId, record.outcome, writer);
    const first = this.decisions.get(record.txId);
    if (first === undefined) this.decisions.set(record.txId, record.outcome);
    else if (first !== record.outcome) {
      this.host.violation('split-decision', `${record.txId}: ${writer} logged ${record.outcome} in term ${term ?? '?'}, but ${first} was logged before`, record.txId);
    }
  }

  // ---- clients ------------------------------------------------------------------------------------

  /** A member's client. `term` labels its log writes (ground truth); `unfenced` plants the bug that drops their compare. */
  client(node: NodeId, o: ClientOptions = {}): SimEtcdClient {
    return new SimEtcdClient(this, node, o);
  }
}

export interface ClientOptions {
  /** The term whose log writes this client carries (ground truth for the fencing check). */
  readonly term?: () => string | undefined;
  /** The planted bug: log writes go out without their fencing compare. */
  readonly unfenced?: boolean;
  /** Called as a log write is about to leave (the world may pause the process right there). */
  readonly beforeWrite?: () => void;
}

/** An error as the etcd3 client reports a call past its deadline. */
export class SimEtcdDeadline extends Error {
  constructor(what: string) {
    super(`sim etcd: ${what}: deadline exceeded`);
    this.name = 'GRPCDeadlineExceededError';
  }
}

/**
 * The subset of the `etcd3` client the adapters use. Each call is a request to etcd and an answer
 * back over the simulated network, bounded by a deadline. A client whose process died (`kill`)
 * hears nothing more: its pending calls never settle, as its process is gone.
 */
export class SimEtcdClient {
  private alive = true;
  /** When the process died (its held calls that had not left by then never leave). */
  private killedAt = Number.POSITIVE_INFINITY;
  /** Calls held back while the member is paused before they left it (a pause mid-write). */
  private holdUntil = Number.NEGATIVE_INFINITY;
  readonly kv: {
    txn: (req: TxnRequest) => Promise<TxnResponse>;
    range: (req: RangeRequest) => Promise<ReturnType<SimEtcd['range']>>;
  };

  constructor(
    private readonly etcd: SimEtcd,
    readonly node: NodeId,
    private readonly o: ClientOptions,
  ) {
    this.kv = {
      txn: (req) => {
        const term = this.o.term?.();
        if (term !== undefined) this.o.beforeWrite?.();
        // The planted bug: a log write goes out without its fencing compare.
        const sent = this.o.unfenced === true && term !== undefined ? { ...req, compare: [] } : req;
        return this.call('txn', () => this.etcd.txn(sent, term, this.node));
      },
      range: (req) => this.call('range', () => this.etcd.range(req)),
    };
  }

  /** The process died: nothing more reaches it. */
  kill(): void {
    this.alive = false;
    this.killedAt = Math.min(this.killedAt, this.etcd.host.now());
  }

  /** The member pauses now, before requests it issues leave: they go when it wakes. */
  holdSendsUntil(at: number): void {
    this.holdUntil = Math.max(this.holdUntil, at);
  }

  get(key: string): { buffer: () => Promise<Buffer | null>; string: () => Promise<string | null> } {
    const read = (): Promise<Buffer | null> => this.call('get', () => this.etcd.range({ key: Buffer.from(key) }).kvs[0]?.value ?? null);
    return { buffer: read, string: async () => (await read())?.toString() ?? null };
  }

  getAll(): { prefix: (p: string) => { strings: () => Promise<Record<string, string>> } } {
    return {
      prefix: (p) => ({
        strings: () =>
          this.call('getAll', () =>
            Object.fromEntries(
              this.etcd
                .range({ key: Buffer.from(p), range_end: Buffer.from(prefixEnd(p)) })
                .kvs.map((kv) => [kv.key.toString(), kv.value.toString()]),
            ),
          ),
      }),
    };
  }

  put(key: string): { value: (v: string) => { lease: (id: string) => { exec: () => Promise<void> } } } {
    return { value: (v) => ({ lease: (id) => ({ exec: () => this.call('put', () => this.etcd.put(key, Buffer.from(v), id)) }) }) };
  }

  lease(ttlSeconds: number, _options?: { autoKeepAlive?: boolean }): SimLease {
    return new SimLease(this, ttlSeconds);
  }

  close(): void {
    this.alive = false;
  }

  /** @internal */
  grant(ttlSeconds: number): Promise<string> {
    return this.call('lease grant', () => this.etcd.grant(ttlSeconds));
  }

  /** @internal */
  keepalive(id: string): Promise<{ TTL: string }> {
    return this.call('lease keepalive', () => ({ TTL: String(this.etcd.keepalive(id)) }));
  }

  /** @internal */
  revoke(id: string): Promise<void> {
    return this.call('lease revoke', () => this.etcd.revoke(id));
  }

  /** One request to etcd and its answer, each crossing the network; it fails at its deadline if no answer came. */
  private call<T>(what: string, apply: () => T): Promise<T> {
    const host = this.etcd.host;
    const hop = (): number => host.rng.int(ETCD_TIMING.latencyMinMs, ETCD_TIMING.latencyMaxMs);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled || !this.alive) return;
        settled = true;
        fn();
      };
      const heldMs = Math.max(0, this.holdUntil - host.now());
      const leavesAt = host.now() + heldMs;
      host.schedule(heldMs + ETCD_TIMING.callMsMax, this.node, `etcd ${what} deadline`, () => settle(() => reject(new SimEtcdDeadline(what))));
      if (host.lost(this.node)) return;
      host.schedule(heldMs + hop(), undefined, `etcd ${what}`, () => {
        // A request held in a paused process that was killed before it woke never left it.
        if (this.killedAt < leavesAt || !this.etcd.quorum) return;
        let answer: () => void;
        try {
          const result = apply();
          answer = () => resolve(result);
        } catch (error) {
          answer = () => reject(error);
        }
        if (host.lost(this.node)) return;
        host.schedule(hop(), this.node, `etcd ${what} answer`, () => settle(answer));
      });
    });
  }
}

/** etcd3's Lease, as the leadership adapter uses it (no automatic keepalive). */
export class SimLease {
  private id: string | undefined;

  constructor(
    private readonly client: SimEtcdClient,
    private readonly ttlSeconds: number,
  ) {}

  on(_event: 'lost', _listener: () => void): this {
    return this;
  }

  async grant(): Promise<string> {
    this.id ??= await this.client.grant(this.ttlSeconds);
    return this.id;
  }

  async keepaliveOnce(): Promise<{ TTL: string }> {
    if (this.id === undefined) throw new Error('sim etcd: keepalive before the lease was granted');
    return this.client.keepalive(this.id);
  }

  async revoke(): Promise<void> {
    if (this.id !== undefined) await this.client.revoke(this.id);
  }
}

/** The end of a prefix range: the prefix with its last byte incremented. */
function prefixEnd(prefix: string): string {
  return `${prefix.slice(0, -1)}${String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)}`;
}
