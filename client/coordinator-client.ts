/**
 * A typed client for the coordinator's HTTP API (design.md section 4), for
 * services that start and finish transactions:
 *
 *   const twopc = createCoordinatorClient({ url: 'http://127.0.0.1:7000' });
 *   const report = await twopc.run([{ participant: 'p1', ops }, { participant: 'p2', ops }]);
 *   if (report.outcome !== 'committed') ...
 *
 * One client serves any number of concurrent calls (keep-alive sockets, no
 * shared per-call state), so a service makes one at start-up and uses it from
 * every request handler; pass the handler's AbortSignal to give up a call when
 * its own client goes away.
 *
 * Retries are only for calls that are safe to repeat: enlist, commit and abort
 * (the coordinator answers a repeat as it answered the first), status and
 * outcome. `begin` and `run` are never retried: a repeat would start a second
 * transaction. A call that gets no answer rejects with a TransportError; an
 * error answer rejects with a CoordinatorError carrying the server's code and status.
 */
import { createHttpClient, type CallOptions, type HttpClient, type HttpResult } from '../shared/http/client.ts';
import type { Branch, OutcomeReport, TxId } from '../shared/types.ts';
import type { TxPhase } from '../coordinator/core/types.ts';
import type { TxView } from '../coordinator/core/state.ts';
import { CoordinatorError, errorOfAnswer } from './errors.ts';

export type { Branch, OutcomeReport, TxId, TxPhase, TxView };
export type { BranchView } from '../coordinator/core/state.ts';

/** Per attempt. Above the coordinator's default reply wait (prepare, decision, then up to 2 s for acks). */
export const CALL_TIMEOUT_MS_DEFAULT = 10_000;
/** Extra attempts for an idempotent call that got no answer or a 5xx. */
export const RETRIES_DEFAULT = 3;
/** Retries are capped here whatever is asked, so a caller cannot loop on a dead coordinator. */
export const RETRIES_MAX = 10;
export const CALL_TIMEOUT_MS_MAX = 600_000;
/** Sockets kept open to the coordinator. */
export const SOCKETS_MAX_DEFAULT = 64;

export interface CoordinatorClientOptions {
  /** The coordinator's base URL, e.g. `http://127.0.0.1:7000`. */
  readonly url: string;
  /** Sent as `Authorization: Bearer <token>` (the coordinator's --token). */
  readonly token?: string;
  /** How long one attempt waits for its answer. */
  readonly timeoutMs?: number;
  /** Extra attempts for idempotent calls (0 to turn retries off); at most RETRIES_MAX. */
  readonly retries?: number;
  readonly socketsMax?: number;
}

