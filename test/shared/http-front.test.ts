/**
 * The hot routes' front (shared/http/body.ts, the base app's one front
 * middleware, sendAnswer's plain write), over real HTTP on real services: the
 * coordinator's POST /v1/transactions, and a participant's POST /v1/2pc/batch
 * standalone and embedded in a host app that parses nothing itself.
 *
 * Every refusal is checked byte for byte (status, content type, length, body):
 * these are the answers body-parser and the generic middlewares gave before
 * the plain-JSON path existed, and a request the plain path does not take (a
 * `+json` type) must get the very same bytes as one it takes.
 */
import fs from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from '../../coordinator/main.ts';
import { BODY_LIMIT_BYTES_DEFAULT } from '../../shared/http/app.ts';
import { silentLogger } from '../../shared/logger.ts';
import { Cleanup, embeddedParticipant, participant, stubCoordinator, tempDir } from '../participant/fixtures.ts';

const TOKEN = 'sekrit';
const cleanup = new Cleanup();
afterAll(() => cleanup.run());

interface Answer {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly contentLength: string | undefined;
  readonly body: string;
  readonly reusedSocket: boolean;
}

interface Sent {
  readonly body?: string | Buffer;
  readonly headers?: Record<string, string>;
  /** Sent in two chunks without a Content-Length (chunked), as a streaming client would. */
  readonly chunked?: boolean;
  readonly agent?: http.Agent;
}

/** One POST over node:http, answered in full: what a client receives, bytes and all. */
function post(url: string, sent: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = sent.body ?? '';
    const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...sent.headers };
    if (sent.chunked !== true) headers['content-length'] = String(Buffer.byteLength(body));
    const req = http.request(url, { method: 'POST', headers, agent: sent.agent ?? false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: res.headers['content-type'],
          contentLength: res.headers['content-length'],
          body: Buffer.concat(parts).toString('utf8'),
          reusedSocket: req.reusedSocket,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (sent.chunked === true) {
      const bytes = Buffer.from(body);
      const half = Math.floor(bytes.length / 2);
      req.write(bytes.subarray(0, half));
      req.end(bytes.subarray(half));
    } else {
      req.end(body);
    }
  });
}

/** The contract's error answer, as express's res.json writes it. */
function errorAnswer(status: number, code: string, message: string): Pick<Answer, 'status' | 'contentType' | 'contentLength' | 'body'> {
  const body = JSON.stringify({ error: { code, message } });
  return { status, contentType: 'application/json; charset=utf-8', contentLength: String(Buffer.byteLength(body)), body };
}

const pick = ({ status, contentType, contentLength, body }: Answer) => ({ status, contentType, contentLength, body });

/** JSON.parse's own words for `text`, which body-parser passed on and the contract's 400 quotes. */
function parseMessage(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`${text} parses`);
}

const MALFORMED = '{"messages": [';
const OVER_LIMIT = JSON.stringify({ pad: 'x'.repeat(BODY_LIMIT_BYTES_DEFAULT + 1) });
const UNAUTHORIZED = errorAnswer(401, 'unauthorized', 'Missing or wrong `Authorization: Bearer <token>` header.');
const TOO_LARGE = errorAnswer(413, 'payload_too_large', 'Request body is larger than the limit (request entity too large).');
const NOT_JSON = errorAnswer(400, 'bad_request', 'Expected `Content-Type: application/json`.');
const MALFORMED_ANSWER = errorAnswer(400, 'bad_request', `Malformed JSON: ${parseMessage(MALFORMED)}.`);

interface HotRoute {
  readonly name: string;
  url: string;
  /** Refuses a non-JSON content type itself (the base app); a host app's router leaves the body unparsed instead. */
  readonly baseApp: boolean;
}

const coordinatorBegin: HotRoute = { name: 'coordinator POST /v1/transactions', url: '', baseApp: true };
const participantBatch: HotRoute = { name: 'participant POST /v1/2pc/batch', url: '', baseApp: true };
const embeddedBatch: HotRoute = { name: 'embedded participant POST /v1/2pc/batch', url: '', baseApp: false };
const HOT_ROUTES = [coordinatorBegin, participantBatch, embeddedBatch];

beforeAll(async () => {
  const coordinatorDir = await tempDir('front-coord');
  cleanup.add(() => fs.promises.rm(coordinatorDir, { recursive: true, force: true }));
  const coordinator = await startCoordinator({
    port: 0,
    dataDir: coordinatorDir,
    participants: { p1: 'http://127.0.0.1:9' },
    token: TOKEN,
    fsync: 'always',
    logger: silentLogger(),
    onFatal: (error) => {
      throw error;
    },
  });
  cleanup.add(() => coordinator.close());
  coordinatorBegin.url = `${coordinator.url}/v1/transactions`;

  const coord = await stubCoordinator(cleanup);
  const standalone = await participant(cleanup, { coordinatorUrl: coord.url, token: TOKEN });
  participantBatch.url = `${standalone.url}/v1/2pc/batch`;

  const embedded = await embeddedParticipant(cleanup, { coordinatorUrl: coord.url, token: TOKEN });
  embeddedBatch.url = `${embedded.url}/v1/2pc/batch`;
});

