/**
 * Runs the real `twopc` CLI as a child process until it exits, for tests of how a start
 * fails: its exit code and what it wrote on stderr. A child that does not exit in time is
 * killed, and the result says so (code null), so a start that wrongly succeeds fails the test
 * instead of hanging it.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { CLI } from '../../scenarios/harness.ts';

/** A refused start exits within a second or two; tsx's first compile on a busy machine takes longer. */
const EXIT_WAIT_MS_MAX = 60_000;

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the child was still running after the wait and was killed. */
  readonly killed: boolean;
}

export function runTwopc(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CliRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TWOPC_LOG_LEVEL: 'warn', ...env },
  });
  let stdout = '';
  let stderr = '';
  let killed = false;
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, EXIT_WAIT_MS_MAX);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, killed });
    });
  });
}

/** The lines of `text`, without the empty last one. */
export const linesOf = (text: string): string[] => text.split('\n').filter((line) => line.trim() !== '');

/**
 * A tmpfs mounted on `dir` with `options` (e.g. "size=256k", "size=1m,ro"). Mounting needs
 * root; without it this throws, so a test that needs it fails loudly rather than skipping.
 */
export function mountTmpfs(dir: string, options: string): () => void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    const detail = (error as { stderr?: Buffer }).stderr?.toString().trim() ?? String(error);
    throw new Error(`this test mounts a tmpfs on ${dir} (${options}) and needs root to do it: ${detail}`);
  }
  return () => execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
}
