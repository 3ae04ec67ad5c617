// Layer: demo/pages. The lead pipeline per branch: new → contacted → quoted → won / lost. Leads
// carry `branch`, so the branch selector narrows the subscription like every other page. Every
// move is conditional on the stage it leaves (writes.ts, moveLead): of two windows moving the
// same lead, the late one is refused and says "already moved". Lost needs a reason. A quoted lead
// converts into a booking in one transaction with its move to won: a taken slot refuses both.
import { useMemo, useState } from 'react';
import { useCollection, useDocumentListener, useSyncClient } from 'syncline/react';
import type { Booking, Lead, LeadStage } from '../model';
import { branchName, BRANCHES, fmtMoney, HALLS, isoDay, LEAD_STAGE_LABEL, LEAD_STAGES, LOST_REASONS, relTime, SLOTS, startOfToday } from '../model';
import { TAB_ID } from '../session';
import { Drawer } from '../ui/Drawer';
import { PageHeader } from '../ui/bits';
import { useFlash } from '../ui/useFlash';
import { useToast } from '../ui/Toasts';
import { useWorkspace } from '../workspace';
import { bookingLabel, convertLead, createLead, explain, moveLead, refusalKind } from '../writes';

const DAY = 86400000;
const NEXT: Partial<Record<LeadStage, LeadStage>> = { new: 'contacted', contacted: 'quoted' };

type Notice = { tone: 'ok' | 'error'; text: string } | null;

