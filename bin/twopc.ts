/**
 * twopc — the one CLI. Each command loads only the modules it needs.
 * Every flag can also come from the environment as TWOPC_<FLAG>.
 */
import { Command, type Option } from 'commander';
import { CONFIG_DEFAULTS as COORDINATOR_DEFAULTS } from '../coordinator/core/state.ts';
import { accessOpts, batchingOf, batchingOpt, fsyncOpt, heapGrowingOpt, httpLimitsOf, intArg, logLevelOpt, opt, parseParticipants, parseAdvertiseUrl, parseCoordinatorUrls, parsePeers, serviceOpts, walBlockingSyncOpt } from '../shared/cli-options.ts';
import { ConfigError } from '../shared/errors.ts';
import { EXIT_CODES, explainStartFailure, type StartContext } from '../shared/exit-codes.ts';
import { applyHeapGrowingPercent } from '../shared/heap-growing.ts';

const program = new Command();
program
  .name('twopc')
  .description('Two-phase commit over HTTP: coordinator, participants, write-ahead logs, recovery and chaos.')
  // Commander has printed its one line ("error: option '--port <n>' argument ..."); a bad
  // flag is a configuration error, told apart from the other failures by its exit code.
  // Set before any subcommand is made, so that every one inherits it.
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : EXIT_CODES.config))
  // --log-level reaches every logger, and the nodes a command spawns, through TWOPC_LOG_LEVEL.
  .hook('preAction', (_program, action) => {
    const level: unknown = action.opts().logLevel;
    if (typeof level === 'string') process.env.TWOPC_LOG_LEVEL = level;
  });

function withOptions(command: Command, options: readonly Option[]): Command {
  for (const o of options) command.addOption(o);
  return command;
}

/**
 * Starts a service; a start that fails for a reason of the machine or the configuration (a
 * port in use, a data directory that is read-only, full, corrupt or held by another process,
 * a bad URL) ends the process with one line on stderr and its own exit code
 * (shared/exit-codes.ts). Anything else is a bug and keeps its stack trace.
 */
async function startService(role: string, where: StartContext, start: () => Promise<{ close(): Promise<void> }>): Promise<void> {
  let node: { close(): Promise<void> };
  try {
    node = await start();
  } catch (error) {
    const failure = explainStartFailure(error, where);
    if (!failure) throw error;
    process.stderr.write(`twopc ${role}: ${failure.message}\n`);
    process.exit(failure.exitCode);
  }
  closeOnSignal(() => node.close());
}

/** Stops the service on SIGINT/SIGTERM; a second signal exits at once. */
function closeOnSignal(close: () => Promise<void>): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) process.exit(130);
    closing = true;
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`twopc: error while stopping on ${signal}:`, error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

