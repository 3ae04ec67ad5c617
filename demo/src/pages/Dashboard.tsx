// Layer: demo/pages. Live business overview: bill statistics from live aggregates (maintained
// incrementally by the engine), inventory value and low stock, recent activity from the
// client's bounded event history.
import { useMemo } from 'react';
import type { HistoryEntry } from 'syncline';
import { useAggregate, useCollection, useEvents, useSyncClient } from 'syncline/react';
import type { Bill, Product } from '../model';
import { BRANCHES, branchName, fmtMoney, fmtTime, startOfToday } from '../model';
import { navigate } from '../router';
import { PageHeader, Stat } from '../ui/bits';
import { useWorkspace } from '../workspace';
import { useClock } from '../ui/useClock';

export function Dashboard() {
  const { branch } = useWorkspace();
  // Moves once a minute, so "overdue" and "today" stay true without churn.
  const now = useClock(60000, 15000);
  const byStatus = useAggregate('bills', { groupBy: 'status', sum: 'total' });
  const overdue = useAggregate('bills', { where: `status=eq.unpaid,due_at=lt.${now}`, sum: 'total' });
  const today = useAggregate('bills', { where: `created_at=gte.${startOfToday()}`, sum: 'total' });
  const byBranch = useAggregate('bills', { groupBy: 'branch', sum: 'total' });
  const { data: products } = useCollection<Product>('products');
  const paid = byStatus.groups['"paid"'] ?? { count: 0, sum: 0 };
  const unpaid = byStatus.groups['"unpaid"'] ?? { count: 0, sum: 0 };
  const inv = useMemo(() => {
    let value = 0;
    const low: Product[] = [];
    for (const p of products) {
      value += p.fields.stock * p.fields.price;
      if (p.fields.stock < p.fields.threshold) low.push(p.fields);
    }
    return { value, low };
  }, [products]);
  const money = (n: number) => fmtMoney(n);
  return (
    <>
      <PageHeader
        title="Dashboard"
        subtitle={
          <>
            Live across every tab and device · {branch === 'all' ? 'all branches' : `${branchName(branch)} branch`}
          </>
        }
        actions={
          <button className="btn" onClick={() => navigate('/bills?new=1')}>
            + New bill
          </button>
        }
      />
      <section className="stats" aria-label="Bill statistics">
        <Stat label="Revenue billed" value={byStatus.total.sum} format={money} hint={<><b>{byStatus.total.count}</b> bills</>} tone="brand" testId="stat-total" />
        <Stat label="Paid" value={paid.sum} format={money} hint={`${paid.count} bills`} tone="good" testId="stat-paid" />
        <Stat label="Unpaid" value={unpaid.sum} format={money} hint={`${unpaid.count} bills`} tone="warn" testId="stat-unpaid" />
        <Stat label="Overdue" value={overdue.total.sum} format={money} hint={`${overdue.total.count} bills past due`} tone="bad" testId="stat-overdue" />
        <Stat label="Billed today" value={today.total.sum} format={money} hint={`${today.total.count} bills today`} testId="stat-today" />
        <Stat label="Bills" value={byStatus.total.count} testId="stat-count" hint="all time" />
      </section>
      <div className="grid-2">
        <section className="card" aria-labelledby="inv-h">
          <div className="card-head">
            <h2 id="inv-h">Inventory</h2>
            <button className="btn btn-ghost btn-sm" onClick={() => navigate('/inventory')}>
              Open inventory →
            </button>
          </div>
          <div className="mini-stats">
            <div>
              <span className="stat-label">Stock value</span>
              <strong className="stat-value-sm" data-testid="stat-inventory">
                {fmtMoney(inv.value)}
              </strong>
            </div>
            <div>
              <span className="stat-label">Low stock</span>
              <strong className={`stat-value-sm ${inv.low.length ? 'text-warn' : ''}`} data-testid="stat-lowstock">
                {inv.low.length}
              </strong>
            </div>
            <div>
              <span className="stat-label">Products</span>
              <strong className="stat-value-sm">{products.length}</strong>
            </div>
          </div>
          {inv.low.length > 0 ? (
            <ul className="low-list">
              {inv.low.slice(0, 5).map((p) => (
                <li key={p.sku + p.branch}>
                  <span>
                    {p.name} <span className="muted">· {branchName(p.branch)}</span>
                  </span>
                  <span className="pill pill-warn">
                    {p.stock} / {p.threshold}
                  </span>
                </li>
              ))}
            </ul>
          ) : (
            <p className="muted">Everything is above its threshold.</p>
          )}
          <h3 className="subhead">Revenue by branch</h3>
          <BranchBars groups={byBranch.groups} total={byBranch.total.sum} />
        </section>
        <Activity />
      </div>
      <RecentBills />
    </>
  );
}