export function Leads() {
  const client = useSyncClient();
  const toast = useToast();
  const { session, branch } = useWorkspace();
  const { data } = useCollection<Lead>('leads', { orderBy: 'updated_at.desc' });
  const { data: bookings } = useCollection<Booking>('bookings');
  const flash = useFlash(data);
  const [losing, setLosing] = useState<string | null>(null);
  const [converting, setConverting] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const [notice, setNotice] = useState<Notice>(null);

  // Moves made in other windows (or by other admins), announced once the server applied them.
  useDocumentListener<Lead>(
    'leads',
    (e) => {
      const a = e.after;
      const b = e.before;
      if (!a || !b || a.stage === b.stage || a.moved_tab === TAB_ID) return;
      toast({ tone: 'info', kind: 'lead-moved', title: `${a.name} moved to ${LEAD_STAGE_LABEL[a.stage]}`, body: `${branchName(a.branch)} · by ${a.moved_by ?? 'someone'} in another window` }, 6000);
    },
    { types: ['update'], includePending: false },
  );

  const refused = (name: string, title: string, say?: (err: unknown) => string | null) => (err: unknown) => {
    const text = say?.(err) ?? `${name}: ${explain(err, client)}`;
    setNotice({ tone: 'error', text });
    toast({ tone: 'warning', kind: refusalKind(err), title, body: text }, 9000);
  };

  const move = (l: { id: string; fields: Lead }, to: LeadStage, reason?: string) => {
    const w = moveLead(client, l.id, to, session.name, { reason });
    setNotice(null);
    w?.then(
      () => undefined,
      refused(l.fields.name, 'Lead not moved'),
    );
  };

  const open = data.filter((l) => l.fields.stage !== 'won' && l.fields.stage !== 'lost');
  const pipelineValue = open.reduce((s, l) => s + (l.fields.value || 0), 0);
  const bookingOf = (id?: string) => (id ? bookings.find((b) => b.id === id) : undefined);

  return (
    <>
      <PageHeader
        title="Leads"
        subtitle={
          <>
            {open.length} open {open.length === 1 ? 'lead' : 'leads'} {branch === 'all' ? 'across all branches' : `at ${branchName(branch)}`} · {fmtMoney(pipelineValue)} in the pipeline
          </>
        }
        actions={
          <button className="btn" onClick={() => setAdding(true)} data-testid="new-lead">
            + New lead
          </button>
        }
      />
      {notice && (
        <p className={notice.tone === 'ok' ? 'form-ok' : 'form-error'} role={notice.tone === 'ok' ? 'status' : 'alert'} data-testid={notice.tone === 'ok' ? 'lead-ok' : 'lead-error'}>
          {notice.text}
        </p>
      )}
      <div className="pipeline lead-board" data-testid="lead-board" data-scroll-x>
        {LEAD_STAGES.map((stage) => {
          const col = data.filter((l) => l.fields.stage === stage);
          return (
            <section key={stage} className={`lane lead-lane lane-lead-${stage}`} aria-labelledby={`lead-lane-${stage}`} data-stage={stage}>
              <h2 id={`lead-lane-${stage}`}>
                {LEAD_STAGE_LABEL[stage]} <span className="lane-count">{col.length}</span>
              </h2>
              <ul>
                {col.map((l) => {
                  const f = l.fields;
                  const nx = NEXT[f.stage];
                  const bk = bookingOf(f.booking_id);
                  return (
                    <li key={l.id} className={`order-card lead-card ${flash(l.id)}${l.pending ? ' pending' : ''}`} data-id={l.id} data-stage={f.stage}>
                      <div className="order-top">
                        <strong>{f.name}</strong>
                        <span>{fmtMoney(f.value)}</span>
                      </div>
                      <div className="muted small">
                        {f.company ? `${f.company} · ` : ''}
                        {branchName(f.branch)} · {relTime(f.updated_at)}
                        {l.pending && (
                          <span className="saving" data-testid="lead-saving">
                            saving…
                          </span>
                        )}
                      </div>
                      <div className="lead-interest">{f.interest}</div>
                      {f.stage === 'lost' && f.lost_reason && <div className="small text-bad">Lost: {f.lost_reason}</div>}
                      {f.stage === 'won' && f.booking_id && (
                        <div className="small text-good" data-testid="lead-booking">
                          Booked: {bk ? bookingLabel(bk.fields) : 'booking confirmed'}
                        </div>
                      )}
                      <div className="lead-actions">
                        {nx && (
                          <button className="btn btn-sm btn-ghost" onClick={() => move(l, nx)} data-move={nx} aria-label={`Move ${f.name} to ${LEAD_STAGE_LABEL[nx]}`}>
                            → {LEAD_STAGE_LABEL[nx]}
                          </button>
                        )}
                        {(f.stage === 'quoted' || (f.stage === 'won' && !f.booking_id)) && (
                          <button className="btn btn-sm" onClick={() => setConverting(l.id)} data-convert aria-label={`Convert ${f.name} into a booking`}>
                            Convert to booking
                          </button>
                        )}
                        {f.stage === 'quoted' && (
                          <button className="btn btn-sm btn-ghost" onClick={() => move(l, 'won')} data-move="won" aria-label={`Mark ${f.name} won without a booking`}>
                            Won
                          </button>
                        )}
                        {f.stage !== 'won' && f.stage !== 'lost' && (
                          <button className="btn btn-sm btn-ghost" onClick={() => setLosing(l.id)} data-move="lost" aria-label={`Mark ${f.name} lost`}>
                            Lost
                          </button>
                        )}
                        {f.stage === 'lost' && (
                          <button className="btn btn-sm btn-ghost" onClick={() => move(l, 'contacted')} data-move="contacted" aria-label={`Reopen ${f.name}`}>
                            Reopen
                          </button>
                        )}
                      </div>
                    </li>
                  );
                })}
              </ul>
            </section>
          );
        })}
      </div>
      {losing && (
        <LostDrawer
          lead={data.find((l) => l.id === losing)}
          onClose={() => setLosing(null)}
          onSubmit={(reason) => {
            const l = data.find((x) => x.id === losing);
            setLosing(null);
            if (l) move(l, 'lost', reason);
          }}
        />
      )}
      {converting && (
        <ConvertDrawer
          leadId={converting}
          bookings={bookings}
          onClose={() => setConverting(null)}
          onDone={(n) => setNotice(n)}
          onRefused={refused}
        />
      )}
      {adding && <NewLeadDrawer onClose={() => setAdding(false)} />}
    </>
  );
}

