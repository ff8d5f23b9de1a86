/**
 * Issue 11: the live lab in a real browser (Debian's Chromium through
 * playwright-core) against a real `twopc cluster --chaos`. Everything is done
 * from the page: a transfer commits at every participant; the coordinator
 * armed at coordinator.after-decision-logged dies, the participants block with
 * their timers running and their keys held, and a restart from the page
 * settles them; in step mode, a dropped vote aborts the transaction.
 * Screenshots of the blocked and the settled states go to test-output/lab/.
 * Every wait is on a condition of the page, bounded in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cluster.ts';

const root = path.resolve(import.meta.dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const OUTPUT_DIR = path.join(root, 'test-output', 'lab');
/** Bounds of the waits: the cluster's start (tsx compiles on first load), and any one thing the page should show. */
const START_TIMEOUT_MS = 120_000;
const SHOW_TIMEOUT_MS = 60_000;
/** Messages the step-mode test decides at most before the transaction must have aborted. */
const STEP_DECISIONS_MAX = 40;

let child: ChildProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let dataDir = '';
let labUrl = '';

/** Starts `twopc cluster --chaos` in its own process group and reads its `lab: URL` line. */
async function startCluster(): Promise<string> {
  dataDir = await tempDir('lab');
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bin/twopc.ts', 'cluster', '--port', '0', '--data', dataDir, '--chaos', '--lab-port', '0'], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no lab line within ${START_TIMEOUT_MS} ms:\n${out}`)), START_TIMEOUT_MS);
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = /^lab: (\S+)/m.exec(out);
      if (m && /Ctrl-C stops/.test(out)) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`twopc cluster exited (${signal ?? code}):\n${out}`));
    });
  });
}

async function stopCluster(): Promise<void> {
  const proc = child;
  if (proc?.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  process.kill(-proc.pid, 'SIGTERM');
  const killed = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 20_000))]);
  if (!killed) {
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
}

/** The ids of the transactions the page lists now. */
const listedTxIds = (): Promise<string[]> => page.$$eval('#txs tr', (rows) => rows.map((r) => r.getAttribute('data-tx') ?? ''));

/** Waits for a transaction not in `before` to show in one of `states`, and returns its id. */
async function newTxIn(before: readonly string[], states: readonly string[]): Promise<string> {
  const find = async () => {
    const rows = await page.$$eval('#txs tr', (trs) => trs.map((r) => [r.getAttribute('data-tx') ?? '', r.getAttribute('data-state') ?? '']));
    return rows.find(([id, st]) => !before.includes(id as string) && states.includes(st as string))?.[0] ?? '';
  };
  await expect.poll(find, { timeout: SHOW_TIMEOUT_MS }).not.toBe('');
  return find();
}

const nodeState = (name: string, state: string) => page.waitForSelector(`#node-${name}[data-state="${state}"]`, { timeout: SHOW_TIMEOUT_MS });

