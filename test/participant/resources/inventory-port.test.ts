/** The embedded inventory example's resource runs the Resource suite; its stock lives in memory, rebuilt from the WAL. */
import { Inventory, type InventoryOp } from '../../../participant/examples/embedded-service.ts';
import { describeResourcePort } from './resource-port.suite.ts';

describeResourcePort<InventoryOp, Inventory>('the inventory example', async () => ({
  open: async () => new Inventory(),
  afterCrash: async () => new Inventory(),
  add: (sku, qty) => [{ op: 'restock', sku, qty }],
  // Nothing is in stock in a fresh inventory, so a reservation votes no.
  refused: (sku) => [{ op: 'reserve', sku, qty: 1 }],
  read: async (inventory, sku) => inventory.level(sku),
  dispose: async () => undefined,
}));