describe.each(HOT_ROUTES)('the front of $name', (route) => {
  it('refuses a missing or wrong token before reading the body', async () => {
    expect(pick(await post(route.url, { body: '{}', headers: { authorization: '' } }))).toEqual(UNAUTHORIZED);
    expect(pick(await post(route.url, { body: OVER_LIMIT, headers: { authorization: 'Bearer nope' } }))).toEqual(UNAUTHORIZED);
  });

  it('refuses a body over the limit with a 413, declared or streamed, and keeps the connection usable', async () => {
    expect(pick(await post(route.url, { body: OVER_LIMIT }))).toEqual(TOO_LARGE);
    expect(pick(await post(route.url, { body: OVER_LIMIT, chunked: true }))).toEqual(TOO_LARGE);
    // The refused body is read off before the answer, so the next request on the same socket is parsed from its own first byte.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(pick(await post(route.url, { body: OVER_LIMIT, agent }))).toEqual(TOO_LARGE);
      const next = await post(route.url, { body: MALFORMED, agent });
      expect(next.reusedSocket).toBe(true);
      expect(pick(next)).toEqual(MALFORMED_ANSWER);
    } finally {
      agent.destroy();
    }
  });

  it('refuses malformed JSON with a 400 quoting the parser, declared or streamed', async () => {
    expect(pick(await post(route.url, { body: MALFORMED }))).toEqual(MALFORMED_ANSWER);
    expect(pick(await post(route.url, { body: MALFORMED, chunked: true }))).toEqual(MALFORMED_ANSWER);
    expect(pick(await post(route.url, { body: MALFORMED, headers: { 'content-type': 'Application/JSON; charset=UTF-8' } }))).toEqual(MALFORMED_ANSWER);
  });

  it('refuses a body that is not JSON', async () => {
    const answer = await post(route.url, { body: 'hello', headers: { 'content-type': 'text/plain' } });
    if (route.baseApp) {
      expect(pick(answer)).toEqual(NOT_JSON);
    } else {
      // A host app's router parses only JSON, as before: the body stays unread and the route's schema refuses it.
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'bad_request' } });
    }
  });
});

describe.each([coordinatorBegin, participantBatch])('$name, through the generic parser', (route) => {
  it('gives a +json body exactly the answers the plain-JSON path gives', async () => {
    const generic = { 'content-type': 'application/vnd.twopc+json' };
    expect(pick(await post(route.url, { body: MALFORMED, headers: generic }))).toEqual(MALFORMED_ANSWER);
    expect(pick(await post(route.url, { body: OVER_LIMIT, headers: generic }))).toEqual(TOO_LARGE);
    const plain = await post(route.url, { body: '{"messages":"no"}' });
    const viaGeneric = await post(route.url, { body: '{"messages":"no"}', headers: generic });
    expect(plain.status).toBe(400);
    expect(pick(viaGeneric)).toEqual(pick(plain));
  });
});

describe('what the plain-JSON path accepts', () => {
  it('reads an empty body as {}, drops a byte-order mark, and answers with express’s headers', async () => {
    for (const body of ['', '\uFEFF{}', '{}']) {
      const answer = await post(coordinatorBegin.url, { body, headers: { 'content-type': 'application/json; charset=utf-8' } });
      expect(answer.status).toBe(201);
      expect(answer.contentType).toBe('application/json; charset=utf-8');
      expect(answer.contentLength).toBe(String(Buffer.byteLength(answer.body)));
      expect(JSON.parse(answer.body)).toMatchObject({ state: 'active' });
    }
  });

  it('takes a batch of messages to the core, one reply each', async () => {
    for (const route of [participantBatch, embeddedBatch]) {
      const answer = await post(route.url, { body: JSON.stringify({ messages: [{ type: 'commit', body: { txId: 'tx-9-1' } }, { type: 'nope' }] }), chunked: true });
      expect(answer.status).toBe(200);
      const replies = (JSON.parse(answer.body) as { replies: { status: number }[] }).replies;
      // An unknown transaction's commit is its single route's 404; a message of no known type is refused on its own.
      expect(replies.map((r) => r.status)).toEqual([404, 400]);
    }
  });
});

describe('a host app with its own JSON settings', () => {
  it('gets its answers written by express, ETag and `json spaces` included', async () => {
    const coord = await stubCoordinator(cleanup);
    const listening = await embeddedParticipant(cleanup, { coordinatorUrl: coord.url, token: TOKEN }, (app) => app.set('json spaces', 2));

    const expected = JSON.stringify(JSON.parse(MALFORMED_ANSWER.body), null, 2);
    const answer = await new Promise<{ status: number; etag: string | undefined; body: string }>((resolve, reject) => {
      const req = http.request(`${listening.url}/v1/2pc/batch`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, body: Buffer.concat(parts).toString('utf8') }));
      });
      req.on('error', reject);
      req.end(MALFORMED);
    });
    expect(answer.status).toBe(400);
    expect(answer.body).toBe(expected);
    expect(answer.etag).toMatch(/^W\//);
  });
});
