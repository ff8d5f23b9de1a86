/**
 * `twopc bench --recovery`: recovery at scale, on real processes.
 *
 * 1. A coordinator restarted with N decided but unacknowledged transactions
 *    (commits), its participants up and each holding those N branches in doubt:
 *    the time from the coordinator being ready until it has every ack (nothing
 *    unfinished) and no participant is in doubt.
 * 2. A participant restarted with N branches in doubt whose coordinator crashed
 *    before deciding (its WAL holds no decision, so under presumed abort the
 *    answer to an inquiry is "aborted"): the time from the participant being
 *    ready until nothing is in doubt, which it learns only by asking.
 *
 * How the backlog is built: the crash states are written to each node's WAL
 * directory through the real log API (wal/file-log.ts) and the real record
 * codecs, with the records the cores write (a coordinator's BOOT and DECISION,
 * a participant's PREPARED with the key-value store's own prepare data, keys
 * and ops digest), then the nodes start on those directories as after a crash.
 * Building it through live traffic instead would need every commit lost in
 * flight for N transactions, and the coordinator's resends of them would load
 * the machine being measured. Each transaction writes its own key, as N
 * transactions in doubt at once must: they all hold their locks.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { coordinatorCodec } from '../coordinator/runtime/records.ts';
import type { CoordinatorRecord } from '../coordinator/core/index.ts';
import type { ParticipantRecord } from '../participant/core/index.ts';
import { KvStore } from '../participant/resources/kv.ts';
import { participantCodec } from '../participant/runtime/records.ts';
import { opsDigest } from '../shared/digest.ts';
import { openFileLog } from '../wal/file-log.ts';
import { ProcessCluster, type NodeProcess } from './harness.ts';
import { machineInfo, type MachineInfo } from './bench-probes.ts';

export interface RecoveryBenchOptions {
  readonly transactions: number;
  readonly participants: number;
  readonly fsync: 'always' | 'group' | 'none';
}

export interface SettleFigures {
  /** Transactions written as unfinished (coordinator) or in doubt (participant) before the restart. */
  readonly backlog: number;
  /**
   * From spawn to the end of recovery by the node's own clock (`twopc_recovery_completed_timestamp_seconds`):
   * loading the program, replaying the WAL, and for a coordinator its re-sends issued.
   */
  readonly readyMs: number;
  /**
   * From the end of recovery (the node's own timestamp; its peers are up and reachable from then on)
   * until nothing is left unsettled, as first seen by the bench's polls: an upper bound.
   */
  readonly settleMs: number;
  /**
   * The same two spans cut where the bench first saw /healthz say recovery is done. A node busy
   * settling answers /healthz late, so most of its settling can fall before that "ready": before
   * issue 12's recovery work the bench reported only this, 6,064 ms, where the coordinator's whole
   * settling took tens of seconds.
   */
  readonly healthzReadyMs: number;
  readonly settleAfterHealthzMs: number;
  readonly settled: boolean;
  /**
   * What a participant says of an even sample of the backlog's transactions once settled:
   * every one committed (the coordinator's backlog) or aborted (the participant's, presumed).
   */
  readonly outcomeSample: Readonly<Record<string, number>>;
  readonly targetMs: number;
  readonly met: boolean;
  /** Why the phase could not be measured (a node that did not become ready in time), when so. */
  readonly error?: string;
}

export interface RecoveryReport {
  readonly options: RecoveryBenchOptions;
  readonly machine: MachineInfo;
  readonly method: string;
  readonly coordinator: SettleFigures;
  readonly participant: SettleFigures;
}

/** Issue 12: each settles within 3 s of being able to reach its peers. */
export const RECOVERY_SETTLE_TARGET_MS = 3_000;
/** A backlog that has not settled by then is reported as not settled, not waited for. */
const SETTLE_TIMEOUT_MS = 120_000;
/** How long a node with the backlog in its WAL may take to replay it and answer /healthz as ready. */
const READY_TIMEOUT_MS = 120_000;
const POLL_MS = 25;
const METRICS_TIMEOUT_MS = 5_000;
/** Records appended between durable syncs while building a backlog. */
const BUILD_SYNC_EVERY = 1_000;
/** Transactions whose state the bench reads back after settling, spread evenly over the backlog. */
const OUTCOME_SAMPLE_MAX = 100;

export const RECOVERY_METHOD =
  'crash states written to each WAL directory through the real log API and record codecs (BOOT and DECISION at the coordinator; PREPARED with the key-value store\'s prepare data at the participants), then the nodes started on them';

const txIdOf = (i: number) => `tx-1-${i + 1}`;

