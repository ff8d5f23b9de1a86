/**
 * The crash points apply to every member of an HA group (issue 10), on real processes and one
 * real etcd member: a point armed on the follower stays armed while it follows (a follower
 * decides nothing, so it never reaches the point), and fires once that member leads. The
 * decision it logged before dying is in etcd, so the member that leads next finishes it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HaCluster } from '../../scenarios/ha-kit.ts';
import { getJson, waitFor } from '../../scenarios/kit.ts';
import type { NodeProcess } from '../../scenarios/harness.ts';

const TEST_TIMEOUT_MS = 240_000;
const WAIT_MS = 30_000;
const LEASE_MS = 1_000;
const POINT = 'coordinator.after-decision-logged';

let cluster: HaCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const transfer = (c: HaCluster, value: string) => c.names.map((n) => ({ participant: n, ops: [{ op: 'put', key: 'k', value }] }));
const outcomeOf = (r: Awaited<ReturnType<HaCluster['runTx']>>) => (r.ok ? (r.body as { outcome?: string }).outcome : undefined);

interface Points {
  points?: { name: string }[];
  armed?: string | null;
}

describe('crash points on every member of an HA group', () => {
  it('a point armed on the follower fires when that member leads, and the next leader finishes its logged decision', async () => {
    const c = (cluster = await HaCluster.start({ prefix: 'crash-every', participants: 2, leaseMs: LEASE_MS }));
    const leader = (await c.leader()) as NodeProcess;
    expect(leader, 'a leader is elected').toBeDefined();
    const follower = c.coordinators.find((x) => x !== leader) as NodeProcess;

    // Every member offers the same points, and the follower takes the arming.
    const offered = await Promise.all(c.coordinators.map((x) => getJson<Points>(`${x.url}/v1/chaos/points`)));
    const names = offered.map((o) => (o?.points ?? []).map((p) => p.name).sort());
    expect(names[0]).toContain(POINT);
    expect(names[1]).toEqual(names[0]);
    expect(await c.arm(follower, POINT)).toBe(true);
    expect((await getJson<Points>(`${follower.url}/v1/chaos/points`))?.armed).toBe(POINT);

    // While it follows, the group decides through the leader and the armed follower lives on.
    expect(outcomeOf(await c.runTx(leader, transfer(c, 'first')))).toBe('committed');
    expect(follower.running).toBe(true);
    expect((await getJson<Points>(`${follower.url}/v1/chaos/points`))?.armed).toBe(POINT);

    // The leader dies; the follower leads, and its first decision kills it at the point.
    await leader.kill();
    expect(await c.leader(WAIT_MS)).toBe(follower);
    const reply = await c.runTx(follower, transfer(c, 'second'));
    const exit = await c.waitExit(follower, WAIT_MS);
    expect(exit?.signal, 'the new leader SIGKILLed itself at the point').toBe('SIGKILL');
    expect(reply.ok, 'the client got no outcome').toBe(false);
    expect(follower.tail(200)).toContain(`crash point ${POINT} reached`);

    // The COMMIT it logged is in etcd: the old leader, back, leads and commits it everywhere.
    const prepared = await c.inDoubt(c.names[0] as string);
    const txId = prepared?.[0]?.txId;
    expect(txId, 'the transaction is in doubt at the participants').toBeDefined();
    await leader.start();
    expect(await c.leader(WAIT_MS)).toBe(leader);
    const committed = await waitFor(async () => {
      const states = await Promise.all(c.names.map((n) => c.txState(n, txId as string)));
      return states.every((s) => s === 'committed') ? true : undefined;
    }, WAIT_MS);
    expect(committed, "every participant committed the dead leader's decision").toBe(true);
    for (const n of c.names) expect((await c.kvKey(n, 'k'))?.value, n).toBe('second');
  }, TEST_TIMEOUT_MS);
});
