/**
 * The routes every twopc service has (shared/http/app.ts serves them): health,
 * metrics, this API's own description, and the chaos routes.
 */
import { z } from 'zod';
import { crashAtSchema } from '../schemas.ts';
import { defineRoute, type AnyRouteSpec } from './route-table.ts';

export const healthzRoute = defineRoute({
  method: 'get',
  path: '/healthz',
  tag: 'ops',
  summary: 'Liveness, and whether the node is still recovering from its WAL.',
  public: true,
  responses: {
    200: {
      description: 'The node is up.',
      schema: z.strictObject({
        ok: z.literal(true),
        role: z.enum(['coordinator', 'participant']),
        name: z.string(),
        pid: z.int(),
        recovering: z.boolean(),
      }),
    },
  },
});

export const metricsRoute = defineRoute({
  method: 'get',
  path: '/metrics',
  tag: 'ops',
  summary: 'Prometheus metrics, in the text exposition format.',
  responses: { 200: { description: 'The metrics.', contentType: 'text/plain; version=0.0.4' } },
});

export const openApiRoute = defineRoute({
  method: 'get',
  path: '/openapi.json',
  tag: 'ops',
  summary: 'This OpenAPI 3.1 description of every route of the service.',
  responses: { 200: { description: 'The document.', schema: z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) }) } },
});

export const chaosPointsRoute = defineRoute({
  method: 'get',
  path: '/v1/chaos/points',
  tag: 'chaos',
  summary: 'The crash points of this role, and the armed one (only with --chaos).',
  responses: {
    200: {
      description: 'The points.',
      schema: z.strictObject({ points: z.array(z.strictObject({ name: z.string(), when: z.string() })), armed: z.string().nullable() }),
    },
    404: { description: 'The node runs without --chaos (not_chaos).' },
  },
});

export const crashAtRoute = defineRoute({
  method: 'post',
  path: '/v1/chaos/crash-at',
  tag: 'chaos',
  summary: 'Arms a crash point: the process SIGKILLs itself on reaching it (only with --chaos).',
  body: crashAtSchema,
  responses: {
    200: { description: 'Armed.', schema: z.strictObject({ armed: z.string() }) },
    400: { description: 'Unknown point, or a point of the other role.' },
    404: { description: 'The node runs without --chaos (not_chaos).' },
  },
});

export const BASE_ROUTES: readonly AnyRouteSpec[] = [healthzRoute, metricsRoute, openApiRoute, chaosPointsRoute, crashAtRoute];
