/**
 * The bank client: submits transfers as one-shot transactions (runWhole with
 * branches: `add` with min 0 on the payer, `add` on the payee) and records
 * each reply Jepsen-style:
 *
 *   ok    the outcome is known: committed
 *   fail  definitely not committed: an "aborted" outcome, or a 4xx refusal
 *   info  unknown: a timeout, a reset connection, a 503 (which may hide a
 *         one-phase transaction still in doubt), a heuristic-mixed report
 *
 * The client never crashes; it is the observer whose view durability is
 * judged against.
 */
import type { BranchInput } from '../../coordinator/core/index.ts';
import type { ClientResult, Ghost } from './ghost.ts';
import type { RequestMsg } from './messages.ts';
import type { CallResult, Endpoint, Host } from './node.ts';
import { TIMING } from './profile.ts';

export interface ClientRecord {
  readonly index: number;
  readonly result: ClientResult;
  readonly outcome?: string;
  readonly txId?: string;
}

export class Client implements Endpoint {
  readonly id = 'client';
  readonly up = true;
  readonly incarnation = 1;
  readonly calls = new Map<number, unknown>();
  readonly results = new Map<number, ClientRecord>();
  /** Transfers submitted and not yet answered (nor timed out). */
  outstanding = 0;

  constructor(
    private readonly host: Host,
    private readonly ghost: Ghost,
    private readonly coordinator: string,
    private readonly onResult: (index: number) => void,
  ) {}

  submit(index: number, branches: readonly BranchInput[]): void {
    this.outstanding++;
    this.host.request(this, this.coordinator, { type: 'runWhole', branches, index }, TIMING.clientTimeoutMs, index);
  }

  async onRequest(msg: RequestMsg): Promise<void> {
    this.host.respond(this.id, msg.from, msg.callId, 404, { error: { code: 'not_found', message: 'the client serves nothing' } });
  }

  async onCallResult(context: unknown, r: CallResult): Promise<void> {
    const index = context as number;
    this.outstanding--;
    const record = classify(index, r);
    this.results.set(index, record);
    this.ghost.clientResult(index, record.result, record.outcome);
    this.host.note(`client#${index} ${record.result}${record.outcome ? ` ${record.outcome}` : ''}`);
    this.onResult(index);
  }
}

function classify(index: number, r: CallResult): ClientRecord {
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
