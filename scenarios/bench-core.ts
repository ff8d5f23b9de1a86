/**
 * `npm run bench:core [-- --json] [-- --rounds R] [-- --active N] [-- --remembered M]`: what one
 * step of each protocol core costs, with few transactions in memory beside many.
 *
 * Each core runs the steps of a two-branch transaction's life, on a state that already holds
 * `active` unfinished transactions and `remembered` finished ones:
 * - coordinator: runWhole (prepares out), the first vote, the last vote (the decision), the first
 *   ack, the last ack (the transaction finishes and joins the history, pushing the oldest out);
 * - participant: prepare, the resource's yes (PREPARED, the vote), commit (COMMITTED, the locks
 *   released, the outcome remembered, pushing the oldest out).
 * The small state holds 10 active and 10 remembered, the large one `active` (1,000) and
 * `remembered` (30,000); both keep their size while measured, since each measured transaction
 * finishes. A step's cost should not depend on which one it runs on: the figure to read is the
 * ratio large/small (the target is at most 1.5), not the nanoseconds, on a noisy shared machine.
 *
 * The two states are measured in alternating rounds of `batch` transactions each, so a burst of
 * a neighbour's work hits both alike; a step's figure is the median over the rounds of the mean
 * time per step within a round. Only the cores' public API is used (`step`, `initialState`).
 */
import os from 'node:os';
import { step as coordinatorStep, initialState as coordinatorInitial } from '../coordinator/core/index.ts';
import type { CoordinatorEffect, CoordinatorEvent, CoordinatorState } from '../coordinator/core/index.ts';
import { step as participantStep, initialState as participantInitial } from '../participant/core/index.ts';
import type { ParticipantEvent, ParticipantState } from '../participant/core/index.ts';
import { asTxId, type TxId } from '../shared/types.ts';

export interface CoreBenchOptions {
  /** Unfinished transactions in the large state. */
  readonly active: number;
  /** Finished transactions the large state remembers (its history is this long). */
  readonly remembered: number;
  /** Measured rounds per state; each runs `batch` whole transactions. */
  readonly rounds: number;
  readonly batch: number;
}

export interface StepFigure {
  readonly smallNsPerStep: number;
  readonly largeNsPerStep: number;
  readonly ratio: number;
}

export interface CoreFigures {
  readonly steps: Readonly<Record<string, StepFigure>>;
  /** One whole transaction's steps together. */
  readonly transaction: StepFigure;
  /** The largest ratio of any single step. */
  readonly worstRatio: number;
}

export interface CoreBenchReport {
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly node: string };
  readonly small: { readonly active: number; readonly remembered: number };
  readonly large: { readonly active: number; readonly remembered: number };
  readonly rounds: number;
  readonly batch: number;
  readonly ratioTarget: number;
  readonly coordinator: CoreFigures;
  readonly participant: CoreFigures;
  /** Every core's whole-transaction ratio is within the target. */
  readonly withinTarget: boolean;
}

const SMALL = { active: 10, remembered: 10 } as const;
const RATIO_TARGET = 1.5;
const ROUNDS_MAX = 1_000;
const ACTIVE_MAX = 100_000;
const REMEMBERED_MAX = 1_000_000;
const BATCH_MAX = 1_000;
/** Rounds run on each state before any is measured, so the JIT has settled. */
const WARMUP_ROUNDS = 5;

export const CORE_BENCH_DEFAULTS: CoreBenchOptions = { active: 1_000, remembered: 30_000, rounds: 40, batch: 32 };

/** One core behind a uniform face: a state that runs whole transactions and times each kind of step. */
interface Subject {
  readonly stepNames: readonly string[];
  /** Runs `count` transactions, adding each kind of step's time (ms) into `msByStep`; keeps the state's size. */
  run(count: number, msByStep: number[]): void;
}

// ---- the coordinator ----------------------------------------------------------------------

const COORDINATOR_STEPS = ['runWhole', 'vote', 'decision', 'ack', 'finish'] as const;
const PARTICIPANTS = { p1: 'http://127.0.0.1:1', p2: 'http://127.0.0.1:2' } as const;

