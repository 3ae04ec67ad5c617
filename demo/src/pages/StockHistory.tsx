// Layer: demo/pages. The live stock transaction list with per-kind totals (live aggregates). The
// "stock after" column is the stock the server committed after each movement, derived from
// committed data (stock.ts); a movement the server has not applied yet shows "…".
import { useMemo, useState } from 'react';
import { useAggregate, useCollection } from 'syncline/react';
import type { Product, StockTx } from '../model';
import { branchName, fmtDateTime } from '../model';
import { stockAfterByMove } from '../stock';
import { Empty, PageHeader, Pill, Stat } from '../ui/bits';
import { useFlash } from '../ui/useFlash';

export function StockHistory() {
  const [kind, setKind] = useState<'all' | StockTx['kind']>('all');
  const { data, total } = useCollection<StockTx>('stock_transactions', {
    where: kind === 'all' ? undefined : `kind=eq.${kind}`,
    orderBy: 'at.desc',
    limit: 150,
  });
  const sums = useAggregate('stock_transactions', { groupBy: 'kind', sum: 'qty' });
  const g = (k: string) => sums.groups[JSON.stringify(k)] ?? { count: 0, sum: 0 };
  const { data: allMoves } = useCollection<StockTx>('stock_transactions');
  const { data: products } = useCollection<Product>('products');
  const after = useMemo(() => {
    const byId = new Map(products.map((p) => [p.id, p]));
    return stockAfterByMove(allMoves, (id) => byId.get(id));
  }, [allMoves, products]);
  const flash = useFlash(data);
  return (
    <>
      <PageHeader title="Stock history" subtitle={`${total} transactions · newest first`} />
      <section className="stats stats-3" aria-label="Stock summary">
        <Stat label="Units received" value={g('purchase').sum} hint={`${g('purchase').count} purchases`} tone="good" />
        <Stat label="Units sold" value={-g('sale').sum} hint={`${g('sale').count} sales`} tone="brand" />
        <Stat label="Net adjustments" value={g('adjustment').sum} hint={`${g('adjustment').count} corrections`} tone="warn" />
      </section>
      <div className="toolbar">
        <div className="segmented" role="group" aria-label="Filter by kind">
          {(['all', 'sale', 'purchase', 'adjustment'] as const).map((k) => (
            <button key={k} className={kind === k ? 'on' : ''} aria-pressed={kind === k} onClick={() => setKind(k)}>
              {k[0].toUpperCase() + k.slice(1)}
            </button>
          ))}
        </div>
      </div>
      <div className="card table-card">
        {data.length === 0 ? (
          <Empty>No transactions yet.</Empty>
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="stock-table">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Product</th>
                  <th scope="col" className="hide-sm">
                    Branch
                  </th>
                  <th scope="col">Kind</th>
                  <th scope="col" className="num-col">
                    Change
                  </th>
                  <th scope="col" className="num-col hide-sm">
                    Stock after
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.map((t) => (
                  <tr key={t.id} data-id={t.id} className={`${flash(t.id)}${t.pending ? ' pending' : ''}`}>
                    <td className="muted">{fmtDateTime(t.fields.at)}</td>
                    <td>
                      {t.fields.product_name}
                      {t.fields.note && <div className="muted small">{t.fields.note}</div>}
                    </td>
                    <td className="hide-sm">{branchName(t.fields.branch)}</td>
                    <td>
                      <Pill tone={t.fields.kind === 'purchase' ? 'good' : t.fields.kind === 'sale' ? 'brand' : 'neutral'}>{t.fields.kind}</Pill>
                    </td>
                    <td className={`num-col mono ${t.fields.qty < 0 ? 'text-bad' : 'text-good'}`}>
                      {t.fields.qty > 0 ? '+' : ''}
                      {t.fields.qty}
                    </td>
                    <td className="num-col hide-sm" data-testid="stock-after" title={after.has(t.id) ? undefined : 'Known once the server has applied it'}>
                      {after.get(t.id) ?? '…'}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
    </>
  );
}
