/**
 * What one seed simulates: the run's shape (how many participants, how many
 * transfers, how long the faults last) and its fault profile.
 *
 * Each seed draws its own profile ("swarm testing"): every kind of fault is
 * switched on or off and given an intensity of its own, so some seeds drown
 * the network in duplicates while others crash the coordinator twice, and rare
 * combinations get tried without anyone listing them.
 */
import type { Prng } from '../../scenarios/prng.ts';
import type { ProtocolVariant } from '../../shared/types.ts';
import type { DiskKind } from './disk.ts';

export const PLANTED_BUGS = [
  'commit-without-all-votes',
  'vote-before-prepared-synced',
  'forget-decision-before-end',
  'hide-heuristic-mixed',
  'drop-abort-forced-on-recovery',
  'forget-commit-after-first-ack',
  'checkpoint-drops-owed-commits',
  'driver-sends-before-persist',
  'batch-replies-by-position',
] as const;
/** Planted bugs of the HA group (./ha.ts): a seed run with one runs the group. */
export const HA_PLANTED_BUGS = ['writes-not-fenced', 'leader-past-lease'] as const;
export type PlantedBug = (typeof PLANTED_BUGS)[number] | (typeof HA_PLANTED_BUGS)[number];
export const ALL_PLANTED_BUGS: readonly PlantedBug[] = [...PLANTED_BUGS, ...HA_PLANTED_BUGS];

export interface SimOptions {
  readonly participants: number;
  /** Bank transfers the client submits during the fault phase (plus one opening transaction before it). */
  readonly transactions: number;
  readonly accountsPerParticipant: number;
  readonly openingBalance: number;
  /** How long faults are injected; transfers are submitted during its first `submitWindowMs`. */
  readonly faultPhaseMs: number;
  readonly submitWindowMs: number;
  /** After the heal, everything must settle within this much simulated time. */
  readonly healDeadlineMs: number;
  /** Bounds on one seed's run, whatever goes wrong. */
  readonly stepsMax: number;
  readonly traceKeep: number;
  /** Inject faults at all (off: the fault-free baseline). */
  readonly faults: boolean;
  /** Run a planted bug instead of the correct cores, to prove the checks can fail. */
  readonly bug?: PlantedBug;
  /** The coordinator's presumption, or one drawn per seed ('mixed'). */
  readonly protocol: ProtocolVariant | 'mixed';
  /** Which WAL each node runs on: the in-memory log, the file WAL on a simulated file system, or either, by seed. */
  readonly disk: DiskKind | 'mixed';
  /** Check every step against the TLA+ model (off: only the invariants, to show they catch bugs alone). */
  readonly tlaCheck: boolean;
  /**
   * Run an HA group of coordinators on the simulated etcd (./ha.ts) instead of one coordinator
   * with its own WAL: on every seed (true), or on a seeded share of them ('mixed').
   */
  readonly ha: boolean | 'mixed';
}

export const DEFAULT_OPTIONS: SimOptions = {
  participants: 3,
  transactions: 12,
  accountsPerParticipant: 2,
  openingBalance: 100,
  faultPhaseMs: 6_000,
  submitWindowMs: 4_000,
  healDeadlineMs: 60_000,
  stepsMax: 200_000,
  traceKeep: 40,
  faults: true,
  disk: 'mixed',
  protocol: 'mixed',
  tlaCheck: true,
  ha: 'mixed',
};

