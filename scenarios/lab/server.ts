/**
 * The lab's HTTP server, inside the `twopc cluster` process: the page, its
 * event stream, the saved session, and the supervisor's actions (kill, pause,
 * restart, arm a crash point, run a transfer, step messages).
 *
 * Actions answer only loopback callers, only with --chaos, only with the token
 * when one is set, and only to a JSON POST (a foreign web page cannot send one
 * without a CORS preflight, which this server never grants). Anything else gets
 * a 4xx with the contract's `{"error":{"code","message"}}`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpClient } from '../../shared/http/client.ts';
import type { NodeProcess } from '../harness.ts';
import { LAB_PAGE_HTML } from './page.ts';
import type { LabHub } from './events.ts';
import type { LabObserver } from './observer.ts';
import { STEP_ACTIONS, type LabWire, type StepAction } from './wire.ts';

/** Largest action body read. */
const ACTION_BODY_BYTES_MAX = 16 * 1024;
/** Transfers started from the page and not finished yet; one more gets 429. */
const TRANSFERS_IN_FLIGHT_MAX = 4;
/** How long a transfer from the page may take: in step mode a person delivers each message. */
export const LAB_TRANSFER_TIMEOUT_MS = 30_000;
/** Each call the lab makes to a node for an action (its crash points, arming one). */
const NODE_CALL_TIMEOUT_MS = 5_000;

export interface LabOptions {
  readonly hub: LabHub;
  readonly wire: LabWire;
  readonly chaos: boolean;
  readonly token?: string;
}

/** What the server acts on, known once the cluster exists (the server listens before, so the nodes can link to it). */
export interface LabCluster {
  readonly observer: LabObserver;
  readonly nodes: readonly NodeProcess[];
  /** The body of the demo transfer the page's button runs (the cluster's accounts). */
  readonly transferBody: () => unknown;
}

export class ActionError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

const sendError = (res: http.ServerResponse, e: ActionError) => {
  if (e.status === 413) res.setHeader('connection', 'close');
  sendJson(res, e.status, { error: { code: e.code, message: e.message } });
};

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > ACTION_BODY_BYTES_MAX) {
        // Keep draining, unbuffered, so the caller can read the 413; the connection closes after it.
        req.off('data', onData);
        req.resume();
        reject(new ActionError(413, 'payload_too_large', `an action's body is at most ${ACTION_BODY_BYTES_MAX} bytes`));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (size > ACTION_BODY_BYTES_MAX) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        const v: unknown = JSON.parse(text);
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
        resolve(v as Record<string, unknown>);
      } catch {
        reject(new ActionError(400, 'invalid_json', 'the body must be a JSON object'));
      }
    });
    req.once('error', reject);
  });
}

export class LabServer {
  private server: http.Server | undefined;
  private readonly paused = new Set<string>();
  private readonly busy = new Set<string>();
  private transfersInFlight = 0;
  private readonly http;
  private cluster: LabCluster | undefined;
  url = '';

  constructor(private readonly o: LabOptions) {
    this.http = createHttpClient({ ...(o.token !== undefined && { token: o.token }), timeoutMs: NODE_CALL_TIMEOUT_MS });
  }

  isPaused = (name: string): boolean => this.paused.has(name);

  attach(cluster: LabCluster): void {
    this.cluster = cluster;
  }

  private get c(): LabCluster {
    if (!this.cluster) throw new ActionError(503, 'starting', 'the cluster is still starting');
    return this.cluster;
  }

