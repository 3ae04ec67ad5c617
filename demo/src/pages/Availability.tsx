// Layer: demo/pages. What customers may order, live: every product by branch and category with its
// availability level (In stock / Low stock / Out of stock, in words and colour). Customers read
// products (server rule `products: customer all`), and the level follows every sale, delivery and
// adjustment an admin records, the moment the server applies it. The page never shows prices,
// costs, stock value or exact counts: a customer learns whether they can order, not the books.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useCollection } from 'syncline/react';
import type { Product, StockLevel } from '../model';
import { BRANCHES, branchName, STOCK_LEVEL_LABEL, stockLevel } from '../model';
import { Empty, PageHeader } from '../ui/bits';
import { useTimedMarks } from '../ui/useTimedMarks';

const LEVEL_ICON: Record<StockLevel, string> = { in: '●', low: '◐', out: '○' };

export function Availability() {
  const { data } = useCollection<Product>('products', { orderBy: 'name' });
  const [branch, setBranch] = useState<string>('all');
  const [onlyAvailable, setOnlyAvailable] = useState(false);
  // The level of each product as this page last showed it: a change of level flashes the row
  // (a change of count that keeps the level changes nothing on screen).
  const levels = useLevelFlash(data);
  const shown = data.filter((p) => (branch === 'all' || p.fields.branch === branch) && (!onlyAvailable || stockLevel(p.fields) !== 'out'));
  const groups = useMemo(() => {
    const m = new Map<string, typeof shown>();
    for (const p of shown) {
      const k = `${p.fields.branch}|${p.fields.category}`;
      m.set(k, [...(m.get(k) ?? []), p]);
    }
    const order = (k: string) => BRANCHES.findIndex((b) => b.id === k.split('|')[0]);
    return [...m.entries()].sort((a, b) => order(a[0]) - order(b[0]) || a[0].localeCompare(b[0]));
  }, [shown]);
  const counts = { in: 0, low: 0, out: 0 };
  for (const p of shown) counts[stockLevel(p.fields)]++;
  return (
    <>
      <PageHeader
        title="Products"
        subtitle={`What you can order at each branch, live: ${counts.in} in stock, ${counts.low} low, ${counts.out} out of stock.`}
      />
      <div className="toolbar avail-toolbar">
        <div className="segmented" role="group" aria-label="Branch">
          {[{ id: 'all', name: 'All branches' }, ...BRANCHES].map((b) => (
            <button key={b.id} className={branch === b.id ? 'on' : ''} aria-pressed={branch === b.id} onClick={() => setBranch(b.id)} data-branch={b.id}>
              {b.name}
            </button>
          ))}
        </div>
        <label className="check">
          <input type="checkbox" checked={onlyAvailable} onChange={(e) => setOnlyAvailable(e.target.checked)} /> Hide out of stock
        </label>
      </div>
      {groups.length === 0 ? (
        <div className="card">
          <Empty>No products to show.</Empty>
        </div>
      ) : (
        <div className="avail-groups" data-testid="availability">
          {groups.map(([key, list]) => {
            const [b, category] = key.split('|');
            return (
              <section key={key} className="card avail-group" aria-label={`${category} at ${branchName(b)}`}>
                <h2>
                  {category} <span className="muted small">· {branchName(b)}</span>
                </h2>
                <ul className="avail-list">
                  {list.map((p) => {
                    const lv = stockLevel(p.fields);
                    return (
                      <li key={p.id} data-id={p.id} data-level={lv} className={`avail-item ${levels(p.id)}`}>
                        <span className="avail-name">{p.fields.name}</span>
                        <span className={`avail-badge avail-${lv}`} data-testid="level">
                          <span aria-hidden="true">{LEVEL_ICON[lv]}</span> {STOCK_LEVEL_LABEL[lv]}
                        </span>
                      </li>
                    );
                  })}
                </ul>
              </section>
            );
          })}
        </div>
      )}
      <p className="muted small">Levels follow the branch's stock as the server records it. Low stock: order soon, it may run out.</p>
    </>
  );
}

/** Flashes a product whose level changed since the previous render (not on first load). */
function useLevelFlash(docs: readonly { id: string; fields: Product }[]) {
  const seen = useRef<Map<string, StockLevel> | null>(null);
  const [marks, mark] = useTimedMarks<true>(2400);
  useEffect(() => {
    const prev = seen.current;
    const now = new Map(docs.map((d) => [d.id, stockLevel(d.fields)]));
    seen.current = now;
    if (!prev) return;
    const changed: Record<string, true> = {};
    for (const [id, lv] of now) if (prev.has(id) && prev.get(id) !== lv) changed[id] = true;
    mark(changed);
  }, [docs, mark]);
  return (id: string) => (marks[id] ? 'flash-changed' : '');
}
