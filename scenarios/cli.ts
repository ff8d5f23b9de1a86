/**
 * `twopc scenario list` and `twopc scenario run NAME [--seed N] [--json]
 * [--html FILE] [--kills N] [--duration D] [--keep-data]`.
 *
 * Exit codes: 0 every check held, 1 a check failed, 2 the scenario could not
 * run (unknown name, a node that would not start). With --json, stdout gets
 * exactly one JSON object (the result) and the narration goes to stderr.
 */
import fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { intArg, opt } from '../shared/cli-options.ts';
import { findScenario, SCENARIOS } from './registry.ts';
import { renderHtml } from './render-html.ts';
import type { ScenarioResult } from './scenario.ts';

export const EXIT_CHECK_FAILED = 1;
export const EXIT_CANNOT_RUN = 2;

/** The longest --duration accepted: a soak is bounded even when asked for more. */
const DURATION_MAX_MS = 6 * 60 * 60 * 1000;

/** Parses `90`, `90s`, `1500ms`, `5m` or `1h` into milliseconds (a bare number is seconds). */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`Expected \`duration\` like 90s, 5m or 1500ms, got "${value}".`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000));
  if (ms < 1000 || ms > DURATION_MAX_MS) throw new InvalidArgumentError(`Expected \`duration\` from 1s to 6h, got "${value}".`);
  return ms;
}

export interface ScenarioIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly setExitCode: (code: number) => void;
}

const processIo: ScenarioIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  setExitCode: (code) => {
    process.exitCode = code;
  },
};

export function formatResult(r: ScenarioResult): string {
  const lines = [`scenario ${r.name}: ${r.ok ? 'every check held' : 'A CHECK FAILED'}`];
  for (const c of r.checks) lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
  const figures = Object.entries(r.figures);
  if (figures.length > 0) lines.push(`  figures: ${figures.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

export function registerScenarioCommands(program: Command, io: ScenarioIo = processIo): Command {
  const scenario = program.command('scenario').description('chaos scenarios and teaching demos on real processes');

  scenario
    .command('list')
    .description('list the scenarios')
    .option('--json', 'print one JSON object on stdout')
    .action((o: { json?: boolean }) => {
      if (o.json) {
        io.stdout(`${JSON.stringify({ scenarios: SCENARIOS.map((s) => ({ name: s.name, description: s.description })) })}\n`);
        return;
      }
      const width = Math.max(...SCENARIOS.map((s) => s.name.length));
      for (const s of SCENARIOS) io.stdout(`${s.name.padEnd(width)}  ${s.description}\n`);
    });

  scenario
    .command('run')
    .description('run one scenario; exit 0 when every check held')
    .argument('<name>', 'a scenario from `twopc scenario list`')
    .addOption(opt('--seed <n>', 'seed for every random choice').argParser(intArg('seed', 0, Number.MAX_SAFE_INTEGER)))
    .addOption(opt('--json', 'print one JSON object on stdout (narration goes to stderr)').default(false))
    .addOption(opt('--html <file>', 'write the checks, figures and a sequence diagram of the timeline to this HTML file'))
    .addOption(opt('--kills <n>', 'chaos-soak: how many SIGKILLs').argParser(intArg('kills', 0, 100_000)))
    .addOption(opt('--duration <d>', 'chaos-soak, network-faults: longest fault phase, e.g. 90s or 10m').argParser(parseDuration))
    .addOption(opt('--keep-data', 'keep the WALs and node logs, and print where they are').default(false))
    .addOption(opt('--file <session.json>', 'replay: the lab session to play again (saved from the lab page)'))
    .action(async (name: string, o: { seed?: number; json: boolean; html?: string; kills?: number; duration?: number; keepData: boolean; file?: string }) => {
      const s = findScenario(name);
      if (!s) {
        io.stderr(`twopc: unknown scenario "${name}" (known: ${SCENARIOS.map((x) => x.name).join(', ')})\n`);
        io.setExitCode(EXIT_CANNOT_RUN);
        return;
      }
      const seed = o.seed ?? Date.now() % 1_000_000;
      const say = (line: string) => (o.json ? io.stderr(`${line}\n`) : io.stdout(`${line}\n`));
      say(`scenario ${name}, seed ${seed}`);
      let r: ScenarioResult;
      try {
        r = await s.run({
          seed,
          json: o.json,
          log: say,
          timeline: o.html !== undefined,
          ...(o.kills !== undefined ? { kills: o.kills } : {}),
          ...(o.duration !== undefined ? { durationMs: o.duration } : {}),
          keepData: o.keepData,
          ...(o.file !== undefined ? { file: o.file } : {}),
        });
      } catch (error) {
        io.stderr(`twopc: scenario ${name} could not run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
        io.setExitCode(EXIT_CANNOT_RUN);
        return;
      }
      if (o.html !== undefined) {
        const command = `twopc scenario run ${name} --seed ${seed}${o.kills !== undefined ? ` --kills ${o.kills}` : ''}${o.duration !== undefined ? ` --duration ${o.duration / 1000}s` : ''}`;
        fs.writeFileSync(o.html, renderHtml(r, { command, seed }));
        say(`wrote ${o.html}`);
      }
      if (o.json) io.stdout(`${JSON.stringify({ ...r, seed })}\n`);
      else io.stdout(formatResult(r));
      io.setExitCode(r.ok ? 0 : EXIT_CHECK_FAILED);
    });

  return scenario;
}
