/**
 * The express skeleton both services share: JSON parsing with a size limit,
 * bearer-token auth, /healthz, /metrics, the chaos routes, and one error
 * handler that turns every failure into `{"error":{"code","message"}}`.
 *
 * Bad input never gets past here as a 5xx: malformed JSON is a 400, an
 * over-size body a 413, a wrong content type a 415, an unknown route a 404.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { createServer, STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { CRASH_POINTS } from '../crash-points.ts';
import type { CrashPoints } from '../crash.ts';
import { TwopcError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { BASE_ROUTES, chaosPointsRoute, crashAtRoute, healthzRoute, metricsRoute, openApiRoute } from './base-routes.ts';
import { openApiDocument, type OpenApiInfo } from './openapi.ts';
import { internalError, sendAnswer, sendError, toTwopcError } from './answers.ts';
import { plainJsonFirst } from './body.ts';
import { fastLaneOf, openFastLane } from './fast-lane.ts';
import { asyncRoute, mountRoute, requestCounter, type AnyRouteSpec } from './route-table.ts';
import { CONNECTIONS_CHECK_INTERVAL_MS, DROP_WARNING_INTERVAL_MS, RETRY_AFTER_S, SERVER_LIMITS_DEFAULT, type ServerLimits } from './limits.ts';

export interface BaseAppOptions {
  readonly role: 'coordinator' | 'participant';
  readonly name: string;
  readonly token?: string;
  readonly chaos?: boolean;
  /** Largest accepted request body. */
  readonly bodyLimitBytes?: number;
  readonly isRecovering: () => boolean;
  /**
   * Paths a GET (or HEAD) may read without the token: static pages that hold no
   * data, like the coordinator's dashboard, which then sends the token itself.
   */
  readonly publicPaths?: readonly string[];
  readonly metrics: Metrics;
  readonly crashPoints?: CrashPoints;
  readonly logger?: Logger;
  /** The service's own routes (besides these base ones), for GET /openapi.json. */
  readonly routes?: () => readonly AnyRouteSpec[];
}

export const BODY_LIMIT_BYTES_DEFAULT = 256 * 1024;

function apiInfo(role: BaseAppOptions['role']): OpenApiInfo {
  return {
    title: `twopc ${role}`,
    version: '1',
    description:
      role === 'coordinator'
        ? 'The coordinator of twopc, two-phase commit over HTTP: clients begin, enlist, commit and abort transactions here.'
        : 'A participant of twopc, two-phase commit over HTTP: the coordinator prepares, commits and aborts branches here.',
  };
}

export { asyncRoute, sendAnswer, sendError, toTwopcError };

/**
 * Bearer-token check, constant time. /healthz, and GETs of `publicPaths`, pass
 * without it. Paths are matched in full (`baseUrl` too), so a router mounted
 * under a prefix does not open `<prefix>/healthz`.
 */
export function requireToken(token: string, publicPaths: readonly string[] = []): RequestHandler {
  const allows = tokenCheck(token, publicPaths);
  return (req, res, next) => {
    if (allows(req)) return next();
    refuseToken(res);
  };
}

/** requireToken's test, for the front to call without a `next` of its own. */
function tokenCheck(token: string, publicPaths: readonly string[] = []): (req: Request) => boolean {
  const allows = tokenAllows(token, publicPaths);
  return (req) => allows(req.method, req.baseUrl + req.path, req.headers.authorization);
}

/**
 * The token test on a request's parts: its method, its full path (the router's prefix included)
 * and its Authorization header. The express front and the fast lane both ask it.
 */
export function tokenAllows(token: string, publicPaths: readonly string[] = []): (method: string | undefined, fullPath: string, authorization: string | undefined) => boolean {
  const expected = Buffer.from(`Bearer ${token}`);
  return (method, fullPath, authorization) => {
    if (fullPath === '/healthz') return true;
    if ((method === 'GET' || method === 'HEAD') && publicPaths.includes(fullPath)) return true;
    const got = Buffer.from(authorization ?? '');
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
}

function refuseToken(res: Response): void {
  sendError(res, new TwopcError('unauthorized', 'Missing or wrong `Authorization: Bearer <token>` header.'));
}

/**
 * JSON only: a POST whose body is not JSON is refused before it reaches a route.
 * A plain JSON body (nearly every request) is read by ./body.ts; the rest goes
 * through the content-type check and body-parser, as it always did.
 */
function requireJson(limitBytes: number): RequestHandler {
  const json = express.json({ limit: limitBytes, strict: false, type: ['application/json', 'application/*+json'] });
  const generic: RequestHandler = (req, res, next) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (hasBody && !req.is(['application/json', 'application/*+json'])) {
      return sendError(res, new TwopcError('bad_request', 'Expected `Content-Type: application/json`.'));
    }
    json(req, res, next);
  };
  return plainJsonFirst(limitBytes, generic);
}

