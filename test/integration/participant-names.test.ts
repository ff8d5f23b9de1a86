/**
 * Issue 7, item 2, the coordinator's side: one participant must never get two prepares under
 * one txId. Two names for one URL are refused at start (start-errors.test.ts for the CLI,
 * here for startCoordinator used as a library), and two branches of one transaction that
 * name one participant (by name, by URL, by another spelling of the URL) become one branch:
 * one prepare carrying both branches' ops, so both writes are made.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from '../../coordinator/main.ts';
import type { NodeProcess, ProcessCluster } from '../../scenarios/harness.ts';
import { ConfigError } from '../../shared/errors.ts';
import { startCluster, tempDir } from '../helpers/cluster.ts';
import { get, post } from '../helpers/http.ts';

let c: ProcessCluster;
let teardown: () => Promise<void>;

beforeAll(async () => {
  ({ cluster: c, teardown } = await startCluster('participant-names', { participants: 2 }));
});
afterAll(() => teardown());

const p = (i: number): NodeProcess => c.participants[i] as NodeProcess;
/** The same address as p's URL, spelled otherwise: another loopback name, upper case, a trailing slash. */
const respelled = (node: NodeProcess): string => `${node.url.replace('127.0.0.1', 'LOCALHOST')}/`;

describe('branches that name one participant twice', () => {
  it('run whole: become one branch, one prepare, and both writes are made', async () => {
    const res = await post<{ outcome: string; applied: boolean; branches: { participant: string }[] }>(`${c.coordinator.url}/v1/transactions`, {
      branches: [
        { participant: 'p1', ops: [{ op: 'put', key: 'by-name', value: 1 }] },
        { participant: respelled(p(0)), ops: [{ op: 'put', key: 'by-url', value: 2 }] },
        { participant: p(1).url, ops: [{ op: 'put', key: 'other', value: 3 }] },
      ],
    });
    expect(res.body).toMatchObject({ outcome: 'committed', applied: true });
    expect(res.body.branches.map((b) => b.participant).sort()).toEqual(['p1', 'p2']);
    expect((await get(`${p(0).url}/v1/kv`)).body).toMatchObject({ entries: { 'by-name': 1, 'by-url': 2 } });
    expect((await get(`${p(1).url}/v1/kv`)).body).toMatchObject({ entries: { other: 3 } });
  });

  it('interactive: enlisting by name and by URL joins one branch', async () => {
    const begun = await post<{ txId: string }>(`${c.coordinator.url}/v1/transactions`, {});
    const txId = begun.body.txId;
    expect((await post(`${c.coordinator.url}/v1/transactions/${txId}/branches`, { participant: 'p1', ops: [{ op: 'put', key: 'enlist-name', value: 1 }] })).status).toBe(200);
    const second = await post<{ branches: unknown[] }>(`${c.coordinator.url}/v1/transactions/${txId}/branches`, {
      participant: respelled(p(0)),
      ops: [{ op: 'put', key: 'enlist-url', value: 2 }],
    });
    expect(second.body.branches).toHaveLength(1);
    expect((await post(`${c.coordinator.url}/v1/transactions/${txId}/commit`)).body).toMatchObject({ outcome: 'committed' });
    expect((await get(`${p(0).url}/v1/kv`)).body).toMatchObject({ entries: { 'enlist-name': 1, 'enlist-url': 2 } });
  });
});

describe('startCoordinator as a library', () => {
  it('throws a ConfigError for two names of one participant, before it listens or touches its data directory', async () => {
    const dir = path.join(await tempDir('names-lib'), 'wal');
    const start = startCoordinator({ port: 0, dataDir: dir, fsync: 'always', participants: { p1: 'http://h:1', p2: 'HTTP://h:1/' } });
    await expect(start).rejects.toBeInstanceOf(ConfigError);
    await expect(start).rejects.toThrow(/p1 \(http:\/\/h:1\) and p2 \(HTTP:\/\/h:1\/\)/);
    expect(fs.existsSync(dir)).toBe(false);
    await fs.promises.rm(path.dirname(dir), { recursive: true, force: true });
  });
});
