/**
 * `twopc scenario list|run`: argument parsing and the output contract, with
 * the scenarios stubbed out (the real ones run in demos.test.ts and friends),
 * plus one end-to-end run of the real CLI on real processes.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { formatResult, parseDuration, registerScenarioCommands } from '../../scenarios/cli.ts';
import { CLI } from '../../scenarios/harness.ts';
import { SCENARIOS } from '../../scenarios/registry.ts';

function runCli(args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  let code = 0;
  const program = new Command().exitOverride();
  registerScenarioCommands(program, {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    setExitCode: (c) => {
      code = c;
    },
  });
  return program.parseAsync(['node', 'twopc', ...args]).then(() => ({ out, err, code }));
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-scenario-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('parseDuration', () => {
  it('reads seconds, minutes, hours and milliseconds, a bare number as seconds', () => {
    expect([parseDuration('90'), parseDuration('90s'), parseDuration('5m'), parseDuration('1500ms'), parseDuration('1h')]).toEqual([
      90_000, 90_000, 300_000, 1_500, 3_600_000,
    ]);
  });
  it('refuses nonsense and out-of-range values with a clear message', () => {
    expect(() => parseDuration('soon')).toThrow(/Expected `duration` like 90s/);
    expect(() => parseDuration('10ms')).toThrow(/from 1s to 6h/);
    expect(() => parseDuration('7h')).toThrow(/from 1s to 6h/);
  });
});

describe('twopc scenario', () => {
  it('lists every scenario, as text and as one JSON object', async () => {
    const text = await runCli(['scenario', 'list']);
    for (const s of SCENARIOS) expect(text.out).toContain(s.name);
    const json = await runCli(['scenario', 'list', '--json']);
    expect(JSON.parse(json.out).scenarios.map((s: { name: string }) => s.name)).toEqual(SCENARIOS.map((s) => s.name));
    expect(SCENARIOS.map((s) => s.name)).toEqual(
      expect.arrayContaining(['blocking', 'coordinator-crash', 'participant-crash', 'cooperative-termination', 'heuristic', 'crash-points', 'network-faults', 'chaos-soak']),
    );
  });

  it('exits 2 for an unknown scenario, naming the known ones', async () => {
    const r = await runCli(['scenario', 'run', 'nope']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown scenario "nope".*blocking/);
  });

  it('formats a result with one line per check', () => {
    const text = formatResult({ name: 'x', ok: false, checks: [{ name: 'a', ok: true, detail: 'd1' }, { name: 'b', ok: false, detail: 'd2' }], figures: { n: 1 } });
    expect(text).toBe('scenario x: A CHECK FAILED\n  ok   a: d1\n  FAIL b: d2\n  figures: n=1\n');
  });

  it('runs a demo end to end: exactly one JSON object on stdout, an HTML diagram, exit 0', async () => {
    const html = path.join(tmp, 'heuristic.html');
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'scenario', 'run', 'heuristic', '--seed', '7', '--json', '--html', html], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(timer);
    expect(code, err).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0] as string);
    expect(r).toMatchObject({ name: 'heuristic', ok: true, seed: 7 });
    expect(r.checks.length).toBeGreaterThan(3);
    // The narration went to stderr.
    expect(err).toMatch(/operator/);
    const page = fs.readFileSync(html, 'utf8');
    expect(page).toContain('<svg');
    // Lanes for the client, the coordinator and each participant, arrows for the protocol, a crash mark.
    for (const lane of ['client', 'coordinator', 'p1', 'p2', 'p3']) expect(page).toContain(`font-weight="bold">${lane}</text>`);
    expect(page).toMatch(/>prepare</);
    expect(page).toMatch(/>vote yes</);
    // The restarted coordinator resends COMMIT; a participant that learned it first through its own
    // inquiry logs no receipt of the resend, and its arrow says so. Either way the commit is drawn.
    expect(page).toMatch(/>commit(?: \(receipt not logged\))?</);
    expect(page).toContain('heuristic-mixed');
    expect(page).toMatch(/SIGKILL|after-decision-logged/);
  }, 180_000);
});
