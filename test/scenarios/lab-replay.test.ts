/**
 * Issue 11: a lab session saved from the lab and replayed as a scenario. The session is made
 * here the way a teacher makes one, through the lab's API on a real cluster: step mode on, a
 * transfer whose vote from p1 is dropped (it aborts), step mode off, a transfer that commits.
 * The replay plays it on a fresh cluster and must see the same decisions and outcomes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startLabCluster, type LabCluster } from '../../scenarios/cluster.ts';
import { readSession, runReplay, scriptOf } from '../../scenarios/lab/replay.ts';
import { call } from '../helpers/http.ts';
import { tempDir } from '../helpers/cluster.ts';

const WAIT_MS_MAX = 60_000;
let lc: LabCluster | undefined;
let dir = '';
afterAll(async () => {
  await lc?.stop();
  if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
});

async function until<T>(probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + WAIT_MS_MAX;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`condition not reached within ${WAIT_MS_MAX} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const transfersEnded = (c: LabCluster) => c.lab.events().filter((e) => e.type === 'action' && e.action === 'transfer').map((e) => (e.type === 'action' ? e.detail : ''));

describe('lab session replay', () => {
  it('records a stepped session and replays it with the same decisions and outcomes', { timeout: 300_000 }, async () => {
    dir = await tempDir('lab-session');
    lc = await startLabCluster({ participants: 2, basePort: 0, dataDir: path.join(dir, 'data'), fsync: 'group', chaos: true, labPort: 0 });
    const c = lc;
    const base = c.lab.url.replace(/\/lab$/, '');
    const post = (p: string, body: unknown) => call('POST', `${base}${p}`, body);

    expect((await post('/lab/api/step', { on: true })).status).toBe(200);
    expect((await post('/lab/api/transfer', {})).status).toBe(202);
    let dropped = false;
    while (!dropped) {
      const m = await until(() => c.lab.snapshot().step.queue[0]);
      const drop = m.from === 'p1' && m.label.startsWith('vote');
      expect((await post(`/lab/api/step/${m.id}`, { action: drop ? 'drop' : 'deliver' })).status).toBe(200);
      dropped = drop;
    }
    expect((await post('/lab/api/step', { on: false })).status).toBe(200);
    await until(() => (transfersEnded(c).length === 1 ? true : undefined));
    expect((await post('/lab/api/transfer', {})).status).toBe(202);
    await until(() => (transfersEnded(c).length === 2 ? true : undefined));
    expect(transfersEnded(c).map((d) => / (committed|aborted)/.exec(d)?.[1])).toEqual(['aborted', 'committed']);

    const session = await call('GET', `${base}/lab/session`);
    const file = path.join(dir, 'session.json');
    fs.writeFileSync(file, JSON.stringify(session.body));
    await c.stop();
    lc = undefined;

    const { steps, outcomes } = scriptOf(readSession(file));
    expect(outcomes).toEqual(['aborted', 'committed']);
    expect(steps.filter((s) => s.kind === 'decide').map((s) => (s.kind === 'decide' ? s.action : ''))).toContain('drop');

    const log: string[] = [];
    const r = await runReplay({ seed: 1, json: false, log: (l) => log.push(l), file });
    expect(r.checks.filter((x) => !x.ok)).toEqual([]);
    expect(r.checks.find((x) => x.name === 'the transfers ended as in the session')?.detail).toBe('session: aborted, committed; replay: aborted, committed');
    expect(log.some((l) => /replay: drop p1 → coordinator response "vote yes"/.test(l))).toBe(true);
  });

  it('refuses a file that is not a lab session, saying so', async () => {
    const d = await tempDir('lab-not-session');
    try {
      const file = path.join(d, 'x.json');
      fs.writeFileSync(file, '{"events":[]}');
      expect(() => readSession(file)).toThrow(/is not a lab session/);
    } finally {
      await fs.promises.rm(d, { recursive: true, force: true });
    }
  });
});
