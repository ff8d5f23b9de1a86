/**
 * A one-line progress bar for long runs (simulate, the chaos soak, bench, the
 * crash points enumeration), drawn on stderr only when it is a terminal and the
 * output is not --json: piped output and JSON stay free of escape codes. The bar
 * is redrawn at most once per PROGRESS_REDRAW_MS_MIN, however often work is done.
 */

/** The least time between two redraws: a fast loop must not spend itself on the terminal. */
export const PROGRESS_REDRAW_MS_MIN = 100;
/** The bar's width in cells; the label and counts follow it. */
export const PROGRESS_BAR_CELLS = 30;
/** Erases the current line and returns to its start. */
export const CLEAR_LINE = '\r\x1b[2K';

/** The bar's text for `done` of `total` (no escape codes): `label [#####.....] 5/10 50%`. */
export function renderProgress(label: string, done: number, total: number): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(fraction * PROGRESS_BAR_CELLS);
  const bar = '#'.repeat(filled) + '.'.repeat(PROGRESS_BAR_CELLS - filled);
  return `${label} [${bar}] ${done}/${total} ${Math.floor(fraction * 100)}%`;
}

export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

export interface Progress {
  /** Records that the work is `done` of its total; redraws when the last redraw is old enough. */
  update(done: number): void;
  /** Erases the bar, so the run's own output (a narration line, the report) starts on a clean line. */
  finish(): void;
}

export interface ProgressOptions {
  readonly label: string;
  readonly total: number;
  /** --json: no bar at all. */
  readonly json?: boolean;
  readonly stream?: ProgressStream;
  readonly nowMs?: () => number;
}

const NO_PROGRESS: Progress = { update: () => undefined, finish: () => undefined };

/** A progress bar on `stream` (stderr by default), or one that draws nothing when that is not a terminal or with --json. */
export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  if (options.json === true || stream.isTTY !== true) return NO_PROGRESS;
  const nowMs = options.nowMs ?? (() => performance.now());
  let drawnAtMs = -Infinity;
  let drawn = false;
  return {
    update(done) {
      const now = nowMs();
      // A bar erased for a narration line comes back at once: such redraws are bounded by the narration.
      if (drawn && done < options.total && now - drawnAtMs < PROGRESS_REDRAW_MS_MIN) return;
      drawnAtMs = now;
      drawn = true;
      stream.write(CLEAR_LINE + renderProgress(options.label, done, options.total));
    },
    finish() {
      if (drawn) stream.write(CLEAR_LINE);
      drawn = false;
    },
  };
}
