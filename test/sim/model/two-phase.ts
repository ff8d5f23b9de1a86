/**
 * Lamport's TLA+ TwoPhase specification (the commit protocol of "Consensus on
 * Transaction Commit", Gray & Lamport), transcribed action for action, and an
 * exhaustive breadth-first exploration of its state space.
 *
 * With three resource managers the reachable set has 288 states, the figure TLC
 * reports for this spec, and TCConsistent holds in every one of them: no RM is
 * committed while another is aborted. The simulator's traces are mapped onto
 * these states and every step is checked to be one of these actions (or a
 * stutter), so the implementation is held to the same model.
 */
export type RmState = 'working' | 'prepared' | 'committed' | 'aborted';
export type TmState = 'init' | 'committed' | 'aborted';

export interface TwoPhaseState {
  readonly rmState: readonly RmState[];
  readonly tmState: TmState;
  /** Bit i set: the TM has received RM i's Prepared message. */
  readonly tmPrepared: number;
  /** Bit i set: RM i's Prepared message is in `msgs`. */
  readonly preparedMsgs: number;
  readonly commitMsg: boolean;
  readonly abortMsg: boolean;
}

export type Action =
  | { readonly name: 'TMRcvPrepared'; readonly rm: number }
  | { readonly name: 'TMCommit' }
  | { readonly name: 'TMAbort' }
  | { readonly name: 'RMPrepare'; readonly rm: number }
  | { readonly name: 'RMChooseToAbort'; readonly rm: number }
  | { readonly name: 'RMRcvCommitMsg'; readonly rm: number }
  | { readonly name: 'RMRcvAbortMsg'; readonly rm: number };

export function init(rms: number): TwoPhaseState {
  return { rmState: Array<RmState>(rms).fill('working'), tmState: 'init', tmPrepared: 0, preparedMsgs: 0, commitMsg: false, abortMsg: false };
}

const setRm = (s: TwoPhaseState, rm: number, v: RmState): readonly RmState[] => s.rmState.map((x, i) => (i === rm ? v : x));
const all = (rms: number) => (1 << rms) - 1;

/** The successor under `action`, or undefined when the action is not enabled. */
export function next(s: TwoPhaseState, a: Action): TwoPhaseState | undefined {
  const n = s.rmState.length;
  switch (a.name) {
    case 'TMRcvPrepared':
      return s.tmState === 'init' && (s.preparedMsgs & (1 << a.rm)) !== 0 ? { ...s, tmPrepared: s.tmPrepared | (1 << a.rm) } : undefined;
    case 'TMCommit':
      return s.tmState === 'init' && s.tmPrepared === all(n) ? { ...s, tmState: 'committed', commitMsg: true } : undefined;
    case 'TMAbort':
      return s.tmState === 'init' ? { ...s, tmState: 'aborted', abortMsg: true } : undefined;
    case 'RMPrepare':
      return s.rmState[a.rm] === 'working' ? { ...s, rmState: setRm(s, a.rm, 'prepared'), preparedMsgs: s.preparedMsgs | (1 << a.rm) } : undefined;
    case 'RMChooseToAbort':
      return s.rmState[a.rm] === 'working' ? { ...s, rmState: setRm(s, a.rm, 'aborted') } : undefined;
    case 'RMRcvCommitMsg':
      return s.commitMsg ? { ...s, rmState: setRm(s, a.rm, 'committed') } : undefined;
    case 'RMRcvAbortMsg':
      return s.abortMsg ? { ...s, rmState: setRm(s, a.rm, 'aborted') } : undefined;
  }
}

export function actions(rms: number): Action[] {
  const out: Action[] = [{ name: 'TMCommit' }, { name: 'TMAbort' }];
  for (let rm = 0; rm < rms; rm++) {
    out.push(
      { name: 'TMRcvPrepared', rm },
      { name: 'RMPrepare', rm },
      { name: 'RMChooseToAbort', rm },
      { name: 'RMRcvCommitMsg', rm },
      { name: 'RMRcvAbortMsg', rm },
    );
  }
  return out;
}

export const key = (s: TwoPhaseState): string =>
  `${s.rmState.join(',')}|${s.tmState}|${s.tmPrepared}|${s.preparedMsgs}|${Number(s.commitMsg)}${Number(s.abortMsg)}`;

/** TCConsistent: no RM has committed while another has aborted. */
export function tcConsistent(s: TwoPhaseState): boolean {
  return !(s.rmState.includes('committed') && s.rmState.includes('aborted'));
}

/** TPTypeOK-style sanity: the TM only commits with every Prepared received, and commit and abort messages exclude each other. */
export function invariantsHold(s: TwoPhaseState): boolean {
  const n = s.rmState.length;
  if (s.tmState === 'committed' && s.tmPrepared !== all(n)) return false;
  if (s.commitMsg && s.abortMsg) return false;
  return tcConsistent(s);
}

/** Every state reachable from Init, breadth first; bounded so a modelling mistake cannot run away. */
export function explore(rms: number, statesMax = 1_000_000): { states: Map<string, TwoPhaseState>; transitions: number } {
  const start = init(rms);
  const states = new Map<string, TwoPhaseState>([[key(start), start]]);
  const queue: TwoPhaseState[] = [start];
  const acts = actions(rms);
  let transitions = 0;
  for (let i = 0; i < queue.length; i++) {
    const s = queue[i] as TwoPhaseState;
    for (const a of acts) {
      const t = next(s, a);
      if (!t) continue;
      transitions++;
      const k = key(t);
      if (!states.has(k)) {
        if (states.size >= statesMax) throw new Error(`state space exceeds ${statesMax}`);
        states.set(k, t);
        queue.push(t);
      }
    }
  }
  return { states, transitions };
}

/** Whether `to` follows from `from` by one action, or is the same state (a stutter step). */
export function isStep(from: TwoPhaseState, to: TwoPhaseState): Action | 'stutter' | undefined {
  if (key(from) === key(to)) return 'stutter';
  for (const a of actions(from.rmState.length)) {
    const t = next(from, a);
    if (t && key(t) === key(to)) return a;
  }
  return undefined;
}
