// Layer: demo/pages. Hall bookings: halls × the next 14 days, three slots a day, colour-coded
// occupancy. The client never checks for double bookings: the server's unique constraint on
// (hall, date, slot) refuses the second one, the optimistic booking rolls back, and the panel
// says why. Admins and customers (their own bookings) may cancel a booking, after a confirmation:
// a conditional delete, so it happens once; every other panel sees the slot free at once (colour
// and text of the cell). Used by admins (all bookings) and customers (only their own are visible
// to them). The calendar scrolls inside its card with the hall names kept in view.
import { useMemo, useRef, useState } from 'react';
import { useCollection, useDocumentListener, useSyncClient } from 'syncline/react';
import type { Booking, Customer } from '../model';
import { branchName, HALLS, isoDay, SLOTS, startOfToday } from '../model';
import { PageHeader } from '../ui/bits';
import { useToast } from '../ui/Toasts';
import { useWorkspace } from '../workspace';
import { bookingLabel, cancelBooking, createBooking, explain, ownBookingWrites, refusalKind } from '../writes';
import { useTimedMarks } from '../ui/useTimedMarks';

const DAY = 86400000;

export function Bookings() {
  return (
    <>
      <PageHeader title="Bookings" subtitle="Halls × days · free, partly booked and full at a glance" />
      <BookingCalendar />
    </>
  );
}

