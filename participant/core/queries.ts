/**
 * Read-only views of the state: what GET /v1/2pc/transactions answers, what a
 * checkpoint stores, and who holds a key. Pure functions of the state.
 */
import type { TxId } from '../../shared/types.ts';
import { getOutcome, outcomeEntries } from './outcomes.ts';
import { preparedSnapshotOf } from './recovery.ts';
import type { ParticipantSnapshot, ParticipantState, PreparedTx } from './types.ts';

export interface TxView {
  readonly txId: TxId;
  readonly state: 'prepared' | 'committed' | 'aborted' | 'unknown';
  readonly since?: number;
  readonly heuristic?: 'committed' | 'aborted';
}

/** A transaction that has not voted is `unknown`: it has promised nothing yet. */
export function getTx(s: ParticipantState, txId: TxId): TxView {
  const known = getOutcome(s.outcomes, txId);
  if (known !== undefined) {
    return known.heuristic === undefined
      ? { txId, state: known.outcome, since: known.at }
      : { txId, state: known.outcome, since: known.at, heuristic: known.heuristic };
  }
  const tx = s.txs.get(txId);
  if (tx?.phase === 'prepared') return { txId, state: 'prepared', since: tx.preparedAt };
  return { txId, state: 'unknown' };
}

export interface InDoubtView {
  readonly txId: TxId;
  readonly state: 'prepared';
  readonly since: number;
  readonly blockedMs: number;
  readonly keys: readonly string[];
  readonly coordinator: string;
  readonly participants: readonly string[];
  readonly inquiries: number;
  readonly blocked?: string;
}

function prepared(s: ParticipantState): PreparedTx[] {
  const out: PreparedTx[] = [];
  for (const tx of s.txs.values()) if (tx.phase === 'prepared') out.push(tx);
  return out.sort((a, b) => a.preparedAt - b.preparedAt || (a.txId < b.txId ? -1 : 1));
}

/** The in-doubt list, longest-blocked first. */
export function listTx(s: ParticipantState, now: number): { transactions: InDoubtView[] } {
  return {
    transactions: prepared(s).map((tx) => ({
      txId: tx.txId,
      state: 'prepared',
      since: tx.preparedAt,
      blockedMs: Math.max(0, now - tx.preparedAt),
      keys: tx.keys,
      coordinator: tx.coordinator,
      participants: tx.participants,
      inquiries: tx.inquiries,
      ...(tx.blocked !== undefined && { blocked: tx.blocked }),
    })),
  };
}

export function lockHolder(s: ParticipantState, key: string): TxId | undefined {
  return s.locks.get(key);
}

export { inDoubtCount } from './state.ts';

/**
 * The core's part of a checkpoint, plus the resource's snapshot taken at the
 * same point of the effect order (the runtime guarantees that).
 */
export function checkpointOf(s: ParticipantState, resource: unknown): ParticipantSnapshot {
  return {
    version: 1,
    resource,
    prepared: prepared(s).map(preparedSnapshotOf),
    outcomes: outcomeEntries(s.outcomes),
    ...(s.outcomes.forgotten.any && { forgotten: s.outcomes.forgotten }),
  };
}
