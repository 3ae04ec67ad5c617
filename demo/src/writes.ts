// Layer: demo. The app's business writes. Each one is several collection writes made in the same
// tick: the runtime sends writes made together as one mutation batch, so a bill, its stock
// decrements and its stock transactions reach the server (and other tabs) together.
import type { PendingWrite, SyncClient } from 'syncline';
import type { Bill, Booking, LedgerEntry, LineItem, Order, OrderStage, Product, StockTx } from './model';
import { billNumber, ORDER_STAGES } from './model';
import { TAB_ID } from './session';

const DAY = 86400000;

export interface NewBill {
  customer_id: string;
  customer_name: string;
  branch: string;
  items: LineItem[];
  dueDays?: number;
}

/** Inserts the bill, decrements each product's stock, records a stock transaction per line and
 * a debit on the customer's ledger. Returns the bill write (its promise = the server's verdict). */
export function createBill(client: SyncClient, bill: NewBill, by: string): PendingWrite {
  const now = Date.now();
  const total = bill.items.reduce((s, it) => s + it.qty * it.price, 0);
  const number = billNumber();
  const w = client.collection<Bill>('bills').insert({
    number,
    customer_id: bill.customer_id,
    customer_name: bill.customer_name,
    branch: bill.branch,
    items: bill.items,
    total,
    status: 'unpaid',
    created_at: now,
    due_at: now + (bill.dueDays ?? 14) * DAY,
  });
  const products = client.collection<Product>('products');
  for (const it of bill.items) {
    const p = products.get(it.product_id);
    const stock = (p?.fields.stock ?? 0) - it.qty;
    if (p) products.update(it.product_id, { stock }).catch(() => {});
    client
      .collection<StockTx>('stock_transactions')
      .insert({ product_id: it.product_id, product_name: it.name, branch: bill.branch, kind: 'sale', qty: -it.qty, stock_after: stock, bill_id: w.id, at: now, by })
      .catch(() => {});
  }
  client
    .collection<LedgerEntry>('ledger_entries')
    .insert({ customer_id: bill.customer_id, customer_name: bill.customer_name, kind: 'debit', amount: total, memo: `Bill ${number}`, at: now })
    .catch(() => {});
  return w;
}

export function markPaid(client: SyncClient, id: string): PendingWrite | null {
  const b = client.collection<Bill>('bills').get(id);
  if (!b || b.fields.status === 'paid') return null;
  const now = Date.now();
  const w = client.collection<Bill>('bills').update(id, { status: 'paid', paid_at: now });
  client
    .collection<LedgerEntry>('ledger_entries')
    .insert({ customer_id: b.fields.customer_id, customer_name: b.fields.customer_name, kind: 'credit', amount: b.fields.total, memo: `Payment for ${b.fields.number}`, at: now })
    .catch(() => {});
  return w;
}

/** A purchase (+), sale (−) or adjustment (±) of one product, with its transaction record. */
export function recordMovement(client: SyncClient, productId: string, kind: StockTx['kind'], qty: number, by: string, note?: string): PendingWrite | null {
  const products = client.collection<Product>('products');
  const p = products.get(productId);
  if (!p) return null;
  const delta = kind === 'purchase' ? Math.abs(qty) : kind === 'sale' ? -Math.abs(qty) : qty;
  const stock = Math.max(0, p.fields.stock + delta);
  const w = products.update(productId, { stock });
  client
    .collection<StockTx>('stock_transactions')
    .insert({ product_id: productId, product_name: p.fields.name, branch: p.fields.branch, kind, qty: stock - p.fields.stock, stock_after: stock, at: Date.now(), by, ...(note ? { note } : {}) })
    .catch(() => {});
  return w;
}

/** Moves an order to a stage and tells every other tab (and the customer) through a custom event. */
export function setOrderStage(client: SyncClient, id: string, to: OrderStage, by: string): PendingWrite | null {
  const o = client.collection<Order>('orders').get(id);
  if (!o) return null;
  const from = o.fields.stage;
  const w = client.collection<Order>('orders').update(id, { stage: to, updated_at: Date.now() });
  client
    .publish('order:stage_change', { order_id: id, number: o.fields.number, from, to, customer: o.fields.customer_name, by, tab: TAB_ID }, { collection: 'orders', id })
    .catch(() => {});
  return w;
}

export const nextStage = (s: OrderStage): OrderStage | null => ORDER_STAGES[ORDER_STAGES.indexOf(s) + 1] ?? null;

export function createBooking(client: SyncClient, b: Omit<Booking, 'created_at'>): PendingWrite {
  return client.collection<Booking>('bookings').insert({ ...b, created_at: Date.now() });
}

/** Human text for a refused write. */
export function explain(e: unknown): string {
  const code = (e as { code?: string })?.code;
  if (code === 'constraint') return 'Someone else already holds this slot: the server enforces one booking per hall, date and slot.';
  if (code === 'forbidden') return 'Your role may not make this change (server rule).';
  if (code === 'conflict') return 'Someone changed this in the meantime. Your change was rolled back.';
  if (code === 'closed') return 'The workspace was switched before the server answered; the change is still queued.';
  return (e as Error)?.message ?? 'The change was refused.';
}
