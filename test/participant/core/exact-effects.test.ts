/**
 * Whole effect lists, one event at a time, for the participant's step paths that the other core
 * tests check only in part: a retried or refused prepare, a waiter's timeout, the decisions that
 * find nothing to decide, the inquiry loop and cooperative termination, and the operator's
 * refusals. Each list is compared whole, so an effect too many, one missing or one field changed
 * (a log line's fields, an error text a client or an operator reads, a persist's `sync`) fails.
 */
import { describe, expect, it } from 'vitest';
import { backoffMs, jitteredMs } from '../../../shared/core.ts';
import { step, type ParticipantEffect, type ParticipantEvent, type ParticipantState } from '../../../participant/core/index.ts';
import { COORD, P1, P2, P3, decide, fresh, prepare, preparedWith, run, timer, tx, yes } from './helpers.ts';

const put = (key: string) => ({ op: 'put', key, value: 1 }) as const;
const log = (stepName: string, txId: string, fields?: Record<string, unknown>): ParticipantEffect =>
  fields === undefined ? ({ kind: 'log', step: stepName, txId } as ParticipantEffect) : ({ kind: 'log', step: stepName, txId, fields } as ParticipantEffect);
const fail = (requestId: string, status: number, code: string, message: string): ParticipantEffect => ({
  kind: 'reply',
  requestId,
  status,
  body: { error: { code, message } },
});
const crash = (point: string): ParticipantEffect => ({ kind: 'crashPoint', point });

/** The effects of one event, and the state it leaves. */
const fx = (s: ParticipantState, e: ParticipantEvent) => step(s, e);

describe('prepare: retries, other work, and a full wait queue', () => {
  it('a retry without a digest counts as the same work, before the vote and after it', () => {
    const preparing = run(fresh(), prepare(tx(1), [put('a')], { opsDigest: 'd1' })).state;
    const retry = fx(preparing, prepare(tx(1), [put('a')], { requestId: 'again' }));
    expect(retry.effects).toStrictEqual([]);
    expect(retry.state.txs.get(tx(1))).toMatchObject({ phase: 'preparing', requestIds: [`prep-${tx(1)}`, 'again'] });
    const prepared = run(preparing, yes(tx(1))).state;
    expect(fx(prepared, prepare(tx(1), [put('a')], { requestId: 'later' })).effects).toStrictEqual([
      { kind: 'reply', requestId: 'later', status: 200, body: { vote: 'yes' } },
    ]);
  });

  it('a retry with a digest of work prepared without one is the same work too', () => {
    const prepared = preparedWith(tx(1), [put('a')]);
    expect(fx(prepared, prepare(tx(1), [put('a')], { requestId: 'later', opsDigest: 'd2' })).effects).toStrictEqual([
      { kind: 'reply', requestId: 'later', status: 200, body: { vote: 'yes' } },
    ]);
  });

  it('refuses other work under a known id with a 409 and a protocol-violation line, live or settled', () => {
    const violation = log('protocol-violation', tx(1), { message: 'prepare with other ops than the one already prepared here' });
    const refusal = fail('other', 409, 'conflict', `${tx(1)} was already prepared here with different ops; a prepare must not reuse a txId for other work.`);
    const prepared = run(fresh(), prepare(tx(1), [put('a')], { opsDigest: 'd1' }), yes(tx(1))).state;
    const live = fx(prepared, prepare(tx(1), [put('b')], { requestId: 'other', opsDigest: 'd2' }));
    expect(live.effects).toStrictEqual([violation, refusal]);
    expect(live.state).toBe(prepared);
    const settled = run(prepared, decide('commit', tx(1))).state;
    expect(fx(settled, prepare(tx(1), [put('b')], { requestId: 'other', opsDigest: 'd2' })).effects).toStrictEqual([violation, refusal]);
  });

  it('answers a duplicate prepare of a settled transaction with its vote, and logs the outcome it found', () => {
    const committed = run(preparedWith(tx(1), [put('a')]), decide('commit', tx(1))).state;
    expect(fx(committed, prepare(tx(1), [put('a')], { requestId: 'dup' })).effects).toStrictEqual([
      log('duplicate-prepare', tx(1), { outcome: 'committed' }),
      { kind: 'reply', requestId: 'dup', status: 200, body: { vote: 'yes' } },
    ]);
    const aborted = run(preparedWith(tx(1), [put('a')]), decide('abort', tx(1))).state;
    expect(fx(aborted, prepare(tx(1), [put('a')], { requestId: 'dup', onePhase: true })).effects).toStrictEqual([
      log('duplicate-prepare', tx(1), { outcome: 'aborted' }),
      { kind: 'reply', requestId: 'dup', status: 200, body: { vote: 'no', reason: `${tx(1)} is already aborted here` } },
    ]);
  });

  it('with lockWaitMs 0, a conflicting prepare votes no at once, unforced, and holds nothing', () => {
    const s = preparedWith(tx(1), [put('a')], undefined, fresh({ lockWaitMs: 0 }));
    const r = fx(s, prepare(tx(2), [put('a')]));
    const reason = `key a locked by ${tx(1)}`;
    expect(r.effects).toStrictEqual([
      crash('participant.before-abort-logged'),
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(2), at: 1_000, reason }, sync: false },
      crash('participant.after-abort-logged'),
      { kind: 'reply', requestId: `prep-${tx(2)}`, status: 200, body: { vote: 'no', reason } },
      log('vote-no', tx(2), { reason }),
      { kind: 'cancelTimer', id: `lock:${tx(2)}` },
    ]);
    expect(r.state.txs.has(tx(2))).toBe(false);
    expect(r.state.waiting).toStrictEqual([]);
  });
});

