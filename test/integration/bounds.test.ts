/**
 * Issue 7, item 5: the bounds a careless or hostile caller meets, on real
 * processes. A transaction's timeout has a maximum (a 400 naming it, nothing
 * written); an idle interactive transaction is cut off at that maximum; full
 * slots are a 503 with Retry-After; a client that sends its request slowly is
 * cut off by the server; connections past the cap are closed on arrival while
 * the open ones keep working.
 *
 * No assertion is on elapsed time except lower bounds the server guarantees:
 * each wait is for an event (an answer, the server closing a socket) under a
 * deadline several times longer than the bound it checks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess, type ProcessCluster } from '../../scenarios/harness.ts';
import { freePorts } from '../../scenarios/ports.ts';
import { SERVER_LIMITS_DEFAULT } from '../../shared/http/limits.ts';
import { inspectWal } from '../../wal/index.ts';
import { startCluster, tempDir } from '../helpers/cluster.ts';
import { call, eventually } from '../helpers/http.ts';
import { RawConnection, type Ending } from '../helpers/raw-http.ts';

/** The coordinator's default --tx-timeout-max-ms, as a client would read it in docs/limits.md. */
const TX_TIMEOUT_MAX_MS = 30_000;

let c: ProcessCluster;
let dataDir: string;
let teardown: () => Promise<void>;
const lone: NodeProcess[] = [];
const loneDirs: string[] = [];

beforeAll(async () => {
  ({ cluster: c, dataDir, teardown } = await startCluster('bounds', { participants: 2 }));
});
afterAll(async () => {
  await Promise.all(lone.map((n) => n.stop()));
  await teardown();
  if (!process.env.TWOPC_KEEP_TEST_DATA) await Promise.all(loneDirs.map((d) => fs.promises.rm(d, { recursive: true, force: true })));
});

/** A coordinator of its own, with limits from the environment (TWOPC_<FLAG>), whose participant is never reached. */
async function loneCoordinator(name: string, env: Record<string, string>): Promise<NodeProcess> {
  const dir = await tempDir(`bounds-${name}`);
  loneDirs.push(dir);
  const [port, nobody] = (await freePorts(2)) as [number, number];
  const node = new NodeProcess({
    name,
    role: 'coordinator',
    port,
    logFile: path.join(dir, 'coordinator.log'),
    env,
    args: ['--port', String(port), '--data', path.join(dir, 'wal'), '--participants', `p1=http://127.0.0.1:${nobody}`],
  });
  lone.push(node);
  return node;
}

async function walContents(dir: string): Promise<string> {
  const report = await inspectWal(dir);
  return JSON.stringify({ records: report.entries.map((e) => [e.lsn, e.type, e.bytes]), checkpoint: report.checkpoint?.lsn ?? null });
}

type ErrorBody = { error?: { code?: string; message?: string } };

describe("a transaction's timeout", () => {
  it('over the maximum is a 400 naming the maximum, and nothing is written', async () => {
    const walDirs = ['coordinator', 'p1', 'p2'].map((n) => path.join(dataDir, n));
    const before = await Promise.all(walDirs.map(walContents));
    const branches = [
      { participant: 'p1', ops: [{ op: 'put', key: 'slow', value: 1 }] },
      { participant: 'p2', ops: [{ op: 'put', key: 'slow', value: 2 }] },
    ];
    const url = `${c.coordinator.url}/v1/transactions`;
    for (const body of [{ timeoutMs: 600_000 }, { timeoutMs: TX_TIMEOUT_MAX_MS + 1, branches }]) {
      const res = await call<ErrorBody>('POST', url, body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error?.code).toBe('bad_request');
      expect(res.body.error?.message).toContain(`from 1 to ${TX_TIMEOUT_MAX_MS}`);
      expect(res.body.error?.message).toContain('--tx-timeout-max-ms');
    }
    expect(await Promise.all(walDirs.map(walContents))).toEqual(before);

    // The maximum itself is allowed, and the comparison above does see writes.
    const ok = await call('POST', url, { timeoutMs: TX_TIMEOUT_MAX_MS, branches });
    expect(ok.body).toMatchObject({ outcome: 'committed' });
    expect(await walContents(walDirs[0] as string)).not.toBe(before[0]);
  });
});