function LostDrawer({ lead, onClose, onSubmit }: { lead?: { id: string; fields: Lead }; onClose: () => void; onSubmit: (reason: string) => void }) {
  const [reason, setReason] = useState('');
  const [other, setOther] = useState('');
  if (!lead) return null;
  const text = reason === 'Other' ? other.trim() : reason;
  return (
    <Drawer title={`Mark lost · ${lead.fields.name}`} onClose={onClose}>
      <form
        className="form"
        data-testid="lost-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (text) onSubmit(text);
        }}
      >
        <p className="muted">A lost lead needs a reason: it is what the pipeline learns from.</p>
        <label className="field">
          <span>Reason</span>
          <select name="reason" value={reason} onChange={(e) => setReason(e.target.value)} required>
            <option value="">Choose…</option>
            {[...LOST_REASONS, 'Other'].map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        {reason === 'Other' && (
          <label className="field">
            <span>Say why</span>
            <input name="other" value={other} onChange={(e) => setOther(e.target.value)} required />
          </label>
        )}
        <div className="form-actions">
          <button type="button" className="btn btn-ghost" onClick={onClose}>
            Keep it open
          </button>
          <button type="submit" className="btn" disabled={!text} data-testid="confirm-lost">
            Mark lost
          </button>
        </div>
      </form>
    </Drawer>
  );
}

