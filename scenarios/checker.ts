/**
 * A Jepsen-style checker for the bank workload. Pure: it takes the client's
 * history and what the cluster looked like afterwards, and judges them.
 *
 * Every client operation ends as one of three results, from the client's side:
 *   ok   - the coordinator answered `committed`: the transfer happened.
 *   fail - the coordinator answered `aborted`, or the client never asked it to
 *          commit: the transfer did not happen.
 *   info - no usable answer to the commit (timeout, reset, 5xx): unknown. The
 *          checker resolves it from what the participants recorded.
 *
 * What the checker can soundly claim, and how:
 *   - Acknowledged outcomes are kept: every `ok` transfer is committed at each
 *     of its participants, every `fail` one at none of them.
 *   - Atomicity: no transfer is committed at one participant and aborted (or
 *     unknown) at another. `unknown` counts against a commit because a
 *     participant can only commit after voting yes, which it logs first.
 *   - Nothing is in doubt at the end (after the heal phase).
 *   - Exact balances: each account ends at its opening balance plus the
 *     transfers that committed, so nothing is applied twice or lost, and the
 *     total is unchanged. No balance is negative.
 *   - Total reads: a read of every participant's /v1/kv is not a snapshot, so
 *     a transfer committing between two of the reads can make the sum look
 *     off by its amount. Only a read taken while the cluster was quiescent (no
 *     client request outstanding, no transaction unfinished at the
 *     coordinator, nothing prepared at any participant before and after the
 *     read, no request held in a proxy) is exact and judged; the others are
 *     counted and reported, never judged.
 */

export type OpResult = 'ok' | 'fail' | 'info';
export type FinalOutcome = 'committed' | 'aborted' | 'split' | 'in-doubt';

export interface Delta {
  readonly participant: string;
  readonly key: string;
  readonly delta: number;
}

/** One client transfer, as the client saw it. */
export interface TransferRecord {
  readonly id: number;
  /** Known once the coordinator answered the begin; without it nothing can have been committed. */
  readonly txId?: string;
  /** What each account gains (or loses) if the transfer commits. */
  readonly deltas: readonly Delta[];
  readonly result: OpResult;
  /** The coordinator's answer, for ok and for fail answered by the coordinator. */
  readonly reported?: string;
  /** Why the result is fail or info, for the report. */
  readonly error?: string;
  readonly startMs: number;
  readonly endMs: number;
}

/** What the participants said once everything settled. */
export interface FinalObservation {
  /** txId -> participant -> state (`committed`, `aborted`, `prepared`, `unknown`), for the participants of each transfer. */
  readonly txStates: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** participant -> key -> committed value. */
  readonly balances: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** participant -> txIds still prepared. */
  readonly inDoubt: Readonly<Record<string, readonly string[]>>;
}

export interface TotalRead {
  readonly atMs: number;
  readonly quiescent: boolean;
  readonly total: number;
  readonly negatives: readonly string[];
}

export interface CheckInput {
  /** participant -> key -> opening balance. */
  readonly opening: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly history: readonly TransferRecord[];
  readonly reads: readonly TotalRead[];
  readonly final: FinalObservation;
}

export interface CheckReport {
  readonly valid: boolean;
  readonly counts: {
    readonly ok: number;
    readonly fail: number;
    readonly info: number;
    /** How the info operations resolved. */
    readonly infoCommitted: number;
    readonly infoAborted: number;
    readonly infoUnresolved: number;
  };
  readonly committed: number;
  readonly expectedTotal: number;
  readonly finalTotal: number;
  readonly reads: { readonly quiescent: number; readonly concurrent: number; readonly wrongTotal: number };
  /** Each list holds one sentence per violation, at most DETAILS_MAX of them; the counts are exact. */
  readonly ackedCommitsLost: number;
  readonly ackedAbortsCommitted: number;
  readonly splitOutcomes: number;
  readonly inDoubtAtEnd: number;
  readonly negativeBalances: number;
  readonly balanceMismatches: number;
  readonly violations: readonly string[];
}

/** Violation sentences kept in the report; the counters stay exact past it. */
const DETAILS_MAX = 50;

