/**
 * The ghost: an omniscient observer's record of each transaction, fed by the
 * nodes as things happen (a record became durable, a vote left, a decision
 * was taken). The checks and the TLA+ mapping read it; the protocol never does.
 *
 * Everything here is latched: once a participant's PREPARED is durable, it has
 * prepared, even if a later checkpoint drops the record.
 */
import type { RmState, TwoPhaseState } from './model/two-phase.ts';
import { init } from './model/two-phase.ts';
import type { NodeId } from './messages.ts';

export type ClientResult = 'ok' | 'fail' | 'info';

export interface Violation {
  readonly kind: string;
  readonly message: string;
  readonly txId?: string;
  /** Simulated time it was found at. */
  readonly at: number;
}

export interface GhostTx {
  readonly txId: string;
  /** The client's transfer number; -1 for the opening transaction. */
  readonly index: number;
  /** The participants of its branches, in branch order: the RMs of the model. */
  readonly branches: readonly NodeId[];
  readonly onePhase: boolean;
  rm: RmState[];
  everPrepared: number;
  /**
   * Branches an operator settled by hand while in doubt (bit i), and the outcome forced at each.
   * Only these participants of only this transaction are exempt from atomicity and from
   * "never decides alone"; the coordinator must report heuristic-mixed when one disagrees.
   */
  heuristic: number;
  heuristicOutcome: ('committed' | 'aborted' | undefined)[];
  /** The coordinator finished it reporting heuristic-mixed. */
  reportedMixed?: boolean;
  /** Branches whose participant has sent a plain acknowledgment of the decision (bit i). */
  ackSent: number;
  /**
   * Branches settled by hand only after their participant had acknowledged the decision: it
   * lost a lazy record (presumed abort allows it) and was in doubt again. The coordinator may
   * have its ack already and cannot be required to report what it did next.
   */
  heuristicAfterAck: number;
  votesSent: number;
  votesReceived: number;
  tm: 'init' | 'committed' | 'aborted';
  /** Why tm turned as it did, for the report. */
  tmWhy?: string;
  commitSent: boolean;
  client?: { readonly result: ClientResult; readonly outcome?: string };
  /** The last model state the steps were checked against. */
  model: TwoPhaseState;
}

export class Ghost {
  readonly txs = new Map<string, GhostTx>();
  readonly byIndex = new Map<number, GhostTx>();
  /** Transactions something happened to during the current step. */
  readonly dirty = new Set<string>();
  readonly violations: Violation[] = [];
  now = 0;

  violation(kind: string, message: string, txId?: string): void {
    // One violation of a kind per transaction is enough to report; the rest would repeat it.
    if (this.violations.some((v) => v.kind === kind && v.txId === txId)) return;
    this.violations.push({ kind, message, at: this.now, ...(txId === undefined ? {} : { txId }) });
  }

  begin(txId: string, index: number, branches: readonly NodeId[]): void {
    if (this.txs.has(txId)) {
      this.violation('txid-reused', `transaction id ${txId} was handed out twice (transfer ${index})`, txId);
      return;
    }
    const unique = [...new Set(branches)];
    const g: GhostTx = {
      txId,
      index,
      branches: unique,
      onePhase: unique.length === 1,
      rm: unique.map(() => 'working'),
      everPrepared: 0,
      heuristic: 0,
      heuristicOutcome: unique.map(() => undefined),
      ackSent: 0,
      heuristicAfterAck: 0,
      votesSent: 0,
      votesReceived: 0,
      tm: 'init',
      commitSent: false,
      model: init(unique.length),
    };
    this.txs.set(txId, g);
    this.byIndex.set(index, g);
    this.dirty.add(txId);
  }

  private rmIndex(txId: string, node: NodeId): { g: GhostTx; i: number } | undefined {
    const g = this.txs.get(txId);
    if (!g) return undefined;
    const i = g.branches.indexOf(node);
    if (i < 0) {
      this.violation('foreign-participant', `${node} took part in ${txId}, which has no branch there`, txId);
      return undefined;
    }
    this.dirty.add(txId);
    return { g, i };
  }

