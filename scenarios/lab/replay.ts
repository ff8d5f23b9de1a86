/**
 * `twopc scenario run replay --file SESSION.json`: plays a lab session (saved
 * from the page, `GET /lab/session`) again on a fresh cluster with its lab, through
 * the lab's own API: the same transfers, kills, pauses, restarts, armed crash
 * points and step-mode switches, in order, and each step-mode decision applied
 * to the next waiting message of the same kind (sender, receiver, request or
 * answer, label). Checks: every decision found its message, and the transfers
 * ended as they did in the session.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLabCluster, type LabCluster } from '../cluster.ts';
import { call } from '../kit.ts';
import { check, result, type ScenarioCheck, type ScenarioContext, type ScenarioResult } from '../scenario.ts';
import { LAB_EVENTS_BUFFERED_MAX, type NodeState, type Stamped } from './events.ts';

/** Largest session file read. */
const SESSION_BYTES_MAX = 16 * 1024 * 1024;
/** How long the replay waits for the cluster to reach what the session showed next (a message, a node's state, a transfer's end). */
const REACH_WAIT_MS = 60_000;
const POLL_MS = 50;

type Step =
  | { readonly kind: 'action'; readonly path: string; readonly body: Record<string, unknown>; readonly node?: string; readonly nodeWas?: NodeState }
  | { readonly kind: 'transfer' }
  | { readonly kind: 'decide'; readonly from: string; readonly to: string; readonly stage: string; readonly label: string; readonly action: string };

export interface Session {
  readonly lanes: readonly string[];
  readonly events: readonly Stamped[];
}

export function readSession(file: string): Session {
  const stat = fs.statSync(file);
  if (stat.size > SESSION_BYTES_MAX) throw new Error(`${file} is over ${SESSION_BYTES_MAX} bytes: not a lab session`);
  const v = JSON.parse(fs.readFileSync(file, 'utf8')) as { kind?: unknown; version?: unknown; lanes?: unknown; events?: unknown };
  if (v.kind !== 'twopc-lab-session' || v.version !== 1 || !Array.isArray(v.lanes) || !Array.isArray(v.events)) {
    throw new Error(`${file} is not a lab session (saved with the lab's "save session log")`);
  }
  if (v.events.length > LAB_EVENTS_BUFFERED_MAX) throw new Error(`${file} has more than ${LAB_EVENTS_BUFFERED_MAX} events`);
  return { lanes: v.lanes as string[], events: v.events as Stamped[] };
}

const FATES: Record<string, string> = { delivered: 'deliver', dropped: 'drop', duplicated: 'duplicate', delayed: 'delay' };
const NODE_ACTIONS = new Set(['kill', 'stop', 'cont', 'restart']);

/** The session as a list of things to do, and the transfers' outcomes it saw. */
export function scriptOf(session: Session): { steps: Step[]; outcomes: string[] } {
  const steps: Step[] = [];
  const outcomes: string[] = [];
  const nodeState = new Map<string, NodeState>();
  for (const e of session.events) {
    if (e.type === 'node') nodeState.set(e.node.name, e.node.state);
    else if (e.type === 'message' && e.from === 'client' && e.label === 'transfer') steps.push({ kind: 'transfer' });
    else if (e.type === 'message' && FATES[e.fate] !== undefined) {
      steps.push({ kind: 'decide', from: e.from, to: e.to, stage: e.stage, label: e.label, action: FATES[e.fate] as string });
    } else if (e.type === 'action' && e.ok) {
      if (e.action === 'transfer') outcomes.push(/ (committed|aborted)\b/.exec(e.detail)?.[1] ?? 'no answer');
      else if (e.action === 'step') steps.push({ kind: 'action', path: '/lab/api/step', body: { on: e.detail.endsWith(' on') } });
      else if (e.action === 'crash-at' && e.node) steps.push({ kind: 'action', path: `/lab/api/nodes/${e.node}/crash-at`, body: { point: e.detail.replace(/^armed /, '') }, node: e.node });
      else if (NODE_ACTIONS.has(e.action) && e.node && !(e.action === 'restart' && e.detail !== 'restarting')) {
        const was = nodeState.get(e.node);
        steps.push({ kind: 'action', path: `/lab/api/nodes/${e.node}/${e.action}`, body: {}, node: e.node, ...(was !== undefined && { nodeWas: was }) });
      }
    } else if (e.type === 'action' && !e.ok && e.action === 'transfer') outcomes.push('no answer');
  }
  return { steps, outcomes };
}

