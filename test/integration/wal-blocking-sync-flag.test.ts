/**
 * `--wal-blocking-sync-ms` (TWOPC_WAL_BLOCKING_SYNC_MS) on real processes: the participant's and
 * the coordinator's WAL syncs hold the event loop by default and stay in libuv's thread pool with
 * 0, as their /metrics count them; a bad value, or the flag on an HA member (which keeps no local
 * WAL), is refused at start with one line and the configuration exit code.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, NodeProcess } from '../../scenarios/harness.ts';
import { scrapeCounters } from '../../scenarios/bench-probes.ts';
import { freePort } from '../../scenarios/ports.ts';
import { EXIT_CODES } from '../../shared/exit-codes.ts';
import { linesOf, runTwopc } from '../helpers/cli.ts';
import { post } from '../helpers/http.ts';
import { tempDir } from '../helpers/cluster.ts';
import { Cleanup, deadUrl } from '../participant/fixtures.ts';

const cleanup = new Cleanup();
let root: string;
beforeAll(async () => {
  root = await tempDir('wal-blocking-flag');
});
afterAll(async () => {
  await cleanup.run();
});

/**
 * Starts a `role` node on a fresh directory with `args`, lets `work` run against its URL, and
 * returns its batch-sync counters from /metrics: all of them, and those that blocked.
 */
async function syncsOf(role: 'participant' | 'coordinator', name: string, args: (port: number) => Promise<string[]>, env: Record<string, string> = {}, work?: (url: string) => Promise<void>) {
  const port = await freePort();
  const node = new NodeProcess({ name, role, port, logFile: path.join(root, `${name}.log`), args: await args(port), env: { TWOPC_LOG_LEVEL: 'warn', ...env } });
  cleanup.add(() => node.stop());
  await node.start();
  await work?.(node.url);
  const counters = await scrapeCounters(node.url);
  await node.stop();
  return { all: counters.walDatasyncs, blocking: counters.walDatasyncsBlocking };
}

describe('--wal-blocking-sync-ms', () => {
  it("decides where a participant's batch fdatasyncs run: on the event loop by default, in the thread pool with 0, and by the bound it is given", { timeout: 120_000 }, async () => {
    const coordinator = await deadUrl();
    /** `prepares` forced PREPAREDs through the participant's own route, one after another, then its sync counters. */
    const participantSyncs = (name: string, env: Record<string, string>, flags: string[] = [], prepares = 1) =>
      syncsOf(
        'participant',
        name,
        async (port) => ['--name', name, '--port', String(port), '--data', path.join(root, name), '--coordinator', coordinator, ...flags],
        env,
        async (url) => {
          for (let i = 1; i <= prepares; i++) {
            const res = await post(`${url}/v1/2pc/prepare`, { txId: `tx-1-${i}`, coordinator, participants: [url], ops: [{ op: 'put', key: `k${i}`, value: 1 }] });
            expect(res.body).toMatchObject({ vote: 'yes' });
          }
        },
      );
    const byDefault = await participantSyncs('pdefault', {});
    expect(byDefault.all).toBeGreaterThanOrEqual(1);
    // The WAL's first batch sync blocks whatever the disk's speed (the mean starts with it).
    expect(byDefault.blocking).toBeGreaterThanOrEqual(1);
    const pool = await participantSyncs('pzero', {}, ['--wal-blocking-sync-ms', '0']);
    expect(pool.all).toBeGreaterThanOrEqual(1);
    expect(pool.blocking).toBe(0);
    // The same from the environment, as containers set it.
    expect((await participantSyncs('penv', { TWOPC_WAL_BLOCKING_SYNC_MS: '0' })).blocking).toBe(0);
    // A bound no sync meets (a microsecond): the first batch sync blocks, takes longer, and the log
    // backs off to the thread pool for a second, in which the second prepare's sync falls.
    expect(await participantSyncs('ptiny', {}, ['--wal-blocking-sync-ms', '0.001'], 2)).toEqual({ all: 2, blocking: 1 });
  });

  it("does the same for the coordinator's WAL (its BOOT record's sync at start)", { timeout: 120_000 }, async () => {
    const coordinatorSyncs = (name: string, flags: string[]) =>
      syncsOf('coordinator', name, async (port) => ['--port', String(port), '--data', path.join(root, name), '--participants', `p1=${await deadUrl()}`, ...flags]);
    const byDefault = await coordinatorSyncs('cdefault', []);
    expect(byDefault.all).toBeGreaterThanOrEqual(1);
    // The first blocks whatever the disk's speed; a loaded machine may send later ones to the pool.
    expect(byDefault.blocking).toBeGreaterThanOrEqual(1);
    const pool = await coordinatorSyncs('czero', ['--wal-blocking-sync-ms', '0']);
    expect(pool.all).toBeGreaterThanOrEqual(1);
    expect(pool.blocking).toBe(0);
  });

  it('refuses a value outside 0 to 1000 ms, or one given to an HA member, with one line and the configuration exit code', { timeout: 120_000 }, async () => {
    for (const bad of ['-1', '1001', 'soon', '']) {
      const run = await runTwopc(['participant', '--name', 'p1', '--port', String(await freePort()), '--data', path.join(root, 'bad'), '--coordinator', await deadUrl(), '--wal-blocking-sync-ms', bad]);
      expect(run.killed, run.stderr).toBe(false);
      expect(run.code, `${bad}: ${run.stderr}`).toBe(EXIT_CODES.config);
      expect(linesOf(run.stderr)).toHaveLength(1);
      expect(run.stderr).toContain('wal-blocking-sync-ms');
    }
    const ha = await runTwopc([
      'coordinator',
      '--port',
      String(await freePort()),
      '--data',
      path.join(root, 'ha'),
      '--participants',
      `p1=${await deadUrl()}`,
      '--etcd',
      await deadUrl(),
      '--group',
      'g',
      '--wal-blocking-sync-ms',
      '5',
    ]);
    expect(ha.killed, ha.stderr).toBe(false);
    expect(ha.code, ha.stderr).toBe(EXIT_CODES.config);
    expect(linesOf(ha.stderr)).toHaveLength(1);
    expect(ha.stderr).toContain('HA member');
  });

  it('is ignored by an HA member when it comes from the environment, which every node of a cluster inherits', { timeout: 120_000 }, async () => {
    // With etcd unreachable the member starts and keeps asking for it: its first "etcd call failed"
    // line comes after the start-up checks, so the environment's value got past them.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CLI, 'coordinator', '--port', '0', '--data', path.join(root, 'ha-env'), '--participants', `p1=${await deadUrl()}`, '--etcd', await deadUrl(), '--group', 'g'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TWOPC_LOG_LEVEL: 'warn', TWOPC_WAL_BLOCKING_SYNC_MS: '5' } },
    );
    cleanup.add(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
    });
    let output = '';
    const outcome = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('no etcd retry within 60 s'), 60_000);
      const read = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('etcd call failed')) {
          clearTimeout(timer);
          resolve('retrying etcd');
        }
      };
      child.stdout.on('data', read);
      child.stderr.on('data', read);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve(`exited with ${code}`);
      });
    });
    expect(outcome, output).toBe('retrying etcd');
  });
});
