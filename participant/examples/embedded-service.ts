/**
 * An "inventory" microservice that puts its own stock levels under two-phase
 * commit by embedding a participant. It keeps its own routes (GET /stock) and
 * gains /v1/2pc/* from the participant's router, so a twopc coordinator can
 * enlist it in a transaction, e.g. "reserve 2 widgets here AND charge the
 * customer over there", atomically.
 *
 * Run it:
 *   npx tsx participant/examples/embedded-service.ts --port 7100 --data .inventory --coordinator http://127.0.0.1:7000
 * and list it in the coordinator's --participants (inventory=http://127.0.0.1:7100).
 * A branch for it looks like: {"participant":"inventory","ops":[{"op":"reserve","sku":"widget","qty":2}]}
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { asyncRoute, finishApp, listen } from '../../shared/http/app.ts';
import { createLogger, type Logger } from '../../shared/logger.ts';
import { parse, z, type Schema } from '../../shared/schemas.ts';
import type { TxId } from '../../shared/types.ts';
import { createParticipant, type Participant } from '../library.ts';
import type { PrepareResult, Resource } from '../resources/resource.ts';

// ---- the resource: stock levels -----------------------------------------------------

export type InventoryOp =
  | { readonly op: 'reserve'; readonly sku: string; readonly qty: number }
  | { readonly op: 'restock'; readonly sku: string; readonly qty: number };

const sku = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/);
const qty = z.int().min(1).max(1_000_000);

const inventoryOpSchema: Schema<InventoryOp> = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('reserve'), sku, qty }),
  z.strictObject({ op: z.literal('restock'), sku, qty }),
]);

/** Commit data: each touched SKU's final stock, so applying it twice is harmless. */
interface StockCommit {
  readonly stock: readonly (readonly [string, number])[];
}

export class Inventory implements Resource<InventoryOp> {
  readonly opsSchema = z.array(inventoryOpSchema).max(64);
  /** The core locks the SKUs; the stock is in memory, rebuilt from the WAL, so nothing stays prepared across a crash. */
  readonly locking = 'core';
  private readonly stock = new Map<string, number>();

  keysOf(ops: readonly InventoryOp[]): readonly string[] {
    return ops.map((o) => `sku:${o.sku}`);
  }

  /** Runs with the SKUs locked, so the levels it reads cannot change before commit. */
  prepare(_txId: TxId, ops: readonly InventoryOp[]): PrepareResult {
    const next = new Map<string, number>();
    for (const o of ops) {
      const have = next.get(o.sku) ?? this.stock.get(o.sku) ?? 0;
      if (o.op === 'reserve' && have < o.qty) return { vote: 'no', reason: `only ${have} ${o.sku} in stock, ${o.qty} wanted` };
      next.set(o.sku, o.op === 'reserve' ? have - o.qty : have + o.qty);
    }
    return { vote: 'yes', data: { stock: [...next] } satisfies StockCommit };
  }

  commit(_txId: TxId, data: unknown): void {
    for (const [s, n] of (data as StockCommit).stock) this.stock.set(s, n);
  }

  abort(): void {
    // Nothing is applied before commit.
  }

  snapshot(): StockCommit {
    return { stock: [...this.stock] };
  }

  restore(snapshot: unknown): void {
    this.stock.clear();
    for (const [s, n] of (snapshot as StockCommit).stock) this.stock.set(s, n);
  }

  level(s: string): number {
    return this.stock.get(s) ?? 0;
  }

  all(): Record<string, number> {
    return Object.fromEntries(this.stock);
  }
}

// ---- the service ------------------------------------------------------------------

export interface InventoryServiceOptions {
  readonly port: number;
  readonly host?: string;
  readonly dataDir: string;
  readonly coordinatorUrl: string;
  readonly token?: string;
  readonly logger?: Logger;
}

export interface InventoryService {
  readonly url: string;
  readonly participant: Participant;
  readonly inventory: Inventory;
  close(): Promise<void>;
}

export async function startInventoryService(options: InventoryServiceOptions): Promise<InventoryService> {
  const logger = options.logger ?? createLogger({ role: 'participant', name: 'inventory' });
  const inventory = new Inventory();
  const participant = createParticipant({
    name: 'inventory',
    dataDir: options.dataDir,
    coordinatorUrl: options.coordinatorUrl,
    resource: inventory,
    logger,
    ...(options.token !== undefined && { token: options.token }),
  });

  const app = express();
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, role: 'participant', name: 'inventory', pid: process.pid, recovering: participant.recovering });
  });
  // The service's own API: committed stock, and whether a transaction holds the SKU right now.
  app.get(
    '/stock/:sku',
    asyncRoute(async (req, res) => {
      const s = parse(sku, req.params.sku);
      await participant.ready();
      const lockedBy = participant.lockHolder(`sku:${s}`);
      res.json({ sku: s, qty: inventory.level(s), ...(lockedBy !== undefined && { lockedBy }) });
    }),
  );
  app.get(
    '/stock',
    asyncRoute(async (_req, res) => {
      await participant.ready();
      res.json({ stock: inventory.all() });
    }),
  );
  // Two-phase commit, on the same port.
  app.use(participant.router);
  finishApp(app, logger);

  const listening = await listen(app, options.port, options.host ?? '127.0.0.1');
  try {
    await participant.start({ selfUrl: listening.url });
  } catch (error) {
    await listening.close();
    throw error;
  }
  return {
    url: listening.url,
    participant,
    inventory,
    close: async () => {
      await listening.close();
      await participant.stop();
    },
  };
}

// ---- run it directly ----------------------------------------------------------------

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '7100' },
      data: { type: 'string', default: '.inventory' },
      coordinator: { type: 'string', default: 'http://127.0.0.1:7000' },
      token: { type: 'string' },
    },
  });
  const service = await startInventoryService({
    port: Number(values.port),
    dataDir: values.data,
    coordinatorUrl: values.coordinator,
    ...(values.token !== undefined && { token: values.token }),
    // Logs go to stderr, so stdout carries only the line below.
    logger: createLogger({ role: 'participant', name: 'inventory', destination: process.stderr }),
  });
  // One line on stdout that scripts (and the example's test) read to find the service.
  process.stdout.write(`${JSON.stringify({ url: service.url })}\n`);
  const stop = () => {
    service.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
