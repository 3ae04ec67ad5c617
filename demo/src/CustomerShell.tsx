// Layer: demo. The customer panel. The server's read rules scope every collection to this
// customer (`customer_id=eq.{sub}`), so the replica only ever holds their own bills, orders,
// bookings and ledger; nothing is filtered in the browser.
import { useCollection } from 'syncline/react';
import { Logo } from './App';
import type { Bill, LedgerEntry, Order } from './model';
import { fmtDate, fmtMoney, ORDER_STAGES, relTime } from './model';
import { navigate, usePath } from './router';
import { Availability } from './pages/Availability';
import { BookingCalendar } from './pages/Bookings';
import { balanceOf, LedgerTable } from './pages/Ledger';
import { Realtime } from './pages/Realtime';
import { ConnectionPill, InstallButton, OfflineBanner, UpdateBanner, UserChip } from './ui/Chrome';
import { Empty, PageHeader, Pill, Stat } from './ui/bits';
import { useFlash, useLeaving } from './ui/useFlash';
import { useLiveDocumentListener, useLiveEventListener } from './ui/useLiveOnly';
import { useToast } from './ui/Toasts';
import { useWorkspace } from './workspace';

const TABS = [
  { path: '/', label: 'My account' },
  { path: '/bookings', label: 'Book a hall' },
  { path: '/products', label: 'Products' },
  { path: '/realtime', label: 'Realtime lab' },
];

export function CustomerShell() {
  const path = usePath();
  const tab = TABS.find((t) => t.path === path) ?? TABS[0];
  return (
    <div className="app app-customer">
      <a href="#content" className="skip-link">
        Skip to content
      </a>
      <CustomerWatchers />
      <header className="topbar topbar-customer">
        <div className="brand">
          <Logo /> <span>syncline</span>
          <span className="brand-tag">customer</span>
        </div>
        <nav aria-label="Main" className="tabs">
          {TABS.map((t) => (
            <a
              key={t.path}
              href={t.path}
              className={t === tab ? 'active' : ''}
              aria-current={t === tab ? 'page' : undefined}
              onClick={(e) => {
                e.preventDefault();
                navigate(t.path);
              }}
            >
              {t.label}
            </a>
          ))}
        </nav>
        <div className="topbar-right">
          <InstallButton />
          <ConnectionPill />
          <UserChip />
        </div>
      </header>
      <UpdateBanner />
      <OfflineBanner />
      <main id="content" tabIndex={-1} className="customer-main">
        {tab.path === '/' ? <Account /> : tab.path === '/bookings' ? <CustomerBookings /> : tab.path === '/products' ? <Availability /> : <Realtime />}
      </main>
    </div>
  );
}

/** Toasts for what changes while the customer watches: bills issued, edited, cancelled and paid,
 * and order stage changes. Only live changes (useLiveOnly): the bills that are already there at
 * sign-in, or that the client catches up on when it starts, never toast. */
function CustomerWatchers() {
  const toast = useToast();
  useLiveDocumentListener<Bill>('bills', (e) => {
    const a = e.after;
    const b = e.before;
    if (e.type === 'appear' && a) {
      toast({ tone: 'info', kind: 'new-bill', title: `New bill ${a.number}`, body: `${fmtMoney(a.total)} · due ${fmtDate(a.due_at)}` }, 8000);
    } else if (e.type === 'disappear' && b) {
      toast({ tone: 'warning', kind: 'bill-deleted', title: `Bill ${b.number} was cancelled`, body: `${fmtMoney(b.total)} is no longer due; it is off your statement.` }, 8000);
    } else if (e.type === 'update' && a && b) {
      if (b.status !== 'paid' && a.status === 'paid') {
        toast({ tone: 'success', kind: 'bill-paid', title: `Payment received for ${a.number}`, body: fmtMoney(a.total) });
      } else if (a.total !== b.total || a.due_at !== b.due_at || JSON.stringify(a.items) !== JSON.stringify(b.items)) {
        const what = [
          a.total !== b.total ? `total ${fmtMoney(a.total)} (was ${fmtMoney(b.total)})` : '',
          a.due_at !== b.due_at ? `due ${fmtDate(a.due_at)} (was ${fmtDate(b.due_at)})` : '',
        ].filter(Boolean);
        toast({ tone: 'info', kind: 'bill-updated', title: `Bill ${a.number} was updated`, body: what.length ? `Now ${what.join(', ')}.` : 'Its line items changed.' }, 8000);
      }
    }
  });
  useLiveEventListener('order:stage_change', (e) => {
    const d = e.data as { number?: string; to?: string };
    toast({ tone: 'info', kind: 'order-stage', title: `Your order ${d.number} is ${d.to}`, body: 'Updated just now' });
  });
  return null;
}