export async function writeLog<R extends { type: string }>(dir: string, codec: { encode(r: R): { type: number; payload: Uint8Array } }, records: Iterable<R>): Promise<void> {
  const { log } = await openFileLog(dir, { owner: 'twopc bench --recovery', syncPolicy: 'group' });
  try {
    let n = 0;
    const pending: Promise<unknown>[] = [];
    for (const r of records) {
      const { type, payload } = codec.encode(r);
      pending.push(log.append(type, payload));
      if (++n % BUILD_SYNC_EVERY === 0) {
        await Promise.all(pending.splice(0));
        await log.sync();
      }
    }
    await Promise.all(pending);
    await log.sync();
  } finally {
    await log.close();
  }
}

/** PREPARED records as the participant writes them for a `put` of the transaction's own key. */
export function* preparedRecords(n: number, name: string, coordinatorUrl: string, participantUrls: readonly string[]): Generator<ParticipantRecord> {
  const kv = new KvStore();
  const at = Date.now();
  for (let i = 0; i < n; i++) {
    const txId = txIdOf(i);
    const ops = [{ op: 'put' as const, key: `recovery-${name}-${i}`, value: i }];
    const prepared = kv.prepare(txId as never, ops);
    yield {
      type: 'PREPARED',
      txId: txId as never,
      coordinator: coordinatorUrl,
      participants: participantUrls,
      keys: kv.keysOf(ops),
      data: prepared.data,
      at,
      opsDigest: opsDigest(ops),
    };
  }
}

export function* decisionRecords(n: number, participants: readonly { name: string; url: string }[]): Generator<CoordinatorRecord> {
  yield { type: 'BOOT', epoch: 1 };
  for (let i = 0; i < n; i++) yield { type: 'DECISION', txId: txIdOf(i) as never, outcome: 'committed', participants };
}

async function gauge(node: NodeProcess, name: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(METRICS_TIMEOUT_MS) });
    const m = new RegExp(`^twopc_${name} (\\S+)$`, 'm').exec(await res.text());
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts a node that may have a large WAL to replay, waiting for it longer than a plain start does. */
async function startReady(node: NodeProcess): Promise<void> {
  await node.start({ waitReady: false });
  await node.waitReady(READY_TIMEOUT_MS);
}

/** A phase that could not be measured: reported as such, so the runs after it still happen. */
function unmeasured(backlog: number, error: unknown): SettleFigures {
  const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
  return { backlog, readyMs: -1, settleMs: -1, healthzReadyMs: -1, settleAfterHealthzMs: -1, settled: false, outcomeSample: {}, targetMs: RECOVERY_SETTLE_TARGET_MS, met: false, error: message };
}

/** The states a participant reports for an even sample of the backlog, counted by state. */
async function outcomeSample(participant: NodeProcess, backlog: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const step = Math.max(1, Math.floor(backlog / OUTCOME_SAMPLE_MAX));
  for (let i = 0; i < backlog; i += step) {
    let state = 'no answer';
    try {
      const res = await fetch(`${participant.url}/v1/2pc/transactions/${txIdOf(i)}`, { signal: AbortSignal.timeout(METRICS_TIMEOUT_MS) });
      state = ((await res.json()) as { state?: string }).state ?? `status ${res.status}`;
    } catch {
      // Counted as 'no answer'.
    }
    counts[state] = (counts[state] ?? 0) + 1;
  }
  return counts;
}

/**
 * Starts `node`, then polls until `settled` holds; times both from the node's own end of recovery
 * (wall clock: the bench and the node share the machine), then reads back a sample of outcomes at `witness`.
 */
