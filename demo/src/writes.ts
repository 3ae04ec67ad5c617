// Layer: demo. The app's business writes, made with the runtime's atomic-write tools
// (docs/api.md, "Modelling money and stock"):
// - stock only moves by `increment(±qty, { min: 0 })`, applied by the server to the value it has
//   at commit, so concurrent sales all count and stock never goes below 0 (a sale the stock
//   cannot cover is refused with `constraint`);
// - a business operation is one `client.transaction`: the bill, its stock moves and its ledger
//   debit; a stock move and its record; a payment and its credit. The server applies all of it or
//   none, so history never lists a sale the stock did not take and no credit exists without its
//   payment;
// - a state change that must happen once (paid, cancelled, the next order stage) carries an `if`
//   on the state it leaves, so a second window (online at the same instant, or offline and
//   reconnecting later) is refused with `conflict` instead of doing it twice.
// Nothing is checked on the client first: the server's verdict decides, and explain() says why.
import { increment, serverTime } from 'syncline';
import type { PendingTransaction, PendingWrite, SyncClient, Transaction } from 'syncline';
import type { Bill, Booking, Lead, LeadStage, LedgerEntry, LineItem, Order, OrderStage, Product, StockTx } from './model';
import { billNumber, HALLS, LEAD_STAGE_LABEL, ORDER_STAGES, SLOTS } from './model';
import { TAB_ID } from './session';

const DAY = 86400000;

export interface NewBill {
  customer_id: string;
  customer_name: string;
  branch: string;
  items: LineItem[];
  dueDays?: number;
}

/**
 * Queues one stock movement in a transaction: its record first, then the product's increment.
 * The record carries no "stock after": the server decides the resulting stock at commit, and
 * stock.ts derives each movement's stock-after from committed data (why, and why this order, is
 * explained there).
 */
function moveStock(tx: Transaction, p: { id: string; name: string; branch: string }, kind: StockTx['kind'], delta: number, by: string, extra: Partial<StockTx> = {}): string {
  const rec = tx.collection<StockTx>('stock_transactions').insert({
    product_id: p.id,
    product_name: p.name,
    // The product's branch, so a branch's replica holds every movement of its products.
    branch: p.branch,
    kind,
    qty: delta,
    at: serverTime(),
    by,
    ...extra,
  });
  tx.collection<Product>('products').update(p.id, { stock: increment(delta, { min: 0 }) });
  return rec.id;
}

/** Inserts the bill, takes each line's quantity from stock (with its stock record) and debits
 * the customer's ledger, all in one transaction: a line the stock cannot cover refuses the whole
 * bill (`constraint` naming the product), and nothing of it is recorded. */
export function createBill(client: SyncClient, bill: NewBill, by: string): PendingTransaction & { billId: string } {
  const now = Date.now();
  const total = bill.items.reduce((s, it) => s + it.qty * it.price, 0);
  const number = billNumber();
  const products = client.collection<Product>('products');
  let billId = '';
  const t = client.transaction((tx) => {
    billId = tx.collection<Bill>('bills').insert({
      number,
      customer_id: bill.customer_id,
      customer_name: bill.customer_name,
      branch: bill.branch,
      items: bill.items,
      total,
      status: 'unpaid',
      created_at: now,
      due_at: now + (bill.dueDays ?? 14) * DAY,
    }).id;
    for (const it of bill.items) {
      const p = products.get(it.product_id);
      moveStock(tx, { id: it.product_id, name: it.name, branch: p?.fields.branch ?? bill.branch }, 'sale', -it.qty, by, { bill_id: billId });
    }
    tx.collection<LedgerEntry>('ledger_entries').insert({
      customer_id: bill.customer_id,
      customer_name: bill.customer_name,
      kind: 'debit',
      amount: total,
      memo: `Bill ${number}`,
      bill_id: billId,
      at: now,
    });
  });
  return Object.assign(t, { billId });
}

/** Marks a bill paid and credits the customer, once: the bill's update is conditional on it
 * still being unpaid, with the total this window credits, when the server commits; the credit is
 * in the same transaction. A second *Mark paid* (another window, now or after reconnecting) is
 * refused whole with `conflict` (its `current` shows the bill as paid) and credits nothing; so is
 * a payment racing an edit that changed the total (the credit would not match the bill) or a
 * delete (`current` is null). */