/** Per call: a signal to give up on, and a timeout for this call's attempts. */
export interface CallControl {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

export interface BeginOptions extends CallControl {
  /** The transaction aborts unless committed within this time (the coordinator caps it). */
  readonly txTimeoutMs?: number;
}

export interface Begun {
  readonly txId: TxId;
  readonly state: 'active';
}

export interface Aborted {
  readonly txId: TxId;
  readonly outcome: 'aborted';
}

/** What participants' inquiries get: `pending` until the decision is durable; an unknown id is `aborted` (presumed). */
export type InquiryOutcome = 'committed' | 'aborted' | 'pending';

export interface TxList {
  readonly transactions: readonly TxView[];
  readonly total: number;
}

/** A transaction begun by `transaction(...)`: enlist branches, and the helper commits or aborts. */
export interface OpenTransaction {
  readonly txId: TxId;
  enlist(branch: Branch): Promise<TxView>;
}

export interface CoordinatorClient {
  /** Begins an interactive transaction (`201 {txId, state:"active"}`). Not retried. */
  begin(options?: BeginOptions): Promise<Begun>;
  /** Adds a branch to an active transaction; a repeat of the same branch changes nothing. */
  enlist(txId: TxId | string, branch: Branch, control?: CallControl): Promise<TxView>;
  /** Runs two-phase commit on the branches enlisted; resolves with the outcome (`committed` or `aborted`, both normal answers). */
  commit(txId: TxId | string, control?: CallControl): Promise<OutcomeReport>;
  abort(txId: TxId | string, control?: CallControl): Promise<Aborted>;
  /** Runs a whole transaction in one call. Not retried. */
  run(branches: readonly Branch[], options?: BeginOptions): Promise<OutcomeReport>;
  /** The coordinator's view of a transaction; a CoordinatorError `not_found` when it has none. */
  status(txId: TxId | string, control?: CallControl): Promise<TxView>;
  /** The outcome as a participant's inquiry sees it. */
  outcome(txId: TxId | string, control?: CallControl): Promise<InquiryOutcome>;
  /** Transactions the coordinator remembers, newest first, optionally in one state. */
  list(state?: TxPhase, control?: CallControl): Promise<TxList>;
  /**
   * Begins a transaction, lets `work` enlist its branches, then commits it; if `work` throws,
   * aborts it (best effort) and rethrows. Resolves with the commit's report.
   */
  transaction(work: (tx: OpenTransaction) => Promise<void>, options?: BeginOptions): Promise<OutcomeReport>;
  /** Closes the kept-alive sockets. Calls made afterwards open new ones. */
  close(): void;
}

function checkOptions(options: CoordinatorClientOptions): { base: string; retries: number; timeoutMs: number } {
  if (options === null || typeof options !== 'object') throw new TypeError('Expected options `{ url }`.');
  let parsed: URL;
  try {
    parsed = new URL(options.url);
  } catch {
    throw new TypeError(`Expected \`url\` to be the coordinator's base URL (http://host:port), got ${JSON.stringify(options.url)}.`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`Expected \`url\` to be an http(s) URL, got ${options.url}.`);
  const retries = options.retries ?? RETRIES_DEFAULT;
  if (!Number.isInteger(retries) || retries < 0 || retries > RETRIES_MAX) {
    throw new TypeError(`Expected \`retries\` to be an integer from 0 to ${RETRIES_MAX}, got ${String(options.retries)}.`);
  }
  const timeoutMs = options.timeoutMs ?? CALL_TIMEOUT_MS_DEFAULT;
  checkTimeout(timeoutMs, 'timeoutMs');
  return { base: options.url.replace(/\/+$/, ''), retries, timeoutMs };
}

function checkTimeout(ms: unknown, name: string): void {
  if (!Number.isInteger(ms) || (ms as number) < 1 || (ms as number) > CALL_TIMEOUT_MS_MAX) {
    throw new TypeError(`Expected \`${name}\` to be an integer number of milliseconds from 1 to ${CALL_TIMEOUT_MS_MAX}, got ${String(ms)}.`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const hasTxId = (v: unknown): boolean => isObject(v) && typeof v.txId === 'string';
const isReport = (v: unknown): boolean => hasTxId(v) && typeof (v as { outcome?: unknown }).outcome === 'string' && Array.isArray((v as { branches?: unknown }).branches);
const isView = (v: unknown): boolean => hasTxId(v) && typeof (v as { state?: unknown }).state === 'string' && Array.isArray((v as { branches?: unknown }).branches);

export function createCoordinatorClient(options: CoordinatorClientOptions): CoordinatorClient {
  const { base, retries, timeoutMs } = checkOptions(options);
  const http: HttpClient = createHttpClient({
    ...(options.token !== undefined && { token: options.token }),
    timeoutMs,
    socketsPerHostMax: options.socketsMax ?? SOCKETS_MAX_DEFAULT,
  });
  const txPath = (txId: string) => `${base}/v1/transactions/${encodeURIComponent(txId)}`;

  /** One call: the answer's body when its status is `ok` and its shape passes `valid`, else a CoordinatorError. */
  async function call<T>(
    send: (opts: CallOptions) => Promise<HttpResult<unknown>>,
    shape: { ok: number; valid: (v: unknown) => boolean; idempotent: boolean; txId?: string },
    control: CallControl = {},
  ): Promise<T> {
    if (control.timeoutMs !== undefined) checkTimeout(control.timeoutMs, 'timeoutMs');
    const { status, data } = await send({
      timeoutMs: control.timeoutMs ?? timeoutMs,
      retries: shape.idempotent ? retries : 0,
      ...(control.signal !== undefined && { signal: control.signal }),
    });
    if (status !== shape.ok) throw errorOfAnswer(status, data, shape.txId);
    if (!shape.valid(data)) throw new CoordinatorError('unexpected_response', status, `the coordinator's answer does not have the expected shape`, shape.txId);
    return data as T;
  }

  const client: CoordinatorClient = {
    begin: (opts = {}) =>
      call<Begun>((o) => http.post(`${base}/v1/transactions`, txBody(opts), o), { ok: 201, valid: hasTxId, idempotent: false }, opts),
    enlist: (txId, branch, control) =>
      call<TxView>((o) => http.post(`${txPath(txId)}/branches`, branch, o), { ok: 200, valid: isView, idempotent: true, txId }, control),
    commit: (txId, control) => call<OutcomeReport>((o) => http.post(`${txPath(txId)}/commit`, {}, o), { ok: 200, valid: isReport, idempotent: true, txId }, control),
    abort: (txId, control) => call<Aborted>((o) => http.post(`${txPath(txId)}/abort`, {}, o), { ok: 200, valid: hasTxId, idempotent: true, txId }, control),
    run: (branches, opts = {}) =>
      call<OutcomeReport>((o) => http.post(`${base}/v1/transactions`, { ...txBody(opts), branches }, o), { ok: 200, valid: isReport, idempotent: false }, opts),
    status: (txId, control) => call<TxView>((o) => http.get(txPath(txId), o), { ok: 200, valid: isView, idempotent: true, txId }, control),
    outcome: async (txId, control) => {
      const body = await call<{ outcome: InquiryOutcome }>(
        (o) => http.get(`${txPath(txId)}/outcome`, o),
        { ok: 200, valid: (v) => isObject(v) && typeof v.outcome === 'string', idempotent: true, txId },
        control,
      );
      return body.outcome;
    },
    list: (state, control) =>
      call<TxList>(
        (o) => http.get(`${base}/v1/transactions${state === undefined ? '' : `?state=${encodeURIComponent(state)}`}`, o),
        { ok: 200, valid: (v) => isObject(v) && Array.isArray(v.transactions), idempotent: true },
        control,
      ),
    transaction: async (work, opts = {}) => {
      const { txId } = await client.begin(opts);
      const control: CallControl = { ...(opts.signal !== undefined && { signal: opts.signal }), ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }) };
      try {
        await work({ txId, enlist: (branch) => client.enlist(txId, branch, control) });
      } catch (error) {
        // The work failed before commit: nothing is prepared, so abort is always safe. If the abort
        // itself fails, the transaction's own timeout aborts it; the work's error is the one to report.
        await client.abort(txId).catch(() => undefined);
        throw error;
      }
      return client.commit(txId, control);
    },
    close: () => http.close(),
  };
  return client;
}

function txBody(options: BeginOptions): { timeoutMs?: number } {
  return options.txTimeoutMs === undefined ? {} : { timeoutMs: options.txTimeoutMs };
}
