/**
 * Small builders for the participant core tests: events with fixed times and
 * request ids, and a runner that feeds several events in order.
 */
import { initialState, step, type ParticipantConfig, type ParticipantEffect, type ParticipantEvent, type ParticipantState } from '../../../participant/core/index.ts';
import { kvKeysOf } from '../../../participant/resources/kv.ts';
import { asTxId, type Op, type TxId } from '../../../shared/types.ts';

export const COORD = 'http://127.0.0.1:7000';
export const P1 = 'http://127.0.0.1:7001';
export const P2 = 'http://127.0.0.1:7002';
export const P3 = 'http://127.0.0.1:7003';

export const tx = (n: number): TxId => asTxId(`tx-1-${n}`);

export function fresh(config: Partial<ParticipantConfig> = {}): ParticipantState {
  return initialState({ keysOf: kvKeysOf, selfUrl: P1, lockWaitMs: 100, decisionWaitMs: 1_000, ...config });
}

export function prepare(
  txId: TxId,
  ops: readonly Op[],
  opts: { requestId?: string; now?: number; onePhase?: boolean; participants?: readonly string[]; abortForced?: boolean; opsDigest?: string } = {},
): ParticipantEvent {
  return {
    type: 'prepare',
    requestId: opts.requestId ?? `prep-${txId}`,
    now: opts.now ?? 1_000,
    txId,
    coordinator: COORD,
    participants: opts.participants ?? [P1, P2, P3],
    ops,
    onePhase: opts.onePhase ?? false,
    ...(opts.abortForced === true ? { abortForced: true } : {}),
    ...(opts.opsDigest !== undefined && { opsDigest: opts.opsDigest }),
  };
}

export const yes = (txId: TxId, data: unknown = { writes: [] }, now = 1_010): ParticipantEvent => ({
  type: 'resourcePrepared',
  now,
  txId,
  vote: 'yes',
  data,
});

export const decide = (type: 'commit' | 'abort', txId: TxId, requestId = `${type}-${txId}`, now = 2_000): ParticipantEvent => ({
  type,
  requestId,
  now,
  txId,
});

export const timer = (id: string, now: number): ParticipantEvent => ({ type: 'timer', id, now });

/** Feeds events in order; returns the final state and the effects of the last event. */
export function run(state: ParticipantState, ...events: ParticipantEvent[]): { state: ParticipantState; effects: readonly ParticipantEffect[] } {
  let s = state;
  let effects: readonly ParticipantEffect[] = [];
  for (const e of events) {
    ({ state: s, effects } = step(s, e));
  }
  return { state: s, effects };
}

/** A prepared (voted yes) participant holding `keys`. */
export function preparedWith(txId: TxId, ops: readonly Op[], data: unknown = { writes: [] }, state = fresh()): ParticipantState {
  return run(state, prepare(txId, ops), yes(txId, data)).state;
}

export const kinds = (effects: readonly ParticipantEffect[]): string[] => effects.map((e) => e.kind);
export const withoutLogs = (effects: readonly ParticipantEffect[]): ParticipantEffect[] => effects.filter((e) => e.kind !== 'log');
export const persists = (effects: readonly ParticipantEffect[]) => effects.filter((e): e is Extract<ParticipantEffect, { kind: 'persist' }> => e.kind === 'persist');
