/**
 * Issue 7, item 1: a data directory has one writer. On real processes: a second participant
 * or coordinator started on a directory in use exits at once (code 75) with one line naming
 * the directory and the holder's pid, and the first runs on with its WAL intact; after a
 * SIGKILL of the holder a restart on the same directory starts at once.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeProcess, ProcessCluster } from '../../scenarios/harness.ts';
import { freePort } from '../../scenarios/ports.ts';
import { EXIT_CODES } from '../../shared/exit-codes.ts';
import { inspectWal, verifyWal } from '../../wal/index.ts';
import { linesOf, runTwopc } from '../helpers/cli.ts';
import { startCluster } from '../helpers/cluster.ts';
import { get, post } from '../helpers/http.ts';

let c: ProcessCluster;
let dataDir: string;
let teardown: () => Promise<void>;

beforeAll(async () => {
  ({ cluster: c, dataDir, teardown } = await startCluster('one-writer', { participants: 1 }));
});
afterAll(() => teardown());

const p1 = (): NodeProcess => c.participants[0] as NodeProcess;

async function put(key: string, value: number): Promise<void> {
  const res = await post(`${c.coordinator.url}/v1/transactions`, { branches: [{ participant: 'p1', ops: [{ op: 'put', key, value }] }] });
  expect(res.body).toMatchObject({ outcome: 'committed', applied: true });
}

/** Every record of a WAL as read back (LSN, type, size, place), and whether verify calls it intact. */
async function walState(dir: string): Promise<{ records: string[]; ok: boolean }> {
  const report = await inspectWal(dir);
  const verified = await verifyWal(dir);
  return { records: report.entries.map((e) => `${e.lsn}/${e.type}/${e.bytes}@${e.segment}:${e.offset}`), ok: verified.ok && verified.status === 'intact' };
}

function expectRefusal(run: Awaited<ReturnType<typeof runTwopc>>, dir: string, holder: NodeProcess, role: string): void {
  expect(run.killed, `the second process kept running; stderr: ${run.stderr}`).toBe(false);
  expect(run.code, run.stderr).toBe(EXIT_CODES.dataDirLocked);
  const lines = linesOf(run.stderr);
  expect(lines, run.stderr).toHaveLength(1);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(lines[0]).toContain(dir);
  expect(lines[0]).toContain(`pid ${holder.pid}`);
  expect(lines[0]).toContain(role);
}

describe('one writer per data directory', () => {
  it('refuses a second participant on the same --data; the first runs on and its WAL is intact', async () => {
    const dir = path.join(dataDir, 'p1');
    for (let i = 0; i < 5; i++) await put(`before-${i}`, i);
    const before = await walState(dir);

    const twin = await runTwopc(['participant', '--name', 'p1-twin', '--port', String(await freePort()), '--data', dir, '--coordinator', c.coordinator.url]);
    expectRefusal(twin, dir, p1(), 'participant p1');

    expect(p1().running).toBe(true);
    await put('after', 1);
    const after = await walState(dir);
    expect(after.ok).toBe(true);
    expect(after.records.slice(0, before.records.length)).toEqual(before.records);
    expect(after.records.length).toBeGreaterThan(before.records.length);
    expect((await get(`${p1().url}/v1/kv`)).body).toMatchObject({ entries: { 'before-0': 0, 'before-4': 4, after: 1 } });
  });

  it('refuses a second coordinator on the same --data; the first runs on and its WAL is intact', async () => {
    const dir = path.join(dataDir, 'coordinator');
    const before = await walState(dir);
    const twin = await runTwopc(['coordinator', '--port', String(await freePort()), '--data', dir, '--participants', `p1=${p1().url}`]);
    expectRefusal(twin, dir, c.coordinator, 'coordinator');

    expect(c.coordinator.running).toBe(true);
    await put('after-coordinator-twin', 2);
    const after = await walState(dir);
    expect(after.ok).toBe(true);
    expect(after.records.slice(0, before.records.length)).toEqual(before.records);
  });

  it('a participant cannot open a coordinator’s directory either', async () => {
    const dir = path.join(dataDir, 'coordinator');
    const twin = await runTwopc(['participant', '--name', 'px', '--port', String(await freePort()), '--data', dir, '--coordinator', c.coordinator.url]);
    expectRefusal(twin, dir, c.coordinator, 'coordinator');
  });

  it('does not outlive a SIGKILLed holder: a restart on the same directory starts at once, with its data', async () => {
    await p1().kill();
    await p1().start();
    expect((await get(`${p1().url}/v1/kv`)).body).toMatchObject({ entries: { 'before-0': 0, after: 1 } });
    await c.coordinator.kill();
    await c.coordinator.start();
    await put('after-restarts', 3);
  });
});
