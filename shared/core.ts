/**
 * The vocabulary both protocol cores speak. A core is a pure function
 * `step(state, event) -> { state, effects }`: it reads no clock, draws no
 * random numbers and does no I/O. Time arrives inside events (`now`), ids are
 * derived from persisted state, and everything the outside world must do is
 * returned as an effect, as data. (Model: etcd raft's Ready, XState's transition.)
 *
 * The driver (shared/driver.ts) executes effects in one fixed order: every
 * `persist` of a step (and of every earlier step) is written, and synced where
 * asked, before any other effect of that step runs. So a participant's YES vote
 * is durable before it is sent, and the coordinator's COMMIT decision is durable
 * before any participant or client hears it.
 */

/** Identifies an inbound request awaiting a `reply` effect. Chosen by the runtime. */
export type RequestId = string;

/** Write a record to this node's WAL; with `sync`, it must be durable before later effects run. */
export interface PersistEffect<R> {
  readonly kind: 'persist';
  readonly record: R;
  readonly sync: boolean;
}

/** Answer an inbound request. `status` is an HTTP status code. */
export interface ReplyEffect {
  readonly kind: 'reply';
  readonly requestId: RequestId;
  readonly status: number;
  readonly body: unknown;
}

/** Arm (or re-arm) a one-shot timer. When it fires, the runtime feeds `{ type: 'timer', id, now }`. */
export interface SetTimerEffect {
  readonly kind: 'setTimer';
  readonly id: string;
  readonly ms: number;
}

export interface CancelTimerEffect {
  readonly kind: 'cancelTimer';
  readonly id: string;
}

/** A note for the operator's log (pino in the services, the trace in the simulator). */
export interface LogEffect {
  readonly kind: 'log';
  readonly step: string;
  readonly txId?: string;
  readonly fields?: Readonly<Record<string, unknown>>;
}

/**
 * A named crash point (shared/crash-points.ts). Cores emit it at the exact place
 * in their effect sequence; the services SIGKILL themselves there when the point
 * is armed (--chaos, TWOPC_CRASH_AT), and the simulator crashes the node there.
 */
export interface CrashPointEffect {
  readonly kind: 'crashPoint';
  readonly point: string;
}

export type CommonEffect<R> =
  | PersistEffect<R>
  | ReplyEffect
  | SetTimerEffect
  | CancelTimerEffect
  | LogEffect
  | CrashPointEffect;

export interface StepResult<S, E> {
  readonly state: S;
  readonly effects: readonly E[];
}

/** Every core event carries the time it happened at, in ms, from the runtime's Clock. */
export interface Timed {
  readonly now: number;
}

export interface TimerFired extends Timed {
  readonly type: 'timer';
  readonly id: string;
}

/** Bounded exponential backoff: attempt 0 waits `baseMs`, doubling up to `maxMs`. Pure, so cores can use it. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(attempt, 30);
  return Math.min(maxMs, baseMs * 2 ** exp);
}

/**
 * "Equal jitter" without randomness: `ms` cut to a point in [ms/2, ms] chosen by a hash of
 * `seed` (a txId and an attempt number), so thousands of in-doubt transactions that failed
 * together do not retry together, and a replay of the same events waits exactly as long.
 */
export function jitteredMs(ms: number, seed: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche so seeds differing only in the last character still spread.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  const half = Math.floor(ms / 2);
  return half + ((h >>> 0) % (ms - half + 1));
}
