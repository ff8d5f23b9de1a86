/**
 * An in-process fault-injecting HTTP proxy for chaos scenarios.
 *
 * The machines these scenarios run on have no tc netem, so network faults are
 * injected here instead: the coordinator is told a participant lives at the
 * proxy's URL, and the proxy forwards to the real participant (or, for outcome
 * inquiries, a participant is pointed at a proxy in front of the coordinator).
 * For each request the proxy walks its rules in order and may drop, duplicate,
 * delay, hold or refuse it. Every random choice comes from a seeded PRNG, so a
 * run with the same seed and the same request order makes the same choices.
 *
 * Only node:http is used. Bodies are buffered (bounded) so that a rule can
 * match on the body and a request can be sent twice. docs/fault-proxy.md says
 * what each fault models and what a 2PC caller must conclude from it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPrng } from './prng.ts';

export const FAULT_KINDS = [
  'drop-request',
  'drop-response',
  'duplicate',
  'delay',
  'reorder',
  'hang',
  'error-503',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const ROUTE_LABELS = ['prepare', 'commit', 'abort', 'outcome', 'inquiry', 'other'] as const;
export type RouteLabel = (typeof ROUTE_LABELS)[number];

export interface FaultMatch {
  /** HTTP method, compared case-insensitively. */
  readonly method?: string;
  /** Prefix of the request's path (query string included), e.g. '/v1/2pc/commit'. */
  readonly pathPrefix?: string;
  /** Substring of the UTF-8 request body, e.g. a txId. */
  readonly bodyIncludes?: string;
}

export interface FaultRule {
  readonly match: FaultMatch;
  readonly fault: FaultKind;
  /** Chance in [0, 1] that a matching request gets this fault. */
  readonly probability: number;
  /**
   * [min, max] milliseconds, both included: the hold time for delay and reorder,
   * and the gap before the second copy for duplicate. Ignored by other faults.
   */
  readonly delayMs?: readonly [number, number];
}

export interface FaultProxyOptions {
  /** Base URL of the real service, e.g. http://127.0.0.1:7001 (http only). */
  readonly target: string;
  readonly host?: string;
  readonly port?: number;
  readonly seed: number;
  readonly rules?: readonly FaultRule[];
  /** Largest request or response body forwarded; a larger request gets 413, a larger response 502. */
  readonly maxBodyBytes?: number;
  /** Requests held at once (delayed, reordered, hung, or a duplicate's pending copy); past it, forward normally. */
  readonly maxHeldRequests?: number;
  /** How long the target may stay silent on a forwarded request before the proxy gives up with 502. */
  readonly upstreamTimeoutMs?: number;
  /** A hung request is released (its socket destroyed) after this long even if nobody heals the proxy. */
  readonly maxHangMs?: number;
  /**
   * Sees every request and its answer, and may decide their fate in place of the rules: the
   * lab's step mode (scenarios/lab) parks each message until a person delivers or drops it.
   */
  readonly tap?: ProxyTap;
}

/** A request as the tap sees it. */
export interface TappedRequest {
  readonly method: string;
  readonly path: string;
  readonly route: RouteLabel;
  /** For a batch, the types of the messages it carries. */
  readonly carries: readonly string[];
  readonly body: Buffer;
}

/** What the tap wants done with a request: `rules` leaves it to the proxy's rules as usual. */
export type TapVerdict =
  | { readonly action: 'rules' | 'deliver' | 'drop' | 'duplicate' }
  | { readonly action: 'delay'; readonly delayMs: number };

export interface ProxyTap {
  request(request: TappedRequest): Promise<TapVerdict>;
  /** The target's answer, before the caller gets it; `drop` resets the caller's connection instead. */
  response(request: TappedRequest, status: number, body: Buffer): Promise<'deliver' | 'drop'>;
}

export type FaultCounts = Record<FaultKind, number>;

