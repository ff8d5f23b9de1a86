/**
 * `twopc scenario run chaos-soak [--seed S] [--kills N] [--duration D]`: the
 * bank workload on three participants, with a fault proxy in front of each
 * participant and of the coordinator, while a nemesis runs cycles of
 *
 *   fault phase:  random proxy faults, SIGKILL of one to three nodes (coordinator
 *                 or participants) with a restart after a random delay, and
 *                 SIGSTOP/SIGCONT of a node for a while;
 *   quiet period: proxies healed, every node running; every third one ends
 *                 with a quiescent total read (scenarios/bank-client.ts);
 *
 * until N kills were made or D ran out. Then the heal phase: stop the
 * client, resume and restart everything, heal the proxies, and wait
 * (bounded) until nothing is in doubt; the time that takes is the time to
 * converge. The checker (scenarios/checker.ts) judges the history.
 *
 * The nemesis's choices come from the seed; the workload's interleaving
 * depends on timing, so a seed replays the faults, not the exact history.
 */
import { BankClient, failureReasons, infoOutcomes } from './bank-client.ts';
import { restartDown, ScenarioCluster, sleep } from './kit.ts';
import { DOWN_MS, healAndJudge, KILLS_DEFAULT, killTogether, runCycles, SOAK_BANK, soakClient, soakDurationMs, type Nemesis, type Victim } from './nemesis.ts';
import { createPrng, type Prng } from './prng.ts';
import { FAULT_KINDS, type FaultKind, type FaultRule } from './proxy.ts';
import { result, type ScenarioContext, type ScenarioResult } from './scenario.ts';
import { createProgress } from './progress.ts';
import { nemesisMarks, runPlots, sampleInDoubt, type InDoubtSampler } from './run-plots.ts';

/** Per kill, when no --duration is given: a restart of a tsx process takes seconds on a busy machine. */
const DURATION_PER_KILL_MS = 8_000;
const CONCURRENT_READ_EVERY_MS = 2_000;
const RESTART_ATTEMPTS_MAX = 3;
/** SIGSTOP lengths, in ms: long enough for callers to time out now and then. */
const PAUSE_MS: readonly [number, number] = [200, 3_000];
const QUIET_MS: readonly [number, number] = [500, 2_000];

/** The lane the diagram and the charts show proxy faults on: they belong to no single node. */
const PROXY_LANE = 'proxies';

const PATHS = ['/v1/2pc/prepare', '/v1/2pc/commit', '/v1/2pc/abort', '/v1/2pc/transactions/'];

/** A few random rules: a fault kind on a protocol path, at a modest probability. */
function randomRules(rng: Prng, coordinatorSide: boolean): FaultRule[] {
  const n = rng.int(1, 3);
  const kinds = FAULT_KINDS.filter((k) => k !== 'error-503');
  return Array.from({ length: n }, () => {
    const fault: FaultKind = rng.pick(kinds);
    return {
      match: { pathPrefix: coordinatorSide ? '/v1/transactions/' : rng.pick(PATHS) },
      fault,
      probability: fault === 'hang' ? 0.05 : 0.1 + rng.next() * 0.2,
      ...(fault === 'delay' ? { delayMs: [10, 500] as const } : {}),
    };
  });
}

interface ChaosNemesis extends Nemesis {
  proxyFaultPhases: number;
  restartFailures: number;
}

/** Starts a node that is down, retrying a failed start, said out loud (kit.ts restartDown). */
const restart = (c: ScenarioCluster, name: string, n: ChaosNemesis, say: (line: string) => void): Promise<void> =>
  restartDown(c, name, {
    attemptsMax: RESTART_ATTEMPTS_MAX,
    onFailure: (attempt, message) => {
      n.restartFailures++;
      say(`  restart of ${name} failed (attempt ${attempt}): ${message}`);
    },
  });