describe('resource answers and decisions that find nothing to act on', () => {
  it('logs a resource answer for a transaction that is not preparing, and changes nothing', () => {
    const s = preparedWith(tx(1), [put('a')]);
    for (const txId of [tx(1), tx(9)]) {
      const r = fx(s, { type: 'resourcePrepared', now: 1_500, txId, vote: 'yes', data: {} });
      expect(r.effects).toStrictEqual([log('stale-resource-answer', txId, { vote: 'yes' })]);
      expect(r.state).toBe(s);
    }
  });

  it('a resource NO without a reason votes no with the default reason, and frees the keys', () => {
    const s = run(fresh(), prepare(tx(1), [put('a')])).state;
    const reason = 'the resource voted no';
    const r = fx(s, { type: 'resourcePrepared', now: 1_010, txId: tx(1), vote: 'no' });
    expect(r.effects).toStrictEqual([
      crash('participant.before-abort-logged'),
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 1_010, reason }, sync: false },
      crash('participant.after-abort-logged'),
      { kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'no', reason } },
      log('vote-no', tx(1), { reason }),
    ]);
    expect(r.state.locks.size).toBe(0);
    expect(r.state.txs.size).toBe(0);
  });

  it('a one-phase yes commits at once: the record with its digest, then the resource, the reply and one line', () => {
    const s = run(fresh(), prepare(tx(1), [put('a')], { onePhase: true, opsDigest: 'd1' })).state;
    const r = fx(s, yes(tx(1), { w: 1 }));
    expect(r.effects).toStrictEqual([
      crash('participant.after-resource-prepared'),
      crash('participant.before-commit-logged'),
      { kind: 'persist', record: { type: 'COMMITTED', txId: tx(1), at: 1_010, data: { w: 1 }, onePhase: true, opsDigest: 'd1' }, sync: true },
      crash('participant.after-commit-logged'),
      { kind: 'resourceCommit', txId: tx(1), data: { w: 1 }, keys: ['a'] },
      { kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'yes', state: 'committed' }, txId: tx(1) },
      log('committed', tx(1), { via: 'one-phase' }),
    ]);
  });

  it('a commit before the vote is a protocol violation, refused with a 409, and the prepare goes on', () => {
    const s = run(fresh(), prepare(tx(1), [put('a')])).state;
    const r = fx(s, decide('commit', tx(1), 'c1'));
    expect(r.effects).toStrictEqual([
      log('protocol-violation', tx(1), { message: 'commit before this participant voted yes' }),
      fail('c1', 409, 'conflict', `${tx(1)} has not voted yes here, so it cannot be committed.`),
    ]);
    expect(r.state).toBe(s);
  });

  it('a commit of an unknown transaction is a 404 naming it', () => {
    expect(fx(fresh(), decide('commit', tx(3), 'c1')).effects).toStrictEqual([
      fail('c1', 404, 'not_found', `No prepared transaction ${tx(3)} here (never prepared, or long forgotten).`),
    ]);
  });

  it('commits a prepared transaction for the coordinator: the line says so', () => {
    const s = preparedWith(tx(1), [put('a')]);
    const r = fx(s, decide('commit', tx(1), 'c1'));
    expect(r.effects).toStrictEqual([
      { kind: 'cancelTimer', id: `inquire:${tx(1)}` },
      crash('participant.before-commit-logged'),
      { kind: 'persist', record: { type: 'COMMITTED', txId: tx(1), at: 2_000 }, sync: true },
      crash('participant.after-commit-logged'),
      { kind: 'resourceCommit', txId: tx(1), data: { writes: [] }, keys: ['a'] },
      { kind: 'reply', requestId: 'c1', status: 200, body: { txId: tx(1), state: 'committed' }, txId: tx(1) },
      log('committed', tx(1), { via: 'coordinator' }),
    ]);
  });

  it('aborts a prepared transaction for the coordinator: the line says so', () => {
    const s = preparedWith(tx(1), [put('a')]);
    const r = fx(s, decide('abort', tx(1), 'a1'));
    expect(r.effects).toStrictEqual([
      { kind: 'cancelTimer', id: `inquire:${tx(1)}` },
      crash('participant.before-abort-logged'),
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 2_000 }, sync: false },
      crash('participant.after-abort-logged'),
      { kind: 'resourceAbort', txId: tx(1), data: { writes: [] }, keys: ['a'] },
      { kind: 'reply', requestId: 'a1', status: 200, body: { txId: tx(1), state: 'aborted' }, txId: tx(1) },
      log('aborted', tx(1), { via: 'coordinator' }),
    ]);
  });

  it('an abort while the resource prepares votes no unforced, keeps the locks until the resource answers, and replies once', () => {
    const s = run(fresh(), prepare(tx(1), [put('a')])).state;
    const reason = 'aborted by the coordinator before the vote';
    const r = fx(s, decide('abort', tx(1), 'a1'));
    expect(r.effects).toStrictEqual([
      crash('participant.before-abort-logged'),
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 2_000, reason }, sync: false },
      crash('participant.after-abort-logged'),
      { kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'no', reason } },
      log('vote-no', tx(1), { reason }),
      { kind: 'reply', requestId: 'a1', status: 200, body: { txId: tx(1), state: 'aborted' }, txId: tx(1) },
    ]);
    expect(r.state.locks.get('a')).toBe(tx(1));
  });
});

