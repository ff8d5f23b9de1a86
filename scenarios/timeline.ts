/**
 * Builds a scenario's timeline from the nodes' JSON log lines (pino writes one
 * object per protocol step: node, txId, step, lsn, forced, ...) and the
 * harness's own events (crashes, restarts, client requests).
 *
 * A message is a pair: a send logged by one node and the matching receive
 * logged by the other (same transaction, same kind, receive not before the
 * send). A send with no matching receive is drawn as lost, which is what a
 * dropped request or a crash in between looks like from the logs.
 *
 * Pure: the caller reads the files (scenarios/kit.ts).
 */
import type { TimelineEvent } from './scenario.ts';

export const COORDINATOR_LANE = 'coordinator';
export const CLIENT_LANE = 'client';

/** The fields of a log line this module reads; anything else is ignored. */
export interface LogLine {
  readonly time?: number;
  readonly level?: number;
  readonly node?: string;
  readonly role?: string;
  readonly txId?: string;
  readonly step?: string;
  readonly participant?: string;
  readonly vote?: string;
  readonly decision?: string;
  readonly outcome?: string;
  readonly forced?: boolean;
  readonly lsn?: number;
  readonly via?: string;
  readonly reason?: string;
  readonly heuristic?: string;
  readonly msg?: string;
  readonly resending?: number;
  readonly inDoubt?: number;
}

/** Parses JSON lines, skipping anything that is not a JSON object (pretty output, stack traces). */
export function parseLogLines(text: string, linesMax = 200_000): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (out.length >= linesMax) break;
    if (!line.startsWith('{')) continue;
    try {
      const v: unknown = JSON.parse(line);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) out.push(v as LogLine);
    } catch {
      // A torn last line of a SIGKILLed process: skip it.
    }
  }
  return out;
}

type MessageKind = 'prepare' | 'vote' | 'commit' | 'abort' | 'ack';

interface Send {
  readonly kind: MessageKind;
  readonly from: string;
  readonly to: string;
  readonly txId: string;
  readonly atMs: number;
  readonly label: string;
}
interface Receive {
  readonly kind: MessageKind;
  readonly from: string;
  readonly at: string;
  readonly txId: string;
  readonly atMs: number;
  readonly label?: string;
}

/** Steps at which a participant shows it received a prepare (the first of them is matched). */
const PREPARE_SEEN = new Set(['lock-acquired', 'lock-wait', 'wal.PREPARED', 'vote-yes', 'vote-no', 'vote-read-only', 'duplicate-prepare']);
/** Clocks are one machine's, but log timestamps are taken after the fact: allow this much. */
const SKEW_MS = 5;

/** Keeps a reason short enough for a diagram label: its cause, without the URL. */
export function shortReason(reason: string): string {
  const code = /\(([A-Z][A-Z_]+)\)/.exec(reason)?.[1];
  const cause = code ?? /unreachable|timed? ?out|reset|HTTP \d+|pending/i.exec(reason)?.[0] ?? reason;
  return cause.length > 48 ? `${cause.slice(0, 47)}…` : cause;
}

function markOf(lane: string, l: LogLine, atMs: number): TimelineEvent | undefined {
  const tx = l.txId === undefined ? {} : { txId: l.txId };
  const mk = (mark: string, label: string): TimelineEvent => ({ kind: 'mark', atMs, lane, label, mark, ...tx });
  const step = l.step ?? '';
  if ((l.level ?? 0) >= 50) return mk('crash', `fatal: ${l.msg ?? step}`);
  // The coordinator also logs decision.logged / end.logged / collecting.logged, which say more.
  if (lane === COORDINATOR_LANE && (step === 'wal.DECISION' || step === 'wal.END' || step === 'wal.COLLECTING')) return undefined;
  if (step.startsWith('wal.')) return mk('wal', `${step.slice(4)}${l.forced ? ' (forced)' : ''}`);
  switch (step) {
    case 'decision.logged':
      return mk('wal', `DECISION ${l.outcome ?? ''}${l.forced ? ' (forced)' : ''}`);
    case 'collecting.logged':
      return mk('wal', 'COLLECTING (forced)');
    case 'end.logged':
      return mk('wal', 'END');
    case 'decision':
      return mk('note', `decided ${l.outcome ?? ''} (nothing to send)`);
    case 'in-doubt':
      return mk('blocked', 'in doubt after restart');
    case 'inquiry-failed':
      return mk('note', `inquiry failed${l.reason ? `: ${shortReason(l.reason)}` : ''}`);
    case 'blocked':
      return mk('blocked', 'blocked: every peer is prepared');
    case 'heuristic':
      return mk('heuristic', `heuristic ${l.outcome ?? ''} by an operator`);
    case 'heuristic.mixed':
      return mk('heuristic', `heuristic-mixed: ${l.participant ?? ''} says ${l.heuristic ?? ''}`);
    case 'heuristic-mismatch':
      return mk('heuristic', 'decision disagrees with the heuristic outcome');
    case 'tombstone':
      return mk('note', 'tombstone');
    case 'recovered':
      return mk('restart', lane === COORDINATOR_LANE ? `recovered, resending ${l.resending ?? 0}` : 'recovered');
    case 'started':
      return mk('restart', `ready${l.inDoubt ? `, ${l.inDoubt} in doubt` : ''}`);
    case 'decision.failed':
      return mk('note', `${l.participant ?? ''} did not answer`);
    case 'one-phase.outcome':
      return mk('note', `one-phase ${l.outcome ?? ''} at ${l.participant ?? ''}`);
    case 'committed':
    case 'aborted':
      return l.via !== undefined && l.via !== 'coordinator' ? mk('note', `${step} (learned via ${l.via})`) : undefined;
    default:
      return undefined;
  }
}