export function markPaid(client: SyncClient, id: string): PendingTransaction | null {
  const b = client.collection<Bill>('bills').get(id);
  if (!b || b.fields.status === 'paid') return null;
  return client.transaction((tx) => {
    tx.collection<Bill>('bills').update(id, { status: 'paid', paid_at: serverTime() }, { if: `status=eq.unpaid,total=eq.${b.fields.total}` });
    tx.collection<LedgerEntry>('ledger_entries').insert({
      customer_id: b.fields.customer_id,
      customer_name: b.fields.customer_name,
      kind: 'credit',
      amount: b.fields.total,
      memo: `Payment for ${b.fields.number}`,
      bill_id: id,
      at: serverTime(),
    });
  });
}

/** A bill as the edit and delete flows read it: `rev` counts the edits the server applied. */
type RevisedBill = Bill & { rev?: number };

/** The condition an edit or a delete carries: the bill is still unpaid, and still the revision
 * this window computed its stock and ledger changes from. Another window's edit committed first
 * (or a payment) refuses it whole with `conflict`; edits queued in one window offline apply in
 * order, each on the revision the previous one wrote. */
function unchanged(b: RevisedBill): string {
  return `status=eq.unpaid,${typeof b.rev === 'number' ? `rev=eq.${b.rev}` : 'rev=is.null'}`;
}

/** Quantity per product of a bill's items. */
function qtyByProduct(items: readonly LineItem[]): Map<string, LineItem & { qty: number }> {
  const m = new Map<string, LineItem & { qty: number }>();
  for (const it of items) {
    const had = m.get(it.product_id);
    m.set(it.product_id, { ...it, qty: (had?.qty ?? 0) + it.qty });
  }
  return m;
}

export interface BillEdit {
  items: LineItem[];
  due_at: number;
}

/**
 * Edits an unpaid bill (its line items, hence its total, and its due date) in one transaction:
 * the bill (if still unpaid and unedited since this window read it), a stock movement per product
 * whose quantity changed (`increment(±difference, { min: 0 })` with its record, so taking more
 * than the stock holds refuses the whole edit), and the customer's ledger debit for the bill set
 * to the new total. All of it or none of it.
 */
export function editBill(client: SyncClient, id: string, edit: BillEdit, by: string): PendingTransaction | null {
  const b = client.collection<RevisedBill>('bills').get(id);
  if (!b || b.fields.status === 'paid') return null;
  const bill = b.fields;
  const total = edit.items.reduce((s, it) => s + it.qty * it.price, 0);
  const before = qtyByProduct(bill.items ?? []);
  const after = qtyByProduct(edit.items);
  const products = client.collection<Product>('products');
  const debits = client.collection<LedgerEntry>('ledger_entries').all().filter((e) => e.fields.bill_id === id && e.fields.kind === 'debit');
  return client.transaction((tx) => {
    tx.collection<RevisedBill>('bills').update(id, { items: edit.items, total, due_at: edit.due_at, rev: (bill.rev ?? 0) + 1 }, { if: unchanged(bill) });
    for (const pid of new Set([...before.keys(), ...after.keys()])) {
      const delta = (before.get(pid)?.qty ?? 0) - (after.get(pid)?.qty ?? 0); // + returns stock, − takes it
      if (delta === 0) continue;
      const it = (after.get(pid) ?? before.get(pid))!;
      const p = products.get(pid);
      moveStock(tx, { id: pid, name: it.name, branch: p?.fields.branch ?? bill.branch }, 'sale', delta, by, {
        bill_id: id,
        note: `${bill.number} edited: ${delta > 0 ? `${delta} returned` : `${-delta} more`}`,
      });
    }
    // The bill's debit follows its total. A bill recorded without one (older data) gets it now.
    if (debits.length) {
      if (total !== bill.total) tx.collection<LedgerEntry>('ledger_entries').update(debits[0].id, { amount: total });
    } else {
      tx.collection<LedgerEntry>('ledger_entries').insert({
        customer_id: bill.customer_id, customer_name: bill.customer_name, kind: 'debit', amount: total, memo: `Bill ${bill.number}`, bill_id: id, at: bill.created_at,
      });
    }
  });
}

