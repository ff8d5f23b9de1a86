import { describe, expect, it } from 'vitest';
import { getTx, listTx, step, type ParticipantEvent, type ParticipantState } from '../../../participant/core/index.ts';
import { jitteredMs } from '../../../shared/core.ts';
import type { TxId } from '../../../shared/types.ts';
import { COORD, P2, P3, fresh, kinds, persists, prepare, preparedWith, run, timer, tx, withoutLogs } from './helpers.ts';

const put = (key: string, value: unknown) => ({ op: 'put', key, value }) as const;
const data = { writes: [{ key: 'k', value: 1 }] };

const unreachable = (txId: TxId, now = 5_000): ParticipantEvent => ({
  type: 'inquiryFailed',
  now,
  txId,
  reason: 'unreachable',
  coordinatorReachable: false,
});
const peer = (txId: TxId, peerUrl: string, answer: 'committed' | 'aborted' | 'prepared' | 'unreachable', heuristic?: boolean): ParticipantEvent => ({
  type: 'peerAnswered',
  now: 6_000,
  txId,
  peerUrl,
  answer,
  ...(heuristic !== undefined && { heuristic }),
});

/** Prepared, the decision overdue, the first inquiry sent. */
function inquiring(): ParticipantState {
  return run(preparedWith(tx(1), [put('k', 1)], data), timer(`inquire:${tx(1)}`, 4_000)).state;
}

/** The same, under a given config. */
function inquiringWith(config: Parameters<typeof fresh>[0]): ParticipantState {
  const s = run(fresh(config), prepare(tx(1), [put('k', 1)]), { type: 'resourcePrepared', now: 1_010, txId: tx(1), vote: 'yes', data }).state;
  return step(s, timer(`inquire:${tx(1)}`, 4_000)).state;
}

describe('in doubt: asking the coordinator', () => {
  it('when the decision is overdue it asks the coordinator', () => {
    const r = step(preparedWith(tx(1), [put('k', 1)], data), timer(`inquire:${tx(1)}`, 4_000));
    expect(r.effects).toEqual([
      { kind: 'inquire', txId: tx(1), coordinator: COORD },
      { kind: 'log', step: 'inquire', txId: tx(1), fields: { attempt: 1, coordinator: COORD } },
    ]);
  });

  it('the outcome learned from the coordinator settles it like a commit message would', () => {
    const r = step(inquiring(), { type: 'outcomeLearned', now: 5_000, txId: tx(1), outcome: 'committed' });
    expect(withoutLogs(r.effects)).toEqual([
      { kind: 'cancelTimer', id: `inquire:${tx(1)}` },
      { kind: 'crashPoint', point: 'participant.before-commit-logged' },
      { kind: 'persist', record: { type: 'COMMITTED', txId: tx(1), at: 5_000 }, sync: true },
      { kind: 'crashPoint', point: 'participant.after-commit-logged' },
      { kind: 'resourceCommit', txId: tx(1), data, keys: ['k'] },
    ]);
    expect(r.state.locks.size).toBe(0);
  });

  it('a live coordinator without a decision is asked again later, with capped backoff, and peers are not asked', () => {
    let s = fresh({ inquiryBackoffBaseMs: 100, inquiryBackoffMaxMs: 300 });
    s = run(s, prepare(tx(1), [put('k', 1)]), { type: 'resourcePrepared', now: 1_010, txId: tx(1), vote: 'yes', data }).state;
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      s = step(s, timer(`inquire:${tx(1)}`, 4_000 + i)).state;
      const r = step(s, { type: 'inquiryFailed', now: 4_000 + i, txId: tx(1), reason: 'pending', coordinatorReachable: true });
      expect(kinds(r.effects)).toEqual(['setTimer', 'log']);
      const t = r.effects[0];
      if (t?.kind === 'setTimer') waits.push(t.ms);
      s = r.state;
    }
    // Capped exponential backoff (100, 200, 300, 300), each cut to a point in its upper half by the
    // txId and attempt, so transactions that failed together do not retry together.
    const caps = [100, 200, 300, 300];
    waits.forEach((w, i) => {
      expect(w).toBeGreaterThanOrEqual((caps[i] as number) / 2);
      expect(w).toBeLessThanOrEqual(caps[i] as number);
    });
    expect(waits).toEqual(caps.map((c, i) => jitteredMs(c, `${tx(1)}#${i + 1}`)));
  });

  it('in-doubt transactions that fail together spread their next inquiries over the upper half of the backoff', () => {
    const waits = new Set<number>();
    for (let n = 1; n <= 200; n++) {
      let s = fresh({ inquiryBackoffBaseMs: 10_000, inquiryBackoffMaxMs: 10_000 });
      s = run(s, prepare(tx(n), [put('k', 1)]), { type: 'resourcePrepared', now: 1_010, txId: tx(n), vote: 'yes', data }).state;
      s = step(s, timer(`inquire:${tx(n)}`, 4_000)).state;
      const t = step(s, { type: 'inquiryFailed', now: 4_000, txId: tx(n), reason: 'down', coordinatorReachable: true }).effects[0];
      if (t?.kind !== 'setTimer') throw new Error('expected the retry timer first');
      expect(t.ms).toBeGreaterThanOrEqual(5_000);
      expect(t.ms).toBeLessThanOrEqual(10_000);
      waits.add(Math.floor(t.ms / 500));
    }
    // 200 transactions land in at least 9 of the 11 half-second slots between 5 s and 10 s.
    expect(waits.size).toBeGreaterThanOrEqual(9);
  });
});

