/**
 * The client side of the bank workload under chaos: concurrent workers that
 * run transfers through the coordinator and record, for each, what the
 * client saw (ok / fail / info, scenarios/checker.ts), total reads, and the
 * final observation the checker judges.
 *
 * A transfer uses the interactive API (begin, enlist each branch, commit) so
 * the client knows the transaction id before it asks for the commit. Without
 * the id, a commit whose answer is lost could not be settled afterwards.
 * Nothing is retried: a commit without an answer is `info`, and the checker
 * resolves it from what the participants recorded.
 */
import { finalOutcome, type Delta, type FinalObservation, type TotalRead, type TransferRecord } from './checker.ts';
import { call, sleep, waitFor, type InDoubtEntry } from './kit.ts';
import type { Prng } from './prng.ts';
import { accounts, openingTransaction, randomTransfer, type BankOptions } from './workloads/bank.ts';

export interface BankClientOptions {
  readonly bank: BankOptions;
  readonly rng: Prng;
  /** Workers issuing transfers at once. */
  readonly concurrency: number;
  /** No worker starts a transfer past this many. */
  readonly transfersMax: number;
  readonly amountMax: number;
  /** Timeout of begin and enlist calls. */
  readonly stepTimeoutMs?: number;
  /** Timeout of the commit call: past it the outcome is unknown (info). */
  readonly commitTimeoutMs?: number;
  /** The interactive transaction's own timeout at the coordinator. */
  readonly txTimeoutMs?: number;
  /**
   * How a branch's key-value ops reach its participant, when that one's resource is not the
   * key-value store (scenarios/bank-postgres.ts writes them as SQL). Default: as they are.
   */
  readonly mapBranch?: (branch: BankBranch) => BankBranch;
  /** One participant's committed balances (undefined: no answer). Default: its GET /v1/kv. */
  readonly balancesOf?: (participant: string) => Promise<Record<string, unknown> | undefined>;
}

/**
 * What the bank client needs of a cluster: a ScenarioCluster (scenarios/kit.ts), or an HA cluster
 * (scenarios/ha-kit.ts) whose `coordinator.url` is the current leader's.
 */
export interface BankCluster {
  readonly coordinator: { readonly url: string };
  readonly participants: readonly { readonly name: string }[];
  readonly nodes: readonly { readonly running: boolean }[];
  readonly proxies: ReadonlyMap<string, { stats(): { held: number } }>;
  readonly coordinatorProxy: { stats(): { held: number } } | undefined;
  kv(name: string): Promise<Record<string, unknown> | undefined>;
  txState(name: string, txId: string): Promise<string | undefined>;
  inDoubt(name: string): Promise<InDoubtEntry[] | undefined>;
  settled(options?: { coordinator?: boolean }): Promise<boolean>;
  waitSettled(timeoutMs: number, options?: { coordinator?: boolean }): Promise<boolean>;
}

export interface BankBranch {
  readonly participant: string;
  readonly ops: unknown[];
}

/** Concurrent GETs while collecting the final observation. */
const OBSERVE_CONCURRENCY = 16;
const OPEN_ATTEMPTS_MAX = 20;
/** A worker's pause after a transfer that got no answer from the coordinator, in ms. */
const FAILURE_BACKOFF_MS: readonly [number, number] = [50, 250];

export class BankClient {
  readonly history: TransferRecord[] = [];
  readonly reads: TotalRead[] = [];
  private stopped = false;
  private gateOpen = true;
  private gateWaiters: (() => void)[] = [];
  private inFlight = 0;
  private started = 0;
  private workers: Promise<void>[] = [];
  private readonly all;

  constructor(
    private readonly c: BankCluster,
    private readonly o: BankClientOptions,
  ) {
    this.all = accounts(o.bank);
  }

