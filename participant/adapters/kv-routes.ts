/**
 * Reads of the built-in key-value resource: committed state only, plus who
 * holds a key's lock, so a learner can watch an in-doubt transaction block it.
 *
 *   GET /v1/kv        {entries: {key: value}}
 *   GET /v1/kv/:key   {key, value, lockedBy?}; `value` is absent when the key does not exist
 */
import express, { type Router } from 'express';
import { mountRoute } from '../../shared/http/route-table.ts';
import type { TxId } from '../../shared/types.ts';
import { kvGetRoute, kvListRoute } from '../api.ts';
import type { KvStore } from '../resources/kv.ts';

export interface KvRouterOptions {
  readonly kv: KvStore;
  readonly lockHolder: (key: string) => TxId | undefined;
  /** Resolves once recovery has rebuilt the store. */
  readonly ready: () => Promise<void>;
}

export function createKvRouter(options: KvRouterOptions): Router {
  const router = express.Router();
  mountRoute(router, kvListRoute, async (_input, _req, res) => {
    await options.ready();
    res.json({ entries: options.kv.entries() });
  });
  mountRoute(router, kvGetRoute, async ({ params: { key } }, _req, res) => {
    await options.ready();
    const { found, value } = options.kv.get(key);
    const lockedBy = options.lockHolder(key);
    res.json({ key, ...(found && { value }), ...(lockedBy !== undefined && { lockedBy }) });
  });
  return router;
}
