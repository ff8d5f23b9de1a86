/**
 * The named scenarios of `twopc scenario list|run`. Each entry loads its
 * module only when run, so listing stays instant.
 */
import type { Scenario, ScenarioContext, ScenarioResult } from './scenario.ts';

function lazy(name: string, description: string, load: () => Promise<(ctx: ScenarioContext) => Promise<ScenarioResult>>): Scenario {
  return { name, description, run: async (ctx) => (await load())(ctx) };
}

export const SCENARIOS: readonly Scenario[] = [
  lazy(
    'blocking',
    'Teaching demo: the coordinator dies after every participant voted yes and before it decided. The participants stay prepared, hold their locks, their inquiries fail, their peers are all prepared too: blocked. The coordinator restarts and presumed abort settles them.',
    async () => (await import('./demos.ts')).blocking,
  ),
  lazy(
    'coordinator-crash',
    'Teaching demo: the coordinator dies right after its COMMIT decision is logged. The participants are in doubt until it restarts and resends the decision; then they commit.',
    async () => (await import('./demos.ts')).coordinatorCrash,
  ),
  lazy(
    'participant-crash',
    'Teaching demo: a participant dies right after forcing PREPARED, before its YES vote leaves; the coordinator aborts. It comes back in doubt, holding its locks though everyone else has moved on, asks, and aborts.',
    async () => (await import('./demos.ts')).participantCrash,
  ),
  lazy(
    'cooperative-termination',
    'Teaching demo: the coordinator dies after one participant committed; the others are in doubt, cannot reach the coordinator, ask their peers, learn the outcome from the one that knows, and commit.',
    async () => (await import('./demos.ts')).cooperativeTermination,
  ),
  lazy(
    'heuristic',
    'Teaching demo: with the coordinator down, an operator settles an in-doubt participant by hand (abort) against the coordinator\'s logged decision (commit); the coordinator reports heuristic-mixed.',
    async () => (await import('./demos.ts')).heuristic,
  ),
  lazy(
    'crash-points',
    'Every named crash point on the commit and the abort path: SIGKILL there, restart, and check agreement, no lost acknowledged outcome, nothing in doubt, nothing applied twice.',
    async () => (await import('./crash-enumeration.ts')).runCrashPoints,
  ),
  lazy(
    'network-faults',
    'The bank workload through fault proxies: dropped requests and responses, duplicates, delays, reordering and hangs on prepare, vote, commit, abort, ack and outcome inquiries; then heal and check.',
    async () => (await import('./network-faults.ts')).runNetworkFaults,
  ),
  lazy(
    'chaos-soak',
    'The bank workload with random SIGKILL, SIGSTOP/SIGCONT and proxy faults (--kills N, --duration D), a heal phase, and a Jepsen-style check of the history.',
    async () => (await import('./soak.ts')).runChaosSoak,
  ),
  lazy(
    'fsync-failure',
    'An injected fdatasync failure (EIO, --chaos with TWOPC_FAIL_FSYNC_AFTER) in a running participant, then in the coordinator, under the bank workload: each stops at once, acknowledges nothing after it, recovers from its WAL on restart, and the checker passes.',
    async () => (await import('./fsync-failure.ts')).runFsyncFailure,
  ),
  lazy(
    'bank-postgres',
    "The bank workload over two PostgreSQL databases (--resource postgres) and a key-value participant, with SIGKILLs of the coordinator and the participants (--kills N) and PostgreSQL itself crashed and restarted once while transactions are prepared in it; the checker proves the total unchanged over all three and nothing left in pg_prepared_xacts. Runs its own PostgreSQL server.",
    async () => (await import('./bank-postgres.ts')).runBankPostgres,
  ),
  lazy(
    'protocol-variants',
    'Presumed abort, presumed nothing and presumed commit side by side: one committed and one aborted transaction each, on real processes; forced WAL writes, all WAL writes and messages sent per transaction at each node, as a table, checked against what each presumption prescribes.',
    async () => (await import('./protocol-variants.ts')).runProtocolVariants,
  ),
  lazy(
    'replay',
    'Plays a lab session saved from the lab page (--file SESSION.json) again on a fresh cluster: its transfers, kills, pauses, restarts, crash points and step-mode decisions in order; checks that every decision found its message and the transfers ended as in the session.',
    async () => (await import('./lab/replay.ts')).runReplay,
  ),
  lazy(
    'coordinator-failover',
    'HA (etcd): the leader of two coordinators is SIGKILLed right after logging COMMIT while every participant is prepared; the standby takes over from the log in etcd within one lease and every participant commits without the old leader restarting. Beside it, the same crash with a single coordinator, blocked until it restarts. Runs its own etcd.',
    async () => (await import('./ha.ts')).coordinatorFailover,
  ),
  lazy(
    'failover-soak',
    'HA (etcd): the bank workload on three etcd members, two coordinators and three participants, with SIGKILLs of the leader, the follower, participants and one etcd member in turn (--kills N, 20 by default), the leader paused past its lease now and then; then heal and check: acked lost 0, split 0, in doubt 0, total unchanged. Runs its own etcd.',
    async () => (await import('./failover-soak.ts')).runFailoverSoak,
  ),
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
