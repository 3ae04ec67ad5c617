// Layer: demo/pages. Bills: filtered live list (new and changed rows flash), mark paid (once, with
// its ledger credit), and a new-bill form whose writes (bill, stock decrements, stock records,
// ledger debit) are one transaction: applied together or refused together.
import { useMemo, useState } from 'react';
import { useCollection, useSyncClient } from 'syncline/react';
import type { Bill, Customer, LineItem, Product } from '../model';
import { BRANCHES, branchName, fmtDate, fmtMoney } from '../model';
import { Drawer } from '../ui/Drawer';
import { Empty, PageHeader, Pill } from '../ui/bits';
import { useFlash } from '../ui/useFlash';
import { useToast } from '../ui/Toasts';
import { useWorkspace } from '../workspace';
import { createBill, explain, markPaid, refusalKind } from '../writes';

type Filter = 'all' | 'unpaid' | 'paid' | 'overdue';

export function Bills() {
  const client = useSyncClient();
  const toast = useToast();
  const [filter, setFilter] = useState<Filter>('all');
  const [q, setQ] = useState('');
  const [creating, setCreating] = useState(() => new URLSearchParams(location.search).has('new'));
  const now = useMemo(() => Date.now(), [filter]);
  const where = filter === 'all' ? undefined : filter === 'overdue' ? `status=eq.unpaid,due_at=lt.${now}` : `status=eq.${filter}`;
  const { data, total } = useCollection<Bill>('bills', { where, orderBy: 'created_at.desc', limit: 300 });
  const flash = useFlash(data);
  const shown = useMemo(() => {
    const s = q.trim().toLowerCase();
    return s ? data.filter((b) => `${b.fields.number} ${b.fields.customer_name}`.toLowerCase().includes(s)) : data;
  }, [data, q]);
  // One transaction: the bill (only if still unpaid at commit) and its ledger credit. The window
  // that loses a race (or reconnects after another paid it) is refused whole and says why.
  const pay = (id: string) => {
    const number = client.collection<Bill>('bills').get(id)?.fields.number ?? 'The bill';
    markPaid(client, id)?.then(
      () => {},
      (e) => {
        const kind = refusalKind(e);
        toast({ tone: kind === 'already-paid' ? 'warning' : 'danger', kind, title: kind === 'already-paid' ? `${number} was already paid` : 'Payment not recorded', body: explain(e, client) }, 9000);
      },
    );
  };
  return (
    <>
      <PageHeader
        title="Bills"
        subtitle={`${total} ${filter === 'all' ? '' : filter + ' '}bills · updates live`}
        actions={
          <button className="btn" onClick={() => setCreating(true)} data-testid="new-bill">
            + New bill
          </button>
        }
      />
      <div className="toolbar">
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
        {shown.length === 0 ? (
          <Empty>No bills match.</Empty>
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="bills-table">
              <thead>
                <tr>
                  <th scope="col">Bill</th>
                  <th scope="col">Customer</th>
                  <th scope="col" className="hide-sm">
                    Branch
                  </th>
                  <th scope="col" className="hide-sm">
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
                {shown.map((b) => {
                  const overdue = b.fields.status === 'unpaid' && b.fields.due_at < Date.now();
                  return (
                    <tr key={b.id} data-id={b.id} className={`${flash(b.id)}${b.pending ? ' pending' : ''}`}>
                      <td className="mono">{b.fields.number}</td>
                      <td>{b.fields.customer_name}</td>
                      <td className="hide-sm">{branchName(b.fields.branch)}</td>
                      <td className="hide-sm muted">{b.fields.items?.map((i) => `${i.qty}× ${i.name}`).join(', ')}</td>
                      <td>{fmtDate(b.fields.due_at)}</td>
                      <td className="num-col">{fmtMoney(b.fields.total)}</td>
                      <td>
                        {b.fields.status === 'paid' ? <Pill tone="good">paid</Pill> : overdue ? <Pill tone="bad">overdue</Pill> : <Pill tone="warn">unpaid</Pill>}
                        {b.pending && <span className="saving">saving…</span>}
                      </td>
                      <td className="actions-col">
                        {b.fields.status !== 'paid' && (
                          <button className="btn btn-sm btn-ghost" onClick={() => pay(b.id)} aria-label={`Mark ${b.fields.number} paid`}>
                            Mark paid
                          </button>
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
      {creating && <NewBillDrawer onClose={() => setCreating(false)} />}
    </>
  );
}

function NewBillDrawer({ onClose }: { onClose: () => void }) {
  const client = useSyncClient();
  const toast = useToast();
  const { branch: wsBranch, session } = useWorkspace();
  const { data: customers } = useCollection<Customer>('customers', { orderBy: 'name' });
  const [customerId, setCustomerId] = useState('');
  const [branch, setBranch] = useState(wsBranch === 'all' ? 'north' : wsBranch);
  const { data: products } = useCollection<Product>('products', { where: `branch=eq.${branch}`, orderBy: 'name' });
  const [lines, setLines] = useState<{ product_id: string; qty: number }[]>([{ product_id: '', qty: 1 }]);
  const [error, setError] = useState<string | null>(null);
  const items: LineItem[] = lines
    .map((l) => {
      const p = products.find((x) => x.id === l.product_id);
      return p ? { product_id: p.id, name: p.fields.name, qty: l.qty, price: p.fields.price } : null;
    })
    .filter((x): x is LineItem => x !== null);
  const total = items.reduce((s, i) => s + i.qty * i.price, 0);
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const c = customers.find((x) => x.id === customerId);
    if (!c) return setError('Choose a customer.');
    if (!items.length) return setError('Add at least one product.');
    for (const it of items) {
      const p = products.find((x) => x.id === it.product_id)!;
      if (it.qty > p.fields.stock) return setError(`Only ${p.fields.stock} × ${p.fields.name} in stock.`);
    }
    const w = createBill(client, { customer_id: c.id, customer_name: c.fields.name, branch, items }, session.sub);
    w.then(
      () => toast({ tone: 'success', title: 'Bill saved on the server', body: `${c.fields.name} · ${fmtMoney(total)}` }, 3500),
      (err) => toast({ tone: 'danger', kind: refusalKind(err), title: 'Bill refused', body: explain(err, client) }, 9000),
    );
    onClose();
  };
  return (
    <Drawer title="New bill" onClose={onClose} wide>
      <form onSubmit={submit} className="form" data-testid="bill-form">
        <div className="field-row">
          <label className="field">
            <span>Customer</span>
            <select value={customerId} onChange={(e) => setCustomerId(e.target.value)} name="customer" required>
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
              disabled={wsBranch !== 'all'}
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
                      <option key={p.id} value={p.id} disabled={p.fields.stock <= 0}>
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
                    max={p?.fields.stock ?? 999}
                    value={l.qty}
                    name={`qty-${i}`}
                    onChange={(e) => setLines(lines.map((x, j) => (j === i ? { ...x, qty: Math.max(1, Number(e.target.value) || 1) } : x)))}
                  />
                </label>
                <span className="line-total">{p ? fmtMoney(p.fields.price * l.qty) : '—'}</span>
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
        <div className="form-total">
          <span>Total</span>
          <strong>{fmtMoney(total)}</strong>
        </div>
        <p className="muted small">Saving writes the bill, the stock decrements, the stock transactions and a ledger debit in one transaction: if the stock cannot cover a line when the server commits it, none of it is recorded.</p>
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <div className="form-actions">
          <button type="button" className="btn btn-ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn" data-testid="save-bill">
            Create bill
          </button>
        </div>
      </form>
    </Drawer>
  );
}
