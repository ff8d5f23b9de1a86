/**
 * Service base URLs (a participant's, a coordinator's), parsed one way and compared one way,
 * so that one participant cannot hide behind two spellings of its address.
 */
import { ConfigError } from './errors.ts';
import { trimUrl } from './types.ts';

/** Longest base URL accepted; a base URL is a scheme, a host, a port and maybe a path prefix. */
export const SERVICE_URL_CHARS_MAX = 2048;

/**
 * Parses `text` as the base URL of a twopc service and returns its normal form: lower-case
 * host, no default port, no trailing slash (`HTTP://Host:80/` → `http://host`). Throws a
 * ConfigError naming `what` when it is not an http(s) URL a request can be sent to.
 */
export function parseServiceUrl(text: string, what: string): string {
  if (text.length > SERVICE_URL_CHARS_MAX) throw new ConfigError(`${what}: a URL of ${text.length} characters is longer than ${SERVICE_URL_CHARS_MAX}.`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`${what}: "${text}" is not a valid URL (expected like http://127.0.0.1:7001).`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${what}: "${text}" is not an http:// or https:// URL.`);
  if (url.username !== '' || url.password !== '') throw new ConfigError(`${what}: "${text}" holds a user name or password; use --token for credentials.`);
  if (url.search !== '' || url.hash !== '') throw new ConfigError(`${what}: "${text}" has a query or fragment; a base URL has neither.`);
  return `${url.protocol}//${url.host}${trimUrl(url.pathname)}`;
}

/** Addresses that bind every interface: a URL with one names no machine another can reach. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]', '::0']);

export function isWildcardHost(host: string): boolean {
  return WILDCARD_HOSTS.has(host.trim());
}

/** Names that reach this machine's loopback interface; a service on one is taken to answer on all. */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * What a URL reaches, for telling whether two URLs name one service: host (the loopback
 * spellings as one), port (the scheme's default when none is given) and path. The scheme
 * itself is left out: one port serves one protocol, so http://h:443 and https://h reach the
 * same server. Host names are compared as written, not resolved: a start-up must not depend
 * on DNS, and two names for one machine are the participant's own duplicate check to catch.
 * A URL that is not http(s) (the simulator's `sim://p1`) is its own identity.
 */
export function serviceIdentity(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return trimUrl(text);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return trimUrl(text);
  const host = LOOPBACK_HOSTS.has(url.hostname) ? 'loopback' : url.hostname;
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  return `${host}:${port}${trimUrl(url.pathname)}`;
}

const PARTICIPANT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Checks a coordinator's participant list (name → base URL) and returns it with every URL in
 * normal form. Throws a ConfigError for a bad name, a bad URL, or two names that reach one
 * participant: its two branches would reach one WAL under one txId, and one would be lost.
 */
export function checkParticipants(participants: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  const byIdentity = new Map<string, string>();
  for (const [name, url] of Object.entries(participants)) {
    if (!PARTICIPANT_NAME.test(name)) throw new ConfigError(`Participant name "${name}" must be 1 to 64 letters, digits, '_', '.' or '-'.`);
    if (typeof url !== 'string') throw new ConfigError(`Participant ${name}: expected a URL.`);
    const normal = parseServiceUrl(url, `participant ${name}`);
    const identity = serviceIdentity(normal);
    const other = byIdentity.get(identity);
    if (other !== undefined) {
      throw new ConfigError(`Participants ${other} (${participants[other]}) and ${name} (${url}) both reach ${identity}, one participant; give each participant one name.`);
    }
    byIdentity.set(identity, name);
    out[name] = normal;
  }
  if (Object.keys(out).length === 0) throw new ConfigError('Expected at least one participant.');
  return out;
}