  /** participant -> key -> opening balance. */
  get opening(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const a of this.all) (out[a.participant] ??= {})[a.key] = this.o.bank.openingBalance;
    return out;
  }

  get transfersStarted(): number {
    return this.started;
  }

  /** Funds every account in one transaction, before any fault. Retries only a definite abort or a refusal. */
  async open(): Promise<void> {
    for (let i = 0; i < OPEN_ATTEMPTS_MAX; i++) {
      const opening = openingTransaction(this.o.bank);
      const body = { branches: opening.branches.map((b) => this.branch(b)) };
      const r = await call('POST', `${this.c.coordinator.url}/v1/transactions`, body, 20_000);
      if (r.ok && r.body.outcome === 'committed') {
        await this.c.waitSettled(30_000);
        return;
      }
      if (!r.ok) throw new Error(`could not open the accounts: ${r.message}`);
      await sleep(200);
    }
    throw new Error(`could not open the accounts in ${OPEN_ATTEMPTS_MAX} attempts`);
  }

  private branch(b: BankBranch): BankBranch {
    return this.o.mapBranch ? this.o.mapBranch(b) : b;
  }

  private balances(participant: string): Promise<Record<string, unknown> | undefined> {
    return this.o.balancesOf ? this.o.balancesOf(participant) : this.c.kv(participant);
  }

  start(): void {
    this.workers = Array.from({ length: this.o.concurrency }, () => this.worker());
  }

  /** Stops issuing transfers and waits for those in flight (each is bounded by its timeouts). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.openGate();
    await Promise.all(this.workers);
  }

  private async worker(): Promise<void> {
    while (!this.stopped && this.started < this.o.transfersMax) {
      if (!this.gateOpen) {
        await new Promise<void>((resolve) => this.gateWaiters.push(resolve));
        continue;
      }
      const t = randomTransfer(this.o.rng, this.all, this.o.amountMax);
      if (!t) continue;
      this.started++;
      this.inFlight++;
      let record: TransferRecord | undefined;
      try {
        const deltas: Delta[] = [
          { participant: t.from.participant, key: t.from.key, delta: -t.amount },
          { participant: t.to.participant, key: t.to.key, delta: t.amount },
        ];
        record = await this.transfer(this.started, t.body.branches, deltas);
        this.history.push(record);
      } finally {
        this.inFlight--;
      }
      // A node that is down refuses at once: back off instead of spinning through the transfer budget.
      if (record.result !== 'ok' && record.reported === undefined) await sleep(this.o.rng.int(...FAILURE_BACKOFF_MS));
    }
  }

  private async transfer(id: number, branches: readonly { participant: string; ops: unknown[] }[], deltas: Delta[]): Promise<TransferRecord> {
    const base = this.c.coordinator.url;
    const stepMs = this.o.stepTimeoutMs ?? 5_000;
    const startMs = Date.now();
    const done = (r: Omit<TransferRecord, 'id' | 'deltas' | 'startMs' | 'endMs'>): TransferRecord => ({ id, deltas, startMs, endMs: Date.now(), ...r });
    const begun = await call('POST', `${base}/v1/transactions`, { timeoutMs: this.o.txTimeoutMs ?? 20_000 }, stepMs);
    if (!begun.ok || begun.status !== 201 || typeof begun.body.txId !== 'string') {
      // No id, no commit: nothing can have happened.
      return done({ result: 'fail', error: `begin: ${begun.ok ? `HTTP ${begun.status}` : begun.error}` });
    }
    const txId = begun.body.txId;
    for (const b of branches) {
      const e = await call('POST', `${base}/v1/transactions/${txId}/branches`, this.branch(b), stepMs);
      if (!e.ok || e.status >= 300) {
        // The commit is never asked for, so the transaction cannot commit; the abort only frees it sooner.
        await call('POST', `${base}/v1/transactions/${txId}/abort`, {}, stepMs);
        return done({ txId, result: 'fail', error: `enlist: ${e.ok ? `HTTP ${e.status}` : e.error}` });
      }
    }
    const r = await call('POST', `${base}/v1/transactions/${txId}/commit`, {}, this.o.commitTimeoutMs ?? 15_000);
    if (!r.ok) return done({ txId, result: 'info', error: `commit: ${r.error}` });
    const outcome = typeof r.body.outcome === 'string' ? r.body.outcome : undefined;
    if (r.status === 200 && outcome === 'committed') return done({ txId, result: 'ok', reported: outcome });
    if (r.status === 200 && outcome === 'aborted') return done({ txId, result: 'fail', reported: outcome, ...(typeof r.body.reason === 'string' ? { error: r.body.reason } : {}) });
    // A 4xx is the coordinator refusing this commit (it does not know the id after a restart, or the
    // transaction timed out): it did not commit on this request. A 5xx says nothing certain.
    if (r.status >= 400 && r.status < 500) return done({ txId, result: 'fail', error: `commit: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}` });
    return done({ txId, result: 'info', error: `commit: HTTP ${r.status}` });
  }

  private openGate(): void {
    this.gateOpen = true;
    for (const w of this.gateWaiters.splice(0)) w();
  }

  /** Sums every participant's committed balances; undefined when one does not answer. */
  async readTotal(): Promise<{ total: number; negatives: string[] } | undefined> {
    let total = 0;
    const negatives: string[] = [];
    for (const p of this.c.participants) {
      const kv = await this.balances(p.name);
      if (!kv) return undefined;
      for (const [key, v] of Object.entries(kv)) {
        if (typeof v !== 'number') continue;
        total += v;
        if (v < 0) negatives.push(`${p.name}/${key}=${v}`);
      }
    }
    return { total, negatives };
  }

  /** A read while transfers run: not a snapshot, so it is recorded and never judged. */
  async concurrentRead(): Promise<void> {
    const r = await this.readTotal();
    if (r) this.reads.push({ atMs: Date.now(), quiescent: false, ...r });
  }

  /** Nothing can commit now: no client request outstanding, nothing unfinished or prepared anywhere, no request held in a proxy. */
  private async quiet(): Promise<boolean> {
    if (this.inFlight > 0) return false;
    if (!this.c.nodes.every((n) => n.running)) return false;
    for (const p of [...this.c.proxies.values(), ...(this.c.coordinatorProxy ? [this.c.coordinatorProxy] : [])]) if (p.stats().held > 0) return false;
    return this.c.settled({ coordinator: true });
  }

  /**
   * Pauses the workers, waits (bounded) until the cluster is quiet, reads
   * every participant, and checks it is still quiet. Only then is the read
   * exact; otherwise it is recorded as concurrent. Resumes the workers.
   */
  async quiescentRead(timeoutMs: number): Promise<TotalRead | undefined> {
    this.gateOpen = false;
    try {
      const quietBefore = (await waitFor(async () => ((await this.quiet()) ? true : undefined), timeoutMs, 100)) === true;
      const r = await this.readTotal();
      if (!r) return undefined;
      const quietAfter = quietBefore && (await this.quiet());
      const read: TotalRead = { atMs: Date.now(), quiescent: quietAfter, ...r };
      this.reads.push(read);
      return read;
    } finally {
      this.openGate();
    }
  }

  /** Asks each transfer's participants what became of it, and every participant for its balances and in-doubt list. */
  async observe(): Promise<FinalObservation> {
    const txStates: Record<string, Record<string, string>> = {};
    const jobs = this.history.filter((t) => t.txId !== undefined);
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const t = jobs[next++] as TransferRecord;
        const txId = t.txId as string;
        const states: Record<string, string> = {};
        for (const p of new Set(t.deltas.map((d) => d.participant))) states[p] = (await this.c.txState(p, txId)) ?? 'no answer';
        txStates[txId] = states;
      }
    };
    await Promise.all(Array.from({ length: OBSERVE_CONCURRENCY }, worker));
    const balances: Record<string, Record<string, unknown>> = {};
    const inDoubt: Record<string, string[]> = {};
    for (const p of this.c.participants) {
      balances[p.name] = (await this.balances(p.name)) ?? {};
      inDoubt[p.name] = ((await this.c.inDoubt(p.name)) ?? [{ txId: '(no answer)' }]).map((t) => t.txId);
    }
    return { txStates, balances, inDoubt };
  }
}

/** Why transfers failed or went unknown, by the start of the reason, most frequent first, for the narration. */
export function failureReasons(history: readonly TransferRecord[], top = 6): string {
  const counts = new Map<string, number>();
  for (const t of history) {
    if (t.result === 'ok') continue;
    const reason = (t.error ?? t.reported ?? 'unknown').split(/[:(]/)[0]?.trim().slice(0, 60) || 'unknown';
    const key = `${t.result} ${reason}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => `${k} ×${v}`).join(', ');
}

/** How the unknown outcomes ended, for the narration. */
export function infoOutcomes(history: readonly TransferRecord[], final: FinalObservation): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of history) {
    if (t.result !== 'info' || t.txId === undefined) continue;
    const o = finalOutcome(final.txStates[t.txId] ?? {}, [...new Set(t.deltas.map((d) => d.participant))]);
    out[o] = (out[o] ?? 0) + 1;
  }
  return out;
}
