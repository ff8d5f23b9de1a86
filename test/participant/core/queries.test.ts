/**
 * The read-only views of the participant state (queries.ts), the wire-to-event mapping
 * (events.ts) and the config checks (state.ts), each asserted field by field: these are
 * what GET /v1/2pc/transactions, a checkpoint and the routes hand on, so an extra, a
 * missing or a wrong field is a bug a caller sees.
 */
import { describe, expect, it } from 'vitest';
import { checkpointOf, getTx, inDoubtCount, listTx, lockHolder, prepareEvent, resolveConfig, step, CONFIG_DEFAULTS } from '../../../participant/core/index.ts';
import type { LiveTx, OutcomeEntry, ParticipantState, PreparedTx } from '../../../participant/core/index.ts';
import { noOutcomes, putOutcome } from '../../../participant/core/outcomes.ts';
import { kvKeysOf } from '../../../participant/resources/kv.ts';
import { asTxId, type TxId } from '../../../shared/types.ts';
import { COORD, P1, P2, decide, fresh, prepare, tx, yes } from './helpers.ts';

function preparedTx(n: number, at: number, extra: Partial<PreparedTx> = {}): PreparedTx {
  return {
    phase: 'prepared',
    txId: tx(n),
    coordinator: COORD,
    participants: [P1, P2],
    keys: [`k${n}`],
    data: { n },
    preparedAt: at,
    inquiries: 0,
    inquiryInFlight: false,
    peers: {},
    ...extra,
  };
}

function pendingTx(n: number, phase: 'waiting' | 'preparing'): LiveTx {
  return {
    phase,
    txId: tx(n),
    coordinator: COORD,
    participants: [P1],
    ops: [],
    keys: [`k${n}`],
    onePhase: false,
    requestIds: [],
    arrivedAt: 1,
    cancelled: false,
  };
}

function stateWith(txs: LiveTx[], outcomes: [TxId, OutcomeEntry][] = [], waiting: TxId[] = []): ParticipantState {
  const base = fresh();
  let o = noOutcomes(base.config.outcomesMax);
  for (const [id, entry] of outcomes) o = putOutcome(o, id, entry);
  return { ...base, txs: new Map(txs.map((t) => [t.txId, t])), locks: new Map([['k1', tx(1)]]), waiting, outcomes: o };
}

describe('getTx', () => {
  it('answers a remembered outcome with its time, and the heuristic only when there is one', () => {
    const s = stateWith([], [
      [tx(1), { outcome: 'committed', at: 10 }],
      [tx(2), { outcome: 'aborted', at: 20, heuristic: 'aborted' }],
    ]);
    expect(getTx(s, tx(1))).toStrictEqual({ txId: tx(1), state: 'committed', since: 10 });
    expect(getTx(s, tx(2))).toStrictEqual({ txId: tx(2), state: 'aborted', since: 20, heuristic: 'aborted' });
  });

  it('answers prepared with the prepare time; a transaction that has not voted, or is unknown, is unknown', () => {
    const s = stateWith([preparedTx(1, 500), pendingTx(2, 'preparing'), pendingTx(3, 'waiting')]);
    expect(getTx(s, tx(1))).toStrictEqual({ txId: tx(1), state: 'prepared', since: 500 });
    expect(getTx(s, tx(2))).toStrictEqual({ txId: tx(2), state: 'unknown' });
    expect(getTx(s, tx(3))).toStrictEqual({ txId: tx(3), state: 'unknown' });
    expect(getTx(s, tx(9))).toStrictEqual({ txId: tx(9), state: 'unknown' });
  });

  it('prefers the remembered outcome over a live entry of the same id', () => {
    const s = stateWith([preparedTx(1, 500)], [[tx(1), { outcome: 'aborted', at: 700 }]]);
    expect(getTx(s, tx(1))).toStrictEqual({ txId: tx(1), state: 'aborted', since: 700 });
  });
});

