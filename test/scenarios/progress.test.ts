/**
 * scenarios/progress.ts: the bar's text, its bounded redraw rate (on an injected
 * clock, so nothing here is timed), and that it draws nothing with --json or on a
 * stream that is not a terminal; and the real CLI, piped, prints no escape code.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLEAR_LINE, createProgress, PROGRESS_BAR_CELLS, PROGRESS_REDRAW_MS_MIN, renderProgress } from '../../scenarios/progress.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI_HANG_MS = 120_000;

/** A stream that records what is written, a terminal or not. */
function stream(isTTY: boolean): { isTTY: boolean; written: string[]; write(text: string): boolean } {
  const written: string[] = [];
  return { isTTY, written, write: (text: string) => written.push(text) > 0 };
}

describe('renderProgress', () => {
  it('draws the fraction done as filled cells, with the counts and the percentage', () => {
    expect(renderProgress('simulate', 0, 10)).toBe(`simulate [${'.'.repeat(PROGRESS_BAR_CELLS)}] 0/10 0%`);
    expect(renderProgress('simulate', 5, 10)).toBe(`simulate [${'#'.repeat(15)}${'.'.repeat(15)}] 5/10 50%`);
    expect(renderProgress('soak', 10, 10)).toBe(`soak [${'#'.repeat(PROGRESS_BAR_CELLS)}] 10/10 100%`);
  });

  it('clamps a count past the total, and a total of zero', () => {
    expect(renderProgress('x', 12, 10)).toBe(`x [${'#'.repeat(PROGRESS_BAR_CELLS)}] 12/10 100%`);
    expect(renderProgress('x', 0, 0)).toBe(`x [${'.'.repeat(PROGRESS_BAR_CELLS)}] 0/0 0%`);
  });
});

describe('createProgress', () => {
  it('redraws on a terminal at most once per PROGRESS_REDRAW_MS_MIN, always at the end, and clears its line when done', () => {
    const out = stream(true);
    let nowMs = 0;
    const p = createProgress({ label: 'simulate', total: 100, stream: out, nowMs: () => nowMs });
    p.update(1);
    for (let i = 2; i < 50; i++) p.update(i);
    expect(out.written).toEqual([CLEAR_LINE + renderProgress('simulate', 1, 100)]);
    nowMs = PROGRESS_REDRAW_MS_MIN;
    p.update(50);
    p.update(100);
    p.finish();
    expect(out.written).toEqual([
      CLEAR_LINE + renderProgress('simulate', 1, 100),
      CLEAR_LINE + renderProgress('simulate', 50, 100),
      CLEAR_LINE + renderProgress('simulate', 100, 100),
      CLEAR_LINE,
    ]);
  });

  it('comes back at once after a narration line erased it, then keeps to the redraw rate', () => {
    const out = stream(true);
    const p = createProgress({ label: 'crash-points cases', total: 10, stream: out, nowMs: () => 0 });
    p.update(1);
    p.finish();
    p.update(2);
    p.update(3);
    expect(out.written).toEqual([CLEAR_LINE + renderProgress('crash-points cases', 1, 10), CLEAR_LINE, CLEAR_LINE + renderProgress('crash-points cases', 2, 10)]);
  });

  it('draws nothing with --json, or when the stream is not a terminal', () => {
    for (const [isTTY, json] of [[true, true], [false, false]] as const) {
      const out = stream(isTTY);
      const p = createProgress({ label: 'simulate', total: 3, json, stream: out, nowMs: () => 0 });
      p.update(1);
      p.update(3);
      p.finish();
      expect(out.written).toEqual([]);
    }
  });
});

describe('the CLI, piped', () => {
  it('twopc simulate prints no progress escape codes on stdout or stderr', async () => {
    const ran = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bin/twopc.ts'), 'simulate', '--seeds', '3'], { cwd: ROOT, timeout: CLI_HANG_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      });
    });
    expect(ran.code).toBe(0);
    expect(ran.stdout).toContain('seeds          3 in');
    expect(ran.stdout + ran.stderr).not.toContain('\x1b[');
    expect(ran.stdout + ran.stderr).not.toContain('\r');
  }, CLI_HANG_MS + 10_000);
});
