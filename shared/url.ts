/**
 * One spelling per base URL, so two spellings of one node compare equal:
 * `HTTP://Host:80/` and `http://host` are the same participant. Used wherever
 * a URL decides whom to trust or whether two names are one node.
 */

/** Scheme and host lower-cased, default port dropped, no trailing slash, no query, fragment or credentials. Throws on a URL that does not parse or is not http(s). */
export function normalizeBaseUrl(raw: string): string {
  const u = new URL(raw);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`Expected an http(s) URL, got "${raw}".`);
  if (u.username !== '' || u.password !== '') throw new TypeError(`Expected a URL without credentials, got "${raw}".`);
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.protocol}//${u.host}${path}`;
}

/** Whether `raw` is an http(s) URL that normalizeBaseUrl accepts. */
export function isHttpUrl(raw: string): boolean {
  try {
    normalizeBaseUrl(raw);
    return true;
  } catch {
    return false;
  }
}
