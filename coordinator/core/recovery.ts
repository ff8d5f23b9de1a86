/**
 * Recovery and checkpoints. After a crash the coordinator knows only what its
 * WAL says: decided transactions without END get their decision re-sent (the
 * participants may still be prepared and blocked on it); transactions with a
 * COLLECTING record but no decision are aborted (some participant may have
 * voted yes). Everything else was never promised to anyone, and is presumed.
 */
import type { Outcome, TxId } from '../../shared/types.ts';
import { complete, decide, sendDecision } from './decision.ts';
import type { Draft } from './draft.ts';
import { deciding, newBranch, newTx } from './state.ts';
import type { CoordinatorSnapshot, CoordinatorState, ParticipantRef, RecoverEvent } from './types.ts';

export function recover(d: Draft, e: RecoverEvent): void {
  // Recovery runs once, on an empty state; a second recover is a runtime bug and changes nothing.
  if (!d.recovering) return;
  let maxEpoch = e.snapshot?.epoch ?? 0;
  const decided = new Map<TxId, { outcome: Outcome; participants: readonly ParticipantRef[] }>();
  const collecting = new Map<TxId, readonly ParticipantRef[]>();
  for (const t of e.snapshot?.decided ?? []) decided.set(t.txId, t);
  for (const t of e.snapshot?.collecting ?? []) collecting.set(t.txId, t.participants);
  for (const r of e.entries) {
    switch (r.type) {
      case 'BOOT':
        maxEpoch = Math.max(maxEpoch, r.epoch);
        break;
      case 'COLLECTING':
        collecting.set(r.txId, r.participants);
        break;
      case 'DECISION':
        decided.set(r.txId, r);
        collecting.delete(r.txId);
        break;
      case 'END':
        decided.delete(r.txId);
        collecting.delete(r.txId);
        break;
    }
  }

  d.epoch = maxEpoch + 1;
  d.nextSeq = 1;
  d.recovering = false;
  d.emit({ kind: 'persist', record: { type: 'BOOT', epoch: d.epoch }, sync: true });
  d.log('recovered', undefined, { epoch: d.epoch, resending: decided.size, aborting: collecting.size, records: e.entries.length });

  for (const [txId, { outcome, participants }] of decided) {
    const branches = participants.map((p) => newBranch(p, { target: true, ...(outcome === 'committed' ? { vote: 'yes' as const } : {}) }));
    const tx = newTx(txId, e.now, { phase: deciding(outcome), outcome, branches, logged: true, replyReleased: true, reason: 'recovered from the WAL' });
    if (branches.length === 0) {
      complete(d, tx);
      continue;
    }
    d.put(tx);
    for (const b of branches) sendDecision(d, tx, b);
  }
  for (const [txId, participants] of collecting) {
    // Some participant may have voted yes and be blocked: abort, and tell every one of them.
    const tx = newTx(txId, e.now, { phase: 'preparing', branches: participants.map((p) => newBranch(p)), collecting: true, replyReleased: true });
    decide(d, tx, 'aborted', 'the coordinator restarted before deciding');
  }
}

/**
 * What a checkpoint must carry so that the records before it can be dropped:
 * the epoch, decided transactions still owed acks (only the participants that
 * have not acked), and, under presumed nothing/commit, undecided COLLECTING ones.
 */
export function snapshotOf(state: CoordinatorState): CoordinatorSnapshot {
  const decided: CoordinatorSnapshot['decided'][number][] = [];
  const collecting: CoordinatorSnapshot['collecting'][number][] = [];
  for (const tx of state.txs.values()) {
    if (tx.logged && tx.outcome !== undefined) {
      const owed = tx.branches.filter((b) => b.target && !b.acked).map((b) => ({ name: b.participant, url: b.url }));
      decided.push({ txId: tx.txId, outcome: tx.outcome, participants: owed });
    } else if (tx.collecting && tx.phase === 'preparing') {
      collecting.push({ txId: tx.txId, participants: tx.branches.map((b) => ({ name: b.participant, url: b.url })) });
    }
  }
  return { version: 1, epoch: state.epoch, decided, collecting };
}
