/**
 * `twopc scenario run network-faults`: the bank workload with a fault proxy
 * (scenarios/proxy.ts) between the coordinator and each participant, and one
 * in front of the coordinator for the participants' outcome inquiries.
 *
 * It walks phases, one per message of the protocol: prepare (the request),
 * vote (the prepare's response), commit and abort (the requests), ack (their
 * responses), and inquiries (to the coordinator, and peer to peer), each with
 * drop-request, drop-response, duplicate, delay, reorder and hang as they
 * apply; then a phase with everything at once. Between phases the proxies
 * heal and the client takes a quiescent total read. At the end: heal, wait
 * until nothing is in doubt, and run the checker (scenarios/checker.ts).
 */
import { BankClient, failureReasons, infoOutcomes } from './bank-client.ts';
import { checkBank, reportChecks } from './checker.ts';
import { ScenarioCluster, sleep } from './kit.ts';
import { createPrng } from './prng.ts';
import type { FaultKind, FaultRule, RouteLabel } from './proxy.ts';
import { nemesisMarks, runPlots, sampleInDoubt, type InDoubtSampler } from './run-plots.ts';
import { check, result, type ScenarioCheck, type ScenarioContext, type ScenarioResult } from './scenario.ts';
import type { BankOptions } from './workloads/bank.ts';

const BANK: BankOptions = { participants: ['p1', 'p2', 'p3'], accountsPerParticipant: 4, openingBalance: 100 };
/** Large against the balances, so that many transfers vote no and the abort path gets traffic too. */
const AMOUNT_MAX = 70;
const CONCURRENCY = 4;
const TRANSFERS_MAX = 20_000;
const DURATION_DEFAULT_MS = 60_000;
const READ_WAIT_MS = 20_000;
const HEAL_WAIT_MS = 90_000;
/** The marks the charts draw come from their own timeline, which messages cannot crowd out. */
const PLOT_MARKS_MAX = 1_000;

interface Phase {
  readonly name: string;
  /** Rules for the proxies in front of the participants. */
  readonly participants: readonly FaultRule[];
  /** Rules for the proxy in front of the coordinator (outcome inquiries). */
  readonly coordinator: readonly FaultRule[];
}

const on = (pathPrefix: string, fault: FaultKind, probability: number, method?: string): FaultRule => ({
  match: { pathPrefix, ...(method ? { method } : {}) },
  fault,
  probability,
  ...(fault === 'delay' ? { delayMs: [20, 400] as const } : {}),
});

const REQUEST_FAULTS: readonly [FaultKind, number][] = [
  ['drop-request', 0.08],
  ['duplicate', 0.12],
  ['delay', 0.12],
  ['reorder', 0.1],
  ['hang', 0.04],
];

function requestFaults(pathPrefix: string, scale = 1, method?: string): FaultRule[] {
  return REQUEST_FAULTS.map(([fault, p]) => on(pathPrefix, fault, p * scale, method));
}

/** Where participants send their (batched) outcome inquiries: participant/runtime/inquiries.ts. */
const OUTCOMES_PATH = '/v1/outcomes';

/** The phases, in order. Probabilities are per request and per rule, walked in order by the proxy. */
export function networkPhases(): Phase[] {
  return [
    { name: 'prepare', participants: requestFaults('/v1/2pc/prepare'), coordinator: [] },
    { name: 'vote', participants: [on('/v1/2pc/prepare', 'drop-response', 0.25)], coordinator: [] },
    { name: 'commit', participants: requestFaults('/v1/2pc/commit'), coordinator: [] },
    { name: 'abort', participants: requestFaults('/v1/2pc/abort'), coordinator: [] },
    { name: 'ack', participants: [on('/v1/2pc/commit', 'drop-response', 0.3), on('/v1/2pc/abort', 'drop-response', 0.3)], coordinator: [] },
    {
      // Most decisions are lost on the way, so participants wait, then ask: the coordinator through its
      // proxy, and their peers when the coordinator seems unreachable.
      name: 'inquiry',
      participants: [
        on('/v1/2pc/commit', 'drop-request', 0.95),
        on('/v1/2pc/abort', 'drop-request', 0.95),
        on('/v1/2pc/transactions/', 'drop-response', 0.15, 'POST'),
        ...requestFaults('/v1/2pc/transactions/', 2, 'POST'),
      ],
      coordinator: [on(OUTCOMES_PATH, 'drop-response', 0.15), ...requestFaults(OUTCOMES_PATH, 2)],
    },
    {
      name: 'everything',
      participants: [
        ...requestFaults('/v1/2pc/prepare', 0.5),
        on('/v1/2pc/prepare', 'drop-response', 0.05),
        ...requestFaults('/v1/2pc/commit', 0.5),
        ...requestFaults('/v1/2pc/abort', 0.5),
        on('/v1/2pc/commit', 'drop-response', 0.1),
        on('/v1/2pc/abort', 'drop-response', 0.1),
      ],
      coordinator: [on(OUTCOMES_PATH, 'drop-response', 0.1), ...requestFaults(OUTCOMES_PATH, 0.5)],
    },
  ];
}

/** The protocol messages a fault can hit, named as the brief names them, with the proxy route and faults that hit them. */
export const MESSAGE_FAULTS: readonly { message: string; route: RouteLabel; faults: readonly FaultKind[] }[] = [
  { message: 'prepare', route: 'prepare', faults: ['drop-request', 'duplicate', 'delay', 'reorder', 'hang'] },
  { message: 'vote', route: 'prepare', faults: ['drop-response'] },
  { message: 'commit', route: 'commit', faults: ['drop-request', 'duplicate', 'delay', 'reorder', 'hang'] },
  { message: 'abort', route: 'abort', faults: ['drop-request', 'duplicate', 'delay', 'reorder', 'hang'] },
  { message: 'ack', route: 'commit', faults: ['drop-response'] },
  { message: 'outcome inquiry', route: 'outcome', faults: ['drop-request', 'drop-response', 'duplicate', 'delay', 'reorder', 'hang'] },
];

