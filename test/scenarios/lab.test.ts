/**
 * The lab's server and wire on real HTTP, without a cluster: who may act (loopback, --chaos,
 * the token, a JSON body), the error shape of every refusal, the bound on watching browsers,
 * and step mode holding a prepare and its vote until a person decides.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LAB_CLIENTS_MAX, LabHub, type HeldMessage } from '../../scenarios/lab/events.ts';
import { LabServer } from '../../scenarios/lab/server.ts';
import { LabWire } from '../../scenarios/lab/wire.ts';
import { call } from '../helpers/http.ts';

const WAIT_MS_MAX = 5_000;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function lab(options: { chaos: boolean; token?: string }): Promise<{ url: string; hub: LabHub; wire: LabWire }> {
  const hub = new LabHub(options.chaos, ['client', 'coordinator', 'p1']);
  const wire = await LabWire.plan(hub, ['p1']);
  const server = new LabServer({ hub, wire, chaos: options.chaos, ...(options.token !== undefined && { token: options.token }) });
  const url = (await server.listen(0)).replace(/\/lab$/, '');
  closers.push(() => server.close(), () => wire.close());
  return { url, hub, wire };
}

const json = { 'content-type': 'application/json' };

describe('lab actions', () => {
  it('are refused without --chaos, with the error shape', async () => {
    const { url } = await lab({ chaos: false });
    const res = await call('POST', `${url}/lab/api/transfer`, {}, { raw: '{}', headers: json });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ error: { code: 'chaos_off', message: expect.stringContaining('--chaos') } });
    // Reading is allowed: the page and its stream work read-only.
    expect((await call('GET', `${url}/lab/session`)).status).toBe(200);
  });

  it('need the token when one is set, for the stream and the session as well', async () => {
    const { url } = await lab({ chaos: true, token: 'sesame' });
    for (const [method, path] of [['POST', '/lab/api/step'], ['GET', '/lab/session'], ['GET', '/lab/events']] as const) {
      const res = await call(method, `${url}${path}`, undefined, method === 'POST' ? { raw: '{"on":true}', headers: json } : {});
      expect(res.status, `${method} ${path}`).toBe(401);
      expect((res.body as { error: { code: string } }).error.code).toBe('unauthorized');
    }
    const ok = await call('POST', `${url}/lab/api/step`, undefined, { raw: '{"on":false}', headers: { ...json, authorization: 'Bearer sesame' } });
    expect(ok).toEqual({ status: 200, body: { on: false } });
    // The page itself holds no data: it is served without the token, which it reads from its URL fragment.
    const page = await fetch(`${url}/lab`, { signal: AbortSignal.timeout(WAIT_MS_MAX) });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>twopc lab</title>');
  });

  it('answer bad input with a 4xx and the reason', async () => {
    const { url } = await lab({ chaos: true });
    const cases: [string, string, Record<string, string>, number, string][] = [
      ['/lab/api/step', '{"on":true}', { 'content-type': 'text/plain' }, 415, 'unsupported_media_type'],
      ['/lab/api/step', '{"on":', json, 400, 'invalid_json'],
      ['/lab/api/step', '[1]', json, 400, 'invalid_json'],
      ['/lab/api/step', '{"on":"yes"}', json, 400, 'invalid_request'],
      ['/lab/api/step/7', '{"action":"explode"}', json, 400, 'invalid_request'],
      ['/lab/api/step/7', '{"action":"delay","delayMs":-1}', json, 400, 'invalid_request'],
      ['/lab/api/step/7', '{"action":"deliver"}', json, 404, 'not_found'],
      ['/lab/api/nope', '{}', json, 404, 'not_found'],
      ['/lab/api/step', `{"pad":"${'x'.repeat(20_000)}"}`, json, 413, 'payload_too_large'],
    ];
    for (const [path, raw, headers, status, code] of cases) {
      const res = await call('POST', `${url}${path}`, undefined, { raw, headers });
      expect([res.status, (res.body as { error?: { code?: string } }).error?.code], `${path} ${raw.slice(0, 40)}`).toEqual([status, code]);
    }
    // Before the cluster is attached, node actions say so rather than failing obscurely.
    const early = await call('POST', `${url}/lab/api/nodes/p1/kill`, undefined, { raw: '{}', headers: json });
    expect([early.status, (early.body as { error: { code: string } }).error.code]).toEqual([503, 'starting']);
  });

  it(`let at most ${LAB_CLIENTS_MAX} browsers watch at once`, async () => {
    const { url } = await lab({ chaos: false });
    const controllers: AbortController[] = [];
    try {
      for (let i = 0; i < LAB_CLIENTS_MAX; i++) {
        const c = new AbortController();
        controllers.push(c);
        const res = await fetch(`${url}/lab/events`, { signal: c.signal });
        expect(res.status).toBe(200);
        // The first frame is the snapshot.
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        const first = new TextDecoder().decode((await reader.read()).value);
        expect(first).toMatch(/^event: snapshot\ndata: \{"nodes":\[\]/);
      }
      const over = await call('GET', `${url}/lab/events`);
      expect([over.status, (over.body as { error: { code: string } }).error.code]).toEqual([503, 'too_many_clients']);
    } finally {
      for (const c of controllers) c.abort();
    }
  });
});

/** A stand-in participant: answers a prepare with a yes vote. */
async function participant(): Promise<{ url: string; prepares: () => number }> {
  let prepares = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.once('end', () => {
      if (req.url === '/v1/2pc/prepare') prepares += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ vote: 'yes' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, prepares: () => prepares };
}

async function waitForQueue(wire: LabWire, stage: 'request' | 'response'): Promise<HeldMessage> {
  const deadline = Date.now() + WAIT_MS_MAX;
  for (;;) {
    const m = wire.queue().find((x) => x.stage === stage);
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no ${stage} held within ${WAIT_MS_MAX} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('step mode', () => {
  it('holds a prepare until delivered, then its vote until delivered; a dropped vote resets the caller', async () => {
    const target = await participant();
    const { hub, wire } = await lab({ chaos: true });
    const proxied = wire.peerUrlOf('p1', target.url, 'coordinator');
    wire.peerUrlOf('coordinator', target.url, 'p1');
    await wire.start();
    wire.setStep(true);

    const prepare = JSON.stringify({ txId: 'tx-9', coordinator: 'c', participants: [] });
    const first = fetch(`${proxied}/v1/2pc/prepare`, { method: 'POST', headers: json, body: prepare, signal: AbortSignal.timeout(WAIT_MS_MAX) });
    const request = await waitForQueue(wire, 'request');
    expect(request).toMatchObject({ from: 'coordinator', to: 'p1', label: 'prepare', txIds: ['tx-9'] });
    expect(target.prepares()).toBe(0);
    expect(wire.decide(request.id, 'deliver')).toBe(true);
    const vote = await waitForQueue(wire, 'response');
    expect(vote).toMatchObject({ from: 'p1', to: 'coordinator', label: 'vote yes', txIds: ['tx-9'] });
    expect(target.prepares()).toBe(1);
    wire.decide(vote.id, 'deliver');
    expect(await (await first).json()).toEqual({ vote: 'yes' });

    const second = fetch(`${proxied}/v1/2pc/prepare`, { method: 'POST', headers: json, body: prepare, signal: AbortSignal.timeout(WAIT_MS_MAX) });
    wire.decide((await waitForQueue(wire, 'request')).id, 'deliver');
    wire.decide((await waitForQueue(wire, 'response')).id, 'drop');
    await expect(second).rejects.toThrow();
    expect(target.prepares()).toBe(2);

    const fates = hub.events().filter((e) => e.type === 'message').map((e) => (e.type === 'message' ? `${e.stage}:${e.fate}` : ''));
    expect(fates).toEqual(['request:held', 'request:delivered', 'response:held', 'response:delivered', 'request:held', 'request:delivered', 'response:held', 'response:dropped']);
  });
});
