/**
 * Planted bugs: wrappers around the real cores (which stay untouched) that
 * break one rule each, so the tests can show the checks catch them.
 *
 * - commit-without-all-votes: when one vote is still missing, the coordinator
 *   fabricates it and commits (a TM that commits after n-1 YES votes).
 * - vote-before-prepared-synced: the participant writes PREPARED without
 *   forcing it, so its YES may leave before the record is durable.
 * - forget-decision-before-end: the coordinator's recovery is not given its
 *   DECISION records, so it forgets decisions whose END was not yet written.
 * - hide-heuristic-mixed: the coordinator ignores the heuristic outcome a
 *   participant reports in its ack, so it never reports heuristic-mixed.
 * - drop-abort-forced-on-recovery: the participant's recovery loses the
 *   `abortForced` of PREPARED records read from the log (a checkpoint keeps
 *   it), as participant/core/recovery.ts once did: under presumed commit such
 *   a transaction writes its ABORTED lazily, and one lost in a crash after the
 *   ack is later "learned" as committed from a coordinator that forgot it.
 * - batch-replies-by-position: the coordinator matches a batch's replies to
 *   its messages by position alone, without the transaction id each reply
 *   echoes, so a reordered answer hands one transaction's vote (or ack) to
 *   another. It runs the service's own matching on the replies with their
 *   txIds stripped; for a streamed answer, on each line with its txId stripped,
 *   so a line naming another message's place is believed.
 *
 * Two more break the HA group's rules (they run the group, ./ha.ts):
 * - writes-not-fenced: the etcd log's writes reach etcd without their compare
 *   on the leader key's create revision, so a deposed leader's write (one it
 *   sent, say, just as it paused past its lease) is applied.
 * - leader-past-lease: a leader ignores its own lease clock and etcd's word that
 *   its lease is gone (etcd-leadership.ts `blind`), so a member that wakes from
 *   a pause keeps acting as leader until a write of its is refused.
 */
import { snapshotOf, step as coordinatorStep, type CoordinatorEffect, type CoordinatorSnapshot, type CoordinatorState } from '../../coordinator/core/index.ts';
import { EffectDriver, type DriverHooks } from '../../shared/driver.ts';
import { step as participantStep } from '../../participant/core/index.ts';
import { matchLine, matchReplies } from '../../coordinator/adapters/batches.ts';
import type { MatchLine, MatchReplies } from './batching.ts';
import type { CoordinatorStep } from './coordinator-node.ts';
import type { ParticipantStep } from './participant-node.ts';
import type { PlantedBug } from './profile.ts';

export interface Planted {
  /** The HA group's log writes go without their fencing compare (./ha.ts). */
  readonly unfenced?: boolean;
  /** HA leaders ignore their own lease clock (./ha.ts). */
  readonly blindLeader?: boolean;
  readonly coordinatorStep?: CoordinatorStep;
  readonly participantStep?: ParticipantStep;
  /** What the coordinator's checkpoint keeps of its state. */
  readonly coordinatorSnapshot?: (state: CoordinatorState) => CoordinatorSnapshot;
  /** The effect driver every node runs. */
  readonly newDriver?: <R, E extends { kind: string }>(hooks: DriverHooks<R, E>) => EffectDriver<R, E>;
  /** How the coordinator matches a batch answer to its messages. */
  readonly matchReplies?: MatchReplies;
  /** How the coordinator matches a line of a streamed batch answer to its message. */
  readonly matchLine?: MatchLine;
}

const repliesByPosition: MatchReplies = (txIds, data) => {
  const replies = (data as { replies?: unknown } | undefined)?.replies;
  if (!Array.isArray(replies)) return matchReplies(txIds, data);
  return matchReplies(
    txIds,
    { replies: replies.map((r) => ({ ...(r as object), txId: undefined })) },
  );
};

const lineByPosition: MatchLine = (txIds, seen, line) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return matchLine(txIds, seen, line);
  }
  return matchLine(txIds, seen, JSON.stringify({ ...(parsed as object), txId: undefined }));
};

