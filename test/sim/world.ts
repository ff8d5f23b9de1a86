/**
 * One simulated world, run from one seed: a coordinator, N participants and a
 * bank client on a virtual clock, with the seed driving the network, the
 * disks, the clocks and the crashes. The real cores run unmodified (unless a
 * planted bug wraps them).
 *
 * A run has four phases:
 *   setup   no faults; an opening transaction funds every account
 *   faults  transfers are submitted while the seed's faults are injected; a
 *           seeded share run interactively (./client.ts), and on some seeds an
 *           operator settles an in-doubt branch by hand while the coordinator
 *           is down or cut off from its participant
 *   heal    partitions mend, crashed nodes restart, no new faults; everything
 *           must settle within `healDeadlineMs` of simulated time
 *   cycle   every node loses power at once and restarts; everything settles
 *           again and each participant's data must be exactly what it was
 * After every step the invariants are checked (./checks.ts); the run stops at
 * the first violation, keeping the last `traceKeep` steps for the report.
 */
import { accounts, openingTransaction, transferTransaction, type Account } from '../../scenarios/workloads/bank.ts';
import { createPrng, type Prng } from '../../scenarios/prng.ts';
import type { BranchInput } from '../../coordinator/core/index.ts';
import { EffectDriver, type DriverHooks } from '../../shared/driver.ts';
import { plant, type Planted } from './bugs.ts';
import { checkBank, checkLocks, checkOutcomes, checkTx, type TlaCounters, type Transfer } from './checks.ts';
import { Client, FLOWS, type Flow, type Plan } from './client.ts';
import { CoordinatorNode, SIM_URL, type CoordinatorNodeOptions } from './coordinator-node.ts';
import type { ProtocolVariant } from '../../shared/types.ts';
import type { DiskKind } from './disk.ts';
import { Ghost, type Violation } from './ghost.ts';
import { SimEtcd } from './etcd.ts';
import { HA_TIMING, HaGroup, HaMember, type HaHost } from './ha.ts';
import { leaderKey } from '../../coordinator/adapters/etcd-leadership.ts';
import { describeMessage, type Message, type NodeId, type RequestPayload, type SimEvent } from './messages.ts';
import { Network } from './network.ts';
import { settle, type CallResult, type CrashPlan, type Endpoint } from './node.ts';
import { ParticipantNode } from './participant-node.ts';
import {
  DEFAULT_OPTIONS,
  drawBatchProfile,
  drawHaProfile,
  drawProfile,
  ETCD_CUT_MS_MAX,
  ETCD_CUT_MS_MIN,
  HA_PLANTED_BUGS,
  NO_FAULTS,
  PAUSE_TTLS_MAX,
  PAUSE_TTLS_MIN,
  QUORUM_LOSS_MS_MAX,
  QUORUM_LOSS_MS_MIN,
  type HaProfile,
  TIMING,
  type BatchProfile,
  type FaultProfile,
  type PlantedBug,
  type SimOptions,
} from './profile.ts';
import { EventQueue } from './queue.ts';
import { Stats } from './stats.ts';
import { Trace } from './trace.ts';

/** Node clocks start here (a plausible wall-clock epoch in ms), each off by its skew. */
const EPOCH_MS = 1_700_000_000_000;
/** The largest transfer; accounts open with `openingBalance`, so some transfers must vote no. */
const TRANSFER_AMOUNT_MAX = 60;
/** A restart follows a crash after this long. */
const DOWNTIME_MIN_MS = 20;
const DOWNTIME_MAX_MS = 2_000;
/**
 * A participant crashed right after PREPARED is durable (its vote lost) is back within this, less
 * than the prepare timeout, so it is usually in doubt again when the coordinator's abort arrives.
 */
const AFTER_PREPARED_DOWNTIME_MAX_MS = 500;
/** A crash aimed at a commit still owed comes within this (see `commitOwed`). */
const OWED_COMMIT_CRASH_DELAY_MS_MAX = 300;
/**
 * A coordinator crashed while it owes a commit is back within this: before the owed participant
 * (down or cut off) asks it, so a forgotten commit is answered by the presumption, not by a peer.
 */
const OWED_COMMIT_DOWNTIME_MS_MAX = 100;
const PARTITION_MIN_MS = 100;
const PARTITION_MAX_MS = 3_000;
/** The opening transaction must commit within this much simulated time (there are no faults yet). */
const SETUP_DEADLINE_MS = 10_000;
/** Seeds that run the file WAL on a simulated file system rather than the in-memory log ('mixed'). */
const FILE_DISK_P = 0.3;
/**
 * Presumed abort is the default, so half the seeds run it ('mixed'); presumed commit runs on a
 * third, since its hazards need a chain of faults to show. It was once left out: participants
 * wrote ABORTED lazily, so one could lose an acknowledged abort, ask after the coordinator had
 * forgotten the transaction, and be told "committed" (seed 239 with --protocol presumed-commit,
 * against the code before a487e29). Its abort records are now forced. The same loss came back
 * through recovery, which dropped a PREPARED record's `abortForced` (the planted bug
 * drop-abort-forced-on-recovery); the mix was then widened until the checks caught it: a short
 * coordinator memory, crashes right after PREPARED and right after a reply resting on a lazy write.
 */
const PROTOCOL_MIX: readonly ProtocolVariant[] = ['presumed-abort', 'presumed-abort', 'presumed-abort', 'presumed-nothing', 'presumed-commit', 'presumed-commit'];
/**
 * How much the coordinator remembers of finished transactions (like `finishedHistoryMax`), drawn
 * per seed: nothing at all on four in seven, a little on some, everything on the rest. A real
 * coordinator forgets its oldest after that many more finish, and all of them at a restart; the
 * protocol must not lean on the memory. Forgetting soon matters most under presumed commit: an
 * acknowledged abort is forgotten, and an inquiry about it is answered "committed".
 */