describe('in doubt: cooperative termination', () => {
  it('a silent coordinator sends it to every peer but itself', () => {
    const r = step(inquiring(), unreachable(tx(1)));
    expect(withoutLogs(r.effects)).toEqual([
      { kind: 'setTimer', id: `inquire:${tx(1)}`, ms: jitteredMs(250, `${tx(1)}#1`) },
      { kind: 'askPeer', txId: tx(1), peerUrl: P2 },
      { kind: 'askPeer', txId: tx(1), peerUrl: P3 },
    ]);
  });

  it('a peer that committed settles it as committed', () => {
    const s = step(inquiring(), unreachable(tx(1))).state;
    const r = step(s, peer(tx(1), P2, 'committed'));
    expect(withoutLogs(r.effects)).toContainEqual({ kind: 'persist', record: { type: 'COMMITTED', txId: tx(1), at: 6_000 }, sync: true });
    expect(r.effects).toContainEqual({ kind: 'log', step: 'committed', txId: tx(1), fields: { via: `peer ${P2}` } });
    expect(getTx(r.state, tx(1)).state).toBe('committed');
  });

  it('a peer that aborted (or promised never to vote yes) settles it as aborted', () => {
    const s = step(inquiring(), unreachable(tx(1))).state;
    const r = step(s, peer(tx(1), P3, 'aborted'));
    expect(r.effects).toContainEqual({ kind: 'resourceAbort', txId: tx(1), data, keys: ['k'] });
    expect(getTx(r.state, tx(1)).state).toBe('aborted');
  });

  it('a peer that never voted promises never to: a forced tombstone before the answer, and its late prepare votes no', () => {
    const r = step(fresh(), { type: 'peerInquiry', requestId: 'q', now: 6_000, txId: tx(1) });
    const reason = 'a peer asked before this participant voted; it promised never to vote yes';
    expect(withoutLogs(r.effects)).toEqual([
      { kind: 'crashPoint', point: 'participant.before-abort-logged' },
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 6_000, reason }, sync: true },
      { kind: 'crashPoint', point: 'participant.after-abort-logged' },
      { kind: 'reply', requestId: 'q', status: 200, body: { txId: tx(1), state: 'aborted' }, txId: tx(1) },
    ]);
    const late = step(r.state, prepare(tx(1), [put('k', 1)], { now: 7_000 }));
    expect(withoutLogs(late.effects)).toEqual([{ kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'no', reason } }]);
  });

  it('a peer asked while its own prepare is still waiting aborts that prepare and answers aborted', () => {
    const s1 = preparedWith(tx(1), [put('k', 1)], data);
    const s2 = step(s1, prepare(tx(2), [put('k', 2)])).state;
    const r = step(s2, { type: 'peerInquiry', requestId: 'q', now: 6_000, txId: tx(2) });
    expect(persists(r.effects)).toEqual([
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(2), at: 6_000, reason: expect.stringContaining('promised') as unknown }, sync: true },
    ]);
    expect(r.effects.filter((e) => e.kind === 'reply').map((e) => e.kind === 'reply' && e.body)).toEqual([
      { vote: 'no', reason: 'a peer asked before this participant voted; it promised never to vote yes' },
      { txId: tx(2), state: 'aborted' },
    ]);
  });

  it('a prepared peer answers prepared and logs nothing', () => {
    const r = step(preparedWith(tx(1), [put('k', 1)], data), { type: 'peerInquiry', requestId: 'q', now: 6_000, txId: tx(1) });
    expect(r.effects).toEqual([{ kind: 'reply', requestId: 'q', status: 200, body: { txId: tx(1), state: 'prepared' } }]);
  });

  it('when every peer is prepared too it stays blocked, holding its locks, and says so', () => {
    let s = step(inquiring(), unreachable(tx(1))).state;
    s = step(s, peer(tx(1), P2, 'prepared')).state;
    // A heuristic answer is no evidence of the decision.
    const r = step(s, peer(tx(1), P3, 'committed', true));
    const reason = 'every peer is prepared too: only the coordinator knows the outcome';
    expect(r.effects).toEqual([{ kind: 'log', step: 'blocked', txId: tx(1), fields: { reason, keys: ['k'] } }]);
    expect(r.state.locks.get('k')).toBe(tx(1));
    expect(getTx(r.state, tx(1)).state).toBe('prepared');
    expect(listTx(r.state, 16_000).transactions[0]).toMatchObject({ txId: tx(1), blocked: reason, blockedMs: 14_990, keys: ['k'] });

    // A commit from the coordinator still settles it.
    const settled = step(r.state, { type: 'commit', requestId: 'c', now: 8_000, txId: tx(1) });
    expect(getTx(settled.state, tx(1)).state).toBe('committed');
  });

  it('peers that said "prepared too" are asked again only after preparedPeerReaskMs, and what they learned meanwhile still settles it', () => {
    // Round one at 5,000 asks both; both are prepared too.
    let s = step(inquiringWith({ preparedPeerReaskMs: 30_000 }), unreachable(tx(1), 5_000)).state;
    s = step(s, peer(tx(1), P2, 'prepared')).state;
    s = step(s, peer(tx(1), P3, 'prepared')).state;
    // The rounds within the interval ask the coordinator only (the retry timer, its log): no peer.
    for (const now of [7_000, 20_000, 34_999]) {
      const r = step(s, unreachable(tx(1), now));
      expect(kinds(r.effects)).toEqual(['setTimer', 'log']);
      s = r.state;
    }
    expect(listTx(s, 34_999).transactions[0]).toMatchObject({ txId: tx(1), blocked: 'every peer is prepared too: only the coordinator knows the outcome' });
    // Thirty seconds after they were asked, both are asked again; one has learned the outcome since.
    const again = step(s, unreachable(tx(1), 35_000));
    expect(again.effects.filter((e) => e.kind === 'askPeer')).toEqual([
      { kind: 'askPeer', txId: tx(1), peerUrl: P2 },
      { kind: 'askPeer', txId: tx(1), peerUrl: P3 },
    ]);
    const settled = step(again.state, peer(tx(1), P3, 'committed'));
    expect(getTx(settled.state, tx(1)).state).toBe('committed');
    // And the interval runs from that round: the next one within it asks nobody.
    const s2 = step(step(again.state, peer(tx(1), P2, 'prepared')).state, peer(tx(1), P3, 'prepared')).state;
    expect(step(s2, unreachable(tx(1), 40_000)).effects.filter((e) => e.kind === 'askPeer')).toEqual([]);
    expect(step(s2, unreachable(tx(1), 65_000)).effects.filter((e) => e.kind === 'askPeer')).toHaveLength(2);
  });

  it('a peer that did not answer is asked every round while one that said "prepared too" waits its interval', () => {
    let s = step(inquiringWith({ preparedPeerReaskMs: 30_000 }), unreachable(tx(1), 5_000)).state;
    s = step(s, peer(tx(1), P2, 'prepared')).state;
    s = step(s, peer(tx(1), P3, 'unreachable')).state;
    const r = step(s, unreachable(tx(1), 7_000));
    expect(r.effects.filter((e) => e.kind === 'askPeer')).toEqual([{ kind: 'askPeer', txId: tx(1), peerUrl: P3 }]);
    // P3, asked again, knows the outcome now.
    expect(getTx(step(r.state, peer(tx(1), P3, 'aborted')).state, tx(1)).state).toBe('aborted');
  });

  it('a round that asks no peer (all still to answer) leaves the interval counted from the round that asked', () => {
    // Round one at 5,000 asks both; neither has answered by the round at 36,000, which asks nobody.
    let s = step(inquiringWith({ preparedPeerReaskMs: 30_000 }), unreachable(tx(1), 5_000)).state;
    const quiet = step(s, unreachable(tx(1), 36_000));
    expect(quiet.effects.filter((e) => e.kind === 'askPeer')).toEqual([]);
    s = step(step(quiet.state, peer(tx(1), P2, 'prepared')).state, peer(tx(1), P3, 'prepared')).state;
    // 30 s after the round that asked them, both are asked again: the quiet round did not restart the interval.
    expect(step(s, unreachable(tx(1), 40_000)).effects.filter((e) => e.kind === 'askPeer')).toHaveLength(2);
  });

  it('an unreachable peer does not count as prepared, and is asked again next round', () => {
    let s = step(inquiring(), unreachable(tx(1))).state;
    s = step(s, peer(tx(1), P2, 'prepared')).state;
    const r = step(s, peer(tx(1), P3, 'unreachable'));
    expect(r.effects).toEqual([]);
    // The unreachable peer is asked again next round; the prepared one waits (preparedPeerReaskMs).
    const next = step(r.state, unreachable(tx(1), 7_000));
    expect(next.effects.filter((e) => e.kind === 'askPeer')).toEqual([{ kind: 'askPeer', txId: tx(1), peerUrl: P3 }]);
  });

  it('a participant with no peers and a silent coordinator is blocked', () => {
    let s = run(fresh(), prepare(tx(1), [put('k', 1)], { participants: [] }), { type: 'resourcePrepared', now: 1_010, txId: tx(1), vote: 'yes', data }).state;
    s = step(s, timer(`inquire:${tx(1)}`, 4_000)).state;
    const r = step(s, unreachable(tx(1)));
    expect(r.effects).toContainEqual({
      kind: 'log',
      step: 'blocked',
      txId: tx(1),
      fields: { reason: 'the coordinator is unreachable and there is no peer to ask', keys: ['k'] },
    });
  });

  it('never promises about a transaction it may have forgotten: a peer hears "unknown", a late prepare votes no', () => {
    // Remember one outcome at a time: settling tx-1-2 forgets tx-1-1.
    let s = fresh({ outcomesMax: 1 });
    for (const n of [1, 2]) s = run(s, prepare(tx(n), [put(`k${n}`, 1)], { onePhase: true }), { type: 'resourcePrepared', now: 1_010, txId: tx(n), vote: 'yes', data }).state;
    const asked = step(s, { type: 'peerInquiry', requestId: 'q', now: 6_000, txId: tx(1) });
    expect(asked.effects).toEqual([{ kind: 'reply', requestId: 'q', status: 200, body: { txId: tx(1), state: 'unknown' } }]);
    const late = step(s, prepare(tx(0), [put('z', 1)]));
    expect(withoutLogs(late.effects)).toEqual([
      { kind: 'reply', requestId: `prep-${tx(0)}`, status: 200, body: { vote: 'no', reason: `${tx(0)} is older than what this participant still remembers` } },
    ]);
    // A newer id is still answered with a promise.
    expect(persists(step(s, { type: 'peerInquiry', requestId: 'q', now: 6_000, txId: tx(3) }).effects)).toHaveLength(1);
  });
});
