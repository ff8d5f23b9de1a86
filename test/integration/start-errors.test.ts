/**
 * Issue 7, item 7: a start that cannot work ends with one clear line on stderr, saying what
 * and where, and an exit code of its own (shared/exit-codes.ts), never a stack trace. Real
 * processes on real file systems: the read-only and full disks are tmpfs mounts (this needs
 * root, and fails loudly without it), the corrupt WAL is a participant's own WAL with one
 * byte flipped.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess } from '../../scenarios/harness.ts';
import { freePort } from '../../scenarios/ports.ts';
import { EXIT_CODES } from '../../shared/exit-codes.ts';
import { inspectWal } from '../../wal/index.ts';
import { linesOf, mountTmpfs, runTwopc, type CliRun } from '../helpers/cli.ts';
import { tempDir } from '../helpers/cluster.ts';
import { post } from '../helpers/http.ts';

let root: string;
const NOWHERE = 'http://127.0.0.1:9';

beforeAll(async () => {
  root = await tempDir('start-errors');
});
afterAll(async () => {
  await fs.promises.rm(root, { recursive: true, force: true });
});

/** The run exited with `code`, and said so in one line, no stack frames, naming every `what`. */
function expectOneLine(run: CliRun, code: number, ...what: string[]): string {
  expect(run.killed, `the process started instead of refusing; stderr: ${run.stderr}`).toBe(false);
  expect(run.code, run.stderr).toBe(code);
  const lines = linesOf(run.stderr);
  expect(lines, run.stderr).toHaveLength(1);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  const line = lines[0] as string;
  for (const w of what) expect(line).toContain(w);
  return line;
}

const participant = async (data: string, ...more: string[]) =>
  runTwopc(['participant', '--name', 'p1', '--port', String(await freePort()), '--data', data, '--coordinator', NOWHERE, ...more]);