function Account() {
  const { session } = useWorkspace();
  const { data: bills } = useCollection<Bill>('bills', { orderBy: 'created_at.desc' });
  const { data: orders } = useCollection<Order>('orders', { orderBy: 'updated_at.desc' });
  const { data: ledger } = useCollection<LedgerEntry>('ledger_entries', { orderBy: 'at' });
  const flash = useFlash(bills);
  const billRows = useLeaving('bills', bills);
  const oflash = useFlash(orders);
  const paid = bills.filter((b) => b.fields.status === 'paid');
  const open = bills.filter((b) => b.fields.status !== 'paid');
  const sum = (l: typeof bills) => l.reduce((s, b) => s + b.fields.total, 0);
  const overdue = open.filter((b) => b.fields.due_at < Date.now());
  return (
    <>
      <PageHeader title={`Hello, ${session.name.split(' ')[0]}`} subtitle="Your bills, orders and account, live. Only your own data ever reaches this device." />
      <section className="stats stats-4" aria-label="Spending">
        <Stat label="Outstanding" value={sum(open)} format={fmtMoney} hint={`${open.length} open · ${overdue.length} overdue`} tone={overdue.length ? 'bad' : 'warn'} testId="cust-outstanding" />
        <Stat label="Paid" value={sum(paid)} format={fmtMoney} hint={`${paid.length} bills`} tone="good" testId="cust-paid" />
        <Stat label="Total spend" value={sum(bills)} format={fmtMoney} hint={`${bills.length} bills`} tone="brand" testId="cust-total" />
        <Stat label="Account balance" value={balanceOf(ledger)} format={fmtMoney} hint="payments − bills" testId="cust-balance" />
      </section>
      <div className="grid-2 grid-2-wide">
        <section className="card table-card" aria-labelledby="mybills-h">
          <div className="card-head">
            <h2 id="mybills-h">My bills</h2>
          </div>
          {billRows.length === 0 ? (
            <Empty>No bills yet.</Empty>
          ) : (
            <div className="table-wrap">
              <table className="table" data-testid="my-bills">
                <thead>
                  <tr>
                    <th scope="col">Bill</th>
                    <th scope="col">Issued</th>
                    <th scope="col" className="hide-sm">
                      Due
                    </th>
                    <th scope="col" className="num-col">
                      Total
                    </th>
                    <th scope="col">Status</th>
                  </tr>
                </thead>
                <tbody>
                  {billRows.map(({ doc: b, leaving }) => (
                    <tr key={b.id} data-id={b.id} data-number={b.fields.number} className={leaving ? 'row-leaving' : flash(b.id)} aria-hidden={leaving || undefined}>
                      <td className="mono">{b.fields.number}</td>
                      <td>{fmtDate(b.fields.created_at)}</td>
                      <td className="hide-sm">{fmtDate(b.fields.due_at)}</td>
                      <td className="num-col">{fmtMoney(b.fields.total)}</td>
                      <td>
                        {b.fields.status === 'paid' ? (
                          <Pill tone="good">paid</Pill>
                        ) : b.fields.due_at < Date.now() ? (
                          <Pill tone="bad">overdue</Pill>
                        ) : (
                          <Pill tone="warn">due</Pill>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <section className="card" aria-labelledby="myorders-h">
          <h2 id="myorders-h">My orders</h2>
          {orders.length === 0 ? (
            <Empty>No orders yet.</Empty>
          ) : (
            <ul className="order-progress">
              {orders.map((o) => {
                const i = ORDER_STAGES.indexOf(o.fields.stage);
                return (
                  <li key={o.id} className={oflash(o.id)} data-id={o.id}>
                    <div className="order-top">
                      <strong className="mono">{o.fields.number}</strong>
                      <span>{fmtMoney(o.fields.total)}</span>
                    </div>
                    <div className="muted small">
                      {o.fields.summary} · updated {relTime(o.fields.updated_at)}
                    </div>
                    <ol className="steps" aria-label={`Stage: ${o.fields.stage}`}>
                      {ORDER_STAGES.map((s, k) => (
                        <li key={s} className={k < i ? 'done' : k === i ? 'now' : ''}>
                          <span>{s}</span>
                        </li>
                      ))}
                    </ol>
                  </li>
                );
              })}
            </ul>
          )}
        </section>
      </div>
      <section className="card table-card" aria-labelledby="myledger-h">
        <div className="card-head">
          <h2 id="myledger-h">Account statement</h2>
        </div>
        <LedgerTable entries={ledger} />
      </section>
    </>
  );
}

function CustomerBookings() {
  return (
    <>
      <PageHeader title="Book a hall" subtitle="Pick a day, choose a free slot. If someone else holds it, the server says so." />
      <BookingCalendar />
    </>
  );
}
