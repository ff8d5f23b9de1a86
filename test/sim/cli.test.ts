import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findFailingSeed } from './run.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'bin/twopc.ts');
/**
 * Only a guard against a hung run, far above the ~1-3 minutes 1000 seeds take on these 2 cores: how
 * fast the simulator is depends on the machine's load, so no test asserts it (the wall time is printed).
 */
const THOUSAND_SEEDS_HANG_MS = 900_000;

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real CLI in a child process, killed if it outlives `timeoutMs`. */
function twopc(args: readonly string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { cwd: ROOT, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('twopc simulate', () => {
  it(
    'runs 1000 seeds with --json: one JSON object, no violation, exit 0',
    async () => {
      const started = Date.now();
      const r = await twopc(['simulate', '--seeds', '1000', '--json'], THOUSAND_SEEDS_HANG_MS);
      const wallMs = Date.now() - started;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n')).toHaveLength(1);
      const t = JSON.parse(r.stdout) as Record<string, unknown> & { faults: Record<string, number> };
      console.log(`twopc simulate --seeds 1000: ${wallMs} ms wall (${String(t['wallMs'])} ms simulating)`);
      expect(t).toMatchObject({ seeds: 1000, transactions: 12_000, violations: 0, failedSeeds: [] });
      expect(t['firstFailure']).toBeUndefined();
      for (const key of ['committed', 'aborted', 'unknown', 'messages', 'crashes', 'restarts', 'tlaSteps']) {
        expect(t[key], key).toBeGreaterThan(0);
      }
      expect(Object.keys(t.faults).length).toBeGreaterThan(8);
    },
    THOUSAND_SEEDS_HANG_MS + 10_000,
  );

  it('prints a failing seed with its trace and the command that replays it, and exits 1', async () => {
    const bug = 'forget-decision-before-end';
    const found = await findFailingSeed(200, { bug });
    const seed = found?.seed ?? -1;
    const first = await twopc(['simulate', '--seed', String(seed), '--bug', bug], 60_000);
    expect(first.code).toBe(1);
    expect(first.stdout).toContain(`FAILED: seed ${seed}`);
    for (const v of found?.violations ?? []) expect(first.stdout).toContain(`${v.kind} at t=${v.at}: ${v.message}`);
    expect(first.stdout).toContain(`replay: twopc simulate --seed ${seed} --bug ${bug}`);
    const steps = first.stdout.split('\n').filter((l) => /^ {2}t= *\d+ /.test(l));
    expect(steps).toEqual(found?.trace.map((l) => `  ${l}`));
    // The replay prints the very same report.
    const again = await twopc(['simulate', '--seed', String(seed), '--bug', bug], 60_000);
    expect(again.code).toBe(1);
    const timeless = (out: string) => out.replace(/ in [\d.]+ s \(\d+ seeds\/s/, '');
    expect(timeless(again.stdout)).toBe(timeless(first.stdout));
  });

  it('refuses a bad flag with a clear message', async () => {
    const r = await twopc(['simulate', '--seeds', '0'], 60_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Expected `seeds` to be an integer from 1 to 1000000');
  });
});
