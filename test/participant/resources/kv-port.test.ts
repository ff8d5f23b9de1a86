/** The key-value store runs the Resource suite; its durability is the participant's WAL and checkpoints. */
import { KvStore } from '../../../participant/resources/kv.ts';
import type { Op } from '../../../shared/types.ts';
import { describeResourcePort } from './resource-port.suite.ts';

describeResourcePort<Op, KvStore>('the key-value store', async () => ({
  open: async () => new KvStore(),
  // Memory dies with the process: recovery restores the store from the checkpoint and replays the WAL.
  afterCrash: async () => new KvStore(),
  add: (key, amount) => [{ op: 'add', key, amount }],
  refused: (key) => [{ op: 'add', key, amount: -1, min: 0 }],
  read: async (kv, key) => {
    const { found, value } = kv.get(key);
    return found ? (value as number) : 0;
  },
  dispose: async () => undefined,
}));
