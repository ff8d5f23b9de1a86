/**
 * The bank client: submits transfers as one-shot transactions (runWhole with
 * branches: `add` with min 0 on the payer, `add` on the payee) or, for a
 * seeded share of them, through the interactive flow: begin, enlist one
 * branch per participant (a failed enlist is retried, and some are sent twice
 * on purpose: the coordinator must apply each once), then commit, abort, or
 * sit past the transaction's timeout and commit too late. Each transfer ends
 * in one record, Jepsen-style:
 *
 *   ok    the outcome is known: committed
 *   fail  definitely not committed: an "aborted" outcome, a 4xx refusal, a
 *         begin that failed (the client never commits a transaction whose id
 *         it did not learn), or any answer to the client's own abort (it never
 *         asked that transaction to commit)
 *   info  unknown: a timeout, a reset connection, a 503 (which may hide a
 *         one-phase transaction still in doubt), a heuristic-mixed report, a
 *         404 to a commit (the coordinator may have finished and forgotten it)
 *
 * The client never crashes; it is the observer whose view durability is
 * judged against.
 */
import type { BranchInput } from '../../coordinator/core/index.ts';
import type { ClientResult, Ghost } from './ghost.ts';
import type { RequestMsg, RequestPayload } from './messages.ts';
import { isWhole, type CallResult, type Endpoint, type Host, type WholeResult } from './node.ts';
import { TIMING } from './profile.ts';

export interface ClientRecord {
  readonly index: number;
  readonly result: ClientResult;
  readonly outcome?: string;
  readonly txId?: string;
}

/** How a transfer is run: one-shot, or interactively to a commit, a client abort, or a timeout. */
export type Flow = 'whole' | 'commit' | 'client-abort' | 'timeout';
export const FLOWS: readonly Flow[] = ['whole', 'commit', 'client-abort', 'timeout'];

export interface Plan {
  readonly flow: Flow;
  /** The branch whose enlist is sent a second time after it succeeded (a client retry), or -1. */
  readonly duplicateEnlist: number;
}

/** An interactive transaction's timeout; the client's whole flow fits well inside it. */
export const INTERACTIVE_TX_TIMEOUT_MS = 30_000;
/** The timeout of a transaction the client means to let expire, and how long past it the client comes back. */
export const EXPIRING_TX_TIMEOUT_MS = 150;
const EXPIRED_SLACK_MS = 100;
/** Retries of one enlist that got no usable answer, before the client aborts the transaction. */
const ENLIST_RETRIES_MAX = 2;

type Call = 'whole' | 'begin' | 'enlist' | 'enlist-again' | 'commit' | 'abort';

interface Context {
  readonly index: number;
  readonly call: Call;
}

interface Interactive {
  readonly plan: Plan;
  readonly branches: readonly BranchInput[];
  txId?: string;
  /** The branch being enlisted. */
  cursor: number;
  retries: number;
  /** Why the client gave up and aborted, if it did. */
  gaveUp?: string;
}

export class Client implements Endpoint {
  readonly id = 'client';
  readonly up = true;
  readonly incarnation = 1;
  readonly calls = new Map<number, unknown>();
  readonly results = new Map<number, ClientRecord>();
  /** Transfers submitted and not yet answered (nor timed out). */
  outstanding = 0;
  private readonly interactive = new Map<number, Interactive>();

  constructor(
    private readonly host: Host,
    private readonly ghost: Ghost,
    /** Where requests go: the coordinator, or whichever member of an HA group leads now (a load balancer's view). */
    private readonly coordinator: () => string,
    private readonly onResult: (index: number) => void,
  ) {}

  submit(index: number, branches: readonly BranchInput[], plan: Plan = { flow: 'whole', duplicateEnlist: -1 }): void {
    this.outstanding++;
    if (plan.flow === 'whole') return this.call(index, 'whole', { type: 'runWhole', branches, index });
    this.interactive.set(index, { plan, branches, cursor: 0, retries: 0 });
    const timeoutMs = plan.flow === 'timeout' ? EXPIRING_TX_TIMEOUT_MS : INTERACTIVE_TX_TIMEOUT_MS;
    const participants = [...new Set(branches.map((b) => b.participant))];
    this.call(index, 'begin', { type: 'txBegin', timeoutMs, index, participants });
  }

  /** The client comes back to a transaction it let sit past its timeout, and asks to commit it. */
  wake(index: number): void {
    const t = this.interactive.get(index);
    if (t?.txId !== undefined) this.call(index, 'commit', { type: 'txCommit', txId: t.txId });
  }

  async onRequest(msg: RequestMsg): Promise<void> {
    this.host.respond(this.id, msg.from, msg.callId, 404, { error: { code: 'not_found', message: 'the client serves nothing' } });
  }

