// Layer: demo/pages. The order pipeline. Each stage change is an update plus a published
// `order:stage_change` event; other tabs (and the customer) turn that event into a notification.
import { useCollection, useEvents, useSyncClient } from 'syncline/react';
import type { Customer, Order } from '../model';
import { branchName, fmtMoney, fmtTime, ORDER_STAGES, orderNumber, relTime } from '../model';
import { PageHeader } from '../ui/bits';
import { useFlash } from '../ui/useFlash';
import { useToast } from '../ui/Toasts';
import { useWorkspace } from '../workspace';
import { explain, nextStage, setOrderStage } from '../writes';

export function Orders() {
  const client = useSyncClient();
  const toast = useToast();
  const { session, branch } = useWorkspace();
  const { data } = useCollection<Order>('orders', { orderBy: 'updated_at.desc' });
  const { data: customers } = useCollection<Customer>('customers');
  const flash = useFlash(data);
  const feed = useEvents({ type: 'order:stage_change', limit: 6, order: 'newest-first' });
  const advance = (id: string, to: Order['stage']) =>
    setOrderStage(client, id, to, session.name)?.catch((e) => toast({ tone: 'danger', title: 'Stage not changed', body: explain(e, client) }));
  const addOrder = () => {
    const c = customers[Math.floor(Math.random() * customers.length)];
    if (!c) return;
    const now = Date.now();
    client
      .collection<Order>('orders')
      .insert({
        number: orderNumber(),
        customer_id: c.id,
        customer_name: c.fields.name,
        branch: branch === 'all' ? 'north' : branch,
        stage: 'new',
        total: 1500 + Math.floor(Math.random() * 20000),
        summary: 'Phone order',
        created_at: now,
        updated_at: now,
      })
      .catch((e) => toast({ tone: 'danger', title: 'Order refused', body: explain(e) }));
  };
  return (
    <>
      <PageHeader
        title="Orders"
        subtitle="Move orders along; every other tab is notified through a custom event"
        actions={
          <button className="btn" onClick={addOrder}>
            + New order
          </button>
        }
      />
      <div className="pipeline" data-testid="pipeline" data-scroll-x>
        {ORDER_STAGES.map((stage) => {
          const col = data.filter((o) => o.fields.stage === stage);
          return (
            <section key={stage} className={`lane lane-${stage}`} aria-labelledby={`lane-${stage}`}>
              <h2 id={`lane-${stage}`}>
                {stage} <span className="lane-count">{col.length}</span>
              </h2>
              <ul>
                {col.map((o) => {
                  const nx = nextStage(o.fields.stage);
                  return (
                    <li key={o.id} className={`order-card ${flash(o.id)}${o.pending ? ' pending' : ''}`} data-id={o.id}>
                      <div className="order-top">
                        <strong className="mono">{o.fields.number}</strong>
                        <span>{fmtMoney(o.fields.total)}</span>
                      </div>
                      <div>{o.fields.customer_name}</div>
                      <div className="muted small">
                        {o.fields.summary} · {branchName(o.fields.branch)} · {relTime(o.fields.updated_at)}
                      </div>
                      {nx && (
                        <button className="btn btn-sm btn-ghost" onClick={() => advance(o.id, nx)} aria-label={`Move ${o.fields.number} to ${nx}`}>
                          → {nx}
                        </button>
                      )}
                    </li>
                  );
                })}
              </ul>
            </section>
          );
        })}
      </div>
      <section className="card" aria-labelledby="feed-h">
        <h2 id="feed-h">Stage changes (custom events)</h2>
        {feed.length === 0 ? (
          <p className="muted">Open this page in a second tab and move an order: the event shows up there as a notification.</p>
        ) : (
          <ol className="activity">
            {feed.map((e) => (
              <li key={`${e.seq}:${e.atMs}`}>
                <span className="act-badge act-order-stage_change">event</span>
                <span className="act-text">
                  {String(e.data.number)}: {String(e.data.from)} → {String(e.data.to)} <span className="muted">by {String(e.data.by)}</span>
                </span>
                <time className="muted">{fmtTime(e.atMs)}</time>
              </li>
            ))}
          </ol>
        )}
      </section>
    </>
  );
}