const FINISHED_HISTORY_MIX: readonly (number | undefined)[] = [0, 0, 0, 0, 1, 4, undefined];
/** Transfers run through the interactive flow (begin, enlist, then commit, abort or a timeout) rather than one-shot. */
const INTERACTIVE_P = 0.3;
/** How interactive transfers end, drawn evenly: commits twice as often as the client aborts or lets one time out. */
const INTERACTIVE_FLOWS: readonly Flow[] = ['commit', 'commit', 'client-abort', 'timeout'];
/** Interactive transfers that resend one enlist after it succeeded, as a client retrying would. */
const DUPLICATE_ENLIST_P = 0.3;
/** Seeds with an operator, who settles an in-doubt transaction by hand while the coordinator cannot answer. */
const OPERATOR_SEED_P = 0.3;
/** Heuristic decisions one operator makes at most, and how often (and how many times) it looks for a chance. */
const HEURISTICS_MAX = 2;
const OPERATOR_POLL_MIN_MS = 20;
const OPERATOR_POLL_MAX_MS = 150;
const OPERATOR_POLLS_MAX = 400;
/** Chance the operator acts on a chance it sees (rather than at the first moment it can). */
const OPERATOR_ACT_P = 0.5;

/** Seeds that run an HA group when `ha` is 'mixed'. */
const HA_SEED_P = 0.2;
/** Of the crashes and pauses aimed at the group, the share aimed at whoever leads at the time. */
const AT_LEADER_P = 0.7;
/** The HA group's etcd prefix (coordinator/ha.ts: `twopc/<group>/`). */
const HA_PREFIX = 'twopc/sim/';
/** In an HA run, how often (in steps) the heal and the power cycle look whether everything has settled. */
const HA_QUIET_EVERY_STEPS = 50;

/** Batching seeds whose transfers partly arrive in bursts, how many bursts at most, and the share of transfers in them. */
const BURST_SEED_P = 0.5;
const BURSTS_MAX = 3;
const BURST_SHARE = 0.5;

export type Phase = 'setup' | 'faults' | 'heal' | 'cycle';

export interface SeedResult {
  readonly seed: number;
  readonly bug?: PlantedBug;
  readonly violations: readonly Violation[];
  /** The last steps before the end (or the violation), oldest first. */
  readonly trace: readonly string[];
  /** sha256 of every trace line: equal for two runs of one seed. */
  readonly traceHash: string;
  /** Transfers the client submitted. */
  readonly transactions: number;
  /** The client's view of the transfers. */
  readonly committed: number;
  readonly aborted: number;
  readonly unknown: number;
  /** How the unknown ones ended, as the participants applied them. */
  readonly unknownCommitted: number;
  readonly messages: number;
  readonly faults: Readonly<Record<string, number>>;
  /** Crashes (and restarts) during the faults and the heal; the final power cycle is not counted. */
  readonly crashes: number;
  readonly restarts: number;
  readonly tlaSteps: number;
  readonly tlaActions: number;
  readonly steps: number;
  readonly simulatedMs: number;
  readonly profile: FaultProfile;
  readonly batchProfile: BatchProfile;
  /** Batch requests the coordinator sent, the messages they carried, and those that carried more than one. */
  readonly batches: number;
  readonly batchedMessages: number;
  readonly sharedBatches: number;
  readonly checkpointEveryRecords: number;
  readonly disk: DiskKind;
  readonly protocol: ProtocolVariant;
  /** Transfers by how the client ran them. */
  readonly flows: Readonly<Record<Flow, number>>;
  /** Heuristic decisions an operator made, and transactions the coordinator finished reporting heuristic-mixed. */
  readonly heuristics: number;
  readonly heuristicMixed: number;
  /** The driver at work: effects it ran past a laned apply in flight; fsyncs and applies that took simulated time. */
  readonly overtakes: number;
  readonly slowSyncs: number;
  readonly slowApplies: number;
  /** The HA group, when the seed ran one: its faults, terms won, terms a refused or failed write ended, and log writes etcd refused (fenced). */
  readonly ha?: { readonly profile: HaProfile; readonly terms: number; readonly resigned: number; readonly fencedWrites: number };
}

export class World implements HaHost {
  readonly ghost = new Ghost();
  readonly stats = new Stats();
  readonly profile: FaultProfile;
  readonly bug: PlantedBug | undefined;
  readonly rng: Prng;
  readonly checkpointEveryRecords: number;
  /** The coordinator's memory of finished transactions, when this seed shortens it. */
  readonly finishedKeep: number | undefined;
  readonly disk: DiskKind;
  readonly protocol: ProtocolVariant;
  /** Whether the coordinator batches its messages in this seed, and the network's batch faults. */
  readonly batchProfile: BatchProfile;
  private readonly options: SimOptions;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly net: Network;
  private readonly trace: Trace;
  private readonly tla: TlaCounters = { steps: 0, actions: 0 };
  private readonly faultRng: Prng;
  private readonly workRng: Prng;
  private readonly clientRng: Prng;
  private readonly operatorRng: Prng;
  private readonly lossRng: Prng;
  private readonly burstRng: Prng;
  private readonly operator: boolean;
  private readonly planted: Planted;
  private plans: Plan[] = [];
  private heuristics = 0;
  /** The single coordinator, or (in an HA run) undefined: the group's members stand in for it. */
  private readonly coordinator: CoordinatorNode | undefined;
  private readonly ha: HaGroup | undefined;
  private readonly haProfile: HaProfile | undefined;
  private readonly haRng: Prng;
  private readonly etcdCutUntil = new Map<NodeId, number>();
  private readonly participants: ParticipantNode[] = [];
  private readonly client: Client;
  private readonly endpoints = new Map<NodeId, Endpoint>();
  private readonly skewMs = new Map<NodeId, number>();
  private readonly partitions = new Map<number, readonly (readonly [NodeId, NodeId])[]>();
  private readonly accounts: Account[];
  private transfers: Transfer[] = [];
  private openingBranches: BranchInput[] = [];
  private phase: Phase = 'setup';
  private healAt = Number.POSITIVE_INFINITY;
  private cycleAt = Number.POSITIVE_INFINITY;
  private callSeq = 0;
  private tokenSeq = 0;
  private partitionSeq = 0;
  private notes: string[] = [];
  /** What the event being handled asked to run at the end of its turn (`endOfTurn`). */
  private readonly turnEnds: (() => void)[] = [];

