/**
 * Issue 9, "must show" 2: GET /openapi.json of both services passes an OpenAPI
 * 3.1 validator (@seriousme/openapi-schema-validator, which checks the
 * document against the OpenAPI 3.1 schema), every schema in it compiles as
 * JSON Schema draft 2020-12 (ajv, strict), every route of the contract
 * (design.md section 4) is listed, and real answers of every listed route,
 * from real processes over real HTTP, validate against the schema the document
 * gives for their status.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessCluster } from '../../scenarios/harness.ts';
import { startCluster } from '../helpers/cluster.ts';

type Json = Record<string, unknown>;
type Doc = { openapi: string; paths: Record<string, Record<string, Json>>; components: { schemas: Record<string, Json> } };

let c: ProcessCluster;
let teardown: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ cluster: c, teardown } = await startCluster('openapi', { participants: 1 }));
});
// A start that failed leaves nothing to tear down, and must not hide its own error behind another.
afterAll(() => teardown?.());

/** The contract's routes (design.md section 4), by service: each must be in that service's document. */
const CONTRACT = {
  coordinator: [
    'post /v1/transactions',
    'post /v1/transactions/{txId}/branches',
    'post /v1/transactions/{txId}/commit',
    'post /v1/transactions/{txId}/abort',
    'get /v1/transactions/{txId}',
    'get /v1/transactions/{txId}/outcome',
    'get /v1/transactions',
  ],
  participant: [
    'post /v1/2pc/prepare',
    'post /v1/2pc/commit',
    'post /v1/2pc/abort',
    'get /v1/2pc/transactions/{txId}',
    'get /v1/2pc/transactions',
    'post /v1/2pc/transactions/{txId}/heuristic',
    'get /v1/kv',
    'get /v1/kv/{key}',
  ],
  both: ['get /healthz', 'get /metrics', 'get /openapi.json', 'get /v1/chaos/points', 'post /v1/chaos/crash-at'],
};

