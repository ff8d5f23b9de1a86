/** Real-process clusters for integration tests: temp data dirs, and a teardown that leaves nothing running. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessCluster, type ClusterOptions } from '../../scenarios/harness.ts';

export async function tempDir(prefix: string): Promise<string> {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), `twopc-${prefix}-`));
}

export async function startCluster(prefix: string, options: Partial<ClusterOptions> = {}): Promise<{ cluster: ProcessCluster; dataDir: string; teardown(): Promise<void> }> {
  const dataDir = await tempDir(prefix);
  const cluster = await ProcessCluster.create({ participants: 3, fsync: 'group', chaos: true, lockWaitMs: 200, ...options, dataDir });
  try {
    await cluster.start();
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return {
    cluster,
    dataDir,
    teardown: async () => {
      for (const n of cluster.nodes) n.resume();
      await cluster.stop();
      if (!process.env.TWOPC_KEEP_TEST_DATA) await fs.promises.rm(dataDir, { recursive: true, force: true });
    },
  };
}