/** A transfer's outcome from the states its participants recorded. */
export function finalOutcome(states: Readonly<Record<string, string>>, participants: readonly string[]): FinalOutcome {
  const seen = participants.map((p) => states[p] ?? 'unknown');
  const committed = seen.filter((s) => s === 'committed').length;
  if (seen.includes('prepared')) return committed > 0 && seen.some((s) => s === 'aborted') ? 'split' : 'in-doubt';
  if (committed === 0) return 'aborted';
  return committed === seen.length ? 'committed' : 'split';
}

const participantsOf = (t: TransferRecord): string[] => [...new Set(t.deltas.map((d) => d.participant))];

export function checkBank(input: CheckInput): CheckReport {
  const violations: string[] = [];
  const note = (s: string) => {
    if (violations.length < DETAILS_MAX) violations.push(s);
  };
  let ok = 0;
  let fail = 0;
  let info = 0;
  let infoCommitted = 0;
  let infoAborted = 0;
  let infoUnresolved = 0;
  let ackedCommitsLost = 0;
  let ackedAbortsCommitted = 0;
  let splitOutcomes = 0;
  let committedCount = 0;

  // Expected balances: the opening state plus every transfer that committed everywhere.
  const expected = new Map<string, Map<string, number>>();
  for (const [p, keys] of Object.entries(input.opening)) {
    expected.set(p, new Map(Object.entries(keys)));
  }
  const expectedTotal = [...expected.values()].reduce((sum, m) => sum + [...m.values()].reduce((a, b) => a + b, 0), 0);

  for (const t of input.history) {
    if (t.result === 'ok') ok++;
    else if (t.result === 'fail') fail++;
    else info++;
    const parts = participantsOf(t);
    const outcome: FinalOutcome = t.txId === undefined ? 'aborted' : finalOutcome(input.final.txStates[t.txId] ?? {}, parts);
    const label = `transfer #${t.id}${t.txId ? ` (${t.txId})` : ''}`;
    const statesText = t.txId ? JSON.stringify(input.final.txStates[t.txId] ?? {}) : '{}';
    if (outcome === 'split') {
      splitOutcomes++;
      note(`${label}: split outcome, participants say ${statesText}`);
    }
    if (t.result === 'ok' && outcome !== 'committed') {
      ackedCommitsLost++;
      note(`${label}: the client was told committed, but participants say ${statesText}`);
    }
    if (t.result === 'fail' && (outcome === 'committed' || outcome === 'split')) {
      ackedAbortsCommitted++;
      note(`${label}: the client was told ${t.reported ?? 'it never committed'} (${t.error ?? 'aborted'}), but participants say ${statesText}`);
    }
    if (t.result === 'info') {
      if (outcome === 'committed') infoCommitted++;
      else if (outcome === 'aborted') infoAborted++;
      else infoUnresolved++;
    }
    if (outcome === 'committed') {
      committedCount++;
      for (const d of t.deltas) {
        const acct = expected.get(d.participant) ?? new Map<string, number>();
        expected.set(d.participant, acct);
        acct.set(d.key, (acct.get(d.key) ?? 0) + d.delta);
      }
    }
  }

  let inDoubtAtEnd = 0;
  for (const [p, txIds] of Object.entries(input.final.inDoubt)) {
    inDoubtAtEnd += txIds.length;
    if (txIds.length > 0) note(`${p} still has ${txIds.length} transaction(s) in doubt: ${txIds.slice(0, 5).join(', ')}`);
  }

  // Final balances: exact per account, never negative, total unchanged.
  let negativeBalances = 0;
  let balanceMismatches = 0;
  let finalTotal = 0;
  const participants = new Set([...expected.keys(), ...Object.keys(input.final.balances)]);
  for (const p of participants) {
    const actual = input.final.balances[p] ?? {};
    const want = expected.get(p) ?? new Map<string, number>();
    const keys = new Set([...want.keys(), ...Object.keys(actual)]);
    for (const key of keys) {
      const raw = actual[key];
      const value = typeof raw === 'number' ? raw : raw === undefined ? 0 : NaN;
      if (Number.isFinite(value)) finalTotal += value;
      if (value < 0) {
        negativeBalances++;
        note(`${p}/${key} is negative: ${value}`);
      }
      const w = want.get(key) ?? 0;
      if (value !== w) {
        balanceMismatches++;
        note(`${p}/${key} is ${String(raw)}, expected ${w} from the transfers that committed`);
      }
    }
  }
  if (!Number.isFinite(finalTotal)) finalTotal = NaN;

  let quiescent = 0;
  let concurrent = 0;
  let wrongTotal = 0;
  for (const r of input.reads) {
    if (r.negatives.length > 0) {
      negativeBalances += r.negatives.length;
      note(`a read at ${r.atMs} saw negative balances: ${r.negatives.slice(0, 5).join(', ')}`);
    }
    if (!r.quiescent) {
      concurrent++;
      continue;
    }
    quiescent++;
    if (r.total !== expectedTotal) {
      wrongTotal++;
      note(`a quiescent read at ${r.atMs} summed to ${r.total}, expected ${expectedTotal}`);
    }
  }

  const valid =
    ackedCommitsLost === 0 &&
    ackedAbortsCommitted === 0 &&
    splitOutcomes === 0 &&
    inDoubtAtEnd === 0 &&
    negativeBalances === 0 &&
    balanceMismatches === 0 &&
    wrongTotal === 0 &&
    infoUnresolved === 0 &&
    finalTotal === expectedTotal;

  return {
    valid,
    counts: { ok, fail, info, infoCommitted, infoAborted, infoUnresolved },
    committed: committedCount,
    expectedTotal,
    finalTotal,
    reads: { quiescent, concurrent, wrongTotal },
    ackedCommitsLost,
    ackedAbortsCommitted,
    splitOutcomes,
    inDoubtAtEnd,
    negativeBalances,
    balanceMismatches,
    violations,
  };
}

