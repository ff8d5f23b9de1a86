/**
 * Two HA coordinators of one group and two participants, in this process, on a real etcd
 * member: one leader at a time, followers refuse clients naming the leader and answer
 * inquiries from etcd, and a leader that steps down is replaced by the other member, which
 * recovers the group's log (BOOT with the next epoch: transaction ids stay unique).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHaCoordinator, type RunningHaCoordinator } from '../../../coordinator/ha-main.ts';
import { startParticipant, type RunningParticipant } from '../../../participant/main.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { startEtcd, type EtcdCluster } from '../../../scenarios/etcd.ts';
import { freePorts } from '../../../scenarios/ports.ts';
import { call } from '../../helpers/http.ts';

/** Conditions are polled this often, at most this many times (a bound, not a timed assertion). */
const POLL_MS = 50;
const POLLS_MAX = 600;

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (let i = 0; i < POLLS_MAX; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(`gave up waiting for ${what}`);
}

let etcd: EtcdCluster;
let dir: string;
const coordinators: RunningHaCoordinator[] = [];
const participants: RunningParticipant[] = [];

beforeAll(async () => {
  etcd = await startEtcd({ members: 1 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-ha-member-'));
  const [c1, c2, p1, p2] = (await freePorts(4)) as [number, number, number, number];
  const coordUrls = [c1, c2].map((p) => `http://127.0.0.1:${p}`);
  for (const [name, port] of [['p1', p1], ['p2', p2]] as const) {
    participants.push(
      await startParticipant({
        name,
        port,
        dataDir: path.join(dir, name),
        coordinatorUrl: coordUrls[0] as string,
        otherCoordinatorUrls: [coordUrls[1] as string],
        fsync: 'none',
        logger: silentLogger(),
      }),
    );
  }
  const list = { p1: `http://127.0.0.1:${p1}`, p2: `http://127.0.0.1:${p2}` };
  for (const [name, port] of [['c1', c1], ['c2', c2]] as const) {
    coordinators.push(
      await startHaCoordinator({ name, port, participants: list, logger: silentLogger(), ha: { etcd: etcd.urls.split(','), group: 'g', leaseMs: 1_000 } }),
    );
  }
}, 60_000);

afterAll(async () => {
  for (const c of coordinators) await c.close().catch(() => undefined);
  for (const p of participants) await p.close().catch(() => undefined);
  await etcd?.remove();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const leaderOf = () => until('one leader, recovered', () => {
  const leading = coordinators.filter((c) => c.member.isLeader() && !c.member.recovering);
  return leading.length === 1 ? leading[0] : undefined;
});

const transfer = (amount: number) => ({
  branches: [
    { participant: 'p1', ops: [{ op: 'add', key: 'a', amount: -amount }] },
    { participant: 'p2', ops: [{ op: 'add', key: 'b', amount }] },
  ],
});

describe('an HA coordinator group on etcd', () => {
  it('elects one leader; the follower refuses clients with 503 not_leader naming it, and answers inquiries from etcd', async () => {
    const leader = await leaderOf();
    const follower = coordinators.find((c) => c !== leader) as RunningHaCoordinator;
    const run = await call<{ txId: string; outcome: string }>('POST', `${leader.url}/v1/transactions`, transfer(5));
    expect(run.status).toBe(200);
    expect(run.body.outcome).toBe('committed');

    const refused = await call<{ error: { code: string; message: string; leader?: string } }>('POST', `${follower.url}/v1/transactions`, transfer(1));
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('not_leader');
    expect(refused.body.error.leader).toBe(leader.url);

    const asked = await call<{ outcome: string }>('GET', `${follower.url}/v1/transactions/${run.body.txId}/outcome`);
    expect(asked.body.outcome).toBe('committed');
    // Undecided to the follower: only the leader presumes abort, once it has recovered.
    const unknown = await call<{ outcome: string }>('GET', `${follower.url}/v1/transactions/tx-999-1/outcome`);
    expect(unknown.body.outcome).toBe('pending');
    // The batched inquiry, at the follower and the leader: each id as the single route answers it.
    const batch = { txIds: [run.body.txId, 'tx-999-1'] };
    const fromFollower = await call<{ outcomes: Record<string, string> }>('POST', `${follower.url}/v1/outcomes`, batch);
    expect(fromFollower.body.outcomes).toEqual({ [run.body.txId]: 'committed', 'tx-999-1': 'pending' });
    const fromLeader = await call<{ outcomes: Record<string, string> }>('POST', `${leader.url}/v1/outcomes`, batch);
    expect(fromLeader.body.outcomes).toEqual({ [run.body.txId]: 'committed', 'tx-999-1': 'aborted' });
  });

  it('hands over when the leader stops: the other member recovers the log, and its ids carry a higher epoch', async () => {
    const first = await leaderOf();
    const before = await call<{ txId: string; outcome: string }>('POST', `${first.url}/v1/transactions`, transfer(2));
    expect(before.body.outcome).toBe('committed');
    await first.close();
    const second = await leaderOf();
    expect(second).not.toBe(first);
    const after = await call<{ txId: string; outcome: string }>('POST', `${second.url}/v1/transactions`, transfer(3));
    expect(after.body.outcome).toBe('committed');
    const epochOf = (txId: string) => Number(/^tx-(\d+)-/.exec(txId)?.[1]);
    expect(epochOf(after.body.txId)).toBeGreaterThan(epochOf(before.body.txId));
  });
});
