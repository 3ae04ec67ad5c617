// Layer: demo/pages. Products with stock bars and thresholds; purchases, sales and adjustments,
// each an increment bounded at 0 with its record, in one transaction (writes.ts).
// The low-stock toast itself lives in the shell (AdminWatchers), so it fires on any page.
import { useMemo, useState } from 'react';
import { useCollection, useSyncClient } from 'syncline/react';
import type { Product, StockTx } from '../model';
import { branchName, countOf, fmtMoney } from '../model';
import { Drawer } from '../ui/Drawer';
import { Empty, PageHeader, Pill, StockBar } from '../ui/bits';
import { useFlash } from '../ui/useFlash';
import { useToast } from '../ui/Toasts';
import { useWorkspace } from '../workspace';
import { committedStockAfter } from '../stock';
import { explain, recordMovement, refusalKind } from '../writes';

export function Inventory() {
  const [onlyLow, setOnlyLow] = useState(false);
  const [q, setQ] = useState('');
  const [moving, setMoving] = useState<string | null>(null);
  const { branch } = useWorkspace();
  const { data } = useCollection<Product>('products', { orderBy: 'name' });
  const flash = useFlash(data);
  const shown = useMemo(() => {
    const s = q.trim().toLowerCase();
    return data.filter((p) => (!onlyLow || p.fields.stock < p.fields.threshold) && (!s || `${p.fields.name} ${p.fields.sku}`.toLowerCase().includes(s)));
  }, [data, onlyLow, q]);
  const low = data.filter((p) => p.fields.stock < p.fields.threshold).length;
  return (
    <>
      <PageHeader
        title="Inventory"
        subtitle={
          <>
            {data.length} products {branch === 'all' ? 'across all branches' : `at ${branchName(branch)}`} · <span className={low ? 'text-warn' : ''}>{low} below threshold</span>
          </>
        }
      />
      <div className="toolbar">
        <label className="check">
          <input type="checkbox" checked={onlyLow} onChange={(e) => setOnlyLow(e.target.checked)} /> Only low stock
        </label>
        <label className="search">
          <span className="visually-hidden">Search products</span>
          <input type="search" placeholder="Search name or SKU" value={q} onChange={(e) => setQ(e.target.value)} />
        </label>
      </div>
      <div className="card table-card">
        {shown.length === 0 ? (
          <Empty>No products match.</Empty>
        ) : (
          <div className="table-wrap">
            <table className="table inventory-table" data-testid="inventory-table">
              <thead>
                <tr>
                  <th scope="col">Product</th>
                  <th scope="col" className="hide-sm">
                    Branch
                  </th>
                  <th scope="col" className="stock-col">
                    Stock
                  </th>
                  <th scope="col" className="num-col hide-sm">
                    Value
                  </th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {shown.map((p) => {
                  const f = p.fields;
                  const isLow = f.stock < f.threshold;
                  return (
                    <tr key={p.id} data-id={p.id} className={`${flash(p.id)}${p.pending ? ' pending' : ''}`}>
                      <td>
                        <div className="cell-title">
                          {f.name}
                          {/* Not only fading: pending rows say so in text. */}
                          {p.pending && (
                            <span className="saving" data-testid="row-saving">
                              saving…
                            </span>
                          )}
                        </div>
                        <div className="muted small mono">
                          {f.sku} · {fmtMoney(f.price)} / {f.unit}
                        </div>
                      </td>
                      <td className="hide-sm">{branchName(f.branch)}</td>
                      <td className="stock-col">
                        <div className="stock-line">
                          <strong data-testid="stock">{f.stock}</strong>
                          <span className="muted small">min {f.threshold}</span>
                          {isLow && <Pill tone={f.stock === 0 ? 'bad' : 'warn'}>{f.stock === 0 ? 'out' : 'low'}</Pill>}
                        </div>
                        <StockBar stock={f.stock} threshold={f.threshold} capacity={f.capacity} />
                      </td>
                      <td className="num-col hide-sm">{fmtMoney(f.stock * f.price)}</td>
                      <td className="actions-col">
                        <button className="btn btn-sm btn-ghost" onClick={() => setMoving(p.id)} aria-label={`Record stock movement for ${f.name} at ${branchName(f.branch)}`}>
                          Move stock
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </div>
      {moving && <MovementDrawer productId={moving} onClose={() => setMoving(null)} />}
    </>
  );
}

function MovementDrawer({ productId, onClose }: { productId: string; onClose: () => void }) {
  const client = useSyncClient();
  const toast = useToast();
  const { session } = useWorkspace();
  const p = client.collection<Product>('products').get(productId);
  const [kind, setKind] = useState<StockTx['kind']>('sale');
  const [qty, setQty] = useState(1);
  const [note, setNote] = useState('');
  if (!p) return null;
  const f = p.fields;
  const delta = kind === 'purchase' ? Math.abs(qty) : kind === 'sale' ? -Math.abs(qty) : qty;
  // A preview on this window's copy only: the server applies the increment to the stock it has
  // at commit, and refuses it if that would go below 0.
  const after = f.stock + delta;
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const m = recordMovement(client, productId, kind, qty, session.sub, note || undefined);
    const what = `${kind[0].toUpperCase()}${kind.slice(1)} of ${Math.abs(delta)} × ${f.name}`;
    if (m) {
      m.done.then(
        // The stock-after is the one the server committed (stock.ts), not this window's preview.
        () =>
          committedStockAfter(client, m.moveId).then((left) =>
            toast({ tone: 'success', kind: 'stock-recorded', title: `${what} recorded`, body: left === null ? 'Applied by the server.' : `${countOf(left, f.unit)} in stock after it, as the server committed it.` }, 4500),
          ),
        (err) => {
          const k = refusalKind(err);
          toast({ tone: 'danger', kind: k, title: k === 'out-of-stock' ? `Out of stock: ${f.name}` : 'Stock change refused', body: explain(err, client) }, 9000);
        },
      );
    }
    onClose();
  };
  return (
    <Drawer title={`Stock movement · ${f.name}`} onClose={onClose}>
      <form className="form" onSubmit={submit} data-testid="movement-form">
        <p className="muted">
          {branchName(f.branch)} · {f.stock} in stock · threshold {f.threshold}
        </p>
        <fieldset className="radio-cards">
          <legend>Kind</legend>
          {(['sale', 'purchase', 'adjustment'] as const).map((k) => (
            <label key={k} className={kind === k ? 'on' : ''}>
              <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => setKind(k)} />
              <strong>{k[0].toUpperCase() + k.slice(1)}</strong>
              <span className="muted small">{k === 'sale' ? 'Stock leaves' : k === 'purchase' ? 'Delivery arrives' : 'Count correction (±)'}</span>
            </label>
          ))}
        </fieldset>
        <label className="field">
          <span>{kind === 'adjustment' ? 'Change (negative to remove)' : 'Quantity'}</span>
          <input type="number" name="qty" value={qty} min={kind === 'adjustment' ? undefined : 1} onChange={(e) => setQty(Number(e.target.value) || 0)} required />
        </label>
        <label className="field">
          <span>Note (optional)</span>
          <input type="text" name="note" value={note} onChange={(e) => setNote(e.target.value)} placeholder="e.g. Weekly delivery" />
        </label>
        <div className="preview">
          <span>After this:</span> <strong>{after}</strong>
          {after < 0 ? (
            <Pill tone="bad">not enough stock: the server will refuse it</Pill>
          ) : (
            after < f.threshold && f.stock >= f.threshold && <Pill tone="warn">crosses the threshold</Pill>
          )}
        </div>
        <StockBar stock={Math.max(0, after)} threshold={f.threshold} capacity={f.capacity} />
        <div className="form-actions">
          <button type="button" className="btn btn-ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn" data-testid="save-movement">
            Record {kind}
          </button>
        </div>
      </form>
    </Drawer>
  );
}