function coordinatorSubject(active: number, remembered: number): Subject {
  const config = {
    name: 'bench',
    selfUrl: 'http://127.0.0.1:3',
    participants: PARTICIPANTS,
    finishedHistoryMax: remembered,
    maxActiveTransactions: active + BATCH_MAX + 1,
  };
  let state: CoordinatorState = coordinatorStep(coordinatorInitial(config), { type: 'recover', entries: [], now: 0 }).state;
  let now = 1;
  let request = 0;
  const apply = (event: CoordinatorEvent): readonly CoordinatorEffect[] => {
    const r = coordinatorStep(state, event);
    state = r.state;
    return r.effects;
  };
  const begin = (): TxId => {
    const effects = apply({ type: 'runWhole', requestId: `r${request++}`, now: now++, branches: branchesOf() });
    const sent = effects.find((e) => e.kind === 'send');
    if (sent?.kind !== 'send') throw new Error('runWhole sent no prepare: the bench no longer matches the coordinator core.');
    return sent.message.body.txId;
  };
  const vote = (txId: TxId, participant: string): void => void apply({ type: 'prepareResult', txId, participant, vote: 'yes', now: now++ });
  const ack = (txId: TxId, participant: string): void => void apply({ type: 'decisionAcked', txId, participant, now: now++ });
  // The history, then the unfinished transactions (left waiting for their votes).
  for (let i = 0; i < remembered; i++) {
    const txId = begin();
    vote(txId, 'p1');
    vote(txId, 'p2');
    ack(txId, 'p1');
    ack(txId, 'p2');
  }
  for (let i = 0; i < active; i++) begin();
  if (state.txs.size !== active || state.finished.size !== remembered) throw new Error('The coordinator bench state has the wrong size.');
  return {
    stepNames: COORDINATOR_STEPS,
    run(count, msByStep) {
      const ids: TxId[] = [];
      msByStep[0] = (msByStep[0] ?? 0) + timed(() => {
        for (let i = 0; i < count; i++) ids.push(begin());
      });
      const phases: ((txId: TxId) => void)[] = [(t) => vote(t, 'p1'), (t) => vote(t, 'p2'), (t) => ack(t, 'p1'), (t) => ack(t, 'p2')];
      phases.forEach((phase, k) => {
        msByStep[k + 1] = (msByStep[k + 1] ?? 0) + timed(() => ids.forEach(phase));
      });
    },
  };
}

function branchesOf(): { participant: string; ops: { op: 'put'; key: string; value: number }[] }[] {
  return [
    { participant: 'p1', ops: [{ op: 'put', key: 'a', value: 1 }] },
    { participant: 'p2', ops: [{ op: 'put', key: 'b', value: 1 }] },
  ];
}

// ---- the participant ----------------------------------------------------------------------

const PARTICIPANT_STEPS = ['prepare', 'vote', 'commit'] as const;

interface KeyOp {
  readonly key: string;
}

function participantSubject(active: number, remembered: number): Subject {
  const config = {
    keysOf: (ops: readonly unknown[]) => (ops as readonly KeyOp[]).map((o) => o.key),
    outcomesMax: remembered,
    lockingTxsMax: active + BATCH_MAX + 1,
  };
  let state: ParticipantState = participantStep(participantInitial(config), { type: 'recover', records: [], now: 0 }).state;
  let now = 1;
  let seq = 0;
  let request = 0;
  const apply = (event: ParticipantEvent): void => {
    state = participantStep(state, event).state;
  };
  const prepare = (): TxId => {
    const txId = asTxId(`tx-1-${++seq}`);
    const ops = [{ key: `${txId}/a` }, { key: `${txId}/b` }];
    const participants = ['http://127.0.0.1:4', 'http://127.0.0.1:5'];
    apply({ type: 'prepare', requestId: `r${request++}`, now: now++, txId, coordinator: 'http://127.0.0.1:3', participants, ops, onePhase: false });
    return txId;
  };
  const voteYes = (txId: TxId): void => apply({ type: 'resourcePrepared', txId, vote: 'yes', data: { a: 1, b: 1 }, now: now++ });
  const commit = (txId: TxId): void => apply({ type: 'commit', requestId: `r${request++}`, txId, now: now++ });
  for (let i = 0; i < remembered; i++) {
    const txId = prepare();
    voteYes(txId);
    commit(txId);
  }
  for (let i = 0; i < active; i++) voteYes(prepare());
  if (state.txs.size !== active || state.locks.size !== 2 * active) throw new Error('The participant bench state has the wrong size.');
  return {
    stepNames: PARTICIPANT_STEPS,
    run(count, msByStep) {
      const ids: TxId[] = [];
      msByStep[0] = (msByStep[0] ?? 0) + timed(() => {
        for (let i = 0; i < count; i++) ids.push(prepare());
      });
      msByStep[1] = (msByStep[1] ?? 0) + timed(() => ids.forEach(voteYes));
      msByStep[2] = (msByStep[2] ?? 0) + timed(() => ids.forEach(commit));
    },
  };
}

// ---- measuring ------------------------------------------------------------------------------

/**
 * The CPU time `f` takes (ms), garbage collection on helper threads included. CPU time, not
 * wall time: on a shared machine a process waits for a core at random, and waiting is no cost of
 * the step.
 */