function ConvertDrawer({
  leadId,
  bookings,
  onClose,
  onDone,
  onRefused,
}: {
  leadId: string;
  bookings: readonly { id: string; fields: Booking }[];
  onClose: () => void;
  onDone: (n: Notice) => void;
  onRefused: (name: string, title: string, say?: (err: unknown) => string | null) => (err: unknown) => void;
}) {
  const client = useSyncClient();
  const toast = useToast();
  const { session } = useWorkspace();
  const lead = client.collection<Lead>('leads').get(leadId);
  const halls = HALLS.filter((h) => h.branch === lead?.fields.branch);
  const days = useMemo(() => Array.from({ length: 14 }, (_, i) => isoDay(startOfToday() + i * DAY)), []);
  const [hall, setHall] = useState<string>(lead?.fields.hall && halls.some((h) => h.id === lead.fields.hall) ? lead.fields.hall : (halls[0]?.id ?? ''));
  const [date, setDate] = useState(days[1]);
  const [slot, setSlot] = useState(0);
  const [title, setTitle] = useState(lead?.fields.interest ?? '');
  if (!lead) return null;
  const holder = bookings.find((b) => b.fields.hall === hall && b.fields.date === date && b.fields.slot === slot);
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const where = bookingLabel({ hall, date, slot });
    const from = LEAD_STAGE_LABEL[lead.fields.stage];
    const t = convertLead(client, leadId, { hall, date, slot, title }, session.name);
    onClose();
    if (!t) return;
    onDone(null);
    t.then(
      () => {
        onDone({ tone: 'ok', text: `${lead.fields.name} is won: booked ${where}.` });
        toast({ tone: 'success', kind: 'lead-converted', title: 'Lead converted', body: `${lead.fields.name}: booked ${where}.` }, 5000);
      },
      // A taken slot: say where, and that the lead stays where it was (nothing was recorded).
      onRefused(lead.fields.name, 'Lead not converted', (err) =>
        refusalKind(err) === 'slot-taken'
          ? `${lead.fields.name} was not converted: ${where} is already booked (the server allows one booking per hall, date and slot). Neither the booking nor the move was recorded; the lead stays in ${from}.`
          : null,
      ),
    );
  };
  return (
    <Drawer title={`Convert to booking · ${lead.fields.name}`} onClose={onClose}>
      <form className="form" onSubmit={submit} data-testid="convert-form">
        <p className="muted">
          {lead.fields.interest} · {branchName(lead.fields.branch)}. The booking and the lead's move to <strong>won</strong> are one transaction: if the slot is taken, neither happens.
        </p>
        <label className="field">
          <span>Hall</span>
          <select name="hall" value={hall} onChange={(e) => setHall(e.target.value)} required>
            {halls.map((h) => (
              <option key={h.id} value={h.id}>
                {h.name} ({h.seats} seats)
              </option>
            ))}
          </select>
        </label>
        <div className="field-row">
          <label className="field">
            <span>Date</span>
            <select name="date" value={date} onChange={(e) => setDate(e.target.value)}>
              {days.map((d) => (
                <option key={d} value={d}>
                  {new Date(d + 'T12:00').toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' })}
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            <span>Slot</span>
            <select name="slot" value={slot} onChange={(e) => setSlot(Number(e.target.value))}>
              {SLOTS.map((s, i) => (
                <option key={s} value={i}>
                  {s}
                </option>
              ))}
            </select>
          </label>
        </div>
        <p className={`small ${holder ? 'text-warn' : 'muted'}`} data-testid="convert-hint">
          {holder ? `Booked here already: ${holder.fields.title} (${holder.fields.customer_name}). The server will refuse it.` : 'Looks free in this window; the server decides when it commits.'}
        </p>
        <label className="field">
          <span>Event title</span>
          <input name="title" value={title} onChange={(e) => setTitle(e.target.value)} />
        </label>
        <div className="form-actions">
          <button type="button" className="btn btn-ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn" data-testid="confirm-convert">
            Book and mark won
          </button>
        </div>
      </form>
    </Drawer>
  );
}

function NewLeadDrawer({ onClose }: { onClose: () => void }) {
  const client = useSyncClient();
  const toast = useToast();
  const { branch } = useWorkspace();
  const [f, setF] = useState({ name: '', company: '', contact: '', branch: branch === 'all' ? 'north' : branch, interest: '', value: 1000 });
  const set = (k: keyof typeof f) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setF({ ...f, [k]: k === 'value' ? Number(e.target.value) || 0 : e.target.value });
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    createLead(client, { name: f.name, company: f.company || undefined, contact: f.contact, branch: f.branch, interest: f.interest || 'Hall booking', value: Math.round(f.value * 100) }).catch((err) =>
      toast({ tone: 'danger', title: 'Lead not saved', body: explain(err, client) }),
    );
    onClose();
  };
  return (
    <Drawer title="New lead" onClose={onClose}>
      <form className="form" onSubmit={submit} data-testid="lead-form">
        <label className="field">
          <span>Name</span>
          <input name="name" value={f.name} onChange={set('name')} required />
        </label>
        <label className="field">
          <span>Company (optional)</span>
          <input name="company" value={f.company} onChange={set('company')} />
        </label>
        <label className="field">
          <span>Email or phone</span>
          <input name="contact" value={f.contact} onChange={set('contact')} required />
        </label>
        <div className="field-row">
          <label className="field">
            <span>Branch</span>
            <select name="branch" value={f.branch} onChange={set('branch')}>
              {BRANCHES.map((b) => (
                <option key={b.id} value={b.id}>
                  {b.name}
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            <span>Estimated value (EUR)</span>
            <input name="value" type="number" min={0} value={f.value} onChange={set('value')} />
          </label>
        </div>
        <label className="field">
          <span>What they asked for</span>
          <input name="interest" value={f.interest} onChange={set('interest')} placeholder="e.g. Team offsite for 30" />
        </label>
        <div className="form-actions">
          <button type="button" className="btn btn-ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn" data-testid="save-lead">
            Add lead
          </button>
        </div>
      </form>
    </Drawer>
  );
}
