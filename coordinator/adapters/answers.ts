/**
 * What a participant's answer means to the coordinator core: the pure half of
 * the transport. An HTTP answer (status and body) or a failed call becomes
 * exactly one transport event, without the time (the runtime stamps it).
 *
 * No I/O here, so the HTTP transport (./http-transport.ts) and the
 * deterministic simulator (test/sim/coordinator-node.ts) map through the same
 * code: what the simulator checks is what the service does with an answer.
 */
import { TransportError } from '../../shared/http/client.ts';
import type { Outcome, ParticipantTxState, Vote } from '../../shared/types.ts';
import type { SendEffect, SendFailure, TransportEvent } from '../core/index.ts';

/** A transport event before the runtime stamps it with the time. */
export type TransportAnswer = TransportEvent extends infer E ? (E extends { now: number } ? Omit<E, 'now'> : never) : never;

const VOTES: readonly string[] = ['yes', 'no', 'read-only'] satisfies Vote[];
const STATES: readonly string[] = ['prepared', 'committed', 'aborted', 'unknown'] satisfies ParticipantTxState[];
/** Error messages from a participant are quoted into logs and client replies; keep them short. */
const MESSAGE_CHARS_MAX = 300;

function errorMessage(status: number, data: unknown): string {
  const m = (data as { error?: { message?: unknown } } | undefined)?.error?.message;
  const text = typeof m === 'string' ? m : typeof data === 'string' ? data : '';
  return `HTTP ${status}${text ? `: ${text.slice(0, MESSAGE_CHARS_MAX)}` : ''}`;
}

const httpFailure = (status: number): SendFailure => (status >= 500 ? 'server-error' : 'rejected');

const baseOf = (e: SendEffect) => ({ txId: e.message.body.txId, participant: e.to });

function prepareAnswer(e: SendEffect, status: number, body: unknown): TransportAnswer {
  const base = baseOf(e);
  if (status !== 200) return { type: 'prepareFailed', ...base, error: httpFailure(status), message: errorMessage(status, body) };
  const data = body as { vote?: unknown; reason?: unknown; state?: unknown } | undefined;
  if (typeof data?.vote !== 'string' || !VOTES.includes(data.vote)) {
    // An answer we cannot read says nothing about what the participant did.
    return { type: 'prepareFailed', ...base, error: 'server-error', message: 'the participant answered without a valid vote' };
  }
  return {
    type: 'prepareResult',
    ...base,
    vote: data.vote as Vote,
    ...(typeof data.reason === 'string' ? { reason: data.reason.slice(0, MESSAGE_CHARS_MAX) } : {}),
    ...(typeof data.state === 'string' && STATES.includes(data.state) ? { state: data.state as ParticipantTxState } : {}),
  };
}

function decisionAnswer(e: SendEffect, decided: Outcome, status: number, body: unknown): TransportAnswer {
  const base = baseOf(e);
  if (status === 409) {
    // The participant holds the other outcome (settled by hand, or worse): report it, never retry it away.
    return { type: 'decisionAcked', ...base, heuristic: decided === 'committed' ? 'aborted' : 'committed' };
  }
  if (status !== 200) return { type: 'decisionFailed', ...base, error: httpFailure(status), message: errorMessage(status, body) };
  const data = body as { state?: unknown; heuristic?: unknown } | undefined;
  const heuristic = data?.heuristic === 'committed' || data?.heuristic === 'aborted' ? data.heuristic : undefined;
  const state = data?.state;
  const contrary = (state === 'committed' || state === 'aborted') && state !== decided ? state : undefined;
  const reported = heuristic ?? contrary;
  return { type: 'decisionAcked', ...base, ...(reported ? { heuristic: reported } : {}) };
}

/** The event for an HTTP answer to `e`: its status and its (parsed JSON) body. */
export function answerOf(e: SendEffect, status: number, body: unknown): TransportAnswer {
  switch (e.message.type) {
    case 'prepare':
      return prepareAnswer(e, status, body);
    case 'commit':
      return decisionAnswer(e, 'committed', status, body);
    case 'abort':
      return decisionAnswer(e, 'aborted', status, body);
  }
}

/** The event for a call to `e` that got no answer: a TransportError says how; anything else counts as a reset. */
export function failureOf(e: SendEffect, error: unknown): TransportAnswer {
  const failure =
    error instanceof TransportError
      ? { error: error.code, message: error.message }
      : { error: 'reset' as const, message: error instanceof Error ? error.message : String(error) };
  return { type: e.message.type === 'prepare' ? 'prepareFailed' : 'decisionFailed', ...baseOf(e), ...failure };
}
