// Layer: demo/pages. Customer ledgers: credits and debits with a running balance that updates
// live as bills are created, edited, deleted and paid anywhere. The ledger mirrors the bills: each
// bill has one debit (its total, kept in step by edits, removed with the bill) and a paid bill one
// payment credit; both name the bill (`bill_id`). Entries added here by hand have no bill.
import { useMemo, useState } from 'react';
import type { SyncDocument } from 'syncline';
import { useCollection, useSyncClient } from 'syncline/react';
import type { Bill, Customer, LedgerEntry } from '../model';
import { fmtDateTime, fmtMoney } from '../model';
import { PageHeader, Stat } from '../ui/bits';
import { useFlash, useLeaving } from '../ui/useFlash';
import { useToast } from '../ui/Toasts';
import { explain } from '../writes';

export function balanceOf(entries: readonly { fields: LedgerEntry }[]): number {
  return entries.reduce((s, e) => s + (e.fields.kind === 'credit' ? e.fields.amount : -e.fields.amount), 0);
}

/** Where a ledger line comes from: the bill it belongs to (its number; a bill this replica does
 * not hold, e.g. outside the selected branch, is named by the memo), or a manual entry. */
function billLabel(e: LedgerEntry, numbers: Map<string, string>): string | null {
  if (!e.bill_id) return null;
  return numbers.get(e.bill_id) ?? /INV-\d+/.exec(e.memo)?.[0] ?? e.bill_id;
}

/**
 * A customer's statement, oldest at the bottom, with the running balance (credits − debits). Each
 * line names its bill: a bill's debit and its payment credit carry `bill_id`. New and changed
 * lines flash, a line whose bill was deleted fades out, and a line the server has not confirmed
 * yet says "saving…" (not only paler).
 */
