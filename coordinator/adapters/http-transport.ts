/**
 * Delivers the core's `send` effects over HTTP and turns each answer (or the
 * lack of one) into the transport event the core expects. It never throws:
 * every call ends as exactly one event.
 *
 * Prepares are sent once: a lost prepare is the core's business (it aborts, or
 * for one-phase asks again). Commit and abort are idempotent, so a short p-retry
 * covers a blip before the core's own slower backoff takes over.
 */
import { TransportError, type HttpClient } from '../../shared/http/client.ts';
import type { Outcome, ParticipantTxState, Vote } from '../../shared/types.ts';
import type { SendEffect, SendFailure, TransportEvent } from '../core/index.ts';

/** A transport event before the runtime stamps it with the time. */
export type TransportAnswer = TransportEvent extends infer E ? (E extends { now: number } ? Omit<E, 'now'> : never) : never;

export interface Transport {
  deliver(effect: SendEffect): Promise<TransportAnswer>;
}

export interface HttpTransportOptions {
  readonly http: HttpClient;
  /** Per-call bound for prepares that do not name their own. */
  readonly prepareTimeoutMs: number;
  /** Per-call bound for commit and abort. */
  readonly decisionTimeoutMs?: number;
  /** Quick retries of commit/abort inside one delivery, before the core's backoff. */
  readonly decisionRetries?: number;
}

const VOTES: readonly string[] = ['yes', 'no', 'read-only'] satisfies Vote[];
const STATES: readonly string[] = ['prepared', 'committed', 'aborted', 'unknown'] satisfies ParticipantTxState[];
/** Error messages from a participant are quoted into logs and client replies; keep them short. */
const MESSAGE_CHARS_MAX = 300;

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

export function createHttpTransport(options: HttpTransportOptions): Transport {
  const { http } = options;
  const decisionTimeoutMs = options.decisionTimeoutMs ?? 5_000;
  const decisionRetries = options.decisionRetries ?? 2;

  async function prepare(e: SendEffect): Promise<TransportAnswer> {
    const base = { txId: e.message.body.txId, participant: e.to };
    try {
      const res = await http.post<unknown>(`${e.url}/v1/2pc/prepare`, e.message.body, { timeoutMs: e.timeoutMs ?? options.prepareTimeoutMs });
      if (res.status !== 200) return { type: 'prepareFailed', ...base, error: httpFailure(res.status), message: errorMessage(res.status, res.data) };
      const data = res.data as { vote?: unknown; reason?: unknown; state?: unknown } | undefined;
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
    } catch (error) {
      return { type: 'prepareFailed', ...base, ...failureOf(error) };
    }
  }

  async function decision(e: SendEffect, decided: Outcome): Promise<TransportAnswer> {
    const base = { txId: e.message.body.txId, participant: e.to };
    const path = decided === 'committed' ? 'commit' : 'abort';
    try {
      const res = await http.post<unknown>(`${e.url}/v1/2pc/${path}`, e.message.body, { timeoutMs: decisionTimeoutMs, retries: decisionRetries });
      const data = res.data as { state?: unknown; heuristic?: unknown } | undefined;
      if (res.status === 409) {
        // The participant holds the other outcome (settled by hand, or worse): report it, never retry it away.
        return { type: 'decisionAcked', ...base, heuristic: decided === 'committed' ? 'aborted' : 'committed' };
      }
      if (res.status !== 200) return { type: 'decisionFailed', ...base, error: httpFailure(res.status), message: errorMessage(res.status, res.data) };
      const heuristic = data?.heuristic === 'committed' || data?.heuristic === 'aborted' ? data.heuristic : undefined;
      const state = data?.state;
      const contrary = (state === 'committed' || state === 'aborted') && state !== decided ? state : undefined;
      const reported = heuristic ?? contrary;
      return { type: 'decisionAcked', ...base, ...(reported ? { heuristic: reported } : {}) };
    } catch (error) {
      return { type: 'decisionFailed', ...base, ...failureOf(error) };
    }
  }

  return {
    deliver(e) {
      switch (e.message.type) {
        case 'prepare':
          return prepare(e);
        case 'commit':
          return decision(e, 'committed');
        case 'abort':
          return decision(e, 'aborted');
      }
    },
  };
}