export async function runChaosSoak(ctx: ScenarioContext): Promise<ScenarioResult> {
  const killsTarget = ctx.kills ?? KILLS_DEFAULT;
  // The bar counts kills, the soak's own measure of progress; a narration line first erases it.
  const progress = createProgress({ label: 'chaos-soak kills', total: killsTarget, json: ctx.json });
  const say = (line: string): void => {
    progress.finish();
    ctx.log(line);
  };
  const durationMs = ctx.durationMs ?? soakDurationMs(killsTarget, DURATION_PER_KILL_MS);
  const rng = createPrng(ctx.seed);
  const started = Date.now();
  const c = await ScenarioCluster.start({ prefix: 'chaos-soak', seed: ctx.seed, proxies: true, keepData: ctx.keepData === true });
  let client: BankClient | undefined;
  let reading = true;
  let reader: Promise<void> | undefined;
  const pausesRunning: Promise<void>[] = [];
  let sampler: InDoubtSampler | undefined;
  try {
    client = soakClient(c, ctx.seed);
    await client.open();
    say(`chaos-soak: seed ${ctx.seed}, ${killsTarget} kills within ${Math.round(durationMs / 1000)} s, ${SOAK_BANK.participants.length * SOAK_BANK.accountsPerParticipant} accounts`);
    // Only a page draws the in-doubt samples: without --html the soak asks the participants nothing more.
    if (ctx.timeline) sampler = sampleInDoubt(SOAK_BANK.participants, (name) => c.inDoubt(name));
    client.start();
    const bankClient = client;
    reader = (async () => {
      while (reading) {
        await sleep(CONCURRENT_READ_EVERY_MS);
        if (reading) await bankClient.concurrentRead();
      }
    })();

    const n: ChaosNemesis = { kills: 0, killsBy: {}, pauses: 0, cycles: 0, proxyFaultPhases: 0, restartFailures: 0 };
    const names = c.nodes.map((x) => x.name);
    const victim = (name: string): Victim => ({ label: name, kill: () => c.kill(name), start: () => restart(c, name, n, say) });
    const faultPhase = async (): Promise<void> => {
      // Every other cycle has proxy faults for sure, the others by chance, so no seed runs without them.
      if (n.cycles % 2 === 1 || rng.next() < 0.4) {
        n.proxyFaultPhases++;
        const faulty: string[] = [];
        for (const [name, p] of c.proxies) {
          const rules = rng.next() < 0.5 ? randomRules(rng, false) : [];
          p.setRules(rules);
          if (rules.length > 0) faulty.push(name);
        }
        // Drawn only when the proxy exists, as before, so a seed replays the same faults.
        if (c.coordinatorProxy) {
          const rules = rng.next() < 0.3 ? randomRules(rng, true) : [];
          c.coordinatorProxy.setRules(rules);
          if (rules.length > 0) faulty.push('coordinator');
        }
        if (faulty.length > 0) c.mark(PROXY_LANE, 'fault', `proxy faults: ${faulty.join(' ')}`);
      }
      const actions = rng.int(1, 3);
      for (let a = 0; a < actions; a++) {
        if (rng.next() < 0.7 && n.kills < killsTarget) {
          // Often two or three at once: restarts run in parallel, and a coordinator and a
          // participant down together is a case of its own.
          const victims = new Set([rng.pick(names)]);
          if (rng.next() < 0.6) victims.add(rng.pick(names));
          if (rng.next() < 0.3) victims.add(rng.pick(names));
          await killTogether([...victims].map(victim), rng.int(...DOWN_MS), n);
          progress.update(n.kills);
        } else {
          const victim = rng.pick(names);
          const ms = rng.int(...PAUSE_MS);
          n.pauses++;
          pausesRunning.push(
            (async () => {
              c.pause(victim);
              await sleep(ms);
              c.resume(victim);
            })(),
          );
        }
      }
      await Promise.all(pausesRunning.splice(0));
      // The quiet period begins with the proxies healed and every node running.
      c.healProxies();
      await Promise.all(names.map((v) => restart(c, v, n, say)));
    };
    await runCycles({ n, client, rng, killsTarget, started, durationMs, quietMs: QUIET_MS, say, faultPhase });
    const faultPhaseMs = Date.now() - started;

    // ---- heal phase
    reading = false;
    await reader;
    await client.stop();
    for (const x of c.nodes) x.resume();
    c.healProxies();
    await Promise.all(names.map((v) => restart(c, v, n, say)));
    const { report, final, checks, convergeMs, figures: common } = await healAndJudge(c, client, n, killsTarget, ctx.seed);
    await sampler?.stop();
    const faults = [...c.proxies.values(), ...(c.coordinatorProxy ? [c.coordinatorProxy] : [])].reduce((sum, p) => {
      const f = p.stats().faults;
      return sum + Object.values(f).reduce((a, b) => a + b, 0);
    }, 0);
    const figures: Record<string, number | string> = {
      ...common,
      proxyFaultPhases: n.proxyFaultPhases,
      proxyFaults: faults,
      restartFailures: n.restartFailures,
      infoCommitted: report.counts.infoCommitted,
      infoAborted: report.counts.infoAborted,
      quiescentReads: report.reads.quiescent,
      wrongTotalReads: report.reads.wrongTotal,
      concurrentReads: report.reads.concurrent,
      negativeBalances: report.negativeBalances,
      faultPhaseMs,
      durationMs: Date.now() - started,
    };
    say(
      `chaos-soak: kills ${n.kills} (${figures.killsBy}), pauses ${n.pauses}, proxy faults ${faults}; transfers ${client.history.length}: ` +
        `ok ${report.counts.ok}, fail ${report.counts.fail}, info ${report.counts.info} ${JSON.stringify(infoOutcomes(client.history, final))}`,
    );
    say(
      `  reads: ${report.reads.quiescent} quiescent (${report.reads.wrongTotal} wrong total), ${report.reads.concurrent} concurrent (not judged); ` +
        `negative ${report.negativeBalances}, acked lost ${report.ackedCommitsLost + report.ackedAbortsCommitted}, split ${report.splitOutcomes}, ` +
        `in doubt at end ${report.inDoubtAtEnd}; total ${report.finalTotal}/${report.expectedTotal}; converged in ${convergeMs} ms; ${Math.round((Date.now() - started) / 1000)} s in all`,
    );
    say(`  not ok, by reason: ${failureReasons(client.history)}`);
    for (const v of report.violations.slice(0, 10)) say(`  violation: ${v}`);
    // The whole soak has far too many messages to draw: the diagram shows the nemesis and what the nodes did about it.
    const timeline = ctx.timeline ? c.timeline({ marksOnly: true, eventsMax: 3_000 }) : undefined;
    const plots = timeline && sampler ? runPlots(client.history, nemesisMarks(timeline), sampler.samples) : undefined;
    return result('chaos-soak', checks, figures, { ...(timeline ? { timeline } : {}), ...(plots ? { plots } : {}), lanes: c.lanes });
  } finally {
    progress.finish();
    reading = false;
    await reader;
    await sampler?.stop();
    await client?.stop();
    await Promise.all(pausesRunning);
    await c.close();
    if (ctx.keepData) say(`data and node logs kept in ${c.dataDir}`);
  }
}
