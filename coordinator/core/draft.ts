/**
 * One step's scratch space: the effects it emits and the transaction tables as
 * they stand so far. The tables are persistent maps (shared/persistent-map.ts):
 * a change makes a new version that shares all it did not touch, so the input
 * state is never mutated, `step` stays a pure function, and a step's cost is
 * that of what it touches, not of how many transactions are active or
 * remembered. (Copying whole Maps, as before, kept old states valid too, at a
 * cost that grew with both; handing the old state over to be mutated would be
 * cheaper still, but the simulator and the tests keep old states and step from
 * them again, and the runtime reads states after later steps; see
 * docs/performance.md, "Core step cost".) A step that changes nothing returns
 * the very same state object.
 */
import { TwopcError, type ErrorCode } from '../../shared/errors.ts';
import type { RequestId } from '../../shared/core.ts';
import { PersistentMap } from '../../shared/persistent-map.ts';
import type { CoordinatorEffect, CoordinatorState, ResolvedConfig, Tx } from './types.ts';

export class Draft {
  readonly effects: CoordinatorEffect[] = [];
  epoch: number;
  nextSeq: number;
  recovering: boolean;
  private txs: PersistentMap<string, Tx>;
  private finished: PersistentMap<string, Tx>;
  private readonly baseTxs: PersistentMap<string, Tx>;
  private readonly baseFinished: PersistentMap<string, Tx>;

  constructor(private readonly base: CoordinatorState) {
    this.epoch = base.epoch;
    this.nextSeq = base.nextSeq;
    this.recovering = base.recovering;
    // The core's own states hold persistent maps already; a state built by hand (a test, the simulator) is converted once.
    this.baseTxs = this.txs = PersistentMap.from(base.txs);
    this.baseFinished = this.finished = PersistentMap.from(base.finished);
  }

  get config(): ResolvedConfig {
    return this.base.config;
  }

  /** An unfinished transaction. */
  get(txId: string): Tx | undefined {
    return this.txs.get(txId);
  }

  /** A recently finished transaction. */
  getFinished(txId: string): Tx | undefined {
    return this.finished.get(txId);
  }

  get unfinishedCount(): number {
    return this.txs.size;
  }

  unfinished(): Iterable<Tx> {
    return this.txs.values();
  }

  finishedTxs(): Iterable<Tx> {
    return this.finished.values();
  }

  put(tx: Tx): void {
    this.txs = this.txs.set(tx.txId, tx);
  }

  /** Moves a transaction to the bounded history of finished ones, forgetting the oldest beyond its bound. */
  retire(tx: Tx): void {
    this.txs = this.txs.delete(tx.txId);
    this.finished = this.finished.set(tx.txId, tx);
    // One in, at most one out, unless a smaller bound came with a hand-built state: bounded by the excess.
    for (let excess = this.finished.size - this.config.finishedHistoryMax; excess > 0; excess--) this.finished = this.finished.dropFirst();
  }

  emit(...effects: CoordinatorEffect[]): void {
    this.effects.push(...effects);
  }

  reply(requestId: RequestId, status: number, body: unknown): void {
    this.effects.push({ kind: 'reply', requestId, status, body });
  }

  fail(requestId: RequestId, code: ErrorCode, message: string): void {
    const error = new TwopcError(code, message);
    this.reply(requestId, error.status, error.toBody());
  }

  log(step: string, txId?: string, fields?: Record<string, unknown>): void {
    this.effects.push({
      kind: 'log',
      step,
      ...(txId === undefined ? {} : { txId }),
      ...(fields === undefined ? {} : { fields }),
    });
  }

  result(): { state: CoordinatorState; effects: readonly CoordinatorEffect[] } {
    const unchanged =
      this.txs === this.baseTxs &&
      this.finished === this.baseFinished &&
      this.epoch === this.base.epoch &&
      this.nextSeq === this.base.nextSeq &&
      this.recovering === this.base.recovering;
    const state: CoordinatorState = unchanged
      ? this.base
      : {
          config: this.base.config,
          recovering: this.recovering,
          epoch: this.epoch,
          nextSeq: this.nextSeq,
          txs: this.txs,
          finished: this.finished,
        };
    return { state, effects: this.effects };
  }
}
