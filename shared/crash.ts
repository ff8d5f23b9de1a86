/**
 * The crash-point runtime for the services. A point is armed by
 * TWOPC_CRASH_AT=point at start, or by POST /v1/chaos/crash-at with --chaos.
 * When the effect driver reaches an armed point the process SIGKILLs itself:
 * no flush, no handlers, exactly like a power cut to this process.
 */
import { CRASH_POINTS, isCrashPoint, type CrashPoint } from './crash-points.ts';
import { badRequest } from './errors.ts';

export interface CrashPointsOptions {
  /** How the process dies; injectable so tests can observe instead of dying. */
  readonly kill?: (point: CrashPoint) => void;
  /** Initial armed point, usually from TWOPC_CRASH_AT. */
  readonly armed?: string;
}

/**
 * The point to arm at start: the caller's own choice, else TWOPC_CRASH_AT, and
 * the variable only with --chaos, like every chaos control: a variable left in
 * a production environment must not SIGKILL a node.
 */
export function crashPointAtStart(chaos: boolean, explicit?: string, env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  if (explicit !== undefined) return explicit;
  return chaos ? env.TWOPC_CRASH_AT || undefined : undefined;
}

export class CrashPoints {
  private armedPoint: CrashPoint | undefined;
  private readonly kill: (point: CrashPoint) => void;

  constructor(options: CrashPointsOptions = {}) {
    this.kill =
      options.kill ??
      ((point) => {
        process.stderr.write(`twopc: crash point ${point} reached; SIGKILL\n`);
        process.kill(process.pid, 'SIGKILL');
      });
    if (options.armed) this.arm(options.armed);
  }

  /** Arms one point (replacing any other). Throws a 400 for a name not in the list. */
  arm(point: string): CrashPoint {
    if (!isCrashPoint(point)) {
      throw badRequest(`Unknown crash point "${point}" (known: ${Object.keys(CRASH_POINTS).join(', ')}).`);
    }
    this.armedPoint = point;
    return point;
  }

  disarm(): void {
    this.armedPoint = undefined;
  }

  get armed(): CrashPoint | undefined {
    return this.armedPoint;
  }

  /** Called by the driver when a core's effects reach `point`. */
  reach(point: string): void {
    if (this.armedPoint !== undefined && point === this.armedPoint) this.kill(this.armedPoint);
  }
}
