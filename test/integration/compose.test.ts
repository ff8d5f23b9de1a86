/**
 * No Docker engine runs here, so the Dockerfile and docker-compose.yml are
 * checked the next best way. The Dockerfile is read for its final stage; the
 * "image" is built as that stage is (dist/ from tsconfig.build.json, beside
 * package.json and the dependencies); then each compose service runs that
 * image's ENTRYPOINT with its command and environment as a local process
 * (hostnames and ports remapped to loopback), as the image's unprivileged user
 * when this test runs as root. A transaction commits, the image's HEALTHCHECK
 * passes for each, and `docker compose stop` (SIGTERM to every service)
 * followed by `docker compose start` exits 0 and loses nothing.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeProcess } from '../../scenarios/harness.ts';
import { freePorts } from '../../scenarios/ports.ts';
import { get, post } from '../helpers/http.ts';
import { tempDir } from '../helpers/cluster.ts';
import { buildImageApp, type ComposeService, finalStage, instruction, loadCompose, UNPRIVILEGED_ID } from '../helpers/compose-image.ts';

const compose = { services: loadCompose('docker-compose.yml') };
const stage = finalStage();

const procs: NodeProcess[] = [];
let dataDir = '';

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  if (dataDir && !process.env.TWOPC_KEEP_TEST_DATA) await fs.promises.rm(dataDir, { recursive: true, force: true });
});

describe('Dockerfile and docker-compose.yml', () => {
  it('ships the built package with production dependencies only, as a non-root user with a healthcheck', () => {
    expect(instruction('ENTRYPOINT')).toBe('["node", "dist/bin/twopc.js"]');
    expect(instruction('USER')).toBe('node');
    expect(instruction('HEALTHCHECK')).toMatch(/^--interval=\S+ .*CMD \[/);
    const runs = stage.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /npm ci .*--omit=dev/.test(r))).toBe(true);
    // Nothing in the shipped stage runs or installs tsx or the TypeScript sources.
    expect(stage.map((i) => i.args).join('\n')).not.toMatch(/tsx|\.ts\b/);
    expect(stage.some((i) => i.keyword === 'COPY' && i.args === '--from=build /app/dist ./dist')).toBe(true);

    const names = Object.keys(compose.services);
    expect(names).toEqual(['coordinator', 'p1', 'p2', 'p3']);
    const volumes = names.map((n) => compose.services[n]?.volumes?.[0]?.split(':')[0]);
    expect(new Set(volumes).size).toBe(names.length);
  });

  it('runs as local processes from the built image, commits, and keeps it across SIGTERM and a restart', { timeout: 600_000 }, async () => {
    dataDir = await tempDir('compose');
    // The image's /app: dist/ built as the build stage builds it, package.json, the dependencies.
    const app = await buildImageApp(dataDir);
    const asRoot = process.getuid?.() === 0;

    const [node, entry] = JSON.parse(instruction('ENTRYPOINT') as string) as [string, string];
    expect(node).toBe('node');
    const names = Object.keys(compose.services);
    const ports = await freePorts(names.length);
    const hostPort = new Map(names.map((n, i) => [n, ports[i] as number]));
    // http://p1:7001 → http://127.0.0.1:<p1's free port>
    const remapUrls = (v: string) => v.replace(/http:\/\/([a-z0-9-]+):\d+/g, (m, host: string) => (hostPort.has(host) ? `http://127.0.0.1:${hostPort.get(host)}` : m));

    for (const name of names) {
      const svc = compose.services[name] as ComposeService;
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(svc.environment ?? {})) env[k] = remapUrls(String(v));
      env.TWOPC_PORT = String(hostPort.get(name));
      env.TWOPC_HOST = '127.0.0.1';
      env.TWOPC_DATA = path.join(dataDir, name);
      fs.mkdirSync(env.TWOPC_DATA);
      if (asRoot) fs.chownSync(env.TWOPC_DATA, UNPRIVILEGED_ID, UNPRIVILEGED_ID);
      const [role, ...args] = svc.command;
      expect(role === 'coordinator' || role === 'participant').toBe(true);
      procs.push(
        new NodeProcess({
          name,
          role: role as 'coordinator' | 'participant',
          port: hostPort.get(name) as number,
          command: [path.join(app, entry), role as string],
          cwd: app,
          args,
          env: { ...env, NODE_ENV: 'production' },
          logFile: path.join(dataDir, 'logs', `${name}.log`),
          ...(asRoot && { uid: UNPRIVILEGED_ID, gid: UNPRIVILEGED_ID }),
        }),
      );
    }
    await Promise.all(procs.map((p) => p.start()));

    const coordinator = procs[0] as NodeProcess;
    const res = await post(`${coordinator.url}/v1/transactions`, {
      branches: ['p1', 'p2', 'p3'].map((p) => ({ participant: p, ops: [{ op: 'put', key: 'compose', value: p }] })),
    });
    expect(res.body).toMatchObject({ outcome: 'committed', applied: true });

    const healthcheck = JSON.parse((instruction('HEALTHCHECK') as string).replace(/^.*?CMD /, '')) as string[];
    for (const p of procs) {
      const { body } = await get(`${p.url}/healthz`);
      if (asRoot) expect(fs.readFileSync(`/proc/${String(body.pid)}/status`, 'utf8'), `${p.name} runs unprivileged`).toMatch(new RegExp(`^Uid:\\s+${UNPRIVILEGED_ID}\\s`, 'm'));
      const [cmd, ...rest] = healthcheck;
      const check = spawnSync(cmd === 'node' ? process.execPath : String(cmd), rest, { env: { ...process.env, TWOPC_PORT: String(p.spec.port) }, timeout: 10_000 });
      expect(check.status, `${p.name}'s healthcheck`).toBe(0);
    }

    // `docker compose stop`: SIGTERM to every service at once; each drains and exits 0 by itself.
    for (const p of procs) process.kill(p.pid as number, 'SIGTERM');
    const exits = await Promise.all(procs.map((p) => p.waitExit(30_000)));
    expect(exits).toEqual(procs.map(() => ({ code: 0, signal: null })));

    // `docker compose start`: the same data; the commit is still there.
    await Promise.all(procs.map((p) => p.start()));
    for (const name of ['p1', 'p2', 'p3']) {
      const p = procs.find((x) => x.name === name) as NodeProcess;
      expect((await get(`${p.url}/v1/kv/compose`)).body, name).toMatchObject({ value: name });
    }
  });
});
