/**
 * How the services write their answers and errors, on express's responses and
 * on node's own (the fast lane, ./fast-lane.ts): one writer, so a request
 * gets the same bytes whichever way it was served.
 */
import type { ServerResponse } from 'node:http';
import type { Response } from 'express';
import { TwopcError } from '../errors.ts';
import { RETRY_AFTER_S } from './limits.ts';

/**
 * Sends a JSON answer; a 503 also says when to retry, so a client backs off instead of hammering.
 * `res` is express's response on a route of an express app, or node's own on the fast lane
 * (./fast-lane.ts), which serves only POSTs: either way a POST's answer with a body is the same
 * bytes. Every answer of ours has a body; node's response refuses one without (a TypeError, a 500
 * by the lane's error handling) rather than guess at what express would have written.
 */
export function sendAnswer(res: ServerResponse, status: number, body: unknown): void {
  if (status === 503) res.setHeader('Retry-After', String(RETRY_AFTER_S));
  if (isExpressResponse(res)) {
    if (!writesPlainly(res, status, body)) return void res.status(status).json(body);
  } else if (body === undefined || status === 204 || status === 304) {
    throw new TypeError(`Expected an answer with a JSON body on the fast lane, got status ${status} and ${body === undefined ? 'no body' : 'a body'}.`);
  }
  writeJson(res, status, body);
}

/**
 * A POST's answer as express's res.json writes it (the same headers, in the same order), without
 * what only a GET or HEAD needs (freshness, a body-less HEAD) or what this app turned off (ETag),
 * nor parsing back the content type it just set: one of these per request.
 */
function writeJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(text)));
  res.end(text);
}

/** Whether `res` came through an express app (it then carries the app whose settings res.json follows). */
function isExpressResponse(res: ServerResponse): res is Response {
  return (res as Partial<Response>).app !== undefined;
}

/**
 * Whether res.json would write exactly the plain answer: a POST (no freshness check, a body
 * sent), a status with a body, no ETag to add and JSON as JSON.stringify writes it (so in the
 * base app; a host app mounting the participant's router may turn ETags or `json spaces` on,
 * and then express writes the answer).
 */
function writesPlainly(res: Response, status: number, body: unknown): boolean {
  if (res.req.method !== 'POST' || body === undefined || status === 204 || status === 304) return false;
  const app = res.app;
  return app.get('etag fn') === undefined && app.get('json spaces') === undefined && app.get('json replacer') === undefined && app.get('json escape') !== true;
}

export function sendError(res: ServerResponse, error: TwopcError): void {
  sendAnswer(res, error.status, error.toBody());
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

/** What an unexpected failure answers (the cause goes to the server's log, never to the client). */
export function internalError(): TwopcError {
  return new TwopcError('internal', 'Internal error; see the server log.');
}
