/**
 * `twopc cluster --ha`: the local cluster with a replicated coordinator. A local
 * etcd member (the `etcd` binary; `--etcd URL` uses an existing etcd instead),
 * two coordinators c1 and c2 of one group, and participants p1..pN that know
 * both. Ports from --port: c1, then p1..pN, then c2, then etcd's client and
 * peer ports; etcd's data lives under --data with the WALs, so a restart
 * recovers both. Ctrl-C stops everything.
 */
import path from 'node:path';
import { createHttpClient } from '../shared/http/client.ts';
import { startEtcd, type EtcdCluster } from './etcd.ts';
import { NodeProcess } from './harness.ts';
import type { RunClusterOptions } from './cluster.ts';
import { transferBody } from './cluster.ts';

/** The group the local cluster's coordinators form. */
export const LOCAL_GROUP = 'local';
const FUND_TIMEOUT_MS = 10_000;
const ACCOUNTS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];
const OPENING_BALANCE = 100;
/** How long the cluster waits for one coordinator to lead before it gives up. */
const LEADER_WAIT_MS = 30_000;

export interface RunHaClusterOptions extends RunClusterOptions {
  /** An existing etcd's client URLs; a local member is started when absent. */
  readonly etcd?: string;
}

export interface HaClusterNodes {
  readonly etcd?: EtcdCluster;
  readonly etcdUrls: string;
  readonly coordinators: NodeProcess[];
  readonly participants: NodeProcess[];
}

/** Builds (does not start) the nodes of a local HA cluster. */
export async function haClusterNodes(options: RunHaClusterOptions): Promise<HaClusterNodes> {
  const dataDir = path.resolve(options.dataDir);
  const n = options.participants;
  const base = options.basePort;
  const c1Port = base;
  const c2Port = base + n + 1;
  const coordUrls = [c1Port, c2Port].map((p) => `http://127.0.0.1:${p}`);
  const etcd = options.etcd === undefined ? await startEtcd({ members: 1, dir: path.join(dataDir, 'etcd'), ports: [base + n + 2, base + n + 3] }) : undefined;
  const etcdUrls = options.etcd ?? (etcd as EtcdCluster).urls;
  const common = ['--fsync', options.fsync, ...(options.chaos ? ['--chaos'] : []), ...(options.token ? ['--token', options.token] : [])];
  // prettier-ignore
  const participants = Array.from({ length: n }, (_, i) => new NodeProcess({
    name: `p${i + 1}`, role: 'participant', port: base + 1 + i, logFile: path.join(dataDir, 'logs', `p${i + 1}.log`),
    args: ['--name', `p${i + 1}`, '--port', String(base + 1 + i), '--data', path.join(dataDir, `p${i + 1}`), '--coordinator', coordUrls.join(','), ...common],
  }));
  const list = participants.map((p) => `${p.name}=${p.url}`).join(',');
  // prettier-ignore
  const coordinators = [c1Port, c2Port].map((port, i) => new NodeProcess({
    name: `c${i + 1}`, role: 'coordinator', port, logFile: path.join(dataDir, 'logs', `c${i + 1}.log`),
    args: ['--name', `c${i + 1}`, '--port', String(port), '--data', path.join(dataDir, `c${i + 1}`), '--participants', list,
      '--etcd', etcdUrls, '--group', LOCAL_GROUP, ...common],
  }));
  return { ...(etcd !== undefined && { etcd }), etcdUrls, coordinators, participants };
}

/** The URL of the coordinator that leads: a follower's 503 names it; a leader takes the request. */
async function leaderUrl(nodes: HaClusterNodes, token: string | undefined): Promise<string> {
  const http = createHttpClient({ ...(token !== undefined && { token }), timeoutMs: FUND_TIMEOUT_MS });
  try {
    const deadline = Date.now() + LEADER_WAIT_MS;
    while (Date.now() < deadline) {
      for (const c of nodes.coordinators) {
        const res = await http.get<string>(`${c.url}/metrics`).catch(() => undefined);
        if (res?.status === 200 && /^twopc_coordinator_leader 1$/m.test(String(res.data))) return c.url;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no coordinator leads group ${LOCAL_GROUP} after ${LEADER_WAIT_MS} ms (is etcd at ${nodes.etcdUrls} up?)`);
  } finally {
    http.close();
  }
}

async function fundIfFresh(nodes: HaClusterNodes, leader: string, token: string | undefined): Promise<void> {
  const http = createHttpClient({ ...(token !== undefined && { token }), timeoutMs: FUND_TIMEOUT_MS });
  try {
    const first = nodes.participants[0];
    if (!first) return;
    const body = (await http.get<{ entries?: Record<string, unknown> }>(`${first.url}/v1/kv`)).data;
    if (body.entries && Object.keys(body.entries).length > 0) return;
    const branches = nodes.participants.map((p, i) => ({ participant: p.name, ops: [{ op: 'put', key: ACCOUNTS[i % ACCOUNTS.length], value: OPENING_BALANCE }] }));
    const seeded = await http.post(`${leader}/v1/transactions`, { branches });
    if (seeded.status !== 200) throw new Error(`could not fund the demo accounts: HTTP ${seeded.status} ${JSON.stringify(seeded.data)}`);
  } finally {
    http.close();
  }
}

export async function runHaCluster(options: RunHaClusterOptions): Promise<void> {
  let nodes: HaClusterNodes;
  try {
    nodes = await haClusterNodes(options);
  } catch (error) {
    console.error(`twopc cluster --ha: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    process.exit(1);
  }
  const all = [...nodes.participants, ...nodes.coordinators];
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping the cluster…');
    await Promise.all(all.map((n) => n.stop()));
    await nodes.etcd?.stop();
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));
  let leader: string;
  try {
    await Promise.all(all.map((n) => n.start()));
    leader = await leaderUrl(nodes, options.token);
    await fundIfFresh(nodes, leader, options.token);
  } catch (error) {
    console.error(String(error instanceof Error ? error.message : error));
    await stop(1);
    return;
  }
  const auth = options.token ? ` -H 'authorization: Bearer ${options.token}'` : '';
  console.log(`twopc cluster --ha is up (WALs, etcd data and logs under ${path.resolve(options.dataDir)})
  etcd         ${nodes.etcdUrls}${nodes.etcd === undefined ? ' (existing)' : ''}
${nodes.coordinators.map((c) => `  ${c.name.padEnd(11)}  ${c.url}${c.url === leader ? '   (leader)' : '   (standby)'}`).join('\n')}
${nodes.participants.map((p) => `  ${p.name.padEnd(11)}  ${p.url}`).join('\n')}

Run a transfer of 10 from alice (p1) to bob (p2) through the leader (a standby answers 503 not_leader, naming it):
  curl -s -X POST ${leader}/v1/transactions -H 'content-type: application/json'${auth} -d '${JSON.stringify(transferBody('alice', 'bob', 10))}'

Kill the leader (kill -9 its pid) and the standby takes over within one lease (2 s).
Ctrl-C stops every node.`);
  for (const node of all) {
    void node.waitExit(2 ** 31 - 1).then(
      (info) => {
        if (!stopping) console.log(`${node.name} exited (${info.signal ?? `code ${info.code}`}); log: ${node.spec.logFile}`);
      },
      () => undefined,
    );
  }
}
