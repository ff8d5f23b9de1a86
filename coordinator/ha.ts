/**
 * `twopc coordinator --etcd URLS --group NAME`: one member of a group of
 * coordinators that share a decision log in etcd and elect a leader.
 *
 * Every member listens at once. Only the leader runs a coordinator runtime:
 * it is built when this member wins the election, from what the group's log
 * in etcd holds (./adapters/etcd-log.ts), and recovers exactly as a restarted
 * coordinator does from its WAL (a BOOT with the next epoch, decided outcomes
 * sent again, the rest presumed aborted). Its records go to etcd, fenced by the
 * leader key, so a deposed leader's writes are refused.
 *
 * A follower (or a leader still loading) answers client requests with a 503
 * `not_leader` naming the leader; it answers participants' outcome inquiries
 * from the log in etcd (a decision there is final; anything else is "pending",
 * and the leader presumes abort once it has recovered).
 *
 * When this member stops leading (its lease ran out by its own clock, etcd
 * refused a write, or it is stopping), its runtime stops at once: no more
 * protocol messages leave (the transport checks the term on every send), and
 * requests still waiting get a 503. It campaigns again with a new lease.
 */
import type { Etcd3 } from 'etcd3';
import { Timers, systemClock, waitAtMost } from '../shared/clock.ts';
import type { CrashPoints } from '../shared/crash.ts';
import { TwopcError } from '../shared/errors.ts';
import type { HttpClient } from '../shared/http/client.ts';
import type { Logger } from '../shared/logger.ts';
import type { Metrics } from '../shared/metrics.ts';
import type { ProtocolVariant } from '../shared/types.ts';
import { createEtcdClient } from './adapters/etcd-client.ts';
import { Leadership, LEADERSHIP_DEFAULTS } from './adapters/etcd-leadership.ts';
import { openEtcdLog, readEtcdLog, type EtcdLog, type Fence } from './adapters/etcd-log.ts';
import { batchLimitsFor } from './adapters/batches.ts';
import { createHttpTransport, type Transport } from './adapters/http-transport.ts';
import type { CoordinatorConfig } from './core/index.ts';
import { coordinatorCodec, decodeSnapshot } from './runtime/records.ts';
import { CoordinatorRuntime, type Answer, type ClientRequest } from './runtime/runtime.ts';
import type { CoordinatorTarget } from './server.ts';

export interface HaOptions {
  /** etcd client URLs. */
  readonly etcd: readonly string[];
  /** The group's name: members with one name share one log and one leader. */
  readonly group: string;
  /** The leader lease's TTL (whole seconds in etcd; 2 s by default). */
  readonly leaseMs?: number;
}

export const HA_DEFAULTS = {
  /** A follower's reads of the log for inquiries are shared for this long (a decision never changes; "pending" may lag by this). */
  followerReadMs: 250,
  /** Checkpoints keep the log in etcd short: every member reads it whole on an election and for inquiries. */
  checkpointEveryRecords: 1_000,
} as const;

/** What the member needs from the process that hosts it (coordinator/main.ts). */
export interface HaMemberOptions {
  readonly ha: HaOptions;
  readonly name: string;
  readonly selfUrl: string;
  /** name -> base URL, already checked (shared/urls.ts checkParticipants). */
  readonly participants: Readonly<Record<string, string>>;
  readonly protocol: ProtocolVariant;
  readonly core?: Partial<Omit<CoordinatorConfig, 'name' | 'selfUrl' | 'participants' | 'protocol'>>;
  readonly http: HttpClient;
  readonly prepareTimeoutMs: number;
  readonly batching: boolean;
  readonly crashPoints: CrashPoints;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly recoveryWaitMs: number;
  readonly checkpointEveryRecords?: number;
  /** Chaos only: a leader blind to its lease (./adapters/etcd-leadership.ts `blind`). */
  readonly blindLeader?: boolean;
}

/** One leadership term: the runtime and log this member runs while it leads. */
interface Term {
  readonly fence: Fence;
  runtime?: CoordinatorRuntime;
  log?: EtcdLog;
  timers: Timers;
  ready: Promise<void>;
  ended: boolean;
}

export class HaMember implements CoordinatorTarget {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly leadership: Leadership;
  private term: Term | undefined;
  private followerRead: { at: number; decided: Promise<Map<string, string>> } | undefined;

