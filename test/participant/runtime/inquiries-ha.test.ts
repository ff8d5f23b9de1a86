/**
 * Outcome inquiries to an HA coordinator group (participant/runtime/inquiries.ts): the members are
 * asked in turn until one gives a decided outcome, so an inquiry reaches the leader whether the
 * first member is dead or a follower (which says "pending" for what etcd has not decided). Real
 * HTTP servers on loopback stand in for the members; each counts the requests it gets.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { OutcomeInquiries, type InquiryAnswer } from '../../../participant/runtime/inquiries.ts';
import { createHttpClient } from '../../../shared/http/client.ts';
import { silentLogger } from '../../../shared/logger.ts';
import type { TxId } from '../../../shared/types.ts';
import { freePort } from '../../../scenarios/ports.ts';

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A member that answers every id with `outcome`, counting requests. */
async function member(outcome: string): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests++;
      const { txIds } = JSON.parse(body) as { txIds: string[] };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ outcomes: Object.fromEntries(txIds.map((id) => [id, outcome])) }));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

function ask(coordinatorUrl: string, others: string[], txId: string): Promise<InquiryAnswer> {
  const client = createHttpClient({ timeoutMs: 2_000 });
  return new Promise((resolve) => {
    const inquiries = new OutcomeInquiries({
      http: client,
      coordinatorUrl,
      otherCoordinatorUrls: others,
      timeoutMs: 2_000,
      logger: silentLogger(),
      requestIntervalMsMin: 1,
      answer: (a) => {
        inquiries.stop();
        client.close();
        resolve(a);
      },
    });
    inquiries.enqueue(txId as TxId);
  });
}

describe('outcome inquiries to an HA group', () => {
  it('passes a dead member and a follower saying pending, and learns the leader\'s outcome', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const follower = await member('pending');
    const leader = await member('aborted');
    expect(await ask(dead, [follower.url, leader.url], 'tx-2-1')).toEqual({ kind: 'learned', txId: 'tx-2-1', outcome: 'aborted' });
    expect(follower.requests()).toBe(1);
    expect(leader.requests()).toBe(1);
  });

  it('stops at the first member that knows the outcome', async () => {
    const first = await member('committed');
    const second = await member('aborted');
    expect(await ask(first.url, [second.url], 'tx-3-1')).toMatchObject({ kind: 'learned', outcome: 'committed' });
    expect(second.requests()).toBe(0);
  });

  it('reports "pending" from a live member as reachable when nobody has decided', async () => {
    const a = await member('pending');
    const b = await member('pending');
    expect(await ask(a.url, [b.url], 'tx-4-1')).toMatchObject({ kind: 'failed', coordinatorReachable: true });
  });
});