  async onCallResult(context: unknown, result: CallResult): Promise<void> {
    if (!isWhole(result)) return;
    const r = result;
    const c = context as Context;
    if (c.call === 'whole') return this.finish(c.index, classify(c.index, r));
    const t = this.interactive.get(c.index);
    if (!t) return;
    switch (c.call) {
      case 'begin': {
        const txId = r.kind === 'answer' && r.status === 201 ? (r.body as { txId?: unknown }).txId : undefined;
        if (typeof txId !== 'string') return this.finish(c.index, { index: c.index, result: 'fail', outcome: `begin: ${describe(r)}` });
        t.txId = txId;
        return this.enlist(c.index, t, 'enlist');
      }
      case 'enlist':
        if (r.kind === 'answer' && r.status === 200) {
          if (t.plan.duplicateEnlist === t.cursor) return this.enlist(c.index, t, 'enlist-again');
          return this.next(c.index, t);
        }
        // A 4xx: the transaction is gone (timed out, or lost with a coordinator crash) or refused.
        if (r.kind === 'answer' && r.status < 500) return this.giveUp(c.index, t, `enlist: ${describe(r)}`);
        if (t.retries >= ENLIST_RETRIES_MAX) return this.giveUp(c.index, t, `enlist: ${describe(r)} after ${t.retries} retries`);
        t.retries++;
        return this.enlist(c.index, t, 'enlist');
      case 'enlist-again':
        // The resent enlist was a retry of one that had succeeded: whatever it got, the branch is in once.
        return this.next(c.index, t);
      case 'commit': {
        const record = classify(c.index, r);
        // A 404 may mean "finished and forgotten" (a restart, or the bounded history): unknown, not "failed".
        const forgotten = r.kind === 'answer' && r.status === 404;
        return this.finish(c.index, forgotten ? { ...record, result: 'info' } : { ...record, ...(t.txId === undefined ? {} : { txId: t.txId }) });
      }
      case 'abort':
        // The client never asked this transaction to commit, so it cannot have committed, whatever the answer.
        return this.finish(c.index, { index: c.index, result: 'fail', outcome: `${t.gaveUp ?? 'aborted by the client'}; abort: ${describe(r)}`, ...(t.txId === undefined ? {} : { txId: t.txId }) });
    }
  }

  private call(index: number, call: Call, payload: RequestPayload): void {
    const context: Context = { index, call };
    this.host.request(this, this.coordinator(), payload, TIMING.clientTimeoutMs, context);
  }

  private enlist(index: number, t: Interactive, call: 'enlist' | 'enlist-again'): void {
    const branch = t.branches[t.cursor];
    if (t.txId === undefined || !branch) return;
    this.call(index, call, { type: 'txEnlist', txId: t.txId, branch });
  }

  /** On to the next branch, or, with every branch enlisted, to the end the plan chose. */
  private next(index: number, t: Interactive): void {
    t.cursor++;
    t.retries = 0;
    if (t.cursor < t.branches.length) return this.enlist(index, t, 'enlist');
    if (t.txId === undefined) return;
    switch (t.plan.flow) {
      case 'commit':
      case 'whole':
        return this.call(index, 'commit', { type: 'txCommit', txId: t.txId });
      case 'client-abort':
        return this.call(index, 'abort', { type: 'txAbort', txId: t.txId });
      case 'timeout':
        return this.host.schedule(EXPIRING_TX_TIMEOUT_MS + EXPIRED_SLACK_MS, { kind: 'clientWake', index });
    }
  }

  private giveUp(index: number, t: Interactive, why: string): void {
    t.gaveUp = `gave up (${why})`;
    if (t.txId !== undefined) this.call(index, 'abort', { type: 'txAbort', txId: t.txId });
  }

  private finish(index: number, record: ClientRecord): void {
    this.outstanding--;
    this.interactive.delete(index);
    this.results.set(index, record);
    this.ghost.clientResult(index, record.result, record.outcome, record.txId);
    this.host.note(`client#${index} ${record.result}${record.outcome ? ` ${record.outcome}` : ''}`);
    this.onResult(index);
  }
}

function describe(r: WholeResult): string {
  return r.kind === 'error' ? r.error : `HTTP ${r.status}`;
}

function classify(index: number, r: WholeResult): ClientRecord {
  if (r.kind === 'error') {
    // Refused: the request never reached a live coordinator, so nothing was started.
    return { index, result: r.error === 'unreachable' ? 'fail' : 'info', outcome: r.error };
  }
  const body = r.body as { outcome?: unknown; txId?: unknown };
  const txId = typeof body.txId === 'string' ? body.txId : undefined;
  const withTx = txId === undefined ? {} : { txId };
  if (r.status === 200 && body.outcome === 'committed') return { index, result: 'ok', outcome: 'committed', ...withTx };
  if (r.status === 200 && body.outcome === 'aborted') return { index, result: 'fail', outcome: 'aborted', ...withTx };
  if (r.status >= 400 && r.status < 500) return { index, result: 'fail', outcome: `HTTP ${r.status}`, ...withTx };
  return { index, result: 'info', outcome: r.status === 200 ? String(body.outcome) : `HTTP ${r.status}`, ...withTx };
}
