import { describe, expect, it } from 'vitest';
import { explore, init, invariantsHold, isStep, next, tcConsistent } from './two-phase.ts';

describe("Lamport's TwoPhase, explored exhaustively", () => {
  it('has 288 reachable states for 3 resource managers, and TCConsistent holds in every one', () => {
    const { states, transitions } = explore(3);
    const violations = [...states.values()].filter((s) => !invariantsHold(s));
    console.log(`TwoPhase(3 RMs): ${states.size} states, ${transitions} transitions, violations ${violations.length}`);
    expect(states.size).toBe(288);
    expect(violations).toEqual([]);
  });

  it('the checker is not vacuous: a TM that commits without every Prepared reaches an inconsistent state', () => {
    // Mutant: TMCommit enabled once any RM is prepared.
    let s = init(3);
    s = next(s, { name: 'RMPrepare', rm: 0 }) ?? s;
    s = next(s, { name: 'TMRcvPrepared', rm: 0 }) ?? s;
    s = next(s, { name: 'RMChooseToAbort', rm: 1 }) ?? s;
    const mutantCommit = { ...s, tmState: 'committed' as const, commitMsg: true };
    const after = next(mutantCommit, { name: 'RMRcvCommitMsg', rm: 0 });
    expect(after && tcConsistent(after)).toBe(false);
  });

  it('recognises single steps and stutters, and rejects jumps', () => {
    const a = init(3);
    const b = next(a, { name: 'RMPrepare', rm: 2 });
    expect(b).toBeDefined();
    expect(isStep(a, a)).toBe('stutter');
    expect(isStep(a, b!)).toEqual({ name: 'RMPrepare', rm: 2 });
    const c = next(b!, { name: 'TMRcvPrepared', rm: 2 });
    expect(isStep(a, c!)).toBeUndefined();
  });
});
