// Layer: demo/pages. The realtime lab for cross-tab testing: the connection as the runtime sees
// it (transport, leader/follower tab, cursor, outbox), the bounded event history, bulk writes,
// an offline switch for this client, and a reconnect button.
import { useState, useSyncExternalStore } from 'react';
import type { Transport } from 'syncline';
import { useConnectionHealth, useEvents, useSyncClient } from 'syncline/react';
import type { Customer, Order, Product } from '../model';
import { fmtTime, orderNumber, relTime } from '../model';
import { PageHeader } from '../ui/bits';
import { useToast } from '../ui/Toasts';
import { useClientStatus, useWorkspace } from '../workspace';
import { createBill, recordMovement } from '../writes';

const TYPE_FILTERS = ['all', 'insert', 'update', 'delete', 'rejected', 'custom', 'status'] as const;
/** An entry's whole line, for the tooltip of the truncated text. */
const logLine = (e: { collection?: string; id?: string; data?: unknown }) =>
  `${e.collection ? `${e.collection}/${e.id}` : ''} ${e.data && Object.keys(e.data).length ? JSON.stringify(e.data) : ''}`.trim();

const BUILTIN = ['insert', 'update', 'delete', 'rejected', 'reset', 'snapshot', 'status', 'error', 'leader', 'follower'];