withOptions(program.command('coordinator'), serviceOpts())
  .description('run one coordinator')
  .addOption(opt('--participants <list>', 'p1=URL,p2=URL,... (the only participants it will talk to)').argParser(parseParticipants).makeOptionMandatory())
  .addOption(opt('--name <name>', 'node name').default('coordinator'))
  .addOption(heapGrowingOpt('coordinator'))
  .addOption(batchingOpt())
  .addOption(opt('--protocol <variant>', 'presumption').choices(['presumed-abort', 'presumed-nothing', 'presumed-commit']).default('presumed-abort'))
  .addOption(
    opt('--tx-timeout-max-ms <n>', "largest timeoutMs a client may ask for; also caps an interactive transaction's default")
      .argParser(intArg('tx-timeout-max-ms', 1, 600_000))
      .default(COORDINATOR_DEFAULTS.txTimeoutMsMax),
  )
  .addOption(opt('--prepare-timeout-ms <n>', 'how long to wait for each vote before aborting').argParser(intArg('prepare-timeout-ms', 1, 600_000)))
  .addOption(opt('--lab-url <url>', "the live lab's URL, for the dashboard's link (twopc cluster passes it)"))
  .addOption(
    opt('--active-tx-max <n>', 'unfinished transactions at once; beyond it new ones get a 503')
      .argParser(intArg('active-tx-max', 1, 1_000_000))
      .default(COORDINATOR_DEFAULTS.maxActiveTransactions),
  )
  .addOption(opt('--advertise-url <url>', 'the URL others reach this coordinator by (HA: the leader URL a follower names); required with --etcd when --host is 0.0.0.0').argParser(parseAdvertiseUrl))
  .addOption(opt('--etcd <urls>', 'HA: etcd client URLs, URL[,URL...]; coordinators of one --group share a decision log there and elect a leader'))
  .addOption(opt('--group <name>', 'HA: the group this coordinator belongs to (with --etcd)'))
  .addOption(opt('--lease-ms <n>', "HA: the leader lease's TTL, whole seconds in etcd").argParser(intArg('lease-ms', 1_000, 60_000)).default(2_000))
  .addOption(walBlockingSyncOpt())
  .action(async (o, command: Command) => {
    applyHeapGrowingPercent(o.heapGrowingPercent);
    const common = {
      name: o.name,
      port: o.port,
      host: o.host,
      participants: o.participants,
      token: o.token,
      chaos: Boolean(o.chaos),
      protocol: o.protocol,
      ...(o.labUrl !== undefined && { labUrl: o.labUrl }),
      ...(o.advertiseUrl !== undefined && { advertiseUrl: o.advertiseUrl }),
      core: { txTimeoutMsMax: o.txTimeoutMaxMs, maxActiveTransactions: o.activeTxMax, ...(o.prepareTimeoutMs !== undefined && { prepareTimeoutMs: o.prepareTimeoutMs }) },
      http: httpLimitsOf(o),
      batching: batchingOf(o.batching),
    };
    if (o.etcd !== undefined || o.group !== undefined) {
      const { haOptionsOf } = await import('../coordinator/ha-options.ts');
      const { startHaCoordinator } = await import('../coordinator/ha-main.ts');
      // haOptionsOf throws a ConfigError inside startService, which reports it in one line.
      await startService('coordinator', { dataDir: o.data, host: o.host, port: o.port }, () => {
        const ha = haOptionsOf(o.etcd, o.group, o.leaseMs);
        // An HA member's decisions live in etcd: it keeps no local WAL for the flag to tune. Said on
        // its command line, that is a mistake; from the environment (TWOPC_WAL_BLOCKING_SYNC_MS,
        // which every node a cluster starts inherits) it is ignored, as --fsync is.
        if (command.getOptionValueSource('walBlockingSyncMs') === 'cli') {
          throw new ConfigError('--wal-blocking-sync-ms tunes the local WAL, which an HA member (--etcd) does not keep');
        }
        return startHaCoordinator({ ...common, ha });
      });
      return;
    }
    const { startCoordinator } = await import('../coordinator/main.ts');
    await startService('coordinator', { dataDir: o.data, host: o.host, port: o.port }, () =>
      startCoordinator({ ...common, dataDir: o.data, fsync: o.fsync, ...(o.walBlockingSyncMs !== undefined && { wal: { blockingSyncMsMax: o.walBlockingSyncMs } }) }),
    );
  });

/**
 * A start-up error that carries its own exit code (a malformed --pg-url, a database that is
 * down): one line on stderr and that code, never a stack trace. Anything else is rethrown.
 */