/**
 * Deletes an unpaid bill in one transaction: the bill (if still unpaid and unedited since this
 * window read it), its stock returned (a movement per product with its record) and its ledger
 * debit removed, so the customer's statement no longer lists it. A paid bill cannot be deleted:
 * its payment is on the customer's statement. A delete racing *Mark paid* resolves to one of them:
 * whichever the server commits first, the other is refused whole.
 */
export function deleteBill(client: SyncClient, id: string, by: string): PendingTransaction | null {
  const b = client.collection<RevisedBill>('bills').get(id);
  if (!b || b.fields.status === 'paid') return null;
  const bill = b.fields;
  const products = client.collection<Product>('products');
  const debits = client.collection<LedgerEntry>('ledger_entries').all().filter((e) => e.fields.bill_id === id && e.fields.kind === 'debit');
  return client.transaction((tx) => {
    tx.collection<RevisedBill>('bills').delete(id, { if: unchanged(bill) });
    for (const [pid, it] of qtyByProduct(bill.items ?? [])) {
      const p = products.get(pid);
      moveStock(tx, { id: pid, name: it.name, branch: p?.fields.branch ?? bill.branch }, 'sale', it.qty, by, { bill_id: id, note: `${bill.number} deleted: ${it.qty} returned` });
    }
    for (const d of debits) tx.collection<LedgerEntry>('ledger_entries').delete(d.id);
  });
}

export interface Movement {
  /** The movement record's id (its committed stock-after: stock.ts). */
  moveId: string;
  done: PendingTransaction;
}

/** A purchase (+), sale (−) or adjustment (±) of one product, with its record, in one
 * transaction. A sale or removal the stock cannot cover is refused with `constraint`. */
export function recordMovement(client: SyncClient, productId: string, kind: StockTx['kind'], qty: number, by: string, note?: string): Movement | null {
  const p = client.collection<Product>('products').get(productId);
  if (!p) return null;
  const delta = kind === 'purchase' ? Math.abs(qty) : kind === 'sale' ? -Math.abs(qty) : qty;
  if (!Number.isFinite(delta) || delta === 0) return null;
  let moveId = '';
  const done = client.transaction((tx) => {
    moveId = moveStock(tx, { id: productId, name: p.fields.name, branch: p.fields.branch }, kind, delta, by, note ? { note } : {});
  });
  return { moveId, done };
}

/** Moves an order to the next stage, once: conditional on the stage it leaves, so two windows
 * advancing the same order do not both move it. The stage-change event is published when the
 * server applied the move (an event for a refused move would announce something that did not
 * happen); other tabs and the customer turn it into a notification. */
export function setOrderStage(client: SyncClient, id: string, to: OrderStage, by: string): PendingWrite | null {
  const o = client.collection<Order>('orders').get(id);
  if (!o) return null;
  const from = o.fields.stage;
  const w = client.collection<Order>('orders').update(id, { stage: to, updated_at: serverTime() }, { if: `stage=eq.${from}` });
  w.then(
    () => client.publish('order:stage_change', { order_id: id, number: o.fields.number, from, to, customer: o.fields.customer_name, by, tab: TAB_ID }, { collection: 'orders', id }),
    () => undefined,
  ).catch(() => {});
  return w;
}

export const nextStage = (s: OrderStage): OrderStage | null => ORDER_STAGES[ORDER_STAGES.indexOf(s) + 1] ?? null;

/** Bookings this tab created or cancelled: the calendar announces only cancellations made
 * elsewhere (a refused insert of ours also disappears, and is not a cancellation). */
export const ownBookingWrites = new Set<string>();

/** A booking: the server's unique constraint on (hall, date, slot) is the guard. */
export function createBooking(client: SyncClient, b: Omit<Booking, 'created_at'>): PendingWrite {
  const w = client.collection<Booking>('bookings').insert({ ...b, created_at: serverTime() });
  ownBookingWrites.add(w.id);
  return w;
}

/** Cancels a booking (frees its slot for anyone), once. The delete is conditional: on the server's
 * copy at commit, the booking must still exist and still be this customer's. A second cancel (a
 * double click, another window, a replay after reconnecting) is refused with `conflict` (its
 * `current` is null: already gone) and changes nothing. */
