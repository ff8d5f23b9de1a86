/**
 * What the two inquiry batchers (./inquiries.ts to the coordinator, ./peer-inquiries.ts to each
 * peer) share: taking the next request's ids from their queue, and the two waits that let
 * inquiries gather before a request goes.
 */
import type { TxId } from '../../shared/types.ts';

/**
 * Takes up to `max` ids from `queued`, oldest first, for the next request. An id `inDoubt` says is
 * settled (its decision arrived while it waited) is dropped, not asked: its answer could only be stale.
 */
export function takeBatch(queued: Set<TxId>, max: number, inDoubt: ((txId: TxId) => boolean) | undefined): TxId[] {
  const batch: TxId[] = [];
  for (const id of queued) {
    queued.delete(id);
    if (inDoubt?.(id) === false) continue;
    batch.push(id);
    if (batch.length >= max) break;
  }
  return batch;
}

/** Resolves after this turn of the event loop, so what is handed over in it joins first. */
export const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

export const sleep = (ms: number): Promise<void> =>
  new Promise<void>((resolve) => {
    // Never keeps a stopping process alive.
    setTimeout(resolve, ms).unref();
  });
