/**
 * Turns the coordinator core's logged steps into metrics: transactions by
 * outcome, retries, and each transaction's phase latencies as histograms:
 *
 *   prepare   first prepare sent → the last vote in (the decision is taken then)
 *   decision  the last vote in → the decision durable (`decision.logged` runs after its persist)
 *   ack       the decision durable → every participant acked (`end.logged`)
 *
 * Times are the host's clock when it runs each step's log effect. The start
 * times live in maps bounded by PHASE_TIMED_TXS_MAX: past it, new
 * transactions go untimed rather than grow memory, and a transaction the
 * coordinator forgets (a restart) never leaves an entry behind for long,
 * since each map is cleared of it at its last phase.
 */
import type { Metrics } from '../../shared/metrics.ts';

/** Transactions timed at once (per phase map). The coordinator keeps far fewer unfinished. */
export const PHASE_TIMED_TXS_MAX = 10_000;

type Observe = (step: string, txId: string | undefined, fields: Readonly<Record<string, unknown>> | undefined, now: number) => void;

export function coordinatorStepMetrics(metrics: Metrics): Observe {
  const phase = {
    prepare: metrics.child(metrics.phaseSeconds, 'prepare'),
    decision: metrics.child(metrics.phaseSeconds, 'decision'),
    ack: metrics.child(metrics.phaseSeconds, 'ack'),
  };
  const outcomes = new Map([
    ['committed', metrics.child(metrics.transactions, 'committed')],
    ['aborted', metrics.child(metrics.transactions, 'aborted')],
  ]);
  const retries = { prepare: metrics.child(metrics.retries, 'prepare'), decision: metrics.child(metrics.retries, 'decision') };
  const prepareSentAt = new Map<string, number>();
  const lastVoteAt = new Map<string, number>();
  const durableAt = new Map<string, number>();

  const start = (times: Map<string, number>, txId: string, now: number): void => {
    if (times.size < PHASE_TIMED_TXS_MAX) times.set(txId, now);
  };
  /** Observes the phase that started at `times[txId]`, and forgets it. */
  const finish = (times: Map<string, number>, txId: string, now: number, into: { observe(v: number): void } | undefined): void => {
    const at = times.get(txId);
    if (at === undefined) return;
    times.delete(txId);
    into?.observe((now - at) / 1000);
  };
  /** The decision is taken: the prepare phase ends at the last vote. */
  const decided = (txId: string, outcome: unknown, now: number): void => {
    outcomes.get(String(outcome))?.inc();
    const votedAt = lastVoteAt.get(txId) ?? now;
    lastVoteAt.delete(txId);
    const sentAt = prepareSentAt.get(txId);
    prepareSentAt.delete(txId);
    if (sentAt !== undefined) phase.prepare.observe((votedAt - sentAt) / 1000);
  };

  return (step, txId, fields, now) => {
    if (txId === undefined) return;
    switch (step) {
      case 'prepare.sent':
        if (!prepareSentAt.has(txId)) start(prepareSentAt, txId, now);
        return;
      case 'prepare.resent':
        return retries.prepare.inc();
      case 'vote':
        if (prepareSentAt.has(txId)) lastVoteAt.set(txId, now);
        return;
      case 'decision': // decided with nobody to tell (no branches, all read-only or no, or nothing prepared)
      case 'one-phase.outcome':
        return decided(txId, fields?.outcome, now);
      case 'decision.logged': {
        const votedAt = lastVoteAt.get(txId);
        decided(txId, fields?.outcome, now);
        if (votedAt !== undefined) phase.decision.observe((now - votedAt) / 1000);
        return start(durableAt, txId, now);
      }
      case 'decision.sent':
        if (fields?.attempt !== undefined) retries.decision.inc();
        return;
      case 'end.logged':
        return finish(durableAt, txId, now, phase.ack);
      default:
        return;
    }
  };
}
