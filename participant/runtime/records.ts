/**
 * The participant's WAL record codes. Distinct from the coordinator's, so
 * `twopc wal inspect` can name a record without knowing whose log it reads.
 * A code is never reused for another meaning: old logs must still read.
 */
import { RecordCodec, decodeJson, encodeJson, type CodeTable } from '../../shared/records.ts';
import type { ParticipantRecord, ParticipantSnapshot } from '../core/index.ts';

export const PARTICIPANT_RECORD_CODES: CodeTable<ParticipantRecord> = {
  PREPARED: 21,
  COMMITTED: 22,
  ABORTED: 23,
  HEURISTIC: 24,
};

export const participantCodec = new RecordCodec<ParticipantRecord>(PARTICIPANT_RECORD_CODES);

export function encodeSnapshot(snapshot: ParticipantSnapshot): Uint8Array {
  return encodeJson(snapshot);
}

/** Checked right after reading back: a checkpoint of another shape is refused, not half-used. */
export function decodeSnapshot(bytes: Uint8Array): ParticipantSnapshot {
  const s = decodeJson<Partial<ParticipantSnapshot>>(bytes);
  if (s.version !== 1 || !Array.isArray(s.prepared) || !Array.isArray(s.outcomes) || !('resource' in s)) {
    throw new Error('The participant checkpoint is not a version-1 participant snapshot.');
  }
  return s as ParticipantSnapshot;
}