export interface RouteStats {
  /** Requests that arrived from clients. */
  received: number;
  /** Requests sent to the target; a duplicate counts twice. */
  forwarded: number;
  /** Forwards that got no usable answer from the target (unreachable, reset, timeout, over-size). */
  upstreamErrors: number;
  /** Faults injected, by kind. */
  faults: FaultCounts;
}

export interface FaultProxyStats extends RouteStats {
  /** Requests refused with 413 because their body exceeded maxBodyBytes. */
  tooLarge: number;
  /** Holding faults not injected because maxHeldRequests were already held. */
  overCapacity: number;
  /** Hung requests released by heal(), close() or maxHangMs. */
  hangsReleased: number;
  /** Requests held right now. */
  held: number;
  routes: Record<RouteLabel, RouteStats>;
}

/** One request's fate, in arrival order; `fault: 'none'` means forwarded untouched. */
export interface FaultDecision {
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  readonly route: RouteLabel;
  readonly fault: FaultKind | 'none';
  readonly delayMs?: number;
  /** Set when a holding fault was chosen but the hold limit turned it into a plain forward. */
  readonly overCapacity?: boolean;
}

export interface FaultProxy {
  readonly url: string;
  readonly port: number;
  /** Replaces the rules; the PRNG keeps its position, so the run stays replayable. */
  setRules(rules: readonly FaultRule[]): void;
  stats(): FaultProxyStats;
  /** The most recent decisions (at most HISTORY_MAX), oldest first. */
  history(): readonly FaultDecision[];
  /** Clears the rules and releases hung requests; delayed ones still arrive when their hold ends. */
  heal(): void;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_MAX_HELD_REQUESTS = 1_000;
const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_HANG_MS = 120_000;
/** Longest hold a rule may ask for, so a typo cannot park a request for hours. */
const RULE_DELAY_MAX_MS = 60_000;
const RULES_MAX = 100;
const HISTORY_MAX = 1_000;
/** Sockets the proxy keeps open to its target. */
const UPSTREAM_SOCKETS_MAX = 256;

/** Default spreads: reorder's is wide so that later requests overtake the held one. */
const DEFAULT_DELAY_MS: Readonly<Record<'delay' | 'reorder' | 'duplicate', readonly [number, number]>> = {
  delay: [20, 200],
  reorder: [0, 1_000],
  duplicate: [1, 20],
};

/** Headers that describe one hop's connection and must not be passed on (RFC 9110 section 7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'content-length',
]);

/** Labels a request by the 2PC step its path carries, for per-route stats. */
export function routeOf(method: string, url: string): RouteLabel {
  let path = url.split('?')[0] ?? '';
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  if (path === '/v1/2pc/prepare') return 'prepare';
  if (path === '/v1/2pc/commit') return 'commit';
  if (path === '/v1/2pc/abort') return 'abort';
  // Participants' outcome inquiries, one id (GET) or batched (POST /v1/outcomes).
  if (/^\/v1\/transactions\/[^/]+\/outcome$/.test(path) || path === '/v1/outcomes') return 'outcome';
  if (/^\/v1\/2pc\/transactions\/[^/]+\/inquiry$/.test(path)) return 'inquiry';
  // A peer asking another participant for a transaction's state (cooperative termination).
  if (method.toUpperCase() === 'GET' && /^\/v1\/2pc\/transactions\/[^/?]+$/.test(path)) return 'inquiry';
  return 'other';
}

/**
 * The protocol messages a batch request (POST /v1/2pc/batch) carries, by type, in order; empty
 * for any other request or a body that is not a batch. A rule for a single route
 * (`pathPrefix: '/v1/2pc/commit'`) also hits a batch carrying that message, and the batch is
 * counted under its first message's route: a batch is lost or delayed whole, as its messages are.
 */
export function batchCarries(method: string, url: string, body: Buffer): string[] {
  if (method.toUpperCase() !== 'POST' || (url.split('?')[0] ?? '').replace(/\/$/, '') !== '/v1/2pc/batch') return [];
  try {
    const messages = (JSON.parse(body.toString('utf8')) as { messages?: unknown }).messages;
    if (!Array.isArray(messages)) return [];
    return messages.map((m) => (m as { type?: unknown } | null)?.type).filter((t): t is string => typeof t === 'string');
  } catch {
    return [];
  }
}

/** Throws a RangeError naming the rule and field when a rule cannot be applied as written. */
export function validateRules(rules: readonly FaultRule[]): FaultRule[] {
  if (!Array.isArray(rules)) throw new RangeError('rules must be an array');
  if (rules.length > RULES_MAX) throw new RangeError(`at most ${RULES_MAX} rules, got ${rules.length}`);
  return rules.map((rule, i) => {
    const where = `rules[${i}]`;
    if (typeof rule !== 'object' || rule === null) throw new RangeError(`${where} must be an object`);
    if (!(FAULT_KINDS as readonly string[]).includes(rule.fault)) {
      throw new RangeError(`${where}.fault must be one of ${FAULT_KINDS.join(', ')}, got ${String(rule.fault)}`);
    }
    const p = rule.probability;
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
      throw new RangeError(`${where}.probability must be a number in [0, 1], got ${String(p)}`);
    }
    if (typeof rule.match !== 'object' || rule.match === null) throw new RangeError(`${where}.match must be an object`);
    for (const key of ['method', 'pathPrefix', 'bodyIncludes'] as const) {
      const value = rule.match[key];
      if (value !== undefined && typeof value !== 'string') throw new RangeError(`${where}.match.${key} must be a string`);
    }
    if (rule.delayMs !== undefined) {
      const [min, max] = Array.isArray(rule.delayMs) ? rule.delayMs : [];
      const ok =
        rule.delayMs.length === 2 &&
        Number.isInteger(min) &&
        Number.isInteger(max) &&
        (min as number) >= 0 &&
        (min as number) <= (max as number) &&
        (max as number) <= RULE_DELAY_MAX_MS;
      if (!ok) {
        throw new RangeError(`${where}.delayMs must be [min, max] integers with 0 <= min <= max <= ${RULE_DELAY_MAX_MS}`);
      }
    }
    return rule;
  });
}