describe('timers', () => {
  it('a lock wait that times out votes no, naming the key still held, unforced', () => {
    const s = run(preparedWith(tx(1), [put('a')]), prepare(tx(2), [put('a')])).state;
    const reason = `key a locked by ${tx(1)}`;
    const r = fx(s, timer(`lock:${tx(2)}`, 1_100));
    expect(r.effects).toStrictEqual([
      crash('participant.before-abort-logged'),
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(2), at: 1_100, reason }, sync: false },
      crash('participant.after-abort-logged'),
      { kind: 'reply', requestId: `prep-${tx(2)}`, status: 200, body: { vote: 'no', reason } },
      log('vote-no', tx(2), { reason }),
      { kind: 'cancelTimer', id: `lock:${tx(2)}` },
    ]);
    expect(r.state.waiting).toStrictEqual([]);
  });

  it('a lock timer for a transaction that no longer waits, or an inquiry timer for one not prepared, does nothing', () => {
    const s = run(preparedWith(tx(1), [put('a')]), prepare(tx(2), [put('b')])).state;
    for (const id of [`lock:${tx(1)}`, `lock:${tx(2)}`, `lock:${tx(9)}`, `inquire:${tx(2)}`, `inquire:${tx(9)}`, `other:${tx(1)}`]) {
      const r = fx(s, timer(id, 5_000));
      expect(r.effects, id).toStrictEqual([]);
      expect(r.state, id).toBe(s);
    }
  });

  it('the inquiry timer asks the coordinator once; it fires again only after the answer failed', () => {
    const s = preparedWith(tx(1), [put('a')]);
    const first = fx(s, timer(`inquire:${tx(1)}`, 2_010));
    expect(first.effects).toStrictEqual([
      { kind: 'inquire', txId: tx(1), coordinator: COORD },
      log('inquire', tx(1), { attempt: 1, coordinator: COORD }),
    ]);
    // A second timer while the first inquiry is in flight (a stale timer) sends nothing.
    expect(fx(first.state, timer(`inquire:${tx(1)}`, 2_020)).effects).toStrictEqual([]);
    const failed = fx(first.state, { type: 'inquiryFailed', now: 2_100, txId: tx(1), reason: 'pending', coordinatorReachable: true });
    const waitMs = jitteredMs(backoffMs(0, 250, 10_000), `${tx(1)}#1`);
    expect(failed.effects).toStrictEqual([
      { kind: 'setTimer', id: `inquire:${tx(1)}`, ms: waitMs },
      log('inquiry-failed', tx(1), { reason: 'pending', retryInMs: waitMs }),
    ]);
    expect(fx(failed.state, timer(`inquire:${tx(1)}`, 3_000)).effects).toStrictEqual([
      { kind: 'inquire', txId: tx(1), coordinator: COORD },
      log('inquire', tx(1), { attempt: 2, coordinator: COORD }),
    ]);
  });
});