withOptions(program.command('participant'), serviceOpts())
  .description('run one participant with the built-in key-value resource or a PostgreSQL database')
  .addOption(opt('--name <id>', 'participant name').makeOptionMandatory())
  .addOption(heapGrowingOpt('participant'))
  .addOption(batchingOpt())
  .addOption(opt('--coordinator <urls>', "the coordinator's base URL; with an HA group, every member's, URL[,URL...]").argParser(parseCoordinatorUrls).makeOptionMandatory())
  .addOption(opt('--peers <urls>', 'peer participants to trust for cooperative termination, URL[,URL...] (besides those the coordinator lists)').argParser(parsePeers))
  .addOption(opt('--lock-wait-ms <n>', 'how long a prepare waits for a locked key').argParser(intArg('lock-wait-ms', 0, 600_000)).default(500))
  .addOption(opt('--resource <kind>', 'the state under 2PC: the key-value store, or a PostgreSQL database').choices(['kv', 'postgres']).default('kv'))
  .addOption(opt('--pg-url <url>', 'with --resource postgres: postgres://user[:password]@host[:port]/database'))
  .addOption(opt('--pg-lock-timeout-ms <n>', "with --resource postgres: a branch's lock_timeout; a longer row-lock wait votes no").argParser(intArg('pg-lock-timeout-ms', 1, 600_000)))
  .addOption(opt('--pg-pool-max <n>', 'with --resource postgres: connections in the pool').argParser(intArg('pg-pool-max', 1, 1_000)))
  .addOption(walBlockingSyncOpt())
  .action(async (o) => {
    applyHeapGrowingPercent(o.heapGrowingPercent);
    const { startParticipant } = await import('../participant/main.ts');
    await startService('participant', { dataDir: o.data, host: o.host, port: o.port }, () =>
      startParticipant({
        name: o.name,
        port: o.port,
        host: o.host,
        dataDir: o.data,
        coordinatorUrl: o.coordinator[0],
        ...(o.coordinator.length > 1 && { otherCoordinatorUrls: o.coordinator.slice(1) }),
        fsync: o.fsync,
        token: o.token,
        chaos: Boolean(o.chaos),
        lockWaitMs: o.lockWaitMs,
        ...(o.peers !== undefined && { peers: o.peers }),
        http: httpLimitsOf(o),
        batching: batchingOf(o.batching),
        ...(o.walBlockingSyncMs !== undefined && { walBlockingSyncMsMax: o.walBlockingSyncMs }),
        resource: o.resource,
        ...(o.pgUrl !== undefined && { pgUrl: o.pgUrl }),
        postgres: {
          ...(o.pgLockTimeoutMs !== undefined && { lockTimeoutMs: o.pgLockTimeoutMs }),
          ...(o.pgPoolMax !== undefined && { poolConnectionsMax: o.pgPoolMax }),
        },
      }),
    );
  });

withOptions(program.command('cluster'), accessOpts())
  .description('a local cluster: coordinator on --port, participants p1..pN on the next ports')
  .addOption(opt('--participants <n>', 'how many participants').argParser(intArg('participants', 1, 16)).default(3))
  .addOption(opt('--port <n>', "the coordinator's port, the participants' on the next ones (0: any free ports)").argParser(intArg('port', 0, 65_000)).default(7000))
  .addOption(opt('--data <dir>', 'directory for every WAL').default('.twopc'))
  .addOption(opt('--lab-port <n>', "the live lab's port (default: the one after the last participant's; 0: any free one)").argParser(intArg('lab-port', 0, 65_535)))
  .addOption(fsyncOpt())
  .addOption(logLevelOpt())
  .addOption(opt('--ha', 'add a local etcd and a second coordinator (an HA group; needs the etcd binary)').default(false))
  .addOption(opt('--etcd <urls>', 'with --ha: use this etcd instead of starting one'))
  .action(async (o) => {
    if (o.ha === true || o.etcd !== undefined) {
      const { runHaCluster } = await import('../scenarios/cluster-ha.ts');
      await runHaCluster({ participants: o.participants, basePort: o.port, dataDir: o.data, fsync: o.fsync, token: o.token, chaos: Boolean(o.chaos), ...(o.etcd !== undefined && { etcd: o.etcd }) });
      return;
    }
    const { runCluster } = await import('../scenarios/cluster.ts');
    await runCluster({
      participants: o.participants,
      basePort: o.port,
      dataDir: o.data,
      fsync: o.fsync,
      token: o.token,
      chaos: Boolean(o.chaos),
      ...(o.labPort !== undefined && { labPort: o.labPort }),
    });
  });

const { registerBenchCommand } = await import('../scenarios/bench-cli.ts');
registerBenchCommand(program);

const { registerWalCommands } = await import('../wal/cli.ts');
registerWalCommands(program);
const { registerScenarioCommands } = await import('../scenarios/cli.ts');
registerScenarioCommands(program);
const { registerSimulateCommand } = await import('../test/sim/cli.ts');
registerSimulateCommand(program);

await program.parseAsync(process.argv);
