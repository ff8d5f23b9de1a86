/**
 * A "payments" microservice whose state lives in PostgreSQL, put under two-phase
 * commit by embedding a participant with a PostgreSQL resource and ops of its own.
 * A coordinator can then run "charge the customer here AND reserve the goods over
 * there" atomically: the charge is a PostgreSQL transaction the participant
 * prepares (PREPARE TRANSACTION) and commits or rolls back when the coordinator
 * decides.
 *
 * Its ops are domain ops, not SQL: the coordinator's clients say what they want
 * (`charge`), the service decides how (its queries, its checks, its NO reasons).
 * Raw `{op:"sql"}` is off for it.
 *
 *   {"op":"topUp",  "customer":"alice", "amount":50}
 *   {"op":"charge", "orderId":"o-1", "customer":"alice", "amount":30}   no when short, or when the order is already paid
 *   {"op":"refund", "orderId":"o-1"}                                    no when unknown or already refunded
 *
 * Run it:
 *   npx tsx participant/examples/payments-postgres.ts --port 7200 --data .payments \
 *     --coordinator http://127.0.0.1:7000 --pg-url postgres://user@localhost/payments
 * and list it in the coordinator's --participants (payments=http://127.0.0.1:7200).
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { asyncRoute, finishApp, listen } from '../../shared/http/app.ts';
import { createLogger, type Logger } from '../../shared/logger.ts';
import { parse, z } from '../../shared/schemas.ts';
import { TwopcError } from '../../shared/errors.ts';
import { createParticipant, type Participant } from '../library.ts';
import { createPostgresResource, defineOp, PostgresStartError, VoteNo, type BranchSql, type PostgresResource } from '../resources/postgres.ts';

// ---- the service's ops ------------------------------------------------------------------

const customer = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/);
const orderId = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/);
/** Cents; a payment is small money, bounded well inside bigint and JSON's safe integers. */
const amount = z.int().min(1).max(100_000_000);

export type PaymentsOp =
  | { readonly op: 'topUp'; readonly customer: string; readonly amount: number }
  | { readonly op: 'charge'; readonly orderId: string; readonly customer: string; readonly amount: number }
  | { readonly op: 'refund'; readonly orderId: string };

type Of<K extends PaymentsOp['op']> = Extract<PaymentsOp, { op: K }>;

/** The service's tables. A wallet never goes below zero, whatever the ops do: the database says so. */
export const PAYMENTS_SCHEMA_SQL = `
  CREATE TABLE IF NOT EXISTS wallets (
    customer text PRIMARY KEY,
    balance bigint NOT NULL CHECK (balance >= 0)
  );
  CREATE TABLE IF NOT EXISTS payments (
    order_id text PRIMARY KEY,
    customer text NOT NULL REFERENCES wallets (customer),
    amount bigint NOT NULL CHECK (amount > 0),
    refunded boolean NOT NULL DEFAULT false,
    tx_id text NOT NULL
  );`;

const topUp = defineOp<Of<'topUp'>>({
  schema: z.strictObject({ op: z.literal('topUp'), customer, amount }),
  run: async (sql, op) => {
    await sql.query('INSERT INTO wallets (customer, balance) VALUES ($1, $2) ON CONFLICT (customer) DO UPDATE SET balance = wallets.balance + EXCLUDED.balance', [
      op.customer,
      op.amount,
    ]);
  },
});

/** Locks the wallet row (FOR UPDATE): a concurrent charge of the same wallet waits, up to lock_timeout, then votes no. */
async function walletBalance(sql: BranchSql, who: string): Promise<number> {
  const row = (await sql.query<{ balance: string }>('SELECT balance FROM wallets WHERE customer = $1 FOR UPDATE', [who])).rows[0];
  if (row === undefined) throw new VoteNo(`${who} has no wallet`);
  return Number(row.balance);
}

const charge = defineOp<Of<'charge'>>({
  schema: z.strictObject({ op: z.literal('charge'), orderId, customer, amount }),
  run: async (sql, op, branch) => {
    const balance = await walletBalance(sql, op.customer);
    if (balance < op.amount) throw new VoteNo(`${op.customer} has ${balance}, ${op.amount} wanted for order ${op.orderId}`);
    const paid = await sql.query('INSERT INTO payments (order_id, customer, amount, tx_id) VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO NOTHING', [
      op.orderId,
      op.customer,
      op.amount,
      branch.txId,
    ]);
    if (paid.rowCount !== 1) throw new VoteNo(`order ${op.orderId} is already paid`);
    await sql.query('UPDATE wallets SET balance = balance - $1 WHERE customer = $2', [op.amount, op.customer]);
  },
});

