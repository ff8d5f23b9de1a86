/**
 * Leader election for a group of coordinators through etcd, with a lease.
 *
 * Each member holds one lease (TTL `leaseMs`, whole seconds in etcd) and keeps
 * it alive every third of the TTL. With it the member registers its URL under
 * `members/<name>`, and campaigns: one transaction creates the `leader` key
 * (value: the member's name and URL) only if no leader key exists. The key
 * lives as long as the lease: a leader that dies or stops renewing loses it
 * one TTL after its last renewal, and the next campaign wins.
 *
 * The leader key's create revision is the fence (./etcd-log.ts): every log
 * write compares it, so a deposed leader's writes are refused by etcd. A
 * leader also stops acting on its own clock, before etcd could tell it: it
 * counts itself leader only until `sent + TTL` of the last renewal etcd
 * answered (`sent` = when that renewal was sent, so the bound is never late).
 * A process paused past its lease wakes with that bound behind it, and every
 * check says "not leader" before it could answer anything.
 */
import type { Etcd3, Lease } from 'etcd3';
import type { Fence } from './etcd-log.ts';

export const LEADERSHIP_DEFAULTS = {
  /** The lease's TTL: how long a dead leader blocks its group. etcd counts leases in whole seconds. */
  leaseMs: 2_000,
  /** A follower reads the leader key this often, so it takes over within this of the key's expiry. */
  campaignIntervalMs: 200,
} as const;

export interface LeaderInfo {
  readonly name: string;
  readonly url: string;
}

export interface LeadershipOptions {
  readonly client: Etcd3;
  /** The group's key prefix, `twopc/<group>/`. */
  readonly prefix: string;
  readonly name: string;
  readonly url: string;
  readonly leaseMs?: number;
  readonly campaignIntervalMs?: number;
  /** Called once each time this member becomes leader, with the fence of that term. */
  readonly onElected: (fence: Fence) => void;
  /** Called once each time this member stops being leader (lease lost, paused past it, or stopping). */
  readonly onDeposed: (reason: string) => void;
  /**
   * Chaos only (TWOPC_CHAOS_HA_BLIND_LEADER=1 with --chaos): the leader ignores its own lease clock
   * and etcd's word that its lease is gone, and so believes it leads until a write is refused. Only
   * etcd's fencing then stands between a deposed leader and the log; the fencing test shows it holds.
   */
  readonly blind?: boolean;
  /** Errors that do not stop the loop (etcd unreachable for a while): logged by the caller. */
  readonly onError: (step: string, error: unknown) => void;
  /**
   * The monotonic clock the lease bound is kept on, and the wait between rounds: the process's
   * own (performance.now, setTimeout) unless given; the simulator drives both from its virtual clock.
   */
  readonly clock?: LeaseClock;
}

/** A monotonic clock in ms and a wait on it. */
export interface LeaseClock {
  now(): number;
  /** Resolves after `ms`; never keeps a stopping process alive. */
  sleep(ms: number): Promise<void>;
}

const processClock: LeaseClock = {
  now: () => performance.now(),
  sleep: (ms) =>
    new Promise<void>((resolve) => {
      setTimeout(resolve, ms).unref();
    }),
};

export const leaderKey = (prefix: string): string => `${prefix}leader`;
export const membersPrefix = (prefix: string): string => `${prefix}members/`;

/** Whole etcd seconds for a TTL in ms (at least 1). */
export const leaseSecondsOf = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

export class Leadership {
  private lease: Lease | undefined;
  private leaseId: string | undefined;
  private term: Fence | undefined;
  /** clock.now() when the last renewal that etcd answered (or the grant) was sent. */
  private renewSentAt = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly ttlMs: number;
  private readonly intervalMs: number;
  private readonly clock: LeaseClock;

  constructor(private readonly o: LeadershipOptions) {
    this.clock = o.clock ?? processClock;
    this.ttlMs = leaseSecondsOf(o.leaseMs ?? LEADERSHIP_DEFAULTS.leaseMs) * 1000;
    this.intervalMs = o.campaignIntervalMs ?? LEADERSHIP_DEFAULTS.campaignIntervalMs;
  }

  get leaseTtlMs(): number {
    return this.ttlMs;
  }

  /** Starts keeping a lease, registering and campaigning; returns at once. */
  start(): void {
    this.loop ??= this.run();
  }

  /** True only while this member holds the leader key and its lease is valid by its own clock. */
  isLeader(): boolean {
    if (this.term === undefined) return false;
    if (this.clock.now() < this.renewSentAt + this.ttlMs || this.o.blind === true) return true;
    this.depose('the lease ran out by this member\'s clock (paused, or etcd unreachable)');
    return false;
  }

  /** The fence for log writes: undefined unless `isLeader()`. */
  fence(): Fence | undefined {
    return this.isLeader() ? this.term : undefined;
  }

  /** Who leads now, as etcd says (undefined while nobody does). */
  async leader(): Promise<LeaderInfo | undefined> {
    const value = await this.o.client.get(leaderKey(this.o.prefix)).string();
    return value === null ? undefined : parseLeader(value);
  }

