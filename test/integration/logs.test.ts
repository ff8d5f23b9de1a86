/**
 * Issue 9, logs: pino JSON lines; every line about a transaction carries its
 * txId; the per-message lines (protocol steps, WAL records) are debug, so a
 * node at the default info level writes none of them; `--log-level` sets the
 * level (and beats TWOPC_LOG_LEVEL), and a bad level is refused at start.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessCluster } from '../../scenarios/harness.ts';
import { runTwopc } from '../helpers/cli.ts';
import { startCluster } from '../helpers/cluster.ts';
import { eventually, post } from '../helpers/http.ts';

type Line = { level: number; txId?: string; step?: string; [k: string]: unknown };

let c: ProcessCluster;
let teardown: (() => Promise<void>) | undefined;

beforeAll(async () => {
  // p1 logs at debug (the harness's level, from TWOPC_LOG_LEVEL); p2 is told --log-level info.
  ({ cluster: c, teardown } = await startCluster('logs', { participants: 2, chaos: false, env: { TWOPC_LOG_LEVEL: 'debug' }, participantArgsOf: (name) => (name === 'p2' ? ['--log-level', 'info'] : []) }));
});
// A start that failed leaves nothing to tear down, and must not hide its own error behind another.
afterAll(() => teardown?.());

/** Every line must be JSON: a line that is not fails the test here. */
const linesOf = (node: ProcessCluster['coordinator']): Line[] =>
  fs
    .readFileSync(node.spec.logFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);

describe('logs', () => {
  it('are JSON; lines about a transaction carry its txId and are debug; --log-level info drops them', async () => {
    const [p1, p2] = c.participants as [ProcessCluster['coordinator'], ProcessCluster['coordinator']];
    const ops = [{ op: 'put', key: 'k', value: 1 }];
    const res = await post<{ txId: string; outcome: string }>(`${c.coordinator.url}/v1/transactions`, { branches: [{ participant: 'p1', ops }, { participant: 'p2', ops }] });
    expect(res.body.outcome).toBe('committed');
    const txId = res.body.txId;
    // pino writes asynchronously: wait for the last lines of this transaction to land.
    await eventually('the coordinator END line', async () => (linesOf(c.coordinator).some((l) => l.txId === txId && l.step === 'end.logged') ? true : undefined));
    await eventually("p1's commit line", async () => (linesOf(p1).some((l) => l.txId === txId && l.step === 'committed') ? true : undefined));

    for (const node of [c.coordinator, p1]) {
      const about = linesOf(node).filter((l) => JSON.stringify(l).includes(txId));
      expect(about.length, node.name).toBeGreaterThanOrEqual(4);
      expect(about.filter((l) => l.txId !== txId), node.name).toEqual([]);
      expect(about.filter((l) => l.level > 20), node.name).toEqual([]);
      expect(about.some((l) => l.step?.startsWith('wal.') === true), node.name).toBe(true);
    }
    // p2 took part (its WAL and its answer say so) but, at info, wrote no line per message.
    expect(linesOf(p2).filter((l) => JSON.stringify(l).includes(txId))).toEqual([]);
    expect(linesOf(p2).some((l) => l.step === 'listening' && l.level === 30)).toBe(true);
  });

  it('refuses a --log-level that is not a level, in one line, with the configuration exit code', async () => {
    const run = await runTwopc(['participant', '--name', 'x', '--port', '0', '--data', '/nonexistent/x', '--coordinator', 'http://127.0.0.1:1', '--log-level', 'loud']);
    expect(run.code).toBe(64);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/--log-level.*loud.*fatal, error, warn, info, debug, trace, silent/);
  });
});
