/**
 * The request body of the hot routes, read once and parsed once, without
 * body-parser. A profile of the wire load put express.json (body-parser,
 * raw-body, type-is, content-type, iconv-lite, http-errors) at 4-6% of each
 * process's busy time, most of it generic work a plain JSON body does not need:
 * content-type parsing, charset lookup, a decoder stream, error objects.
 *
 * Only the common request takes this path: a body declared
 * `application/json` (optionally `; charset=utf-8`), not compressed. Anything
 * else (another charset, `+json` types, gzip, no body, a wrong content type)
 * goes on to the generic middlewares, which answer it exactly as before. The
 * answers this path gives itself (413 over the limit, 400 for bad JSON) are
 * made by the same mapping as body-parser's (`toTwopcError`), from the same
 * messages, so a client sees the same bytes either way.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';

/** The content types read here, lower case: exactly what JSON clients (axios, fetch with a JSON body) send. */
const PLAIN_JSON_TYPES: ReadonlySet<string> = new Set(['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-8']);

const BYTE_ORDER_MARK = 0xfeff;

/** body-parser's failures, as `toTwopcError` reads them (`type` and `message` are what it maps). */
export interface BodyFailure {
  readonly type: 'entity.too.large' | 'entity.parse.failed' | 'request.aborted';
  readonly status: number;
  readonly message: string;
}

/**
 * Whether this request's body is one `plainJsonFirst` (and the fast lane) reads: a body announced
 * (a length or chunked), a plain JSON content type, no content encoding. (A
 * body already read is passed on before this is asked.)
 */
export function isPlainJsonBody(req: IncomingMessage): boolean {
  const headers = req.headers;
  if (headers['content-encoding'] !== undefined) return false;
  if (headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) return false;
  const type = headers['content-type'];
  return type !== undefined && PLAIN_JSON_TYPES.has(type.toLowerCase());
}

/**
 * One body being read. A class rather than closures: under tsx every function
 * expression made per request is also named at run time (esbuild's keepNames),
 * which a profile showed costing as much as the reading itself.
 */
class BodyRead {
  private readonly chunks: Buffer[] = [];
  private received = 0;
  private failure: BodyFailure | undefined;
  private readonly onData = this.data.bind(this);
  private readonly onEnd = this.end.bind(this);
  private readonly onAbort = this.abort.bind(this);

  /** Ends with `done(undefined, value)`, or `done(failure)` with body-parser's own type and message. */
  constructor(
    private readonly req: IncomingMessage,
    private readonly limitBytes: number,
    private readonly done: (failure: BodyFailure | undefined, value?: unknown) => void,
  ) {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limitBytes) this.failure = tooLarge();
    req.on('data', this.onData);
    req.on('end', this.onEnd);
    req.on('error', this.onAbort);
    req.on('close', this.onAbort);
  }

  private data(chunk: Buffer): void {
    if (this.failure !== undefined) return;
    this.received += chunk.length;
    if (this.received <= this.limitBytes) return void this.chunks.push(chunk);
    this.failure = tooLarge();
    this.chunks.length = 0;
  }

  private end(): void {
    this.detach();
    if (this.failure !== undefined) return this.done(this.failure);
    let value: unknown;
    try {
      value = parseJson(this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.received));
    } catch (error) {
      return this.done({ type: 'entity.parse.failed', status: 400, message: error instanceof Error ? error.message : String(error) });
    }
    this.done(undefined, value);
  }

  /** The client went away mid-body ('close' before 'end', or an error): nobody reads the answer, but the request must still settle. */
  private abort(): void {
    if (this.req.readableEnded) return;
    this.detach();
    this.done({ type: 'request.aborted', status: 400, message: 'request aborted' });
  }

  private detach(): void {
    this.req.off('data', this.onData);
    this.req.off('end', this.onEnd);
    this.req.off('error', this.onAbort);
    this.req.off('close', this.onAbort);
  }
}

/** raw-body's error for a body over the limit, which `toTwopcError` turns into the contract's 413. */
function tooLarge(): BodyFailure {
  return { type: 'entity.too.large', status: 413, message: 'request entity too large' };
}

/** UTF-8 text to a value, as body-parser decodes it (a leading byte-order mark dropped) and parses it (strict off). */
function parseJson(bytes: Buffer): unknown {
  let text = bytes.toString('utf8');
  if (text.charCodeAt(0) === BYTE_ORDER_MARK) text = text.slice(1);
  return text.length === 0 ? {} : JSON.parse(text);
}

/**
 * A body middleware: a plain JSON body is read here, once, and parsed once, the
 * whole body at most `limitBytes` (an empty body is `{}`, as body-parser makes
 * it); any other request goes to `generic` (the checks and parser that answer
 * every other case). A failure goes to the error handler after the rest of the
 * request is read off, as body-parser's does, so the connection stays usable,
 * and `toTwopcError` maps it as it maps body-parser's.
 */
export function plainJsonFirst(limitBytes: number, generic: RequestHandler): RequestHandler {
  return (req, res, next) => {
    // Read already (the base app's front, a host app's parser): body-parser would pass it on too, after more work.
    if (req.readableEnded) return next();
    if (!isPlainJsonBody(req)) return generic(req, res, next);
    readPlainJson(req, limitBytes, (failure, value) => {
      if (failure !== undefined) return next(failure);
      req.body = value;
      next();
    });
  };
}

/**
 * Reads a body `isPlainJsonBody` accepts, at most `limitBytes`, and parses it: `done(undefined,
 * value)`, or `done(failure)` with body-parser's type and message once the rest of the body is
 * read off (or the client went away).
 */
export function readPlainJson(req: IncomingMessage, limitBytes: number, done: (failure: BodyFailure | undefined, value?: unknown) => void): void {
  new BodyRead(req, limitBytes, done);
}
