/**
 * `npm run bench` (`twopc bench --standard`): the standard configurations of
 * issue 12, one after the other on the same machine, and a summary of every
 * target: concurrency 64 with fsync group (batched, and the same load unbatched,
 * and one client alone on the batched cluster), one client as its own run,
 * recovery at scale, and with --rss-check the RSS growth from 20,000 to 200,000
 * transactions.
 */
import fs from 'node:fs';
import { RSS_CHECK_SAMPLE_DIVISOR, RSS_CHECK_TRANSACTIONS, type LoadClientKind } from './bench-cli.ts';
import { formatRatio, formatReport, renderBenchHtml, writeSvgs } from './bench-report.ts';
import { formatRecovery, runRecoveryBench, type RecoveryReport } from './bench-recovery.ts';
import { runBench, type BenchReport } from './bench.ts';

export const STANDARD = {
  concurrency: 64,
  transactions: 20_000,
  oneClientTransactions: 2_000,
  recoveryTransactions: 10_000,
} as const;

export interface StandardOptions {
  readonly fsync: 'always' | 'group' | 'none';
  readonly participants: number;
  readonly rssCheck: boolean;
  readonly htmlFile?: string;
  /** Where to write the concurrency-64 run's pictures (throughput.svg, latency.svg, cpu.svg). */
  readonly svgDir?: string;
  /** The bench clients' HTTP client for every run (`--load-client`); node:http by default. */
  readonly loadClient?: LoadClientKind;
}

export interface StandardReport {
  readonly concurrency64: BenchReport;
  readonly oneClient: BenchReport;
  readonly recovery: RecoveryReport;
  readonly rssCheck: BenchReport | null;
}

export async function runStandard(o: StandardOptions, log: (line: string) => void): Promise<StandardReport> {
  const common = { participants: o.participants, fsync: o.fsync, ...(o.loadClient !== undefined && { loadClient: o.loadClient }) } as const;
  log(`== concurrency ${STANDARD.concurrency}, ${STANDARD.transactions} transfers, batched then unbatched`);
  const concurrency64 = await runBench({ ...common, transactions: STANDARD.transactions, concurrency: STANDARD.concurrency }, log);
  if (o.htmlFile !== undefined) {
    fs.writeFileSync(o.htmlFile, renderBenchHtml(concurrency64, `twopc bench --transactions ${STANDARD.transactions} --concurrency ${STANDARD.concurrency}`));
    log(`wrote ${o.htmlFile}`);
  }
  if (o.svgDir !== undefined) writeSvgs(concurrency64, o.svgDir, log);
  log(`== one client, ${STANDARD.oneClientTransactions} transfers`);
  const oneClient = await runBench({ ...common, transactions: STANDARD.oneClientTransactions, concurrency: 1, compareNoBatching: false }, log);
  log(`== recovery, ${STANDARD.recoveryTransactions} transactions`);
  const recovery = await runRecoveryBench({ ...common, transactions: STANDARD.recoveryTransactions }, log);
  let rssCheck: BenchReport | null = null;
  if (o.rssCheck) {
    log(`== RSS after ${RSS_CHECK_TRANSACTIONS / RSS_CHECK_SAMPLE_DIVISOR} and after ${RSS_CHECK_TRANSACTIONS} transfers`);
    rssCheck = await runBench(
      {
        ...common,
        transactions: RSS_CHECK_TRANSACTIONS,
        concurrency: STANDARD.concurrency,
        compareNoBatching: false,
        rssSampleAfter: RSS_CHECK_TRANSACTIONS / RSS_CHECK_SAMPLE_DIVISOR,
      },
      log,
    );
  }
  return { concurrency64, oneClient, recovery, rssCheck };
}

export function formatStandard(r: StandardReport): string {
  const c = r.concurrency64;
  return [
    formatReport(c),
    '',
    formatReport(r.oneClient),
    '',
    formatRecovery(r.recovery),
    ...(r.rssCheck ? ['', formatReport(r.rssCheck)] : []),
    '',
    'summary (issue 12 targets):',
    formatRatio('throughputOverBareHttp', c.ratios.throughputOverBareHttp!),
    formatRatio('throughputOverNoBatching', c.ratios.throughputOverNoBatching!),
    formatRatio('p99Ms (concurrency 64)', c.ratios.p99Ms!),
    formatRatio('oneClientP50OverFloor', r.oneClient.ratios.oneClientP50OverFloor!),
    formatRatio('cpuMsPerTx', c.ratios.cpuMsPerTx!),
    ...(r.rssCheck?.ratios.rssGrowth ? [formatRatio('rssGrowth 20k -> 200k', r.rssCheck.ratios.rssGrowth)] : ['  rssGrowth                  not run (add --rss-check)']),
    `  recovery, coordinator      ${r.recovery.coordinator.settleMs} ms  target <= ${r.recovery.coordinator.targetMs} ms  ${r.recovery.coordinator.met ? 'met' : 'NOT met'}`,
    `  recovery, participant      ${r.recovery.participant.settleMs} ms  target <= ${r.recovery.participant.targetMs} ms  ${r.recovery.participant.met ? 'met' : 'NOT met'}`,
  ].join('\n');
}
