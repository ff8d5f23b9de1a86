/**
 * Issue 3, item 6: every endpoint answers malformed JSON, wrong types, unknown
 * fields, unknown ids and over-size bodies with a 4xx and a clear message,
 * writes nothing to its WAL, and stays up. Real processes, real WAL files:
 * each WAL is read back before and after, record by record.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessCluster } from '../../scenarios/harness.ts';
import { inspectWal } from '../../wal/index.ts';
import { call, get } from '../helpers/http.ts';
import { startCluster } from '../helpers/cluster.ts';

let c: ProcessCluster;
let dataDir: string;
let teardown: () => Promise<void>;

beforeAll(async () => {
  ({ cluster: c, dataDir, teardown } = await startCluster('bad-input', { participants: 1 }));
});
afterAll(() => teardown());

/**
 * What a node's WAL holds, as read back: every record's LSN, type, size and
 * place, and the checkpoint's LSN. (Not raw bytes: the WAL prepares its next
 * segment file in the background, which is not a record.)
 */
async function walContents(dir: string): Promise<string> {
  const report = await inspectWal(dir);
  return JSON.stringify({
    records: report.entries.map((e) => [e.lsn, e.type, e.bytes, e.segment, e.offset]),
    checkpoint: report.checkpoint?.lsn ?? null,
  });
}

const UNKNOWN = 'tx-999-999';
const BAD_ID = 'not%20an%20id';
const oversize = JSON.stringify({ pad: 'x'.repeat(300 * 1024) });
const malformed = '{"txId": "tx-1-1", ';

type Case = [what: string, node: 'c' | 'p', method: 'GET' | 'POST', path: string, body: string | undefined, status: number];

const cases: Case[] = [
  // Coordinator: begin / run whole.
  ['malformed JSON', 'c', 'POST', '/v1/transactions', malformed, 400],
  ['wrong type', 'c', 'POST', '/v1/transactions', '{"timeoutMs":"soon"}', 400],
  ['unknown field', 'c', 'POST', '/v1/transactions', '{"timeoutMS":5}', 400],
  ['over-size body', 'c', 'POST', '/v1/transactions', oversize, 413],
  ['unknown participant', 'c', 'POST', '/v1/transactions', '{"branches":[{"participant":"http://169.254.169.254","ops":[]}]}', 400],
  ['bad op', 'c', 'POST', '/v1/transactions', '{"branches":[{"participant":"p1","ops":[{"op":"add","key":"k","amount":"1"}]}]}', 400],
  ['not an object', 'c', 'POST', '/v1/transactions', '[1,2]', 400],
  // Coordinator: enlist.
  ['malformed JSON', 'c', 'POST', `/v1/transactions/${UNKNOWN}/branches`, malformed, 400],
  ['wrong type', 'c', 'POST', `/v1/transactions/${UNKNOWN}/branches`, '{"participant":1,"ops":[]}', 400],
  ['unknown field', 'c', 'POST', `/v1/transactions/${UNKNOWN}/branches`, '{"participant":"p1","ops":[],"x":1}', 400],
  ['over-size body', 'c', 'POST', `/v1/transactions/${UNKNOWN}/branches`, oversize, 413],
  ['unknown id', 'c', 'POST', `/v1/transactions/${UNKNOWN}/branches`, '{"participant":"p1","ops":[]}', 404],
  ['bad id', 'c', 'POST', `/v1/transactions/${BAD_ID}/branches`, '{"participant":"p1","ops":[]}', 400],
  // Coordinator: commit and abort.
  ['malformed JSON', 'c', 'POST', `/v1/transactions/${UNKNOWN}/commit`, malformed, 400],
  ['unknown field', 'c', 'POST', `/v1/transactions/${UNKNOWN}/commit`, '{"force":true}', 400],
  ['over-size body', 'c', 'POST', `/v1/transactions/${UNKNOWN}/commit`, oversize, 413],
  ['unknown id', 'c', 'POST', `/v1/transactions/${UNKNOWN}/commit`, '{}', 404],
  ['malformed JSON', 'c', 'POST', `/v1/transactions/${UNKNOWN}/abort`, malformed, 400],
  ['wrong type', 'c', 'POST', `/v1/transactions/${UNKNOWN}/abort`, '"abort"', 400],
  ['over-size body', 'c', 'POST', `/v1/transactions/${UNKNOWN}/abort`, oversize, 413],
  ['unknown id', 'c', 'POST', `/v1/transactions/${UNKNOWN}/abort`, '{}', 404],
  // Coordinator: reads.
  ['unknown id', 'c', 'GET', `/v1/transactions/${UNKNOWN}`, undefined, 404],
  ['bad id', 'c', 'GET', `/v1/transactions/${BAD_ID}`, undefined, 400],
  ['bad id', 'c', 'GET', `/v1/transactions/${BAD_ID}/outcome`, undefined, 400],
  ['bad state', 'c', 'GET', '/v1/transactions?state=sideways', undefined, 400],
  ['unknown crash point', 'c', 'POST', '/v1/chaos/crash-at', '{"point":"coordinator.nowhere"}', 400],
  ['unknown route', 'c', 'POST', '/v1/nope', '{}', 404],
  // Participant: prepare.
  ['malformed JSON', 'p', 'POST', '/v1/2pc/prepare', malformed, 400],
  ['wrong type', 'p', 'POST', '/v1/2pc/prepare', '{"txId":1,"coordinator":"http://127.0.0.1:1","participants":[]}', 400],
  ['unknown field', 'p', 'POST', '/v1/2pc/prepare', '{"txId":"tx-1-1","coordinator":"http://127.0.0.1:1","participants":[],"vote":"yes"}', 400],
  ['over-size body', 'p', 'POST', '/v1/2pc/prepare', oversize, 413],
  ['bad op', 'p', 'POST', '/v1/2pc/prepare', '{"txId":"tx-1-1","coordinator":"http://127.0.0.1:1","participants":[],"ops":[{"op":"put","key":"k"}]}', 400],
  // Participant: commit and abort.
  ['malformed JSON', 'p', 'POST', '/v1/2pc/commit', malformed, 400],
  ['wrong type', 'p', 'POST', '/v1/2pc/commit', '{"txId":["tx-1-1"]}', 400],
  ['unknown field', 'p', 'POST', '/v1/2pc/commit', '{"txId":"tx-1-1","outcome":"committed"}', 400],
  ['over-size body', 'p', 'POST', '/v1/2pc/commit', oversize, 413],
  ['unknown id', 'p', 'POST', '/v1/2pc/commit', `{"txId":"${UNKNOWN}"}`, 404],
  ['malformed JSON', 'p', 'POST', '/v1/2pc/abort', malformed, 400],
  ['wrong type', 'p', 'POST', '/v1/2pc/abort', '{"txId":null}', 400],
  ['unknown field', 'p', 'POST', '/v1/2pc/abort', '{"txId":"tx-1-1","why":"x"}', 400],
  ['over-size body', 'p', 'POST', '/v1/2pc/abort', oversize, 413],
  // Participant: the operator and peers.
  ['malformed JSON', 'p', 'POST', `/v1/2pc/transactions/${UNKNOWN}/heuristic`, malformed, 400],
  ['wrong type', 'p', 'POST', `/v1/2pc/transactions/${UNKNOWN}/heuristic`, '{"outcome":"maybe"}', 400],
  ['unknown field', 'p', 'POST', `/v1/2pc/transactions/${UNKNOWN}/heuristic`, '{"outcome":"committed","by":"me"}', 400],
  ['over-size body', 'p', 'POST', `/v1/2pc/transactions/${UNKNOWN}/heuristic`, oversize, 413],
  ['unknown id', 'p', 'POST', `/v1/2pc/transactions/${UNKNOWN}/heuristic`, '{"outcome":"committed"}', 404],
  ['unknown field', 'p', 'POST', `/v1/2pc/transactions/${UNKNOWN}/inquiry`, '{"x":1}', 400],
  ['malformed JSON', 'p', 'POST', `/v1/2pc/transactions/${UNKNOWN}/inquiry`, malformed, 400],
  ['bad id', 'p', 'POST', `/v1/2pc/transactions/${BAD_ID}/inquiry`, '{}', 400],
  // Participant: reads.
  ['bad id', 'p', 'GET', `/v1/2pc/transactions/${BAD_ID}`, undefined, 400],
  ['bad state', 'p', 'GET', '/v1/2pc/transactions?state=committed-ish', undefined, 400],
  ['unknown crash point', 'p', 'POST', '/v1/chaos/crash-at', '{"point":"coordinator.after-decision-logged"}', 400],
  ['unknown route', 'p', 'GET', '/v1/nope', undefined, 404],
];

