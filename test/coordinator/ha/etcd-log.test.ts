/**
 * The Log acceptance suite (test/wal/log-port.suite.ts) on the etcd-backed decision log, against a
 * real etcd member, plus what only this log has: fencing and group commit.
 *
 * "Crash" here is a process kill: the writer's queue is dropped unwritten, and what etcd
 * acknowledged is kept (a quorum has it). A failed sync is a leadership lost under the writer:
 * the leader key is deleted, so etcd refuses the next fenced transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../../../coordinator/adapters/etcd-client.ts';
import { openEtcdLog, readEtcdLog, type EtcdLog, type Fence } from '../../../coordinator/adapters/etcd-log.ts';
import { startEtcd, type EtcdCluster } from '../../../scenarios/etcd.ts';
import { describeLogPort } from '../../wal/log-port.suite.ts';

let etcd: EtcdCluster;
let client: Etcd3;
let groups = 0;

beforeAll(async () => {
  etcd = await startEtcd({ members: 1 });
  client = createEtcdClient(etcd.urls.split(','));
}, 60_000);

afterAll(async () => {
  client?.close();
  await etcd?.remove();
});

/** Takes the group's leadership as a new term: the leader key is (re)created, and its create revision is the fence. */
async function takeLeadership(prefix: string): Promise<Fence> {
  const key = `${prefix}leader`;
  await client.delete().key(key).exec();
  const res = await client.put(key).value('test').exec();
  return { key, createRevision: String(res.header.revision) };
}

describeLogPort('EtcdLog on a real etcd member', 'process-kill', async () => {
  const prefix = `twopc/port-${++groups}/`;
  let open: EtcdLog | undefined;
  let fence: Fence | undefined;
  const options = { recordBytesMax: 2048, pendingAppendsMax: 64 };
  return {
    ...options,
    open: async () => {
      fence = await takeLeadership(prefix);
      const opened = await openEtcdLog({ client, prefix, fence: () => fence, ...options });
      open = opened.log;
      return opened;
    },
    // A sync fails when the writer's term is over: its fence names an older leader key than the
    // one in etcd, so etcd itself refuses the next fenced transaction.
    failNextSync: () => {
      if (fence) fence = { ...fence, createRevision: String(Number(fence.createRevision) - 1) };
    },
    crash: async () => {
      open?.abandon('killed');
      open = undefined;
    },
    dispose: async () => {
      await open?.close().catch(() => undefined);
      await client.delete().prefix(prefix).exec();
    },
  };
});

describe('EtcdLog: fencing and group commit', () => {
  it('refuses, in etcd, every write of a deposed leader once another member holds the leader key', async () => {
    const prefix = `twopc/fence-${++groups}/`;
    const oldFence = await takeLeadership(prefix);
    const { log: old } = await openEtcdLog({ client, prefix, fence: () => oldFence });
    expect(await old.append(13, Buffer.from('decided by the old leader'))).toBe(1);
    // A new term: the old writer still believes it leads (its fence() still answers), as a paused process would.
    const newFence = await takeLeadership(prefix);
    const { log: current, recovered } = await openEtcdLog({ client, prefix, fence: () => newFence });
    expect(recovered.entries.map((e) => e.lsn)).toEqual([1]);
    const refused = old.append(13, Buffer.from('decided by the deposed leader'));
    await expect(refused).rejects.toMatchObject({ code: 'WAL_POISONED', message: expect.stringContaining('fenced') });
    await expect(old.checkpoint(1, Buffer.from('x'))).rejects.toMatchObject({ code: 'WAL_POISONED' });
    expect(await current.append(13, Buffer.from('decided by the new leader'))).toBe(2);
    const after = await readEtcdLog(client, prefix);
    expect(after.entries.map((e) => Buffer.from(e.payload).toString())).toEqual(['decided by the old leader', 'decided by the new leader']);
    await current.close();
  });

  it('carries concurrent appends in shared transactions, each within recordsPerTxnMax', async () => {
    const prefix = `twopc/group-${++groups}/`;
    const fence = await takeLeadership(prefix);
    const txns: number[] = [];
    const { log } = await openEtcdLog({ client, prefix, fence: () => fence, recordsPerTxnMax: 16, onTxn: (records) => txns.push(records) });
    const lsns = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(13, Buffer.from(`r${i}`), { durable: true })));
    expect(lsns).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(txns.reduce((a, b) => a + b, 0)).toBe(200);
    expect(Math.max(...txns)).toBeLessThanOrEqual(16);
    // Shared: far fewer transactions than records (the first goes alone; the rest queue behind it).
    expect(txns.length).toBeLessThan(200 / 4);
    await log.close();
  });
});
