/**
 * Wire messages to core events: one mapping, shared by the HTTP routes and the
 * simulator, so both feed the core exactly the same event for the same message.
 */
import { trimUrl, type PrepareRequest } from '../../shared/types.ts';
import type { PrepareEvent, RequestId } from './types.ts';

/** `opsDigest` is computed by the caller (shared/digest.ts), since the core may not hash. */
export function prepareEvent(body: PrepareRequest, requestId: RequestId, now: number, opsDigest?: string): PrepareEvent {
  return {
    type: 'prepare',
    requestId,
    now,
    txId: body.txId,
    coordinator: trimUrl(body.coordinator),
    participants: body.participants.map(trimUrl),
    ops: body.ops ?? [],
    onePhase: body.onePhase === true,
    abortForced: body.protocol === 'presumed-commit',
    ...(opsDigest !== undefined && { opsDigest }),
  };
}
