/**
 * Which of the participant's effects may run beside the driver's queue
 * (shared/driver.ts `lanesOf`), and what each must wait for.
 *
 * A live transaction's resource call is laned by its transaction and by the
 * keys the core locked for it: it waits for the same transaction's earlier
 * call and for the previous lock holder's call on any of those keys (the
 * holder released the keys in the step that asked for its apply, so the next
 * holder's prepare must not read before that apply has landed). A resource
 * that takes its own locks has no keys here: its calls wait only for their own
 * transaction's. A reply about a transaction waits for that transaction's call
 * in flight, so an ack never leaves before its apply. Everything else, and the
 * calls of recovery's replays (no keys), runs in queue order.
 */
import type { ParticipantEffect } from './types.ts';

const txLane = (txId: string): string => `tx:${txId}`;
const keyLane = (key: string): string => `key:${key}`;

export function effectLanes(e: ParticipantEffect): readonly string[] | undefined {
  switch (e.kind) {
    case 'resourcePrepare':
    case 'resourceCommit':
    case 'resourceAbort':
      return e.keys === undefined ? undefined : [txLane(e.txId), ...e.keys.map(keyLane)];
    case 'reply':
      return 'txId' in e ? [txLane(e.txId)] : undefined;
    default:
      return undefined;
  }
}
