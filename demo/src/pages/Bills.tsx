// Layer: demo/pages. Bills: filtered live list (new and changed rows flash, deleted ones fade
// out), mark paid (once, with its ledger credit), and one drawer to create or edit a bill. Every
// business operation is one transaction (writes.ts): creating (bill, stock decrements and their
// records, ledger debit), editing (bill, stock moved by the difference, debit set to the new
// total), deleting (bill, stock returned, debit removed). Only unpaid bills can be edited or
// deleted: a paid bill's payment is on the customer's statement. The server enforces it
// (`if: status=eq.unpaid`), so an edit or delete racing *Mark paid* in another window resolves to
// one of them.
import { useCallback, useMemo, useState } from 'react';
import { useCollection, useDocument, useSyncClient } from 'syncline/react';
import type { Bill, Customer, LineItem, Product } from '../model';
import { BRANCHES, branchName, fmtDate, fmtMoney } from '../model';
import { Drawer } from '../ui/Drawer';
import { Empty, PageHeader, Pill } from '../ui/bits';
import { useFlash, useLeaving } from '../ui/useFlash';
import { useToast } from '../ui/Toasts';
import { useWorkspace } from '../workspace';
import { createBill, deleteBill, editBill, explain, markPaid, refusalKind } from '../writes';
import type { BillAction } from '../writes';

type Filter = 'all' | 'unpaid' | 'paid' | 'overdue';
const DAY = 86400000;

/** The toast for a refused bill operation (kind says which refusal, for tests and styling). */
function useRefusalToast() {
  const client = useSyncClient();
  const toast = useToast();
  return useCallback(
    (action: BillAction, number: string, e: unknown) => {
      const kind = refusalKind(e);
      const title =
        kind === 'already-paid'
          ? `${number} was already paid`
          : kind === 'bill-gone'
            ? `${number} was deleted`
            : action === 'pay'
              ? 'Payment not recorded'
              : action === 'edit'
                ? `Changes to ${number} not saved`
                : `${number} not deleted`;
      toast({ tone: kind === 'already-paid' || kind === 'bill-gone' || kind === 'bill-changed' ? 'warning' : 'danger', kind, title, body: explain(e, client, action) }, 9000);
    },
    [client, toast],
  );
}