  // ---- the coordinator -------------------------------------------------------------

  /** The TM's fate turned: the first evidence wins; contrary evidence later is a violation. */
  tmDecided(txId: string, outcome: 'committed' | 'aborted', why: string): void {
    const g = this.txs.get(txId);
    if (!g) return;
    this.dirty.add(txId);
    if (g.tm === 'init') {
      g.tm = outcome;
      g.tmWhy = why;
    } else if (g.tm !== outcome) {
      this.violation('decision-flipped', `${txId} was ${g.tm} (${g.tmWhy ?? '?'}), then ${outcome} (${why})`, txId);
    }
  }

  /**
   * The coordinator took a YES while collecting votes. Once the transaction's
   * fate is sealed (another participant said no), the abstract TM no longer
   * collects: the vote changes nothing, a stutter.
   */
  voteReceived(txId: string, node: NodeId): void {
    const r = this.rmIndex(txId, node);
    if (r && r.g.tm === 'init') r.g.votesReceived |= 1 << r.i;
  }

  commitSent(txId: string): void {
    const g = this.txs.get(txId);
    if (!g) return;
    g.commitSent = true;
    this.dirty.add(txId);
  }

  // ---- the participants ------------------------------------------------------------

  voteSent(txId: string, node: NodeId): void {
    const r = this.rmIndex(txId, node);
    if (r) r.g.votesSent |= 1 << r.i;
  }

  /** `node` acknowledged the decision for txId, not reporting a heuristic outcome. */
  ackSent(txId: string, node: NodeId): void {
    const r = this.rmIndex(txId, node);
    if (r) r.g.ackSent |= 1 << r.i;
  }

  /** A participant's record for txId became durable. */
  rmDurable(txId: string, node: NodeId, state: 'prepared' | 'committed' | 'aborted'): void {
    const r = this.rmIndex(txId, node);
    if (!r) return;
    const { g, i } = r;
    const before = g.rm[i] as RmState;
    if (state === 'prepared') {
      g.everPrepared |= 1 << i;
      if (before === 'working') g.rm[i] = 'prepared';
      return;
    }
    if (before === state) return;
    if (before === 'committed' || before === 'aborted') {
      this.violation('participant-flipped', `${node} durably ${before} ${txId}, then durably ${state}`, txId);
      return;
    }
    g.rm[i] = state;
    if (state === 'committed' && g.onePhase) this.tmDecided(txId, 'committed', `${node} committed it in one phase`);
    // Aborting before voting seals the fate: no COMMIT can be decided without this participant's YES.
    if (state === 'aborted' && before === 'working') this.tmDecided(txId, 'aborted', `${node} aborted it before voting`);
  }

  /** An operator's HEURISTIC record became durable: the participant settled an in-doubt transaction by hand. */
  rmHeuristic(txId: string, node: NodeId, outcome: 'committed' | 'aborted'): void {
    const r = this.rmIndex(txId, node);
    if (!r) return;
    const { g, i } = r;
    const before = g.rm[i] as RmState;
    if ((g.heuristic & (1 << i)) !== 0 && g.heuristicOutcome[i] === outcome) return;
    if (before === 'committed' || before === 'aborted') {
      this.violation('heuristic', `${node} settled ${txId} by hand as ${outcome} after it was durably ${before}`, txId);
      return;
    }
    g.everPrepared |= 1 << i;
    if ((g.ackSent & (1 << i)) !== 0) g.heuristicAfterAck |= 1 << i;
    g.heuristic |= 1 << i;
    g.heuristicOutcome[i] = outcome;
    g.rm[i] = outcome;
  }

  // ---- the client ------------------------------------------------------------------

  /** The client's view of transfer `index`; by `txId` when the client knows it (a duplicated begin makes two). */
  clientResult(index: number, result: ClientResult, outcome?: string, txId?: string): void {
    const g = txId === undefined ? this.byIndex.get(index) : this.txs.get(txId);
    if (!g) return;
    g.client = outcome === undefined ? { result } : { result, outcome };
    this.dirty.add(g.txId);
  }
}
