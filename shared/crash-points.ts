/**
 * The named crash points of the contract (../shared/design.md section 4).
 * A core emits `{ kind: 'crashPoint', point }` where the point lies in its
 * effect sequence; this list is what `GET /v1/chaos/points` reports and what
 * the crash-point enumeration walks. Each says exactly when it fires.
 */
export const CRASH_POINTS = {
  // Coordinator, both paths.
  'coordinator.after-prepare-sent': 'the first vote has come back; nothing is decided or logged yet',
  'coordinator.before-decision-logged': 'every vote is in (or one said no); the decision is not yet in the WAL',
  'coordinator.after-decision-logged': 'the decision is in the WAL (synced when commit); no participant or client has heard it',
  'coordinator.after-first-commit-sent': 'one participant has acknowledged COMMIT; others may not have heard it',
  'coordinator.after-first-abort-sent': 'one participant has acknowledged ABORT; others may not have heard it',
  'coordinator.before-end-logged': 'every participant has acknowledged; END is not yet written',
  // Participant, both paths.
  'participant.after-resource-prepared': 'the resource has prepared (for a database, PREPARE TRANSACTION is done); PREPARED is not yet in the WAL',
  'participant.after-prepare-logged': 'PREPARED is synced; the YES vote has not been sent',
  'participant.before-commit-logged': 'COMMIT has arrived; COMMITTED is not yet in the WAL',
  'participant.after-commit-logged': 'COMMITTED is synced; nothing is applied or acknowledged yet',
  'participant.before-abort-logged': 'ABORT has arrived (or a NO vote is due); ABORTED is not yet in the WAL',
  'participant.after-abort-logged': 'ABORTED is written; locks are still held and nothing is acknowledged',
} as const;

export type CrashPoint = keyof typeof CRASH_POINTS;

export function isCrashPoint(s: string): s is CrashPoint {
  return Object.hasOwn(CRASH_POINTS, s);
}
