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
 * Whether this request's body is one `readPlainJson` reads: a body announced
 * (a length or chunked), a plain JSON content type, no content encoding, and
 * not read yet (a host app's own parser may have run first).
 */
export function isPlainJsonBody(req: IncomingMessage): boolean {
  const headers = req.headers;
  if (headers['content-encoding'] !== undefined || req.readableEnded) return false;
  if (headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) return false;
  const type = headers['content-type'];
  return type !== undefined && PLAIN_JSON_TYPES.has(type.toLowerCase());
}

/**
 * Reads the whole body (at most `limitBytes`) and parses it as JSON; an empty
 * body is `{}`, as body-parser makes it. Rejects with a `BodyFailure` carrying
 * body-parser's own type and message, after the rest of the request is read
 * off, as body-parser does, so the connection stays usable for the answer.
 */
export function readPlainJson(req: IncomingMessage, limitBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    const chunks: Buffer[] = [];
    let received = 0;
    let failure: BodyFailure | undefined;
    const fail = (f: BodyFailure) => {
      failure = f;
      chunks.length = 0;
    };
    if (declared !== undefined && declared > limitBytes) fail(tooLarge());
    const onData = (chunk: Buffer) => {
      if (failure !== undefined) return;
      received += chunk.length;
      if (received > limitBytes) return fail(tooLarge());
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      if (failure !== undefined) return reject(failure);
      try {
        resolve(parseJson(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received)));
      } catch (error) {
        reject({ type: 'entity.parse.failed', status: 400, message: error instanceof Error ? error.message : String(error) } satisfies BodyFailure);
      }
    };
    // The client went away mid-body: nobody reads the answer, but the request must still settle.
    const onAborted = () => {
      cleanup();
      reject({ type: 'request.aborted', status: 400, message: 'request aborted' } satisfies BodyFailure);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAborted);
      req.off('close', onClose);
    };
    const onClose = () => {
      if (!req.readableEnded) onAborted();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAborted);
    req.on('close', onClose);
  });
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
 * A body middleware: a plain JSON body is read here; any other request goes to
 * `generic` (the checks and parser that answer every other case). A failure
 * goes to the error handler as body-parser's would, where `toTwopcError` maps it.
 */
export function plainJsonFirst(limitBytes: number, generic: RequestHandler): RequestHandler {
  return (req, res, next) => {
    if (!isPlainJsonBody(req)) return generic(req, res, next);
    readPlainJson(req, limitBytes).then((body) => {
      req.body = body;
      next();
    }, next);
  };
}
