/**
 * The hot routes' lane past express. A standalone service answers its hot
 * routes (a participant's protocol routes, `POST /v1/2pc/batch`, `/prepare`,
 * `/commit` and `/abort`; the coordinator's `POST /v1/transactions`) here,
 * straight from node's server, when the request is the plain case: a POST to
 * exactly the route's path, a JSON body with a declared length within the
 * limit, the token right. Everything else, and every other route, goes to the
 * express app, which answers it as it always did.
 *
 * Why: express costs each request far more than node's server does (measured on
 * these machines: a minimal express route 200-254 µs of CPU per request, node's
 * server alone 42-43 µs; the participant's own front 300-400 µs on /healthz), and
 * the hot routes carry one or more requests per transaction on every hop.
 *
 * What stays the same, by construction: the route's spec checks the body (the
 * same schema, the same 400s), the handler is the very function express runs
 * for that route, answers and errors are written by the same `sendAnswer` and
 * `toTwopcError`, and the request is counted in `twopc_http_requests_total`
 * under the same labels (the route once its body was read, else `unmatched`, as
 * the app's front counts it). A participant mounted in a host's express app
 * has no lane: the host's app serves every route.
 *
 * What the lane skips is the app's middleware between its front and the route:
 * a hot route's router and app must have none that a request needs (the
 * participant's router has its token check, which the route brings along as
 * `allows`). A middleware added there later must be added here too, or the
 * route taken off the lane.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express } from 'express';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { parse } from '../schemas.ts';
import { internalError, sendError, toTwopcError } from './answers.ts';
import { isPlainJsonBody, readPlainJson, type BodyFailure } from './body.ts';
import { markRoute, requestCounter, type RouteInput, type RouteSpec } from './route-table.ts';

/** A hot route: a POST without path parameters or a query, and the handler express runs for it. */
export interface FastRoute<B = unknown> {
  readonly spec: RouteSpec<undefined, undefined, B>;
  /** The route's own token test (a router with a token of its own); a request it refuses goes to the app, which answers the 401. */
  readonly allows?: (method: string | undefined, fullPath: string, authorization: string | undefined) => boolean;
  /** Called with node's request and response here, with express's on the app's own route. */
  readonly handler: (input: RouteInput<undefined, undefined, B>, req: IncomingMessage, res: ServerResponse) => Promise<void> | void;
}

export interface FastLaneOptions {
  readonly metrics: Metrics;
  readonly bodyLimitBytes: number;
  /** The token the app's front asks for (--token); the lane passes a request without it on to the app, which refuses it. */
  readonly allows?: (method: string | undefined, fullPath: string, authorization: string | undefined) => boolean;
  readonly logger?: Logger;
}

/** Answers the requests it takes; `take` says whether it took this one (else the app must answer it). */
export interface FastLane {
  take(req: IncomingMessage, res: ServerResponse): boolean;
  /** The paths of the routes on it. */
  paths(): readonly string[];
}

/** Hot routes at most per app: a lane is for the few routes every transaction crosses. */
const FAST_ROUTES_MAX = 8;

const lanes = new WeakMap<Express, Lane>();

/** Gives `app` a lane (the base app does, ./app.ts); `listen` then sends requests through it first. */
export function openFastLane(app: Express, options: FastLaneOptions): void {
  if (lanes.has(app)) throw new TypeError('This app has a fast lane already.');
  lanes.set(app, new Lane(options));
}

/** Adds a hot route to `app`'s lane. The route must also be mounted in the app: the lane takes only its plain requests. */
export function mountFast<B>(app: Express, route: FastRoute<B>): void {
  const lane = lanes.get(app);
  if (lane === undefined) throw new TypeError('Expected an app made by createBaseApp (it has no fast lane).');
  lane.add(route as FastRoute);
}

/** The lane `listen` consults before the app; undefined for an app without one. */
export function fastLaneOf(app: Express): FastLane | undefined {
  return lanes.get(app);
}

class Lane implements FastLane {
  private readonly routes = new Map<string, FastRoute>();
  /** Counts an answer as the app's front counts it: by the route it was marked with once its body was read. */
  private readonly counted: (this: ServerResponse) => void;

  constructor(private readonly options: FastLaneOptions) {
    this.counted = requestCounter(options.metrics);
  }

  add(route: FastRoute): void {
    const { spec } = route;
    if (spec.method !== 'post' || spec.path.includes(':') || spec.params !== undefined || spec.query !== undefined || spec.body === undefined) {
      throw new TypeError(`Expected a POST route without parameters or a query and with a body schema, got ${spec.method.toUpperCase()} ${spec.path}.`);
    }
    if (this.routes.has(spec.path)) throw new TypeError(`The route ${spec.path} is already on the fast lane.`);
    if (this.routes.size >= FAST_ROUTES_MAX) throw new TypeError(`Expected at most ${FAST_ROUTES_MAX} fast routes.`);
    this.routes.set(spec.path, route);
  }

  paths(): readonly string[] {
    return [...this.routes.keys()];
  }

  take(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'POST') return false;
    const route = this.routes.get(req.url ?? '');
    if (route === undefined) return false;
    const declared = req.headers['content-length'];
    if (declared === undefined || !(Number(declared) <= this.options.bodyLimitBytes) || !isPlainJsonBody(req)) return false;
    const path = route.spec.path;
    const authorization = req.headers.authorization;
    if (this.options.allows?.('POST', path, authorization) === false || route.allows?.('POST', path, authorization) === false) return false;
    res.once('finish', this.counted);
    readPlainJson(req, this.options.bodyLimitBytes, (failure, raw) => this.run(route, req, res, failure, raw));
    return true;
  }

  private run(route: FastRoute, req: IncomingMessage, res: ServerResponse, failure: BodyFailure | undefined, raw: unknown): void {
    // The app's front reads the body before routing: a body it refuses is counted as matching no route, there as here.
    if (failure !== undefined) return this.fail(req, res, failure);
    markRoute(res, route.spec.path);
    let input: RouteInput<undefined, undefined, unknown>;
    try {
      input = { params: undefined, query: undefined, body: parse(route.spec.body as NonNullable<FastRoute['spec']['body']>, raw) };
    } catch (error) {
      return this.fail(req, res, error);
    }
    Promise.resolve()
      .then(() => route.handler(input, req, res))
      .catch((error: unknown) => this.fail(req, res, error));
  }

  /** As the app's error handler answers: the contract's error for a known failure, else a logged 500. */
  private fail(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    const known = toTwopcError(error);
    if (known === undefined) this.options.logger?.error({ err: error, method: req.method, path: req.url }, 'unhandled error');
    if (res.headersSent) {
      // Too late for an error answer: the client sees the connection cut, as express's final handler leaves it.
      if (known !== undefined) this.options.logger?.debug({ err: error, method: req.method, path: req.url }, 'error after the answer began; connection cut');
      return void res.destroy();
    }
    sendError(res, known ?? internalError());
  }
}
