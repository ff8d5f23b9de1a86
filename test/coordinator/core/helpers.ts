/**
 * Drives the coordinator core by hand: each call feeds one event and returns
 * the exact effects, so tests read as a script of the protocol.
 */
import { expect } from 'vitest';
import { initialState, step } from '../../../coordinator/core/index.ts';
import type {
  CoordinatorConfig,
  CoordinatorEffect,
  CoordinatorEvent,
  CoordinatorRecord,
  CoordinatorSnapshot,
  CoordinatorState,
} from '../../../coordinator/core/index.ts';
import { asTxId, type Op, type TxId } from '../../../shared/types.ts';

export const P = { p1: 'http://p1.test', p2: 'http://p2.test', p3: 'http://p3.test' } as const;
export const SELF = 'http://coord.test';

export const baseConfig: CoordinatorConfig = {
  name: 'coordinator',
  selfUrl: SELF,
  participants: P,
  prepareTimeoutMs: 1_000,
  defaultTxTimeoutMs: 30_000,
  replyWaitMs: 2_000,
  resendBaseMs: 100,
  resendMaxMs: 800,
};

type EventInput = CoordinatorEvent extends infer E ? (E extends { now: number } ? Omit<E, 'now'> & { now?: number } : never) : never;

/** A coordinator under test: holds the state, feeds events, keeps the last effects. */
export class Harness {
  state: CoordinatorState;
  now = 1_000;
  private nextRequest = 1;

  constructor(config: Partial<CoordinatorConfig> = {}, recoverWith: { entries?: CoordinatorRecord[]; snapshot?: CoordinatorSnapshot } | null = {}) {
    this.state = initialState({ ...baseConfig, ...config });
    if (recoverWith) this.feed({ type: 'recover', entries: recoverWith.entries ?? [], ...(recoverWith.snapshot ? { snapshot: recoverWith.snapshot } : {}) });
  }

  feed(event: EventInput): readonly CoordinatorEffect[] {
    const result = step(this.state, { now: this.now, ...event } as CoordinatorEvent);
    this.state = result.state;
    return result.effects;
  }

  /** A fresh request id, like the runtime's. */
  rid(): string {
    return `r${this.nextRequest++}`;
  }

  /** Runs a transaction whole and returns its id and the effects. */
  runWhole(branches: { participant: string; ops: Op[] }[], timeoutMs?: number): { txId: TxId; requestId: string; effects: readonly CoordinatorEffect[] } {
    const requestId = this.rid();
    const txId = asTxId(`tx-${this.state.epoch}-${this.state.nextSeq}`);
    const effects = this.feed({ type: 'runWhole', requestId, branches, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    return { txId, requestId, effects };
  }
}

export const put = (key: string, value: unknown): Op => ({ op: 'put', key, value });
export const read = (key: string): Op => ({ op: 'read', key });

/** Only the effects of the given kinds, to focus an assertion. */
export function only<K extends CoordinatorEffect['kind']>(effects: readonly CoordinatorEffect[], ...kinds: K[]): Extract<CoordinatorEffect, { kind: K }>[] {
  return effects.filter((e): e is Extract<CoordinatorEffect, { kind: K }> => (kinds as string[]).includes(e.kind));
}

/** Effects minus the operator log lines, which the protocol assertions do not care about. */
export const noLogs = (effects: readonly CoordinatorEffect[]): CoordinatorEffect[] => effects.filter((e) => e.kind !== 'log');

export const persisted = (effects: readonly CoordinatorEffect[]): { record: CoordinatorRecord; sync: boolean }[] =>
  only(effects, 'persist').map((e) => ({ record: e.record, sync: e.sync }));

export function replyOf(effects: readonly CoordinatorEffect[], requestId: string): { status: number; body: unknown } {
  const r = only(effects, 'reply').find((e) => e.requestId === requestId);
  expect(r, `a reply to ${requestId}`).toBeDefined();
  return { status: r!.status, body: r!.body };
}

export const prepareMsg = (txId: string, to: keyof typeof P, participants: string[], ops: Op[], onePhase = false, timeoutMs = 1_000): CoordinatorEffect => ({
  kind: 'send',
  to,
  url: P[to],
  message: { type: 'prepare', body: { txId: asTxId(txId), coordinator: SELF, participants, ops, ...(onePhase ? { onePhase: true } : {}) } },
  timeoutMs,
});

export const decisionMsg = (txId: string, to: keyof typeof P, type: 'commit' | 'abort'): CoordinatorEffect => ({
  kind: 'send',
  to,
  url: P[to],
  message: { type, body: { txId: asTxId(txId) } },
});

export const ref = (name: keyof typeof P) => ({ name, url: P[name] });