function timed(f: () => void): number {
  const before = process.cpuUsage();
  f();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1_000;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Per round and step, ns per step; rounds alternate between the two states. */
function measure(small: Subject, large: Subject, o: CoreBenchOptions): CoreFigures {
  const names = small.stepNames;
  const samples = { small: names.map((): number[] => []), large: names.map((): number[] => []) };
  const totals = { small: [] as number[], large: [] as number[] };
  for (let round = 0; round < WARMUP_ROUNDS + o.rounds; round++) {
    for (const [which, subject] of [['small', small], ['large', large]] as const) {
      const ms: number[] = [];
      subject.run(o.batch, ms);
      if (round < WARMUP_ROUNDS) continue;
      names.forEach((_, k) => samples[which][k]?.push(((ms[k] ?? 0) * 1e6) / o.batch));
      totals[which].push((ms.reduce((a, b) => a + b, 0) * 1e6) / o.batch);
    }
  }
  const figure = (s: readonly number[], l: readonly number[]): StepFigure => {
    const smallNs = median(s);
    const largeNs = median(l);
    return { smallNsPerStep: Math.round(smallNs), largeNsPerStep: Math.round(largeNs), ratio: round2(largeNs / smallNs) };
  };
  const steps: Record<string, StepFigure> = {};
  names.forEach((name, k) => {
    steps[name] = figure(samples.small[k] ?? [], samples.large[k] ?? []);
  });
  return { steps, transaction: figure(totals.small, totals.large), worstRatio: Math.max(...Object.values(steps).map((f) => f.ratio)) };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

export function runCoreBench(o: CoreBenchOptions = CORE_BENCH_DEFAULTS): CoreBenchReport {
  const coordinator = measure(coordinatorSubject(SMALL.active, SMALL.remembered), coordinatorSubject(o.active, o.remembered), o);
  const participant = measure(participantSubject(SMALL.active, SMALL.remembered), participantSubject(o.active, o.remembered), o);
  const cpus = os.cpus();
  return {
    machine: { cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', node: process.version },
    small: SMALL,
    large: { active: o.active, remembered: o.remembered },
    rounds: o.rounds,
    batch: o.batch,
    ratioTarget: RATIO_TARGET,
    coordinator,
    participant,
    withinTarget: coordinator.transaction.ratio <= RATIO_TARGET && participant.transaction.ratio <= RATIO_TARGET,
  };
}

// ---- the command ------------------------------------------------------------------------------

const USAGE =
  'usage: tsx scenarios/bench-core.ts [--json] [--rounds R (default 40)] [--batch B (default 32)] [--active N (default 1000)] [--remembered M (default 30000)]\n';

function intArg(name: string, raw: string | undefined, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`Expected \`${name}\` to be an integer from ${min} to ${max}, got ${String(raw)}.`);
  return n;
}

class UsageError extends Error {}

export function parseCoreBenchArgs(argv: readonly string[]): { json: boolean; options: CoreBenchOptions } {
  let json = false;
  let { active, remembered, rounds, batch } = CORE_BENCH_DEFAULTS;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') json = true;
    else if (arg === '--rounds') rounds = intArg('--rounds', argv[++i], 1, ROUNDS_MAX);
    else if (arg === '--batch') batch = intArg('--batch', argv[++i], 1, BATCH_MAX);
    else if (arg === '--active') active = intArg('--active', argv[++i], SMALL.active, ACTIVE_MAX);
    else if (arg === '--remembered') remembered = intArg('--remembered', argv[++i], SMALL.remembered, REMEMBERED_MAX);
    else throw new UsageError(`Unknown argument ${String(arg)}.`);
  }
  return { json, options: { active, remembered, rounds, batch } };
}

function table(name: string, f: CoreFigures, r: CoreBenchReport): string {
  const head = `${name}: ns per step, ${r.small.active} active + ${r.small.remembered} remembered vs ${r.large.active} active + ${r.large.remembered} remembered`;
  const row = (label: string, x: StepFigure): string =>
    `  ${label.padEnd(12)} ${String(x.smallNsPerStep).padStart(9)} ${String(x.largeNsPerStep).padStart(9)}   ${x.ratio.toFixed(2)}x`;
  const lines = Object.entries(f.steps).map(([k, x]) => row(k, x));
  return [head, `  ${'step'.padEnd(12)} ${'small'.padStart(9)} ${'large'.padStart(9)}   ratio`, ...lines, row('transaction', f.transaction)].join('\n');
}

function main(argv: readonly string[]): void {
  let parsed;
  try {
    parsed = parseCoreBenchArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const report = runCoreBench(parsed.options);
  if (parsed.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const m = report.machine;
  process.stdout.write(`core step cost (${m.cpus} cpus, ${m.cpuModel}, node ${m.node}; median of ${report.rounds} rounds of ${report.batch} transactions)\n`);
  process.stdout.write(`${table('coordinator', report.coordinator, report)}\n${table('participant', report.participant, report)}\n`);
  process.stdout.write(`target: a whole transaction's ratio at most ${report.ratioTarget}x: ${report.withinTarget ? 'met' : 'NOT met'}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) main(process.argv.slice(2));
