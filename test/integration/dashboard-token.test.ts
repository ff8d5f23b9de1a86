/**
 * Issue 7, item 6: the dashboard works with --token. The page itself holds no
 * data and is served without the token; the page reads the token from its URL
 * fragment (/#token=T) and sends it on its API calls; every data route still
 * wants it. Real processes.
 *
 * No browser is available here, so the page's own script is run in a Node vm
 * context with a minimal stand-in for the DOM, and the real fetch against the
 * real coordinator: the code that reads `location.hash` and sets the header is
 * the code that runs, but layout and rendering are not checked.
 */
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessCluster } from '../../scenarios/harness.ts';
import { startCluster } from '../helpers/cluster.ts';
import { call, eventually } from '../helpers/http.ts';

const TOKEN = 'dash-T0ken';
const auth = { authorization: `Bearer ${TOKEN}` };

let c: ProcessCluster;
let teardown: () => Promise<void>;

beforeAll(async () => {
  ({ cluster: c, teardown } = await startCluster('dashboard', { participants: 1, token: TOKEN }));
});
afterAll(() => teardown());

/** A stand-in for the few DOM elements the page touches. */
interface Element {
  textContent: string;
  innerHTML: string;
  value: string;
}

/** Runs the served page's script once, as a browser at `hash` would, and returns its elements and the requests it made. */
function runPage(html: string, hash: string): { elements: Record<string, Element>; requests: { url: string; authorization: string | null }[] } {
  const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1];
  if (script === undefined) throw new Error('the dashboard page has no inline script');
  const elements: Record<string, Element> = {};
  const requests: { url: string; authorization: string | null }[] = [];
  const context = {
    location: { hash },
    URLSearchParams,
    document: { getElementById: (id: string) => (elements[id] ??= { textContent: '', innerHTML: '', value: '' }) },
    fetch: (url: string, init?: RequestInit) => {
      requests.push({ url, authorization: new Headers(init?.headers).get('authorization') });
      return fetch(new URL(url, c.coordinator.url), { ...init, signal: AbortSignal.timeout(15_000) });
    },
    // One refresh is enough; the page's timer would outlive the test.
    setInterval: () => 0,
  };
  vm.runInNewContext(script, context, { timeout: 5_000 });
  return { elements, requests };
}

describe('the dashboard with --token', () => {
  it('serves the page without the token, and the data only with it', async () => {
    const page = await fetch(`${c.coordinator.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('location.hash');
    expect(html).toContain("authorization: 'Bearer ' + token");

    expect((await call('GET', `${c.coordinator.url}/v1/transactions`)).status).toBe(401);
    expect((await call('GET', `${c.coordinator.url}/v1/transactions`, undefined, { headers: auth })).status).toBe(200);
    // Only reading the page is open: every other route, and any other method on /, still wants the token.
    expect((await call('GET', `${c.coordinator.url}/metrics`)).status).toBe(401);
    expect((await call('GET', `${c.coordinator.url}/v1/transactions/tx-1-1`)).status).toBe(401);
    expect((await call('POST', `${c.coordinator.url}/`, {})).status).toBe(401);
    expect((await call('POST', `${c.coordinator.url}/v1/transactions`, {})).status).toBe(401);
  });

  it("the page's script sends the token from its URL fragment and shows the transactions", async () => {
    const made = await call<{ txId: string; outcome: string }>(
      'POST',
      `${c.coordinator.url}/v1/transactions`,
      { branches: [{ participant: 'p1', ops: [{ op: 'put', key: 'dash', value: 1 }] }] },
      { headers: auth },
    );
    expect(made.body.outcome).toBe('committed');
    const html = await (await fetch(`${c.coordinator.url}/`)).text();

    const withToken = runPage(html, `#token=${TOKEN}`);
    const rows = await eventually('the page to render its rows', async () => (withToken.elements.rows?.innerHTML.includes(made.body.txId) ? withToken.elements.rows.innerHTML : undefined), 15_000, 50);
    expect(rows).toContain('committed');
    expect(withToken.requests).toContainEqual({ url: '/v1/transactions', authorization: `Bearer ${TOKEN}` });

    // Without the fragment the page gets the 401 and says why, instead of showing data.
    const without = runPage(html, '');
    const health = await eventually('the page to report the refusal', async () => (without.elements.health?.textContent.includes('token') ? without.elements.health.textContent : undefined), 15_000, 50);
    expect(health).toBe('this coordinator needs its token: open this page as /#token=<token>');
    expect(without.elements.rows?.innerHTML ?? '').toBe('');
  });
});
