/**
 * `twopc bench`: the command line of the bench (scenarios/bench.ts), its
 * recovery mode (scenarios/bench-recovery.ts) and the standard configurations
 * `npm run bench` runs (scenarios/bench-standard.ts). With --json, stdout gets
 * exactly one JSON object and the narration goes to stderr.
 */
import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { fsyncOpt, intArg, opt } from '../shared/cli-options.ts';
import { parseDuration } from './cli.ts';

/** The bench's clients' HTTP client (load-client.ts): bare node:http, or the services' axios client. */
export const LOAD_CLIENT_KINDS = ['node', 'axios'] as const;
export type LoadClientKind = (typeof LOAD_CLIENT_KINDS)[number];
/** Bare node:http, as the floor's round trips are. */
export const LOAD_CLIENT_DEFAULT: LoadClientKind = 'node';

/** The most transactions one run may ask for; `--duration` alone runs up to this many. */
export const BENCH_TRANSACTIONS_MAX = 10_000_000;
const TRANSACTIONS_DEFAULT = 20_000;
/** `--rss-check`: RSS after RSS_CHECK_TRANSACTIONS / RSS_CHECK_SAMPLE_DIVISOR and after RSS_CHECK_TRANSACTIONS. */
export const RSS_CHECK_TRANSACTIONS = 200_000;
export const RSS_CHECK_SAMPLE_DIVISOR = 10;
/**
 * The measured load's time limit with `--rss-check` (instead of the usual 120 s): 200,000 transfers at
 * this machine's 100-300 tx/s take 11-33 minutes, and the run holds the machine-wide bench lock. A run
 * that stops short says so in its rssGrowth ratio rather than passing off a shorter run as the target's.
 */
export const RSS_CHECK_RUN_MS_MAX = 33 * 60_000;
/**
 * Transactions before the measured phase (at most the phase's own count), so what is measured is a
 * service that has been running, not one starting. Measured on this project's 2-core machines at
 * concurrency 64 (docs/performance.md, "Warm-up"): the nodes' CPU per transaction falls from
 * 5.6 ms over the first thousand to about 1.4 ms, and stops falling after 13,000-18,000, while V8
 * still compiles hot functions (12-21% of a node's CPU at 9-17 s, under 2% at 30-38 s). The warm-up's
 * own figures are reported beside the measured ones (`warmup`). `--warmup N` sets another count.
 * An `--rss-check` run has none unless asked: its readings count transfers from the cluster's start.
 */
export const WARMUP_TRANSACTIONS_DEFAULT = 15_000;

interface BenchFlags {
  transactions?: number;
  duration?: number;
  concurrency: number;
  participants: number;
  fsync: 'always' | 'group' | 'none';
  batching: boolean;
  compare: boolean;
  oneClient?: number;
  resource: 'kv' | 'postgres';
  pgUrl?: string;
  seed?: number;
  warmup?: number;
  rssCheck: boolean;
  recovery: boolean;
  recoveryTransactions: number;
  standard: boolean;
  ha: boolean;
  html?: string;
  svgDir?: string;
  json: boolean;
  loadClient: LoadClientKind;
}