  async listen(port: number): Promise<string> {
    const server = http.createServer((req, res) => {
      req.on('error', () => undefined);
      res.on('error', () => undefined);
      this.route(req, res).catch((e: unknown) => {
        if (res.headersSent) return void res.destroy();
        sendError(res, e instanceof ActionError ? e : new ActionError(500, 'internal', e instanceof Error ? e.message : String(e)));
      });
    });
    server.on('clientError', (_e, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/lab`;
    return this.url;
  }

  async close(): Promise<void> {
    this.o.hub.close();
    this.http.close();
    if (!this.server) return;
    const closed = new Promise<void>((resolve) => this.server?.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private authorize(req: http.IncomingMessage, action: boolean): void {
    if (!LOOPBACK.has(req.socket.remoteAddress ?? '')) throw new ActionError(403, 'forbidden', 'the lab answers only loopback callers');
    if (this.o.token !== undefined && req.headers.authorization !== `Bearer ${this.o.token}`) {
      throw new ActionError(401, 'unauthorized', 'this cluster has a token: open the lab as /lab#token=<token>');
    }
    if (!action) return;
    if (!this.o.chaos) throw new ActionError(403, 'chaos_off', 'actions need the cluster started with --chaos');
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
      throw new ActionError(415, 'unsupported_media_type', 'actions take a JSON body (content-type: application/json)');
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://lab');
    const p = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (method === 'GET' && (p === '/' || p === '/lab')) {
      res.writeHead(p === '/' ? 302 : 200, p === '/' ? { location: '/lab' } : { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return void res.end(p === '/' ? '' : LAB_PAGE_HTML);
    }
    if (method === 'GET' && p === '/lab/events') {
      this.authorize(req, false);
      if (!this.o.hub.attach(res)) throw new ActionError(503, 'too_many_clients', 'too many browsers are watching this lab');
      return;
    }
    if (method === 'GET' && p === '/lab/session') {
      this.authorize(req, false);
      return sendJson(res, 200, { version: 1, kind: 'twopc-lab-session', lanes: this.o.hub.snapshot().lanes, events: this.o.hub.events() });
    }
    const node = /^\/lab\/api\/nodes\/([^/]+)\/([a-z-]+)$/.exec(p);
    if (method === 'GET' && node?.[2] === 'points') {
      this.authorize(req, false);
      return sendJson(res, 200, await this.points(this.nodeNamed(node[1] as string)));
    }
    if (method !== 'POST') throw new ActionError(p.startsWith('/lab') ? 405 : 404, p.startsWith('/lab') ? 'method_not_allowed' : 'not_found', `no ${method} ${p}`);
    this.authorize(req, true);
    const body = await readJson(req);
    if (node) return sendJson(res, 202, await this.nodeAction(this.nodeNamed(node[1] as string), node[2] as string, body));
    if (p === '/lab/api/transfer') return sendJson(res, 202, this.transfer());
    if (p === '/lab/api/step') return sendJson(res, 200, this.setStep(body));
    const step = /^\/lab\/api\/step\/(\d+)$/.exec(p);
    if (step) return sendJson(res, 200, this.stepOne(Number(step[1]), body));
    throw new ActionError(404, 'not_found', `no action ${p}`);
  }

  private nodeNamed(name: string): NodeProcess {
    const n = this.c.nodes.find((x) => x.name === decodeURIComponent(name));
    if (!n) throw new ActionError(404, 'not_found', `no node ${name}; nodes: ${this.c.nodes.map((x) => x.name).join(', ')}`);
    return n;
  }

  /** The node's crash points, each with when it fires (the node's own list). */
  private async points(n: NodeProcess): Promise<{ points: { name: string; when: string }[] }> {
    if (!this.o.chaos) return { points: [] };
    if (!n.running) throw new ActionError(409, 'node_down', `${n.name} is not running`);
    const res = await this.http.get<{ points?: unknown }>(`${n.url}/v1/chaos/points`).catch(() => undefined);
    if (res?.status !== 200 || !Array.isArray(res.data.points)) throw new ActionError(502, 'node_unreachable', `${n.name} did not list its crash points`);
    return {
      points: res.data.points
        .filter((x): x is { name: string; when?: unknown } => typeof x === 'object' && x !== null && typeof (x as { name?: unknown }).name === 'string')
        .map((x) => ({ name: x.name, when: typeof x.when === 'string' ? x.when : '' })),
    };
  }

  private async nodeAction(n: NodeProcess, action: string, body: Record<string, unknown>): Promise<unknown> {
    if (this.busy.has(n.name)) throw new ActionError(409, 'busy', `${n.name} is still being restarted`);
    const done = (detail: string) => {
      this.o.hub.publish({ type: 'action', action, node: n.name, detail, ok: true });
      void this.c.observer.look();
      return { node: n.name, action, detail };
    };
    switch (action) {
      case 'kill':
        if (!n.running) throw new ActionError(409, 'node_down', `${n.name} is not running`);
        this.paused.delete(n.name);
        await n.kill();
        return done('SIGKILL');
      case 'stop':
        if (!n.running) throw new ActionError(409, 'node_down', `${n.name} is not running`);
        n.pause();
        this.paused.add(n.name);
        return done('SIGSTOP');
      case 'cont':
        n.resume();
        this.paused.delete(n.name);
        return done('SIGCONT');
      case 'restart':
        this.restart(n);
        return { node: n.name, action, detail: 'restarting' };
      case 'crash-at':
        return done(await this.arm(n, body.point));
      default:
        throw new ActionError(404, 'not_found', `no action ${action}; actions: kill, stop, cont, restart, crash-at`);
    }
  }

  /** Restarts in the background: recovery can take a while, and the page follows it through the events. */
  private restart(n: NodeProcess): void {
    this.busy.add(n.name);
    this.paused.delete(n.name);
    this.o.hub.publish({ type: 'action', action: 'restart', node: n.name, detail: 'restarting', ok: true });
    void (async () => {
      try {
        n.resume();
        await n.restart();
        this.o.hub.publish({ type: 'action', action: 'restart', node: n.name, detail: `up again (pid ${n.pid})`, ok: true });
      } catch (e) {
        this.o.hub.publish({ type: 'action', action: 'restart', node: n.name, detail: `restart failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`, ok: false });
      } finally {
        this.busy.delete(n.name);
        void this.c.observer.look();
      }
    })();
  }

  private async arm(n: NodeProcess, point: unknown): Promise<string> {
    if (typeof point !== 'string' || point === '') throw new ActionError(400, 'invalid_request', 'body.point must name a crash point');
    const { points } = await this.points(n);
    if (!points.some((x) => x.name === point)) throw new ActionError(400, 'invalid_request', `${n.name} has no crash point ${point}`);
    const res = await this.http.post<unknown>(`${n.url}/v1/chaos/crash-at`, { point }).catch(() => undefined);
    if (res === undefined || res.status >= 300) throw new ActionError(502, 'node_unreachable', `${n.name} did not arm ${point}`);
    return `armed ${point}`;
  }

  private transfer(): { started: true } {
    if (this.transfersInFlight >= TRANSFERS_IN_FLIGHT_MAX) throw new ActionError(429, 'too_many_transfers', `at most ${TRANSFERS_IN_FLIGHT_MAX} transfers from the page at once`);
    const coordinator = this.c.nodes.find((n) => n.spec.role === 'coordinator') as NodeProcess;
    this.transfersInFlight += 1;
    this.o.hub.publish({ type: 'message', id: 0, from: 'client', to: 'coordinator', stage: 'request', label: 'transfer', txIds: [], fate: 'passed' });
    void (async () => {
      let label = 'no answer';
      let txIds: string[] = [];
      try {
        const body = { ...(this.c.transferBody() as object), timeoutMs: LAB_TRANSFER_TIMEOUT_MS };
        const res = await this.http.post<{ txId?: string; outcome?: string; reason?: string; error?: { message?: string } }>(`${coordinator.url}/v1/transactions`, body, { timeoutMs: LAB_TRANSFER_TIMEOUT_MS + NODE_CALL_TIMEOUT_MS });
        label = res.data.outcome ?? `HTTP ${res.status}${res.data.error?.message ? `: ${res.data.error.message}` : ''}`;
        txIds = res.data.txId ? [res.data.txId] : [];
        this.o.hub.publish({ type: 'action', action: 'transfer', detail: `${res.data.txId ?? ''} ${label}${res.data.reason ? ` (${res.data.reason})` : ''}`.trim(), ok: res.status === 200 });
      } catch (e) {
        this.o.hub.publish({ type: 'action', action: 'transfer', detail: `the coordinator did not answer: ${e instanceof Error ? e.message : String(e)}`, ok: false });
      } finally {
        this.transfersInFlight -= 1;
        this.o.hub.publish({ type: 'message', id: 0, from: 'coordinator', to: 'client', stage: 'response', label, txIds, fate: 'passed' });
        void this.c.observer.look();
      }
    })();
    return { started: true };
  }

  private setStep(body: Record<string, unknown>): { on: boolean } {
    if (typeof body.on !== 'boolean') throw new ActionError(400, 'invalid_request', 'body.on must be true or false');
    this.o.wire.setStep(body.on);
    this.o.hub.publish({ type: 'action', action: 'step', detail: body.on ? 'step mode on' : 'step mode off', ok: true });
    return { on: body.on };
  }

  private stepOne(id: number, body: Record<string, unknown>): { id: number; action: StepAction } {
    const action = body.action;
    if (typeof action !== 'string' || !(STEP_ACTIONS as readonly string[]).includes(action)) {
      throw new ActionError(400, 'invalid_request', `body.action must be one of ${STEP_ACTIONS.join(', ')}`);
    }
    const delayMs = body.delayMs;
    if (delayMs !== undefined && (typeof delayMs !== 'number' || !Number.isInteger(delayMs) || delayMs < 0)) {
      throw new ActionError(400, 'invalid_request', 'body.delayMs must be a non-negative integer');
    }
    if (!this.o.wire.decide(id, action as StepAction, delayMs)) throw new ActionError(404, 'not_found', `message ${id} is not waiting`);
    return { id, action: action as StepAction };
  }
}
