/**
 * The coordinator's WAL record codes (11-14; the participant's are 21-24), so
 * `twopc wal inspect` can name a record without knowing whose log it reads.
 * A code is never reused for another meaning: old logs must still read.
 */
import { RecordCodec, decodeJson, encodeJson, type CodeTable } from '../../shared/records.ts';
import type { CoordinatorRecord, CoordinatorSnapshot } from '../core/index.ts';

export const COORDINATOR_RECORD_CODES: CodeTable<CoordinatorRecord> = {
  BOOT: 11,
  COLLECTING: 12,
  DECISION: 13,
  END: 14,
};

export const coordinatorCodec = new RecordCodec<CoordinatorRecord>(COORDINATOR_RECORD_CODES);

export function encodeSnapshot(snapshot: CoordinatorSnapshot): Uint8Array {
  return encodeJson(snapshot);
}

/** Checked right after reading back: a checkpoint of another shape is refused, not half-used. */
export function decodeSnapshot(bytes: Uint8Array): CoordinatorSnapshot {
  const s = decodeJson<Partial<CoordinatorSnapshot>>(bytes);
  if (s.version !== 1 || typeof s.epoch !== 'number' || !Array.isArray(s.decided) || !Array.isArray(s.collecting)) {
    throw new Error('The coordinator checkpoint is not a version-1 coordinator snapshot.');
  }
  return s as CoordinatorSnapshot;
}
