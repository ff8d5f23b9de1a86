/**
 * The TLA+ cross-check: every simulator step, seen through a refinement
 * mapping, must be a sequence of zero or more actions of Lamport's TwoPhase
 * spec (test/sim/model/two-phase.ts).
 *
 * The mapping, per transaction, with its branches as the resource managers:
 *
 * - rmState[i]: participant i's *durable* state for the transaction (what its
 *   WAL would give back after a crash): PREPARED → prepared, COMMITTED →
 *   committed, ABORTED → aborted, nothing → working. Latched, since a durable
 *   record never goes away.
 * - tmState: committed once the coordinator's COMMIT decision is durable;
 *   aborted once the transaction's fate is abort and someone may act on it:
 *   the coordinator decided abort (in memory is enough under presumed abort),
 *   answered "aborted" to an inquiry about a transaction it never durably
 *   committed (a presumption after a restart), a prepared participant took a
 *   peer's "aborted", or some participant durably aborted before voting (then
 *   no commit can ever be decided: RMChooseToAbort followed by TMAbort). A NO
 *   vote or an abort that nobody heard and no disk kept is not the TM's
 *   decision. A one-phase transaction's participant is its own TM.
 * - preparedMsgs bit i: participant i sent a YES vote or durably prepared.
 * - tmPrepared bit i: the coordinator took participant i's YES vote from the
 *   network while still collecting votes (a vote that arrives after the
 *   decision is not "received" by the TM; a fabricated one is not either).
 * - commitMsg / abortMsg: the TM's decision is published. The spec sets them in
 *   the same action as tmState, so they follow tmState, and commitMsg also
 *   turns on if a commit was sent without a durable decision.
 *
 * So a YES vote that leaves before its PREPARED is durable maps to a state with
 * a Prepared message from a `working` RM, which no action sequence reaches.
 */
import { actions, next, type Action, type RmState, type TwoPhaseState } from './model/two-phase.ts';

export interface MappedTx {
  readonly rm: readonly RmState[];
  readonly tm: 'init' | 'committed' | 'aborted';
  readonly votesSent: number;
  readonly everPrepared: number;
  readonly votesReceived: number;
  readonly commitSent: boolean;
  readonly onePhase: boolean;
  /** Branches settled by hand (bit i): the model knows no operator, so they stay as they were, prepared. */
  readonly heuristic?: number;
}

export function mapToModel(t: MappedTx): TwoPhaseState {
  const h = t.heuristic ?? 0;
  if (h !== 0) return mapToModel({ ...t, heuristic: 0, rm: t.rm.map((s, i) => ((h & (1 << i)) !== 0 ? 'prepared' : s)) });
  if (t.onePhase) {
    const committed = t.rm[0] === 'committed' ? 1 : 0;
    return {
      rmState: [...t.rm],
      tmState: t.tm,
      tmPrepared: committed,
      preparedMsgs: committed,
      commitMsg: t.tm === 'committed' || t.commitSent,
      abortMsg: t.tm === 'aborted',
    };
  }
  return {
    rmState: [...t.rm],
    tmState: t.tm,
    tmPrepared: t.votesReceived,
    preparedMsgs: t.votesSent | t.everPrepared,
    commitMsg: t.tm === 'committed' || t.commitSent,
    abortMsg: t.tm === 'aborted',
  };
}

/** The longest action sequence one simulator step may map to. */
export const STEP_DEPTH_MAX = 4;

const rmLeq = (a: RmState, b: RmState): boolean => a === b || a === 'working' || (a === 'prepared' && b !== 'working');

/**
 * Every variable of the spec only ever grows (an RM goes working → prepared →
 * committed/aborted, bit sets and message flags only gain members), so a state
 * not below the target can never lead to it: the search prunes it.
 */
function below(s: TwoPhaseState, t: TwoPhaseState): boolean {
  if ((s.tmState !== 'init' && s.tmState !== t.tmState) || (s.tmPrepared & ~t.tmPrepared) !== 0 || (s.preparedMsgs & ~t.preparedMsgs) !== 0) {
    return false;
  }
  if ((s.commitMsg && !t.commitMsg) || (s.abortMsg && !t.abortMsg)) return false;
  for (let i = 0; i < s.rmState.length; i++) if (!rmLeq(s.rmState[i] as RmState, t.rmState[i] as RmState)) return false;
  return true;
}

function same(a: TwoPhaseState, b: TwoPhaseState): boolean {
  return (
    a.tmState === b.tmState &&
    a.tmPrepared === b.tmPrepared &&
    a.preparedMsgs === b.preparedMsgs &&
    a.commitMsg === b.commitMsg &&
    a.abortMsg === b.abortMsg &&
    a.rmState.every((r, i) => r === b.rmState[i])
  );
}

const actionCache = new Map<number, readonly Action[]>();
function actionsFor(rms: number): readonly Action[] {
  let a = actionCache.get(rms);
  if (!a) {
    a = actions(rms);
    actionCache.set(rms, a);
  }
  return a;
}

/**
 * The shortest action sequence (at most `depthMax` long) that leads from
 * `from` to `to`: [] for a stutter, undefined when there is none.
 */
export function findPath(from: TwoPhaseState, to: TwoPhaseState, depthMax = STEP_DEPTH_MAX): readonly Action[] | undefined {
  if (same(from, to)) return [];
  if (!below(from, to)) return undefined;
  const acts = actionsFor(from.rmState.length);
  // Iterative deepening keeps the answer shortest; with pruning each level is tiny.
  for (let depth = 1; depth <= depthMax; depth++) {
    const path: Action[] = [];
    const search = (s: TwoPhaseState, left: number): boolean => {
      for (const a of acts) {
        const t = next(s, a);
        if (!t || !below(t, to)) continue;
        path.push(a);
        if (same(t, to)) return true;
        if (left > 1 && search(t, left - 1)) return true;
        path.pop();
      }
      return false;
    };
    if (search(from, depth)) return path;
  }
  return undefined;
}

export function describeState(s: TwoPhaseState): string {
  const bits = (n: number) => n.toString(2).padStart(s.rmState.length, '0').split('').reverse().join('');
  return `rm=[${s.rmState.join(',')}] tm=${s.tmState} tmPrepared=${bits(s.tmPrepared)} preparedMsgs=${bits(s.preparedMsgs)} commit=${s.commitMsg} abort=${s.abortMsg}`;
}

export const describeAction = (a: Action): string => ('rm' in a ? `${a.name}(${a.rm})` : a.name);