export function BookingCalendar() {
  const { branch, session } = useWorkspace();
  const admin = session.role === 'admin';
  const { data: bookings } = useCollection<Booking>('bookings');
  const days = useMemo(() => Array.from({ length: 14 }, (_, i) => startOfToday() + i * DAY), []);
  const halls = HALLS.filter((h) => branch === 'all' || h.branch === branch);
  const index = useMemo(() => {
    const m = new Map<string, (typeof bookings)[number][]>();
    for (const b of bookings) {
      const k = `${b.fields.hall}|${b.fields.date}`;
      m.set(k, [...(m.get(k) ?? []), b]);
    }
    return m;
  }, [bookings]);
  const [sel, setSel] = useState<{ hall: string; date: string } | null>(null);
  // Bookings the server has confirmed, as this window saw them: only those can be "cancelled" (an
  // optimistic insert that the server refused also disappears, in every tab that showed it).
  const confirmed = useRef(new Set<string>());
  for (const b of bookings) if (!b.pending) confirmed.current.add(b.id);
  const changed = useCellFlash(confirmed.current);
  return (
    <div className="booking-layout">
      <div className="card calendar-card">
        <div className="legend" aria-hidden="true">
          <span className="lg lg-free" /> Free <span className="lg lg-partly" /> Partly booked (n/3) <span className="lg lg-full" /> Full
        </div>
        <div className="calendar-scroll" data-scroll-x>
          <table className="calendar" data-testid="calendar">
            <caption className="visually-hidden">Hall occupancy for the next 14 days</caption>
            <thead>
              <tr>
                <th scope="col">Hall</th>
                {days.map((d) => {
                  const dt = new Date(d);
                  return (
                    <th scope="col" key={d} className={dt.getDay() === 0 || dt.getDay() === 6 ? 'weekend' : ''}>
                      <span className="cal-dow">{dt.toLocaleDateString('en-GB', { weekday: 'short' })}</span>
                      <span className="cal-day">{dt.getDate()}</span>
                    </th>
                  );
                })}
              </tr>
            </thead>
            <tbody>
              {halls.map((h) => (
                <tr key={h.id}>
                  <th scope="row">
                    <span className="cell-title">{h.name}</span>
                    <span className="muted small">{branchName(h.branch)}</span>
                  </th>
                  {days.map((d) => {
                    const date = isoDay(d);
                    const list = index.get(`${h.id}|${date}`) ?? [];
                    const n = new Set(list.map((b) => b.fields.slot)).size;
                    const occ = n === 0 ? 'free' : n >= SLOTS.length ? 'full' : 'partly';
                    const isSel = sel?.hall === h.id && sel.date === date;
                    return (
                      <td key={d}>
                        <button
                          className={`cal-cell occ-${occ}${isSel ? ' selected' : ''}${changed(`${h.id}|${date}`)}`}
                          data-hall={h.id}
                          data-date={date}
                          data-occ={occ}
                          // Which slots are taken, drawn as three dots under the text (CSS ::after).
                          style={Object.fromEntries(SLOTS.map((_, s) => [`--d${s}`, list.some((b) => b.fields.slot === s) ? 'rgba(0, 0, 0, 0.65)' : 'rgba(0, 0, 0, 0.15)'])) as React.CSSProperties}
                          aria-pressed={isSel}
                          aria-label={`${h.name}, ${new Date(d).toLocaleDateString('en-GB', { weekday: 'long', day: 'numeric', month: 'long' })}: ${n} of ${SLOTS.length} slots booked${admin ? '' : ' by you'}`}
                          onClick={() => setSel({ hall: h.id, date })}
                        >
                          {/* Text as well as colour: Free, 1/3, 2/3, Full. */}
                          <span className="cal-text" aria-hidden="true">
                            {occ === 'free' ? 'Free' : occ === 'full' ? 'Full' : `${n}/${SLOTS.length}`}
                          </span>

                        </button>
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {!admin && <p className="muted small calendar-note">You see your own bookings. Slots held by others look free to you; the server refuses them when you try.</p>}
      </div>
      <SlotPanel sel={sel} bookings={sel ? (index.get(`${sel.hall}|${sel.date}`) ?? []) : []} />
    </div>
  );
}

/** Cells whose bookings changed (a booking made or cancelled here or anywhere else) flash for a
 * moment; a booking cancelled elsewhere is also announced. */
function useCellFlash(confirmed: ReadonlySet<string>): (key: string) => string {
  const toast = useToast();
  const { session } = useWorkspace();
  const [keys, mark] = useTimedMarks<true>(2400);
  useDocumentListener<Booking>(
    'bookings',
    (e) => {
      const b = e.after ?? e.before;
      if (!b) return;
      mark({ [`${b.hall}|${b.date}`]: true });
      // Cancelled elsewhere (another window, another person): this window did not ask for it.
      if (e.type === 'disappear' && e.before && !e.pending && confirmed.has(e.id) && !ownBookingWrites.has(e.id)) {
        const mine = session.role !== 'admin';
        toast({ tone: 'info', kind: 'booking-cancelled-elsewhere', title: mine ? 'Your booking was cancelled' : 'Booking cancelled', body: `${bookingLabel(e.before)}${mine ? '' : ` (${e.before.customer_name})`}: the slot is free again.` }, 6000);
      }
    },
    { types: ['appear', 'disappear'] },
  );
  return (key) => (keys[key] ? ' cal-changed' : '');
}

function SlotPanel({ sel, bookings }: { sel: { hall: string; date: string } | null; bookings: readonly { id: string; pending?: boolean; fields: Booking }[] }) {
  const client = useSyncClient();
  const toast = useToast();
  const { session } = useWorkspace();
  const admin = session.role === 'admin';
  const { data: customers } = useCollection<Customer>('customers', { orderBy: 'name' });
  const [slot, setSlot] = useState<number | null>(null);
  const [title, setTitle] = useState('');
  const [customerId, setCustomerId] = useState(admin ? '' : session.sub);
  // 'pending': sent (or queued offline), no verdict yet; never shown as a success.
  const [result, setResult] = useState<{ tone: 'ok' | 'pending' | 'error'; text: string } | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  if (!sel)
    return (
      <aside className="card slot-panel" aria-label="Day details">
        <h2>Pick a day</h2>
        <p className="muted">Select a cell in the calendar to see its slots and book one.</p>
      </aside>
    );
  const hall = HALLS.find((h) => h.id === sel.hall)!;
  const book = (e: React.FormEvent) => {
    e.preventDefault();
    if (slot === null) return;
    const c = customers.find((x) => x.id === customerId);
    const w = createBooking(client, {
      hall: hall.id,
      branch: hall.branch,
      date: sel.date,
      slot,
      customer_id: customerId,
      customer_name: c?.fields.name ?? session.name,
      title: title || 'Booking',
    });
    const what = bookingLabel({ hall: hall.id, date: sel.date, slot });
    setResult({ tone: 'pending', text: `Waiting for the server to confirm ${what}…${client.status.connection === 'connected' ? '' : ' (offline: it is sent when the connection is back)'}` });
    w.then(
      () => {
        setResult({ tone: 'ok', text: `Booked: ${what}.` });
        toast({ tone: 'success', kind: 'booking-confirmed', title: 'Booking confirmed', body: what }, 3500);
      },
      (err) => setResult({ tone: 'error', text: `${what} could not be booked. ${explain(err)}` }),
    );
    setSlot(null);
    setTitle('');
  };
  // A conditional delete (writes.ts): a second cancel, here or in another window, is refused
  // with `conflict` and changes nothing.
  const cancel = (id: string, s: number) => {
    const what = bookingLabel({ hall: hall.id, date: sel.date, slot: s });
    setConfirming(null);
    const w = cancelBooking(client, id);
    if (!w) return;
    setResult({ tone: 'pending', text: `Cancelling ${what}: waiting for the server…` });
    w.then(
      () => {
        setResult({ tone: 'ok', text: `Cancelled: ${what}. The slot is free again.` });
        toast({ tone: 'success', kind: 'booking-cancelled', title: 'Booking cancelled', body: `${what}: the slot is free again.` }, 4500);
      },
      (err) => {
        setResult({ tone: 'error', text: `${what}: ${explain(err, client)}` });
        // Also as a toast: the refusal may come long after (offline), on another page.
        toast({ tone: 'warning', kind: refusalKind(err), title: 'Booking not cancelled', body: `${what}: ${explain(err, client)}` }, 9000);
      },
    );
  };
  return (
    <aside className="card slot-panel" aria-labelledby="slot-h">
      <h2 id="slot-h">
        {hall.name} <span className="muted">· {new Date(sel.date + 'T12:00').toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' })}</span>
      </h2>
      <ul className="slots">
        {SLOTS.map((name, s) => {
          const b = bookings.find((x) => x.fields.slot === s);
          return (
            <li key={s} className={b ? `slot taken${b.pending ? ' slot-pending' : ''}` : 'slot'} data-slot-row={s}>
              <span className="slot-name">{name}</span>
              {b && confirming === b.id ? (
                // The confirmation: a cancel frees the slot for anyone, so ask first.
                <span className="slot-confirm" role="group" aria-label={`Cancel the ${name.toLowerCase()} booking?`}>
                  <span className="small">Cancel “{b.fields.title}”?</span>
                  <span className="slot-confirm-actions">
                    <button className="btn btn-sm btn-danger" onClick={() => cancel(b.id, s)} data-confirm-cancel={s}>
                      Yes, cancel it
                    </button>
                    <button className="btn btn-sm btn-ghost" onClick={() => setConfirming(null)} data-keep={s}>
                      Keep
                    </button>
                  </span>
                </span>
              ) : b ? (
                <>
                  <span className="slot-info">
                    <strong>{b.fields.title}</strong>
                    <span className="muted small">{admin ? b.fields.customer_name : 'Your booking'}</span>
                    {b.pending && (
                      <span className="pill pill-warn slot-wait" data-testid="slot-pending">
                        waiting for server
                      </span>
                    )}
                  </span>
                  {(admin || b.fields.customer_id === session.sub) && !b.pending && (
                    <button className="btn btn-sm btn-ghost" onClick={() => setConfirming(b.id)} data-cancel-slot={s} aria-label={`Cancel the ${name.toLowerCase()} booking: ${b.fields.title}`}>
                      Cancel
                    </button>
                  )}
                </>
              ) : (
                <button className={`btn btn-sm ${slot === s ? '' : 'btn-ghost'}`} aria-pressed={slot === s} onClick={() => setSlot(s)} data-slot={s}>
                  {slot === s ? 'Selected' : 'Book'}
                </button>
              )}
            </li>
          );
        })}
      </ul>
      {slot !== null && (
        <form className="form" onSubmit={book} data-testid="booking-form">
          {admin && (
            <label className="field">
              <span>Customer</span>
              <select value={customerId} onChange={(e) => setCustomerId(e.target.value)} required>
                <option value="">Choose…</option>
                {customers.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.fields.name}
                  </option>
                ))}
              </select>
            </label>
          )}
          <label className="field">
            <span>Event title</span>
            <input name="title" value={title} onChange={(e) => setTitle(e.target.value)} placeholder="e.g. Team offsite" />
          </label>
          <button className="btn" type="submit" data-testid="confirm-booking">
            Book {SLOTS[slot].toLowerCase()}
          </button>
        </form>
      )}
      {result && (
        <p
          className={result.tone === 'ok' ? 'form-ok' : result.tone === 'pending' ? 'form-pending' : 'form-error'}
          role={result.tone === 'error' ? 'alert' : 'status'}
          data-testid={`booking-${result.tone}`}
        >
          {result.tone === 'pending' && <span className="spinner" aria-hidden="true" />} {result.text}
        </p>
      )}
    </aside>
  );
}