describe('termination: answers that come too late, and the peers', () => {
  it('an outcome, a failed inquiry or a peer answer for a transaction not in doubt here changes nothing', () => {
    const s = run(fresh(), prepare(tx(2), [put('b')])).state;
    for (const txId of [tx(2), tx(9)]) {
      const learned = fx(s, { type: 'outcomeLearned', now: 3_000, txId, outcome: 'committed' });
      expect(learned.effects).toStrictEqual([log('stale-outcome', txId, { outcome: 'committed' })]);
      expect(learned.state).toBe(s);
      const failed = fx(s, { type: 'inquiryFailed', now: 3_000, txId, reason: 'down', coordinatorReachable: false });
      expect(failed.effects).toStrictEqual([]);
      expect(failed.state).toBe(s);
      const peer = fx(s, { type: 'peerAnswered', now: 3_000, txId, peerUrl: P2, answer: 'committed' });
      expect(peer.effects).toStrictEqual([]);
      expect(peer.state).toBe(s);
    }
  });

  it('an unreachable coordinator sends the inquiry to each peer once per round, never to itself', () => {
    const s = run(preparedWith(tx(1), [put('a')], undefined, fresh({ selfUrl: `${P1}/` })), timer(`inquire:${tx(1)}`, 2_010)).state;
    const down = { type: 'inquiryFailed', now: 2_100, txId: tx(1), reason: 'down', coordinatorReachable: false } as const;
    const first = fx(s, down);
    expect(first.effects.filter((e) => e.kind === 'askPeer')).toStrictEqual([
      { kind: 'askPeer', txId: tx(1), peerUrl: P2 },
      { kind: 'askPeer', txId: tx(1), peerUrl: P3 },
    ]);
    // P2 answered "prepared" and P3 has not answered yet: the next round asks neither (P2 waits
    // preparedPeerReaskMs, P3's answer to the last round is still awaited); the first round after
    // the interval asks P2 again, and still not P3.
    const answered = fx(first.state, { type: 'peerAnswered', now: 2_200, txId: tx(1), peerUrl: `${P2}/`, answer: 'prepared' });
    expect(answered.effects).toStrictEqual([]);
    const reaskMs = answered.state.config.preparedPeerReaskMs;
    const soon = fx(run(answered.state, timer(`inquire:${tx(1)}`, 3_000)).state, { ...down, now: 2_100 + reaskMs - 1 });
    expect(soon.effects.filter((e) => e.kind === 'askPeer')).toStrictEqual([]);
    const again = fx(run(soon.state, timer(`inquire:${tx(1)}`, 3_000)).state, { ...down, now: 2_100 + reaskMs });
    expect(again.effects.filter((e) => e.kind === 'askPeer')).toStrictEqual([{ kind: 'askPeer', txId: tx(1), peerUrl: P2 }]);
  });

  it('a peer that is unreachable or answers with a heuristic is no evidence; every peer prepared blocks, and says so once', () => {
    const s = run(preparedWith(tx(1), [put('a')], undefined, fresh({ selfUrl: P1 })), timer(`inquire:${tx(1)}`, 2_010), {
      type: 'inquiryFailed',
      now: 2_100,
      txId: tx(1),
      reason: 'down',
      coordinatorReachable: false,
    }).state;
    const heuristic = fx(s, { type: 'peerAnswered', now: 2_200, txId: tx(1), peerUrl: P2, answer: 'committed', heuristic: true });
    expect(heuristic.effects).toStrictEqual([]);
    expect(heuristic.state.txs.get(tx(1))).toMatchObject({ phase: 'prepared', peers: { [P2]: 'prepared', [P3]: 'asked' } });
    const unreachable = fx(heuristic.state, { type: 'peerAnswered', now: 2_300, txId: tx(1), peerUrl: P3, answer: 'unreachable' });
    expect(unreachable.effects).toStrictEqual([]);
    const prepared = fx(unreachable.state, { type: 'peerAnswered', now: 2_400, txId: tx(1), peerUrl: P3, answer: 'prepared' });
    const reason = 'every peer is prepared too: only the coordinator knows the outcome';
    expect(prepared.effects).toStrictEqual([log('blocked', tx(1), { reason, keys: ['a'] })]);
    expect(prepared.state.txs.get(tx(1))).toMatchObject({ blocked: reason });
    expect(fx(prepared.state, { type: 'peerAnswered', now: 2_500, txId: tx(1), peerUrl: P2, answer: 'prepared' }).effects).toStrictEqual([]);
  });

  it('without peers, an unreachable coordinator blocks at once, and says so once', () => {
    const alone = fresh({ selfUrl: P1 });
    const s = run(alone, prepare(tx(1), [put('a')], { participants: [P1] }), yes(tx(1)), timer(`inquire:${tx(1)}`, 2_010)).state;
    const down = { type: 'inquiryFailed', now: 2_100, txId: tx(1), reason: 'down', coordinatorReachable: false } as const;
    const reason = 'the coordinator is unreachable and there is no peer to ask';
    const first = fx(s, down);
    expect(first.effects.filter((e) => e.kind === 'log' || e.kind === 'askPeer')).toStrictEqual([
      log('inquiry-failed', tx(1), { reason: 'down', retryInMs: jitteredMs(backoffMs(0, 250, 10_000), `${tx(1)}#1`) }),
      log('blocked', tx(1), { reason, keys: ['a'] }),
    ]);
    const second = fx(run(first.state, timer(`inquire:${tx(1)}`, 3_000)).state, { ...down, now: 3_100 });
    expect(second.effects.filter((e) => e.kind === 'log' && e.step === 'blocked')).toStrictEqual([]);
  });

  it("a peer's inquiry: the outcome if settled, `prepared` if in doubt, `unknown` if possibly forgotten", () => {
    const s = run(preparedWith(tx(1), [put('a')]), prepare(tx(2), [put('b')]), yes(tx(2)), decide('commit', tx(2))).state;
    const ask = (txId: ReturnType<typeof tx>, state = s) => fx(state, { type: 'peerInquiry', requestId: 'q', now: 3_000, txId });
    expect(ask(tx(2)).effects).toStrictEqual([{ kind: 'reply', requestId: 'q', status: 200, body: { txId: tx(2), state: 'committed' }, txId: tx(2) }]);
    expect(ask(tx(1)).effects).toStrictEqual([{ kind: 'reply', requestId: 'q', status: 200, body: { txId: tx(1), state: 'prepared' } }]);
    // A memory of one outcome: tx-1-2 pushed out tx-1-1's, so tx-1-1 may have been forgotten.
    const small = run(fresh({ outcomesMax: 1 }), decide('abort', tx(1)), decide('abort', tx(2))).state;
    const forgotten = ask(tx(1), small);
    expect(forgotten.effects).toStrictEqual([{ kind: 'reply', requestId: 'q', status: 200, body: { txId: tx(1), state: 'unknown' } }]);
    expect(forgotten.state).toBe(small);
  });

  it("a peer's inquiry before the vote aborts it with a forced NO: the promise never to vote yes", () => {
    const s = run(fresh(), prepare(tx(1), [put('a')])).state;
    const reason = 'a peer asked before this participant voted; it promised never to vote yes';
    const r = fx(s, { type: 'peerInquiry', requestId: 'q', now: 1_500, txId: tx(1) });
    expect(r.effects).toStrictEqual([
      crash('participant.before-abort-logged'),
      { kind: 'persist', record: { type: 'ABORTED', txId: tx(1), at: 1_500, reason }, sync: true },
      crash('participant.after-abort-logged'),
      { kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'no', reason } },
      log('vote-no', tx(1), { reason }),
      { kind: 'reply', requestId: 'q', status: 200, body: { txId: tx(1), state: 'aborted' }, txId: tx(1) },
    ]);
    // The resource is still preparing: the keys stay held, so a second prepare on them waits, and the
    // resource's late YES is undone before they are freed (the resource never holds two branches on one key).
    const waiting = fx(r.state, prepare(tx(2), [put('a')]));
    expect(waiting.state.txs.get(tx(2))).toMatchObject({ phase: 'waiting' });
    const late = fx(waiting.state, yes(tx(1), { writes: ['late'] }));
    expect(late.effects.slice(0, 1)).toStrictEqual([{ kind: 'resourceAbort', txId: tx(1), data: { writes: ['late'] }, keys: ['a'] }]);
    expect(late.state.txs.has(tx(1))).toBe(false);
    expect(late.state.txs.get(tx(2))).toMatchObject({ phase: 'preparing' });
  });
});

