/**
 * `twopc cluster --ha` as a user runs it: a local etcd, two coordinators and three participants.
 * The printed curl line commits through the leader; after the leader is SIGKILLed the standby
 * takes over and commits the next transfer; Ctrl-C (SIGINT to the process group) leaves nothing
 * running.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { call, get } from '../helpers/http.ts';
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

/** Consecutive free ports below the ephemeral range (see npm-start.test.ts for why). */
async function freeRun(length: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (32_768 - 20_000 - length));
    const ports = Array.from({ length }, (_, i) => base + i);
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return base;
  }
  throw new Error('no run of free ports');
}

const POLL_MS = 200;
const POLLS_MAX = 600;

describe('twopc cluster --ha', () => {
  it('commits through the leader, fails over to the standby after kill -9, and stops cleanly', { timeout: 240_000 }, async () => {
    dataDir = await tempDir('cluster-ha');
    // c1, p1..p3, c2, etcd client and peer.
    const base = await freeRun(7);
    const child = spawn(process.execPath, ['--import', 'tsx', 'bin/twopc.ts', 'cluster', '--ha', '--port', String(base), '--data', dataDir], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TWOPC_LOG_LEVEL: 'warn' },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    let gone = false;
    const exited = new Promise<void>((resolve) => child.once('exit', () => ((gone = true), resolve())));
    const groupAlive = (): boolean => {
      try {
        process.kill(-(child.pid as number), 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      for (let i = 0; i < POLLS_MAX && !/curl -s -X POST/.test(out) && !gone; i++) await new Promise((r) => setTimeout(r, POLL_MS));
      const curlLine = out.split('\n').find((l) => l.trim().startsWith('curl -s -X POST'));
      expect(curlLine, out).toBeDefined();
      const leaderUrl = /POST (\S+)\/v1\/transactions/.exec(curlLine as string)?.[1] as string;
      const body = JSON.parse(/-d '(.*)'$/.exec((curlLine as string).trim())?.[1] as string) as unknown;
      const first = await call<{ outcome: string }>('POST', `${leaderUrl}/v1/transactions`, body);
      expect(first.body.outcome).toBe('committed');

      const c1 = `http://127.0.0.1:${base}`;
      const c2 = `http://127.0.0.1:${base + 4}`;
      const standby = leaderUrl === c1 ? c2 : c1;
      const { body: health } = await get<{ pid: number }>(`${leaderUrl}/healthz`);
      process.kill(health.pid, 'SIGKILL');
      // The standby answers 503 not_leader until its election; then it commits.
      let second: { status: number; body: { outcome?: string } } | undefined;
      for (let i = 0; i < POLLS_MAX; i++) {
        second = await call<{ outcome?: string }>('POST', `${standby}/v1/transactions`, body);
        if (second.status === 200) break;
        expect(second.status).toBe(503);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      expect(second?.body.outcome).toBe('committed');
      const { body: kv } = await get<{ entries: Record<string, number> }>(`http://127.0.0.1:${base + 1}/v1/kv`);
      expect(kv.entries.alice).toBe(80);
    } finally {
      if (!gone) process.kill(-(child.pid as number), 'SIGINT');
      await exited;
      for (let i = 0; i < POLLS_MAX && groupAlive(); i++) await new Promise((r) => setTimeout(r, POLL_MS));
      if (groupAlive()) process.kill(-(child.pid as number), 'SIGKILL');
    }
    expect(groupAlive()).toBe(false);
  });
});
