/**
 * PostgreSQL global transaction ids for twopc branches: `<prefix>:<participant>:<txId>`.
 *
 * One scheme, so that several participants can share one database (each lists
 * and settles only the gids under its own namespace) and so that a gid maps back
 * to its txId without any lookup: `recoverPrepared` reads `pg_prepared_xacts`,
 * where an uncommitted marker row would not be visible.
 *
 * PostgreSQL keeps a gid in a 200-byte buffer with its terminating NUL, so a gid
 * is at most 199 bytes. A txId is at most 128 ASCII characters (shared/schemas.ts);
 * the namespace is kept short enough that every txId fits: a participant name that
 * is long or has characters outside [A-Za-z0-9_.-] is replaced by a hash of it.
 */
import { createHash } from 'node:crypto';
import { LIMITS } from '../../shared/schemas.ts';
import { asTxId, type TxId } from '../../shared/types.ts';

/** PostgreSQL's GIDSIZE (200) less the terminating NUL. */
export const GID_BYTES_MAX = 199;
export const GID_PREFIX_DEFAULT = 'twopc';
/** Longest participant name kept readable in the gid; longer names are hashed. */
const NAME_CHARS_MAX = 48;
const PREFIX_PATTERN = /^[A-Za-z0-9_.-]{1,16}$/;
const NAME_PATTERN = new RegExp(`^[A-Za-z0-9_.-]{1,${NAME_CHARS_MAX}}$`);
/** Hex digits of the hash that stands for an unusable name: 96 bits, no accidental collision. */
const NAME_HASH_HEX_CHARS = 24;

/**
 * The namespace of one participant's gids, ending in `:`. A hashed name starts
 * with `#`, a character no readable name has, so it cannot collide with one.
 */
export function gidNamespace(participantName: string, prefix: string = GID_PREFIX_DEFAULT): string {
  if (!PREFIX_PATTERN.test(prefix)) throw new TypeError(`Expected the gid prefix to match ${PREFIX_PATTERN}, got "${prefix}".`);
  if (participantName.length === 0) throw new TypeError('Expected a non-empty participant name.');
  const name = NAME_PATTERN.test(participantName)
    ? participantName
    : `#${createHash('sha256').update(participantName).digest('hex').slice(0, NAME_HASH_HEX_CHARS)}`;
  const namespace = `${prefix}:${name}:`;
  // Every valid txId must fit after it.
  if (Buffer.byteLength(namespace) + LIMITS.txIdLengthMax > GID_BYTES_MAX) throw new Error(`gid namespace ${namespace} leaves no room for a txId`);
  return namespace;
}

export function gidOf(namespace: string, txId: TxId): string {
  const gid = `${namespace}${txId}`;
  if (Buffer.byteLength(gid) > GID_BYTES_MAX) throw new RangeError(`The gid for ${txId} would be longer than PostgreSQL's ${GID_BYTES_MAX} bytes.`);
  return gid;
}

/** The txId of a gid in this namespace; undefined for another participant's gid (or anyone else's). */
export function txIdOfGid(namespace: string, gid: string): TxId | undefined {
  if (!gid.startsWith(namespace) || gid.length === namespace.length) return undefined;
  return asTxId(gid.slice(namespace.length));
}