const operations = (doc: Doc): string[] => Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m} ${p}`));

/** Checks real answers against one service's document, and remembers which operations were seen. */
class Checker {
  private readonly ajv = new Ajv2020({ strict: true, allErrors: true });
  readonly seen = new Set<string>();
  readonly wrong: string[] = [];

  constructor(
    readonly doc: Doc,
    readonly baseUrl: string,
  ) {
    this.ajv.addSchema({ $id: 'urn:twopc:components', $defs: doc.components.schemas });
  }

  /** Every schema of the document compiles (strict: an unknown keyword is an error). */
  compileAll(): number {
    let n = 0;
    for (const item of Object.values(this.doc.paths)) {
      for (const op of Object.values(item)) {
        const responses = op.responses as Record<string, { content?: Record<string, { schema: Json }> }>;
        const media = Object.values(responses).flatMap((r) => Object.values(r.content ?? {}));
        const body = (op.requestBody as { content: Record<string, { schema: Json }> } | undefined)?.content['application/json'];
        for (const m of body === undefined ? media : [...media, body]) {
          this.compile(m.schema);
          n++;
        }
      }
    }
    return n;
  }

  private compile(schema: Json) {
    return this.ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"urn:twopc:components#/$defs/')) as Json);
  }

  /** Sends a request for `op` ("post /v1/transactions/{txId}/commit") to `path`, checks the answer, returns it. */
  async call(op: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const [method, template] = op.split(' ') as [string, string];
    const res = await fetch(this.baseUrl + path, {
      method: method.toUpperCase(),
      ...(body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    const operation = this.doc.paths[template]?.[method] as { responses: Record<string, { content?: Record<string, { schema: Json }> }> } | undefined;
    if (operation === undefined) {
      this.wrong.push(`${op}: not in the document`);
      return { status: res.status, body: text };
    }
    this.seen.add(op);
    const response = operation.responses[String(res.status)] ?? operation.responses[`${String(res.status).charAt(0)}XX`];
    const type = (res.headers.get('content-type') ?? '').split(';')[0] as string;
    const media = response?.content?.[Object.keys(response.content).find((k) => k.split(';')[0] === type) ?? ''];
    if (media === undefined) {
      this.wrong.push(`${op} ${path}: status ${res.status} with ${type} is not documented`);
      return { status: res.status, body: text };
    }
    const parsed: unknown = type === 'application/json' ? JSON.parse(text) : text;
    const validate = this.compile(media.schema);
    if (!validate(parsed)) this.wrong.push(`${op} ${path} ${res.status}: ${this.ajv.errorsText(validate.errors)} in ${text.slice(0, 300)}`);
    return { status: res.status, body: parsed };
  }
}

async function documentOf(url: string): Promise<Doc> {
  const res = await fetch(`${url}/openapi.json`, { signal: AbortSignal.timeout(15_000) });
  expect(res.status).toBe(200);
  return (await res.json()) as Doc;
}

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document on both services, listing every route of the contract', async () => {
    for (const [role, url] of [
      ['coordinator', c.coordinator.url],
      ['participant', (c.participants[0] as ProcessCluster['coordinator']).url],
    ] as const) {
      const doc = await documentOf(url);
      const validator = new Validator();
      const result = await validator.validate(doc as unknown as Json);
      expect(result.errors ?? [], `${role}: ${JSON.stringify(result.errors)}`).toEqual([]);
      expect(result.valid).toBe(true);
      expect(validator.version).toBe('3.1');
      expect(operations(doc)).toEqual(expect.arrayContaining([...CONTRACT[role], ...CONTRACT.both]));
      expect(new Checker(doc, url).compileAll()).toBeGreaterThan(10);
    }
  });

  it("documents the participant's prepare with its resource's ops", async () => {
    const doc = await documentOf((c.participants[0] as ProcessCluster['coordinator']).url);
    const prepare = doc.paths['/v1/2pc/prepare']?.post as { requestBody: { content: Record<string, { schema: Json }> } };
    const text = JSON.stringify(prepare.requestBody.content['application/json']?.schema);
    for (const op of ['put', 'delete', 'add', 'read']) expect(text).toContain(`"const":"${op}"`);
  });

  it('describes the real answers of every route, good and bad', async () => {
    const co = new Checker(await documentOf(c.coordinator.url), c.coordinator.url);
    const pUrl = (c.participants[0] as ProcessCluster['coordinator']).url;
    const pa = new Checker(await documentOf(pUrl), pUrl);

    // Coordinator: run whole, interactive, reads, the batch of inquiries, and bad input.
    const whole = await co.call('post /v1/transactions', '/v1/transactions', { branches: [{ participant: 'p1', ops: [{ op: 'put', key: 'k', value: { a: 1 } }] }] });
    expect(whole.status).toBe(200);
    const wholeId = (whole.body as { txId: string }).txId;
    const begun = await co.call('post /v1/transactions', '/v1/transactions', {});
    expect(begun.status).toBe(201);
    const txId = (begun.body as { txId: string }).txId;
    expect((await co.call('post /v1/transactions/{txId}/branches', `/v1/transactions/${txId}/branches`, { participant: 'p1', ops: [{ op: 'add', key: 'n', amount: 2 }] })).status).toBe(200);
    expect((await co.call('get /v1/transactions/{txId}', `/v1/transactions/${txId}`)).status).toBe(200);
    expect((await co.call('post /v1/transactions/{txId}/commit', `/v1/transactions/${txId}/commit`)).status).toBe(200);
    expect((await co.call('post /v1/transactions/{txId}/commit', `/v1/transactions/${txId}/commit`, { force: true })).status).toBe(400);
    const other = ((await co.call('post /v1/transactions', '/v1/transactions', { timeoutMs: 5_000 })).body as { txId: string }).txId;
    expect((await co.call('post /v1/transactions/{txId}/abort', `/v1/transactions/${other}/abort`)).status).toBe(200);
    expect((await co.call('post /v1/transactions/{txId}/commit', `/v1/transactions/${other}/commit`)).body).toMatchObject({ outcome: 'aborted' });
    expect((await co.call('post /v1/transactions/{txId}/branches', `/v1/transactions/${other}/branches`, { participant: 'p1', ops: [] })).status).toBe(409);
    expect((await co.call('post /v1/transactions/{txId}/abort', '/v1/transactions/tx-999-999/abort')).status).toBe(404);
    expect((await co.call('get /v1/transactions/{txId}/outcome', `/v1/transactions/${wholeId}/outcome`)).body).toEqual({ outcome: 'committed' });
    expect((await co.call('post /v1/outcomes', '/v1/outcomes', { txIds: [wholeId, 'tx-999-999'] })).status).toBe(200);
    expect((await co.call('get /v1/transactions', '/v1/transactions?state=committed')).status).toBe(200);
    expect((await co.call('get /v1/transactions', '/v1/transactions?state=sideways')).status).toBe(400);
    expect((await co.call('post /v1/transactions', '/v1/transactions', { timeoutMS: 5 })).status).toBe(400);
    expect((await co.call('get /v1/participants', '/v1/participants')).status).toBe(200);
    const survey = await co.call('get /v1/participants/in-doubt', '/v1/participants/in-doubt');
    expect((survey.body as { participants: { name: string; reachable: boolean }[] }).participants.map((p) => p.reachable)).toContain(true);

    // Participant: the protocol's messages straight from here, as a coordinator sends them.
    const prepare = { txId: 'tx-900-1', coordinator: c.coordinator.url, participants: [pUrl], ops: [{ op: 'put', key: 'z', value: 1 }] };
    expect((await pa.call('post /v1/2pc/prepare', '/v1/2pc/prepare', prepare)).body).toEqual({ vote: 'yes' });
    expect((await pa.call('post /v1/2pc/prepare', '/v1/2pc/prepare', { ...prepare, vote: 'yes' })).status).toBe(400);
    await pa.call('get /v1/2pc/transactions', '/v1/2pc/transactions?state=prepared');
    // The coordinator never heard of tx-900-1, so the participant may abort it (presumed abort) any moment: either answer is documented.
    expect([200, 409]).toContain((await pa.call('post /v1/2pc/transactions/{txId}/heuristic', '/v1/2pc/transactions/tx-900-1/heuristic', { outcome: 'aborted' })).status);
    expect((await pa.call('post /v1/2pc/transactions/{txId}/inquiry', '/v1/2pc/transactions/tx-900-1/inquiry', { from: c.coordinator.url })).status).toBe(200);
    const asked = await pa.call('post /v1/2pc/inquiries', '/v1/2pc/inquiries', { txIds: ['tx-900-1', 'tx-900-3'], from: c.coordinator.url });
    expect(asked.status).toBe(200);
    expect(Object.keys((asked.body as { states: object }).states).sort()).toEqual(['tx-900-1', 'tx-900-3']);
    expect((await pa.call('post /v1/2pc/inquiries', '/v1/2pc/inquiries', { txIds: [] })).status).toBe(400);
    expect((await pa.call('post /v1/2pc/abort', '/v1/2pc/abort', { txId: 'tx-900-1' })).status).toBe(200);
    // Refused (409), or reported with the operator's heuristic outcome (200) when the heuristic came first.
    expect([200, 409]).toContain((await pa.call('post /v1/2pc/commit', '/v1/2pc/commit', { txId: 'tx-900-1' })).status);
    expect((await pa.call('post /v1/2pc/commit', '/v1/2pc/commit', { txId: 'tx-999-999' })).status).toBe(404);
    const batch = await pa.call('post /v1/2pc/batch', '/v1/2pc/batch', { messages: [{ type: 'abort', body: { txId: 'tx-900-2' } }, { type: 'commit', body: { txId: 5 } }] });
    expect(batch.status).toBe(200);
    expect((batch.body as { replies: { status: number }[] }).replies.map((r) => r.status)).toEqual([200, 400]);
    expect((await pa.call('post /v1/2pc/batch', '/v1/2pc/batch', { messages: [] })).status).toBe(400);
    expect((await pa.call('get /v1/2pc/transactions/{txId}', `/v1/2pc/transactions/${wholeId}`)).status).toBe(200);
    expect((await pa.call('get /v1/kv', '/v1/kv')).body).toMatchObject({ entries: { k: { a: 1 }, n: 2 } });
    expect((await pa.call('get /v1/kv/{key}', '/v1/kv/k')).body).toEqual({ key: 'k', value: { a: 1 } });

    // What both have.
    for (const ck of [co, pa]) {
      expect((await ck.call('get /healthz', '/healthz')).status).toBe(200);
      expect((await ck.call('get /metrics', '/metrics')).status).toBe(200);
      expect((await ck.call('get /openapi.json', '/openapi.json')).status).toBe(200);
      expect((await ck.call('get /v1/chaos/points', '/v1/chaos/points')).status).toBe(200);
      expect((await ck.call('post /v1/chaos/crash-at', '/v1/chaos/crash-at', { point: 'nowhere' })).status).toBe(400);
    }
    expect((await co.call('get /', '/')).status).toBe(200);

    expect([...co.wrong, ...pa.wrong]).toEqual([]);
    // Every operation either document lists was called and checked.
    expect(operations(co.doc).filter((op) => !co.seen.has(op))).toEqual([]);
    expect(operations(pa.doc).filter((op) => !pa.seen.has(op))).toEqual([]);
  });
});
