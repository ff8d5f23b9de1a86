/**
 * `twopc cluster` (and `npm start`): a coordinator and participants as real
 * processes on loopback, WALs under --data, and the live lab (scenarios/lab)
 * served by this process, its internal messages passing the lab's proxies.
 * Prints the URLs and a curl line that runs a transfer; Ctrl-C stops
 * everything; a restart recovers from --data.
 */
import path from 'node:path';
import { createHttpClient, type HttpClient } from '../shared/http/client.ts';
import { ProcessCluster } from './harness.ts';
import { Lab } from './lab/index.ts';
import { LAB_TRANSFER_TIMEOUT_MS } from './lab/server.ts';

export interface RunClusterOptions {
  readonly participants: number;
  readonly basePort: number;
  readonly dataDir: string;
  readonly fsync: 'always' | 'group' | 'none';
  readonly token?: string;
  readonly chaos: boolean;
  /** The lab's port; by default the one after the last participant's (any free one if that is taken). */
  readonly labPort?: number;
}

/** Demo accounts, one per participant, funded on a fresh cluster so the printed transfer can commit. */
const ACCOUNTS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];
const OPENING_BALANCE = 100;

/** Bound on each call that funds the demo accounts. */
const FUND_TIMEOUT_MS = 10_000;

export function transferBody(from: string, to: string, amount: number): unknown {
  return {
    branches: [
      { participant: 'p1', ops: [{ op: 'add', key: from, amount: -amount, min: 0 }] },
      { participant: 'p2', ops: [{ op: 'add', key: to, amount }] },
    ],
  };
}

async function fundIfFresh(cluster: ProcessCluster, token: string | undefined): Promise<void> {
  const first = cluster.participants[0];
  if (!first) return;
  const http = createHttpClient({ ...(token !== undefined && { token }), timeoutMs: FUND_TIMEOUT_MS });
  try {
    await fund(cluster, first.url, http);
  } finally {
    http.close();
  }
}

async function fund(cluster: ProcessCluster, firstUrl: string, http: HttpClient): Promise<void> {
  const body = (await http.get<{ entries?: Record<string, unknown> }>(`${firstUrl}/v1/kv`)).data;
  if (body.entries && Object.keys(body.entries).length > 0) return;
  const branches = cluster.participants.map((p, i) => ({
    participant: p.name,
    ops: [{ op: 'put', key: ACCOUNTS[i % ACCOUNTS.length], value: OPENING_BALANCE }],
  }));
  const seeded = await http.post(`${cluster.coordinator.url}/v1/transactions`, { branches });
  if (seeded.status !== 200) throw new Error(`could not fund the demo accounts: HTTP ${seeded.status} ${JSON.stringify(seeded.data)}`);
}

/** A cluster with its lab, as `twopc cluster` runs it (and the lab's replay scenario). */
export interface LabCluster {
  readonly lab: Lab;
  readonly cluster: ProcessCluster;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/** Opens the lab, then starts the nodes with their messages through its proxies, and funds the demo accounts. */
export async function startLabCluster(options: RunClusterOptions): Promise<LabCluster> {
  const dataDir = path.resolve(options.dataDir);
  const lab = await Lab.open({
    participants: options.participants,
    chaos: options.chaos,
    ...(options.token !== undefined && { token: options.token }),
    port: options.labPort ?? (options.basePort > 0 ? options.basePort + options.participants + 1 : 0),
  });
  const cluster = await ProcessCluster.create({
    participants: options.participants,
    basePort: options.basePort,
    dataDir,
    fsync: options.fsync,
    token: options.token,
    chaos: options.chaos,
    peerUrlOf: lab.peerUrlOf,
    // The lab reads each node's WAL writes from its debug log lines.
    env: { TWOPC_LOG_LEVEL: 'debug' },
    // A person stepping messages by hand needs longer than a machine to deliver a vote.
    coordinatorArgs: ['--lab-url', lab.url, '--prepare-timeout-ms', String(LAB_TRANSFER_TIMEOUT_MS)],
  });
  const stop = async () => {
    await lab.close();
    await cluster.stop();
  };
  try {
    await lab.attach(cluster, dataDir, () => transferBody('alice', 'bob', 10), options.token);
    await cluster.start();
    await fundIfFresh(cluster, options.token);
  } catch (error) {
    await stop();
    throw error;
  }
  return { lab, cluster, dataDir, stop };
}

export async function runCluster(options: RunClusterOptions): Promise<void> {
  let stopping = false;
  let running: LabCluster | undefined;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping the cluster…');
    await running?.stop();
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));

  try {
    running = await startLabCluster(options);
  } catch (error) {
    console.error(String(error instanceof Error ? error.message : error));
    await stop(1);
    return;
  }
  const { lab, cluster, dataDir } = running;

  const auth = options.token ? ` -H 'authorization: Bearer ${options.token}'` : '';
  const body = JSON.stringify(transferBody('alice', 'bob', 10));
  console.log(`twopc cluster is up (WALs and logs under ${dataDir})
  coordinator  ${cluster.coordinator.url}   dashboard: ${cluster.coordinator.url}/
${cluster.participants.map((p) => `  ${p.name.padEnd(11)}  ${p.url}`).join('\n')}
lab: ${lab.url}${options.token ? `#token=${options.token}` : ''}${options.chaos ? '' : '   (read-only; start with --chaos for its buttons)'}

Run a transfer of 10 from alice (p1) to bob (p2):
  curl -s -X POST ${cluster.coordinator.url}/v1/transactions -H 'content-type: application/json'${auth} -d '${body}'

See the balances:
  curl -s ${cluster.participants[0]?.url}/v1/kv${auth}; curl -s ${cluster.participants[1]?.url}/v1/kv${auth}

Ctrl-C stops every node; starting again recovers from ${options.dataDir}.`);

  // Stay up while the nodes do; if one dies (a crash point, a kill -9), say so and keep the rest running.
  for (const node of cluster.nodes) {
    void node.waitExit(2 ** 31 - 1).then(
      (info) => {
        if (!stopping) console.log(`${node.name} exited (${info.signal ?? `code ${info.code}`}); log: ${node.spec.logFile}`);
      },
      () => undefined,
    );
  }
}
