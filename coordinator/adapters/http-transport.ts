/**
 * Delivers the core's `send` effects over HTTP and turns each answer (or the
 * lack of one) into the transport event the core expects, through the pure
 * mapping of ./answers.ts. It never throws: every call ends as exactly one event.
 *
 * With batching (the default), messages to one participant share requests
 * (./batches.ts); without it, each message is its own request to its own route.
 * Either way each message is answered, timed out and retried on its own.
 *
 * Prepares are sent once: a lost prepare is the core's business (it aborts, or
 * for one-phase asks again). Commit and abort are idempotent, so a short p-retry
 * covers a blip before the core's own slower backoff takes over.
 */
import { withRetries, type HttpClient, type HttpResult } from '../../shared/http/client.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Metrics } from '../../shared/metrics.ts';
import type { SendEffect } from '../core/index.ts';
import { answerOf, failedAnswer, failureAnswer, type TransportAnswer } from './answers.ts';
import { BatchFailure, Batcher, NOT_LEAVING_MESSAGE, countSent, type BatchLimits } from './batches.ts';

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
  /** Messages to one participant share requests (default); false: one request per message. */
  readonly batching?: boolean;
  /** The batches' bounds (./batches.ts BATCH_DEFAULTS). */
  readonly batch?: Partial<BatchLimits>;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  /**
   * Whether a request may leave now, asked as each one goes out: a queued batch, a retry, a 404
   * fallback. An HA member's term can end between the handover and the send (coordinator/ha.ts);
   * a message that may not leave fails unsent, as `rejected`.
   */
  readonly mayLeave?: () => boolean;
}

export function createHttpTransport(options: HttpTransportOptions): Transport {
  const { http } = options;
  const decisionTimeoutMs = options.decisionTimeoutMs ?? 5_000;
  const decisionRetries = options.decisionRetries ?? 2;
  const batcher =
    options.batching === false
      ? undefined
      : new Batcher({
          http,
          ...options.batch,
          ...(options.metrics !== undefined && { metrics: options.metrics }),
          ...(options.logger !== undefined && { logger: options.logger }),
          ...(options.mayLeave !== undefined && { mayLeave: options.mayLeave }),
        });

  /** One attempt at one message: its own request, or its place in the next batch. */
  const attempt = (e: SendEffect, timeoutMs: number): Promise<HttpResult<unknown>> => {
    if (batcher !== undefined) return batcher.send(e.url, e.message, timeoutMs);
    if (options.mayLeave?.() === false) return Promise.reject(new BatchFailure('rejected', NOT_LEAVING_MESSAGE));
    countSent(options.metrics, 'single', 1);
    return http.post<unknown>(`${e.url}/v1/2pc/${e.message.type}`, e.message.body, { timeoutMs });
  };

  return {
    async deliver(e) {
      try {
        if (e.message.type === 'prepare') {
          const res = await attempt(e, e.timeoutMs ?? options.prepareTimeoutMs);
          return answerOf(e, res.status, res.data);
        }
        // Each commit or abort is retried on its own: another batch, or another request.
        const res = await withRetries(e.url, () => attempt(e, decisionTimeoutMs), {
          retries: decisionRetries,
          // A batch refused with a 4xx would be refused again; the core's own backoff takes it from there.
          isFinal: (error) => error instanceof BatchFailure && error.failure === 'rejected',
        });
        return answerOf(e, res.status, res.data);
      } catch (error) {
        if (error instanceof BatchFailure) return failedAnswer(e, error.failure, error.message);
        return failureAnswer(e, error);
      }
    },
  };
}
