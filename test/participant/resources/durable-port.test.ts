/**
 * The test resource that keeps prepared branches across a crash (./durable-resource.ts) runs the
 * Resource suite: the orphan roll-back and the reconcile cases through a real participant runtime,
 * until PostgreSQL runs them too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DurableTestResource, type DurableOp } from './durable-resource.ts';
import { describeResourcePort } from './resource-port.suite.ts';

describeResourcePort<DurableOp, DurableTestResource>('a resource that keeps prepared branches (a JSON file)', async () => {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'twopc-durable-resource-'));
  const file = path.join(dir, 'state.json');
  let current: DurableTestResource | undefined;
  return {
    open: async () => (current = new DurableTestResource(file)),
    afterCrash: async () => {
      current?.kill();
      return (current = new DurableTestResource(file));
    },
    add: (key, amount) => [{ op: 'add', key, amount }],
    refused: (key) => [{ op: 'add', key, amount: -1, min: 0 }],
    read: async (resource, key) => resource.value(key),
    dispose: async () => {
      current?.kill();
      await fs.promises.rm(dir, { recursive: true, force: true });
    },
  };
});
