/**
 * Issue 11: where no cluster process serves the lab (a compose deployment), the
 * coordinator's `/` shows every participant's in-doubt list with how long each
 * branch has blocked, through GET /v1/participants/in-doubt, with --token. Real
 * processes throughout.
 *
 * A coordinator that crashes with its decision logged leaves its participants in
 * doubt, but it cannot then show them: once restarted it recovers and settles them.
 * So a second coordinator process, configured with the same participants and token,
 * serves the view, as a standby's dashboard would; the participants stay in doubt
 * while it watches. The page's own script runs in a Node vm with a stand-in for the
 * few DOM elements it touches (as in dashboard-token.test.ts), against the real view.
 */
import path from 'node:path';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess, type ProcessCluster } from '../../scenarios/harness.ts';
import { freePorts } from '../../scenarios/ports.ts';
import { startCluster } from '../helpers/cluster.ts';
import { call, eventually } from '../helpers/http.ts';

const TOKEN = 'in-doubt-T0ken';
const auth = { authorization: `Bearer ${TOKEN}` };

interface Survey {
  askedAt: number;
  participants: { name: string; url: string; reachable: boolean; error?: string; transactions?: { txId: string; blockedMs: number; keys: string[] }[] }[];
}

let c: ProcessCluster;
let viewer: NodeProcess;
let teardown: () => Promise<void>;
let txId: string;

beforeAll(async () => {
  let dataDir: string;
  ({ cluster: c, dataDir, teardown } = await startCluster('dash-in-doubt', { participants: 2, token: TOKEN }));
  const [port] = (await freePorts(1)) as [number];
  viewer = new NodeProcess({
    name: 'viewer',
    role: 'coordinator',
    port,
    logFile: path.join(dataDir, 'logs', 'viewer.log'),
    args: ['--port', String(port), '--data', path.join(dataDir, 'viewer'), '--token', TOKEN, '--fsync', 'group',
      '--participants', c.participants.map((p) => `${p.name}=${p.url}`).join(',')],
  });
  await viewer.start();

  // The coordinator dies right after its commit decision is durable: both participants hold their keys, in doubt.
  const armed = await call('POST', `${c.coordinator.url}/v1/chaos/crash-at`, { point: 'coordinator.after-decision-logged' }, { headers: auth });
  expect(armed.status).toBe(200);
  await call('POST', `${c.coordinator.url}/v1/transactions`, {
    branches: [
      { participant: 'p1', ops: [{ op: 'add', key: 'alice', amount: -10 }] },
      { participant: 'p2', ops: [{ op: 'add', key: 'bob', amount: 10 }] },
    ],
  }, { headers: auth, timeoutMs: 5_000 }).catch(() => undefined);
  expect((await c.coordinator.waitExit()).signal).toBe('SIGKILL');
  const listed = await call<{ transactions: { txId: string }[] }>('GET', `${c.participant('p1').url}/v1/2pc/transactions?state=prepared`, undefined, { headers: auth });
  expect(listed.body.transactions).toHaveLength(1);
  txId = (listed.body.transactions[0] as { txId: string }).txId;
}, 120_000);

afterAll(async () => {
  await viewer?.stop();
  await teardown?.();
});

/** Runs the served page's script once, as a browser at `/#token=…` would, against the viewer. */
function runPage(html: string, hash: string): Record<string, { textContent: string; innerHTML: string; value: string }> {
  const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1];
  if (script === undefined) throw new Error('the dashboard page has no inline script');
  const elements: Record<string, { textContent: string; innerHTML: string; value: string }> = {};
  vm.runInNewContext(script, {
    location: { hash },
    URLSearchParams,
    document: { getElementById: (id: string) => (elements[id] ??= { textContent: '', innerHTML: '', value: '' }) },
    fetch: (url: string, init?: RequestInit) => fetch(new URL(url, viewer.url), { ...init, signal: AbortSignal.timeout(15_000) }),
    // One refresh is enough; the page's timer would outlive the test.
    setInterval: () => 0,
  }, { timeout: 5_000 });
  return elements;
}

describe("the coordinator's view of its participants' in-doubt lists", () => {
  it('lists each participant with the branch in doubt, how long it has blocked and the keys it holds; only with the token', async () => {
    expect((await call('GET', `${viewer.url}/v1/participants/in-doubt`)).status).toBe(401);
    const first = await call<Survey>('GET', `${viewer.url}/v1/participants/in-doubt`, undefined, { headers: auth });
    expect(first.status).toBe(200);
    expect(first.body.participants.map((p) => [p.name, p.reachable])).toEqual([['p1', true], ['p2', true]]);
    const keysOf = (s: Survey, name: string) => s.participants.find((p) => p.name === name)?.transactions?.map((t) => [t.txId, t.keys]);
    expect(keysOf(first.body, 'p1')).toEqual([[txId, ['alice']]]);
    expect(keysOf(first.body, 'p2')).toEqual([[txId, ['bob']]]);
    // The blocked-for figure grows while the coordinator stays down (a condition, not a timed wait).
    const blocked = (s: Survey) => s.participants[0]?.transactions?.[0]?.blockedMs ?? -1;
    await eventually('the blocked time to grow', async () => {
      const later = await call<Survey>('GET', `${viewer.url}/v1/participants/in-doubt`, undefined, { headers: auth });
      return blocked(later.body) > blocked(first.body) ? true : undefined;
    }, 20_000, 200);
  });

  it('is described in /openapi.json', async () => {
    const doc = await call<{ paths: Record<string, { get?: { responses?: Record<string, unknown> } }> }>('GET', `${viewer.url}/openapi.json`, undefined, { headers: auth });
    expect(doc.body.paths['/v1/participants/in-doubt']?.get?.responses?.['200']).toBeDefined();
  });

  it("the page shows the in-doubt branch with its timer and keys, from the token in its URL fragment", async () => {
    const html = await (await fetch(`${viewer.url}/`)).text();
    const elements = runPage(html, `#token=${TOKEN}`);
    const rows = await eventually('the in-doubt rows', async () => (elements.indoubt?.innerHTML.includes(txId) ? elements.indoubt.innerHTML : undefined), 15_000, 50);
    expect(rows).toContain('<code>alice</code>');
    expect(rows).toContain('<code>bob</code>');
    expect(rows).toMatch(/class="blocked">\d+(\.\d)? (ms|s)</);
  });

  it('reports a participant that is down as unreachable, and still lists the others', async () => {
    await c.participant('p2').kill();
    const survey = await call<Survey>('GET', `${viewer.url}/v1/participants/in-doubt`, undefined, { headers: auth });
    expect(survey.status).toBe(200);
    const [p1, p2] = survey.body.participants;
    expect(p1?.transactions?.map((t) => t.txId)).toEqual([txId]);
    expect(p2?.reachable).toBe(false);
    expect(p2?.error).toMatch(/\S/);

    const html = await (await fetch(`${viewer.url}/`)).text();
    const elements = runPage(html, `#token=${TOKEN}`);
    const rows = await eventually('the unreachable row', async () => (elements.indoubt?.innerHTML.includes('unreachable') ? elements.indoubt.innerHTML : undefined), 15_000, 50);
    expect(rows).toMatch(/p2 <code>[^<]+<\/code><\/td><td class="unreachable" colspan="4">unreachable: /);
    expect(rows).toContain(txId);
  });
});
