/**
 * Routes as data (issue 9): a route is one table entry, express validates from
 * it with the contract's 400s, and the OpenAPI document is generated from the
 * same entries, a resource's op schema included.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { finishApp, listen, type Listening } from '../../shared/http/app.ts';
import { openApiDocument } from '../../shared/http/openapi.ts';
import { defineRoute, mountRoute } from '../../shared/http/route-table.ts';
import { txIdSchema } from '../../shared/schemas.ts';
import { participantRoutes, routeList } from '../../participant/api.ts';
import { PostgresResource } from '../../participant/resources/postgres.ts';

const opened: Listening[] = [];
afterEach(async () => {
  for (const l of opened.splice(0)) await l.close();
});

type Json = Record<string, unknown>;

const echoRoute = defineRoute({
  method: 'post',
  path: '/v1/echo/:txId',
  tag: 'test',
  summary: 'Echoes what it was sent, after the table checked it.',
  params: z.strictObject({ txId: txIdSchema }),
  query: z.strictObject({ loud: z.enum(['yes', 'no']).optional() }),
  body: z.strictObject({ words: z.array(z.string().max(10)).max(2) }),
  responses: { 200: { description: 'The words.', schema: z.strictObject({ txId: z.string(), words: z.array(z.string()), loud: z.boolean() }) } },
});

describe('a route table entry', () => {
  it('is checked by express with the contract 400s, and handed typed input', async () => {
    const app = express();
    app.use(express.json());
    mountRoute(app, echoRoute, ({ params, query, body }, _req, res) => {
      res.json({ txId: params.txId, words: body.words, loud: query.loud === 'yes' });
    });
    finishApp(app);
    const l = await listen(app, 0);
    opened.push(l);
    const send = async (path: string, body: unknown) => {
      const res = await fetch(l.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      return { status: res.status, body: (await res.json()) as Json };
    };
    expect(await send('/v1/echo/tx-1-1?loud=yes', { words: ['a'] })).toEqual({ status: 200, body: { txId: 'tx-1-1', words: ['a'], loud: true } });
    const cases: [string, unknown, string][] = [
      ['/v1/echo/a%20b', { words: [] }, 'Expected `txId` to match /^[A-Za-z0-9._:-]+$/.'],
      ['/v1/echo/tx-1-1?loud=maybe', { words: [] }, 'Expected `loud` to be one of "yes", "no", got string "maybe".'],
      ['/v1/echo/tx-1-1', { words: ['a'], extra: 1 }, 'Unknown field `extra` (allowed: words).'],
      ['/v1/echo/tx-1-1', {}, 'Missing field `words`.'],
      ['/v1/echo/tx-1-1', { words: ['a', 'b', 'c'] }, 'Expected `words` to have at most 2 items, got 3.'],
      ['/v1/echo/tx-1-1', { words: [1] }, 'Expected `words[0]` to be a string, got number 1.'],
      ['/v1/echo/tx-1-1', { words: ['x'.repeat(11)] }, 'Expected `words[0]` to be at most 10 characters.'],
      ['/v1/echo/tx-1-1', [1], 'Expected `body` to be an object, got an array.'],
    ];
    for (const [path, body, message] of cases) {
      expect(await send(path, body)).toEqual({ status: 400, body: { error: { code: 'bad_request', message } } });
    }
  });

  it('is in the OpenAPI document, which an OpenAPI 3.1 validator accepts', async () => {
    const doc = openApiDocument({ title: 't', version: '1' }, [echoRoute]) as { paths: Record<string, Record<string, Json>> };
    const op = doc.paths['/v1/echo/{txId}']?.post as { parameters: Json[]; requestBody: Json; responses: Record<string, unknown> };
    expect(op.parameters.map((p) => [p.name, p.in, p.required])).toEqual([
      ['txId', 'path', true],
      ['loud', 'query', false],
    ]);
    expect(Object.keys(op.responses)).toEqual(['200', '4XX', '5XX']);
    const result = await new Validator().validate(doc as unknown as Json);
    expect(result.errors ?? []).toEqual([]);
    expect(() => openApiDocument({ title: 't', version: '1' }, [echoRoute, echoRoute])).toThrow('Two routes for POST /v1/echo/:txId.');
  });
});

describe("a PostgreSQL participant's document", () => {
  it('describes its prepare with the sql op, from the resource', async () => {
    // The pool connects only on a query, and nothing here queries.
    const pg = new PostgresResource({ name: 'pg', url: 'postgres://nobody@127.0.0.1:1/nothing' });
    try {
      const doc = openApiDocument({ title: 'pg participant', version: '1' }, routeList(participantRoutes(pg.opsSchema))) as { paths: Record<string, Record<string, Json>> };
      expect((await new Validator().validate(doc as unknown as Json)).valid).toBe(true);
      const body = (doc.paths['/v1/2pc/prepare']?.post as { requestBody: { content: Record<string, { schema: Json }> } }).requestBody.content['application/json']?.schema;
      const ops = (body?.properties as Record<string, Json>).ops as Json;
      const sqlOp = ((ops.items as Json).oneOf as Json[])[0] as Json;
      expect(sqlOp).toMatchObject({ title: 'SqlOp', required: ['op', 'text'], properties: { op: { const: 'sql' }, text: { type: 'string', maxLength: 16_384 } } });
    } finally {
      await pg.pool.end();
    }
  });
});
