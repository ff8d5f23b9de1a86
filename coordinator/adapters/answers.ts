/**
 * From what a participant answered (or the lack of an answer) to the transport
 * event the coordinator core expects. Pure: no I/O, so the real transport (one
 * request per message, or a batch), and the simulator map answers the same way.
 */
import { TransportError } from '../../shared/http/client.ts';
import type { Outcome, ParticipantTxState, Vote } from '../../shared/types.ts';
import type { SendEffect, SendFailure, TransportEvent } from '../core/index.ts';

/** A transport event before the runtime stamps it with the time. */
export type TransportAnswer = TransportEvent extends infer E ? (E extends { now: number } ? Omit<E, 'now'> : never) : never;

const VOTES: readonly string[] = ['yes', 'no', 'read-only'] satisfies Vote[];
const STATES: readonly string[] = ['prepared', 'committed', 'aborted', 'unknown'] satisfies ParticipantTxState[];
/** Error messages from a participant are quoted into logs and client replies; keep them short. */
export const MESSAGE_CHARS_MAX = 300;

function errorMessage(status: number, data: unknown): string {
  const m = (data as { error?: { message?: unknown } } | undefined)?.error?.message;
  const text = typeof m === 'string' ? m : typeof data === 'string' ? data : '';
  return `HTTP ${status}${text ? `: ${text.slice(0, MESSAGE_CHARS_MAX)}` : ''}`;
}

function failureOf(error: unknown): { error: SendFailure; message: string } {
  if (error instanceof TransportError) return { error: error.code, message: error.message };
  return { error: 'reset', message: error instanceof Error ? error.message : String(error) };
}

const httpFailure = (status: number): SendFailure => (status >= 500 ? 'server-error' : 'rejected');

/** What a 4xx/5xx answer says, as a failure: a 4xx was not acted on, a 5xx may have been. */
export function refusalOf(status: number, data: unknown): { error: SendFailure; message: string } {
  return { error: httpFailure(status), message: errorMessage(status, data) };
}

/** The decision a commit or abort message carries. */
const decidedOf = (e: SendEffect): Outcome => (e.message.type === 'commit' ? 'committed' : 'aborted');

/** A participant's answer to a prepare, as the core's event. */
export function prepareAnswer(e: SendEffect, status: number, data: unknown): TransportAnswer {
  const base = { txId: e.message.body.txId, participant: e.to };
  if (status !== 200) return { type: 'prepareFailed', ...base, error: httpFailure(status), message: errorMessage(status, data) };
  const body = data as { vote?: unknown; reason?: unknown; state?: unknown } | undefined;
  if (typeof body?.vote !== 'string' || !VOTES.includes(body.vote)) {
    // An answer we cannot read says nothing about what the participant did.
    return { type: 'prepareFailed', ...base, error: 'server-error', message: 'the participant answered without a valid vote' };
  }
  return {
    type: 'prepareResult',
    ...base,
    vote: body.vote as Vote,
    ...(typeof body.reason === 'string' ? { reason: body.reason.slice(0, MESSAGE_CHARS_MAX) } : {}),
    ...(typeof body.state === 'string' && STATES.includes(body.state) ? { state: body.state as ParticipantTxState } : {}),
  };
}

/** A participant's answer to a commit or abort, as the core's event. */
export function decisionAnswer(e: SendEffect, status: number, data: unknown): TransportAnswer {
  const base = { txId: e.message.body.txId, participant: e.to };
  const decided = decidedOf(e);
  if (status === 409) {
    // The participant holds the other outcome (settled by hand, or worse): report it, never retry it away.
    return { type: 'decisionAcked', ...base, heuristic: decided === 'committed' ? 'aborted' : 'committed' };
  }
  if (status !== 200) return { type: 'decisionFailed', ...base, error: httpFailure(status), message: errorMessage(status, data) };
  const body = data as { state?: unknown; heuristic?: unknown } | undefined;
  const heuristic = body?.heuristic === 'committed' || body?.heuristic === 'aborted' ? body.heuristic : undefined;
  const state = body?.state;
  const contrary = (state === 'committed' || state === 'aborted') && state !== decided ? state : undefined;
  const reported = heuristic ?? contrary;
  return { type: 'decisionAcked', ...base, ...(reported ? { heuristic: reported } : {}) };
}

/** Any HTTP answer (status and JSON body) to the message `e` carried, as the core's event. */
export function answerOf(e: SendEffect, status: number, data: unknown): TransportAnswer {
  return e.message.type === 'prepare' ? prepareAnswer(e, status, data) : decisionAnswer(e, status, data);
}

/** No usable answer to the message `e` carried, for the reason given. */
export function failedAnswer(e: SendEffect, error: SendFailure, message: string): TransportAnswer {
  const base = { txId: e.message.body.txId, participant: e.to, error, message };
  return e.message.type === 'prepare' ? { type: 'prepareFailed', ...base } : { type: 'decisionFailed', ...base };
}

/** No answer at all (a TransportError, or anything thrown on the way), as the core's event. */
export function failureAnswer(e: SendEffect, error: unknown): TransportAnswer {
  const { error: code, message } = failureOf(error);
  return failedAnswer(e, code, message);
}
