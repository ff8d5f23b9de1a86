/**
 * Batching on the wire between real processes: concurrent transactions reach
 * a participant in fewer HTTP requests than protocol messages, and with
 * `--no-batching` in exactly one request per message. Counted at the
 * participant (its /metrics), never timed.
 *
 * The participant is paused (SIGSTOP) while the transactions are handed to the
 * coordinator, so their prepares certainly meet requests in flight and wait;
 * batching then does not depend on how fast this machine happens to be.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ProcessCluster } from '../../scenarios/harness.ts';
import { startCluster } from '../helpers/cluster.ts';
import { eventually, get, post } from '../helpers/http.ts';

const TRANSACTIONS = 40;
let teardown: (() => Promise<void>) | undefined;

afterEach(async () => {
  await teardown?.();
  teardown = undefined;
});

/** The sum of every series of a metric at `url`'s /metrics, by its label set. */
async function metric(url: string, name: string): Promise<Record<string, number>> {
  const text = (await get<{ text: string }>(`${url}/metrics`)).body.text;
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = new RegExp(`^twopc_${name}(\\{[^}]*\\})? (\\d+)$`).exec(line);
    if (m) out[m[1] ?? ''] = Number(m[2]);
  }
  return out;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/** Runs TRANSACTIONS two-branch transfers at once while p1 is paused, then lets p1 go; all must commit. */
async function concurrentTransfersWithP1Paused(cluster: ProcessCluster): Promise<void> {
  const coordinator = cluster.coordinator.url;
  const p1 = cluster.participant('p1');
  p1.pause();
  const results = Array.from({ length: TRANSACTIONS }, (_, i) =>
    post<{ outcome?: string }>(`${coordinator}/v1/transactions`, {
      // The voting bound is long: p1 is paused on purpose, and a slow machine must not abort these.
      timeoutMs: 30_000,
      branches: [
        { participant: 'p1', ops: [{ op: 'add', key: `a${i}`, amount: 1 }] },
        { participant: 'p2', ops: [{ op: 'add', key: `b${i}`, amount: 1 }] },
      ],
    }),
  );
  try {
    await eventually('every transaction to reach the coordinator', async () =>
      sum(await metric(coordinator, 'coordinator_unfinished_transactions')) === TRANSACTIONS ? true : undefined,
    );
  } finally {
    p1.resume();
  }
  const answers = await Promise.all(results);
  expect(answers.map((a) => a.body.outcome)).toEqual(Array.from({ length: TRANSACTIONS }, () => 'committed'));
}

describe('batching on the wire between real processes', () => {
  it('carries concurrent transactions to a participant in fewer requests than messages', async () => {
    const started = await startCluster('batching', { participants: 2, chaos: false });
    teardown = started.teardown;
    await concurrentTransfersWithP1Paused(started.cluster);

    const p1 = started.cluster.participant('p1').url;
    const requests = await metric(p1, 'participant_2pc_requests_total');
    const messages = await metric(p1, 'participant_2pc_messages_total');
    // Every transaction sent p1 a prepare and a commit; a retried commit would add to both counts.
    expect(messages['{type="prepare"}']).toBe(TRANSACTIONS);
    expect(messages['{type="commit"}']).toBeGreaterThanOrEqual(TRANSACTIONS);
    expect(Object.keys(requests)).toEqual(['{route="batch"}']);
    expect(sum(requests) * 2).toBeLessThan(sum(messages));
  });

  it('sends one request per message with --no-batching', async () => {
    const started = await startCluster('no-batching', {
      participants: 2,
      chaos: false,
      coordinatorArgs: ['--no-batching'],
      participantArgs: ['--no-batching'],
    });
    teardown = started.teardown;
    await concurrentTransfersWithP1Paused(started.cluster);

    const p1 = started.cluster.participant('p1').url;
    const requests = await metric(p1, 'participant_2pc_requests_total');
    const messages = await metric(p1, 'participant_2pc_messages_total');
    expect(requests['{route="batch"}']).toBeUndefined();
    expect(requests['{route="prepare"}']).toBe(TRANSACTIONS);
    expect(sum(requests)).toBe(sum(messages));
    expect((await post(`${p1}/v1/2pc/batch`, { messages: [{ type: 'abort', body: { txId: 'tx-9-9' } }] })).status).toBe(404);
    const sent = await metric(started.cluster.coordinator.url, 'coordinator_participant_requests_total');
    expect(sent['{mode="batch"}']).toBeUndefined();
  });
});