describe('bad input on every endpoint', () => {
  it('gets a 4xx with a clear message, no WAL write, and the nodes stay up', async () => {
    const coordinator = c.coordinator;
    const participant = c.participants[0] as ProcessCluster['coordinator'];
    const walDirs = [path.join(dataDir, 'coordinator'), path.join(dataDir, 'p1')];
    const before = await Promise.all(walDirs.map(walContents));

    const wrong: string[] = [];
    for (const [what, node, method, p, body, status] of cases) {
      const url = (node === 'c' ? coordinator.url : participant.url) + p;
      const res = await call<{ error?: { code?: string; message?: string } }>(method, url, undefined, body === undefined ? {} : { raw: body });
      const message = res.body.error?.message ?? '';
      if (res.status !== status || typeof res.body.error?.code !== 'string' || message.length < 10) {
        wrong.push(`${what} ${method} ${p.slice(0, 60)}: got ${res.status} ${JSON.stringify(res.body).slice(0, 160)}, want ${status}`);
      }
    }
    console.log(`bad input: ${cases.length} cases over ${new Set(cases.map((x) => `${x[1]} ${x[2]} ${x[3].replace(/tx-999-999|not%20an%20id/, ':id').replace(/\?.*/, '')}`)).size} endpoints, wrong answers ${wrong.length}`);
    expect(wrong).toEqual([]);

    expect(await Promise.all(walDirs.map(walContents))).toEqual(before);
    for (const n of c.nodes) {
      expect(n.running).toBe(true);
      expect((await get(`${n.url}/healthz`)).body.ok).toBe(true);
    }
    // And it still works.
    const ok = await call('POST', `${coordinator.url}/v1/transactions`, { branches: [{ participant: 'p1', ops: [{ op: 'put', key: 'k', value: 1 }] }] });
    expect(ok.body.outcome).toBe('committed');
    // The comparison does see writes: the good transaction added records to the participant's WAL.
    expect(await walContents(walDirs[1] as string)).not.toBe(before[1]);
  });
});
