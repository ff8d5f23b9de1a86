/**
 * Real participants for tests: port 0 on 127.0.0.1, a temp WAL directory,
 * a silent logger, and fail-stop captured instead of exiting. Plus a stub
 * coordinator whose outcome endpoint answers what the test says.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { finishApp, listen, type Listening } from '../../shared/http/app.ts';
import { silentLogger } from '../../shared/logger.ts';
import { createParticipant, type CreateParticipantOptions, type Participant } from '../../participant/library.ts';
import { startParticipant, type RunningParticipant, type StartParticipantOptions } from '../../participant/main.ts';

export async function tempDir(prefix: string): Promise<string> {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), `twopc-part-${prefix}-`));
}

/** Collects everything a test starts, and tears it all down in reverse order. */
export class Cleanup {
  private readonly steps: (() => Promise<unknown>)[] = [];
  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await step().catch(() => undefined);
  }
}

export interface TestParticipant extends RunningParticipant {
  readonly dataDir: string;
  readonly fatal: unknown[];
}

export async function participant(
  cleanup: Cleanup,
  options: Partial<StartParticipantOptions> & { coordinatorUrl: string; dataDir?: string },
): Promise<TestParticipant> {
  const dataDir = options.dataDir ?? (await tempDir('p'));
  if (options.dataDir === undefined) cleanup.add(() => fs.promises.rm(dataDir, { recursive: true, force: true }));
  const fatal: unknown[] = [];
  const p = await startParticipant({
    name: 'p',
    port: 0,
    fsync: 'group',
    logger: silentLogger(),
    onFatal: (e) => fatal.push(e),
    ...options,
    dataDir,
  });
  cleanup.add(() => p.close());
  return { ...p, close: () => p.close(), dataDir, fatal };
}

/**
 * A participant embedded as a library: its router in a bare host express app on port 0, started with
 * that app's URL, and `name: 'p'` in a temp directory unless the options say otherwise. `configure`
 * sets the host app up before the router is mounted (its own settings, as a host app may have).
 */
export async function embeddedParticipant(
  cleanup: Cleanup,
  options: Partial<CreateParticipantOptions> & { coordinatorUrl: string },
  configure: (app: express.Express) => void = () => undefined,
): Promise<{ participant: Participant; url: string }> {
  const dataDir = options.dataDir ?? (await tempDir('embedded'));
  if (options.dataDir === undefined) cleanup.add(() => fs.promises.rm(dataDir, { recursive: true, force: true }));
  const participant = createParticipant({ name: 'p', onFatal: () => undefined, ...options, dataDir });
  const app = express();
  configure(app);
  app.use(participant.router);
  finishApp(app);
  const listening = await listen(app, 0);
  cleanup.add(() => participant.stop());
  cleanup.add(() => listening.close());
  await participant.start({ selfUrl: listening.url });
  return { participant, url: listening.url };
}

/**
 * A coordinator stand-in: `outcomes` is what GET /v1/transactions/:txId/outcome answers ('pending' when unset);
 * `vouches` is the participant list GET /v1/participants gives, the peers a participant will trust.
 */
export async function stubCoordinator(cleanup: Cleanup): Promise<Listening & { outcomes: Map<string, string>; inquiries: string[]; vouches: string[] }> {
  const outcomes = new Map<string, string>();
  const inquiries: string[] = [];
  const vouches: string[] = [];
  const app = express();
  app.get('/v1/participants', (_req, res) => {
    res.json({ participants: vouches.map((url, i) => ({ name: `p${i + 1}`, url })) });
  });
  app.get('/v1/transactions/:txId/outcome', (req, res) => {
    inquiries.push(req.params.txId);
    res.json({ outcome: outcomes.get(req.params.txId) ?? 'pending' });
  });
  app.post('/v1/outcomes', express.json(), (req, res) => {
    const txIds = (req.body as { txIds: string[] }).txIds;
    inquiries.push(...txIds);
    res.json({ outcomes: Object.fromEntries(txIds.map((id) => [id, outcomes.get(id) ?? 'pending'])) });
  });
  const l = await listen(app, 0);
  cleanup.add(() => l.close());
  return Object.assign(l, { outcomes, inquiries, vouches });
}

/** A URL nothing listens on: a port that was free a moment ago. */
export async function deadUrl(): Promise<string> {
  const l = await listen(express(), 0);
  await l.close();
  return l.url;
}

export async function json<T = Record<string, unknown>>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as T };
}

/** Polls until `probe` returns a value, at most `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
