/**
 * docker-compose.ha.yml checked as compose.test.ts checks docker-compose.yml, without a Docker
 * engine: the etcd service's command runs with the local `etcd` binary (the same release as the
 * image the file names), each twopc service runs the image's ENTRYPOINT with its command and
 * environment as a local process, hostnames and container ports remapped to free loopback
 * ports, in the order depends_on gives. A transfer commits through the leader; the follower
 * refuses one, naming the leader by the URL it advertised (which answers); the leader is SIGKILLed; the standby takes over and commits the next one. Every process is killed after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeProcess } from '../../scenarios/harness.ts';
import { freePorts } from '../../scenarios/ports.ts';
import { etcdAvailable, etcdBinary } from '../../scenarios/etcd.ts';
import { call, get } from '../helpers/http.ts';
import { tempDir } from '../helpers/cluster.ts';
import { buildImageApp, type ComposeService, instruction, loadCompose, UNPRIVILEGED_ID } from '../helpers/compose-image.ts';

const services = loadCompose('docker-compose.ha.yml');
const names = Object.keys(services);
const svc = (name: string): ComposeService => services[name] as ComposeService;
const env = (name: string): Record<string, string> => svc(name).environment ?? {};

const POLL_MS = 200;
/** Bounds every wait on a condition: etcd health, the first election, the takeover. */
const POLLS_MAX = 600;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const procs: NodeProcess[] = [];
let etcd: ChildProcess | undefined;
let dataDir = '';

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  if (etcd && etcd.exitCode === null && etcd.signalCode === null) {
    const exited = new Promise((r) => etcd?.once('exit', r));
    etcd.kill('SIGKILL');
    await exited;
  }
  if (dataDir && !process.env.TWOPC_KEEP_TEST_DATA) await fs.promises.rm(dataDir, { recursive: true, force: true });
});

/** Services in an order where each comes after everything it depends_on. */
function startOrder(): string[] {
  const order: string[] = [];
  const visit = (name: string, depth: number): void => {
    expect(depth, 'depends_on has no cycle').toBeLessThanOrEqual(names.length);
    if (order.includes(name)) return;
    for (const dep of Object.keys(svc(name).depends_on ?? {})) visit(dep, depth + 1);
    order.push(name);
  };
  for (const name of names) visit(name, 0);
  return order;
}

/** Every (service, container port) the file talks to or listens on, each given a free loopback port. */
async function portMap(): Promise<Map<string, number>> {
  const keys = new Set<string>();
  for (const name of names) {
    const text = JSON.stringify([svc(name).command, env(name)]);
    for (const m of text.matchAll(/http:\/\/([a-z0-9-]+):(\d+)/g)) keys.add(m[1] === '0.0.0.0' ? `${name}:${m[2]}` : `${m[1]}:${m[2]}`);
    if (env(name).TWOPC_PORT !== undefined) keys.add(`${name}:${env(name).TWOPC_PORT}`);
  }
  const ports = await freePorts(keys.size);
  return new Map([...keys].map((k, i) => [k, ports[i] as number]));
}

