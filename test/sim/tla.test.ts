import { describe, expect, it } from 'vitest';
import { init, next } from './model/two-phase.ts';
import { describeAction, findPath, mapToModel, type MappedTx } from './tla.ts';

const base: MappedTx = {
  rm: ['working', 'working'],
  tm: 'init',
  votesSent: 0,
  everPrepared: 0,
  votesReceived: 0,
  commitSent: false,
  onePhase: false,
};

describe('the TLA+ refinement check', () => {
  it('maps a stutter to no action and a vote to RMPrepare', () => {
    const s0 = mapToModel(base);
    expect(s0).toEqual(init(2));
    expect(findPath(s0, s0)).toEqual([]);
    const voted = mapToModel({ ...base, rm: ['prepared', 'working'], everPrepared: 1, votesSent: 1 });
    expect(findPath(s0, voted)?.map(describeAction)).toEqual(['RMPrepare(0)']);
  });

  it('finds a step that is several actions: the last vote received and the commit decided at once', () => {
    const from = mapToModel({ ...base, rm: ['prepared', 'prepared'], everPrepared: 3, votesSent: 3, votesReceived: 1 });
    const to = mapToModel({ ...base, rm: ['prepared', 'prepared'], everPrepared: 3, votesSent: 3, votesReceived: 3, tm: 'committed' });
    expect(findPath(from, to)?.map(describeAction)).toEqual(['TMRcvPrepared(1)', 'TMCommit']);
  });

  it('maps a one-phase commit to the four actions of prepare, receive, commit, learn', () => {
    const one: MappedTx = { ...base, rm: ['working'], onePhase: true };
    const path = findPath(mapToModel(one), mapToModel({ ...one, rm: ['committed'], tm: 'committed' }));
    expect(path?.map(describeAction)).toEqual(['RMPrepare(0)', 'TMRcvPrepared(0)', 'TMCommit', 'RMRcvCommitMsg(0)']);
  });

  it('rejects a YES vote sent before PREPARED is durable', () => {
    const from = mapToModel(base);
    const to = mapToModel({ ...base, votesSent: 1 });
    expect(findPath(from, to)).toBeUndefined();
  });

  it('rejects a commit decided without every vote received', () => {
    const from = mapToModel({ ...base, rm: ['prepared', 'working'], everPrepared: 1, votesSent: 1, votesReceived: 1 });
    const to = mapToModel({ ...base, rm: ['prepared', 'working'], everPrepared: 1, votesSent: 1, votesReceived: 1, tm: 'committed' });
    expect(findPath(from, to)).toBeUndefined();
  });

  it('rejects a decision that flips, and a participant that un-prepares', () => {
    const committed = mapToModel({ ...base, rm: ['prepared', 'prepared'], everPrepared: 3, votesSent: 3, votesReceived: 3, tm: 'committed' });
    expect(findPath(committed, { ...committed, tmState: 'aborted', commitMsg: false, abortMsg: true })).toBeUndefined();
    const prepared = mapToModel({ ...base, rm: ['prepared', 'working'], everPrepared: 1, votesSent: 1 });
    expect(findPath(prepared, { ...prepared, rmState: ['working', 'working'] })).toBeUndefined();
  });

  it('bounds the search: a jump longer than the depth limit is rejected', () => {
    let s = init(3);
    const acts = [
      { name: 'RMPrepare', rm: 0 },
      { name: 'RMPrepare', rm: 1 },
      { name: 'RMPrepare', rm: 2 },
      { name: 'TMRcvPrepared', rm: 0 },
      { name: 'TMRcvPrepared', rm: 1 },
    ] as const;
    for (const a of acts) s = next(s, a) ?? s;
    expect(findPath(init(3), s, 4)).toBeUndefined();
    expect(findPath(init(3), s, 5)).toHaveLength(5);
  });
});