describe('a start that cannot work', () => {
  it('port in use: 69, naming host and port', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const p = await runTwopc(['participant', '--name', 'p1', '--port', String(port), '--data', path.join(root, 'port-p'), '--coordinator', NOWHERE]);
      expectOneLine(p, EXIT_CODES.cannotListen, `127.0.0.1:${port}`, 'in use');
      const c = await runTwopc(['coordinator', '--port', String(port), '--data', path.join(root, 'port-c'), '--participants', `p1=${NOWHERE}`]);
      expectOneLine(c, EXIT_CODES.cannotListen, `127.0.0.1:${port}`, 'in use');
    } finally {
      blocker.close();
    }
  });

  it('read-only data directory: 73, naming it and EROFS', async () => {
    const mount = path.join(root, 'ro');
    fs.mkdirSync(mount);
    const unmount = mountTmpfs(mount, 'size=1m,ro');
    try {
      // A directory still to be made on a read-only file system, and one that exists there.
      expectOneLine(await participant(path.join(mount, 'wal')), EXIT_CODES.dataDirUnusable, path.join(mount, 'wal'), 'EROFS');
      expectOneLine(await participant(mount), EXIT_CODES.dataDirUnusable, mount, 'EROFS');
      const c = await runTwopc(['coordinator', '--port', '0', '--data', mount, '--participants', `p1=${NOWHERE}`]);
      expectOneLine(c, EXIT_CODES.dataDirUnusable, mount, 'EROFS');
    } finally {
      unmount();
    }
  });

  it('data directory under a file: 73, naming it and ENOTDIR', async () => {
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'not a directory');
    expectOneLine(await participant(path.join(file, 'wal')), EXIT_CODES.dataDirUnusable, path.join(file, 'wal'), 'ENOTDIR');
    // The data directory itself is a file.
    expectOneLine(await participant(file), EXIT_CODES.dataDirUnusable, file);
  });

  it('full disk: 74, naming the data directory and ENOSPC', async () => {
    const mount = path.join(root, 'full');
    fs.mkdirSync(mount);
    const unmount = mountTmpfs(mount, 'size=256k');
    try {
      const fill = fs.openSync(path.join(mount, 'fill'), 'w');
      const chunk = Buffer.alloc(4096, 1);
      // Bounded: 256 KiB is 64 chunks; the write that does not fit throws ENOSPC.
      for (let i = 0; i < 1024; i++) {
        try {
          fs.writeSync(fill, chunk);
        } catch (error) {
          expect((error as { code?: string }).code).toBe('ENOSPC');
          break;
        }
      }
      fs.closeSync(fill);
      const data = path.join(mount, 'wal');
      expectOneLine(await participant(data), EXIT_CODES.diskFull, data, 'ENOSPC');
    } finally {
      unmount();
    }
  });

  it('corrupt WAL (a flipped byte mid-log): 65, naming segment and offset', async () => {
    const data = path.join(root, 'corrupt');
    const port = await freePort();
    const node = new NodeProcess({
      name: 'p1',
      role: 'participant',
      port,
      args: ['--name', 'p1', '--port', String(port), '--data', data, '--coordinator', NOWHERE],
      logFile: path.join(root, 'logs', 'corrupt.log'),
    });
    await node.start();
    try {
      for (let i = 1; i <= 4; i++) {
        const res = await post(`${node.url}/v1/2pc/prepare`, { txId: `tx-1-${i}`, coordinator: NOWHERE, participants: [node.url], ops: [{ op: 'put', key: `k${i}`, value: i }] });
        expect(res.body).toEqual({ vote: 'yes' });
        expect((await post(`${node.url}/v1/2pc/commit`, { txId: `tx-1-${i}` })).status).toBe(200);
      }
    } finally {
      // SIGKILL: no clean-stop checkpoint, so the records stay the log's only copy.
      await node.kill();
    }
    const report = await inspectWal(data);
    expect(report.entries.length).toBeGreaterThan(4);
    const victim = report.entries[1];
    if (!victim) throw new Error('no record to corrupt');
    const file = path.join(data, victim.segment);
    const bytes = fs.readFileSync(file);
    const at = victim.offset + 24;
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    fs.writeFileSync(file, bytes);

    expectOneLine(await participant(data), EXIT_CODES.walCorrupt, victim.segment, `byte offset ${victim.offset}`);
  });

  it('invalid URL in --participants or --coordinator: 64, naming the URL', async () => {
    const c = await runTwopc(['coordinator', '--port', '0', '--data', path.join(root, 'url-c'), '--participants', 'p1=http://[::1']);
    expectOneLine(c, EXIT_CODES.config, 'http://[::1', '--participants');
    const p = await participant(path.join(root, 'url-p'), '--coordinator', 'http://[::1');
    expectOneLine(p, EXIT_CODES.config, 'http://[::1', '--coordinator');
    // From the environment too, as in a container.
    const e = await runTwopc(['coordinator', '--port', '0', '--data', path.join(root, 'url-e')], { TWOPC_PARTICIPANTS: 'p1=ftp://127.0.0.1:1' });
    expectOneLine(e, EXIT_CODES.config, 'ftp://127.0.0.1:1', 'TWOPC_PARTICIPANTS');
    // Nothing was created for a start refused on its flags.
    expect(fs.existsSync(path.join(root, 'url-c'))).toBe(false);
  });

  it('two names for one participant: 64, naming both and the URL', async () => {
    const c = await runTwopc(['coordinator', '--port', '0', '--data', path.join(root, 'names'), '--participants', 'p1=http://h:1,p2=http://H:1/']);
    const line = expectOneLine(c, EXIT_CODES.config, 'p1', 'p2', 'http://h:1');
    expect(line).toMatch(/one participant/);
    const loop = await runTwopc(['coordinator', '--port', '0', '--data', path.join(root, 'names'), '--participants', 'a=http://localhost:7001,b=http://127.0.0.1:7001']);
    expectOneLine(loop, EXIT_CODES.config, 'a (http://localhost:7001)', 'b (http://127.0.0.1:7001)');
  });

  it('an HA member on 0.0.0.0 without --advertise-url, or with a bad one: 64, naming the flag', async () => {
    // No etcd is needed: the start is refused before anything listens or dials. Were it not,
    // the member would campaign on this closed port until the run's wait killed it.
    const ha = ['coordinator', '--port', '0', '--data', path.join(root, 'ha'), '--participants', 'p1=http://127.0.0.1:9', '--etcd', NOWHERE, '--group', 'g'];
    const wild = await runTwopc(ha, { TWOPC_HOST: '0.0.0.0' });
    const line = expectOneLine(wild, EXIT_CODES.config, '0.0.0.0', '--advertise-url', 'TWOPC_ADVERTISE_URL');
    expect(line).toMatch(/no other member can reach/);
    const v6 = await runTwopc([...ha, '--host', '::']);
    expectOneLine(v6, EXIT_CODES.config, '--advertise-url');
    const bad = await runTwopc([...ha, '--host', '0.0.0.0', '--advertise-url', 'c1:7000']);
    expectOneLine(bad, EXIT_CODES.config, '--advertise-url', 'c1:7000');
  });
});