const refund = defineOp<Of<'refund'>>({
  schema: z.strictObject({ op: z.literal('refund'), orderId }),
  run: async (sql, op) => {
    const row = (await sql.query<{ customer: string; amount: string; refunded: boolean }>('SELECT customer, amount, refunded FROM payments WHERE order_id = $1 FOR UPDATE', [op.orderId]))
      .rows[0];
    if (row === undefined) throw new VoteNo(`order ${op.orderId} was never paid`);
    if (row.refunded) throw new VoteNo(`order ${op.orderId} is already refunded`);
    await sql.query('UPDATE payments SET refunded = true WHERE order_id = $1', [op.orderId]);
    await sql.query('UPDATE wallets SET balance = balance + $1 WHERE customer = $2', [row.amount, row.customer]);
  },
});

export const PAYMENTS_OPS = { topUp, charge, refund };

// ---- the service ---------------------------------------------------------------------------

export interface PaymentsServiceOptions {
  readonly port: number;
  readonly host?: string;
  readonly dataDir: string;
  readonly coordinatorUrl: string;
  readonly pgUrl: string;
  readonly token?: string;
  readonly logger?: Logger;
}

export interface PaymentsService {
  readonly url: string;
  readonly participant: Participant;
  readonly resource: PostgresResource;
  close(): Promise<void>;
}

export async function startPaymentsService(options: PaymentsServiceOptions): Promise<PaymentsService> {
  const logger = options.logger ?? createLogger({ role: 'participant', name: 'payments' });
  const resource = createPostgresResource({
    name: 'payments',
    url: options.pgUrl,
    ops: PAYMENTS_OPS,
    onError: (error, context) => logger.warn({ step: `postgres.${context}-error`, err: error.message }),
  });
  await resource.start();
  const participant = createParticipant({
    name: 'payments',
    dataDir: options.dataDir,
    coordinatorUrl: options.coordinatorUrl,
    resource,
    logger,
    ...(options.token !== undefined && { token: options.token }),
  });

  const app = express();
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, role: 'participant', name: 'payments', pid: process.pid, recovering: participant.recovering });
  });
  // The service's own reads: committed state (PostgreSQL's MVCC: a prepared charge is not visible, and does not block a read).
  app.get(
    '/wallets/:customer',
    asyncRoute(async (req, res) => {
      const who = parse(customer, req.params.customer);
      const row = (await resource.pool.query<{ balance: string }>('SELECT balance FROM wallets WHERE customer = $1', [who])).rows[0];
      if (row === undefined) throw new TwopcError('not_found', `${who} has no wallet.`);
      res.json({ customer: who, balance: Number(row.balance) });
    }),
  );
  app.get(
    '/payments/:orderId',
    asyncRoute(async (req, res) => {
      const id = parse(orderId, req.params.orderId);
      const row = (await resource.pool.query<{ customer: string; amount: string; refunded: boolean; tx_id: string }>('SELECT * FROM payments WHERE order_id = $1', [id])).rows[0];
      if (row === undefined) throw new TwopcError('not_found', `Order ${id} has no payment.`);
      res.json({ orderId: id, customer: row.customer, amount: Number(row.amount), refunded: row.refunded, txId: row.tx_id });
    }),
  );
  app.use(participant.router);
  finishApp(app, logger);

  let listening: Awaited<ReturnType<typeof listen>> | undefined;
  try {
    // One implicit transaction (a multi-statement query), serialised with any other instance creating the tables.
    await resource.pool.query(`SELECT pg_advisory_xact_lock(hashtext('twopc-payments-schema')); ${PAYMENTS_SCHEMA_SQL}`);
    listening = await listen(app, options.port, options.host ?? '127.0.0.1');
    await participant.start({ selfUrl: listening.url });
  } catch (error) {
    await listening?.close();
    await resource.close();
    throw error;
  }
  const running = listening;
  return {
    url: running.url,
    participant,
    resource,
    close: async () => {
      await running.close();
      await participant.stop();
      await resource.close();
    },
  };
}

// ---- run it directly ---------------------------------------------------------------------------

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '7200' },
      data: { type: 'string', default: '.payments' },
      coordinator: { type: 'string', default: 'http://127.0.0.1:7000' },
      'pg-url': { type: 'string', default: process.env.TWOPC_PG_URL },
      token: { type: 'string' },
    },
  });
  if (values['pg-url'] === undefined) {
    process.stderr.write('payments: --pg-url postgres://user@host/database is required (or TWOPC_PG_URL)\n');
    process.exit(64);
  }
  const service = await startPaymentsService({
    port: Number(values.port),
    dataDir: values.data,
    coordinatorUrl: values.coordinator,
    pgUrl: values['pg-url'],
    ...(values.token !== undefined && { token: values.token }),
    // Logs go to stderr, so stdout carries only the line below.
    logger: createLogger({ role: 'participant', name: 'payments', destination: process.stderr }),
  }).catch((error: unknown) => {
    if (error instanceof PostgresStartError) {
      process.stderr.write(`payments: ${error.message}\n`);
      process.exit(error.exitCode);
    }
    throw error;
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