export function Bills() {
  const client = useSyncClient();
  const refused = useRefusalToast();
  const [filter, setFilter] = useState<Filter>('all');
  const [q, setQ] = useState('');
  const [drawer, setDrawer] = useState<{ billId: string | null } | null>(() => (new URLSearchParams(location.search).has('new') ? { billId: null } : null));
  const closeDrawer = useCallback(() => setDrawer(null), []);
  const now = useMemo(() => Date.now(), [filter]);
  const where = filter === 'all' ? undefined : filter === 'overdue' ? `status=eq.unpaid,due_at=lt.${now}` : `status=eq.${filter}`;
  const { data, total } = useCollection<Bill>('bills', { where, orderBy: 'created_at.desc', limit: 300 });
  const flash = useFlash(data);
  const shown = useMemo(() => {
    const s = q.trim().toLowerCase();
    return s ? data.filter((b) => `${b.fields.number} ${b.fields.customer_name}`.toLowerCase().includes(s)) : data;
  }, [data, q]);
  const rows = useLeaving('bills', shown);
  // One transaction: the bill (only if still unpaid, with the total credited, at commit) and its
  // ledger credit. The window that loses a race (or reconnects after another paid it) is refused
  // whole and says why.
  const pay = (id: string) => {
    const number = client.collection<Bill>('bills').get(id)?.fields.number ?? 'The bill';
    markPaid(client, id)?.catch((e) => refused('pay', number, e));
  };
  return (
    <>
      <PageHeader
        title="Bills"
        subtitle={`${total} ${filter === 'all' ? '' : filter + ' '}bills · updates live`}
        actions={
          <button className="btn" onClick={() => setDrawer({ billId: null })} data-testid="new-bill">
            + New bill
          </button>
        }
      />
      <div className="toolbar bills-toolbar">
        <div className="segmented" role="group" aria-label="Filter by status">
          {(['all', 'unpaid', 'overdue', 'paid'] as Filter[]).map((f) => (
            <button key={f} className={filter === f ? 'on' : ''} aria-pressed={filter === f} onClick={() => setFilter(f)}>
              {f[0].toUpperCase() + f.slice(1)}
            </button>
          ))}
        </div>
        <label className="search">
          <span className="visually-hidden">Search bills</span>
          <input type="search" placeholder="Search number or customer" value={q} onChange={(e) => setQ(e.target.value)} />
        </label>
      </div>
      <div className="card table-card">
        {rows.length === 0 ? (
          <Empty>No bills match.</Empty>
        ) : (
          <div className="table-wrap">
            <table className="table bills-table" data-testid="bills-table">
              <thead>
                <tr>
                  <th scope="col">Bill</th>
                  <th scope="col">Customer</th>
                  <th scope="col" className="hide-md">
                    Branch
                  </th>
                  <th scope="col" className="hide-md">
                    Items
                  </th>
                  <th scope="col">Due</th>
                  <th scope="col" className="num-col">
                    Total
                  </th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map(({ doc: b, leaving }) => {
                  const overdue = b.fields.status === 'unpaid' && b.fields.due_at < Date.now();
                  const items = b.fields.items?.map((i) => `${i.qty}× ${i.name}`).join(', ');
                  return (
                    <tr key={b.id} data-id={b.id} className={`${leaving ? 'row-leaving' : flash(b.id)}${b.pending ? ' pending' : ''}`} aria-hidden={leaving || undefined}>
                      <td className="mono nowrap c-num">{b.fields.number}</td>
                      <td className="c-cust">
                        {b.fields.customer_name}
                        <span className="show-md muted small bill-items-inline">{items}</span>
                      </td>
                      <td className="hide-md">{branchName(b.fields.branch)}</td>
                      <td className="hide-md muted">{items}</td>
                      <td className="nowrap c-due">
                        <span className="show-sm muted">Due </span>
                        {fmtDate(b.fields.due_at)}
                      </td>
                      <td className="num-col c-total" data-testid="bill-total">
                        {fmtMoney(b.fields.total)}
                      </td>
                      <td className="nowrap c-status">
                        {b.fields.status === 'paid' ? <Pill tone="good">paid</Pill> : overdue ? <Pill tone="bad">overdue</Pill> : <Pill tone="warn">unpaid</Pill>}
                        {b.pending && <span className="saving">saving…</span>}
                      </td>
                      <td className="actions-col c-act">
                        {b.fields.status !== 'paid' && !leaving && (
                          <>
                            <button className="btn btn-sm btn-ghost" onClick={() => pay(b.id)} aria-label={`Mark ${b.fields.number} paid`}>
                              Mark paid
                            </button>
                            <button className="btn btn-sm btn-ghost" onClick={() => setDrawer({ billId: b.id })} aria-label={`Edit ${b.fields.number}`} data-testid="edit-bill">
                              Edit
                            </button>
                          </>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </div>
      {drawer && <BillDrawer billId={drawer.billId} onClose={closeDrawer} />}
    </>
  );
}

/** Creates a bill (`billId` null) or edits an unpaid one. */
function BillDrawer({ billId, onClose }: { billId: string | null; onClose: () => void }) {
  const client = useSyncClient();
  const toast = useToast();
  const refused = useRefusalToast();
  const { branch: wsBranch, session } = useWorkspace();
  const editing = useDocument<Bill>('bills', billId);
  // The bill as it was when the drawer opened: the form edits that, the transaction's condition
  // says the server must still hold an unpaid bill at that revision.
  const [original] = useState(() => (billId ? client.collection<Bill>('bills').get(billId)?.fields ?? null : null));
  const { data: customers } = useCollection<Customer>('customers', { orderBy: 'name' });
  const [customerId, setCustomerId] = useState(original?.customer_id ?? '');
  const [branch, setBranch] = useState(original?.branch ?? (wsBranch === 'all' ? 'north' : wsBranch));
  const { data: products } = useCollection<Product>('products', { where: `branch=eq.${branch}`, orderBy: 'name' });
  const [lines, setLines] = useState<{ product_id: string; qty: number }[]>(() =>
    original ? original.items.map((i) => ({ product_id: i.product_id, qty: i.qty })) : [{ product_id: '', qty: 1 }],
  );
  const [due, setDue] = useState(() => isoDate(original?.due_at ?? Date.now() + 14 * DAY));
  const [error, setError] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  // What this bill already holds of each product (an edit only takes the difference from stock).
  const held = useMemo(() => {
    const m = new Map<string, number>();
    for (const i of original?.items ?? []) m.set(i.product_id, (m.get(i.product_id) ?? 0) + i.qty);
    return m;
  }, [original]);
  const items: LineItem[] = lines
    .map((l) => {
      const p = products.find((x) => x.id === l.product_id);
      const was = original?.items.find((i) => i.product_id === l.product_id);
      // A line the bill already had keeps the price it was billed at.
      if (was) return { product_id: was.product_id, name: was.name, qty: l.qty, price: was.price };
      return p ? { product_id: p.id, name: p.fields.name, qty: l.qty, price: p.fields.price } : null;
    })
    .filter((x): x is LineItem => x !== null);
  const total = items.reduce((s, i) => s + i.qty * i.price, 0);
  const gone = billId !== null && (editing === null || editing.fields.status === 'paid');
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (gone) return;
    const c = customers.find((x) => x.id === customerId);
    if (!c) return setError('Choose a customer.');
    if (!items.length) return setError('Add at least one product.');
    const want = new Map<string, number>();
    for (const it of items) want.set(it.product_id, (want.get(it.product_id) ?? 0) + it.qty);
    for (const [pid, qty] of want) {
      const p = products.find((x) => x.id === pid);
      const available = (p?.fields.stock ?? 0) + (held.get(pid) ?? 0);
      if (p && qty > available) return setError(`Only ${available} × ${p.fields.name} available.`);
    }
    if (billId && original) {
      // An unchanged date keeps the bill's due time; a new one is due at noon that day.
      const dueAt = due === isoDate(original.due_at) ? original.due_at : new Date(`${due}T12:00:00`).getTime();
      const w = editBill(client, billId, { items, due_at: Number.isFinite(dueAt) ? dueAt : original.due_at }, session.sub);
      w?.then(
        () => toast({ tone: 'success', kind: 'bill-edited', title: `${original.number} saved on the server`, body: `${c.fields.name} · ${fmtMoney(total)}` }, 3500),
        (err) => refused('edit', original.number, err),
      );
    } else {
      const w = createBill(client, { customer_id: c.id, customer_name: c.fields.name, branch, items }, session.sub);
      w.then(
        () => toast({ tone: 'success', title: 'Bill saved on the server', body: `${c.fields.name} · ${fmtMoney(total)}` }, 3500),
        (err) => toast({ tone: 'danger', kind: refusalKind(err), title: 'Bill refused', body: explain(err, client) }, 9000),
      );
    }
    onClose();
  };
  const remove = () => {
    if (!billId || !original || gone) return;
    deleteBill(client, billId, session.sub)?.then(
      () => toast({ tone: 'success', kind: 'bill-deleted-ok', title: `${original.number} deleted`, body: 'Stock returned, ledger debit removed.' }, 3500),
      (err) => refused('delete', original.number, err),
    );
    onClose();
  };
  return (
    <Drawer title={original ? `Edit ${original.number}` : 'New bill'} onClose={onClose} wide>
      <form onSubmit={submit} className="form" data-testid="bill-form">
        {gone && (
          <p className="form-error" role="alert" data-testid="bill-gone">
            {editing === null ? 'This bill was deleted in the meantime.' : 'This bill has been paid in the meantime; a paid bill can no longer be edited or deleted.'}
          </p>
        )}
        <div className="field-row">
          <label className="field">
            <span>Customer</span>
            <select value={customerId} onChange={(e) => setCustomerId(e.target.value)} name="customer" required disabled={!!original}>
              <option value="">Choose…</option>
              {customers.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.fields.name} · {c.fields.company}
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            <span>Branch</span>
            <select
              value={branch}
              name="branch"
              disabled={wsBranch !== 'all' || !!original}
              onChange={(e) => {
                setBranch(e.target.value);
                setLines([{ product_id: '', qty: 1 }]);
              }}
            >
              {BRANCHES.map((b) => (
                <option key={b.id} value={b.id}>
                  {b.name}
                </option>
              ))}
            </select>
          </label>
        </div>
        <fieldset className="lines">
          <legend>Line items</legend>
          {lines.map((l, i) => {
            const p = products.find((x) => x.id === l.product_id);
            const price = original?.items.find((x) => x.product_id === l.product_id)?.price ?? p?.fields.price;
            return (
              <div className="line" key={i}>
                <label className="field grow">
                  <span className="visually-hidden">Product {i + 1}</span>
                  <select
                    value={l.product_id}
                    name={`product-${i}`}
                    onChange={(e) => setLines(lines.map((x, j) => (j === i ? { ...x, product_id: e.target.value } : x)))}
                  >
                    <option value="">Choose a product…</option>
                    {products.map((p) => (
                      <option key={p.id} value={p.id} disabled={p.fields.stock + (held.get(p.id) ?? 0) <= 0}>
                        {p.fields.name} — {fmtMoney(p.fields.price)} ({p.fields.stock} in stock)
                      </option>
                    ))}
                  </select>
                </label>
                <label className="field qty">
                  <span className="visually-hidden">Quantity {i + 1}</span>
                  <input
                    type="number"
                    min={1}
                    max={p ? p.fields.stock + (held.get(p.id) ?? 0) : 999}
                    value={l.qty}
                    name={`qty-${i}`}
                    onChange={(e) => setLines(lines.map((x, j) => (j === i ? { ...x, qty: Math.max(1, Number(e.target.value) || 1) } : x)))}
                  />
                </label>
                <span className="line-total">{price !== undefined ? fmtMoney(price * l.qty) : '—'}</span>
                <button type="button" className="icon-btn" aria-label={`Remove line ${i + 1}`} onClick={() => setLines(lines.filter((_, j) => j !== i))} disabled={lines.length === 1}>
                  ×
                </button>
              </div>
            );
          })}
          <button type="button" className="btn btn-ghost btn-sm" onClick={() => setLines([...lines, { product_id: '', qty: 1 }])}>
            + Add line
          </button>
        </fieldset>
        {original && (
          <label className="field">
            <span>Due date</span>
            <input type="date" name="due" value={due} onChange={(e) => setDue(e.target.value)} required />
          </label>
        )}
        <div className="form-total">
          <span>Total</span>
          <strong>{fmtMoney(total)}</strong>
        </div>
        <p className="muted small">
          {original
            ? 'Saving writes the bill, moves stock by the difference of each line (returned or taken), and sets the ledger debit to the new total, in one transaction: if the bill was paid or changed elsewhere meanwhile, or the stock cannot cover more, none of it is recorded.'
            : 'Saving writes the bill, the stock decrements, the stock transactions and a ledger debit in one transaction: if the stock cannot cover a line when the server commits it, none of it is recorded.'}
        </p>
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <div className="form-actions">
          {original && !confirmDelete && (
            <button type="button" className="btn btn-ghost btn-danger-text form-actions-start" onClick={() => setConfirmDelete(true)} disabled={gone} data-testid="delete-bill">
              Delete bill
            </button>
          )}
          <button type="button" className="btn btn-ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn" data-testid="save-bill" disabled={gone}>
            {original ? 'Save changes' : 'Create bill'}
          </button>
        </div>
        {original && confirmDelete && (
          <div className="confirm-box" role="group" aria-label="Confirm deletion">
            <p>
              Delete <strong>{original.number}</strong> ({fmtMoney(original.total)}, {original.customer_name})? Its stock goes back to {branchName(original.branch)} and its debit leaves the customer's statement.
            </p>
            <div className="form-actions">
              <button type="button" className="btn btn-ghost" onClick={() => setConfirmDelete(false)}>
                Keep it
              </button>
              <button type="button" className="btn btn-danger" onClick={remove} disabled={gone} data-testid="confirm-delete">
                Delete {original.number}
              </button>
            </div>
          </div>
        )}
      </form>
    </Drawer>
  );
}

function isoDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}