export async function runNetworkFaults(ctx: ScenarioContext): Promise<ScenarioResult> {
  const say = ctx.log;
  const phases = networkPhases();
  const durationMs = ctx.durationMs ?? DURATION_DEFAULT_MS;
  const phaseMs = Math.max(2_000, Math.floor(durationMs / phases.length));
  const started = Date.now();
  const c = await ScenarioCluster.start({ prefix: 'network-faults', seed: ctx.seed, proxies: true, keepData: ctx.keepData === true });
  let client: BankClient | undefined;
  let sampler: InDoubtSampler | undefined;
  try {
    client = new BankClient(c, { bank: BANK, rng: createPrng(ctx.seed), concurrency: CONCURRENCY, transfersMax: TRANSFERS_MAX, amountMax: AMOUNT_MAX });
    await client.open();
    say(`accounts opened: ${BANK.participants.length * BANK.accountsPerParticipant} accounts of ${BANK.openingBalance}; ${phases.length} fault phases of ${phaseMs / 1000} s`);
    // Only a page draws the in-doubt samples: without --html the run asks the participants nothing more.
    if (ctx.timeline) sampler = sampleInDoubt(BANK.participants, (name) => c.inDoubt(name));
    client.start();
    for (const phase of phases) {
      for (const p of c.proxies.values()) p.setRules(phase.participants);
      c.coordinatorProxy?.setRules(phase.coordinator);
      c.mark('proxies', 'fault', `proxy faults: ${phase.name}`);
      const before = client.transfersStarted;
      const phaseEnd = Date.now() + phaseMs;
      while (Date.now() < phaseEnd) {
        await sleep(1_000);
        await client.concurrentRead();
      }
      c.healProxies();
      const read = await client.quiescentRead(READ_WAIT_MS);
      say(`phase ${phase.name.padEnd(10)} transfers ${client.transfersStarted - before}, then healed; total read ${read ? `${read.total}${read.quiescent ? ' (quiescent)' : ' (not quiescent, not judged)'}` : 'failed'}`);
    }
    await client.stop();
    c.healProxies();
    const healStart = Date.now();
    const converged = await c.waitSettled(HEAL_WAIT_MS, { coordinator: true });
    const convergeMs = Date.now() - healStart;
    await sampler?.stop();
    const final = await client.observe();
    const report = checkBank({ opening: client.opening, history: client.history, reads: client.reads, final });
    const checks: ScenarioCheck[] = reportChecks(report);
    checks.push(check('converged after healing', converged, `${convergeMs} ms`));

    // Which faults actually hit which message.
    const figures: Record<string, number | string> = {};
    const stats = [...c.proxies.values()].map((p) => p.stats());
    const coordinatorStats = c.coordinatorProxy?.stats();
    const count = (route: RouteLabel, fault: FaultKind) =>
      stats.reduce((sum, s) => sum + s.routes[route].faults[fault], 0) + (route === 'outcome' && coordinatorStats ? coordinatorStats.routes.outcome.faults[fault] : 0);
    for (const m of MESSAGE_FAULTS) {
      const hits = m.faults.map((f) => [f, count(m.route, f)] as const);
      // 'ack' is drop-response on commit and abort alike.
      const ackExtra = m.message === 'ack' ? count('abort', 'drop-response') : 0;
      figures[`faults.${m.message}`] = hits.map(([f, n]) => `${f}:${n + (f === 'drop-response' ? ackExtra : 0)}`).join(' ');
      const total = hits.reduce((s, [, n]) => s + n, 0) + ackExtra;
      checks.push(check(`faults injected on ${m.message}`, total > 0, String(figures[`faults.${m.message}`])));
    }
    const peer = stats.reduce((sum, s) => sum + Object.values(s.routes.inquiry.faults).reduce((a, b) => a + b, 0), 0);
    figures['faults.peer inquiry'] = peer;
    Object.assign(figures, {
      transfers: client.history.length,
      ok: report.counts.ok,
      fail: report.counts.fail,
      info: report.counts.info,
      committed: report.committed,
      total: report.finalTotal,
      expectedTotal: report.expectedTotal,
      quiescentReads: report.reads.quiescent,
      concurrentReads: report.reads.concurrent,
      convergeMs,
      durationMs: Date.now() - started,
    });
    say(`transfers ${client.history.length}: ok ${report.counts.ok}, fail ${report.counts.fail}, info ${report.counts.info} (${JSON.stringify(infoOutcomes(client.history, final))}); total ${report.finalTotal}/${report.expectedTotal}; converged in ${convergeMs} ms`);
    say(`  not ok, by reason: ${failureReasons(client.history)}`);
    for (const v of report.violations.slice(0, 10)) say(`  violation: ${v}`);
    const timeline = ctx.timeline ? c.timeline({ eventsMax: 1_500 }) : undefined;
    const plots = sampler ? runPlots(client.history, nemesisMarks(c.timeline({ marksOnly: true, eventsMax: PLOT_MARKS_MAX })), sampler.samples) : undefined;
    return result('network-faults', checks, figures, { ...(timeline ? { timeline } : {}), ...(plots ? { plots } : {}), lanes: c.lanes });
  } finally {
    // Stop the workers first: against stopped nodes they would only fail, fast, until their bound.
    await client?.stop();
    await sampler?.stop();
    await c.close();
    if (ctx.keepData) say(`data and node logs kept in ${c.dataDir}`);
  }
}