/** Timeouts the cores and the simulated HTTP client run with: short, so a seed covers many rounds of retries. */
export const TIMING = {
  prepareTimeoutMs: 1_000,
  replyWaitMs: 500,
  resendBaseMs: 50,
  resendMaxMs: 1_000,
  lockWaitMs: 100,
  decisionWaitMs: 400,
  inquiryBackoffBaseMs: 50,
  inquiryBackoffMaxMs: 1_500,
  /** A peer that said "prepared too" is asked again after this: three capped rounds, as the default's 30 s is three of 10 s. */
  preparedPeerReaskMs: 4_500,
  /** The coordinator's and the participants' HTTP client timeout. */
  callTimeoutMs: 600,
  /** The bank client's timeout: longer than a prepare timeout plus the reply wait. */
  clientTimeoutMs: 3_000,
  /** One network hop without faults. */
  latencyMinMs: 1,
  latencyMaxMs: 4,
  /** The resource's prepare runs between these. */
  resourceMinMs: 0,
  resourceMaxMs: 3,
  /** A write with sync=false reaches the disk within this (the WAL's periodic flush). */
  flushMinMs: 5,
  flushMaxMs: 400,
  /**
   * A forced write's fdatasync completes after this long (0: within the step), so other events,
   * crashes among them, fall between a write and its durability, as on a real disk.
   */
  fsyncMinMs: 0,
  fsyncMaxMs: 3,
  /** A resource applies a commit or an abort after this long (0: at once); the driver's lanes wait for it. */
  applyMinMs: 0,
  applyMaxMs: 3,
} as const;

export interface FaultProfile {
  readonly dropP: number;
  readonly duplicateP: number;
  /** A long delay: the message may arrive after its caller gave up. */
  readonly delayP: number;
  /** A short extra delay that lets later messages on the link overtake this one. */
  readonly reorderP: number;
  readonly partitions: number;
  readonly oneWayPartitions: number;
  /** Crashes at random moments (each followed by a restart). */
  readonly crashes: number;
  /** Chance of crashing at each crash point a core emits. */
  readonly crashPointP: number;
  /** Chance that one sync fails (the node fail-stops and later recovers). */
  readonly fsyncErrorP: number;
  /** Chance that a timer fires late, by up to half its delay again. */
  readonly timerLateP: number;
  /** Each node's clock is off by up to this much (either way); a restart may jump it. */
  readonly clockSkewMsMax: number;
  /**
   * Chance that a node loses power right after an answer left it while one of its writes was
   * not yet durable: the window in which an acknowledged lazy write is lost.
   */
  readonly lazyLossP: number;
  /**
   * Extra chance of crashing at `participant.after-prepare-logged`: the vote is lost, the
   * coordinator aborts, and the participant must recover the transaction from its log.
   */
  readonly afterPreparedCrashP: number;
  /**
   * Extra chance of crashing the coordinator at `coordinator.after-first-commit-sent`: one
   * participant has acknowledged the commit, the others are still owed it, END is not written.
   */
  readonly afterFirstAckCrashP: number;
  /**
   * Chance that the coordinator, failing to deliver a commit after another participant acked it
   * (a commit owed to a participant it cannot reach), crashes soon after; and the chance that it
   * takes a checkpoint just before, so recovery starts from a checkpoint taken while the commit was owed.
   */
  readonly owedCommitCrashP: number;
  readonly owedCommitCheckpointP: number;
  /**
   * Extra chance of crashing a participant at `participant.before-commit-logged`: the commit
   * arrived and is lost with the process, so the participant is owed it again (and is back soon).
   */
  readonly beforeCommitCrashP: number;
}

/** Seeds that lose lazy writes after an answer, and how often they do when they do. */
const LAZY_LOSS_SEED_P = 0.75;
const LAZY_LOSS_P_MIN = 0.3;
const LAZY_LOSS_P_MAX = 1;

/** Seeds that crash the coordinator between a commit's first ack and its END more often, and how often. */
const OWED_COMMIT_CRASH_SEED_P = 0.6;
const OWED_COMMIT_CRASH_P_MIN = 0.1;
const OWED_COMMIT_CRASH_P_MAX = 0.6;
/** Of those crashes, how many follow a checkpoint. */
const OWED_COMMIT_CHECKPOINT_P = 0.5;

/** Seeds that crash participants right after PREPARED is durable more often than at other crash points, and how often. */
const AFTER_PREPARED_CRASH_SEED_P = 0.75;
const AFTER_PREPARED_CRASH_P_MIN = 0.05;
const AFTER_PREPARED_CRASH_P_MAX = 0.4;