const commitWithoutAllVotes: CoordinatorStep = (state, event) => {
  const first = coordinatorStep(state, event);
  if (event.type !== 'prepareResult' || event.vote !== 'yes') return first;
  const tx = first.state.txs.get(event.txId);
  if (!tx || tx.phase !== 'preparing' || tx.onePhase) return first;
  const missing = tx.branches.filter((b) => b.vote === undefined);
  const [last] = missing;
  if (missing.length !== 1 || last === undefined || tx.branches.some((b) => b.vote === 'no')) return first;
  const forged = coordinatorStep(first.state, { type: 'prepareResult', txId: event.txId, participant: last.participant, vote: 'yes', now: event.now });
  return { state: forged.state, effects: [...first.effects, ...forged.effects] };
};

const voteBeforePreparedSynced: ParticipantStep = (state, event) => {
  const r = participantStep(state, event);
  if (!r.effects.some((e) => e.kind === 'persist' && e.record.type === 'PREPARED')) return r;
  return { state: r.state, effects: r.effects.map((e) => (e.kind === 'persist' && e.record.type === 'PREPARED' ? { ...e, sync: false } : e)) };
};

const forgetDecisionBeforeEnd: CoordinatorStep = (state, event) => {
  if (event.type !== 'recover') return coordinatorStep(state, event);
  return coordinatorStep(state, {
    ...event,
    entries: event.entries.filter((r) => r.type !== 'DECISION'),
    ...(event.snapshot ? { snapshot: { ...event.snapshot, decided: [] } } : {}),
  });
};

const hideHeuristicMixed: CoordinatorStep = (state, event) => {
  if (event.type !== 'decisionAcked' || event.heuristic === undefined) return coordinatorStep(state, event);
  return coordinatorStep(state, { type: 'decisionAcked', txId: event.txId, participant: event.participant, now: event.now });
};

const dropAbortForcedOnRecovery: ParticipantStep = (state, event) => {
  if (event.type !== 'recover') return participantStep(state, event);
  const records = event.records.map((r) => {
    if (r.type !== 'PREPARED') return r;
    const { abortForced: _dropped, ...rest } = r;
    return rest;
  });
  return participantStep(state, { ...event, records });
};

const forgetCommitAfterFirstAck: CoordinatorStep = (state, event) => {
  const r = coordinatorStep(state, event);
  const at = r.effects.findIndex((e) => e.kind === 'crashPoint' && e.point === 'coordinator.after-first-commit-sent');
  if (at < 0 || event.type !== 'decisionAcked') return r;
  const end: CoordinatorEffect = { kind: 'persist', record: { type: 'END', txId: event.txId }, sync: false };
  return { state: r.state, effects: [...r.effects.slice(0, at), end, ...r.effects.slice(at)] };
};

const checkpointDropsOwedCommits = (state: CoordinatorState): CoordinatorSnapshot => {
  const s = snapshotOf(state);
  return { ...s, decided: s.decided.filter((d) => d.outcome !== 'committed') };
};

/** A driver that issues a step's writes only after the step's outward effects have run. */
class SendsBeforePersistDriver<R, E extends { kind: string }> extends EffectDriver<R, E> {
  override run(effects: readonly E[]): Promise<void> {
    void super.run(effects.filter((e) => e.kind !== 'persist'));
    return super.run(effects.filter((e) => e.kind === 'persist'));
  }
}

export function plant(bug: PlantedBug | undefined): Planted {
  switch (bug) {
    case undefined:
      return {};
    case 'commit-without-all-votes':
      return { coordinatorStep: commitWithoutAllVotes };
    case 'vote-before-prepared-synced':
      return { participantStep: voteBeforePreparedSynced };
    case 'forget-decision-before-end':
      return { coordinatorStep: forgetDecisionBeforeEnd };
    case 'hide-heuristic-mixed':
      return { coordinatorStep: hideHeuristicMixed };
    case 'drop-abort-forced-on-recovery':
      return { participantStep: dropAbortForcedOnRecovery };
    case 'forget-commit-after-first-ack':
      return { coordinatorStep: forgetCommitAfterFirstAck };
    case 'checkpoint-drops-owed-commits':
      return { coordinatorSnapshot: checkpointDropsOwedCommits };
    case 'driver-sends-before-persist':
      return { newDriver: (hooks) => new SendsBeforePersistDriver(hooks) };
    case 'batch-replies-by-position':
      return { matchReplies: repliesByPosition, matchLine: lineByPosition };
    case 'writes-not-fenced':
      return { unfenced: true };
    case 'leader-past-lease':
      return { blindLeader: true };
  }
}
