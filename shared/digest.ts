/**
 * A digest of a prepare's work, so a participant can tell a retry of the same
 * prepare from a second prepare that reuses the txId with other ops (two
 * coordinator names for one participant did exactly that, and the second
 * branch's work was answered YES without being done).
 *
 * The digest is SHA-256 over a canonical JSON form (object keys sorted), cut
 * to 128 bits: collisions by accident are out of reach, and a caller able to
 * craft one could send the participant any prepare it likes anyway. It lives
 * here, at the edge, because the cores may not import node:crypto.
 */
import { createHash } from 'node:crypto';

/** JSON with object keys in code-point order at every depth, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** 22 base64url characters naming a list of ops. */
export function opsDigest(ops: readonly unknown[]): string {
  return createHash('sha256').update(canonicalJson(ops)).digest('base64url').slice(0, 22);
}
