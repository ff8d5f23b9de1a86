import { createPrng } from '../../../scenarios/prng.ts';

/** The project's seeded PRNG (mulberry32) as a bare `() => number`, so every randomized test replays from its seed. */
export const seededRandom = (seed: number): (() => number) => createPrng(seed).next;