  /** The URLs every live member registered, this one included. */
  async memberUrls(): Promise<string[]> {
    const all = await this.o.client.getAll().prefix(membersPrefix(this.o.prefix)).strings();
    return Object.values(all).sort();
  }

  /**
   * Stops leading now (a log write was refused or failed, or the log could not be loaded): the lease
   * is revoked, so another member, or this one with a new lease, takes over from etcd.
   */
  resign(reason: string): void {
    this.depose(reason);
  }

  /** Steps down (the lease is revoked, so the next member takes over at once) and stops campaigning. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    const lease = this.lease;
    this.depose('stopping');
    await lease?.revoke().catch(() => undefined);
  }

  /**
   * Stops leading at once. The lease goes too (revoked, best effort): while it lived, the leader key
   * it carries would block every campaign, this member's next one included.
   */
  private depose(reason: string): void {
    if (this.term === undefined) return;
    this.term = undefined;
    this.dropLease();
    this.o.onDeposed(reason);
  }

  private dropLease(): void {
    const lease = this.lease;
    this.lease = undefined;
    this.leaseId = undefined;
    void lease?.revoke().catch(() => undefined);
  }

  /** One loop: renew (or get) the lease, then campaign while following. Bounded by `intervalMs` a round. */
  private async run(): Promise<void> {
    let renewedAt = 0;
    while (!this.stopped) {
      try {
        if (this.leaseId === undefined) await this.grant();
        if (this.clock.now() - renewedAt >= this.ttlMs / 3) {
          await this.renew();
          renewedAt = this.clock.now();
        }
        if (this.term === undefined && this.leaseId !== undefined) await this.campaign();
      } catch (error) {
        this.o.onError('etcd.leadership', error);
      }
      // Checked each round too: a member that cannot renew stops leading when its bound passes.
      this.isLeader();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        void this.clock.sleep(this.intervalMs).then(resolve);
      });
    }
  }

  private async grant(): Promise<void> {
    const sentAt = this.clock.now();
    const lease = this.o.client.lease(this.ttlMs / 1000, { autoKeepAlive: false });
    lease.on('lost', () => undefined);
    const id = await lease.grant();
    this.lease = lease;
    this.leaseId = id;
    this.renewSentAt = sentAt;
    await this.o.client.put(`${membersPrefix(this.o.prefix)}${this.o.name}`).value(this.o.url).lease(id).exec();
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined) return;
    const sentAt = this.clock.now();
    let ttl: number;
    try {
      ttl = Number((await lease.keepaliveOnce()).TTL);
    } catch (error) {
      // Unreachable, or etcd says the lease is gone: drop it; a new one is granted next round.
      if (isLeaseGone(error)) this.forgetLease('etcd says the lease expired');
      throw error;
    }
    if (!(ttl > 0)) {
      this.forgetLease('etcd says the lease expired');
      return;
    }
    this.renewSentAt = Math.max(this.renewSentAt, sentAt);
  }

  private forgetLease(reason: string): void {
    if (this.o.blind === true && this.term !== undefined) return;
    this.depose(reason);
    this.dropLease();
  }

  private async campaign(): Promise<void> {
    const key = leaderKey(this.o.prefix);
    const leaseId = this.leaseId;
    const res = await this.o.client.kv.txn({
      compare: [{ key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(JSON.stringify({ name: this.o.name, url: this.o.url })), lease: leaseId } }],
      failure: [{ request_range: { key: Buffer.from(key) } }],
    });
    if (this.stopped) return;
    let createRevision = String(res.header.revision);
    if (!res.succeeded) {
      // The key may be ours: an earlier campaign won at etcd but its answer was lost (past its
      // deadline). The key then lives under the lease this member keeps renewing, and without
      // taking it up here nobody would ever lead again (found by the simulator, seed 631).
      const held = res.responses[0]?.response_range?.kvs[0];
      if (held === undefined || leaseId === undefined || String(held.lease) !== leaseId || leaseId !== this.leaseId) return;
      createRevision = String(held.create_revision);
    }
    // The key lives with the lease: valid by this clock until the last renewal's bound, never later.
    if (this.clock.now() >= this.renewSentAt + this.ttlMs) {
      // Won too late to trust: give the key back (with its lease) rather than hold it unused.
      this.dropLease();
      return;
    }
    this.term = { key, createRevision };
    this.o.onElected(this.term);
  }
}

function parseLeader(value: string): LeaderInfo | undefined {
  try {
    const v = JSON.parse(value) as Partial<LeaderInfo>;
    return typeof v.name === 'string' && typeof v.url === 'string' ? { name: v.name, url: v.url } : undefined;
  } catch {
    return undefined;
  }
}

function isLeaseGone(error: unknown): boolean {
  return error instanceof Error && /lease.*(not found|expired|revoked)|EtcdLeaseInvalidError/i.test(`${error.name} ${error.message}`);
}
