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

/**
 * JSON with object keys in code-point order at every depth, so equal values give equal text.
 *
 * The text is the one every WAL record's digest was computed from (test/shared/digest.test.ts
 * keeps the first form as its oracle): an object's own enumerable keys with a defined value,
 * sorted by UTF-16 code units as `<` compares them; anything JSON has no text for is `null`.
 * It runs once per prepare, so it is written as loops that build one string, where the first
 * form made `Object.entries`, `filter`, a comparator sort, `map` and `join` at every level: 0.67
 * µs a call against 0.96-1.53 for a transfer's ops (a scratch microbenchmark under tsx). The
 * hash after it costs about 3 µs, so the digest as a whole shows no measurable saving.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) text += ',';
      // A hole stays empty, as `map` and `join` left it; JSON.parse never makes one.
      if (i in value) text += canonicalJson(value[i]);
    }
    return `${text}]`;
  }
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object);
    if (!inOrder(keys)) keys.sort();
    let text = '{';
    for (const key of keys) {
      const member = object[key];
      if (member === undefined) continue;
      if (text.length > 1) text += ',';
      text += `${JSON.stringify(key)}:${canonicalJson(member)}`;
    }
    return `${text}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Whether `keys` are already in the order `sort()` gives strings (most objects arrive that way). */
function inOrder(keys: readonly string[]): boolean {
  for (let i = 1; i < keys.length; i++) if ((keys[i - 1] as string) > (keys[i] as string)) return false;
  return true;
}

/** Characters in a digest: 22 base64url characters carry the 128 bits kept (and 4 more). */
const DIGEST_CHARS = 22;
/** Bytes of the hash those characters are written from: 22 characters of 6 bits need 17 of 8. */
const DIGEST_SOURCE_BYTES = 17;

/**
 * 22 base64url characters naming a list of ops: the first 22 of the whole SHA-256's base64url
 * text, the value every WAL record written so far holds.
 *
 * Built as a flat 22-character string rather than as `slice(0, 22)` of the 43-character text:
 * V8 keeps such a slice as a view that holds its whole parent alive, and a participant keeps one
 * digest per remembered outcome (up to `outcomesMax`), so the view and its parent cost about 97
 * bytes a digest where the flat string costs 40 (docs/performance.md, "RSS growth: a cheaper
 * outcome entry"). Latin-1 text of a Buffer is copied into a new string of its own.
 */
export function opsDigest(ops: readonly unknown[]): string {
  const text = createHash('sha256').update(canonicalJson(ops)).digest().toString('base64url', 0, DIGEST_SOURCE_BYTES);
  return Buffer.from(text, 'latin1').toString('latin1', 0, DIGEST_CHARS);
}