describe('docker-compose.ha.yml', () => {
  it('declares etcd, two coordinators of one group on it, and participants that know both', () => {
    expect(names).toEqual(['etcd', 'c1', 'c2', 'p1', 'p2', 'p3']);
    expect(svc('etcd').image).toMatch(/^quay\.io\/coreos\/etcd:v3\.4\.\d+$/);
    expect(svc('etcd').healthcheck?.test.slice(0, 2)).toEqual(['CMD', 'etcdctl']);
    for (const c of ['c1', 'c2']) {
      expect(svc(c).command, c).toEqual(['coordinator']);
      expect(env(c), c).toMatchObject({ TWOPC_NAME: c, TWOPC_ETCD: 'http://etcd:2379', TWOPC_GROUP: env('c1').TWOPC_GROUP });
      expect(svc(c).depends_on, c).toEqual({ etcd: { condition: 'service_healthy' } });
      // Listening on every interface, a member registers the URL the others reach it by: its service name.
      expect(env(c).TWOPC_HOST, c).toBe('0.0.0.0');
      expect(env(c).TWOPC_ADVERTISE_URL, c).toBe(`http://${c}:${env(c).TWOPC_PORT}`);
    }
    expect(env('c1').TWOPC_GROUP).toMatch(/^[\w.-]+$/);
    for (const p of ['p1', 'p2', 'p3']) {
      expect(env(p).TWOPC_COORDINATOR?.split(','), p).toEqual(['http://c1:7000', 'http://c2:7000']);
      expect(Object.keys(svc(p).depends_on ?? {}), p).toEqual(['c1', 'c2']);
    }
    // The twopc services' healthcheck is the image's (Dockerfile HEALTHCHECK).
    expect(instruction('HEALTHCHECK')).toMatch(/healthz/);
    const volumes = ['etcd', 'p1', 'p2', 'p3'].map((n) => svc(n).volumes?.[0]?.split(':')[0]);
    expect(new Set(volumes).size).toBe(volumes.length);
  });

  it('runs as local processes, commits through the leader, and through the standby after the leader is killed', { timeout: 600_000 }, async () => {
    expect(etcdAvailable(), `the etcd binary (${etcdBinary()}); scripts/ci-etcd.sh installs it`).toBe(true);
    dataDir = await tempDir('compose-ha');
    const app = await buildImageApp(dataDir);
    const asRoot = process.getuid?.() === 0;
    const ports = await portMap();
    // http://c1:7000 → http://127.0.0.1:<c1's free port>; a service's own 0.0.0.0 listens on its free port.
    const remapFor = (self: string) => (v: string) =>
      v.replace(/http:\/\/([a-z0-9.-]+):(\d+)/g, (m, host: string, port: string) => {
        const mapped = ports.get(`${host === '0.0.0.0' ? self : host}:${port}`);
        return mapped === undefined ? m : `http://127.0.0.1:${mapped}`;
      });
    const [, entry] = JSON.parse(instruction('ENTRYPOINT') as string) as [string, string];

    for (const name of startOrder()) {
      const s = svc(name);
      const remap = remapFor(name);
      if (name === 'etcd') {
        const [bin, ...args] = s.command;
        expect(bin).toBe('etcd');
        const volume = (s.volumes?.[0] ?? '').split(':')[1] as string;
        const local = args.map((a) => remap(a).replace(volume, path.join(dataDir, 'etcd-data')));
        const log = fs.openSync(path.join(dataDir, 'etcd.log'), 'a');
        etcd = spawn(etcdBinary(), local, { stdio: ['ignore', log, log] });
        fs.closeSync(log);
        // service_healthy: etcdctl is not installed here; etcd's /health answers what `endpoint health` asks.
        const healthUrl = `http://127.0.0.1:${ports.get('etcd:2379')}/health`;
        let healthy = false;
        for (let i = 0; i < POLLS_MAX && !healthy; i++) {
          healthy = await get<{ health?: unknown }>(healthUrl).then((r) => r.body.health === 'true', () => false);
          if (!healthy) await sleep(POLL_MS);
        }
        expect(healthy, 'etcd healthy').toBe(true);
        continue;
      }
      const localEnv: Record<string, string> = {};
      for (const [k, v] of Object.entries(s.environment ?? {})) localEnv[k] = remap(String(v));
      const port = ports.get(`${name}:${s.environment?.TWOPC_PORT}`) as number;
      localEnv.TWOPC_PORT = String(port);
      localEnv.TWOPC_HOST = '127.0.0.1';
      localEnv.TWOPC_DATA = path.join(dataDir, name);
      fs.mkdirSync(localEnv.TWOPC_DATA);
      if (asRoot) fs.chownSync(localEnv.TWOPC_DATA, UNPRIVILEGED_ID, UNPRIVILEGED_ID);
      const [role, ...args] = s.command;
      const proc = new NodeProcess({
        name,
        role: role as 'coordinator' | 'participant',
        port,
        command: [path.join(app, entry), role as string],
        cwd: app,
        args,
        env: { ...localEnv, NODE_ENV: 'production', TWOPC_LOG_LEVEL: 'warn' },
        logFile: path.join(dataDir, 'logs', `${name}.log`),
        ...(asRoot && { uid: UNPRIVILEGED_ID, gid: UNPRIVILEGED_ID }),
      });
      procs.push(proc);
      // A service another one depends on with service_healthy would be awaited; every twopc dependency
      // here is service_started, and waiting for /healthz keeps the test's steps in order.
      await proc.start();
    }

    const coordinators = procs.filter((p) => p.spec.role === 'coordinator');
    const transfer = (value: string) => ({
      branches: ['p1', 'p2', 'p3'].map((p) => ({ participant: p, ops: [{ op: 'put', key: 'ha', value } ] })),
    });
    /** Posts to each candidate in turn until one commits; a follower answers 503 not_leader meanwhile. */
    const commitThrough = async (candidates: NodeProcess[], value: string): Promise<NodeProcess> => {
      for (let i = 0; i < POLLS_MAX; i++) {
        for (const c of candidates) {
          const res = await call<{ outcome?: string; error?: { code: string } }>('POST', `${c.url}/v1/transactions`, transfer(value));
          if (res.status === 200) {
            expect(res.body.outcome).toBe('committed');
            return c;
          }
          expect(res.body.error?.code, `${c.name}: ${JSON.stringify(res.body)}`).toBe('not_leader');
        }
        await sleep(POLL_MS);
      }
      throw new Error(`no coordinator of ${candidates.map((c) => c.name).join(', ')} committed`);
    };

    const leader = await commitThrough(coordinators, 'first');
    // The follower's 503 names the leader by the URL it advertised, and that URL answers as the leader.
    const follower = coordinators.find((c) => c !== leader) as NodeProcess;
    const refused = await call<{ error?: { code: string; leader?: string } }>('POST', `${follower.url}/v1/transactions`, transfer('refused'));
    expect(refused.status, JSON.stringify(refused.body)).toBe(503);
    expect(refused.body.error).toMatchObject({ code: 'not_leader', leader: leader.url });
    const named = await get<{ name?: string }>(`${refused.body.error?.leader as string}/healthz`);
    expect(named.status).toBe(200);
    expect(named.body.name).toBe(leader.name);
    await leader.kill();
    expect(await commitThrough([follower], 'second')).toBe(follower);
    for (const p of procs.filter((x) => x.spec.role === 'participant')) {
      expect((await get(`${p.url}/v1/kv/ha`)).body, p.name).toMatchObject({ value: 'second' });
    }
  });
});