beforeAll(async () => {
  expect(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (scripts/ci-chromium.sh)`).toBe(true);
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  labUrl = await startCluster();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(labUrl);
  for (const n of ['coordinator', 'p1', 'p2', 'p3']) await nodeState(n, 'up');
}, START_TIMEOUT_MS + 60_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await stopCluster();
  if (dataDir && !process.env.TWOPC_KEEP_TEST_DATA) await fs.promises.rm(dataDir, { recursive: true, force: true });
}, 60_000);

describe('the lab in a browser', () => {
  it('runs a transfer from the page and shows it committed at every participant', { timeout: 120_000 }, async () => {
    const before = await listedTxIds();
    await page.click('#transfer');
    const txId = await newTxIn(before, ['committed']);
    const row = page.locator(`#txs tr[data-tx="${txId}"]`);
    await expect.poll(() => row.textContent(), { timeout: SHOW_TIMEOUT_MS }).toMatch(/p1 \(yes, acked\).*p2 \(yes, acked\)/);
    // Each participant's own WAL, as the page shows it, has the COMMITTED record of this transaction.
    for (const p of ['p1', 'p2']) {
      await expect.poll(() => page.locator(`#node-${p} .wal`).textContent(), { timeout: SHOW_TIMEOUT_MS }).toContain(`COMMITTED (forced) ${txId}`);
    }
  });

  it('arms a crash point, shows the participants blocked with timers and keys, and settles them after a restart from the page', { timeout: 240_000 }, async () => {
    await page.focus('select[data-points="coordinator"]');
    await page.waitForSelector('select[data-points="coordinator"] option[value="coordinator.after-decision-logged"]', { state: 'attached', timeout: SHOW_TIMEOUT_MS });
    await page.selectOption('select[data-points="coordinator"]', 'coordinator.after-decision-logged');
    await page.click('button[data-node="coordinator"][data-action="crash-at"]');
    await expect.poll(() => page.locator('#log').textContent(), { timeout: SHOW_TIMEOUT_MS }).toContain('armed coordinator.after-decision-logged');

    const before = await listedTxIds();
    await page.click('#transfer');
    await nodeState('coordinator', 'down');
    const held = { p1: 'alice', p2: 'bob' } as const;
    for (const [p, key] of Object.entries(held)) {
      const entry = page.locator(`#node-${p} .indoubt li`);
      await expect.poll(() => entry.count(), { timeout: SHOW_TIMEOUT_MS }).toBe(1);
      await expect(entry.textContent()).resolves.toContain(`holds ${key}`);
    }
    const txId = (await page.locator('#node-p1 .indoubt li').getAttribute('data-tx')) as string;
    expect(before).not.toContain(txId);
    // The blocked-for timer runs: it shows a larger figure later (read on the page's own clock).
    const seconds = async () => Number.parseFloat((await page.locator('#node-p1 .indoubt .timer').textContent()) ?? 'NaN');
    const first = await seconds();
    await expect.poll(seconds, { timeout: SHOW_TIMEOUT_MS }).toBeGreaterThan(first);
    // The chosen crash point's select, the widest thing on the card, stays inside the card.
    const card = await page.locator('#node-coordinator').boundingBox();
    const select = await page.locator('select[data-points="coordinator"]').boundingBox();
    if (card === null || select === null) throw new Error('the coordinator card or its crash-point select is not drawn');
    const fits = select.x >= card.x && select.x + select.width <= card.x + card.width;
    expect(fits).toBe(true);
    await page.screenshot({ path: path.join(OUTPUT_DIR, 'lab-blocked.png'), fullPage: true });

    await page.click('button[data-node="coordinator"][data-action="restart"]');
    await nodeState('coordinator', 'up');
    for (const p of Object.keys(held)) {
      await expect.poll(() => page.locator(`#node-${p} .indoubt li`).count(), { timeout: SHOW_TIMEOUT_MS }).toBe(0);
    }
    // The decision was logged before the crash: recovery resends it, and the transaction commits.
    await page.waitForSelector(`#txs tr[data-tx="${txId}"][data-state="committed"]`, { timeout: SHOW_TIMEOUT_MS });
    await page.screenshot({ path: path.join(OUTPUT_DIR, 'lab-settled.png'), fullPage: true });
  });

  it('in step mode, drops a vote and shows the transaction abort', { timeout: 180_000 }, async () => {
    await page.click('#step-toggle');
    await expect.poll(() => page.locator('#step-state').textContent(), { timeout: SHOW_TIMEOUT_MS }).toMatch(/^\(on/);
    const before = await listedTxIds();
    await page.click('#transfer');
    let dropped = '';
    for (let i = 0; i < STEP_DECISIONS_MAX; i++) {
      const item = page.locator('#queue li').first();
      await item.waitFor({ timeout: SHOW_TIMEOUT_MS });
      const [from, label, id] = await Promise.all([item.getAttribute('data-from'), item.getAttribute('data-label'), item.getAttribute('data-id')]);
      const verdict = from === 'p1' && label?.startsWith('vote ') && dropped === '' ? 'drop' : 'deliver';
      if (verdict === 'drop') dropped = `${label}`;
      await page.click(`button[data-step="${id}"][data-verdict="${verdict}"]`);
      await page.waitForSelector(`#queue li[data-id="${id}"]`, { state: 'detached', timeout: SHOW_TIMEOUT_MS });
      if (dropped !== '' && (await page.$$eval('#txs tr[data-state="aborted"], #txs tr[data-state="aborting"]', (rows) => rows.length)) > 0) {
        const aborted = await page.$$eval('#txs tr[data-state="aborted"], #txs tr[data-state="aborting"]', (rows) => rows.map((r) => r.getAttribute('data-tx')));
        if (aborted.some((t) => t !== null && !before.includes(t))) break;
      }
    }
    expect(dropped).toBe('vote yes');
    await page.click('#step-toggle');
    const txId = await newTxIn(before, ['aborted']);
    await expect(page.locator(`#txs tr[data-tx="${txId}"]`).textContent()).resolves.toContain('p1 did not answer the prepare');
    await expect.poll(() => page.locator('line.msg[data-fate="dropped"]').count(), { timeout: SHOW_TIMEOUT_MS }).toBeGreaterThan(0);
  });
});