export const NO_FAULTS: FaultProfile = {
  dropP: 0,
  duplicateP: 0,
  delayP: 0,
  reorderP: 0,
  partitions: 0,
  oneWayPartitions: 0,
  crashes: 0,
  crashPointP: 0,
  fsyncErrorP: 0,
  timerLateP: 0,
  clockSkewMsMax: 0,
  lazyLossP: 0,
  afterPreparedCrashP: 0,
  afterFirstAckCrashP: 0,
  owedCommitCrashP: 0,
  owedCommitCheckpointP: 0,
  beforeCommitCrashP: 0,
};

/**
 * Draws a profile: each fault kind is on with its own chance, at an intensity of its own.
 * Kinds added later draw from `later`, so the earlier kinds' draws stay as they were.
 */
export function drawProfile(rng: Prng, later: Prng): FaultProfile {
  const on = (p: number): boolean => rng.next() < p;
  const level = (max: number): number => rng.next() * max;
  return {
    dropP: on(0.5) ? level(0.15) : 0,
    duplicateP: on(0.5) ? level(0.2) : 0,
    delayP: on(0.4) ? level(0.08) : 0,
    reorderP: on(0.5) ? level(0.3) : 0,
    partitions: on(0.4) ? rng.int(1, 3) : 0,
    oneWayPartitions: on(0.3) ? rng.int(1, 2) : 0,
    crashes: on(0.6) ? rng.int(1, 4) : 0,
    crashPointP: on(0.5) ? level(0.15) : 0,
    fsyncErrorP: on(0.25) ? level(0.03) : 0,
    timerLateP: on(0.4) ? level(0.3) : 0,
    clockSkewMsMax: on(0.5) ? rng.int(1, 30_000) : 0,
    lazyLossP: later.next() < LAZY_LOSS_SEED_P ? LAZY_LOSS_P_MIN + later.next() * (LAZY_LOSS_P_MAX - LAZY_LOSS_P_MIN) : 0,
    afterPreparedCrashP: later.next() < AFTER_PREPARED_CRASH_SEED_P ? AFTER_PREPARED_CRASH_P_MIN + later.next() * (AFTER_PREPARED_CRASH_P_MAX - AFTER_PREPARED_CRASH_P_MIN) : 0,
    ...owedCommitFaults(later),
  };
}

/** The faults between a commit's first ack and its END (drawn after the others, from `later`). */
function owedCommitFaults(later: Prng): Pick<FaultProfile, 'afterFirstAckCrashP' | 'owedCommitCrashP' | 'owedCommitCheckpointP' | 'beforeCommitCrashP'> {
  if (later.next() >= OWED_COMMIT_CRASH_SEED_P) return { afterFirstAckCrashP: 0, owedCommitCrashP: 0, owedCommitCheckpointP: 0, beforeCommitCrashP: 0 };
  const level = (): number => OWED_COMMIT_CRASH_P_MIN + later.next() * (OWED_COMMIT_CRASH_P_MAX - OWED_COMMIT_CRASH_P_MIN);
  return { afterFirstAckCrashP: level(), owedCommitCrashP: level(), owedCommitCheckpointP: OWED_COMMIT_CHECKPOINT_P, beforeCommitCrashP: level() };
}

/**
 * How the coordinator sends to participants in one seed: batched (coordinator/adapters/batches.ts,
 * as the service does by default) on most seeds, one request per message on the rest; and the
 * faults the network plays on batches, when faults are on.
 */
export interface BatchProfile {
  readonly batching: boolean;
  /** Requests per participant and lane not yet being answered: at 1, messages queue behind any slow request and batches grow. */
  readonly requestsAwaitingMax: number;
  /** Batches ask for a streamed answer (a line per message as it settles), as the service does; else the whole answer. */
  readonly streamed: boolean;
  /** A batch request, or its answer, lost on the way. */
  readonly lostP: number;
  /** An answer cut short: half its replies (rounded down) arrive; a streamed answer, per line: the connection breaks before it. */
  readonly halfAnsweredP: number;
  /** An answer whose replies arrive in another order (two or more replies); a streamed answer, per line at half this: the line names its neighbour's place. */
  readonly reorderedP: number;
  /** An answer held up long enough that some of its messages' own timeouts pass first. */
  readonly lateP: number;
}

