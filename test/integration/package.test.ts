/**
 * Issue 9, "must show" 1: the package a service installs. The sources are
 * copied to a temp dir and packed there (`npm pack` runs `prepare`, the
 * build), the tarball is installed into a fresh project, and from that project,
 * on plain Node without tsx:
 *   - a service of its own embeds a participant (`twopc/participant` in express),
 *   - the installed `twopc` bin runs a second participant,
 *   - a client (`twopc/client`) commits transactions through a coordinator
 *     started from this clone, and `twopc/wal` opens a log;
 * and tsc type-checks a file importing all three with the package's own types.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeProcess } from '../../scenarios/harness.ts';
import { freePorts } from '../../scenarios/ports.ts';
import { tempDir } from '../helpers/cluster.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const rootManifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
/** What the copy leaves out: installs, outputs and local data, never a source the build needs. */
const NOT_COPIED = new Set(['node_modules', 'dist', '.git', '.twopc', 'coverage', '.stryker-tmp', 'reports', 'tmp', '.bench']);
/** npm and tsc on a busy 2-core machine; each bounds one step, the test's own timeout bounds the whole. */
const STEP_TIMEOUT_MS = 240_000;

const procs: NodeProcess[] = [];
let dir = '';
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  if (dir && !process.env.TWOPC_KEEP_TEST_DATA) await fs.promises.rm(dir, { recursive: true, force: true });
});

async function npm(args: readonly string[], cwd: string): Promise<string> {
  const { stdout } = await run('npm', [...args], { cwd, timeout: STEP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } });
  return stdout;
}

/** Packs a copy of the sources, so the tarball is built from them alone and this tree's dist/ is left alone. */
async function packCopy(): Promise<string> {
  const src = path.join(dir, 'src');
  await fs.promises.cp(root, src, { recursive: true, filter: (from) => path.dirname(from) !== root || !NOT_COPIED.has(path.basename(from)) });
  // The build needs the dev tools (tsc and the @types); they are this clone's.
  await fs.promises.symlink(path.join(root, 'node_modules'), path.join(src, 'node_modules'), 'dir');
  await npm(['pack', '--pack-destination', dir], src);
  const filename = `twopc-${rootManifest.version}.tgz`;
  const { stdout: listing } = await run('tar', ['-tzf', path.join(dir, filename)], { timeout: STEP_TIMEOUT_MS });
  const shipped = listing.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
  // Only the built package: no TypeScript sources, tests or tools.
  expect(shipped).toContain('dist/participant/index.js');
  expect(shipped).toContain('dist/client/index.d.ts');
  expect(shipped).toContain('bin/twopc.js');
  // package.json says MIT; the licence's text travels with the package (npm always packs LICENSE).
  expect(shipped).toContain('LICENSE');
  expect(shipped.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  expect(shipped.filter((f) => /\.test\.(js|d\.ts)$/.test(f))).toEqual([]);
  return path.join(dir, filename);
}

/** A fresh project that depends on the tarball, installed from the local cache where it can be. */
async function consumerProject(tarball: string): Promise<string> {
  const app = path.join(dir, 'app');
  await fs.promises.cp(path.join(root, 'test/fixtures/consumer'), app, { recursive: true });
  const manifest = {
    name: 'twopc-consumer',
    private: true,
    type: 'module',
    dependencies: { twopc: `file:${tarball}`, express: rootManifest.dependencies.express },
    devDependencies: { '@types/node': rootManifest.devDependencies['@types/node'] },
  };
  await fs.promises.writeFile(path.join(app, 'package.json'), JSON.stringify(manifest, null, 2));
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund'], app);
  return app;
}

describe('the packed package, installed into a fresh project', () => {
  it('runs a participant and a client on plain Node, and type-checks', { timeout: 600_000 }, async () => {
    dir = await tempDir('package');
    const app = await consumerProject(await packCopy());
    const installed = path.join(app, 'node_modules');
    // Production dependencies only: no tsx, no yaml, no TypeScript.
    for (const devOnly of ['tsx', 'yaml', 'typescript', 'vitest']) expect(fs.existsSync(path.join(installed, devOnly)), devOnly).toBe(false);
    expect(fs.existsSync(path.join(installed, 'twopc/bin/twopc.ts'))).toBe(false);

    const [cport, shopPort, stockPort] = (await freePorts(3)) as [number, number, number];
    const coordinatorUrl = `http://127.0.0.1:${cport}`;
    const logs = path.join(dir, 'logs');
    const shop = new NodeProcess({
      name: 'shop',
      role: 'participant',
      port: shopPort,
      command: [path.join(app, 'participant.mjs')],
      cwd: app,
      args: ['--name', 'shop', '--port', String(shopPort), '--data', path.join(dir, 'shop'), '--coordinator', coordinatorUrl],
      logFile: path.join(logs, 'shop.log'),
    });
    // The bin npm linked, run by node as a user's `npx twopc` would: the launcher finds no sources and runs dist/.
    const stock = new NodeProcess({
      name: 'stock',
      role: 'participant',
      port: stockPort,
      command: [path.join(installed, '.bin/twopc'), 'participant'],
      cwd: app,
      args: ['--name', 'stock', '--port', String(stockPort), '--data', path.join(dir, 'stock'), '--coordinator', coordinatorUrl],
      logFile: path.join(logs, 'stock.log'),
    });
    const coordinator = new NodeProcess({
      name: 'coordinator',
      role: 'coordinator',
      port: cport,
      args: ['--port', String(cport), '--data', path.join(dir, 'coordinator'), '--participants', `shop=${shop.url},stock=${stock.url}`],
      logFile: path.join(logs, 'coordinator.log'),
    });
    procs.push(shop, stock, coordinator);
    await Promise.all(procs.map((p) => p.start()));

    const { stdout } = await run(process.execPath, [path.join(app, 'client.mjs'), coordinatorUrl, path.join(dir, 'client-wal')], { cwd: app, timeout: STEP_TIMEOUT_MS });
    const seen = JSON.parse(stdout) as Record<string, { txId: string; outcome: string } & Record<string, unknown>>;
    expect(seen.whole).toMatchObject({ outcome: 'committed', applied: true });
    expect(seen.interactive).toMatchObject({ outcome: 'committed' });
    expect(seen.status).toMatchObject({ txId: seen.whole?.txId, state: 'committed' });
    expect(seen.outcome).toBe('committed');
    expect(seen.missing).toEqual({ isCoordinatorError: true, code: 'not_found', status: 404 });
    expect(seen.walPayloads).toEqual(['hello']);

    // Both participants applied both transactions.
    const shopState = (await (await fetch(`${shop.url}/state`)).json()) as { entries: [string, unknown][] };
    expect(Object.fromEntries(shopState.entries)).toEqual({ 'order-1': 'paid', 'order-2': 'paid' });
    const widgets = (await (await fetch(`${stock.url}/v1/kv/widgets`)).json()) as { value: unknown };
    expect(widgets.value).toBe(-3);

    // TypeScript: the declarations resolve through `exports` and are real types (check.ts says how).
    const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
    const typed = await run(process.execPath, [tsc, '-p', app], { cwd: app, timeout: STEP_TIMEOUT_MS }).then(
      () => '',
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    expect(typed).toBe('');
  });
});
