/**
 * `twopc simulate`: the deterministic simulator from the command line.
 *
 *   twopc simulate [--seeds N] [--seed S] [--transactions N] [--json] [--protocol P] [--bug NAME]
 *
 * Runs seeds 1..N (or only S), prints the totals (transactions, the client's
 * view of their outcomes, messages, faults injected by kind, crashes,
 * restarts, TLA+ steps checked, violations) and, on a failure, the first
 * failing seed with its trace and the command that replays it. Exits 1 on any
 * violation. `--json` prints exactly one JSON object on stdout.
 */
import type { Command } from 'commander';
import { createProgress } from '../../scenarios/progress.ts';
import { intArg, opt } from '../../shared/cli-options.ts';
import type { ProtocolVariant } from '../../shared/types.ts';
import { ALL_PLANTED_BUGS, HA_PLANTED_BUGS, type PlantedBug } from './profile.ts';

const PROTOCOLS: readonly ProtocolVariant[] = ['presumed-abort', 'presumed-nothing', 'presumed-commit'];
import { runSeeds, type RunTotals } from './run.ts';

interface SimulateFlags {
  readonly seeds: number;
  readonly seed?: number;
  readonly transactions: number;
  readonly json?: boolean;
  readonly bug?: PlantedBug;
  readonly protocol: ProtocolVariant | 'mixed';
  readonly ha?: boolean;
}

export const SEEDS_DEFAULT = 100;
export const SEEDS_MAX = 1_000_000;
export const TRANSACTIONS_DEFAULT = 12;
export const TRANSACTIONS_MAX = 1_000;

export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate')
    .description('deterministic simulation: seeded network, disk, clock and crash faults against the real protocol cores; a failure prints the seed that replays it')
    .addOption(opt('--seeds <n>', 'run seeds 1..n').argParser(intArg('seeds', 1, SEEDS_MAX)).default(SEEDS_DEFAULT))
    .addOption(opt('--seed <s>', 'run only this seed (replays a failure exactly)').argParser(intArg('seed', 0, Number.MAX_SAFE_INTEGER)))
    .addOption(opt('--transactions <n>', 'bank transfers per seed').argParser(intArg('transactions', 1, TRANSACTIONS_MAX)).default(TRANSACTIONS_DEFAULT))
    .addOption(opt('--json', 'print one JSON object on stdout').default(false))
    .addOption(opt('--protocol <variant>', "the coordinator's presumption; 'mixed' draws one per seed (presumed abort on half the seeds, presumed commit on a third)").choices([...PROTOCOLS, 'mixed']).default('mixed'))
    .addOption(opt('--bug <name>', `plant a bug in the cores, the driver or the HA group (${HA_PLANTED_BUGS.join(', ')} run the group), to watch the checks catch it`).choices(ALL_PLANTED_BUGS))
    .addOption(opt('--ha', 'run every seed with an HA group of coordinators on a simulated etcd (by default a share of the seeds do)').default(false))
    .action(async (flags: SimulateFlags) => {
      const seeds = flags.seed !== undefined ? [flags.seed] : Array.from({ length: flags.seeds }, (_, i) => i + 1);
      const progress = createProgress({ label: 'simulate', total: seeds.length, json: flags.json === true });
      let seedsDone = 0;
      const totals = await runSeeds(seeds, {
        onSeed: () => progress.update(++seedsDone),
        transactions: flags.transactions,
        protocol: flags.protocol,
        stopAtFailure: false,
        ...(flags.bug ? { bug: flags.bug } : {}),
        ...(flags.ha === true && { ha: true }),
      });
      progress.finish();
      const replay = totals.firstFailure ? replayCommand(totals.firstFailure.seed, flags) : undefined;
      if (flags.json) process.stdout.write(`${JSON.stringify({ ...totals, ...(replay ? { replay } : {}) })}\n`);
      else process.stdout.write(render(totals, replay));
      if (totals.violations > 0) process.exitCode = 1;
    });
}

function replayCommand(seed: number, flags: SimulateFlags): string {
  const extra = [
    flags.transactions !== TRANSACTIONS_DEFAULT ? ` --transactions ${flags.transactions}` : '',
    flags.protocol !== 'mixed' ? ` --protocol ${flags.protocol}` : '',
    flags.bug ? ` --bug ${flags.bug}` : '',
    flags.ha === true ? ' --ha' : '',
  ].join('');
  return `twopc simulate --seed ${seed}${extra}`;
}

export function render(t: RunTotals, replay: string | undefined): string {
  const seconds = t.wallMs / 1000;
  const lines = [
    `seeds          ${t.seeds} in ${seconds.toFixed(1)} s (${(t.seeds / Math.max(seconds, 0.001)).toFixed(0)} seeds/s, ${t.steps} steps, ${(t.simulatedMs / 1000).toFixed(0)} s simulated)`,
    `transactions   ${t.transactions}: committed ${t.committed}, aborted ${t.aborted}, unknown ${t.unknown} (of which ${t.unknownCommitted} ended committed)`,
    `flows          ${Object.entries(t.flows).map(([k, v]) => `${k} ${v}`).join(', ')} (transactions)`,
    `heuristics     ${t.heuristics} made by hand, ${t.heuristicMixed} reported heuristic-mixed`,
    `driver         ${t.slowSyncs} fsyncs and ${t.slowApplies} applies took simulated time; ${t.overtakes} effects ran past a laned apply in flight`,
    `messages       ${t.messages}`,
    `batching       on in ${t.batchingSeeds} of ${t.seeds} seeds: ${t.batches} batch requests carried ${t.batchedMessages} messages, ${t.sharedBatches} of them more than one`,
    `HA group       on in ${t.haSeeds} of ${t.seeds} seeds: ${t.terms} terms won, ${t.resignedTerms} ended by a refused or failed write, ${t.fencedWrites} log writes of deposed terms refused by etcd`,
    `setups         ${[...Object.entries(t.disks).map(([k, v]) => `${k} WAL ${v}`), ...Object.entries(t.protocols).map(([k, v]) => `${k} ${v}`)].join(', ')} (seeds)`,
    `faults         ${Object.entries(t.faults).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
    `crashes        ${t.crashes}, restarts ${t.restarts}`,
    `TLA+ steps     ${t.tlaSteps} checked against TwoPhase (${t.tlaActions} actions)`,
    `violations     ${t.violations}${t.failedSeeds.length > 0 ? ` in seeds ${t.failedSeeds.slice(0, 20).join(', ')}${t.failedSeeds.length > 20 ? ', ...' : ''}` : ''}`,
  ];
  const f = t.firstFailure;
  if (f) {
    lines.push('', `FAILED: seed ${f.seed}`);
    for (const v of f.violations) lines.push(`  ${v.kind} at t=${v.at}: ${v.message}`);
    lines.push('', `last ${f.trace.length} steps:`, ...f.trace.map((l) => `  ${l}`));
    if (replay) lines.push('', `replay: ${replay}`);
  }
  return `${lines.join('\n')}\n`;
}
