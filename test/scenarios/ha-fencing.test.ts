/**
 * Fencing on real processes and a real etcd (issue 10, "must show" 2): a leader SIGSTOPped for
 * longer than its lease, resumed while another member leads.
 *
 * - As shipped, it knows by its own clock that its lease ran out: the client request that waited
 *   in its socket while it was stopped gets a 503 not_leader, and it writes nothing.
 * - Blind to its lease (a chaos knob: it believes it leads until etcd says otherwise), it takes
 *   that request as leader, gathers the votes, and its DECISION write is refused by etcd: the
 *   leader key is no longer the one it won. It decides nothing, the client gets no outcome, and
 *   the new leader's presumed abort settles the participants.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../coordinator/adapters/etcd-client.ts';
import { readEtcdLog } from '../../coordinator/adapters/etcd-log.ts';
import { coordinatorCodec } from '../../coordinator/runtime/records.ts';
import { HaCluster } from '../../scenarios/ha-kit.ts';
import { sleep, waitFor } from '../../scenarios/kit.ts';
import type { NodeProcess } from '../../scenarios/harness.ts';

const TEST_TIMEOUT_MS = 180_000;
const WAIT_MS = 30_000;
const LEASE_MS = 1_000;

let cluster: HaCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** The group's log in etcd, decoded: every record any leader wrote. */
async function etcdRecords(c: HaCluster, group: string) {
  const client = createEtcdClient(c.etcd.urls.split(','));
  try {
    const { entries } = await readEtcdLog(client, `twopc/${group}/`);
    return entries.map((e) => coordinatorCodec.decode(e.type, e.payload));
  } finally {
    client.close();
  }
}

/** Pauses the leader past its lease until the other member leads; returns [old, new]. */
async function pauseLeaderUntilReplaced(c: HaCluster): Promise<[NodeProcess, NodeProcess]> {
  const old = await c.leader();
  if (old === undefined) throw new Error('no leader');
  old.pause();
  const next = await c.leader(WAIT_MS);
  if (next === undefined || next === old) throw new Error('the other member did not take over');
  return [old, next];
}

const transfer = (c: HaCluster) => c.names.map((n) => ({ participant: n, ops: [{ op: 'put', key: 'k', value: 'v' }] }));

describe('fencing: a leader paused past its lease, resumed while another leads', () => {
  it('answers the client that waited for it with 503 not_leader and writes nothing', async () => {
    const c = (cluster = await HaCluster.start({ prefix: 'fence-clock', leaseMs: LEASE_MS }));
    const [old, next] = await pauseLeaderUntilReplaced(c);
    const before = await etcdRecords(c, 'fence-clock');
    const reply = c.runTx(old, transfer(c), 20_000);
    await sleep(100); // Let the request reach the stopped process's socket (it is answered either way).
    old.resume();
    const r = await reply;
    expect(r.ok && r.status).toBe(503);
    expect(r.ok && (r.body as { error?: { code?: string } }).error?.code).toBe('not_leader');
    expect(await waitFor(async () => (c.steps(old.name, undefined, 'ha.deposed').length > 0 ? true : undefined), WAIT_MS)).toBe(true);
    // Nothing of the old leader's reached etcd: no decision, and every record since is the new leader's BOOT.
    const after = await etcdRecords(c, 'fence-clock');
    expect(after.filter((r) => r.type === 'DECISION')).toEqual([]);
    expect(after.slice(before.length).every((r) => r.type === 'BOOT')).toBe(true);
    // The new leader still works.
    const ok = await c.runTx(next, transfer(c));
    expect(ok.ok && (ok.body as { outcome?: string }).outcome).toBe('committed');
  }, TEST_TIMEOUT_MS);

  it('blind to its lease, it has its DECISION write refused by etcd, decides nothing, and presumed abort settles the participants', async () => {
    const c = (cluster = await HaCluster.start({ prefix: 'fence-etcd', leaseMs: LEASE_MS, coordinatorEnv: { TWOPC_CHAOS_HA_BLIND_LEADER: '1' } }));
    const [old] = await pauseLeaderUntilReplaced(c);
    const reply = c.runTx(old, transfer(c), 20_000);
    await sleep(100);
    old.resume();
    const r = await reply;
    // No outcome reaches the client: the request fails with the runtime it was taken by.
    expect(r.ok && r.status === 200).toBe(false);
    const refusal = await waitFor(async () => c.logLines(old.name).find((l) => JSON.stringify(l).includes('refused by etcd (fenced)')), WAIT_MS);
    expect(refusal).toBeDefined();
    // The participants voted for it; etcd holds no DECISION for it, and they end aborted.
    const txId = await waitFor(async () => c.steps('p1', undefined, 'vote-yes')[0]?.txId, WAIT_MS);
    expect(txId).toBeDefined();
    const records = await etcdRecords(c, 'fence-etcd');
    expect(records.filter((x) => x.type === 'DECISION' && x.txId === txId)).toEqual([]);
    const settled = await waitFor(async () => {
      const states = await Promise.all(c.names.map((n) => c.txState(n, txId as string)));
      return states.every((s) => s === 'aborted') ? true : undefined;
    }, WAIT_MS, 200);
    expect(settled).toBe(true);
  }, TEST_TIMEOUT_MS);
});
