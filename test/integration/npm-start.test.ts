/**
 * Issue 3, item 5, as a new user does it: `npm start`, copy the curl line it
 * prints, run it. The transfer commits, the balances move, and Ctrl-C (SIGINT
 * to the process group) leaves no node running.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { get } from '../helpers/http.ts';
import { tempDir } from '../helpers/cluster.ts';

const root = path.resolve(import.meta.dirname, '../..');
let dataDir = '';
afterAll(async () => {
  if (dataDir) await fs.promises.rm(dataDir, { recursive: true, force: true });
});

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * `twopc cluster` takes consecutive ports from --port: find four free ones in a
 * row. They are drawn below Linux's ephemeral range (32768 and up), where the
 * other tests' port-0 binds land, so a parallel test cannot take one between
 * this check and the cluster's start.
 */
async function freeRun(length: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (32_768 - 20_000 - length));
    const ports = Array.from({ length }, (_, i) => base + i);
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return base;
  }
  throw new Error('no run of free ports');
}

describe('npm start', () => {
  it('brings up the cluster and its printed curl line commits a transfer', { timeout: 180_000 }, async () => {
    dataDir = await tempDir('npm-start');
    const base = await freeRun(4);
    const child = spawn('npm', ['start', '--', '--port', String(base), '--data', dataDir], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TWOPC_LOG_LEVEL: 'warn' },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    let gone = false;
    child.once('exit', () => (gone = true));
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // The group is already gone.
      }
    };
    /** Whether any process of the group (npm, the cluster, its nodes) is still alive. */
    const groupAlive = (): boolean => {
      try {
        if (child.pid === undefined) return false;
        process.kill(-child.pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      const deadline = Date.now() + 120_000;
      while (!/curl -s -X POST/.test(out) && Date.now() < deadline && !gone) {
        await new Promise((r) => setTimeout(r, 200));
      }
      const curlLine = out.split('\n').find((l) => l.trim().startsWith('curl -s -X POST'));
      expect(curlLine, out).toBeDefined();
      expect(out).toContain(`coordinator  http://127.0.0.1:${base}`);

      const answer = JSON.parse(execFileSync('sh', ['-c', (curlLine as string).trim()], { timeout: 30_000 }).toString()) as Record<string, unknown>;
      expect(answer).toMatchObject({ outcome: 'committed', applied: true });
      expect((await get(`http://127.0.0.1:${base + 1}/v1/kv/alice`)).body.value).toBe(90);
      expect((await get(`http://127.0.0.1:${base + 2}/v1/kv/bob`)).body.value).toBe(110);

      // Ctrl-C in a terminal signals the whole foreground process group. Then wait (bounded) for
      // every process of it to exit by itself: nothing is killed before the checks below.
      signalGroup('SIGINT');
      const stopDeadline = Date.now() + 60_000;
      while (groupAlive() && Date.now() < stopDeadline) await new Promise((r) => setTimeout(r, 100));
      expect(groupAlive(), `a process of the cluster outlived Ctrl-C; output:\n${out}`).toBe(false);
      // Every node is gone: nothing listens on the cluster's ports any more.
      const stillBound = [];
      for (let i = 0; i < 4; i++) if (!(await isFree(base + i))) stillBound.push(base + i);
      expect(stillBound).toEqual([]);
    } finally {
      // Clean-up only, after the checks: whatever a failure left behind.
      signalGroup('SIGKILL');
    }
  });
});
