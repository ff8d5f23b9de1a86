/**
 * The etcd client every HA coordinator uses, with one bound on each call: a
 * call etcd does not answer in time fails (and a log write that fails is
 * fail-stop), instead of holding the coordinator's queue for ever.
 */
import { Etcd3 } from 'etcd3';

export const ETCD_CLIENT_DEFAULTS = {
  /** A unary call (range, txn, lease grant) that takes longer fails. Several lease TTLs would be too long to notice a lost quorum. */
  callMsMax: 3_000,
  /** Connecting to a member that is not there fails after this. */
  dialMsMax: 3_000,
} as const;

/** Parses `--etcd` (comma-separated http URLs); throws a message naming the bad one. */
export function parseEtcdUrls(text: string): string[] {
  const urls = text
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  if (urls.length === 0) throw new Error('--etcd needs at least one URL (http://host:port)');
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new Error(`--etcd: "${u}" is not a URL (expected http://host:port)`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`--etcd: "${u}" is not an http(s) URL`);
  }
  return urls;
}

export function createEtcdClient(urls: readonly string[], callMsMax: number = ETCD_CLIENT_DEFAULTS.callMsMax): Etcd3 {
  return new Etcd3({
    hosts: [...urls],
    dialTimeout: ETCD_CLIENT_DEFAULTS.dialMsMax,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callMsMax }),
  });
}