async function timeSettle(node: NodeProcess, backlog: number, witness: NodeProcess, settled: () => Promise<boolean>): Promise<SettleFigures> {
  const spawnedAt = Date.now();
  await startReady(node);
  const healthzAt = Date.now();
  const deadline = healthzAt + SETTLE_TIMEOUT_MS;
  let done = false;
  while (!(done = await settled()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
  const settledAt = Date.now();
  const recoveredSeconds = await gauge(node, 'recovery_completed_timestamp_seconds');
  // A node without the gauge (an older build): the /healthz poll is all there is.
  const recoveredAt = recoveredSeconds === undefined ? healthzAt : Math.round(recoveredSeconds * 1000);
  const settleMs = settledAt - recoveredAt;
  return {
    backlog,
    readyMs: recoveredAt - spawnedAt,
    settleMs,
    healthzReadyMs: healthzAt - spawnedAt,
    settleAfterHealthzMs: settledAt - healthzAt,
    settled: done,
    outcomeSample: await outcomeSample(witness, backlog),
    targetMs: RECOVERY_SETTLE_TARGET_MS,
    met: done && settleMs <= RECOVERY_SETTLE_TARGET_MS,
  };
}

async function withCluster<T>(options: RecoveryBenchOptions, run: (cluster: ProcessCluster, dataDir: string) => Promise<T>): Promise<T> {
  const dataDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twopc-bench-recovery-'));
  const cluster = await ProcessCluster.create({
    participants: options.participants,
    dataDir,
    fsync: options.fsync,
    env: { TWOPC_LOG_LEVEL: 'warn' },
    // The backlog itself is N unfinished transactions; new ones are not the point here.
    coordinatorArgs: ['--active-tx-max', String(Math.max(1_000, options.transactions * 2))],
  });
  try {
    return await run(cluster, dataDir);
  } finally {
    await cluster.stop();
    await fs.promises.rm(dataDir, { recursive: true, force: true });
  }
}

async function coordinatorPhase(options: RecoveryBenchOptions, log: (line: string) => void): Promise<SettleFigures> {
  return withCluster(options, async (cluster, dataDir) => {
    const refs = cluster.participants.map((p) => ({ name: p.name, url: p.url }));
    log(`writing ${options.transactions} decided, unacknowledged commits to the coordinator's WAL, and their PREPARED branches to every participant's…`);
    await writeLog(path.join(dataDir, 'coordinator'), coordinatorCodec, decisionRecords(options.transactions, refs));
    for (const p of cluster.participants) {
      await writeLog(path.join(dataDir, p.name), participantCodec, preparedRecords(options.transactions, p.name, cluster.coordinator.url, refs.map((r) => r.url)));
    }
    log('participants up (each in doubt), then the coordinator restarts…');
    await Promise.all(cluster.participants.map(startReady));
    const inDoubt = async () => (await Promise.all(cluster.participants.map((p) => gauge(p, 'participant_in_doubt')))).reduce<number>((a, b) => a + (b ?? 1), 0);
    return timeSettle(
      cluster.coordinator,
      options.transactions,
      cluster.participants[0] as NodeProcess,
      async () => (await gauge(cluster.coordinator, 'coordinator_unfinished_transactions')) === 0 && (await inDoubt()) === 0,
    );
  });
}

async function participantPhase(options: RecoveryBenchOptions, log: (line: string) => void): Promise<SettleFigures> {
  return withCluster(options, async (cluster, dataDir) => {
    const p1 = cluster.participants[0] as NodeProcess;
    const urls = cluster.participants.map((p) => p.url);
    log(`writing ${options.transactions} PREPARED branches to ${p1.name}'s WAL; the coordinator's holds no decision for them (it crashed before deciding)…`);
    await writeLog(path.join(dataDir, 'coordinator'), coordinatorCodec, decisionRecords(0, []));
    await writeLog(path.join(dataDir, p1.name), participantCodec, preparedRecords(options.transactions, p1.name, cluster.coordinator.url, urls));
    log(`coordinator and the other participants up, then ${p1.name} restarts…`);
    await Promise.all([cluster.coordinator, ...cluster.participants.slice(1)].map(startReady));
    return timeSettle(
      p1,
      options.transactions,
      p1,
      async () => (await gauge(p1, 'participant_in_doubt')) === 0,
    );
  });
}

export async function runRecoveryBench(options: RecoveryBenchOptions, log: (line: string) => void = () => undefined): Promise<RecoveryReport> {
  const machine = machineInfo();
  const coordinator = await coordinatorPhase(options, log).catch((error: unknown) => unmeasured(options.transactions, error));
  log(`  coordinator: ${coordinator.error ?? `recovered in ${coordinator.readyMs} ms, settled ${coordinator.backlog} in ${coordinator.settleMs} ms`}`);
  const participant = await participantPhase(options, log).catch((error: unknown) => unmeasured(options.transactions, error));
  log(`  participant: ${participant.error ?? `recovered in ${participant.readyMs} ms, settled ${participant.backlog} in ${participant.settleMs} ms`}`);
  return { options, machine, method: RECOVERY_METHOD, coordinator, participant };
}

export function formatRecovery(r: RecoveryReport): string {
  const line = (who: string, f: SettleFigures) =>
    f.error !== undefined
      ? `  ${who.padEnd(12)} backlog ${f.backlog}, NOT MEASURED: ${f.error}`
      : `  ${who.padEnd(12)} backlog ${f.backlog}, recovered ${f.readyMs} ms after spawn, settled ${f.settled ? `${f.settleMs} ms after recovering` : `NOT within ${SETTLE_TIMEOUT_MS} ms of /healthz`} (/healthz ready ${f.healthzReadyMs} ms after spawn, settled ${f.settleAfterHealthzMs} ms after it), sample ${JSON.stringify(f.outcomeSample)}  target <= ${f.targetMs} ms ${f.met ? 'met' : 'NOT met'}`;
  return [
    `twopc bench --recovery: ${r.options.transactions} transactions, ${r.options.participants} participants, fsync ${r.options.fsync}`,
    line('coordinator', r.coordinator),
    line('participant', r.participant),
    `  method: ${r.method}`,
  ].join('\n');
}
