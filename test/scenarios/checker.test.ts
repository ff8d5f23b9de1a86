/**
 * The bank checker on hand-made histories: a clean one passes, and each kind
 * of anomaly the chaos soak hunts for makes it fail, counted exactly.
 */
import { describe, expect, it } from 'vitest';
import { checkBank, finalOutcome, reportChecks, type CheckInput, type TransferRecord } from '../../scenarios/checker.ts';

const opening = { p1: { a: 100 }, p2: { b: 100 } };

/** a (p1) pays b (p2) `amount`. */
function transfer(id: number, result: TransferRecord['result'], amount: number, extra: Partial<TransferRecord> = {}): TransferRecord {
  return {
    id,
    txId: `tx-${id}`,
    deltas: [
      { participant: 'p1', key: 'a', delta: -amount },
      { participant: 'p2', key: 'b', delta: amount },
    ],
    result,
    ...(result === 'ok' ? { reported: 'committed' } : result === 'fail' ? { reported: 'aborted' } : {}),
    startMs: id * 10,
    endMs: id * 10 + 5,
    ...extra,
  };
}

const both = (state: string) => ({ p1: state, p2: state });

function input(over: Partial<Omit<CheckInput, 'final'>> & { final?: Partial<CheckInput['final']> }): CheckInput {
  return {
    opening,
    history: over.history ?? [],
    reads: over.reads ?? [],
    final: { txStates: {}, balances: { p1: { a: 100 }, p2: { b: 100 } }, inDoubt: { p1: [], p2: [] }, ...over.final },
  };
}

describe('finalOutcome', () => {
  it('reads the participants: all committed, none committed, mixed, or still prepared', () => {
    expect(finalOutcome(both('committed'), ['p1', 'p2'])).toBe('committed');
    expect(finalOutcome({ p1: 'aborted', p2: 'unknown' }, ['p1', 'p2'])).toBe('aborted');
    expect(finalOutcome({ p1: 'committed', p2: 'aborted' }, ['p1', 'p2'])).toBe('split');
    expect(finalOutcome({ p1: 'committed', p2: 'unknown' }, ['p1', 'p2'])).toBe('split');
    expect(finalOutcome({ p1: 'committed', p2: 'prepared' }, ['p1', 'p2'])).toBe('in-doubt');
    expect(finalOutcome({}, ['p1'])).toBe('aborted');
  });
});