/** Of the batching seeds, those whose batches ask for the whole answer (an older participant's form) rather than a stream. */
const WHOLE_ANSWER_SEED_P = 0.2;
/** Seeds that run the one-request-per-message path instead (variety: both paths stay under the checks). */
const UNBATCHED_SEED_P = 0.15;
/** Each batch fault kind is on for this share of seeds, at up to this chance per batch. */
const BATCH_FAULT_SEED_P = 0.5;
const BATCH_FAULT_P_MAX = 0.3;
const BATCH_REORDER_SEED_P = 0.75;
const BATCH_REORDER_P_MIN = 0.3;
/** How late a late batch answer comes, beyond its latency. */
export const BATCH_LATE_MS_MIN = 200;
export const BATCH_LATE_MS_MAX = 1_500;

export const NO_BATCH_FAULTS: Omit<BatchProfile, 'batching' | 'requestsAwaitingMax' | 'streamed'> = { lostP: 0, halfAnsweredP: 0, reorderedP: 0, lateP: 0 };

/** Draws a seed's batching (from its own stream, so the other draws stay as they were). */
export function drawBatchProfile(rng: Prng, faults: boolean): BatchProfile {
  const batching = rng.next() >= UNBATCHED_SEED_P;
  const requestsAwaitingMax = rng.int(1, 2);
  const level = (): number => (rng.next() < BATCH_FAULT_SEED_P ? rng.next() * BATCH_FAULT_P_MAX : 0);
  // Reordering needs an answer with two replies or more, which is rarer: it is on more often, and stronger.
  const reorderedP = rng.next() < BATCH_REORDER_SEED_P ? BATCH_REORDER_P_MIN + rng.next() * (1 - BATCH_REORDER_P_MIN) : 0;
  const drawn = { lostP: level(), halfAnsweredP: level(), reorderedP, lateP: level() };
  // Drawn last, so the draws above stay as they were.
  const streamed = rng.next() >= WHOLE_ANSWER_SEED_P;
  return { batching, requestsAwaitingMax, streamed, ...(faults && batching ? drawn : NO_BATCH_FAULTS) };
}

/** The faults of an HA group (./ha.ts), drawn from their own stream. */
export interface HaProfile {
  readonly members: number;
  /** Processes stopped past their lease (SIGSTOP), the leader most often. */
  readonly pauses: number;
  /** Chance, at each log write a leader sends, that it is paused right there (the write leaves when it wakes). */
  readonly pauseMidWriteP: number;
  /** Crashes aimed at whoever holds the leader key at the time. */
  readonly leaderCrashes: number;
  /** Windows in which etcd has no quorum. */
  readonly quorumLosses: number;
  /** Windows in which one member's client is cut off from etcd. */
  readonly etcdCuts: number;
  /** Chance that one etcd request or answer is lost. */
  readonly etcdLossP: number;
}

export const NO_HA_FAULTS: Omit<HaProfile, 'members'> = { pauses: 0, pauseMidWriteP: 0, leaderCrashes: 0, quorumLosses: 0, etcdCuts: 0, etcdLossP: 0 };

/** A pause lasts past the lease, by this factor of its TTL at least and at most. */
export const PAUSE_TTLS_MIN = 1.2;
export const PAUSE_TTLS_MAX = 3;
export const QUORUM_LOSS_MS_MIN = 200;
export const QUORUM_LOSS_MS_MAX = 2_500;
export const ETCD_CUT_MS_MIN = 200;
export const ETCD_CUT_MS_MAX = 3_000;

export function drawHaProfile(rng: Prng, faults: boolean): HaProfile {
  const members = rng.int(2, 3);
  if (!faults) return { members, ...NO_HA_FAULTS };
  const on = (p: number): boolean => rng.next() < p;
  return {
    members,
    pauses: on(0.6) ? rng.int(1, 3) : 0,
    pauseMidWriteP: on(0.5) ? 0.01 + rng.next() * 0.1 : 0,
    leaderCrashes: on(0.5) ? rng.int(1, 2) : 0,
    quorumLosses: on(0.4) ? rng.int(1, 2) : 0,
    etcdCuts: on(0.4) ? rng.int(1, 2) : 0,
    etcdLossP: on(0.3) ? rng.next() * 0.05 : 0,
  };
}