function BranchBars({ groups, total }: { groups: Record<string, { count: number; sum: number }>; total: number }) {
  return (
    <ul className="bars">
      {BRANCHES.map((b) => {
        const g = groups[JSON.stringify(b.id)] ?? { count: 0, sum: 0 };
        const pct = total ? (g.sum / total) * 100 : 0;
        return (
          <li key={b.id}>
            <span className="bars-label">{b.name}</span>
            <span className="bars-track">
              <span className="bars-fill" style={{ width: `${pct}%` }} />
            </span>
            <span className="bars-value">{fmtMoney(g.sum)}</span>
          </li>
        );
      })}
    </ul>
  );
}

const ACTIVITY_TYPES = ['insert', 'update', 'delete', 'rejected', 'order:stage_change', 'reset', 'snapshot'];

function Activity() {
  const client = useSyncClient();
  const entries = useEvents({ type: ACTIVITY_TYPES, limit: 9, order: 'newest-first' });
  const describe = (collection: string, id: string) => {
    if (!collection) return id;
    const doc = client.collection(collection).get(id)?.fields as Record<string, unknown> | undefined;
    const label = (doc?.number ?? doc?.name ?? doc?.product_name ?? doc?.title ?? doc?.memo ?? id) as string;
    return `${collection.replace('_', ' ')} · ${label}`;
  };
  const activityText = (e: HistoryEntry) =>
    e.type === 'order:stage_change'
      ? `${String(e.data.number)} → ${String(e.data.to)}`
      : e.type === 'snapshot'
        ? `Synced ${String(e.data.docs ?? '')} documents from the server`
        : e.type === 'rejected'
          ? `${describe(e.collection, e.id)} (${String(e.data.code ?? '')})`
          : describe(e.collection, e.id);
  return (
    <section className="card" aria-labelledby="act-h">
      <div className="card-head">
        <h2 id="act-h">Recent activity</h2>
        <button className="btn btn-ghost btn-sm" onClick={() => navigate('/realtime')}>
          Event log →
        </button>
      </div>
      {entries.length === 0 ? (
        <p className="muted">Changes appear here the moment they happen, in this tab or any other.</p>
      ) : (
        <ol className="activity" data-testid="activity">
          {entries.map((e) => (
            <li key={`${e.atMs}:${e.seq}:${e.type}:${e.id}`} className="fade-in">
              <span className={`act-badge act-${e.type.replace(':', '-')}`}>{e.type === 'order:stage_change' ? 'stage' : e.type === 'snapshot' ? 'sync' : e.type}</span>
              <span className="act-text" title={activityText(e)}>
                {activityText(e)}
              </span>
              <time className="muted">{fmtTime(e.atMs)}</time>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function RecentBills() {
  const { data } = useCollection<Bill>('bills', { orderBy: 'created_at.desc', limit: 5 });
  return (
    <section className="card" aria-labelledby="rb-h">
      <div className="card-head">
        <h2 id="rb-h">Latest bills</h2>
        <button className="btn btn-ghost btn-sm" onClick={() => navigate('/bills')}>
          All bills →
        </button>
      </div>
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Bill</th>
              <th scope="col">Customer</th>
              <th scope="col" className="hide-sm">
                Branch
              </th>
              <th scope="col" className="num-col">
                Total
              </th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {data.map((b) => (
              <tr key={b.id}>
                <td className="mono">{b.fields.number}</td>
                <td>{b.fields.customer_name}</td>
                <td className="hide-sm">{branchName(b.fields.branch)}</td>
                <td className="num-col">{fmtMoney(b.fields.total)}</td>
                <td>
                  <span className={`pill ${b.fields.status === 'paid' ? 'pill-good' : 'pill-warn'}`}>{b.fields.status}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