export function Realtime() {
  const client = useSyncClient();
  const toast = useToast();
  const s = useClientStatus();
  const health = useConnectionHealth();
  const { session, transport, setTransport, branch } = useWorkspace();
  const admin = session.role === 'admin';
  const history = useSyncExternalStore(client.events.subscribe, client.events.getSnapshot);
  const [filter, setFilter] = useState<(typeof TYPE_FILTERS)[number]>('all');
  const all = useEvents({ limit: 60, order: 'newest-first' });
  const entries = all.filter((e) => filter === 'all' || (filter === 'custom' ? !BUILTIN.includes(e.type) : e.type === filter));
  const offline = health.status === 'disconnected' && navigator.onLine;

  const bulkBills = (n: number) => {
    const customers = client.collection<Customer>('customers').all();
    const products = client.collection<Product>('products').all().filter((p) => p.fields.stock > 5);
    for (let i = 0; i < n && customers.length && products.length; i++) {
      const c = customers[Math.floor(Math.random() * customers.length)];
      const p = products[Math.floor(Math.random() * products.length)];
      createBill(client, { customer_id: c.id, customer_name: c.fields.name, branch: p.fields.branch, items: [{ product_id: p.id, name: p.fields.name, qty: 1, price: p.fields.price }] }, session.sub).catch(() => {});
    }
    toast({ tone: 'info', title: `${n} bills queued`, body: 'Sent as one batch; watch them arrive in the other tab.' }, 3000);
  };
  const bulkMoves = (n: number) => {
    const products = client.collection<Product>('products').all();
    const queued: Promise<unknown>[] = [];
    for (let i = 0; i < n && products.length; i++) {
      const p = products[Math.floor(Math.random() * products.length)];
      const m = recordMovement(client, p.id, Math.random() < 0.5 ? 'purchase' : 'sale', 1 + Math.floor(Math.random() * 3), session.sub, 'Bulk test data');
      if (m) queued.push(m.done);
    }
    toast({ tone: 'info', title: `${n} stock movements queued` }, 3000);
    // Each is an increment bounded at 0 with its record, in one transaction: a sale the stock
    // cannot cover when the server commits it is refused whole, and nothing of it is recorded.
    void Promise.allSettled(queued).then((rs) => {
      const refused = rs.filter((r) => r.status === 'rejected').length;
      if (refused) toast({ tone: 'warning', kind: 'out-of-stock', title: `${refused} of ${rs.length} stock movements refused`, body: 'Not enough stock when the server applied them: stock never goes below 0, and a refused sale leaves no history entry.' }, 6000);
    });
  };
  const bulkOrders = (n: number) => {
    const customers = client.collection<Customer>('customers').all();
    const now = Date.now();
    for (let i = 0; i < n && customers.length; i++) {
      const c = customers[Math.floor(Math.random() * customers.length)];
      client
        .collection<Order>('orders')
        .insert({ number: orderNumber() + i, customer_id: c.id, customer_name: c.fields.name, branch: branch === 'all' ? 'harbour' : branch, stage: 'new', total: 1000 + Math.floor(Math.random() * 30000), summary: 'Bulk test order', created_at: now, updated_at: now })
        .catch(() => {});
    }
    toast({ tone: 'info', title: `${n} orders queued` }, 3000);
  };
  const ping = () =>
    client
      .publish('demo:ping', { from: session.name, at: Date.now() })
      .then(() => toast({ tone: 'success', title: 'Event published' }, 2500))
      .catch((e) => toast({ tone: 'danger', title: 'Not published', body: `${e.code}: ${e.message}` }));

  const roleText = s.role === 'follower' ? 'Follower tab' : s.role === 'leader' ? 'Leader tab' : 'Single tab';
  return (
    <>
      <PageHeader
        title="Realtime lab"
        subtitle="Open this page in a second tab, go offline in one, write in both, and watch them converge."
        actions={
          <a className="btn btn-ghost" href="/realtime" target="_blank" rel="noopener" data-testid="new-tab">
            Open in new tab ↗
          </a>
        }
      />
      <section className="realtime-grid">
        <div className={`card conn-card conn-card-${health.status}`} data-testid="conn-card">
          <div className="conn-card-head">
            <span className={`big-dot dot-${health.status}`} aria-hidden="true" />
            <div>
              <h2 data-testid="conn-status">{health.status === 'healthy' ? 'Connected' : health.status === 'disconnected' ? 'Offline' : health.status === 'connecting' ? 'Connecting' : 'Retrying'}</h2>
              <p className="muted small">{health.status === 'healthy' ? `for ${Math.floor(health.uptime / 1000)} s` : (health.error?.message ?? s.connection)}</p>
            </div>
          </div>
          <dl className="kv">
            <div>
              <dt>Transport</dt>
              <dd data-testid="transport">{s.transport === 'websocket' ? 'WebSocket' : 'SSE'}</dd>
            </div>
            <div>
              <dt>This tab</dt>
              <dd data-testid="tab-role">{roleText}</dd>
            </div>
            <div>
              <dt>Cursor (seq)</dt>
              <dd className="mono" data-testid="cursor">
                {s.cursor}
              </dd>
            </div>
            <div>
              <dt>Round trip</dt>
              <dd className="mono" data-testid="round-trip" title="Smoothed; the last sample in brackets">
                {health.latencyMs == null ? '—' : `${health.latencyMs} ms (${health.lastLatencyMs ?? '—'})`}
              </dd>
            </div>
            <div>
              <dt>Pending writes (this browser)</dt>
              <dd className="mono" data-testid="pending">
                {s.pendingOperations}
              </dd>
            </div>
            <div>
              <dt>Last sync</dt>
              <dd>{s.lastSync ? relTime(s.lastSync) : '—'}</dd>
            </div>
            <div>
              <dt>Client id</dt>
              <dd className="mono small ellipsis" title={s.clientId}>
                {s.clientId}
              </dd>
            </div>
          </dl>
          <div className="controls">
            <label className="switch">
              <input
                type="checkbox"
                role="switch"
                checked={offline}
                onChange={(e) => (e.target.checked ? client.goOffline() : client.goOnline())}
                data-testid="offline-switch"
              />
              <span className="switch-track" aria-hidden="true" />
              Work offline
            </label>
            <button className="btn btn-ghost btn-sm" onClick={() => client.forceSync()} data-testid="reconnect">
              Reconnect now
            </button>
            <label className="field field-inline">
              <span>Transport</span>
              <select value={transport} onChange={(e) => setTransport(e.target.value as Transport)}>
                <option value="sse">Server-Sent Events</option>
                <option value="websocket">WebSocket</option>
              </select>
            </label>
          </div>
        </div>
        <div className="card">
          <h2>Generate test data</h2>
          <p className="muted small">Writes made together go to the server as one batch. Try it while offline: they wait in the outbox.</p>
          {admin ? (
            <div className="bulk">
              <button className="btn btn-ghost" onClick={() => bulkBills(10)} data-testid="bulk-bills">
                + 10 bills
              </button>
              <button className="btn btn-ghost" onClick={() => bulkMoves(25)}>
                + 25 stock moves
              </button>
              <button className="btn btn-ghost" onClick={() => bulkOrders(5)}>
                + 5 orders
              </button>
              <button className="btn btn-ghost" onClick={ping}>
                Publish a ping event
              </button>
            </div>
          ) : (
            <p className="muted">Customers can read, book halls and receive notifications; bulk data is for the admin.</p>
          )}
          <h3 className="subhead">History counts</h3>
          <ul className="counts">
            {Object.entries(history.counts)
              .sort((a, b) => b[1] - a[1])
              .slice(0, 8)
              .map(([k, v]) => (
                <li key={k}>
                  <span>{k}</span>
                  <strong>{v}</strong>
                </li>
              ))}
          </ul>
          <p className="muted small">
            {history.entries.length} of {history.capacity} kept · {history.total} seen in total
          </p>
        </div>
      </section>
      <section className="card" aria-labelledby="log-h">
        <div className="card-head">
          <h2 id="log-h">Event log</h2>
          <div className="segmented segmented-sm" role="group" aria-label="Filter events">
            {TYPE_FILTERS.map((f) => (
              <button key={f} className={filter === f ? 'on' : ''} aria-pressed={filter === f} onClick={() => setFilter(f)}>
                {f}
              </button>
            ))}
          </div>
        </div>
        <ol className="log" data-testid="event-log">
          {entries.map((e) => (
            <li key={`${e.atMs}:${e.seq}:${e.type}:${e.id}`}>
              <time className="mono muted">{fmtTime(e.atMs)}</time>
              <span className={`act-badge act-${BUILTIN.includes(e.type) ? e.type : 'custom'}`}>{e.type}</span>
              <span className="mono small log-seq">{e.seq ? `#${e.seq}` : ''}</span>
              <span className="log-text" title={logLine(e)}>
                {e.collection ? `${e.collection}/${e.id}` : ''} {Object.keys(e.data ?? {}).length ? <span className="muted">{JSON.stringify(e.data).slice(0, 90)}</span> : null}
              </span>
            </li>
          ))}
          {entries.length === 0 && <li className="muted">Nothing yet.</li>}
        </ol>
      </section>
    </>
  );
}