export function LedgerTable({ entries }: { entries: readonly SyncDocument<LedgerEntry>[] }) {
  const { data: bills } = useCollection<Bill>('bills');
  const numbers = useMemo(() => new Map(bills.map((b) => [b.id, b.fields.number])), [bills]);
  const flash = useFlash(entries);
  const { newestFirst, runs } = useMemo(() => {
    let run = 0;
    const runs = new Map<string, number>();
    for (const e of entries) {
      run += e.fields.kind === 'credit' ? e.fields.amount : -e.fields.amount;
      runs.set(e.id, run);
    }
    return { newestFirst: [...entries].reverse(), runs };
  }, [entries]);
  const rows = useLeaving('ledger_entries', newestFirst);
  return (
    <div className="table-wrap">
      <table className="table ledger-table" data-testid="ledger-table">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Memo</th>
            <th scope="col" className="num-col">
              Debit
            </th>
            <th scope="col" className="num-col">
              Credit
            </th>
            <th scope="col" className="num-col">
              Balance
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map(({ doc: e, leaving }) => {
            const run = runs.get(e.id);
            const bill = billLabel(e.fields, numbers);
            return (
              <tr
                key={e.id}
                data-id={e.id}
                data-bill-id={e.fields.bill_id}
                data-kind={e.fields.kind}
                className={`${leaving ? 'row-leaving' : flash(e.id)}${e.pending ? ' pending' : ''}`}
                aria-hidden={leaving || undefined}
              >
                <td className="muted">{fmtDateTime(e.fields.at)}</td>
                <td>
                  {e.fields.memo}
                  {bill && !e.fields.memo.includes(bill) && <span className="ledger-bill mono"> · {bill}</span>}
                  {e.pending && <span className="saving">saving…</span>}
                </td>
                <td className="num-col text-bad">{e.fields.kind === 'debit' ? fmtMoney(e.fields.amount) : ''}</td>
                <td className="num-col text-good">{e.fields.kind === 'credit' ? fmtMoney(e.fields.amount) : ''}</td>
                <td className={`num-col strong ${run !== undefined && run < 0 ? 'text-bad' : ''}`}>{run === undefined ? '' : fmtMoney(run)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function Ledger() {
  const client = useSyncClient();
  const toast = useToast();
  const { data: customers } = useCollection<Customer>('customers', { orderBy: 'name' });
  const { data: all } = useCollection<LedgerEntry>('ledger_entries', { orderBy: 'at' });
  const [sel, setSel] = useState<string | null>(null);
  const current = sel ?? customers[0]?.id ?? null;
  const entries = useMemo(() => all.filter((e) => e.fields.customer_id === current), [all, current]);
  const balances = useMemo(() => {
    const m = new Map<string, number>();
    for (const e of all) m.set(e.fields.customer_id, (m.get(e.fields.customer_id) ?? 0) + (e.fields.kind === 'credit' ? e.fields.amount : -e.fields.amount));
    return m;
  }, [all]);
  const [kind, setKind] = useState<'credit' | 'debit'>('credit');
  const [amount, setAmount] = useState('');
  const [memo, setMemo] = useState('');
  const c = customers.find((x) => x.id === current);
  const add = (e: React.FormEvent) => {
    e.preventDefault();
    const cents = Math.round(Number(amount) * 100);
    if (!c || !(cents > 0)) return;
    client
      .collection<LedgerEntry>('ledger_entries')
      .insert({ customer_id: c.id, customer_name: c.fields.name, kind, amount: cents, memo: memo || (kind === 'credit' ? 'Payment received' : 'Manual charge'), at: Date.now() })
      .catch((err) => toast({ tone: 'danger', title: 'Entry refused', body: explain(err) }));
    setAmount('');
    setMemo('');
  };
  const bal = balanceOf(entries);
  return (
    <>
      <PageHeader title="Ledger" subtitle="Credits, debits and running balances per customer" />
      <div className="ledger-layout">
        <nav className="card customer-list" aria-label="Customers">
          <ul>
            {customers.map((x) => {
              const b = balances.get(x.id) ?? 0;
              return (
                <li key={x.id}>
                  <button className={x.id === current ? 'on' : ''} aria-current={x.id === current} onClick={() => setSel(x.id)}>
                    <span>
                      <strong>{x.fields.name}</strong>
                      <span className="muted small">{x.fields.company}</span>
                    </span>
                    <span className={b < 0 ? 'text-bad' : 'text-good'}>{fmtMoney(b)}</span>
                  </button>
                </li>
              );
            })}
          </ul>
        </nav>
        <div className="ledger-main">
          <section className="stats stats-3">
            <Stat label="Balance" value={bal} format={fmtMoney} tone={bal < 0 ? 'bad' : 'good'} />
            <Stat label="Debits" value={entries.filter((e) => e.fields.kind === 'debit').reduce((s, e) => s + e.fields.amount, 0)} format={fmtMoney} />
            <Stat label="Credits" value={entries.filter((e) => e.fields.kind === 'credit').reduce((s, e) => s + e.fields.amount, 0)} format={fmtMoney} />
          </section>
          <form className="card form form-inline" onSubmit={add} aria-label="Add ledger entry">
            <label className="field">
              <span>Type</span>
              <select value={kind} onChange={(e) => setKind(e.target.value as 'credit' | 'debit')}>
                <option value="credit">Credit (payment)</option>
                <option value="debit">Debit (charge)</option>
              </select>
            </label>
            <label className="field">
              <span>Amount (€)</span>
              <input type="number" min="0.01" step="0.01" value={amount} onChange={(e) => setAmount(e.target.value)} required />
            </label>
            <label className="field grow">
              <span>Memo</span>
              <input value={memo} onChange={(e) => setMemo(e.target.value)} placeholder="Optional" />
            </label>
            <button className="btn" type="submit">
              Add entry
            </button>
          </form>
          <div className="card table-card">
            <LedgerTable entries={entries} />
          </div>
        </div>
      </div>
    </>
  );
}