describe('listTx', () => {
  it('lists only prepared transactions, longest blocked first, every field exact', () => {
    const s = stateWith([
      pendingTx(5, 'waiting'),
      preparedTx(2, 800, { inquiries: 3, blocked: 'every peer is prepared too' }),
      preparedTx(1, 300),
      pendingTx(6, 'preparing'),
    ]);
    expect(listTx(s, 1_000)).toStrictEqual({
      transactions: [
        { txId: tx(1), state: 'prepared', since: 300, blockedMs: 700, keys: ['k1'], coordinator: COORD, participants: [P1, P2], inquiries: 0 },
        {
          txId: tx(2),
          state: 'prepared',
          since: 800,
          blockedMs: 200,
          keys: ['k2'],
          coordinator: COORD,
          participants: [P1, P2],
          inquiries: 3,
          blocked: 'every peer is prepared too',
        },
      ],
    });
  });

  it('breaks a tie in prepare time by txId, and never reports a negative blocked time', () => {
    const s = stateWith([preparedTx(3, 500), preparedTx(1, 500), preparedTx(2, 500)]);
    const listed = listTx(s, 400).transactions;
    expect(listed.map((t) => t.txId)).toEqual([tx(1), tx(2), tx(3)]);
    expect(listed.map((t) => t.blockedMs)).toEqual([0, 0, 0]);
    expect(listTx(stateWith([]), 0)).toStrictEqual({ transactions: [] });
  });
});

describe('lockHolder and inDoubtCount', () => {
  it('name the holder of a key and count only the prepared', () => {
    const s = stateWith([preparedTx(1, 1), preparedTx(2, 2), pendingTx(3, 'preparing'), pendingTx(4, 'waiting')]);
    expect(lockHolder(s, 'k1')).toBe(tx(1));
    expect(lockHolder(s, 'free')).toBeUndefined();
    expect(inDoubtCount(s)).toBe(2);
    expect(inDoubtCount(stateWith([pendingTx(3, 'preparing')]))).toBe(0);
  });

  it('inDoubtCount follows the steps without scanning, and a state whose txs was replaced is counted afresh', () => {
    const scan = (s: ParticipantState) => [...s.txs.values()].filter((t) => t.phase === 'prepared').length;
    const states = [fresh()];
    const put = (key: string) => ({ op: 'put' as const, key, value: 1 });
    const events = [prepare(tx(1), [put('a')]), yes(tx(1)), prepare(tx(2), [put('b')]), yes(tx(2)), prepare(tx(3), [put('c')]), decide('commit', tx(1)), decide('abort', tx(2))];
    for (const e of events) states.push(step(states.at(-1) as ParticipantState, e).state);
    expect(states.map(inDoubtCount)).toEqual([0, 0, 1, 1, 2, 2, 1, 0]);
    expect(states.map(inDoubtCount)).toEqual(states.map(scan));
    // The count is kept with the txs it counts: the same state with other txs is not misread.
    const counted = states[4] as ParticipantState;
    expect(inDoubtCount({ ...counted, txs: new Map([[tx(9), preparedTx(9, 1)]]) })).toBe(1);
    expect(inDoubtCount({ ...counted, txs: new Map() })).toBe(0);
  });
});

