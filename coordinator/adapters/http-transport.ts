/**
 * Delivers the core's `send` effects over HTTP and turns each answer (or the
 * lack of one) into the transport event the core expects. It never throws:
 * every call ends as exactly one event. What an answer means is decided in
 * ./answers.ts (pure, shared with the simulator); this file does the calls.
 *
 * Prepares are sent once: a lost prepare is the core's business (it aborts, or
 * for one-phase asks again). Commit and abort are idempotent, so a short p-retry
 * covers a blip before the core's own slower backoff takes over.
 */
import type { HttpClient } from '../../shared/http/client.ts';
import type { SendEffect } from '../core/index.ts';
import { answerOf, failureOf, type TransportAnswer } from './answers.ts';

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

  async function prepare(e: SendEffect): Promise<TransportAnswer> {
    try {
      const res = await http.post<unknown>(`${e.url}/v1/2pc/prepare`, e.message.body, { timeoutMs: e.timeoutMs ?? options.prepareTimeoutMs });
      return answerOf(e, res.status, res.data);
    } catch (error) {
      return failureOf(e, error);
    }
  }

  async function decision(e: SendEffect, path: 'commit' | 'abort'): Promise<TransportAnswer> {
    try {
      const res = await http.post<unknown>(`${e.url}/v1/2pc/${path}`, e.message.body, { timeoutMs: decisionTimeoutMs, retries: decisionRetries });
      return answerOf(e, res.status, res.data);
    } catch (error) {
      return failureOf(e, error);
    }
  }

  return {
    deliver(e) {
      switch (e.message.type) {
        case 'prepare':
          return prepare(e);
        case 'commit':
          return decision(e, 'commit');
        case 'abort':
          return decision(e, 'abort');
      }
    },
  };
}
