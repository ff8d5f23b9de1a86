/**
 * What a scenario is and what it reports. A scenario runs real twopc processes
 * (scenarios/harness.ts), narrates what happens through `ctx.log`, and returns
 * checks (each held or not, with a sentence saying why), figures (numbers a
 * reader or CI compares across runs) and, optionally, a timeline that
 * scenarios/render-html.ts draws as a sequence diagram.
 */
import type { RunPlots } from './run-plots.ts';

export interface ScenarioCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** The lanes of the sequence diagram: the client, the coordinator, p1..pN, and the harness itself. */
export type Lane = string;

/**
 * One thing that happened, in wall-clock ms (the nodes' pino `time` and the
 * harness's Date.now() share the machine's clock).
 *
 * - `message`: an arrow from `lane` at `atMs` to `to` at `toAtMs` (toAtMs
 *   missing: the message was not seen arriving, drawn as lost).
 * - `mark`: something a node did or suffered on its own lane (a forced WAL
 *   write, a crash, a restart, a pause).
 */
export type TimelineEvent =
  | {
      readonly kind: 'message';
      readonly atMs: number;
      readonly lane: Lane;
      readonly to: Lane;
      readonly toAtMs?: number;
      readonly label: string;
      readonly txId?: string;
      /** prepare/vote/commit/abort/ack/inquiry/client, for the arrow's colour. */
      readonly message: string;
    }
  | {
      readonly kind: 'mark';
      readonly atMs: number;
      readonly lane: Lane;
      readonly label: string;
      readonly txId?: string;
      /** wal/crash/restart/pause/resume/blocked/heuristic/note, for the mark's shape and colour. */
      readonly mark: string;
    };

export interface ScenarioResult {
  readonly name: string;
  readonly ok: boolean;
  readonly checks: readonly ScenarioCheck[];
  readonly figures: Readonly<Record<string, number | string>>;
  readonly timeline?: readonly TimelineEvent[];
  /** The lanes in display order, when the scenario knows them (else derived from the timeline). */
  readonly lanes?: readonly Lane[];
  /** chaos-soak and network-faults with a timeline: what happened over time, for the page's charts (scenarios/run-plots.ts). */
  readonly plots?: RunPlots;
}

export interface ScenarioContext {
  readonly seed: number;
  /** True when the caller wants one JSON object on stdout: narration goes to stderr only. */
  readonly json: boolean;
  /** Narration, one line at a time. */
  readonly log: (line: string) => void;
  /** Collect a timeline (for --html); scenarios may skip the log parsing otherwise. */
  readonly timeline?: boolean;
  /** chaos-soak: how many SIGKILLs to aim for. */
  readonly kills?: number;
  /** chaos-soak and network-faults: the longest the fault phase may run, in ms. */
  readonly durationMs?: number;
  /** Keep the data directories (WALs, node logs) after the run, and say where they are. */
  readonly keepData?: boolean;
  /** replay: the lab session (JSON saved from the lab page) to play again. */
  readonly file?: string;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Resolves a result even when a check fails; rejects only when the scenario could not run at all. */
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

export function check(name: string, ok: boolean, detail: string): ScenarioCheck {
  return { name, ok, detail };
}

export function result(
  name: string,
  checks: readonly ScenarioCheck[],
  figures: Record<string, number | string>,
  extra: { timeline?: readonly TimelineEvent[]; lanes?: readonly Lane[]; plots?: RunPlots } = {},
): ScenarioResult {
  return {
    name,
    ok: checks.length > 0 && checks.every((c) => c.ok),
    checks,
    figures,
    ...(extra.timeline ? { timeline: extra.timeline } : {}),
    ...(extra.lanes ? { lanes: extra.lanes } : {}),
    ...(extra.plots ? { plots: extra.plots } : {}),
  };
}
