/**
 * Runs many seeds and adds up what they did: the figures `twopc simulate`
 * prints. Seeds run one after another (each is single-threaded and
 * deterministic); the first failing seed is kept with its trace.
 */
import type { Violation } from './ghost.ts';
import type { SimOptions } from './profile.ts';
import { runSeed, type SeedResult } from './world.ts';

export interface RunTotals {
  readonly seeds: number;
  readonly transactions: number;
  readonly committed: number;
  readonly aborted: number;
  readonly unknown: number;
  /** Unknown to the client, but committed at every participant in the end. */
  readonly unknownCommitted: number;
  readonly messages: number;
  readonly faults: Record<string, number>;
  readonly crashes: number;
  readonly restarts: number;
  readonly tlaSteps: number;
  readonly tlaActions: number;
  readonly steps: number;
  readonly simulatedMs: number;
  /** Seeds run on each kind of simulated disk, and with each presumption. */
  readonly disks: Record<string, number>;
  readonly protocols: Record<string, number>;
  /** Transfers by how the client ran them: one-shot, or interactively to a commit, a client abort or a timeout. */
  readonly flows: Record<string, number>;
  /** Heuristic decisions operators made; transactions the coordinator finished reporting heuristic-mixed. */
  readonly heuristics: number;
  readonly heuristicMixed: number;
  /** The driver at work (./stats.ts): effects run past a laned apply in flight; slow fsyncs and applies. */
  readonly overtakes: number;
  readonly slowSyncs: number;
  readonly slowApplies: number;
  /** Seeds that batched, and the coordinator's batch requests, messages batched, and batches carrying more than one message. */
  readonly batchingSeeds: number;
  readonly batches: number;
  readonly batchedMessages: number;
  readonly sharedBatches: number;
  /** Seeds that ran an HA group (./ha.ts), the terms its members won, terms a refused or failed write ended, and log writes etcd refused (fenced). */
  readonly haSeeds: number;
  readonly terms: number;
  readonly resignedTerms: number;
  readonly fencedWrites: number;
  readonly violations: number;
  /** Seeds with at least one violation. */
  readonly failedSeeds: readonly number[];
  readonly firstFailure?: { readonly seed: number; readonly violations: readonly Violation[]; readonly trace: readonly string[] };
  readonly wallMs: number;
}

export interface RunOptions extends Partial<SimOptions> {
  /** Stop at the first failing seed (default true). */
  readonly stopAtFailure?: boolean;
  /** Called after each seed, e.g. for progress. */
  readonly onSeed?: (result: SeedResult) => void;
}

export async function runSeeds(seeds: readonly number[], options: RunOptions = {}): Promise<RunTotals> {
  const { stopAtFailure = true, onSeed, ...sim } = options;
  const started = performance.now();
  const t = {
    seeds: 0,
    transactions: 0,
    committed: 0,
    aborted: 0,
    unknown: 0,
    unknownCommitted: 0,
    messages: 0,
    faults: {} as Record<string, number>,
    crashes: 0,
    restarts: 0,
    tlaSteps: 0,
    tlaActions: 0,
    steps: 0,
    simulatedMs: 0,
    disks: {} as Record<string, number>,
    protocols: {} as Record<string, number>,
    flows: {} as Record<string, number>,
    heuristics: 0,
    heuristicMixed: 0,
    overtakes: 0,
    slowSyncs: 0,
    slowApplies: 0,
    batchingSeeds: 0,
    batches: 0,
    batchedMessages: 0,
    sharedBatches: 0,
    haSeeds: 0,
    terms: 0,
    resignedTerms: 0,
    fencedWrites: 0,
    violations: 0,
  };
  const failedSeeds: number[] = [];
  let firstFailure: RunTotals['firstFailure'];
  for (const seed of seeds) {
    const r = await runSeed(seed, sim);
    onSeed?.(r);
    t.seeds++;
    t.transactions += r.transactions;
    t.committed += r.committed;
    t.aborted += r.aborted;
    t.unknown += r.unknown;
    t.unknownCommitted += r.unknownCommitted;
    t.messages += r.messages;
    for (const [k, v] of Object.entries(r.faults)) t.faults[k] = (t.faults[k] ?? 0) + v;
    t.crashes += r.crashes;
    t.restarts += r.restarts;
    t.tlaSteps += r.tlaSteps;
    t.tlaActions += r.tlaActions;
    t.steps += r.steps;
    t.simulatedMs += r.simulatedMs;
    t.disks[r.disk] = (t.disks[r.disk] ?? 0) + 1;
    t.protocols[r.protocol] = (t.protocols[r.protocol] ?? 0) + 1;
    for (const [k, v] of Object.entries(r.flows)) t.flows[k] = (t.flows[k] ?? 0) + v;
    t.heuristics += r.heuristics;
    t.heuristicMixed += r.heuristicMixed;
    t.overtakes += r.overtakes;
    t.slowSyncs += r.slowSyncs;
    t.slowApplies += r.slowApplies;
    if (r.batchProfile.batching) t.batchingSeeds++;
    t.batches += r.batches;
    t.batchedMessages += r.batchedMessages;
    t.sharedBatches += r.sharedBatches;
    if (r.ha) {
      t.haSeeds++;
      t.terms += r.ha.terms;
      t.resignedTerms += r.ha.resigned;
      t.fencedWrites += r.ha.fencedWrites;
    }
    t.violations += r.violations.length;
    if (r.violations.length > 0) {
      failedSeeds.push(seed);
      firstFailure ??= { seed, violations: r.violations, trace: r.trace };
      if (stopAtFailure) break;
    }
  }
  const faults = Object.fromEntries(Object.entries(t.faults).sort(([a], [b]) => (a < b ? -1 : 1)));
  return { ...t, faults, failedSeeds, ...(firstFailure ? { firstFailure } : {}), wallMs: Math.round(performance.now() - started) };
}

/** The first seed in 1..seedsMax (or from `seeds`) whose run has a violation, with that run. */
export async function findFailingSeed(seedsMax: number, options: Partial<SimOptions> = {}): Promise<SeedResult | undefined> {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const r = await runSeed(seed, options);
    if (r.violations.length > 0) return r;
  }
  return undefined;
}
