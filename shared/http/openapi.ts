/**
 * The OpenAPI 3.1 document of a service, generated from its route table
 * (./route-table.ts) with zod's own JSON Schema output: OpenAPI 3.1 schemas
 * are JSON Schema draft 2020-12, which is what `z.toJSONSchema` emits. Served
 * at GET /openapi.json; nothing here is written by hand per route.
 */
import { z } from 'zod';
import { errorBodySchema, type AnyRouteSpec } from './route-table.ts';

type JsonSchema = Record<string, unknown>;

export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
  readonly description?: string;
}

/** A request part is described as the client sends it, an answer as the server sends it. */
function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  // Refinements (a size in bytes, a statement's first keyword) cannot be said in JSON Schema; the 400 says them.
  const out = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}

/** `/v1/transactions/:txId` → `/v1/transactions/{txId}`. */
export const openApiPath = (expressPath: string): string => expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** One parameter per property of a params or query object schema. */
function parametersOf(schema: z.ZodType | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (schema === undefined) return [];
  const object = jsonSchemaOf(schema, 'input');
  const properties = (object.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((object.required ?? []) as string[]);
  return Object.entries(properties).map(([name, s]) => {
    const { description, ...rest } = s;
    return {
      name,
      in: where,
      required: where === 'path' || required.has(name),
      schema: rest,
      ...(typeof description === 'string' && { description }),
    };
  });
}

const errorResponse = (description: string): JsonSchema => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

function responsesOf(route: AnyRouteSpec): JsonSchema {
  const out: JsonSchema = {};
  for (const [status, r] of Object.entries(route.responses)) {
    const type = r.contentType ?? 'application/json';
    if (Number(status) >= 400 && r.schema === undefined) {
      out[status] = errorResponse(r.description);
      continue;
    }
    const content: JsonSchema = { [type]: { schema: r.schema === undefined ? { type: 'string' } : jsonSchemaOf(r.schema, 'output') } };
    for (const a of r.alternatives ?? []) content[a.contentType] = { schema: { ...jsonSchemaOf(a.schema, 'output'), description: a.description } };
    out[status] = { description: r.description, content };
  }
  out['4XX'] ??= errorResponse('Bad input (a message names the field), an unknown id, a conflict, or a missing token.');
  out['5XX'] ??= errorResponse('Unavailable (recovering, or a limit reached: see Retry-After), or an internal error.');
  return out;
}

function operationOf(route: AnyRouteSpec): JsonSchema {
  const parameters = [...parametersOf(route.params, 'path'), ...parametersOf(route.query, 'query')];
  return {
    operationId: `${route.method}${openApiPath(route.path).replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    summary: route.summary,
    ...(route.description !== undefined && { description: route.description }),
    tags: [route.tag],
    ...(parameters.length > 0 && { parameters }),
    ...(route.body !== undefined && {
      requestBody: { required: route.bodyOptional !== true, content: { 'application/json': { schema: jsonSchemaOf(route.body, 'input') } } },
    }),
    responses: responsesOf(route),
    ...(route.public === true && { security: [] }),
  };
}

/** The document for `routes`; two routes on one method and path are a programming error. */
export function openApiDocument(info: OpenApiInfo, routes: readonly AnyRouteSpec[]): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const p = openApiPath(route.path);
    const item = (paths[p] ??= {});
    if (item[route.method] !== undefined) throw new Error(`Two routes for ${route.method.toUpperCase()} ${route.path}.`);
    item[route.method] = operationOf(route);
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      schemas: { Error: jsonSchemaOf(errorBodySchema, 'output') },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Needed on every route but /healthz when the service runs with --token.' } },
    },
    // The token is needed only when the service runs with --token: either way is allowed.
    security: [{ bearer: [] }, {}],
  };
}
