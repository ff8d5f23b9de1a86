/**
 * The Clock port and the services' timer table. Cores never read time; the
 * runtimes stamp each event with `clock.now()` and run `setTimer` effects here.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Named one-shot timers. Setting an id that is already set replaces it. */
export class Timers {
  private readonly handles = new Map<string, NodeJS.Timeout>();

  set(id: string, ms: number, fire: () => void): void {
    this.clear(id);
    const h = setTimeout(() => {
      this.handles.delete(id);
      fire();
    }, Math.max(0, ms));
    // Timers never keep a stopping process alive.
    h.unref();
    this.handles.set(id, h);
  }

  clear(id: string): void {
    const h = this.handles.get(id);
    if (h !== undefined) {
      clearTimeout(h);
      this.handles.delete(id);
    }
  }

  clearAll(): void {
    for (const h of this.handles.values()) clearTimeout(h);
    this.handles.clear();
  }

  get size(): number {
    return this.handles.size;
  }
}

/** Resolves when `promise` does, or after `ms`, whichever comes first; never keeps the process alive. */
export function waitAtMost(promise: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