describe('an interactive transaction and the slots, with --tx-timeout-max-ms 3000 and --active-tx-max 2', () => {
  let node: NodeProcess;
  beforeAll(async () => {
    node = await loneCoordinator('small', { TWOPC_TX_TIMEOUT_MAX_MS: '3000', TWOPC_ACTIVE_TX_MAX: '2' });
    await node.start();
  });

  it('an idle interactive transaction without a timeout is aborted at the maximum', async () => {
    const begun = await call<{ txId: string }>('POST', `${node.url}/v1/transactions`, {});
    expect(begun.status).toBe(201);
    const { txId } = begun.body;
    const enlisted = await call('POST', `${node.url}/v1/transactions/${txId}/branches`, { participant: 'p1', ops: [{ op: 'put', key: 'k', value: 1 }] });
    expect(enlisted.status).toBe(200);
    // The client goes quiet. The old default (60 s) would outlast this wait several times over.
    const tx = await eventually(
      'the idle transaction to be aborted',
      async () => {
        const res = await call<{ state?: string; reason?: string }>('GET', `${node.url}/v1/transactions/${txId}`);
        return res.body.state === 'aborted' ? res.body : undefined;
      },
      20_000,
    );
    expect(tx.reason).toMatch(/timed out/);
  });

  it('full slots are a 503 with Retry-After and a message naming the limit', async () => {
    const url = `${node.url}/v1/transactions`;
    let begun = 0;
    let refused: Response | undefined;
    // Bounded: with 2 slots, the third begin must be refused (more only if an earlier one expired meanwhile).
    for (let i = 0; i < 10 && refused === undefined; i++) {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(15_000) });
      if (res.status === 201) begun += 1;
      else refused = res;
    }
    expect(refused, `${begun} begins were all admitted`).toBeDefined();
    const res = refused as Response;
    expect(begun).toBeGreaterThanOrEqual(2);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    const body = (await res.json()) as ErrorBody;
    expect(body.error?.code).toBe('unavailable');
    expect(body.error?.message).toContain('2 unfinished transactions');
    expect(body.error?.message).toContain('--active-tx-max');
  });
});

/** What a slow-loris connection saw: how it ended, what the server said, how long it stayed open. */
interface Trickled {
  readonly ending: Ending | undefined;
  readonly received: string;
  readonly openMs: number;
  readonly bytesSent: number;
}

const TRICKLE_EVERY_MS = 200;
/** Our own deadline, several times the server's bound plus its check interval; a server that never cuts the client fails here. */
const TRICKLE_DEADLINE_MS = 30_000;

/**
 * Opens a connection and sends `head` (none for an idle connection), then one
 * byte of the body every TRICKLE_EVERY_MS, until the server ends the connection
 * or our deadline passes. The loop is bounded by the deadline.
 */
async function trickle(port: number, head: string | undefined): Promise<Trickled> {
  const conn = await RawConnection.open(port);
  const started = Date.now();
  let bytesSent = 0;
  if (head !== undefined) conn.write(head);
  while (conn.ended === undefined && Date.now() - started < TRICKLE_DEADLINE_MS) {
    if (head !== undefined) {
      conn.write(' ');
      bytesSent += 1;
    }
    await conn.until(() => false, TRICKLE_EVERY_MS).catch(() => undefined);
  }
  const ending = conn.ended;
  conn.close();
  return { ending, received: conn.received, openMs: Date.now() - started, bytesSent };
}

const slowPost = (p: string): string => `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`;

