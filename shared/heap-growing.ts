/**
 * How far V8 lets a service process's old generation grow past what its last full collection
 * left alive, before it collects again: `--heap-growing-percent` of `twopc participant` and
 * `twopc coordinator` (TWOPC_HEAP_GROWING_PERCENT), with a default for each.
 *
 * Why a service sets it: V8 picks the factor itself, from how fast it collects against how fast
 * the program allocates, up to 4x on a machine with memory to spare. The nodes allocate fast and
 * collect fast, so they sat near that top: a participant's committed heap at 4-5 times its live
 * heap, and its RSS rising by about five times whatever its live data gained, as the bounded
 * outcome memory (participant/core/outcomes.ts) filled after start-up (docs/performance.md, "RSS
 * growth: meeting the target"). A fixed factor makes RSS follow the live data at that factor,
 * at the price of more full collections, each over a smaller heap.
 *
 * Applied only by the CLI, in the process the CLI runs as the service: a participant or
 * coordinator mounted as a library in a host application must not change the host's V8 flags,
 * so `createParticipant` and `startCoordinator` never call this.
 */
import v8 from 'node:v8';

/**
 * The old generation may grow to (1 + this / 100) times what survived the last full collection;
 * by role, because the two differ. A participant's old space follows its outcome memory filling
 * for the first ~50,000 transfers, so it gets 1.5x. The coordinator's live heap is flat from the
 * start (its RSS did not grow at V8's own factor, 0.96-0.97 from 20,000 to 200,000), and at 1.5x it
 * ran five times the full collections (70 against 14 in 40,000 transfers) on the process that
 * bounds the throughput, so it keeps V8's own.
 */
export const HEAP_GROWING_PERCENT_DEFAULTS = { participant: 50, coordinator: 0 } as const;
/** 0 leaves V8's own dynamic factor; above this a setting would only ask for V8's top factor again. */
export const HEAP_GROWING_PERCENT_MAX = 300;

/** What this process asked V8 for (0: nothing, V8's own factor); /metrics shows it as `twopc_heap_growing_percent`. */
let applied = 0;
export const heapGrowingPercentApplied = (): number => applied;

/** Sets V8's heap growing factor for this process; 0 leaves V8's own choice untouched. */
export function applyHeapGrowingPercent(percent: number): void {
  if (!Number.isSafeInteger(percent) || percent < 0 || percent > HEAP_GROWING_PERCENT_MAX) {
    throw new RangeError(`heap growing percent must be an integer from 0 to ${HEAP_GROWING_PERCENT_MAX}, got ${percent}`);
  }
  // V8's flag has no "back to dynamic" value: 0 is its default, "not set".
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
  applied = percent;
}