/**
 * The per-request front, as one middleware instead of three: each was a router layer of its
 * own on every request (matched, wrapped, called through `next`). The order is the contract's:
 * counted first, then the token (a 401 before any body is read), then the body.
 */
function front(options: BaseAppOptions): RequestHandler {
  const count = countRequests(options.metrics);
  const allows = options.token ? tokenCheck(options.token, options.publicPaths) : () => true;
  const body = requireJson(options.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT);
  return (req, res, next) => {
    count(res);
    if (!allows(req)) return refuseToken(res);
    body(req, res, next);
  };
}

/**
 * Counts every request by route template (`/v1/transactions/:txId`, never the path, so the
 * series stay few), method and status when its response is sent: `twopc_http_requests_total`.
 */
function countRequests(metrics: Metrics): (res: Response) => void {
  const counted = requestCounter(metrics);
  return (res) => void res.once('finish', counted);
}

export function createBaseApp(options: BaseAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(front(options));
  openFastLane(app, {
    metrics: options.metrics,
    bodyLimitBytes: options.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT,
    ...(options.token !== undefined && { allows: tokenAllows(options.token, options.publicPaths) }),
    ...(options.logger !== undefined && { logger: options.logger }),
  });

  mountRoute(app, healthzRoute, (_input, _req, res) => {
    res.json({ ok: true, role: options.role, name: options.name, pid: process.pid, recovering: options.isRecovering() });
  });
  mountRoute(app, metricsRoute, async (_input, _req, res) => {
    res.type(options.metrics.contentType).send(await options.metrics.render());
  });
  let document: unknown;
  mountRoute(app, openApiRoute, (_input, _req, res) => {
    // Built on first use, when every route of the service is known; the routes do not change after start.
    document ??= openApiDocument(apiInfo(options.role), [...BASE_ROUTES, ...(options.routes?.() ?? [])]);
    res.json(document);
  });

  const chaos = options.chaos === true ? options.crashPoints : undefined;
  mountRoute(app, chaosPointsRoute, (_input, _req, res) => {
    if (!chaos) return sendError(res, new TwopcError('not_chaos', 'Chaos endpoints need --chaos.'));
    res.json({
      points: Object.entries(CRASH_POINTS)
        .filter(([name]) => name.startsWith(`${options.role}.`))
        .map(([name, when]) => ({ name, when })),
      armed: chaos.armed ?? null,
    });
  });
  mountRoute(app, crashAtRoute, ({ body: { point } }, _req, res) => {
    if (!chaos) return sendError(res, new TwopcError('not_chaos', 'Chaos endpoints need --chaos.'));
    if (!point.startsWith(`${options.role}.`)) {
      throw new TwopcError('bad_request', `Crash point "${point}" is not a ${options.role} point.`);
    }
    res.json({ armed: chaos.arm(point) });
  });
  return app;
}

/** Adds the 404 and error handlers; call after the routes. */
export function finishApp(app: Express, logger?: Logger): void {
  app.use((req, res) => {
    sendError(res, new TwopcError('not_found', `No route for ${req.method} ${req.path}.`));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const known = toTwopcError(err);
    if (known !== undefined) return sendError(res, known);
    logger?.error({ err, method: req.method, path: req.path }, 'unhandled error');
    sendError(res, internalError());
  });
}

export interface Listening {
  readonly server: Server;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface ListenOptions {
  /** Connection bounds; each one missing takes its SERVER_LIMITS_DEFAULT. */
  readonly limits?: Partial<ServerLimits>;
  /** Counts connections dropped at the cap (`http_connections_dropped_total`). */
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /** Serve the app's hot routes past express when a request is the plain case (./fast-lane.ts); default true. */
  readonly fastLane?: boolean;
}

/** The limits `listen` applies: the defaults, overridden by the options given. */
export function resolveServerLimits(limits: Partial<ServerLimits> = {}): ServerLimits {
  const defined = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
  const l = { ...SERVER_LIMITS_DEFAULT, ...defined };
  for (const [name, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`Expected \`${name}\` to be a positive integer, got ${String(v)}.`);
  }
  // Node refuses a headers bound longer than the request bound; a shorter request bound lowers both.
  return { ...l, headersTimeoutMs: Math.min(l.headersTimeoutMs, l.requestTimeoutMs) };
}

/**
 * Listens on `port` (0 picks a free one) and resolves once bound, with every
 * connection bound of ./limits.ts in force: slow or idle clients are cut off
 * with a 408, and connections past the cap are closed as they arrive.
 */
export function listen(app: Express, port: number, host = '127.0.0.1', options: ListenOptions = {}): Promise<Listening> {
  const limits = resolveServerLimits(options.limits);
  const drain = new Drain();
  const lane = options.fastLane === false ? undefined : fastLaneOf(app);
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
    },
    (req, res) => {
      if (drain.draining) return refuseWhileDraining(res);
      drain.track(res);
      if (lane?.take(req, res) === true) return;
      app(req, res);
    },
  );
  server.maxConnections = limits.connectionsMax;
  watchDrops(server, limits.connectionsMax, options);
  answerClientErrors(server, limits);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address() as AddressInfo;
      const shownHost = host.includes(':') ? `[${host}]` : host;
      resolve({
        server,
        port: addr.port,
        url: `http://${shownHost}:${addr.port}`,
        close: () => drain.close(server, limits.drainMsMax, options.logger),
      });
    });
  });
}