  constructor(private readonly o: HaMemberOptions) {
    this.client = createEtcdClient(o.ha.etcd);
    this.prefix = `twopc/${o.ha.group}/`;
    this.leadership = new Leadership({
      client: this.client,
      prefix: this.prefix,
      name: o.name,
      url: o.selfUrl,
      leaseMs: o.ha.leaseMs ?? LEADERSHIP_DEFAULTS.leaseMs,
      onElected: (fence) => this.lead(fence),
      onDeposed: (reason) => this.follow(reason),
      onError: (step, error) => o.logger.warn({ step, err: error }, 'etcd call failed; retrying'),
      ...(o.blindLeader === true && { blind: true }),
    });
    this.setLeaderGauge(false);
  }

  start(): void {
    this.o.logger.info({ step: 'ha.start', group: this.o.ha.group, etcd: this.o.ha.etcd, leaseMs: this.leadership.leaseTtlMs }, 'campaigning for leadership');
    this.leadership.start();
  }

  /** True while this member leads and its runtime is still loading the log. */
  get recovering(): boolean {
    return this.term !== undefined && this.term.runtime?.recovering !== false;
  }

  /** The runtime of the current term, when this member leads (tests). */
  get runtime(): CoordinatorRuntime | undefined {
    return this.term?.runtime;
  }

  isLeader(): boolean {
    return this.leadership.isLeader();
  }

  async request(req: ClientRequest): Promise<Answer> {
    const term = this.term;
    if (term !== undefined && this.leadership.isLeader()) {
      if (term.runtime === undefined || term.runtime.recovering) await waitAtMost(term.ready, this.o.recoveryWaitMs);
      // Checked again: a term may end while it loads.
      if (this.term === term && !term.ended && term.runtime !== undefined && this.leadership.isLeader()) return term.runtime.request(req);
    }
    if (req.type === 'getOutcome') return { status: 200, body: { outcome: outcomeIn(await this.decidedInEtcd(), req.txId) } };
    if (req.type === 'getOutcomes') {
      // Every id is answered from one read of the group's log.
      const decided = await this.decidedInEtcd();
      return { status: 200, body: { outcomes: Object.fromEntries(req.txIds.map((txId) => [txId, outcomeIn(decided, txId)])) } };
    }
    return this.notLeader();
  }

  /**
   * Stops: a leader first stops its runtime while it still leads (its last checkpoint is written,
   * fenced), then gives the leadership up at once (the lease is revoked), so a standby takes over
   * without waiting for the TTL.
   */
  async close(): Promise<void> {
    await this.endTerm('stopping', { graceful: true });
    await this.leadership.stop();
    this.client.close();
  }

  // ---- terms ---------------------------------------------------------------------------

  private lead(fence: Fence): void {
    const term: Term = { fence, timers: new Timers(), ended: false, ready: Promise.resolve() };
    this.term = term;
    this.setLeaderGauge(true);
    this.o.logger.info({ step: 'ha.elected', group: this.o.ha.group, revision: fence.createRevision }, `${this.o.name} leads group ${this.o.ha.group}`);
    term.ready = this.loadTerm(term).catch((error: unknown) => {
      this.o.logger.error({ step: 'ha.load-failed', err: error }, 'could not take over from the log in etcd; stepping down');
      this.leadership.resign('the log in etcd could not be loaded');
    });
  }

  /** Reads the group's log, builds the runtime on it and recovers: BOOT with the next epoch, then resends. */
  private async loadTerm(term: Term): Promise<void> {
    const { log, recovered } = await openEtcdLog({
      client: this.client,
      prefix: this.prefix,
      fence: () => (term.ended ? undefined : this.leadership.fence()),
      onTxn: (records) => {
        this.o.metrics.set('coordinator_etcd_txn_records', 'Records the last etcd log transaction carried.', records);
        // Totals, so a bench can tell etcd transactions per client transaction and records per etcd transaction.
        this.o.metrics.inc('coordinator_etcd_txns_total', 'etcd log transactions written (each one Raft round, fenced).');
        this.o.metrics.inc('coordinator_etcd_records_total', 'Log records written to etcd, over all its transactions.', undefined, records);
      },
    });
    term.log = log;
    if (term.ended) return;
    const runtime = new CoordinatorRuntime({
      config: { ...this.o.core, name: this.o.name, selfUrl: this.o.selfUrl, participants: this.o.participants, protocol: this.o.protocol },
      log,
      recovered,
      transport: this.termTransport(term),
      clock: systemClock,
      timers: term.timers,
      crashPoints: this.o.crashPoints,
      logger: this.o.logger,
      metrics: this.o.metrics,
      // A refused or failed etcd write: this term is over (fail-stop for the term, not the process).
      onFatal: () => this.leadership.resign('an etcd log write was refused or failed'),
      checkpointEveryRecords: this.o.checkpointEveryRecords ?? HA_DEFAULTS.checkpointEveryRecords,
    });
    term.runtime = runtime;
    await runtime.start();
    this.o.logger.info({ step: 'ha.recovered', records: recovered.entries.length, checkpoint: recovered.checkpoint?.lsn ?? 0 }, 'took over: the log in etcd is recovered');
  }

