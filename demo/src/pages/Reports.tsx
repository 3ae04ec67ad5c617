// Layer: demo/pages. Monthly revenue per branch, joined with the customers: a live SQL report
// (syncline/sqlite, useSql) over the replica. It follows every bill change, from this tab,
// another window or the server, and pending writes show at once. The query is SQL the live
// queries of the engine cannot express: a join, a group-by over a computed month, and a window
// function for each month's top customer.
import { useEffect, useState } from 'react';
import { useSql } from 'syncline/react';
import type { SqlInfo } from 'syncline/sqlite';
import { branchName, fmtMoney } from '../model';
import { Empty, PageHeader } from '../ui/bits';
import { useWorkspace } from '../workspace';
import { useReportsDb } from '../reportsDb';

interface ReportRow {
  month: string;
  branch: string;
  bills: number;
  revenue: number;
  paid: number;
  customers: number;
  top_company: string;
  top_revenue: number;
  pending: number;
}

// Months in UTC (SQLite's 'unixepoch'), so every window and the server agree on a bill's month.
const MONTHLY = `
WITH per_customer AS (
  SELECT strftime('%Y-%m', b.created_at / 1000, 'unixepoch') AS month, b.branch AS branch, c.company AS company,
         count(*) AS bills, sum(b.total) AS revenue,
         sum(CASE WHEN b.status = 'paid' THEN b.total ELSE 0 END) AS paid,
         sum(b.pending) AS pending
    FROM bills b JOIN customers c ON c.id = b.customer_id
   WHERE :branch = 'all' OR b.branch = :branch
   GROUP BY month, b.branch, c.id
), ranked AS (
  SELECT *, row_number() OVER (PARTITION BY month, branch ORDER BY revenue DESC, company) AS place FROM per_customer
)
SELECT month, branch, sum(bills) AS bills, sum(revenue) AS revenue, sum(paid) AS paid, count(*) AS customers,
       max(CASE WHEN place = 1 THEN company END) AS top_company,
       max(CASE WHEN place = 1 THEN revenue END) AS top_revenue,
       sum(pending) AS pending
  FROM ranked
 GROUP BY month, branch
 ORDER BY month DESC, branch`;

const monthLabel = (ym: string) => new Date(`${ym}-01T00:00:00Z`).toLocaleDateString('en-GB', { month: 'short', year: 'numeric', timeZone: 'UTC' });

export function Reports() {
  const { branch } = useWorkspace();
  const db = useReportsDb();
  const [info, setInfo] = useState<SqlInfo | null>(db.info);
  useEffect(() => {
    let live = true;
    db.ready.then((i) => live && setInfo(i), () => {});
    return () => {
      live = false;
    };
  }, [db]);
  const { rows, error, isLoading } = useSql<ReportRow>(MONTHLY, { ':branch': branch });
  const where = info ? (info.storage === 'opfs' ? 'SQLite in OPFS' : `SQLite in memory${info.fallbackReason ? ` (${info.fallbackReason})` : ''}`) : 'starting SQLite…';
  return (
    <>
      <PageHeader
        title="Reports"
        subtitle={
          <>
            Monthly revenue per branch, live SQL over the replica ·{' '}
            <span data-testid="report-storage">{where}</span>
          </>
        }
      />
      {error ? (
        <div className="card" role="alert">
          <p>The report could not run: {error.message}</p>
        </div>
      ) : isLoading ? (
        <p className="muted">Loading the report…</p>
      ) : rows.length === 0 ? (
        <Empty>No bills yet.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="table report-table" data-testid="report-table">
            <thead>
              <tr>
                <th scope="col">Month</th>
                <th scope="col">Branch</th>
                <th scope="col" className="num-col hide-sm">Bills</th>
                <th scope="col" className="num-col">Revenue</th>
                <th scope="col" className="num-col hide-sm">Paid</th>
                <th scope="col" className="num-col">Outstanding</th>
                <th scope="col" className="hide-md">Top customer</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={`${r.month}|${r.branch}`} data-month={r.month} data-branch={r.branch} className={r.pending ? 'pending' : undefined}>
                  <td className="nowrap">{monthLabel(r.month)}</td>
                  <td>{branchName(r.branch)}</td>
                  <td className="num-col hide-sm" data-testid="report-bills">{r.bills}</td>
                  <td className="num-col" data-testid="report-revenue" data-value={r.revenue}>{fmtMoney(r.revenue)}</td>
                  <td className="num-col hide-sm" data-testid="report-paid" data-value={r.paid}>{fmtMoney(r.paid)}</td>
                  <td className="num-col" data-testid="report-outstanding" data-value={r.revenue - r.paid}>
                    {fmtMoney(r.revenue - r.paid)}
                    {r.pending > 0 && <span className="saving">saving…</span>}
                  </td>
                  <td className="hide-md">
                    {r.top_company} <span className="muted small">{fmtMoney(r.top_revenue)} · {r.customers} customers</span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