export function registerBenchCommand(program: Command): Command {
  return program
    .command('bench')
    .description('throughput and latency on real processes, with the machine limits and the unbatched path measured in the same run')
    .addOption(opt('--transactions <n>', `transfers to run (default ${TRANSACTIONS_DEFAULT}; with --rss-check ${RSS_CHECK_TRANSACTIONS})`).argParser(intArg('transactions', 1, BENCH_TRANSACTIONS_MAX)))
    .addOption(opt('--duration <d>', 'run for this long instead of a count, e.g. 30s or 5m (after a warm-up of at most as long, and at most 30 s)').argParser(parseDuration))
    .addOption(opt('--concurrency <n>', 'transfers in flight').argParser(intArg('concurrency', 1, 1024)).default(64))
    .addOption(opt('--participants <n>', 'participants').argParser(intArg('participants', 2, 16)).default(3))
    .addOption(fsyncOpt())
    // No TWOPC_* environment for these two: commander reads a negated flag's variable as set whatever its value.
    .addOption(new Option('--no-batching', 'pass --no-batching to every node (one request per message), and skip the comparison run'))
    .addOption(new Option('--no-compare', 'skip the unbatched run that is otherwise measured beside the batched one'))
    .addOption(opt('--one-client <n>', 'transfers for the one-client latency (default 1000)').argParser(intArg('one-client', 1, 100_000)))
    .addOption(opt('--resource <kind>', "the participants' resource; postgres also runs the key-value bench, for comparison").choices(['kv', 'postgres']).default('kv'))
    .addOption(opt('--pg-url <url>', 'with --resource postgres: the server to make the databases on (default TWOPC_TEST_PG_URL, then the local socket)'))
    .addOption(opt('--warmup <n>', `transfers before each measured run, not measured, for at most 30 s (and at most --duration) (default ${WARMUP_TRANSACTIONS_DEFAULT}, none with --rss-check; at most --transactions; 0: none; not used by --standard, --ha, --recovery)`).argParser(intArg('warmup', 0, BENCH_TRANSACTIONS_MAX)))
    .addOption(opt('--seed <n>', 'seed for the transfers').argParser(intArg('seed', 0, Number.MAX_SAFE_INTEGER)))
    .addOption(
      opt(
        '--rss-check',
        `every node's RSS and heap after ${RSS_CHECK_TRANSACTIONS / RSS_CHECK_SAMPLE_DIVISOR} and after ${RSS_CHECK_TRANSACTIONS} transactions, each with the load drained, and a series under load between (batched only; runs up to ${RSS_CHECK_RUN_MS_MAX / 60_000} min)`,
      ).default(false),
    )
    .addOption(opt('--recovery', 'time a restarted coordinator and a restarted participant to settle a backlog of decided/in-doubt transactions').default(false))
    .addOption(opt('--recovery-transactions <n>', 'with --recovery: the backlog').argParser(intArg('recovery-transactions', 1, 100_000)).default(10_000))
    .addOption(opt('--standard', 'the standard configurations (concurrency 64, one client, unbatched, recovery) and a summary; npm run bench').default(false))
    .addOption(opt('--ha', 'the decision log in etcd (an HA group, its own etcd) beside the local WAL, same transfers, same run').default(false))
    .addOption(opt('--html <file>', 'also write one self-contained HTML page with the pictures'))
    .addOption(opt('--svg-dir <dir>', 'also write the pictures as throughput.svg, latency.svg and cpu.svg there (docs/performance.md embeds them)'))
    .addOption(
      opt('--load-client <kind>', "the bench's clients' HTTP client: node (bare node:http, as the floor's round trips are) or axios (the services' client)")
        .choices(LOAD_CLIENT_KINDS)
        .default(LOAD_CLIENT_DEFAULT),
    )
    .addOption(opt('--json', 'print one JSON object').default(false))
    .action(async (o: BenchFlags) => {
      const say = (line: string) => console.error(line);
      const write = (text: string) => console.log(text);
      if (o.recovery) {
        const { runRecoveryBench, formatRecovery } = await import('./bench-recovery.ts');
        const r = await runRecoveryBench({ transactions: o.recoveryTransactions, participants: o.participants, fsync: o.fsync }, say);
        write(o.json ? JSON.stringify(r) : formatRecovery(r));
        return;
      }
      if (o.ha) {
        const { runHaBench } = await import('./bench-ha.ts');
        const r = await runHaBench({ transactions: o.transactions ?? 2_000, concurrency: o.concurrency, participants: o.participants, fsync: o.fsync, loadClient: o.loadClient }, say);
        write(
          o.json
            ? JSON.stringify(r)
            : `local WAL ${r.localWal.throughputTxPerS} tx/s (p50 ${r.localWal.latency.p50Ms} ms, p99 ${r.localWal.latency.p99Ms} ms, CPU ${r.localWal.cpuMsPerTx} ms/tx); ` +
                `etcd log ${r.etcdLog.throughputTxPerS} tx/s (p50 ${r.etcdLog.latency.p50Ms} ms, p99 ${r.etcdLog.latency.p99Ms} ms, CPU ${r.etcdLog.cpuMsPerTx} ms/tx); ` +
                `etcd/local: throughput x${r.ratios.throughput}, p50 x${r.ratios.p50}, p99 x${r.ratios.p99}`,
        );
        return;
      }
      if (o.standard) {
        const { runStandard, formatStandard } = await import('./bench-standard.ts');
        const r = await runStandard(
          {
            fsync: o.fsync,
            participants: o.participants,
            rssCheck: o.rssCheck,
            loadClient: o.loadClient,
            ...(o.html !== undefined && { htmlFile: o.html }),
            ...(o.svgDir !== undefined && { svgDir: o.svgDir }),
          },
          say,
        );
        write(o.json ? JSON.stringify(r) : formatStandard(r));
        return;
      }
      const { runBench } = await import('./bench.ts');
      const { formatReport, renderBenchHtml, writeSvgs } = await import('./bench-report.ts');
      const transactions = o.transactions ?? (o.duration !== undefined ? BENCH_TRANSACTIONS_MAX : o.rssCheck ? RSS_CHECK_TRANSACTIONS : TRANSACTIONS_DEFAULT);
      const report = await runBench(
        {
          transactions,
          concurrency: o.concurrency,
          participants: o.participants,
          fsync: o.fsync,
          resource: o.resource,
          batching: o.batching,
          compareNoBatching: o.compare && !o.rssCheck,
          ...(o.duration !== undefined && { durationMaxMs: o.duration }),
          ...(o.oneClient !== undefined && { oneClientTransactions: o.oneClient }),
          ...(o.seed !== undefined && { seed: o.seed }),
          ...(o.warmup !== undefined && { warmupTransactions: o.warmup }),
          ...(o.rssCheck && { rssSampleAfter: Math.ceil(transactions / RSS_CHECK_SAMPLE_DIVISOR) }),
          ...(o.pgUrl !== undefined && { pgUrl: o.pgUrl }),
          progress: !o.json,
          loadClient: o.loadClient,
        },
        say,
      );
      if (o.html !== undefined) {
        fs.writeFileSync(o.html, renderBenchHtml(report, `twopc ${process.argv.slice(2).join(' ')}`));
        say(`wrote ${o.html}`);
      }
      if (o.svgDir !== undefined) writeSvgs(report, o.svgDir, say);
      write(o.json ? JSON.stringify(report) : formatReport(report));
    });
}