  /**
   * The transport of one term: once the term is over, nothing more is sent. The term is checked as
   * each request goes out (`mayLeave`), not only when a message is handed over: a message queued
   * behind a busy lane, or retried, may leave after the lease ran out (the simulator's outside-term
   * check, test/sim/ha.ts, found this in its own model of the batcher).
   */
  private termTransport(term: Term): Transport {
    const inTerm = (): boolean => !term.ended && this.leadership.isLeader();
    return createHttpTransport({
      http: this.o.http,
      prepareTimeoutMs: this.o.prepareTimeoutMs,
      batching: this.o.batching,
      batch: batchLimitsFor(this.o.core),
      metrics: this.o.metrics,
      logger: this.o.logger,
      mayLeave: inTerm,
    });
  }

  private follow(reason: string): void {
    this.setLeaderGauge(false);
    this.o.logger.warn({ step: 'ha.deposed', reason }, `${this.o.name} no longer leads: ${reason}`);
    void this.endTerm(reason);
  }

  /**
   * Ends the current term. Deposed, the log is abandoned first: nothing more of this term reaches
   * etcd (etcd would refuse it anyway). Stopping gracefully, the runtime stops first, while its
   * writes are still fenced by a valid leadership.
   */
  private async endTerm(reason: string, o: { graceful?: boolean } = {}): Promise<void> {
    const term = this.term;
    if (term === undefined) return;
    this.term = undefined;
    if (o.graceful === true) {
      await term.ready;
      await term.runtime?.stop().catch((error: unknown) => this.o.logger.error({ step: 'ha.stop-failed', err: error }));
      term.ended = true;
      await term.log?.close().catch(() => undefined);
      return;
    }
    term.ended = true;
    term.log?.abandon(`this coordinator stopped leading: ${reason}`);
    term.timers.clearAll();
    await term.runtime?.stop().catch((error: unknown) => this.o.logger.error({ step: 'ha.stop-failed', err: error }));
  }

  // ---- what a follower answers ------------------------------------------------------------

  private async notLeader(): Promise<Answer> {
    const leader = await this.leadership.leader().catch(() => undefined);
    const who = leader === undefined || leader.name === this.o.name ? 'no leader is elected yet; retry shortly' : `the leader is ${leader.name} at ${leader.url}`;
    const body = new TwopcError('not_leader', `This coordinator (${this.o.name}) does not lead group ${this.o.ha.group}: ${who}.`).toBody();
    return { status: 503, body: leader !== undefined && leader.name !== this.o.name ? { error: { ...body.error, leader: leader.url } } : body };
  }

  /**
   * The decisions in the group's log, read at most once per followerReadMs however many inquiries
   * ask meanwhile; undefined when the read failed (every answer is then "pending").
   */
  private async decidedInEtcd(): Promise<Map<string, string> | undefined> {
    const now = performance.now();
    if (this.followerRead === undefined || now - this.followerRead.at > HA_DEFAULTS.followerReadMs) {
      this.followerRead = { at: now, decided: this.readDecisions() };
      // A failed read is not kept: the next inquiry reads again.
      this.followerRead.decided.catch(() => (this.followerRead = undefined));
    }
    try {
      return await this.followerRead.decided;
    } catch {
      return undefined;
    }
  }

  private async readDecisions(): Promise<Map<string, string>> {
    const { checkpoint, entries } = await readEtcdLog(this.client, this.prefix);
    const decided = new Map<string, string>();
    if (checkpoint !== undefined) for (const d of decodeSnapshot(checkpoint.data).decided) decided.set(d.txId, d.outcome);
    for (const e of entries) {
      const r = coordinatorCodec.decode(e.type, e.payload);
      if (r.type === 'DECISION') decided.set(r.txId, r.outcome);
    }
    return decided;
  }

  private setLeaderGauge(leading: boolean): void {
    this.o.metrics.set('coordinator_leader', '1 while this coordinator leads its HA group.', leading ? 1 : 0);
  }
}

/** A decision in the group's log is final, whoever wrote it; without one the answer is "pending". */
function outcomeIn(decided: Map<string, string> | undefined, txId: string): string {
  return decided?.get(txId) ?? 'pending';
}
