/**
 * Delivers the core's `send` effects over HTTP and turns each answer (or the
 * lack of one) into the transport event the core expects, through the pure
 * mapping of ./answers.ts. It never throws: every call ends as exactly one event.
 *
 * Prepares are sent once: a lost prepare is the core's business (it aborts, or
 * for one-phase asks again). Commit and abort are idempotent, so a short p-retry
 * covers a blip before the core's own slower backoff takes over.
 */
import type { HttpClient } from '../../shared/http/client.ts';
import type { SendEffect } from '../core/index.ts';
import { answerOf, failureAnswer, type TransportAnswer } from './answers.ts';

export type { TransportAnswer } from './answers.ts';

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

export function createHttpTransport(options: HttpTransportOptions): Transport {
  const { http } = options;
  const decisionTimeoutMs = options.decisionTimeoutMs ?? 5_000;
  const decisionRetries = options.decisionRetries ?? 2;

  return {
    async deliver(e) {
      const prepare = e.message.type === 'prepare';
      const callOptions = prepare ? { timeoutMs: e.timeoutMs ?? options.prepareTimeoutMs } : { timeoutMs: decisionTimeoutMs, retries: decisionRetries };
      try {
        const res = await http.post<unknown>(`${e.url}/v1/2pc/${e.message.type}`, e.message.body, callOptions);
        return answerOf(e, res.status, res.data);
      } catch (error) {
        return failureAnswer(e, error);
      }
    },
  };
}
