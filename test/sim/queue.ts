/**
 * The simulator's virtual clock and event queue. Events run in (time, sequence)
 * order: two events due at the same millisecond run in the order they were
 * scheduled, so a run depends on nothing but its seed.
 *
 * A binary min-heap keeps push and pop at O(log n); the queue is bounded, since
 * a runaway (a timer that re-arms itself every millisecond, a message storm)
 * must end the run with an error rather than eat the machine's memory.
 */
export interface Scheduled<E> {
  readonly at: number;
  readonly seq: number;
  readonly event: E;
}

export class EventQueue<E> {
  private readonly heap: Scheduled<E>[] = [];
  private nextSeq = 0;
  private nowMs = 0;

  constructor(private readonly sizeMax = 1_000_000) {}

  /** Virtual time in ms: the due time of the event being run. */
  get now(): number {
    return this.nowMs;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Schedules `event` `delayMs` from now (never in the past). */
  after(delayMs: number, event: E): void {
    this.at(this.nowMs + Math.max(0, delayMs), event);
  }

  at(atMs: number, event: E): void {
    if (this.heap.length >= this.sizeMax) throw new Error(`event queue exceeds ${this.sizeMax} events`);
    const item: Scheduled<E> = { at: Math.max(atMs, this.nowMs), seq: this.nextSeq++, event };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent] as Scheduled<E>;
      if (!before(item, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = item;
  }

  /** Removes the next event and advances the clock to its time. */
  pop(): Scheduled<E> | undefined {
    const h = this.heap;
    const top = h[0];
    if (top === undefined) return undefined;
    const last = h.pop() as Scheduled<E>;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let best = last;
        const left = h[l];
        if (left !== undefined && before(left, best)) {
          m = l;
          best = left;
        }
        const right = h[r];
        if (right !== undefined && before(right, best)) {
          m = r;
          best = right;
        }
        if (m === i) break;
        h[i] = best;
        i = m;
      }
      h[i] = last;
    }
    this.nowMs = top.at;
    return top;
  }

  peekAt(): number | undefined {
    return this.heap[0]?.at;
  }
}

const before = <E>(a: Scheduled<E>, b: Scheduled<E>): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);
