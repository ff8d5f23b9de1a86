/**
 * `twopc scenario run fsync-failure`: an fdatasync that fails (EIO, injected
 * with --chaos and TWOPC_FAIL_FSYNC_AFTER=n, shared/fsync-fault.ts) in a
 * running participant and then in the running coordinator, under the bank
 * workload. Each must stop at once with a non-zero exit (fail-stop: no retry
 * of the sync), leave a WAL that opens, acknowledge nothing that the failed
 * sync should have made durable, and recover from its WAL on restart. The
 * checker (scenarios/checker.ts) judges the whole history: an
 * acknowledgement given after the failure would show up as a lost
 * acknowledged commit or a split outcome once the node has restarted.
 */
import { FAIL_FSYNC_ENV } from '../shared/fsync-fault.ts';
import { verifyWal } from '../wal/inspect.ts';
import { BankClient, failureReasons } from './bank-client.ts';
import { checkBank, reportChecks } from './checker.ts';
import { ScenarioCluster, sleep } from './kit.ts';
import { createPrng } from './prng.ts';
import { check, result, type ScenarioCheck, type ScenarioContext, type ScenarioResult } from './scenario.ts';
import { COORDINATOR_LANE } from './timeline.ts';
import type { BankOptions } from './workloads/bank.ts';

const BANK: BankOptions = { participants: ['p1', 'p2', 'p3'], accountsPerParticipant: 4, openingBalance: 100 };
/** Syncs a node makes after its restart before the injected failure: opening the log, then some transfers. */
const SYNCS_OK = 40;
const WORKLOAD_BEFORE_MS = 1_500;
const FAILURE_WAIT_MS = 90_000;
const SETTLE_WAIT_MS = 90_000;

interface Injection {
  readonly node: string;
  readonly code: number | null;
  readonly signal: string | null;
  readonly walStatus: string;
  readonly fatalLogged: boolean;
  readonly okWhileFailing: number;
  readonly failedAfterMs: number;
}

async function inject(c: ScenarioCluster, client: BankClient, node: string, say: (l: string) => void): Promise<Injection> {
  await sleep(WORKLOAD_BEFORE_MS);
  say(`${node}: restarted with ${FAIL_FSYNC_ENV}=${SYNCS_OK}; its WAL's file syncs fail with EIO after the first ${SYNCS_OK}`);
  await c.node(node).stop();
  const from = Date.now();
  const historyFrom = client.history.length;
  await c.start(node, { [FAIL_FSYNC_ENV]: String(SYNCS_OK) });
  const exit = await c.waitCrash(node, FAILURE_WAIT_MS, 'fsync failed: fail-stop');
  const failedAfterMs = Date.now() - from;
  const wal = await verifyWal(c.walDir(node)).catch((e: unknown) => ({ status: `unreadable: ${String(e)}` }));
  // pino writes asynchronously and the process exits at once, so the fatal line may not make it to the file.
  const fatalLogged = c.logLines(node).some((l) => (l.level ?? 0) >= 60 && (l.time ?? 0) >= from);
  const okWhileFailing = client.history.slice(historyFrom).filter((t) => t.result === 'ok').length;
  say(`${node}: ${exit ? `exited (code ${exit.code}, signal ${exit.signal})` : 'did not exit'} ${failedAfterMs} ms after its start; WAL ${wal.status}; restarting it without the fault`);
  await c.start(node);
  return { node, code: exit?.code ?? null, signal: exit?.signal ?? null, walStatus: wal.status, fatalLogged, okWhileFailing, failedAfterMs };
}

export async function runFsyncFailure(ctx: ScenarioContext): Promise<ScenarioResult> {
  const say = ctx.log;
  const started = Date.now();
  const c = await ScenarioCluster.start({ prefix: 'fsync-failure', seed: ctx.seed, keepData: ctx.keepData === true, fsync: 'always' });
  let client: BankClient | undefined;
  try {
    client = new BankClient(c, { bank: BANK, rng: createPrng(ctx.seed), concurrency: 4, transfersMax: 50_000, amountMax: 40 });
    await client.open();
    client.start();
    const injections: Injection[] = [];
    for (const node of ['p2', COORDINATOR_LANE]) injections.push(await inject(c, client, node, say));
    await sleep(WORKLOAD_BEFORE_MS);
    await client.stop();
    const settled = await c.waitSettled(SETTLE_WAIT_MS, { coordinator: true });
    const read = await client.quiescentRead(20_000);
    const final = await client.observe();
    const report = checkBank({ opening: client.opening, history: client.history, reads: client.reads, final });
    const checks: ScenarioCheck[] = [];
    for (const i of injections) {
      checks.push(check(`${i.node} stops at once on the failed sync (non-zero exit, not killed)`, i.code !== null && i.code !== 0 && i.signal === null, `exit code ${i.code}, signal ${i.signal}, ${i.failedAfterMs} ms after its start`));
      checks.push(check(`${i.node} leaves a WAL that opens`, i.walStatus === 'intact' || i.walStatus === 'torn-tail', `verify: ${i.walStatus}`));
    }
    checks.push(...reportChecks(report));
    checks.push(check('everything settles after the restarts', settled, settled ? 'nothing in doubt, nothing unfinished' : `not settled in ${SETTLE_WAIT_MS} ms`));
    say(`transfers ${client.history.length}: ok ${report.counts.ok}, fail ${report.counts.fail}, info ${report.counts.info}; total ${report.finalTotal}/${report.expectedTotal}; last read ${read?.total ?? '?'}`);
    say(`  not ok, by reason: ${failureReasons(client.history)}`);
    for (const v of report.violations.slice(0, 10)) say(`  violation: ${v}`);
    const figures: Record<string, number | string> = {
      syncsOk: SYNCS_OK,
      transfers: client.history.length,
      ok: report.counts.ok,
      fail: report.counts.fail,
      info: report.counts.info,
      total: report.finalTotal,
      expectedTotal: report.expectedTotal,
      durationMs: Date.now() - started,
    };
    for (const i of injections) {
      figures[`${i.node}.exitCode`] = String(i.code);
      figures[`${i.node}.failedAfterMs`] = i.failedAfterMs;
      figures[`${i.node}.okWhileFailing`] = i.okWhileFailing;
      figures[`${i.node}.fatalLogged`] = String(i.fatalLogged);
    }
    const timeline = ctx.timeline ? c.timeline({ marksOnly: true }) : undefined;
    return result('fsync-failure', checks, figures, { ...(timeline ? { timeline } : {}), lanes: c.lanes });
  } finally {
    await client?.stop();
    await c.close();
    if (ctx.keepData) say(`data and node logs kept in ${c.dataDir}`);
  }
}
