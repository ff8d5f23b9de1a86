/**
 * The coordinator runtime: the coordinator core on the shared CoreHost
 * (shared/runtime.ts), which owns the state, the WAL writes, replies, timers,
 * crash points, logging, fail-stop and checkpoints. What is the coordinator's
 * own is here:
 *
 *   send       → the Transport (answers come back as events)
 *   requests   → outcome inquiries are answered even while recovering
 *
 * Record codes and the snapshot format are in ./records.ts.
 */
import { coordinatorStepMetrics } from './step-metrics.ts';
import { CoreHost, type Answer, type RuntimeHostOptions } from '../../shared/runtime.ts';
import type { Transport } from '../adapters/http-transport.ts';
import {
  initialState,
  snapshotOf,
  step,
  type ClientEvent,
  type CoordinatorConfig,
  type CoordinatorEvent,
  type CoordinatorRecord,
  type CoordinatorState,
  type SendEffect,
} from '../core/index.ts';
import { coordinatorCodec, decodeSnapshot, encodeSnapshot } from './records.ts';

export type { Answer } from '../../shared/runtime.ts';

export interface CoordinatorRuntimeOptions extends RuntimeHostOptions {
  readonly config: CoordinatorConfig;
  readonly transport: Transport;
}

/** A client request as the HTTP layer builds it; the runtime adds the request id and the time. */
export type ClientRequest = ClientEvent extends infer E ? (E extends { requestId: string; now: number } ? Omit<E, 'requestId' | 'now'> : never) : never;

/** Outcome inquiries, single or batched: answered even while recovering ("pending" until the WAL is read). */
export function isOutcomeInquiry(req: ClientRequest): req is Extract<ClientRequest, { type: 'getOutcome' | 'getOutcomes' }> {
  return req.type === 'getOutcome' || req.type === 'getOutcomes';
}

/** The answer to an outcome inquiry when nothing that could know the outcome is running yet. */
export function pendingAnswer(req: Extract<ClientRequest, { type: 'getOutcome' | 'getOutcomes' }>): Answer {
  if (req.type === 'getOutcome') return { status: 200, body: { outcome: 'pending' } };
  return { status: 200, body: { outcomes: Object.fromEntries(req.txIds.map((txId) => [txId, 'pending'])) } };
}

/** Steps an operator should notice. */
const WARN_STEPS = new Set(['decision.failed', 'heuristic.mixed', 'one-phase.in-doubt']);

export class CoordinatorRuntime {
  private readonly host: CoreHost<CoordinatorState, CoordinatorEvent, SendEffect, CoordinatorRecord>;

  constructor(o: CoordinatorRuntimeOptions) {
    this.host = new CoreHost<CoordinatorState, CoordinatorEvent, SendEffect, CoordinatorRecord>(o, {
      role: 'coordinator',
      initialState: initialState(o.config),
      step,
      codec: coordinatorCodec,
      recoverEvent: (now, entries, checkpoint) => {
        const snapshot = checkpoint === undefined ? undefined : decodeSnapshot(checkpoint);
        return { type: 'recover', now, entries, ...(snapshot !== undefined && { snapshot }) };
      },
      execute: (effect) => {
        // Not awaited: sends run in parallel, and each answer comes back as its own event.
        void o.transport.deliver(effect).then((answer) => this.host.dispatch({ ...answer, now: o.clock.now() } as CoordinatorEvent));
      },
      checkpointBytes: (state) => encodeSnapshot(snapshotOf(state)),
      warnSteps: WARN_STEPS,
      observeStep: coordinatorStepMetrics(o.metrics),
      afterStep: (state) => {
        o.metrics.set('coordinator_unfinished_transactions', 'Transactions not yet finished (active, voting, or awaiting acks).', state.txs.size);
      },
    });
  }

  /**
   * Rebuilds the state from the WAL (checkpoint first), forces BOOT, and
   * re-sends unfinished decisions. Until BOOT is durable, a new transaction id
   * could repeat one from before a crash, so no request is taken before.
   */
  start(): Promise<void> {
    return this.host.start();
  }

  get recovering(): boolean {
    return this.host.recovering;
  }

  /**
   * Feeds one client request to the core and resolves with its reply. Outcome
   * inquiries are answered even while recovering (the core says "pending"
   * until it knows); everything else is refused with a 503 until recovery,
   * after stopping, after a fatal error, or when too many requests wait.
   */
  request(req: ClientRequest): Promise<Answer> {
    return this.host.request((requestId, now) => ({ ...req, requestId, now }) as CoordinatorEvent, isOutcomeInquiry(req));
  }

  /** The core state, for tests and the dashboard. */
  get coreState(): CoordinatorState {
    return this.host.state;
  }

  /** Stops taking events, writes a last checkpoint if anything happened, and waits for queued effects. */
  stop(): Promise<void> {
    return this.host.stop();
  }
}
