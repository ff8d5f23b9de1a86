/**
 * At most `inFlightMax` calls at once to each target; the rest wait in arrival
 * order. The queue needs no bound of its own: its callers are bounded (the
 * core asks each peer at most once per round for each in-doubt transaction,
 * and in-doubt transactions are bounded by the core's lockingTxsMax).
 */
export class PerTargetLimit {
  private readonly inFlight = new Map<string, number>();
  private readonly waiting = new Map<string, (() => Promise<void>)[]>();
  private stopped = false;

  constructor(private readonly inFlightMax: number) {}

  run(target: string, call: () => Promise<void>): void {
    if (this.stopped) return;
    if ((this.inFlight.get(target) ?? 0) < this.inFlightMax) return this.start(target, call);
    const queue = this.waiting.get(target) ?? [];
    queue.push(call);
    this.waiting.set(target, queue);
  }

  /** Drops what waits; calls already started finish on their own. */
  stop(): void {
    this.stopped = true;
    this.waiting.clear();
  }

  private start(target: string, call: () => Promise<void>): void {
    this.inFlight.set(target, (this.inFlight.get(target) ?? 0) + 1);
    void call()
      .catch(() => undefined)
      .finally(() => {
        const left = (this.inFlight.get(target) ?? 1) - 1;
        if (left === 0) this.inFlight.delete(target);
        else this.inFlight.set(target, left);
        const next = this.waiting.get(target)?.shift();
        if (this.waiting.get(target)?.length === 0) this.waiting.delete(target);
        if (next !== undefined && !this.stopped) this.start(target, next);
      });
  }
}