/**
 * A graceful close: stop listening, let the requests in flight finish (up to
 * `drainMsMax`), then cut every connection left. A request that arrives on an
 * open keep-alive connection meanwhile gets a 503, and idle connections are
 * closed at once, so nothing new starts while the service shuts down.
 */
class Drain {
  private readonly inFlight = new Set<ServerResponse>();
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  get draining(): boolean {
    return this.closing !== undefined;
  }

  track(res: ServerResponse): void {
    this.inFlight.add(res);
    res.once('close', () => {
      this.inFlight.delete(res);
      if (this.inFlight.size === 0) this.idle?.();
    });
  }

  close(server: Server, drainMsMax: number, logger: Logger | undefined): Promise<void> {
    this.closing ??= this.run(server, drainMsMax, logger);
    return this.closing;
  }

  private async run(server: Server, drainMsMax: number, logger: Logger | undefined): Promise<void> {
    const closed = new Promise<void>((done) => server.close(() => done()));
    // Keep-alive peers reuse sockets; closing must not wait for them to idle out.
    server.closeIdleConnections();
    if (this.inFlight.size > 0) {
      logger?.info({ step: 'http.draining', inFlight: this.inFlight.size, drainMsMax }, `waiting for ${this.inFlight.size} request(s) in flight`);
      const idle = new Promise<void>((resolve) => (this.idle = resolve));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMsMax)));
      await Promise.race([idle, bound]);
      clearTimeout(timer);
      if (this.inFlight.size > 0) {
        logger?.warn({ step: 'http.drain-cut', inFlight: this.inFlight.size, drainMsMax }, `cut ${this.inFlight.size} request(s) still in flight after ${drainMsMax} ms`);
      }
    }
    server.closeAllConnections();
    await closed;
  }
}

function refuseWhileDraining(res: ServerResponse): void {
  const body = JSON.stringify(new TwopcError('unavailable', 'The server is shutting down; retry after it restarts.').toBody());
  res.shouldKeepAlive = false;
  res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'retry-after': String(RETRY_AFTER_S), connection: 'close' });
  res.end(body);
}

/** The contract's error for what Node's HTTP parser refused before any route saw the request; undefined: just close. */
function clientErrorOf(code: string | undefined, limits: ServerLimits): TwopcError | undefined {
  switch (code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new TwopcError(
        'request_timeout',
        `The request did not arrive in time (headers within ${limits.headersTimeoutMs} ms, all of it within ${limits.requestTimeoutMs} ms); closing the connection.`,
      );
    case 'HPE_HEADER_OVERFLOW':
      return new TwopcError('headers_too_large', 'The request headers are larger than the limit (16 KiB); closing the connection.');
    default:
      return new TwopcError('bad_request', `Malformed HTTP request (${code ?? 'unknown error'}); closing the connection.`);
  }
}

/**
 * Answers a request Node's parser gave up on (a slow client, huge headers,
 * broken HTTP) with the contract's JSON error instead of Node's empty one,
 * then closes the connection. Nothing is written once a response has started.
 */
function answerClientErrors(server: Server, limits: ServerLimits): void {
  const responding = new WeakMap<Duplex, ServerResponse>();
  server.on('request', (req: { socket: Socket }, res: ServerResponse) => {
    responding.set(req.socket, res);
    res.once('close', () => {
      if (responding.get(req.socket) === res) responding.delete(req.socket);
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const error = clientErrorOf(err.code, limits);
    if (error === undefined || !socket.writable || responding.get(socket)?.headersSent === true) {
      socket.destroy();
      return;
    }
    const body = JSON.stringify(error.toBody());
    // As Node does: one small write, then destroy, so a client that keeps sending cannot keep the socket.
    socket.write(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    socket.destroy();
  });
}

/** Counts connections refused at the cap, and says so in the log at most once per DROP_WARNING_INTERVAL_MS. */
function watchDrops(server: Server, connectionsMax: number, options: ListenOptions): void {
  let droppedSinceWarning = 0;
  let lastWarningAt = -Infinity;
  server.on('drop', () => {
    options.metrics?.inc('http_connections_dropped_total', `Connections closed on arrival because ${connectionsMax} were open (--connections-max).`);
    droppedSinceWarning += 1;
    const now = Date.now();
    if (now - lastWarningAt < DROP_WARNING_INTERVAL_MS) return;
    options.logger?.warn(
      { step: 'http.connections-dropped', dropped: droppedSinceWarning, connectionsMax },
      `closed ${droppedSinceWarning} new connection(s): ${connectionsMax} connections are open (--connections-max)`,
    );
    droppedSinceWarning = 0;
    lastWarningAt = now;
  });
}
