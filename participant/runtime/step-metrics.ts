/**
 * Turns the participant core's logged steps into metrics: how long each
 * branch stayed in doubt (prepared, holding its locks) before its outcome
 * arrived. (Outcome inquiries are counted as their requests leave, in
 * ./inquiries.ts: a core's `inquire` step may ask about nothing.)
 *
 * The prepare times live in a map bounded by BLOCKED_TIMED_TXS_MAX: past it,
 * new branches go untimed rather than grow memory.
 */
import type { Metrics } from '../../shared/metrics.ts';

/** Branches timed at once; the core bounds the prepared branches it keeps far lower. */
export const BLOCKED_TIMED_TXS_MAX = 10_000;

type Observe = (step: string, txId: string | undefined, fields: Readonly<Record<string, unknown>> | undefined, now: number) => void;

export function participantStepMetrics(metrics: Metrics): Observe {
  const blocked = metrics.child(metrics.blockedSeconds);
  const preparedAt = new Map<string, number>();
  const settled = (txId: string, now: number): void => {
    const at = preparedAt.get(txId);
    if (at === undefined) return;
    preparedAt.delete(txId);
    blocked.observe(Math.max(0, now - at) / 1000);
  };

  return (step, txId, fields, now) => {
    if (txId === undefined) return;
    switch (step) {
      case 'vote-yes':
        if (preparedAt.size < BLOCKED_TIMED_TXS_MAX) preparedAt.set(txId, now);
        return;
      case 'in-doubt': // found prepared by recovery: it has blocked since it was prepared, before the restart
        if (typeof fields?.preparedAt === 'number' && preparedAt.size < BLOCKED_TIMED_TXS_MAX) preparedAt.set(txId, fields.preparedAt);
        return;
      case 'committed':
      case 'aborted':
      case 'heuristic':
        return settled(txId, now);
      default:
        return;
    }
  };
}
