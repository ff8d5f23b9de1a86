/**
 * `--etcd URLS --group NAME [--lease-ms N]` checked before anything starts: a
 * half-given HA configuration is a ConfigError (one line, the config exit
 * code), never a single coordinator started by mistake.
 */
import { ConfigError } from '../shared/errors.ts';
import { isWildcardHost, parseServiceUrl } from '../shared/urls.ts';
import { parseEtcdUrls } from './adapters/etcd-client.ts';
import type { HaOptions } from './ha.ts';

/** A group name is a key segment in etcd: letters, digits, `_`, `.`, `-`. */
const GROUP_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export function haOptionsOf(etcd: string | undefined, group: string | undefined, leaseMs: number): HaOptions {
  if (etcd === undefined) throw new ConfigError('--group needs --etcd URLS (TWOPC_ETCD): the group shares its decision log there.');
  if (group === undefined) throw new ConfigError('--etcd needs --group NAME (TWOPC_GROUP): coordinators with one group name elect one leader.');
  if (!GROUP_PATTERN.test(group)) throw new ConfigError(`Expected --group to be 1-64 letters, digits, "_", "." or "-", got "${group}".`);
  let urls: string[];
  try {
    urls = parseEtcdUrls(etcd);
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
  return { etcd: urls, group, leaseMs };
}

/**
 * The URL a member registers with its leadership, which followers name in their 503s: the
 * advertised one, or, when none is given, the one it listens on. A member listening on every
 * interface (0.0.0.0 in a container) has no such URL of its own, and a follower naming
 * http://0.0.0.0:7000 sends clients to themselves: that start is refused.
 */
export function advertisedUrlOf(host: string, advertiseUrl: string | undefined): string | undefined {
  if (advertiseUrl !== undefined) return parseServiceUrl(advertiseUrl, '--advertise-url');
  if (isWildcardHost(host)) {
    throw new ConfigError(
      `--host ${host} listens on every interface, which no other member can reach by that address; give --advertise-url URL (TWOPC_ADVERTISE_URL), the URL clients and the group reach this coordinator by, like http://c1:7000.`,
    );
  }
  return undefined;
}
