/**
 * Whom a participant may call. A prepare names the peers an in-doubt
 * participant will ask (cooperative termination), but anyone who can reach
 * the participant can send a prepare; left unchecked, that made it POST,
 * with its bearer token, to whatever URL a prepare listed, for as long as
 * the transaction stayed in doubt.
 *
 * So a participant calls only:
 * - its coordinator(s), from its own configuration: outcome inquiries never
 *   go to the URL a prepare names (that field is kept for the record only);
 * - peers it has reason to trust: those in its configuration (`--peers`), and
 *   those its coordinator vouches for, read from the coordinator's
 *   `GET /v1/participants` over the configured URL (with the token, when one
 *   is set: the coordinator's authenticated word).
 *
 * The gate is the prepare: its peer list is cut to the trusted URLs before the
 * core sees it, so the PREPARED record, and every inquiry after a restart,
 * names only trusted peers. A prepare naming a peer not yet known triggers one
 * refresh of the coordinator's list (single-flight, at most once per
 * `refreshIntervalMsMin`, bounded by `refreshTimeoutMs`); peers still unknown
 * after it are dropped, and the log says which.
 */
import { TransportError, type HttpClient } from '../../shared/http/client.ts';
import type { Logger } from '../../shared/logger.ts';
import { parseServiceUrl, serviceIdentity } from '../../shared/urls.ts';

export const PEERS_DEFAULTS = {
  /** A refresh of the coordinator's participant list waits at most this long. */
  refreshTimeoutMs: 1_000,
  /** Refreshes happen at most this often, however many prepares name unknown peers. */
  refreshIntervalMsMin: 1_000,
  /** Peers learned from the coordinator: a larger list is cut (the coordinator allows 64 branches). */
  learnedPeersMax: 256,
} as const;

export interface TrustedPeersOptions {
  /** The configured coordinator base URLs; inquiries go only here. */
  readonly coordinators: readonly string[];
  /** Peers trusted by configuration. */
  readonly peers?: readonly string[];
  readonly http: HttpClient;
  readonly logger: Logger;
  /** Milliseconds since some epoch; only differences are used. */
  readonly now: () => number;
  readonly refreshTimeoutMs?: number;
  readonly refreshIntervalMsMin?: number;
}

export class TrustedPeers {
  /** Kept for the refresh; inquiries go to the configured coordinator the runtime was given. */
  private readonly coordinators: readonly string[];
  private readonly configured: ReadonlySet<string>;
  private learned: ReadonlySet<string> = new Set();
  private refreshing: Promise<void> | undefined;
  private lastRefreshAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: TrustedPeersOptions) {
    if (o.coordinators.length === 0) throw new TypeError('Expected at least one coordinator URL.');
    this.coordinators = o.coordinators.map((u) => parseServiceUrl(u, 'coordinator'));
    this.configured = new Set((o.peers ?? []).map((u) => serviceIdentity(parseServiceUrl(u, 'peer'))));
  }

  isTrusted(url: string): boolean {
    const id = identityOf(url);
    return id !== undefined && (this.configured.has(id) || this.learned.has(id));
  }

  /**
   * The prepare's peers cut to the trusted ones, normalised. Unknown peers trigger one
   * refresh of the coordinator's list first; `dropped` lists what is still unknown after it.
   */
  async vet(participants: readonly string[], selfUrl: string | undefined): Promise<{ trusted: string[]; dropped: string[] }> {
    const self = selfUrl === undefined ? undefined : identityOf(selfUrl);
    const isSelf = (p: string) => self !== undefined && identityOf(p) === self;
    const others = participants.filter((p) => !isSelf(p));
    if (others.some((p) => !this.isTrusted(p))) await this.refresh({ forPrepare: true });
    const trusted: string[] = [];
    const dropped: string[] = [];
    for (const p of others) {
      if (this.isTrusted(p)) trusted.push(readUrl(p)?.normal ?? parseServiceUrl(p, 'peer'));
      else dropped.push(p);
    }
    // The core recognises itself in the list by its own URL, exactly as it listens.
    if (selfUrl !== undefined && participants.some(isSelf)) trusted.push(selfUrl);
    return { trusted, dropped };
  }

  /** Reads the coordinator's participant list; never throws (an unreachable coordinator vouches for nobody new). */
  /**
   * `forPrepare`: a refresh a prepare asked for, held to one per `refreshIntervalMsMin` so a
   * stream of prepares naming strangers cannot turn into a stream of requests. The one at
   * start-up is not counted, so a prepare right after it may still ask once.
   */
  refresh(options: { forPrepare?: boolean } = {}): Promise<void> {
    if (this.refreshing !== undefined) return this.refreshing;
    if (options.forPrepare === true) {
      const now = this.o.now();
      if (now - this.lastRefreshAt < (this.o.refreshIntervalMsMin ?? PEERS_DEFAULTS.refreshIntervalMsMin)) return Promise.resolve();
      this.lastRefreshAt = now;
    }
    this.refreshing = this.fetchLearned().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async fetchLearned(): Promise<void> {
    const url = `${this.coordinators[0] as string}/v1/participants`;
    try {
      const res = await this.o.http.get<{ participants?: unknown }>(url, { timeoutMs: this.o.refreshTimeoutMs ?? PEERS_DEFAULTS.refreshTimeoutMs });
      const list = res.status === 200 ? res.data?.participants : undefined;
      if (!Array.isArray(list)) {
        this.o.logger.warn({ step: 'peers.refresh-failed', url, status: res.status }, 'the coordinator did not list its participants');
        return;
      }
      const urls = list
        .map((p: unknown) => (p !== null && typeof p === 'object' ? (p as { url?: unknown }).url : undefined))
        .filter((u): u is string => typeof u === 'string')
        .map(identityOf)
        .filter((u): u is string => u !== undefined)
        .slice(0, PEERS_DEFAULTS.learnedPeersMax);
      this.learned = new Set(urls);
      this.o.logger.debug({ step: 'peers.refreshed', url, peers: urls }, 'peers vouched for by the coordinator');
    } catch (error) {
      const reason = error instanceof TransportError ? error.message : String(error);
      this.o.logger.warn({ step: 'peers.refresh-failed', url, reason }, 'could not read the coordinator’s participant list');
    }
  }
}

/** URLs read so far; past the bound the memo starts again (a stream of prepares naming strangers cannot grow it). */
const URLS_READ_MAX = 1_024;
const urlsRead = new Map<string, { readonly normal: string; readonly identity: string } | undefined>();

/**
 * A URL in normal form (shared/urls.ts parseServiceUrl) and what it reaches (serviceIdentity), or
 * undefined for one that is not a service URL. Each prepare names the same few URLs, and reading
 * one is two WHATWG URL parses; vetting a prepare read its URLs five times (3% of a busy
 * participant's CPU), so what was read is kept.
 */
function readUrl(url: string): { readonly normal: string; readonly identity: string } | undefined {
  if (urlsRead.has(url)) return urlsRead.get(url);
  let read: { normal: string; identity: string } | undefined;
  try {
    const normal = parseServiceUrl(url, 'peer');
    read = { normal, identity: serviceIdentity(normal) };
  } catch {
    read = undefined;
  }
  if (urlsRead.size >= URLS_READ_MAX) urlsRead.clear();
  urlsRead.set(url, read);
  return read;
}

/** What a URL reaches (shared/urls.ts serviceIdentity), or undefined for one that is not a service URL. */
function identityOf(url: string): string | undefined {
  return readUrl(url)?.identity;
}
