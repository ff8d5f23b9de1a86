/**
 * The bank workload: accounts spread over participants, concurrent transfers
 * (`add` with `min: 0` on the payer, `add` on the payee), and a checker that
 * reads every participant and judges the history from the client's side.
 * Used by the integration test, the chaos soak and the bench.
 */
import type { Prng } from '../prng.ts';

export interface BankOptions {
  readonly participants: readonly string[];
  readonly accountsPerParticipant: number;
  readonly openingBalance: number;
}

export interface Account {
  readonly participant: string;
  readonly key: string;
}

export function accounts(options: BankOptions): Account[] {
  return options.participants.flatMap((participant) =>
    Array.from({ length: options.accountsPerParticipant }, (_, i) => ({ participant, key: `acct-${participant}-${i}` })),
  );
}

/** One transaction that funds every account. */
export function openingTransaction(options: BankOptions): { branches: { participant: string; ops: unknown[] }[] } {
  return {
    branches: options.participants.map((participant) => ({
      participant,
      ops: accounts(options)
        .filter((a) => a.participant === participant)
        .map((a) => ({ op: 'put', key: a.key, value: options.openingBalance })),
    })),
  };
}

/** A transfer between two different accounts; one branch when both live on the same participant. */
export function transferTransaction(from: Account, to: Account, amount: number): { branches: { participant: string; ops: unknown[] }[] } {
  const debit = { op: 'add', key: from.key, amount: -amount, min: 0 };
  const credit = { op: 'add', key: to.key, amount };
  if (from.participant === to.participant) return { branches: [{ participant: from.participant, ops: [debit, credit] }] };
  return {
    branches: [
      { participant: from.participant, ops: [debit] },
      { participant: to.participant, ops: [credit] },
    ],
  };
}

export function randomTransfer(rng: Prng, all: readonly Account[], amountMax: number) {
  const from = rng.pick(all);
  let to = rng.pick(all);
  for (let i = 0; i < 8 && to.key === from.key; i++) to = rng.pick(all);
  if (to.key === from.key) return undefined;
  const amount = rng.int(1, amountMax);
  return { from, to, amount, body: transferTransaction(from, to, amount) };
}
