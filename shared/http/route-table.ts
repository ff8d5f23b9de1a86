/**
 * Routes as data. Each HTTP route is described once, as a `RouteSpec`: its
 * method and path, the zod schemas of its path parameters, query and body,
 * and of its answers by status. Express checks requests from the spec
 * (`mountRoute` puts one validating middleware before the handler) and the
 * OpenAPI document is generated from the same specs (./openapi.ts), so what
 * a route accepts and what it says it accepts cannot drift apart.
 *
 * A new route is one entry in its service's table (coordinator/api.ts,
 * participant/api.ts, ./base-routes.ts) plus its handler.
 */
import type { ServerResponse } from 'node:http';
import type { Request, RequestHandler, Response, Router } from 'express';
import { z } from 'zod';
import type { Metrics } from '../metrics.ts';
import { parse } from '../schemas.ts';

export type HttpMethod = 'get' | 'post';

export interface ResponseSpec {
  readonly description: string;
  /** The JSON body's schema; absent for a body that is not JSON (see contentType). */
  readonly schema?: z.ZodType;
  /** Default application/json. */
  readonly contentType?: string;
  /** The same answer in other forms, chosen by the request's Accept header (a batch's streamed lines). */
  readonly alternatives?: readonly { readonly contentType: string; readonly schema: z.ZodType; readonly description: string }[];
}

export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  readonly method: HttpMethod;
  /** Express style: `/v1/transactions/:txId`. */
  readonly path: string;
  readonly summary: string;
  readonly description?: string;
  /** Groups routes in the document: `transactions`, `2pc`, `ops`... */
  readonly tag: string;
  readonly params?: z.ZodType<P>;
  readonly query?: z.ZodType<Q>;
  readonly body?: z.ZodType<B>;
  /** A route whose body may be left out: it is then checked as `{}` (commit and abort need none). */
  readonly bodyOptional?: boolean;
  /** Answers by status. Every route may also answer the contract's errors (4XX, 5XX). */
  readonly responses: Readonly<Record<number, ResponseSpec>>;
  /** Served without the bearer token (--token): /healthz, and pages that hold no data. */
  readonly public?: boolean;
}

/** What a handler receives: the request's parts, already checked and typed. */
export interface RouteInput<P, Q, B> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
}

/** Keeps a spec's types for `mountRoute`; a spec is plain data. */
export const defineRoute = <P = undefined, Q = undefined, B = undefined>(spec: RouteSpec<P, Q, B>): RouteSpec<P, Q, B> => spec;

/** Any spec, whatever its types: tables are lists of these. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a table holds specs of different types; each is checked where it is mounted.
export type AnyRouteSpec = RouteSpec<any, any, any>;

/** The contract's error body, `{"error":{"code","message"}}`. */
export const errorBodySchema = z
  .strictObject({ error: z.strictObject({ code: z.string().meta({ description: 'A stable code to match on: bad_request, not_found, conflict, unavailable...' }), message: z.string() }) })
  .meta({ title: 'Error' });

/** Wraps an async handler so a rejection reaches the error handler instead of crashing. */
export function asyncRoute(fn: (req: Request, res: Response) => Promise<void> | void): RequestHandler {
  return (req, res, next) => {
    Promise.resolve()
      .then(() => fn(req, res))
      .catch(next);
  };
}

const INPUT_KEY = 'twopcInput';

const routeOf = new WeakMap<ServerResponse, string>();

/**
 * Marks `res` as the answer of the route `template` (its full path template, the router's prefix
 * included), as soon as the route is matched: what `twopc_http_requests_total` labels it, whatever
 * answers it later (the route, or an error handler mounted under a prefix of its own).
 */
export function markRoute(res: ServerResponse, template: string): void {
  routeOf.set(res, template);
}

/**
 * A `finish` listener counting an answer in `twopc_http_requests_total` by the route it was marked
 * with (`unmatched` for none), its method and status: one function for every response (`this` is
 * the response), for the app's front and the fast lane alike.
 */
export function requestCounter(metrics: Metrics): (this: ServerResponse) => void {
  return function counted(this: ServerResponse): void {
    metrics.child(metrics.httpRequests, routeOf.get(this) ?? 'unmatched', this.req.method ?? '', String(this.statusCode)).inc();
  };
}

/**
 * The one validating middleware, built from a spec: path parameters, then the
 * query, then the body, each checked with its schema (a 400 naming the field);
 * the checked values are kept for the handler. A part the spec does not
 * describe is not read (a query string on a route without one is ignored, as
 * it always was).
 */
export function validateRequest(spec: AnyRouteSpec): RequestHandler {
  return (req, res, next) => {
    markRoute(res, req.baseUrl + spec.path);
    try {
      const params = spec.params === undefined ? undefined : parse(spec.params, { ...req.params }, 'params');
      const query = spec.query === undefined ? undefined : parse(spec.query, { ...(req.query as Record<string, unknown>) }, 'query');
      const raw: unknown = req.body === undefined && spec.bodyOptional === true ? {} : req.body;
      const body = spec.body === undefined ? undefined : parse(spec.body, raw);
      res.locals[INPUT_KEY] = { params, query, body } satisfies RouteInput<unknown, unknown, unknown>;
      next();
    } catch (error) {
      next(error);
    }
  };
}

/** Registers `spec` on `router`: the validating middleware, then `handler` with the checked input. */
export function mountRoute<P, Q, B>(
  router: Router,
  spec: RouteSpec<P, Q, B>,
  handler: (input: RouteInput<P, Q, B>, req: Request, res: Response) => Promise<void> | void,
): void {
  router[spec.method](spec.path, validateRequest(spec), asyncRoute((req, res) => handler(res.locals[INPUT_KEY] as RouteInput<P, Q, B>, req, res)));
}