  constructor(
    readonly seed: number,
    options: Partial<SimOptions> = {},
  ) {
    this.options = { ...DEFAULT_OPTIONS, ...options };
    this.bug = this.options.bug;
    // Separate streams per concern, all from the one seed: a change in how often one
    // concern draws (say, a new kind of fault) leaves the others' choices alone.
    const root = createPrng(seed);
    const sub = (): Prng => createPrng(root.int(0, 0xffff_ffff));
    const profileRng = sub();
    this.faultRng = sub();
    this.workRng = sub();
    this.rng = sub();
    const netRng = sub();
    const diskRng = sub();
    // Drawn after the others, so the interactive flows and the operator leave their choices alone.
    this.clientRng = sub();
    this.operatorRng = sub();
    // Likewise for fault kinds added later: their own stream, drawn last.
    const laterProfileRng = sub();
    this.lossRng = sub();
    // Batching and its faults came later still: their own streams.
    this.batchProfile = drawBatchProfile(sub(), this.options.faults);
    const batchNetRng = sub();
    this.burstRng = sub();
    // The HA group came last: its own streams (a seed that runs no group draws from them all the same).
    const haSeedRng = sub();
    this.haRng = sub();
    const etcdRng = sub();
    const haOn = this.options.ha === true || (this.bug !== undefined && (HA_PLANTED_BUGS as readonly string[]).includes(this.bug)) || (this.options.ha === 'mixed' && haSeedRng.next() < HA_SEED_P);
    this.haProfile = haOn ? drawHaProfile(this.haRng, this.options.faults) : undefined;
    this.operator = this.options.faults && this.operatorRng.next() < OPERATOR_SEED_P;
    this.profile = this.options.faults ? drawProfile(profileRng, laterProfileRng) : NO_FAULTS;
    this.checkpointEveryRecords = profileRng.next() < 0.5 ? 0 : profileRng.int(2, 40);
    this.finishedKeep = this.options.faults ? laterProfileRng.pick(FINISHED_HISTORY_MIX) : undefined;
    const fileDisk = profileRng.next() < FILE_DISK_P;
    this.disk = this.options.disk === 'mixed' ? (fileDisk ? 'file' : 'memory') : this.options.disk;
    const variant = profileRng.pick(PROTOCOL_MIX);
    this.protocol = this.options.protocol === 'mixed' ? variant : this.options.protocol;
    this.trace = new Trace(this.options.traceKeep);
    this.net = new Network(this.queue, netRng, this.profile, this.stats, (node) => this.endpoints.get(node) ?? { up: false, incarnation: 0 }, {
      rng: batchNetRng,
      profile: this.batchProfile,
    });

    const names = Array.from({ length: this.options.participants }, (_, i) => `p${i + 1}`);
    const nodeOf = (url: string): NodeId => url.replace(/^sim:\/\//, '');
    const planted = plant(this.bug);
    this.planted = planted;
    const coordinatorOptions = (name: string): CoordinatorNodeOptions => ({
      config: {
        name,
        selfUrl: SIM_URL(name),
        participants: Object.fromEntries(names.map((n) => [n, SIM_URL(n)])),
        protocol: this.protocol,
        prepareTimeoutMs: TIMING.prepareTimeoutMs,
        replyWaitMs: TIMING.replyWaitMs,
        resendBaseMs: TIMING.resendBaseMs,
        resendMaxMs: TIMING.resendMaxMs,
      },
      nodeOf,
      ...(planted.coordinatorStep ? { step: planted.coordinatorStep } : {}),
      ...(planted.coordinatorSnapshot ? { snapshot: planted.coordinatorSnapshot } : {}),
      ...(this.finishedKeep === undefined ? {} : { finishedKeep: this.finishedKeep }),
      ...(this.batchProfile.batching && { batchRequestsAwaitingMax: this.batchProfile.requestsAwaitingMax, batchStreamed: this.batchProfile.streamed }),
      ...(planted.matchReplies ? { matchReplies: planted.matchReplies } : {}),
      ...(planted.matchLine ? { matchLine: planted.matchLine } : {}),
    });
    if (this.haProfile === undefined) {
      this.ha = undefined;
      this.coordinator = new CoordinatorNode(this, 'coordinator', coordinatorOptions('coordinator'), () => diskRng.next(), this.disk);
      this.endpoints.set(this.coordinator.id, this.coordinator);
    } else {
      this.coordinator = undefined;
      this.ha = this.newGroup(this.haProfile.members, coordinatorOptions, () => diskRng.next(), etcdRng);
      for (const m of this.ha.members) this.endpoints.set(m.id, m);
    }
    for (const name of names) {
      const p = new ParticipantNode(
        this,
        name,
        {
          config: {
            selfUrl: SIM_URL(name),
            lockWaitMs: TIMING.lockWaitMs,
            decisionWaitMs: TIMING.decisionWaitMs,
            inquiryBackoffBaseMs: TIMING.inquiryBackoffBaseMs,
            inquiryBackoffMaxMs: TIMING.inquiryBackoffMaxMs,
            preparedPeerReaskMs: TIMING.preparedPeerReaskMs,
          },
          nodeOf,
          ...(planted.participantStep ? { step: planted.participantStep } : {}),
          ...(this.ha && { coordinators: this.ha.members.map((m) => m.id) }),
        },
        () => diskRng.next(),
        this.disk,
      );
      this.participants.push(p);
      this.endpoints.set(name, p);
    }
    this.client = new Client(this, this.ghost, () => this.coordinatorTarget(), (index) => this.onClientResult(index));
    this.endpoints.set(this.client.id, this.client);
    this.accounts = accounts({ participants: names, accountsPerParticipant: this.options.accountsPerParticipant, openingBalance: this.options.openingBalance });
    for (const id of this.serverIds()) {
      const skew = this.profile.clockSkewMsMax > 0 ? this.faultRng.int(-this.profile.clockSkewMsMax, this.profile.clockSkewMsMax) : 0;
      if (skew !== 0) this.stats.fault('clock-skew');
      this.skewMs.set(id, skew);
    }
  }

  /** The HA group: `members` coordinators on one simulated etcd. */
  private newGroup(members: number, options: (name: string) => CoordinatorNodeOptions, random: () => number, etcdRng: Prng): HaGroup {
    const etcd = new SimEtcd(
      {
        now: () => this.queue.now,
        schedule: (delayMs, node, what, run) => this.queue.after(delayMs, { kind: 'nodeEvent', ...(node !== undefined && { node }), what, run }),
        lost: (node) => this.etcdLost(node),
        rng: etcdRng,
        violation: (kind, message, txId) => this.ghost.violation(kind, message, txId),
        decided: (txId, outcome, writer) => this.ghost.tmDecided(txId, outcome, `${writer}'s ${outcome} DECISION is in etcd`),
      },
      { prefix: HA_PREFIX, leader: leaderKey(HA_PREFIX) },
    );
    const bugs = { unfenced: this.planted.unfenced === true, blind: this.planted.blindLeader === true };
    const ids = Array.from({ length: members }, (_, i) => `c${i + 1}`);
    return new HaGroup(
      etcd,
      ids.map((id) => new HaMember(this, id, etcd, HA_PREFIX, options(id), random, bugs)),
      HA_PREFIX,
    );
  }

  /** Whether a message between `node` and etcd is lost now: its client is cut off, or the seed drops it. */
  private etcdLost(node: NodeId): boolean {
    if (!this.faultsOn) return false;
    if ((this.etcdCutUntil.get(node) ?? 0) > this.queue.now) return true;
    const p = this.haProfile?.etcdLossP ?? 0;
    if (p > 0 && this.haRng.next() < p) {
      this.stats.fault('etcd-loss');
      return true;
    }
    return false;
  }

  /** Where the client's requests go: the coordinator, or whoever holds the group's leader key (a load balancer's view). */
  private coordinatorTarget(): NodeId {
    if (this.coordinator) return this.coordinator.id;
    const ha = this.ha as HaGroup;
    return ha.keyHolder() ?? (ha.members[0] as HaMember).id;
  }

  // ---- Host ---------------------------------------------------------------------------

  simNow(): number {
    return this.queue.now;
  }

  nodeEvent(delayMs: number, node: NodeId, what: string, run: () => void): void {
    this.queue.after(delayMs, { kind: 'nodeEvent', node, what, run });
  }

  pauseMidWrite(node: NodeId): void {
    const p = this.haProfile?.pauseMidWriteP ?? 0;
    if (!this.faultsOn || p === 0 || this.haRng.next() >= p) return;
    this.stats.fault('pause-mid-write');
    this.pause(node);
  }

  /** `node` stops past its lease: its events wait until it wakes. */
  private pause(node: NodeId): void {
    const m = this.ha?.member(node);
    if (!m?.up) return;
    const ms = this.haRng.int(Math.round(HA_TIMING.leaseMs * PAUSE_TTLS_MIN), Math.round(HA_TIMING.leaseMs * PAUSE_TTLS_MAX));
    m.pause(ms);
    this.note(`PAUSE ${node} for ${ms} ms`);
  }

  get faultsOn(): boolean {
    return this.phase === 'faults' && this.options.faults;
  }

  nodeNow(node: NodeId): number {
    return EPOCH_MS + this.queue.now + (this.skewMs.get(node) ?? 0);
  }

  schedule(delayMs: number, event: SimEvent): void {
    this.queue.after(delayMs, event);
  }

  timerDelayMs(ms: number): number {
    if (this.faultsOn && this.faultRng.next() < this.profile.timerLateP) {
      this.stats.fault('timer-late');
      return ms + this.faultRng.int(1, Math.floor(ms / 2) + 1);
    }
    return ms;
  }

  newToken(): number {
    return ++this.tokenSeq;
  }

  request(from: Endpoint, to: NodeId, payload: RequestPayload, timeoutMs: number, context: unknown): void {
    const callId = ++this.callSeq;
    from.calls.set(callId, context);
    if (this.ha && (payload.type === 'prepare' || payload.type === 'commit' || payload.type === 'abort' || payload.type === 'batch')) {
      const outside = this.ha.outsideTerm(from.id);
      if (outside !== undefined) this.ghost.violation('outside-term', outside);
    }
    this.net.send({ kind: 'request', callId, from: from.id, to, payload });
    this.queue.after(timeoutMs, { kind: 'callTimeout', node: from.id, callId });
  }

  expireAfter(from: Endpoint, timeoutMs: number, context: unknown): number {
    const callId = ++this.callSeq;
    from.calls.set(callId, context);
    this.queue.after(timeoutMs, { kind: 'callTimeout', node: from.id, callId });
    return callId;
  }

  respond(from: NodeId, to: NodeId, callId: number, status: number, body: unknown, batch = false, stream?: 'line' | 'end'): void {
    this.net.send({ kind: 'response', callId, from, to, status, body, ...(batch && { batch: true as const }), ...(stream && { stream }) });
  }

  crashDraw(node: NodeId, point: string): CrashPlan | undefined {
    if (!this.faultsOn) return undefined;
    if (point === 'participant.after-prepare-logged' && this.lossRng.next() < this.profile.afterPreparedCrashP) {
      this.stats.fault('crash-after-prepared');
      return { reason: `at ${point} (targeted)`, downtimeMsMax: AFTER_PREPARED_DOWNTIME_MAX_MS };
    }
    if (point === 'participant.before-commit-logged' && this.lossRng.next() < this.profile.beforeCommitCrashP) {
      this.stats.fault('crash-before-commit-logged');
      return { reason: `at ${point} (targeted)`, downtimeMsMax: AFTER_PREPARED_DOWNTIME_MAX_MS };
    }
    if (point === 'coordinator.after-first-commit-sent' && this.lossRng.next() < this.profile.afterFirstAckCrashP) {
      this.stats.fault('crash-after-first-ack');
      return { reason: `at ${point} (targeted)`, downtimeMsMax: OWED_COMMIT_DOWNTIME_MS_MAX };
    }
    if (this.faultRng.next() >= this.profile.crashPointP) return undefined;
    this.stats.fault('crash-point');
    return { reason: `at ${point}` };
  }

  newDriver<R, E extends { kind: string }>(hooks: DriverHooks<R, E>): EffectDriver<R, E> {
    return this.planted.newDriver?.(hooks) ?? new EffectDriver(hooks);
  }

  commitOwed(node: NodeId): void {
    if (!this.faultsOn || this.lossRng.next() >= this.profile.owedCommitCrashP) return;
    this.stats.fault('crash-commit-owed');
    // Soon, or once lazy writes of the moment (an END) may have been flushed; the owed participant is usually still out of reach.
    const crashInMs = this.lossRng.int(1, OWED_COMMIT_CRASH_DELAY_MS_MAX);
    if (this.lossRng.next() < this.profile.owedCommitCheckpointP) {
      this.stats.fault('checkpoint-commit-owed');
      // Past any fsync the checkpoint waits behind, so it is on disk when the node dies.
      this.queue.after(Math.max(0, crashInMs - TIMING.fsyncMaxMs - 1), { kind: 'checkpoint', node });
    }
    this.queue.after(crashInMs, { kind: 'crash', node, downtimeMsMax: OWED_COMMIT_DOWNTIME_MS_MAX });
  }

  crashAfterLazyReply(node: NodeId): boolean {
    if (!this.faultsOn || node === this.coordinator?.id || this.ha?.member(node) || this.lossRng.next() >= this.profile.lazyLossP) return false;
    this.stats.fault('crash-after-lazy-reply');
    this.crash(node, 'after a reply, with writes not yet durable');
    return true;
  }

  failStop(node: NodeId, error: unknown): void {
    const member = this.ha?.member(node);
    // An HA member's refused or failed etcd write ends its term, not its process (coordinator/ha.ts).
    if (member) return member.resign(`an etcd log write was refused or failed: ${error instanceof Error ? error.message : String(error)}`);
    this.crash(node, `fail-stop: ${error instanceof Error ? error.message : String(error)}`);
  }

  note(text: string): void {
    this.notes.push(text);
  }

  endOfTurn(fn: () => void): void {
    this.turnEnds.push(fn);
  }

  /** The end of a turn: what its event asked to run then, in the order asked (what is asked meanwhile waits for the next). */
  private endTurn(): void {
    for (const fn of this.turnEnds.splice(0)) fn();
  }

  // ---- the run ------------------------------------------------------------------------

  async run(): Promise<SeedResult> {
    for (const node of this.servers()) await this.boot(node);
    this.trace.add(
      `${this.stamp()} boot ${this.serverIds().join(' ')} ${this.protocol} disk=${this.disk} checkpointEvery=${this.checkpointEveryRecords}${this.finishedKeep === undefined ? '' : ` history=${this.finishedKeep}`} profile=${JSON.stringify(this.profile)} batching=${JSON.stringify(this.batchProfile)}`,
    );
    const opening = openingTransaction({
      participants: this.participants.map((p) => p.id),
      accountsPerParticipant: this.options.accountsPerParticipant,
      openingBalance: this.options.openingBalance,
    });
    this.openingBranches = opening.branches as BranchInput[];
    this.queue.after(1, { kind: 'submit', index: -1 });
    await this.loop();
    if (this.phase === 'setup' && this.ghost.violations.length === 0) {
      this.ghost.violation('setup', `the opening transaction got no answer within ${SETUP_DEADLINE_MS} ms, without faults`);
    }
    if (this.ghost.violations.length === 0) await this.finish();
    return this.result();
  }

  private async loop(): Promise<void> {
    for (;;) {
      // A boot or a restart outside the loop (the run's start, the heal) ends its turn here.
      this.endTurn();
      if (this.ghost.violations.length > 0) return;
      if (this.stats.steps >= this.options.stepsMax) {
        this.ghost.violation('bound', `the run exceeded ${this.options.stepsMax} steps`);
        return;
      }
      const at = this.queue.peekAt();
      if (at === undefined) return;
      const deadline = this.phase === 'setup' ? SETUP_DEADLINE_MS : this.phase === 'cycle' ? this.cycleAt : this.healAt + this.options.healDeadlineMs;
      if (this.phase !== 'faults' && at > deadline) return;
      if (this.quiet()) return;
      const item = this.queue.pop();
      if (!item) return;
      const paused = this.pausedTarget(item.event);
      if (paused) {
        this.queue.at(paused.pausedUntil, item.event);
        continue;
      }
      this.ghost.now = item.at;
      this.notes = [];
      this.stats.steps++;
      const what = await this.handle(item.event);
      this.endTurn();
      this.trace.add(`${this.stamp()} ${what}${this.notes.length > 0 ? ` | ${this.notes.join(' ')}` : ''}`);
      this.check();
    }
  }

  private async handle(e: SimEvent): Promise<string> {
    switch (e.kind) {
      case 'deliver':
        return this.deliver(e.msg);
      case 'timer': {
        const fired = (await this.server(e.node)?.fireTimer(e.id, e.token)) ?? false;
        return `timer ${e.node} ${e.id}${fired ? '' : ' (stale)'}`;
      }
      case 'callTimeout': {
        const ep = this.endpoints.get(e.node);
        const context = ep?.up ? ep.calls.get(e.callId) : undefined;
        if (!ep || context === undefined) return `timeout #${e.callId} (answered)`;
        ep.calls.delete(e.callId);
        await ep.onCallResult(context, { kind: 'error', error: 'timeout' });
        return `timeout #${e.callId} at ${e.node}`;
      }
      case 'resource': {
        const p = this.participants.find((x) => x.id === e.node);
        await p?.resourceAnswered(e.incarnation, e.event);
        return `resource ${e.node} ${e.event.type === 'resourcePrepared' ? `${e.event.txId} ${e.event.vote}` : e.event.type}`;
      }
      case 'flush':
        await this.server(e.node)?.flush(e.incarnation);
        return `flush ${e.node}`;
      case 'io': {
        const resumed = (await this.server(e.node)?.ioDone(e.incarnation, e.done)) ?? false;
        return `${e.what} ${e.node}${resumed ? '' : ' (dead)'}`;
      }
      case 'checkpoint': {
        const queued = (await this.server(e.node)?.checkpointNow()) ?? false;
        return `checkpoint ${e.node}${queued ? '' : ' (nothing new)'}`;
      }
      case 'crash':
        if (this.phase !== 'faults' || !this.server(e.node)?.up) return `crash ${e.node} (skipped)`;
        this.crash(e.node, e.downtimeMsMax === undefined ? 'scheduled' : 'scheduled (targeted)', e.downtimeMsMax);
        return `crash ${e.node}`;
      case 'restart':
        await this.restart(e.node);
        return `restart ${e.node}`;
      case 'partition':
        if (this.phase !== 'faults') return `partition ${e.id} (skipped)`;
        for (const [a, b] of e.links) this.net.cutLink(a, b);
        this.partitions.set(e.id, e.links);
        this.queue.after(this.faultRng.int(PARTITION_MIN_MS, PARTITION_MAX_MS), { kind: 'unpartition', id: e.id });
        return `partition ${e.id}${e.oneWay ? ' one-way' : ''} ${e.links.map(([a, b]) => `${a}>${b}`).join(' ')}`;
      case 'unpartition': {
        const links = this.partitions.get(e.id);
        if (!links) return `unpartition ${e.id} (healed)`;
        for (const [a, b] of links) this.net.mendLink(a, b);
        this.partitions.delete(e.id);
        return `unpartition ${e.id}`;
      }
      case 'submit': {
        const branches = e.index < 0 ? this.openingBranches : this.transfers[e.index]?.branches;
        if (!branches) return `submit ${e.index} (none)`;
        // The opening transaction waits for every node to be up, as a harness waits for readiness.
        if (e.index < 0 && (this.servers().some((n) => n.recovering) || (this.ha !== undefined && this.ha.ready() === undefined))) {
          this.queue.after(1, e);
          return 'submit #-1 (waits for recovery)';
        }
        const plan = this.plans[e.index] ?? { flow: 'whole', duplicateEnlist: -1 };
        this.client.submit(e.index, branches, plan);
        const how = plan.flow === 'whole' ? '' : ` ${plan.flow}${plan.duplicateEnlist >= 0 ? ` enlist#${plan.duplicateEnlist}x2` : ''}`;
        return `submit #${e.index}${how} ${branches.map((b) => `${b.participant}:${JSON.stringify(b.ops)}`).join(' ')}`;
      }
      case 'clientWake':
        this.client.wake(e.index);
        return `client wakes #${e.index}`;
      case 'heuristic':
        return this.operatorLooks(e.attempt);
      case 'heal':
        await this.heal();
        return 'heal';
      case 'nodeEvent':
        e.run();
        await settle();
        return `${e.what}${e.node === undefined ? '' : ` ${e.node}`}`;
    }
  }

  /** The HA member an event belongs to, when it is paused now: the event waits until it wakes. */
  private pausedTarget(e: SimEvent): HaMember | undefined {
    if (!this.ha) return undefined;
    const node = e.kind === 'deliver' ? e.msg.to : 'node' in e ? e.node : undefined;
    const m = node === undefined ? undefined : this.ha.member(node);
    return m?.up && m.pausedUntil > this.queue.now ? m : undefined;
  }

  /** In an HA run, whether everything has settled after the faults (the leases would keep the queue busy for ever). */
  private quiet(): boolean {
    if (!this.ha || (this.phase !== 'heal' && this.phase !== 'cycle') || this.stats.steps % HA_QUIET_EVERY_STEPS !== 0) return false;
    if (this.servers().some((n) => !n.up) || this.ha.members.some((m) => m.pausedUntil > this.queue.now) || this.client.outstanding > 0) return false;
    const leader = this.ha.ready();
    return leader !== undefined && leader.runtime.state.txs.size === 0 && this.participants.every((p) => p.state.txs.size === 0);
  }

  private async deliver(msg: Message): Promise<string> {
    const what = `deliver ${describeMessage(msg)}`;
    const arrival = this.net.arrive(msg);
    if (arrival !== 'taken') return `${what} (${arrival})`;
    const ep = this.endpoints.get(msg.to);
    if (!ep) return `${what} (nobody)`;
    if (msg.kind === 'request') {
      await ep.onRequest(msg);
      return what;
    }
    const context = ep.calls.get(msg.callId);
    if (context === undefined) return `${what} (stale)`;
    if (msg.kind === 'response' && msg.stream === 'line') {
      // A line leaves its call open: more lines, the end, a reset or the call's timeout follow.
      await ep.onCallResult(context, { kind: 'line', line: String(msg.body) });
      return what;
    }
    ep.calls.delete(msg.callId);
    const result: CallResult =
      msg.kind === 'failure' ? { kind: 'error', error: msg.error } : msg.stream === 'end' ? { kind: 'end' } : { kind: 'answer', status: msg.status, body: msg.body };
    await ep.onCallResult(context, result);
    return what;
  }

  private onClientResult(index: number): void {
    if (index !== -1 || this.phase !== 'setup') return;
    const r = this.client.results.get(-1);
    if (r?.result !== 'ok') {
      this.ghost.violation('setup', `the opening transaction did not commit without faults: ${r?.result ?? '?'} ${r?.outcome ?? ''}`);
      return;
    }
    this.startFaults();
  }

  private startFaults(): void {
    this.phase = 'faults';
    this.net.faultsOn = this.options.faults;
    this.transfers = this.drawTransfers();
    const { submitWindowMs, faultPhaseMs } = this.options;
    this.plans = this.transfers.map((t) => this.drawPlan(t));
    const bursts = this.burstTimes(submitWindowMs);
    this.transfers.forEach((_, index) => {
      const at = this.workRng.int(0, submitWindowMs);
      this.queue.after(bursts.length > 0 && this.burstRng.next() < BURST_SHARE ? this.burstRng.pick(bursts) : at, { kind: 'submit', index });
    });
    if (this.operator) this.queue.after(this.operatorRng.int(OPERATOR_POLL_MIN_MS, OPERATOR_POLL_MAX_MS), { kind: 'heuristic', attempt: 1 });
    const p = this.profile;
    const servers = this.serverIds();
    for (let i = 0; i < p.crashes; i++) this.queue.after(this.faultRng.int(0, faultPhaseMs), { kind: 'crash', node: this.faultRng.pick(servers) });
    for (let i = 0; i < p.partitions; i++) {
      // One node cut off, both ways, from some of the others.
      const alone = this.faultRng.pick(servers);
      const others = [...servers.filter((s) => s !== alone), this.client.id].filter(() => this.faultRng.next() < 0.7);
      const cutOff = others.length > 0 ? others : [this.faultRng.pick(servers.filter((s) => s !== alone))];
      const links = cutOff.flatMap((o) => [[alone, o] as const, [o, alone] as const]);
      this.queue.after(this.faultRng.int(0, faultPhaseMs), { kind: 'partition', id: ++this.partitionSeq, links, oneWay: false });
    }
    for (let i = 0; i < p.oneWayPartitions; i++) {
      const from = this.faultRng.pick([...servers, this.client.id]);
      const to = this.faultRng.pick(servers.filter((s) => s !== from));
      this.queue.after(this.faultRng.int(0, faultPhaseMs), { kind: 'partition', id: ++this.partitionSeq, links: [[from, to]], oneWay: true });
    }
    this.haFaults(faultPhaseMs);
    this.healAt = this.queue.now + faultPhaseMs;
    this.queue.at(this.healAt, { kind: 'heal' });
    if (p.partitions > 0) this.stats.fault('partition', p.partitions);
    if (p.oneWayPartitions > 0) this.stats.fault('one-way-partition', p.oneWayPartitions);
  }

  /**
   * The HA group's faults, at seeded moments of the fault phase: pauses past the lease and crashes
   * (mostly of whoever holds the leader key then), etcd without a quorum, a member cut off from etcd.
   */
  private haFaults(faultPhaseMs: number): void {
    const p = this.haProfile;
    const ha = this.ha;
    if (!p || !ha || !this.options.faults) return;
    const at = (): number => this.haRng.int(0, faultPhaseMs);
    const aim = (): NodeId => {
      const holder = ha.keyHolder();
      return holder !== undefined && this.haRng.next() < AT_LEADER_P ? holder : this.haRng.pick(ha.members).id;
    };
    const later = (what: string, run: () => void): void => this.queue.after(at(), { kind: 'nodeEvent', what, run });
    for (let i = 0; i < p.pauses; i++) {
      later('pause', () => {
        if (this.phase !== 'faults') return;
        this.stats.fault('pause');
        this.pause(aim());
      });
    }
    for (let i = 0; i < p.leaderCrashes; i++) {
      later('crash the leader', () => {
        if (this.phase !== 'faults') return;
        this.stats.fault('leader-crash');
        this.crash(aim(), 'aimed at the leader');
      });
    }
    for (let i = 0; i < p.quorumLosses; i++) {
      const ms = this.haRng.int(QUORUM_LOSS_MS_MIN, QUORUM_LOSS_MS_MAX);
      later(`etcd loses its quorum for ${ms} ms`, () => {
        if (this.phase !== 'faults') return;
        this.stats.fault('quorum-loss');
        ha.etcd.loseQuorum(ms);
      });
    }
    for (let i = 0; i < p.etcdCuts; i++) {
      const node = this.haRng.pick(ha.members).id;
      const ms = this.haRng.int(ETCD_CUT_MS_MIN, ETCD_CUT_MS_MAX);
      later(`${node} cut off from etcd for ${ms} ms`, () => {
        if (this.phase !== 'faults') return;
        this.stats.fault('etcd-cut');
        this.etcdCutUntil.set(node, this.queue.now + ms);
      });
    }
  }

  /**
   * On some batching seeds, moments at which several transfers arrive together: a participant's
   * lane is then busy while more messages come for it, and batches carry more than one message.
   */
  private burstTimes(submitWindowMs: number): number[] {
    if (!this.options.faults || !this.batchProfile.batching || this.burstRng.next() >= BURST_SEED_P) return [];
    return Array.from({ length: this.burstRng.int(1, BURSTS_MAX) }, () => this.burstRng.int(0, submitWindowMs));
  }

  private drawTransfers(): Transfer[] {
    const out: Transfer[] = [];
    for (let i = 0; i < this.options.transactions; i++) {
      const from = this.workRng.pick(this.accounts);
      const rest = this.accounts.filter((a) => a.key !== from.key);
      const to = this.workRng.pick(rest);
      const amount = this.workRng.int(1, TRANSFER_AMOUNT_MAX);
      out.push({ from, to, amount, branches: transferTransaction(from, to, amount).branches as BranchInput[] });
    }
    return out;
  }

  private drawPlan(t: Transfer): Plan {
    if (!this.options.faults || this.clientRng.next() >= INTERACTIVE_P) return { flow: 'whole', duplicateEnlist: -1 };
    const flow = this.clientRng.pick(INTERACTIVE_FLOWS);
    const duplicateEnlist = this.clientRng.next() < DUPLICATE_ENLIST_P ? this.clientRng.int(0, t.branches.length - 1) : -1;
    return { flow, duplicateEnlist };
  }

  /**
   * The operator looks for a participant holding a prepared transaction while the coordinator is
   * down or cut off from it (the only time an operator would step in), and may settle one by hand.
   */
  private async operatorLooks(attempt: number): Promise<string> {
    if (this.phase !== 'faults' || this.heuristics >= HEURISTICS_MAX) return `operator ${attempt} (done)`;
    if (attempt < OPERATOR_POLLS_MAX) this.queue.after(this.operatorRng.int(OPERATOR_POLL_MIN_MS, OPERATOR_POLL_MAX_MS), { kind: 'heuristic', attempt: attempt + 1 });
    // In an HA group, the coordinator "is up" while a member leads and has recovered.
    const c = this.coordinator?.id ?? this.ha?.ready()?.id;
    const coordinatorUp = c !== undefined && (this.coordinator?.up ?? true);
    const candidates = this.participants
      .filter((p) => p.up && (!coordinatorUp || this.net.blocked(p.id, c) || this.net.blocked(c, p.id)))
      .flatMap((p) => p.inDoubt().map((txId) => ({ p, txId })));
    if (candidates.length === 0 || this.operatorRng.next() >= OPERATOR_ACT_P) return `operator ${attempt} (${candidates.length} in doubt)`;
    const { p, txId } = this.operatorRng.pick(candidates);
    const outcome = this.operatorRng.pick(['committed', 'aborted'] as const);
    this.heuristics++;
    this.stats.fault('heuristic');
    await p.operatorHeuristic(txId, outcome);
    return `operator ${attempt}: heuristic ${outcome} for ${txId} at ${p.id}${coordinatorUp ? ' (partitioned)' : ' (coordinator down)'}`;
  }

  private async heal(): Promise<void> {
    this.phase = 'heal';
    this.net.healAll();
    this.partitions.clear();
    this.etcdCutUntil.clear();
    for (const node of this.servers()) if (!node.up) await this.restart(node.id);
  }

  crash(node: NodeId, reason: string, downtimeMsMax = DOWNTIME_MAX_MS): void {
    const n = this.server(node);
    if (!n?.up) return;
    const held = n.crash();
    if (this.phase === 'cycle') this.stats.powerCycles++;
    else this.stats.crashes++;
    // The dying process's open connections are reset; each caller hears of it (unless partitioned).
    for (const h of held) this.net.send({ kind: 'failure', callId: h.callId, from: node, to: h.from, error: 'reset' });
    this.note(`CRASH ${node} ${reason}`);
    if (this.phase === 'faults') this.queue.after(this.faultRng.int(DOWNTIME_MIN_MS, downtimeMsMax), { kind: 'restart', node });
    else if (this.phase === 'heal') this.queue.after(DOWNTIME_MIN_MS, { kind: 'restart', node });
  }

  private async restart(node: NodeId): Promise<void> {
    const n = this.server(node);
    if (!n || n.up) return;
    if (this.phase !== 'cycle') this.stats.restarts++;
    if (this.faultsOn && this.profile.clockSkewMsMax > 0 && this.faultRng.next() < 0.3) {
      // A restarted machine may come back with its clock stepped.
      this.stats.fault('clock-jump');
      this.skewMs.set(node, this.faultRng.int(-this.profile.clockSkewMsMax, this.profile.clockSkewMsMax));
    }
    await this.boot(n);
  }

  /** Starts a node on what its disk kept; a WAL that refuses to open is a violation, not a crash of the simulator. */
  private async boot(n: CoordinatorNode | ParticipantNode | HaMember): Promise<void> {
    try {
      await n.start();
    } catch (error) {
      this.ghost.violation('recovery', `${n.id} could not start from its WAL: ${error instanceof Error ? error.message : String(error)}`);
      n.crash();
    }
  }

  // ---- checks -------------------------------------------------------------------------

  private check(): void {
    for (const txId of this.ghost.dirty) {
      const g = this.ghost.txs.get(txId);
      if (g) checkTx(this.ghost, g, this.options.tlaCheck ? this.tla : undefined);
    }
    this.ghost.dirty.clear();
    for (const p of this.participants) if (p.up) checkLocks(this.ghost, p.id, p.state);
  }

  /** After the heal: everything settles; then a power cycle of every node, after which everything settles to the same data. */
  private async finish(): Promise<void> {
    if (!this.settled('after the heal')) {
      // Say also what the client was misled about, if anything: that is the harm the stuck state does.
      checkOutcomes(this.ghost);
      return;
    }
    const before = this.participants.map((p) => dataOf(p));
    this.phase = 'cycle';
    this.notes = [];
    for (const node of this.servers()) this.crash(node.id, 'power cycle');
    for (const node of this.servers()) await this.restart(node.id);
    this.trace.add(`${this.stamp()} power cycle${this.notes.length > 0 ? ` | ${this.notes.join(' ')}` : ''}`);
    this.check();
    this.cycleAt = this.queue.now + this.options.healDeadlineMs;
    await this.loop();
    if (this.ghost.violations.length > 0 || !this.settled('after the power cycle')) return;
    this.participants.forEach((p, i) => {
      const after = dataOf(p);
      if (after !== before[i]) this.ghost.violation('durability', `${p.id}'s data changed across a power cycle: ${before[i]} -> ${after}`);
    });
    checkOutcomes(this.ghost);
    checkBank(this.ghost, this.accounts, this.options.openingBalance, this.transfers, (a) => this.participants.find((x) => x.id === a.participant)?.kv.get(a.key).value);
  }

  private settled(when: string): boolean {
    const problems: string[] = [];
    for (const n of this.servers()) if (!n.up) problems.push(`${n.id} is down`);
    const coordinator = this.coordinator ?? this.ha?.ready()?.runtime;
    if (coordinator === undefined) problems.push('no member of the group leads');
    const unfinished = [...(coordinator?.state.txs.values() ?? [])].map((t) => `${t.txId}:${t.phase}`);
    if (unfinished.length > 0) problems.push(`the coordinator has unfinished ${unfinished.join(', ')}`);
    for (const p of this.participants) {
      const live = [...p.state.txs.values()].map((t) => `${t.txId}:${t.phase}`);
      if (live.length > 0) problems.push(`${p.id} still holds ${live.join(', ')}`);
    }
    if (this.client.outstanding > 0) problems.push(`the client awaits ${this.client.outstanding} answers`);
    if (problems.length === 0) return true;
    this.ghost.violation('liveness', `not settled ${this.options.healDeadlineMs} ms ${when}: ${problems.join('; ')}`);
    return false;
  }

  // ---- helpers ------------------------------------------------------------------------

  private result(): SeedResult {
    let committed = 0;
    let aborted = 0;
    let unknown = 0;
    let unknownCommitted = 0;
    for (let i = 0; i < this.transfers.length; i++) {
      const r = this.client.results.get(i);
      if (r?.result === 'ok') committed++;
      else if (r?.result === 'fail') aborted++;
      else {
        unknown++;
        const g = this.ghost.byIndex.get(i);
        if (g && g.rm.every((s) => s === 'committed')) unknownCommitted++;
      }
    }
    return {
      seed: this.seed,
      ...(this.bug ? { bug: this.bug } : {}),
      violations: this.ghost.violations,
      trace: this.trace.tail(),
      traceHash: this.trace.digest(),
      transactions: this.transfers.length,
      committed,
      aborted,
      unknown,
      unknownCommitted,
      messages: this.stats.messages,
      faults: { ...this.stats.faults },
      crashes: this.stats.crashes,
      restarts: this.stats.restarts,
      tlaSteps: this.tla.steps,
      tlaActions: this.tla.actions,
      steps: this.stats.steps,
      simulatedMs: this.queue.now,
      profile: this.profile,
      batchProfile: this.batchProfile,
      batches: this.stats.batches,
      batchedMessages: this.stats.batchedMessages,
      sharedBatches: this.stats.sharedBatches,
      checkpointEveryRecords: this.checkpointEveryRecords,
      disk: this.disk,
      protocol: this.protocol,
      flows: Object.fromEntries(FLOWS.map((f) => [f, this.transfers.filter((_, i) => (this.plans[i]?.flow ?? 'whole') === f).length])) as Record<Flow, number>,
      heuristics: this.heuristics,
      heuristicMixed: [...this.ghost.txs.values()].filter((g) => g.reportedMixed).length,
      overtakes: this.stats.overtakes,
      slowSyncs: this.stats.slowSyncs,
      slowApplies: this.stats.slowApplies,
      ...(this.ha &&
        this.haProfile && {
          ha: {
            profile: this.haProfile,
            terms: this.ha.members.reduce((n, m) => n + m.terms, 0),
            resigned: this.ha.members.reduce((n, m) => n + m.resigned, 0),
            fencedWrites: this.ha.etcd.refused,
          },
        }),
    };
  }

  private stamp(): string {
    return `t=${String(this.queue.now).padStart(6)}`;
  }

  private servers(): (CoordinatorNode | ParticipantNode | HaMember)[] {
    return [...(this.coordinator ? [this.coordinator] : (this.ha?.members ?? [])), ...this.participants];
  }

  private serverIds(): NodeId[] {
    return this.servers().map((s) => s.id);
  }

  private server(id: NodeId): CoordinatorNode | ParticipantNode | HaMember | undefined {
    return this.servers().find((n) => n.id === id);
  }
}

/** A participant's committed data, in a canonical order. */
function dataOf(p: ParticipantNode): string {
  return JSON.stringify(Object.entries(p.kv.entries()).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Runs one seed. */
export function runSeed(seed: number, options: Partial<SimOptions> = {}): Promise<SeedResult> {
  return new World(seed, options).run();
}
