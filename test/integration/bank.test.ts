/**
 * The bank check on real processes (issue 3, item 4): 30 accounts over three
 * participants, 1,000 concurrent transfers. Money is neither made nor lost,
 * no balance goes negative, and every participant agrees on every outcome.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrng } from '../../scenarios/prng.ts';
import { accounts, openingTransaction, randomTransfer, type BankOptions } from '../../scenarios/workloads/bank.ts';
import type { ProcessCluster } from '../../scenarios/harness.ts';
import { call, eventually, get, post } from '../helpers/http.ts';
import { startCluster } from '../helpers/cluster.ts';

const TRANSFERS = 1_000;
const CONCURRENCY = 32;
const bank: BankOptions = { participants: ['p1', 'p2', 'p3'], accountsPerParticipant: 10, openingBalance: 100 };

let c: ProcessCluster;
let teardown: () => Promise<void>;
beforeAll(async () => {
  ({ cluster: c, teardown } = await startCluster('bank', { lockWaitMs: 100 }));
});
afterAll(() => teardown());

describe('bank', () => {
  it('keeps the total, never goes negative, and every participant agrees on every transaction', { timeout: 300_000 }, async () => {
    const funded = await post(`${c.coordinator.url}/v1/transactions`, openingTransaction(bank));
    expect(funded.body.outcome).toBe('committed');

    const all = accounts(bank);
    const rng = createPrng(42);
    const results: { txId: string; outcome: string; participants: string[] }[] = [];
    let next = 0;
    const worker = async () => {
      while (next < TRANSFERS) {
        next++;
        const t = randomTransfer(rng, all, 40);
        if (!t) continue;
        const res = await call('POST', `${c.coordinator.url}/v1/transactions`, t.body, { timeoutMs: 30_000 });
        expect(res.status).toBe(200);
        results.push({
          txId: String(res.body.txId),
          outcome: String(res.body.outcome),
          participants: [...new Set(t.body.branches.map((b) => b.participant))],
        });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    const committed = results.filter((r) => r.outcome === 'committed').length;
    const aborted = results.filter((r) => r.outcome === 'aborted').length;
    console.log(`bank: ${results.length} transfers, committed ${committed}, aborted ${aborted}`);
    expect(committed + aborted).toBe(results.length);
    expect(committed).toBeGreaterThan(0);

    // Phase 2 may still be finishing in the background: wait until nobody is in doubt.
    for (const p of c.participants) {
      await eventually(`${p.name} has nothing in doubt`, async () => {
        const res = await get<{ transactions: unknown[] }>(`${p.url}/v1/2pc/transactions?state=prepared`);
        return res.body.transactions.length === 0 ? true : undefined;
      });
    }

    let total = 0;
    const negative: string[] = [];
    for (const p of c.participants) {
      const { body } = await get<{ entries: Record<string, number> }>(`${p.url}/v1/kv`);
      for (const [key, v] of Object.entries(body.entries)) {
        total += v;
        if (v < 0) negative.push(`${key}=${v}`);
      }
    }
    expect(negative).toEqual([]);
    expect(total).toBe(bank.openingBalance * all.length);

    // Agreement: the coordinator's reported outcome is what every participant of the transaction recorded.
    const disagreements: string[] = [];
    for (const r of results) {
      for (const name of r.participants) {
        const state = String((await get(`${c.participant(name).url}/v1/2pc/transactions/${r.txId}`)).body.state);
        const agrees = r.outcome === 'committed' ? state === 'committed' : state === 'aborted' || state === 'unknown';
        if (!agrees) disagreements.push(`${r.txId} ${r.outcome} but ${name} says ${state}`);
      }
    }
    expect(disagreements).toEqual([]);
  });
});
