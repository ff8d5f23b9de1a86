import { describe, expect, it } from 'vitest';
import { PLANTED_BUGS } from './profile.ts';
import { findFailingSeed } from './run.ts';
import { runSeed } from './world.ts';

/** How many seeds each planted bug may take to be found. */
const SEEDS_MAX = 200;

describe('planted bugs: the checks are not vacuous', () => {
  for (const bug of PLANTED_BUGS) {
    it(`finds ${bug} within ${SEEDS_MAX} seeds, and the reported seed replays it exactly`, async () => {
      const found = await findFailingSeed(SEEDS_MAX, { bug });
      expect(found, `${bug} not found in ${SEEDS_MAX} seeds`).toBeDefined();
      const seed = found?.seed ?? -1;
      console.log(`${bug}: seed ${seed}: ${found?.violations.map((v) => v.kind).join(', ')}`);
      const replay = await runSeed(seed, { bug });
      expect(replay.violations).toEqual(found?.violations);
      expect(replay.traceHash).toBe(found?.traceHash);
      expect(replay.trace).toEqual(found?.trace);
      // The same seed with the correct cores is clean: the bug, not the seed, broke the rules.
      expect((await runSeed(seed)).violations).toEqual([]);
    });

    it(`finds ${bug} within ${SEEDS_MAX} seeds by the invariants alone, without the TLA+ cross-check`, async () => {
      const found = await findFailingSeed(SEEDS_MAX, { bug, tlaCheck: false });
      expect(found, `${bug} not found in ${SEEDS_MAX} seeds`).toBeDefined();
      console.log(`${bug} (invariants only): seed ${found?.seed}: ${found?.violations.map((v) => v.kind).join(', ')}`);
      expect(found?.violations.every((v) => v.kind !== 'tla' && v.kind !== 'tla-invariant')).toBe(true);
    });
  }
});