function sendsAndReceives(lane: string, l: LogLine, atMs: number, sends: Send[], receives: Receive[]): void {
  const tx = l.txId;
  if (tx === undefined) return;
  const step = l.step ?? '';
  if (lane === COORDINATOR_LANE) {
    const p = l.participant;
    if (p === undefined) return;
    if (step === 'prepare.sent' || step === 'prepare.resent') sends.push({ kind: 'prepare', from: lane, to: p, txId: tx, atMs, label: 'prepare' });
    else if (step === 'decision.sent') {
      const kind = l.decision === 'commit' ? 'commit' : 'abort';
      sends.push({ kind, from: lane, to: p, txId: tx, atMs, label: kind });
    } else if (step === 'vote') receives.push({ kind: 'vote', from: p, at: lane, txId: tx, atMs });
    else if (step === 'ack') receives.push({ kind: 'ack', from: p, at: lane, txId: tx, atMs });
    return;
  }
  if (PREPARE_SEEN.has(step)) receives.push({ kind: 'prepare', from: COORDINATOR_LANE, at: lane, txId: tx, atMs });
  if (step === 'vote-yes' || step === 'vote-no' || step === 'vote-read-only') {
    const vote = step.slice('vote-'.length);
    sends.push({ kind: 'vote', from: lane, to: COORDINATOR_LANE, txId: tx, atMs, label: `vote ${vote}` });
  }
  if ((step === 'committed' || step === 'aborted') && l.via === 'coordinator') {
    receives.push({ kind: step === 'committed' ? 'commit' : 'abort', from: COORDINATOR_LANE, at: lane, txId: tx, atMs });
    sends.push({ kind: 'ack', from: lane, to: COORDINATOR_LANE, txId: tx, atMs, label: `ack ${step}` });
  }
}

/** An outcome inquiry is drawn as a one-way question: the coordinator logs no receive for it. */
function inquiryOf(lane: string, l: LogLine, atMs: number): TimelineEvent | undefined {
  if (lane === COORDINATOR_LANE || l.step !== 'inquire' || l.txId === undefined) return undefined;
  return { kind: 'message', atMs, lane, to: COORDINATOR_LANE, toAtMs: atMs, label: 'outcome?', txId: l.txId, message: 'inquiry' };
}

export interface TimelineOptions {
  /** Keep only events of these transactions (marks without a txId are always kept). */
  readonly txIds?: ReadonlySet<string>;
  readonly sinceMs?: number;
  /** The diagram stays readable, and the HTML small, below this many events. */
  readonly eventsMax?: number;
  /** Only marks (crashes, restarts, pauses, WAL writes, blocking), no message arrows: for long runs. */
  readonly marksOnly?: boolean;
}

const EVENTS_MAX_DEFAULT = 600;

export function buildTimeline(
  logs: readonly { readonly lane: string; readonly lines: readonly LogLine[] }[],
  harness: readonly TimelineEvent[],
  options: TimelineOptions = {},
): TimelineEvent[] {
  const keepTx = (tx: string | undefined) => tx === undefined || options.txIds === undefined || options.txIds.has(tx);
  const since = options.sinceMs ?? -Infinity;
  const events: TimelineEvent[] = [];
  const sends: Send[] = [];
  const receives: Receive[] = [];
  for (const { lane, lines } of logs) {
    for (const l of lines) {
      const atMs = l.time;
      if (typeof atMs !== 'number' || atMs < since || !keepTx(l.txId)) continue;
      const m = markOf(lane, l, atMs) ?? inquiryOf(lane, l, atMs);
      if (m) events.push(m);
      sendsAndReceives(lane, l, atMs, sends, receives);
    }
  }
  // Receives by (kind, tx, from, to), oldest first, so matching stays linear in big soaks.
  const pairKey = (kind: string, txId: string, from: string, to: string) => `${kind}|${txId}|${from}|${to}`;
  const byPair = new Map<string, Receive[]>();
  for (const r of receives.sort((a, b) => a.atMs - b.atMs)) {
    const k = pairKey(r.kind, r.txId, r.from, r.at);
    const list = byPair.get(k);
    if (list) list.push(r);
    else byPair.set(k, [r]);
  }
  const used = new Set<Receive>();
  for (const s of sends.sort((a, b) => a.atMs - b.atMs)) {
    const candidates = byPair.get(pairKey(s.kind, s.txId, s.from, s.to)) ?? [];
    const r = candidates.find((x) => !used.has(x) && x.atMs >= s.atMs - SKEW_MS);
    if (r) used.add(r);
    events.push({
      kind: 'message',
      atMs: s.atMs,
      lane: s.from,
      to: s.to,
      ...(r ? { toAtMs: Math.max(r.atMs, s.atMs) } : {}),
      label: s.label,
      txId: s.txId,
      message: s.kind,
    });
  }
  for (const h of harness) if (h.atMs >= since && keepTx(h.txId)) events.push(h);
  if (options.marksOnly) {
    // WAL writes are every transaction's; the overview keeps what the chaos did and what it caused.
    const kept = events.filter((e) => e.kind === 'mark' && e.mark !== 'wal' && e.mark !== 'note');
    events.length = 0;
    events.push(...kept);
  }
  events.sort((a, b) => a.atMs - b.atMs);
  const max = options.eventsMax ?? EVENTS_MAX_DEFAULT;
  return events.length > max ? events.slice(0, max) : events;
}