export function cancelBooking(client: SyncClient, id: string): PendingWrite | null {
  const b = client.collection<Booking>('bookings').get(id);
  if (!b) return null;
  ownBookingWrites.add(id);
  return client.collection<Booking>('bookings').delete(id, { if: `customer_id=eq.${b.fields.customer_id}` });
}

/** Where a booking is, in words: "Main Hall, Tue 3 Jun, evening". */
export function bookingLabel(b: Pick<Booking, 'hall' | 'date' | 'slot'>): string {
  const hall = HALLS.find((h) => h.id === b.hall)?.name ?? b.hall;
  const day = new Date(b.date + 'T12:00').toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' });
  return `${hall}, ${day}, ${(SLOTS[b.slot] ?? `slot ${b.slot}`).toLowerCase()}`;
}

export type NewLead = Omit<Lead, 'stage' | 'created_at' | 'updated_at'>;

export function createLead(client: SyncClient, lead: NewLead): PendingWrite {
  const now = Date.now();
  return client.collection<Lead>('leads').insert({ ...lead, stage: 'new', created_at: now, updated_at: now });
}

/** Moves a lead to another stage, once: conditional on the stage it leaves (what this window
 * saw), so of two windows moving the same lead from the same stage the server applies one and
 * refuses the other with `conflict` (its `current` shows where the lead is now). Lost needs a
 * reason. The move names who made it and from which tab, so other tabs can announce it. */
export function moveLead(client: SyncClient, id: string, to: LeadStage, by: string, opts: { reason?: string } = {}): PendingWrite | null {
  const l = client.collection<Lead>('leads').get(id);
  if (!l || l.fields.stage === to) return null;
  if (to === 'lost' && !opts.reason?.trim()) throw new Error('A lost lead needs a reason.');
  const patch: Partial<Record<keyof Lead, unknown>> = { stage: to, updated_at: serverTime(), moved_by: by, moved_tab: TAB_ID };
  if (to === 'lost') patch.lost_reason = opts.reason!.trim();
  else if (l.fields.lost_reason) patch.lost_reason = null;
  return client.collection<Lead>('leads').update(id, patch as Partial<Lead>, { if: `stage=eq.${l.fields.stage}` });
}

/** Converts a quoted (or won, not yet booked) lead into a booking, in one transaction: the
 * booking (the server's unique constraint on hall, date and slot guards it) and the lead's move to
 * won with the booking's id, conditional on the lead still being where this window saw it and not
 * booked yet. A taken slot refuses both (the lead stays in its stage); a lead moved meanwhile in
 * another window refuses both too (no booking without its lead). */
export function convertLead(
  client: SyncClient,
  id: string,
  at: { hall: string; date: string; slot: number; title: string },
  by: string,
): (PendingTransaction & { bookingId: string }) | null {
  const l = client.collection<Lead>('leads').get(id);
  const hall = HALLS.find((h) => h.id === at.hall);
  if (!l || !hall) return null;
  let bookingId = '';
  const t = client.transaction((tx) => {
    bookingId = tx.collection<Booking>('bookings').insert({
      hall: hall.id,
      branch: hall.branch,
      date: at.date,
      slot: at.slot,
      // A prospect is not a customer (yet): the booking names the lead, or its customer if known.
      customer_id: l.fields.customer_id ?? `lead:${id}`,
      customer_name: l.fields.name,
      title: at.title || l.fields.interest,
      lead_id: id,
      created_at: serverTime(),
    }).id;
    tx.collection<Lead>('leads').update(
      id,
      { stage: 'won', booking_id: bookingId, hall: hall.id, updated_at: serverTime(), moved_by: by, moved_tab: TAB_ID, lost_reason: null } as unknown as Partial<Lead>,
      { if: `stage=eq.${l.fields.stage},booking_id=is.null` },
    );
  });
  ownBookingWrites.add(bookingId);
  return Object.assign(t, { bookingId });
}

interface RefusalInfo {
  code?: string;
  message?: string;
  collection?: string;
  id?: string;
  current?: { fields: Record<string, unknown> } | null;
}