describe("a peer's inquiry below the forgetting horizon", () => {
  it('still aborts a transaction it holds, with the promise, though later outcomes were forgotten meanwhile', () => {
    // tx-1-1 arrives and prepares; tx-1-2's and tx-1-3's aborts then push the horizon past tx-1-1's id.
    const s = run(fresh({ outcomesMax: 1 }), prepare(tx(1), [put('a')]), decide('abort', tx(2)), decide('abort', tx(3))).state;
    const r = fx(s, { type: 'peerInquiry', requestId: 'q', now: 2_000, txId: tx(1) });
    expect(r.effects.at(-1)).toStrictEqual({ kind: 'reply', requestId: 'q', status: 200, body: { txId: tx(1), state: 'aborted' }, txId: tx(1) });
    expect(r.effects).toContainEqual({ kind: 'reply', requestId: `prep-${tx(1)}`, status: 200, body: { vote: 'no', reason: 'a peer asked before this participant voted; it promised never to vote yes' } });
  });
});

describe('the operator', () => {
  it('refuses to settle by hand what is settled, unknown, or not yet in doubt, each with its own error', () => {
    const s = run(preparedWith(tx(1), [put('a')]), decide('commit', tx(1)), prepare(tx(2), [put('b')])).state;
    const settle = (txId: ReturnType<typeof tx>) => fx(s, { type: 'heuristic', requestId: 'h', now: 3_000, txId, outcome: 'aborted' });
    expect(settle(tx(1)).effects).toStrictEqual([
      fail('h', 409, 'conflict', `${tx(1)} is already committed here; only an in-doubt transaction can be settled by hand.`),
    ]);
    expect(settle(tx(9)).effects).toStrictEqual([fail('h', 404, 'not_found', `No in-doubt transaction ${tx(9)} here.`)]);
    expect(settle(tx(2)).effects).toStrictEqual([fail('h', 409, 'conflict', `${tx(2)} has not voted yet, so it is not in doubt.`)]);
  });

  it('a heuristic commit remembers the digest with the outcome, so a retried prepare of other work is still refused', () => {
    const s = run(fresh(), prepare(tx(1), [put('a')], { opsDigest: 'd1' }), yes(tx(1))).state;
    const r = fx(s, { type: 'heuristic', requestId: 'h', now: 3_000, txId: tx(1), outcome: 'committed' });
    expect(fx(r.state, prepare(tx(1), [put('b')], { requestId: 'other', opsDigest: 'd2' })).effects).toMatchObject([
      { kind: 'log', step: 'protocol-violation' },
      { kind: 'reply', status: 409 },
    ]);
  });
});
