/**
 * A real coordinator (file WAL in a temp dir, listening on 127.0.0.1:0) whose
 * participants are msw handlers at http://p1.test and http://p2.test. Every call
 * a participant receives is recorded, so tests assert what went over the wire.
 *
 * The fakes serve the batch route too (POST /v1/2pc/batch): each message in a
 * batch gets the same behaviour as alone and is recorded as its own call, so a
 * test runs unchanged with batching on or off. A behaviour that drops the
 * connection (HttpResponse.error()) drops its whole batch, as a real one would.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { http, HttpResponse } from 'msw';
import type { SetupServer } from 'msw/node';
import { startCoordinator, type RunningCoordinator, type StartCoordinatorOptions } from '../../../coordinator/main.ts';
import { silentLogger } from '../../../shared/logger.ts';

/** A JSON answer; the tests check its shape with assertions, not with types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export const PARTICIPANTS = { p1: 'http://p1.test', p2: 'http://p2.test' } as const;
export type Name = keyof typeof PARTICIPANTS;
export type Call = { participant: Name; action: 'prepare' | 'commit' | 'abort'; body: Record<string, unknown> };

/** A participant's behaviour per action; the default votes yes and acks. */
export type Behaviour = Partial<Record<Call['action'], (body: Record<string, unknown>, nth: number) => Response | Promise<Response>>>;

export const yes = () => HttpResponse.json({ vote: 'yes' });
export const ack = (body: Record<string, unknown>, state = 'committed') => HttpResponse.json({ txId: body.txId, state });

export class Cluster {
  private constructor(
    readonly coordinator: RunningCoordinator,
    readonly dir: string,
    /** Every call the participants received, in arrival order. */
    readonly calls: readonly Call[],
  ) {}

  /** Installs the participants' behaviour in msw and starts a coordinator on a fresh temp dir (or `dir`). */
  static async start(
    server: SetupServer,
    behaviour: Partial<Record<Name, Behaviour>> = {},
    options: Partial<StartCoordinatorOptions> & { dir?: string } = {},
  ): Promise<Cluster> {
    const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-coord-http-'));
    const calls: Call[] = [];
    const counts = new Map<string, number>();
    const answer = async (name: Name, action: Call['action'], body: Record<string, unknown>): Promise<Response> => {
      calls.push({ participant: name, action, body });
      const key = `${name}/${action}`;
      const nth = (counts.get(key) ?? 0) + 1;
      counts.set(key, nth);
      const custom = behaviour[name]?.[action];
      if (custom) return custom(body, nth);
      return action === 'prepare' ? yes() : ack(body, action === 'commit' ? 'committed' : 'aborted');
    };
    const handlers = (Object.keys(PARTICIPANTS) as Name[]).flatMap((name) => [
      ...(['prepare', 'commit', 'abort'] as const).map((action) =>
        http.post(`${PARTICIPANTS[name]}/v1/2pc/${action}`, async ({ request }) => answer(name, action, (await request.json()) as Record<string, unknown>)),
      ),
      http.post(`${PARTICIPANTS[name]}/v1/2pc/batch`, async ({ request }) => {
        const { messages } = (await request.json()) as { messages: { type: Call['action']; body: Record<string, unknown> }[] };
        const answers = await Promise.all(messages.map((m) => answer(name, m.type, m.body)));
        if (answers.some((r) => r.type === 'error')) return HttpResponse.error();
        const replies = await Promise.all(answers.map(async (r, i) => ({ txId: messages[i]?.body.txId, status: r.status, body: await r.json() })));
        return HttpResponse.json({ replies });
      }),
    ]);
    server.use(...handlers);
    const coordinator = await startCoordinator({
      port: 0,
      dataDir: dir,
      participants: PARTICIPANTS,
      fsync: 'always',
      logger: silentLogger(),
      onFatal: (error) => {
        throw error;
      },
      ...options,
      core: { prepareTimeoutMs: 400, replyWaitMs: 1_000, resendBaseMs: 20, resendMaxMs: 100, ...options.core },
    });
    return new Cluster(coordinator, dir, calls);
  }

  callsTo(participant: Name, action?: Call['action']): Call[] {
    return this.calls.filter((c) => c.participant === participant && (action === undefined || c.action === action));
  }

  async post(pathname: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
    const res = await fetch(this.coordinator.url + pathname, {
      method: 'POST',
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() };
  }

  async get(pathname: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
    const res = await fetch(this.coordinator.url + pathname, { headers });
    return { status: res.status, body: await res.json() };
  }

  /** Polls GET until `done` holds, at most `attempts` times, 25 ms apart; returns the last answer. */
  async waitFor(pathname: string, done: (body: Json) => boolean, attempts = 200): Promise<Json> {
    let last: Json;
    for (let i = 0; i < attempts; i++) {
      last = (await this.get(pathname)).body;
      if (done(last)) return last;
      await new Promise((r) => setTimeout(r, 25));
    }
    return last;
  }

  /** Stops the coordinator; keeps the directory when a restart follows. */
  async close(keepDir = false): Promise<void> {
    await this.coordinator.close();
    if (!keepDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export const transfer = (from: Name = 'p1', to: Name = 'p2') => ({
  branches: [
    { participant: from, ops: [{ op: 'add', key: 'alice', amount: -10, min: 0 }] },
    { participant: to, ops: [{ op: 'add', key: 'bob', amount: 10 }] },
  ],
});
