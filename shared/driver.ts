/**
 * Executes a core's effects in the one order the protocol's safety rests on:
 * persist (and sync) first, then everything else.
 *
 * Batches are ordered too. A batch's outward effects (send, reply, timers,
 * resource calls) run only after every persist of that batch AND of every
 * earlier batch has completed. Without this, a step that merely *reveals* an
 * earlier decision (an outcome inquiry answered from memory) could leak it
 * before the record that makes it durable hit the disk.
 *
 * Appends of consecutive batches are all issued at once, so a group-commit log
 * covers them with one fdatasync; only the outward effects wait.
 *
 * Crash points are exact. A `crashPoint` effect stands at a place in its
 * step's sequence ("after PREPARED is logged, before the vote is sent"); when
 * that point is armed, the batch runs in strict order, segment by segment
 * (a segment's writes, then its outward effects, then the crash point), and no
 * later batch issues a write until it has passed. So the WAL holds exactly
 * what the point's description says when the process dies there. Unarmed
 * points cost nothing: batches keep the fast path above.
 *
 * Lanes take slow calls off the queue. An effect the side puts in lanes (a
 * participant's resource commit, keyed by its transaction and its keys) still
 * starts in queue order, so after every persist before it: a commit is applied
 * only once its COMMITTED record is durable. But the queue does not wait for
 * it, so one transaction's database round trip holds back no other
 * transaction's replies and sends. A laned effect waits only for the earlier
 * laned effects that share one of its lanes: the same transaction's reply
 * waits for its apply, and the next lock holder's resource call waits for the
 * previous holder's. Laned effects in flight are bounded by what the core
 * admits (its own limits on transactions and requests). Under an armed crash
 * point they are awaited in place, like everything else.
 *
 * A persist failure is fail-stop: the driver poisons itself, runs no outward
 * effect of that or any later batch, and calls `onFatal` once (the services
 * exit there; the simulator marks the node crashed). A laned effect that fails
 * is fail-stop too.
 */
import type { CrashPointEffect, PersistEffect } from './core.ts';

export interface DriverHooks<R, E> {
  /** Write one record; resolve once written, and once durable when `sync` is set. */
  persist(record: R, sync: boolean): Promise<unknown>;
  /** Run one non-persist effect. A returned promise is awaited before the next effect runs. */
  execute(effect: E): void | Promise<void>;
  /** Called once, with the first persist or execute error. */
  onFatal(error: unknown): void;
  /** Whether reaching `point` will crash the node. Unarmed points need no strict ordering. Default: every point is armed. */
  isArmed?(point: string): boolean;
  /**
   * The lanes of an effect that need not hold up the queue, or undefined (the default) for one that
   * runs in queue order with the queue waiting for it. A laned effect starts in queue order, once every
   * earlier laned effect sharing one of its lanes has finished, and the queue goes on without it.
   */
  lanesOf?(effect: E): readonly string[] | undefined;
}

function isPersist<R>(e: { kind: string }): e is PersistEffect<R> {
  return e.kind === 'persist';
}

function isCrashPoint(e: { kind: string }): e is CrashPointEffect {
  return e.kind === 'crashPoint';
}

export class EffectDriver<R, E extends { kind: string }> {
  private barrier: Promise<void> = Promise.resolve();
  private failed = false;
  private inFlight = 0;
  /** Strict batches queued and not yet finished; while any is, new batches run strictly too. */
  private strictPending = 0;
  /** The last laned effect started on each lane, while it is in flight. */
  private readonly laneTails = new Map<string, Promise<void>>();
  /** Every laned effect in flight. */
  private readonly laned = new Set<Promise<void>>();

  constructor(private readonly hooks: DriverHooks<R, E>) {}

  /** True once a persist or effect failed; nothing more will run. */
  get poisoned(): boolean {
    return this.failed;
  }

  /** Batches accepted but not yet fully executed. */
  get pending(): number {
    return this.inFlight;
  }

  /** Laned effects started and not yet finished. */
  get lanedInFlight(): number {
    return this.laned.size;
  }