const time = (ms: unknown) => (typeof ms === 'number' ? new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' }) : '');

/** What kind of refusal this is, for toasts (data-kind) and tests. */
export function refusalKind(e: unknown): 'out-of-stock' | 'already-paid' | 'bill-gone' | 'bill-changed' | 'already-cancelled' | 'already-moved' | 'slot-taken' | 'conflict' | 'refused' {
  const r = (e ?? {}) as RefusalInfo;
  if (r.code === 'constraint' && r.collection === 'products') return 'out-of-stock';
  if (r.code === 'constraint') return 'slot-taken';
  if (r.code === 'conflict' && r.collection === 'bills' && r.current?.fields.status === 'paid') return 'already-paid';
  if (r.code === 'conflict' && r.collection === 'bills' && r.current === null) return 'bill-gone';
  if (r.code === 'conflict' && r.collection === 'bills' && r.current) return 'bill-changed';
  if (r.code === 'conflict' && r.collection === 'bookings' && r.current === null) return 'already-cancelled';
  if (r.code === 'conflict' && r.collection === 'leads') return 'already-moved';
  if (r.code === 'conflict') return 'conflict';
  return 'refused';
}

/** What the refused write was meant to do to a bill, for explain(). */
export type BillAction = 'pay' | 'edit' | 'delete';

/** Human text for a refused write or transaction (SyncError names the failed member). */
export function explain(e: unknown, client?: SyncClient, action: BillAction = 'pay'): string {
  const r = (e ?? {}) as RefusalInfo;
  const cur = r.current;
  if (r.code === 'constraint' && r.collection === 'products') {
    const p = client && r.id ? client.collection<Product>('products').get(r.id) : null;
    const name = p?.fields.name ?? 'this product';
    const left = p ? ` (${p.fields.stock} left)` : '';
    return `Not enough ${name} in stock${left}: the server refuses to take stock below 0, so nothing of this was recorded.`;
  }
  if (r.code === 'constraint') return 'Someone else already holds this slot: the server enforces one booking per hall, date and slot.';
  if (r.code === 'forbidden') return 'Your role may not make this change (server rule).';
  if (r.code === 'conflict' && r.collection === 'bills') {
    const nothing = action === 'pay' ? 'No payment was recorded' : action === 'edit' ? 'Your changes were not saved (stock and ledger untouched)' : 'Nothing was deleted';
    if (cur === null) return `This bill was deleted in the meantime. ${nothing}.`;
    if (cur?.fields.status === 'paid') {
      const at = time(cur.fields.paid_at);
      const when = `This bill was already paid${at ? ` (recorded at ${at})` : ''}, in another window or by someone else.`;
      if (action === 'pay') return `${when} Your payment was not recorded, so the customer is credited once.`;
      return `${when} A paid bill can no longer be ${action === 'edit' ? 'edited' : 'deleted'}. ${nothing}.`;
    }
    if (cur) {
      const total = typeof cur.fields.total === 'number' ? ` (its total is now ${new Intl.NumberFormat('en-GB', { style: 'currency', currency: 'EUR' }).format(cur.fields.total / 100)})` : '';
      return `This bill was changed in another window${total}. ${nothing}; check it and try again.`;
    }
  }
  if (r.code === 'conflict' && r.collection === 'bookings' && cur === null) return 'This booking was already cancelled; nothing changed.';
  if (r.code === 'conflict' && r.collection === 'leads') {
    if (cur === null) return 'This lead no longer exists.';
    const st = String(cur?.fields.stage ?? '');
    const label = LEAD_STAGE_LABEL[st as LeadStage] ?? st;
    if (cur?.fields.booking_id) return `Already moved: this lead is already won and booked (${label}). Your change was rolled back.`;
    return `Already moved: someone moved this lead first, it is now ${label}${cur?.fields.moved_by ? ` (by ${String(cur.fields.moved_by)})` : ''}. Your change was rolled back.`;
  }
  if (r.code === 'conflict' && r.collection === 'orders' && cur) return `Someone else moved this order first: it is now ${String(cur.fields.stage)}. Your change was rolled back.`;
  if (r.code === 'conflict') return 'Someone changed this in the meantime. Your change was rolled back.';
  if (r.code === 'closed') return 'The workspace was switched before the server answered; the change is still queued.';
  return r.message ?? 'The change was refused.';
}