describe('checkpointOf', () => {
  it('stores the resource snapshot, every prepared transaction in order with its flags, and the outcomes', () => {
    const s = stateWith(
      [preparedTx(2, 900, { abortForced: true, opsDigest: 'd2', inquiries: 4, blocked: 'x' }), preparedTx(1, 100), pendingTx(3, 'waiting')],
      [[tx(7), { outcome: 'committed', at: 50 }]],
    );
    expect(checkpointOf(s, { store: 1 })).toStrictEqual({
      version: 1,
      resource: { store: 1 },
      prepared: [
        { txId: tx(1), coordinator: COORD, participants: [P1, P2], keys: ['k1'], data: { n: 1 }, at: 100 },
        { txId: tx(2), coordinator: COORD, participants: [P1, P2], keys: ['k2'], data: { n: 2 }, at: 900, abortForced: true, opsDigest: 'd2' },
      ],
      outcomes: [[tx(7), { outcome: 'committed', at: 50 }]],
    });
  });

  it('carries the forget horizon only once something was forgotten', () => {
    const small = { ...fresh({ outcomesMax: 1 }) };
    let o = small.outcomes;
    o = putOutcome(o, asTxId('tx-3-4'), { outcome: 'committed', at: 1 });
    expect(checkpointOf({ ...small, outcomes: o }, null)).not.toHaveProperty('forgotten');
    o = putOutcome(o, asTxId('tx-3-5'), { outcome: 'aborted', at: 2 });
    expect(checkpointOf({ ...small, outcomes: o }, null)).toMatchObject({
      outcomes: [[asTxId('tx-3-5'), { outcome: 'aborted', at: 2 }]],
      forgotten: { any: true, highest: [3, 4] },
    });
  });
});

describe('prepareEvent', () => {
  it('maps a prepare request to the core event: URLs trimmed, defaults filled, the presumption read', () => {
    const body = { txId: tx(1), coordinator: `${COORD}/`, participants: [`${P1}/`, P2] };
    expect(prepareEvent(body, 'r1', 42)).toStrictEqual({
      type: 'prepare',
      requestId: 'r1',
      now: 42,
      txId: tx(1),
      coordinator: COORD,
      participants: [P1, P2],
      ops: [],
      onePhase: false,
      abortForced: false,
    });
    const ops = [{ op: 'put' as const, key: 'a', value: 1 }];
    expect(prepareEvent({ ...body, ops, onePhase: true, protocol: 'presumed-commit' }, 'r2', 43, 'digest')).toStrictEqual({
      type: 'prepare',
      requestId: 'r2',
      now: 43,
      txId: tx(1),
      coordinator: COORD,
      participants: [P1, P2],
      ops,
      onePhase: true,
      abortForced: true,
      opsDigest: 'digest',
    });
    expect(prepareEvent({ ...body, protocol: 'presumed-nothing' }, 'r3', 44).abortForced).toBe(false);
  });
});

describe('resolveConfig', () => {
  it('fills the defaults, keeps what is given, and trims selfUrl', () => {
    const c = resolveConfig({ keysOf: kvKeysOf, selfUrl: `${P1}/`, lockWaitMs: 7, decisionWaitMs: undefined });
    expect(c).toStrictEqual({ ...CONFIG_DEFAULTS, lockWaitMs: 7, keysOf: kvKeysOf, selfUrl: P1 });
    expect(resolveConfig({ keysOf: kvKeysOf }).selfUrl).toBeUndefined();
    expect(resolveConfig({ keysOf: kvKeysOf, lockWaitMs: 0 }).lockWaitMs).toBe(0);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a negative number', { lockWaitMs: -1 }, 'Expected `lockWaitMs` to be a non-negative integer, got -1.'],
    ['a fraction', { decisionWaitMs: 1.5 }, 'Expected `decisionWaitMs` to be a non-negative integer, got 1.5.'],
    ['a string', { opsPerTxMax: '5' }, 'Expected `opsPerTxMax` to be a non-negative integer, got 5.'],
    ['an unsafe integer', { keysPerTxMax: 2 ** 53 }, `Expected \`keysPerTxMax\` to be a non-negative integer, got ${2 ** 53}.`],
    ['a zero outcome memory', { outcomesMax: 0 }, 'Expected `outcomesMax` to be at least 1.'],
    ['no keysOf function', { keysOf: 'keys' }, 'Expected `keysOf` to be a function.'],
  ])('refuses %s with a message naming the field', (_what, bad, message) => {
    expect(() => resolveConfig({ keysOf: kvKeysOf, ...bad } as never)).toThrow(new Error(message));
  });
});