  /**
   * Queues one step's effects. Resolves when they have all run (or been
   * dropped because the driver is poisoned); never rejects.
   */
  run(effects: readonly E[]): Promise<void> {
    if (this.failed) return Promise.resolve();
    const armed = effects.some((e) => isCrashPoint(e) && (this.hooks.isArmed?.(e.point) ?? true));
    if (armed || this.strictPending > 0) return this.runStrict(effects);
    const outward: E[] = [];
    const writes: Promise<unknown>[] = [];
    for (const e of effects) {
      if (isPersist<R>(e)) {
        // Issued now, in order, so LSN order follows step order and one group flush can cover many batches.
        const write = this.guard(() => this.hooks.persist(e.record, e.sync));
        // This batch awaits its writes only after the batches before it: a write that fails
        // meanwhile would be an unhandled rejection, which ends the process past fail-stop.
        write.catch(() => undefined);
        writes.push(write);
      } else {
        outward.push(e);
      }
    }
    const previous = this.barrier;
    this.inFlight++;
    const done = (async () => {
      try {
        await previous;
        await Promise.all(writes);
        for (const e of outward) {
          if (this.failed) return;
          const lanes = this.hooks.lanesOf?.(e);
          if (lanes === undefined) await this.hooks.execute(e);
          else void this.startLaned(e, lanes);
        }
      } catch (error) {
        this.fail(error);
      } finally {
        this.inFlight--;
      }
    })();
    this.barrier = done;
    return done;
  }

  /** Runs one batch in exact effect order (persists still first within each segment). */
  private runStrict(effects: readonly E[]): Promise<void> {
    const previous = this.barrier;
    this.inFlight++;
    this.strictPending++;
    const done = (async () => {
      try {
        await previous;
        let segment: E[] = [];
        const flush = async () => {
          const writes = segment.filter((e) => isPersist<R>(e));
          const outward = segment.filter((e) => !isPersist<R>(e));
          segment = [];
          await Promise.all(writes.map((e) => this.guard(() => this.hooks.persist(e.record, e.sync))));
          for (const e of outward) {
            if (this.failed) return;
            const lanes = this.hooks.lanesOf?.(e);
            // Exact order: a laned effect is awaited in place, after what it must wait for.
            if (lanes === undefined) await this.hooks.execute(e);
            else await this.startLaned(e, lanes);
          }
        };
        for (const e of effects) {
          if (!isCrashPoint(e)) {
            segment.push(e);
            continue;
          }
          await flush();
          if (this.failed) return;
          await this.hooks.execute(e);
        }
        await flush();
      } catch (error) {
        this.fail(error);
      } finally {
        this.inFlight--;
        this.strictPending--;
      }
    })();
    this.barrier = done;
    return done;
  }

  /** Resolves when every batch queued so far has run, and every laned effect they started has finished. */
  async idle(): Promise<void> {
    await this.barrier;
    await this.lanesIdle();
  }

  /** Resolves when every laned effect started so far has finished (a checkpoint waits for this). */
  async lanesIdle(): Promise<void> {
    await Promise.all(this.laned);
  }

  /**
   * Starts a laned effect: at once when nothing on its lanes is in flight, else after those. Resolves
   * when it has finished; never rejects (a failure is fail-stop). Undefined when it finished at once.
   */
  private startLaned(e: E, lanes: readonly string[]): Promise<void> | undefined {
    const before = new Set<Promise<void>>();
    for (const lane of lanes) {
      const tail = this.laneTails.get(lane);
      if (tail !== undefined) before.add(tail);
    }
    let done: Promise<void>;
    if (before.size === 0) {
      let result: void | Promise<void>;
      try {
        result = this.hooks.execute(e);
      } catch (error) {
        this.fail(error);
        return undefined;
      }
      // Finished already (a synchronous call): nothing can be waiting on it.
      if (!(result instanceof Promise)) return undefined;
      done = result.then(
        () => undefined,
        (error: unknown) => this.fail(error),
      );
    } else {
      done = Promise.all(before)
        .then(() => (this.failed ? undefined : this.hooks.execute(e)))
        .then(
          () => undefined,
          (error: unknown) => this.fail(error),
        );
    }
    this.laned.add(done);
    for (const lane of lanes) this.laneTails.set(lane, done);
    void done.then(() => {
      this.laned.delete(done);
      for (const lane of lanes) if (this.laneTails.get(lane) === done) this.laneTails.delete(lane);
    });
    return done;
  }

  private guard(write: () => Promise<unknown>): Promise<unknown> {
    let p: Promise<unknown>;
    try {
      p = write();
    } catch (error) {
      p = Promise.reject(error);
    }
    // Record the failure at once, so batches queued behind this one drop their effects.
    const guarded = p.catch((error: unknown) => {
      this.fail(error);
      throw error;
    });
    // The batch awaits this only once every earlier batch is done; until then a rejection would have
    // no handler, and Node reports it as unhandled (a service dies with a stack trace, not fail-stop).
    guarded.catch(() => undefined);
    return guarded;
  }

  private fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.hooks.onFatal(error);
  }
}