/** The report as scenario checks, one per property. */
export function reportChecks(r: CheckReport): { name: string; ok: boolean; detail: string }[] {
  const first = (pred: (v: string) => boolean) => r.violations.find(pred) ?? '';
  return [
    { name: 'acknowledged commits kept', ok: r.ackedCommitsLost === 0, detail: `${r.ackedCommitsLost} of ${r.counts.ok} lost ${first((v) => v.includes('told committed'))}`.trim() },
    { name: 'acknowledged aborts kept', ok: r.ackedAbortsCommitted === 0, detail: `${r.ackedAbortsCommitted} of ${r.counts.fail} committed anyway ${first((v) => v.includes('never committed') || v.includes('told aborted'))}`.trim() },
    { name: 'agreement (no split outcome)', ok: r.splitOutcomes === 0, detail: `${r.splitOutcomes} split ${first((v) => v.includes('split'))}`.trim() },
    { name: 'unknown outcomes resolved', ok: r.counts.infoUnresolved === 0, detail: `${r.counts.info} info: ${r.counts.infoCommitted} committed, ${r.counts.infoAborted} aborted, ${r.counts.infoUnresolved} unresolved` },
    { name: 'nothing in doubt at the end', ok: r.inDoubtAtEnd === 0, detail: `${r.inDoubtAtEnd} in doubt ${first((v) => v.includes('in doubt'))}`.trim() },
    { name: 'no negative balance', ok: r.negativeBalances === 0, detail: `${r.negativeBalances} negative ${first((v) => v.includes('negative'))}`.trim() },
    {
      name: 'exact balances (nothing applied twice or lost)',
      ok: r.balanceMismatches === 0 && r.finalTotal === r.expectedTotal,
      detail: `total ${r.finalTotal} (expected ${r.expectedTotal}), ${r.balanceMismatches} account(s) off ${first((v) => v.includes('expected') && !v.includes('read'))}`.trim(),
    },
    {
      name: 'quiescent total reads exact',
      ok: r.reads.wrongTotal === 0,
      detail: `${r.reads.quiescent} quiescent read(s), ${r.reads.wrongTotal} wrong; ${r.reads.concurrent} concurrent read(s) not judged`,
    },
  ];
}