describe('a slow-loris client', () => {
  it('is cut off by the server (408) after the request bound, while the services answer others', async () => {
    const cport = Number(new URL(c.coordinator.url).port);
    const pport = Number(new URL((c.participants[0] as NodeProcess).url).port);
    const clients = {
      'coordinator, slow body': trickle(cport, slowPost('/v1/transactions')),
      'participant, slow body': trickle(pport, slowPost('/v1/2pc/prepare')),
      'participant, idle connection': trickle(pport, undefined),
    };
    // While they hold their connections, everyone else is served.
    for (const n of c.nodes) expect((await call('GET', `${n.url}/healthz`)).status).toBe(200);
    const ok = await call('POST', `${c.coordinator.url}/v1/transactions`, { branches: [{ participant: 'p1', ops: [{ op: 'put', key: 'loris', value: 1 }] }] });
    expect(ok.body).toMatchObject({ outcome: 'committed' });

    for (const [what, pending] of Object.entries(clients)) {
      const t = await pending;
      console.log(`slow-loris ${what}: ended by ${t.ending?.by ?? 'nobody'} after ${t.openMs} ms, ${t.bytesSent} body bytes trickled`);
      expect(t.ending, `${what}: the server did not close the connection within ${TRICKLE_DEADLINE_MS} ms`).toMatchObject({ by: 'server' });
      expect(t.received, what).toMatch(/^HTTP\/1\.1 408 /);
      expect(t.received, what).toContain('{"error":{"code":"request_timeout","message":"The request did not arrive in time');
      // The server never cuts a client before its bound (an idle connection gets the shorter headers bound).
      expect(t.openMs).toBeGreaterThanOrEqual(t.bytesSent === 0 ? SERVER_LIMITS_DEFAULT.headersTimeoutMs : SERVER_LIMITS_DEFAULT.requestTimeoutMs);
    }
    for (const n of c.nodes) expect((await call('GET', `${n.url}/healthz`)).status).toBe(200);
  });
});

describe('the connection cap, with --connections-max 8', () => {
  const CAP = 8;
  let node: NodeProcess;
  const open: RawConnection[] = [];
  beforeAll(async () => {
    node = await loneCoordinator('cap', { TWOPC_CONNECTIONS_MAX: String(CAP) });
    // Not the harness's readiness poll: its fetch would keep a connection of its own open.
    await node.start({ waitReady: false });
  });
  afterAll(() => {
    for (const conn of open) conn.close();
  });

  /** The first of our connections, kept open: it polls /healthz until the node has recovered. */
  async function firstConnection(): Promise<RawConnection> {
    return eventually('the coordinator to listen and recover', async () => {
      const conn = await RawConnection.open(node.spec.port);
      for (let i = 0; i < 600; i++) {
        const res = await conn.get('/healthz');
        if (res === undefined) return undefined;
        if ((JSON.parse(res.body) as { recovering?: boolean }).recovering === false) return conn;
        await new Promise((r) => setTimeout(r, 50));
      }
      return undefined;
    }, 60_000, 100);
  }

  it('closes the connections past the cap on arrival, and the open ones keep working', async () => {
    open.push(await firstConnection());
    let refused: RawConnection | undefined;
    for (let i = 1; i < CAP + 4 && refused === undefined; i++) {
      const conn = await RawConnection.open(node.spec.port);
      if ((await conn.get('/healthz'))?.status === 200) open.push(conn);
      else refused = conn;
    }
    expect(refused, `all ${open.length} connections were served`).toBeDefined();
    expect(open.length).toBe(CAP);
    expect(refused?.ended).toMatchObject({ by: 'server' });

    for (const conn of open) expect((await conn.get('/healthz'))?.status).toBe(200);
    const metrics = await (open[0] as RawConnection).get('/metrics');
    expect(metrics?.body).toMatch(/^twopc_http_connections_dropped_total [1-9]/m);

    // Once one of ours closes, a newcomer is served again (the server notices the close asynchronously).
    (open.pop() as RawConnection).close();
    const served = await eventually('a new connection to be served', async () => {
      const conn = await RawConnection.open(node.spec.port);
      const res = await conn.get('/healthz');
      if (res?.status === 200) return conn;
      conn.close();
      return undefined;
    }, 20_000, 100);
    open.push(served);
  });
});