describe('checkBank', () => {
  it('passes a clean history: ok committed, fail aborted, info resolved, exact balances, quiescent read exact', () => {
    const r = checkBank(
      input({
        history: [transfer(1, 'ok', 30), transfer(2, 'fail', 500), transfer(3, 'info', 10), { ...transfer(4, 'fail', 5), txId: undefined }],
        reads: [
          { atMs: 1, quiescent: true, total: 200, negatives: [] },
          { atMs: 2, quiescent: false, total: 170, negatives: [] },
        ],
        final: {
          txStates: { 'tx-1': both('committed'), 'tx-2': both('aborted'), 'tx-3': both('committed'), 'tx-4': both('unknown') },
          balances: { p1: { a: 60 }, p2: { b: 140 } },
        },
      }),
    );
    expect(r.valid).toBe(true);
    expect(r.counts).toEqual({ ok: 1, fail: 2, info: 1, infoCommitted: 1, infoAborted: 0, infoUnresolved: 0 });
    expect(r.committed).toBe(2);
    expect([r.expectedTotal, r.finalTotal]).toEqual([200, 200]);
    // The concurrent read is off by a transfer in flight, and is not judged.
    expect(r.reads).toEqual({ quiescent: 1, concurrent: 1, wrongTotal: 0 });
    expect(reportChecks(r).every((c) => c.ok)).toBe(true);
  });

  it('fails on a lost acknowledged commit', () => {
    const r = checkBank(input({ history: [transfer(1, 'ok', 30)], final: { txStates: { 'tx-1': both('aborted') } } }));
    expect(r.valid).toBe(false);
    expect(r.ackedCommitsLost).toBe(1);
    expect(r.violations[0]).toMatch(/tx-1.*told committed/);
    expect(reportChecks(r).find((c) => c.name === 'acknowledged commits kept')?.ok).toBe(false);
  });

  it('fails on an acknowledged abort that committed anyway', () => {
    const r = checkBank(
      input({ history: [transfer(1, 'fail', 30)], final: { txStates: { 'tx-1': both('committed') }, balances: { p1: { a: 70 }, p2: { b: 130 } } } }),
    );
    expect(r.valid).toBe(false);
    expect(r.ackedAbortsCommitted).toBe(1);
    expect(r.balanceMismatches).toBe(0);
  });

  it('fails on a split outcome, and the money it makes or loses shows in the balances', () => {
    const r = checkBank(
      input({
        history: [transfer(1, 'info', 30)],
        final: { txStates: { 'tx-1': { p1: 'committed', p2: 'aborted' } }, balances: { p1: { a: 70 }, p2: { b: 100 } } },
      }),
    );
    expect(r.valid).toBe(false);
    expect(r.splitOutcomes).toBe(1);
    expect(r.counts.infoUnresolved).toBe(1);
    expect(r.finalTotal).toBe(170);
    expect(r.balanceMismatches).toBe(1);
  });

  it('fails on a wrong total: a transfer applied twice', () => {
    const r = checkBank(
      input({
        history: [transfer(1, 'ok', 30)],
        final: { txStates: { 'tx-1': both('committed') }, balances: { p1: { a: 40 }, p2: { b: 160 } } },
      }),
    );
    expect(r.valid).toBe(false);
    expect(r.balanceMismatches).toBe(2);
    // Applied twice on both sides keeps the total: only the exact balances catch it.
    expect(r.finalTotal).toBe(200);
    expect(reportChecks(r).find((c) => c.name.startsWith('exact balances'))?.ok).toBe(false);
  });

  it('fails on a quiescent read with the wrong total, and ignores a concurrent one', () => {
    const bad = checkBank(input({ reads: [{ atMs: 5, quiescent: true, total: 199, negatives: [] }] }));
    expect(bad.valid).toBe(false);
    expect(bad.reads.wrongTotal).toBe(1);
    const fine = checkBank(input({ reads: [{ atMs: 5, quiescent: false, total: 199, negatives: [] }] }));
    expect(fine.valid).toBe(true);
  });

  it('fails on a negative balance, at the end or in any read', () => {
    const atEnd = checkBank(
      input({
        history: [transfer(1, 'ok', 130)],
        final: { txStates: { 'tx-1': both('committed') }, balances: { p1: { a: -30 }, p2: { b: 230 } } },
      }),
    );
    expect(atEnd.negativeBalances).toBe(1);
    expect(atEnd.balanceMismatches).toBe(0);
    expect(atEnd.valid).toBe(false);
    const inRead = checkBank(input({ reads: [{ atMs: 5, quiescent: false, total: 200, negatives: ['p1/a=-1'] }] }));
    expect(inRead.negativeBalances).toBe(1);
    expect(inRead.valid).toBe(false);
  });

  it('fails while anything is still in doubt', () => {
    const r = checkBank(
      input({ history: [transfer(1, 'info', 30)], final: { txStates: { 'tx-1': { p1: 'prepared', p2: 'committed' } }, inDoubt: { p1: ['tx-1'], p2: [] } } }),
    );
    expect(r.valid).toBe(false);
    expect(r.inDoubtAtEnd).toBe(1);
    expect(r.counts.infoUnresolved).toBe(1);
  });

  it('keeps exact counts past the detail limit', () => {
    const history = Array.from({ length: 80 }, (_, i) => transfer(i + 1, 'ok', 1));
    const r = checkBank(input({ history, final: { txStates: {} } }));
    expect(r.ackedCommitsLost).toBe(80);
    expect(r.violations.length).toBeLessThanOrEqual(50);
  });
});
