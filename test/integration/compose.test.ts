/**
 * No Docker engine runs here, so docker-compose.yml is checked the next best
 * way: parse it, then run each service's command with its environment as a
 * local process (hostnames and ports remapped to loopback), run a transaction
 * through them, and run each service's healthcheck command.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { NodeProcess } from '../../scenarios/harness.ts';
import { freePorts } from '../../scenarios/ports.ts';
import { post } from '../helpers/http.ts';
import { tempDir } from '../helpers/cluster.ts';

interface Service {
  command: string[];
  environment: Record<string, string>;
  healthcheck?: { test: string[] };
  volumes?: string[];
}

const root = path.resolve(import.meta.dirname, '../..');
const compose = parseYaml(fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const procs: NodeProcess[] = [];
let dataDir = '';

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  if (dataDir) await fs.promises.rm(dataDir, { recursive: true, force: true });
});

describe('docker-compose.yml', () => {
  it('declares a coordinator and participants that use the image entrypoint and their own WAL volumes', () => {
    const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/ENTRYPOINT \["node", "--import", "tsx", "bin\/twopc\.ts"\]/);
    const names = Object.keys(compose.services);
    expect(names).toEqual(['coordinator', 'p1', 'p2', 'p3']);
    const volumes = names.map((n) => compose.services[n]?.volumes?.[0]?.split(':')[0]);
    expect(new Set(volumes).size).toBe(names.length);
  });

  it('runs as local processes with its commands and environment, and commits a transaction', async () => {
    dataDir = await tempDir('compose');
    const names = Object.keys(compose.services);
    const ports = await freePorts(names.length);
    const hostPort = new Map(names.map((n, i) => [n, ports[i] as number]));
    // http://p1:7001 → http://127.0.0.1:<p1's free port>
    const remapUrls = (v: string) => v.replace(/http:\/\/([a-z0-9-]+):\d+/g, (m, host: string) => (hostPort.has(host) ? `http://127.0.0.1:${hostPort.get(host)}` : m));

    for (const name of names) {
      const svc = compose.services[name] as Service;
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(svc.environment)) env[k] = remapUrls(String(v));
      env.TWOPC_PORT = String(hostPort.get(name));
      env.TWOPC_HOST = '127.0.0.1';
      env.TWOPC_DATA = path.join(dataDir, name);
      const [role, ...args] = svc.command;
      expect(role === 'coordinator' || role === 'participant').toBe(true);
      procs.push(
        new NodeProcess({
          name,
          role: role as 'coordinator' | 'participant',
          port: hostPort.get(name) as number,
          args,
          env,
          logFile: path.join(dataDir, 'logs', `${name}.log`),
        }),
      );
    }
    await Promise.all(procs.map((p) => p.start()));

    const coordinator = procs[0] as NodeProcess;
    const res = await post(`${coordinator.url}/v1/transactions`, {
      branches: ['p1', 'p2', 'p3'].map((p) => ({ participant: p, ops: [{ op: 'put', key: 'compose', value: p }] })),
    });
    expect(res.body).toMatchObject({ outcome: 'committed', applied: true });

    for (const name of names) {
      const svc = compose.services[name] as Service;
      const [kind, cmd, ...rest] = svc.healthcheck?.test ?? [];
      expect(kind).toBe('CMD');
      const check = spawnSync(cmd === 'node' ? process.execPath : String(cmd), rest, {
        env: { ...process.env, TWOPC_PORT: String(hostPort.get(name)) },
        timeout: 10_000,
      });
      expect(check.status, `${name}'s healthcheck`).toBe(0);
    }
  });
});
