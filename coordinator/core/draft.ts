/**
 * One step's scratch space: the effects it emits and copy-on-write views of the
 * transaction tables. The input state is never mutated, so `step` stays a pure
 * function; a step that changes nothing returns the very same state object.
 */
import { TwopcError, type ErrorCode } from '../../shared/errors.ts';
import type { RequestId } from '../../shared/core.ts';
import type { CoordinatorEffect, CoordinatorState, ResolvedConfig, Tx } from './types.ts';

export class Draft {
  readonly effects: CoordinatorEffect[] = [];
  epoch: number;
  nextSeq: number;
  recovering: boolean;
  private txs: Map<string, Tx> | undefined;
  private finished: Map<string, Tx> | undefined;

  constructor(private readonly base: CoordinatorState) {
    this.epoch = base.epoch;
    this.nextSeq = base.nextSeq;
    this.recovering = base.recovering;
  }

  get config(): ResolvedConfig {
    return this.base.config;
  }

  /** An unfinished transaction. */
  get(txId: string): Tx | undefined {
    return (this.txs ?? this.base.txs).get(txId);
  }

  /** A recently finished transaction. */
  getFinished(txId: string): Tx | undefined {
    return (this.finished ?? this.base.finished).get(txId);
  }

  get unfinishedCount(): number {
    return (this.txs ?? this.base.txs).size;
  }

  unfinished(): Iterable<Tx> {
    return (this.txs ?? this.base.txs).values();
  }

  finishedTxs(): Iterable<Tx> {
    return (this.finished ?? this.base.finished).values();
  }

  put(tx: Tx): void {
    this.txs ??= new Map(this.base.txs);
    this.txs.set(tx.txId, tx);
  }

  /** Moves a transaction to the bounded history of finished ones. */
  retire(tx: Tx): void {
    this.txs ??= new Map(this.base.txs);
    this.txs.delete(tx.txId);
    this.finished ??= new Map(this.base.finished);
    this.finished.set(tx.txId, tx);
    // Maps iterate in insertion order, so the first keys are the oldest.
    for (const oldest of this.finished.keys()) {
      if (this.finished.size <= this.config.finishedHistoryMax) break;
      this.finished.delete(oldest);
    }
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
      this.txs === undefined &&
      this.finished === undefined &&
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
          txs: this.txs ?? this.base.txs,
          finished: this.finished ?? this.base.finished,
        };
    return { state, effects: this.effects };
  }
}