function emptyFaultCounts(): FaultCounts {
  return Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as FaultCounts;
}
function emptyRouteStats(): RouteStats {
  return { received: 0, forwarded: 0, upstreamErrors: 0, faults: emptyFaultCounts() };
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function stripHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  // Headers named in Connection are hop-by-hop too.
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

const holdsRequest = (fault: FaultKind): boolean =>
  fault === 'delay' || fault === 'reorder' || fault === 'hang' || fault === 'duplicate';

interface Upstream {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

interface Incoming {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly route: RouteLabel;
  /** For a batch request, the types of the messages it carries (see batchCarries). */
  readonly carries: readonly string[];
}

interface Held {
  readonly timer: NodeJS.Timeout;
  /** Set for a hung request: the answer that will never come. */
  readonly res?: http.ServerResponse;
}

function sendJson(res: http.ServerResponse, status: number, code: string, message: string): void {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

type BodyResult = { kind: 'ok'; body: Buffer } | { kind: 'too-large' } | { kind: 'aborted' };

function readBody(req: http.IncomingMessage, maxBytes: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBytes) {
      req.resume();
      resolve({ kind: 'too-large' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: BodyResult) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off('data', onData);
        // Keep draining so the 413 can be read; the socket closes after it.
        req.resume();
        settle({ kind: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => settle({ kind: 'ok', body: Buffer.concat(chunks, size) }));
    req.once('close', () => settle({ kind: 'aborted' }));
  });
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:') throw new RangeError(`target must be an http:// URL, got ${options.target}`);
  const targetHost = target.hostname.replace(/^\[(.*)\]$/, '$1');
  const targetPort = target.port === '' ? 80 : Number(target.port);
  const targetBasePath = target.pathname.replace(/\/+$/, '');
  const host = options.host ?? '127.0.0.1';
  const maxBodyBytes = positiveInt('maxBodyBytes', options.maxBodyBytes, DEFAULT_MAX_BODY_BYTES);
  const maxHeld = positiveInt('maxHeldRequests', options.maxHeldRequests, DEFAULT_MAX_HELD_REQUESTS);
  const upstreamTimeoutMs = positiveInt('upstreamTimeoutMs', options.upstreamTimeoutMs, DEFAULT_UPSTREAM_TIMEOUT_MS);
  const maxHangMs = positiveInt('maxHangMs', options.maxHangMs, DEFAULT_MAX_HANG_MS);

  const prng = createPrng(options.seed);
  let rules = validateRules(options.rules ?? []);
  const totals = emptyRouteStats();
  const routes = Object.fromEntries(ROUTE_LABELS.map((r) => [r, emptyRouteStats()])) as Record<RouteLabel, RouteStats>;
  const extra = { tooLarge: 0, overCapacity: 0, hangsReleased: 0 };
  const decisions: FaultDecision[] = [];
  let seq = 0;
  const held = new Map<number, Held>();
  let heldSeq = 0;
  const inFlight = new Set<http.ClientRequest>();
  let closed = false;
  let closing: Promise<void> | undefined;

  const agent = new http.Agent({ keepAlive: true, maxSockets: UPSTREAM_SOCKETS_MAX });

  const bump = (route: RouteLabel, field: 'received' | 'forwarded' | 'upstreamErrors') => {
    totals[field] += 1;
    routes[route][field] += 1;
  };
  const countFault = (route: RouteLabel, fault: FaultKind) => {
    totals.faults[fault] += 1;
    routes[route].faults[fault] += 1;
  };

  const rememberDecision = (decision: FaultDecision) => {
    decisions.push(decision);
    if (decisions.length > HISTORY_MAX) decisions.splice(0, decisions.length - HISTORY_MAX);
  };

  /** Walks the rules in order; the first matching rule whose roll succeeds picks the fault. */
  const decide = (request: Incoming): { fault: FaultKind | 'none'; delayMs?: number } => {
    let bodyText: string | undefined;
    for (const rule of rules) {
      const { method, pathPrefix, bodyIncludes } = rule.match;
      if (method !== undefined && method.toUpperCase() !== request.method.toUpperCase()) continue;
      if (pathPrefix !== undefined && !request.url.startsWith(pathPrefix) && !request.carries.some((t) => `/v1/2pc/${t}`.startsWith(pathPrefix))) continue;
      if (bodyIncludes !== undefined) {
        bodyText ??= request.body.toString('utf8');
        if (!bodyText.includes(bodyIncludes)) continue;
      }
      if (prng.next() >= rule.probability) continue;
      if (rule.fault === 'delay' || rule.fault === 'reorder' || rule.fault === 'duplicate') {
        const [min, max] = rule.delayMs ?? DEFAULT_DELAY_MS[rule.fault];
        return { fault: rule.fault, delayMs: prng.int(min, max) };
      }
      return { fault: rule.fault };
    }
    return { fault: 'none' };
  };

  /** Sends one copy of the request to the target and buffers its answer. */
  const forward = (request: Incoming): Promise<Upstream> => {
    bump(request.route, 'forwarded');
    return new Promise<Upstream>((resolve, reject) => {
      const headers = stripHopByHop(request.headers);
      headers.host = target.host;
      headers['content-length'] = request.body.length;
      const upstreamReq = http.request({
        agent,
        host: targetHost,
        port: targetPort,
        method: request.method,
        path: targetBasePath + request.url,
        headers,
      });
      inFlight.add(upstreamReq);
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        inFlight.delete(upstreamReq);
        if (!closed) bump(request.route, 'upstreamErrors');
        reject(error);
      };
      upstreamReq.setTimeout(upstreamTimeoutMs, () => {
        upstreamReq.destroy(new Error(`no answer within ${upstreamTimeoutMs} ms`));
      });
      upstreamReq.on('error', fail);
      upstreamReq.on('response', (upRes) => {
        const chunks: Buffer[] = [];
        let size = 0;
        upRes.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBodyBytes) {
            upRes.destroy();
            fail(new Error(`response body over ${maxBodyBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        upRes.on('error', fail);
        upRes.on('end', () => {
          if (settled) return;
          settled = true;
          inFlight.delete(upstreamReq);
          resolve({ status: upRes.statusCode ?? 502, headers: upRes.headers, body: Buffer.concat(chunks, size) });
        });
        upRes.on('close', () => fail(new Error('target closed the connection mid-response')));
      });
      upstreamReq.end(request.body);
    });
  };

  const answer = (res: http.ServerResponse, upstream: Upstream) => {
    if (res.destroyed || res.headersSent) return;
    const headers = stripHopByHop(upstream.headers);
    headers['content-length'] = upstream.body.length;
    res.writeHead(upstream.status, headers);
    res.end(upstream.body);
  };

  /** Forwards and answers with the target's reply, or 502 when the target gave none. */
  const relay = (request: Incoming, res: http.ServerResponse): void => {
    forward(request).then(
      (upstream) => {
        if (options.tap === undefined) return answer(res, upstream);
        const tapped = tappedOf(request);
        options.tap.response(tapped, upstream.status, upstream.body).then(
          (fate) => (fate === 'drop' ? res.destroy() : answer(res, upstream)),
          () => res.destroy(),
        );
      },
      (error: Error) => {
        if (closed) return;
        sendJson(res, 502, 'bad_gateway', `fault proxy could not reach ${options.target}: ${error.message}`);
      },
    );
  };

  /**
   * Runs `fn` after `ms`, counted against maxHeldRequests and cancelled by close().
   * Held timers stay ref'd on purpose: close() clears them, so a leak would show
   * up as a process that does not exit rather than as a silently lost request.
   */
  const hold = (ms: number, fn: () => void): void => {
    const id = ++heldSeq;
    const timer = setTimeout(() => {
      held.delete(id);
      if (!closed) fn();
    }, ms);
    held.set(id, { timer });
  };

  const releaseHang = (id: number) => {
    const entry = held.get(id);
    if (entry?.res === undefined) return;
    held.delete(id);
    clearTimeout(entry.timer);
    extra.hangsReleased += 1;
    entry.res.destroy();
  };

  const hang = (res: http.ServerResponse): void => {
    const id = ++heldSeq;
    const timer = setTimeout(() => releaseHang(id), maxHangMs);
    held.set(id, { timer, res });
    // A caller that gives up frees its slot; it is not counted as released by the proxy.
    res.once('close', () => {
      const entry = held.get(id);
      if (entry === undefined) return;
      clearTimeout(entry.timer);
      held.delete(id);
    });
  };

  const tappedOf = (request: Incoming): TappedRequest => ({
    method: request.method,
    path: request.url,
    route: request.route,
    carries: request.carries,
    body: request.body,
  });

  /** With a tap, the tap's verdict stands in for the rules' roll. */
  const handleTapped = (request: Incoming, res: http.ServerResponse): void => {
    if (options.tap === undefined) return handle(request, res);
    options.tap.request(tappedOf(request)).then(
      (verdict) => {
        if (closed) return;
        if (verdict.action === 'rules') return handle(request, res);
        const fault = verdict.action === 'deliver' ? 'none' : verdict.action === 'drop' ? 'drop-request' : verdict.action;
        handle(request, res, { fault, ...(verdict.action === 'delay' ? { delayMs: verdict.delayMs } : {}) });
      },
      () => res.destroy(),
    );
  };

  const handle = (request: Incoming, res: http.ServerResponse, chosen?: { fault: FaultKind | 'none'; delayMs?: number }): void => {
    let choice = chosen ?? decide(request);
    let overCapacity = false;
    if (choice.fault !== 'none' && holdsRequest(choice.fault) && held.size >= maxHeld) {
      overCapacity = true;
      extra.overCapacity += 1;
      choice = { fault: 'none' };
    }
    rememberDecision({
      seq: ++seq,
      method: request.method,
      path: request.url,
      route: request.route,
      fault: choice.fault,
      ...(choice.delayMs !== undefined ? { delayMs: choice.delayMs } : {}),
      ...(overCapacity ? { overCapacity } : {}),
    });
    if (choice.fault !== 'none') countFault(request.route, choice.fault);

    switch (choice.fault) {
      case 'none':
        relay(request, res);
        return;
      case 'error-503':
        sendJson(res, 503, 'unavailable', 'injected by proxy');
        return;
      case 'drop-request':
        res.destroy();
        return;
      case 'drop-response':
        forward(request).then(
          () => res.destroy(),
          () => res.destroy(),
        );
        return;
      case 'delay':
      case 'reorder':
        // The request is forwarded even if its caller gives up meanwhile: a late
        // message still arrives in a real network, and that is the case to test.
        hold(choice.delayMs ?? 0, () => relay(request, res));
        return;
      case 'duplicate':
        relay(request, res);
        hold(choice.delayMs ?? 0, () => {
          forward(request).catch(() => undefined);
        });
        return;
      case 'hang':
        hang(res);
        return;
    }
  };

  const server = http.createServer((req, res) => {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    // A batch is counted under the route of its first message, known once its body is read.
    const batch = method.toUpperCase() === 'POST' && (url.split('?')[0] ?? '').replace(/\/$/, '') === '/v1/2pc/batch';
    const route = routeOf(method, url);
    if (!batch) bump(route, 'received');
    if (closed) {
      res.destroy();
      return;
    }
    void readBody(req, maxBodyBytes).then((result) => {
      if (closed || result.kind === 'aborted') return;
      if (result.kind === 'too-large') {
        if (batch) bump(route, 'received');
        extra.tooLarge += 1;
        res.setHeader('connection', 'close');
        sendJson(res, 413, 'payload_too_large', `fault proxy forwards bodies up to ${maxBodyBytes} bytes`);
        return;
      }
      const carries = batch ? batchCarries(method, url, result.body) : [];
      const first = carries[0];
      const routed = first === 'prepare' || first === 'commit' || first === 'abort' ? first : route;
      if (batch) bump(routed, 'received');
      handleTapped({ method, url, headers: req.headers, body: result.body, route: routed, carries }, res);
    }).catch(() => {
      // A bug here must not leave the caller waiting forever; it sees a reset instead.
      res.destroy();
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const heal = (): void => {
    rules = [];
    for (const [id, entry] of [...held]) if (entry.res !== undefined) releaseHang(id);
  };

  const close = (): Promise<void> => {
    closing ??= (async () => {
      closed = true;
      rules = [];
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const [id, entry] of [...held]) {
        if (entry.res !== undefined) releaseHang(id);
        else clearTimeout(entry.timer);
      }
      held.clear();
      for (const upstreamReq of inFlight) upstreamReq.destroy();
      inFlight.clear();
      server.closeAllConnections();
      agent.destroy();
      await stopped;
    })();
    return closing;
  };

  return {
    url,
    port,
    setRules: (next) => {
      rules = validateRules(next);
    },
    stats: () => ({
      ...structuredClone(totals),
      ...extra,
      held: held.size,
      routes: structuredClone(routes),
    }),
    history: () => decisions.slice(),
    heal,
    close,
  };
}
