/**
 * The express skeleton both services share: JSON parsing with a size limit,
 * bearer-token auth, /healthz, /metrics, the chaos routes, and one error
 * handler that turns every failure into `{"error":{"code","message"}}`.
 *
 * Bad input never gets past here as a 5xx: malformed JSON is a 400, an
 * over-size body a 413, a wrong content type a 415, an unknown route a 404.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { CRASH_POINTS } from '../crash-points.ts';
import type { CrashPoints } from '../crash.ts';
import { TwopcError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { crashAtSchema, parse } from '../schemas.ts';

export interface BaseAppOptions {
  readonly role: 'coordinator' | 'participant';
  readonly name: string;
  readonly token?: string;
  readonly chaos?: boolean;
  /** Largest accepted request body. */
  readonly bodyLimitBytes?: number;
  readonly isRecovering: () => boolean;
  readonly metrics: Metrics;
  readonly crashPoints?: CrashPoints;
  readonly logger?: Logger;
}

export const BODY_LIMIT_BYTES_DEFAULT = 256 * 1024;

/** Wraps an async handler so a rejection reaches the error handler instead of crashing. */
export function asyncRoute(fn: (req: Request, res: Response) => Promise<void> | void): RequestHandler {
  return (req, res, next) => {
    Promise.resolve()
      .then(() => fn(req, res))
      .catch(next);
  };
}

export function sendError(res: Response, error: TwopcError): void {
  res.status(error.status).json(error.toBody());
}

/** Bearer-token check, constant time. */
export function requireToken(token: string): RequestHandler {
  const expected = Buffer.from(`Bearer ${token}`);
  return (req, res, next) => {
    if (req.path === '/healthz') return next();
    const got = Buffer.from(req.get('authorization') ?? '');
    if (got.length === expected.length && timingSafeEqual(got, expected)) return next();
    sendError(res, new TwopcError('unauthorized', 'Missing or wrong `Authorization: Bearer <token>` header.'));
  };
}

/** JSON only: a POST whose body is not JSON is refused before it reaches a route. */
function requireJson(limitBytes: number): RequestHandler[] {
  const json = express.json({ limit: limitBytes, strict: false, type: ['application/json', 'application/*+json'] });
  return [
    (req, res, next) => {
      const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
      if (hasBody && !req.is(['application/json', 'application/*+json'])) {
        return sendError(res, new TwopcError('bad_request', 'Expected `Content-Type: application/json`.'));
      }
      next();
    },
    json,
  ];
}

export function createBaseApp(options: BaseAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  if (options.token) app.use(requireToken(options.token));
  app.use(requireJson(options.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT));

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, role: options.role, name: options.name, pid: process.pid, recovering: options.isRecovering() });
  });
  app.get('/metrics', (_req, res) => {
    res.type('text/plain; version=0.0.4').send(options.metrics.render());
  });

  const chaos = options.chaos === true ? options.crashPoints : undefined;
  app.get('/v1/chaos/points', (_req, res) => {
    if (!chaos) return sendError(res, new TwopcError('not_chaos', 'Chaos endpoints need --chaos.'));
    res.json({
      points: Object.entries(CRASH_POINTS)
        .filter(([name]) => name.startsWith(`${options.role}.`))
        .map(([name, when]) => ({ name, when })),
      armed: chaos.armed ?? null,
    });
  });
  app.post('/v1/chaos/crash-at', (req, res) => {
    if (!chaos) return sendError(res, new TwopcError('not_chaos', 'Chaos endpoints need --chaos.'));
    const { point } = parse(crashAtSchema, req.body);
    if (!point.startsWith(`${options.role}.`)) {
      throw new TwopcError('bad_request', `Crash point "${point}" is not a ${options.role} point.`);
    }
    res.json({ armed: chaos.arm(point) });
  });
  return app;
}

interface BodyParserError {
  type?: string;
  status?: number;
  message?: string;
}

/** The contract's error for a TwopcError or a body-parser failure (a 4xx); undefined for anything else (a 500). */
export function toTwopcError(err: unknown): TwopcError | undefined {
  if (err instanceof TwopcError) return err;
  const e = err as BodyParserError;
  if (e.type === 'entity.too.large') return new TwopcError('payload_too_large', `Request body is larger than the limit (${e.message ?? ''}).`);
  if (e.type === 'entity.parse.failed') return new TwopcError('bad_request', `Malformed JSON: ${e.message ?? 'cannot parse the body'}.`);
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) return new TwopcError('bad_request', e.message ?? 'Bad request.');
  return undefined;
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
    sendError(res, new TwopcError('internal', 'Internal error; see the server log.'));
  });
}

export interface Listening {
  readonly server: Server;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on `port` (0 picks a free one) and resolves once bound. */
export function listen(app: Express, port: number, host = '127.0.0.1'): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      // Keep-alive peers reuse sockets; closing must not wait for them to idle out.
      server.keepAliveTimeout = 5_000;
      const addr = server.address() as AddressInfo;
      const shownHost = host.includes(':') ? `[${host}]` : host;
      resolve({
        server,
        port: addr.port,
        url: `http://${shownHost}:${addr.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