async function until<T>(probe: () => T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + REACH_WAIT_MS;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`the replay did not reach: ${what} (within ${REACH_WAIT_MS} ms)`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function play(lc: LabCluster, steps: readonly Step[], ctx: ScenarioContext): Promise<{ decided: number; missed: string[] }> {
  const base = lc.lab.url.replace(/\/lab$/, '');
  const post = async (p: string, body: Record<string, unknown>) => {
    const r = await call('POST', `${base}${p}`, body);
    if (!r.ok || r.status >= 300) throw new Error(`${p} refused: ${JSON.stringify(r.ok ? r.body : r.message)}`);
  };
  const nodeIs = (name: string, state: NodeState) => lc.lab.snapshot().nodes.find((n) => n.name === name)?.state === state;
  let decided = 0;
  const missed: string[] = [];
  for (const s of steps) {
    if (s.kind === 'transfer') {
      ctx.log('replay: transfer');
      await post('/lab/api/transfer', {});
    } else if (s.kind === 'action') {
      // A node the session saw down (a crash point fired) is waited for before it is restarted.
      if (s.node !== undefined && s.nodeWas !== undefined && s.nodeWas !== 'starting') {
        const node = s.node;
        const was = s.nodeWas;
        await until(() => (nodeIs(node, was) ? true : undefined), `${node} ${was}`);
      }
      ctx.log(`replay: ${s.path} ${JSON.stringify(s.body)}`);
      await post(s.path, s.body);
      if (s.path.endsWith('/restart') && s.node !== undefined) {
        const node = s.node;
        await until(() => (nodeIs(node, 'up') ? true : undefined), `${node} up after its restart`);
      }
    } else {
      const what = `${s.from} → ${s.to} ${s.stage} "${s.label}"`;
      const held = await until(() => lc.lab.snapshot().step.queue.find((m) => m.from === s.from && m.to === s.to && m.stage === s.stage && m.label === s.label), `a waiting ${what}`).catch(() => undefined);
      if (!held) {
        missed.push(what);
        continue;
      }
      ctx.log(`replay: ${s.action} ${what}`);
      await post(`/lab/api/step/${held.id}`, { action: s.action });
      decided += 1;
    }
  }
  return { decided, missed };
}

export async function runReplay(ctx: ScenarioContext): Promise<ScenarioResult> {
  if (ctx.file === undefined) throw new Error('replay needs --file SESSION.json (saved from the lab page)');
  const session = readSession(ctx.file);
  const participants = session.lanes.filter((l) => /^p\d+$/.test(l)).length;
  const { steps, outcomes } = scriptOf(session);
  ctx.log(`replaying ${steps.length} steps of ${ctx.file} on ${participants} participants`);
  const dataDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twopc-replay-'));
  const lc = await startLabCluster({ participants, basePort: 0, dataDir, fsync: 'group', chaos: true, labPort: 0 });
  const checks: ScenarioCheck[] = [];
  try {
    const { decided, missed } = await play(lc, steps, ctx);
    const wanted = steps.filter((s) => s.kind === 'decide').length;
    checks.push(check('every step-mode decision found its message', missed.length === 0, `${decided} of ${wanted} decided${missed.length ? `; not seen: ${missed.join('; ')}` : ''}`));
    const got = await until(() => {
      const ended = lc.lab.events().filter((e) => e.type === 'action' && e.action === 'transfer');
      return ended.length >= outcomes.length ? ended.map((e) => (e.type === 'action' && e.ok ? (/ (committed|aborted)\b/.exec(e.detail)?.[1] ?? 'no answer') : 'no answer')) : undefined;
    }, `${outcomes.length} transfers ended`).catch(() => [] as string[]);
    checks.push(check('the transfers ended as in the session', JSON.stringify(got) === JSON.stringify(outcomes), `session: ${outcomes.join(', ') || 'none'}; replay: ${got.join(', ') || 'none'}`));
  } finally {
    await lc.stop();
    if (ctx.keepData) ctx.log(`data kept in ${dataDir}`);
    else await fs.promises.rm(dataDir, { recursive: true, force: true });
  }
  return result('replay', checks, { steps: steps.length, transfers: outcomes.length });
}
