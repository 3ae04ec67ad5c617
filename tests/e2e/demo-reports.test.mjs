// The demo's Reports page end to end in Chromium against the real server serving demo/dist: a live
// SQL report (syncline/sqlite, SQLite in the page's worker on OPFS) of revenue per month and branch
// joined with the customers. It matches the server's data, and when an admin in another window marks
// a bill paid or deletes one, the report in this window follows, and agrees with the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitUntil } from './helpers.mjs';
import { openAs, snapshot, openDemo, closeDemo, shot } from './demo-helpers.mjs';

// The seeded server, chromium and the admin's token, for the whole file.
let demo;
before(async () => {
  demo = await openDemo();
});
after(() => closeDemo(demo));

const monthOf = (ms) => new Date(ms).toISOString().slice(0, 7);
const key = (month, branch) => `${month}|${branch}`;

/** The report computed in Node from the server's documents: per month (UTC) and branch. */
async function expectedReport() {
  const [bills, customers] = await Promise.all(['bills', 'customers'].map((c) => snapshot(demo.server, demo.adminToken, c)));
  const company = new Map(customers.map((c) => [c.id, c.fields.company]));
  const rows = new Map();
  for (const b of bills) {
    if (!company.has(b.fields.customer_id)) continue;
    const k = key(monthOf(b.fields.created_at), b.fields.branch);
    const r = rows.get(k) ?? { bills: 0, revenue: 0, paid: 0 };
    r.bills += 1;
    r.revenue += b.fields.total;
    if (b.fields.status === 'paid') r.paid += b.fields.total;
    rows.set(k, r);
  }
  return { bills, rows: Object.fromEntries([...rows].sort()) };
}

/** The report as the page shows it, keyed like expectedReport's. */
function shownReport(page) {
  return page.$$eval('[data-testid="report-table"] tbody tr', (trs) => {
    const out = {};
    for (const tr of trs) {
      const num = (id) => Number(tr.querySelector(`[data-testid="${id}"]`).dataset.value ?? tr.querySelector(`[data-testid="${id}"]`).textContent);
      out[`${tr.dataset.month}|${tr.dataset.branch}`] = { bills: num('report-bills'), revenue: num('report-revenue'), paid: num('report-paid') };
    }
    return Object.fromEntries(Object.entries(out).sort());
  });
}

async function showsReport(page, want, what) {
  const same = async () => {
    const shown = await shownReport(page);
    return JSON.stringify(shown) === JSON.stringify(want) ? shown : null;
  };
  return waitUntil(same, { what, timeout: 20000 }).catch(async (e) => {
    assert.deepEqual(await shownReport(page), want, `${what}: ${e.message.slice(0, 80)}`);
  });
}

test('Reports: live SQL revenue per month and branch; a bill paid or deleted in another window changes it', async () => {
  const { server, chrome } = demo;
  const viewport = { width: 1440, height: 900 };
  const ctxA = await chrome.browser.newContext({ viewport });
  const ctxB = await chrome.browser.newContext({ viewport });
  try {
    const a = await openAs(ctxA, server, 'admin-maya', '/reports');
    await a.waitForSelector('[data-testid="report-table"] tbody tr', { timeout: 20000 });
    assert.equal(await a.textContent('[data-testid="report-storage"]'), 'SQLite in OPFS');
    const start = await expectedReport();
    assert.ok(Object.keys(start.rows).length >= 2, 'the seed spans several months or branches');
    await showsReport(a, start.rows, 'the report as the server has the data');
    await shot(a, 'admin-reports');

    // Window B pays an unpaid bill on the Bills page.
    const bill = start.bills.filter((x) => x.fields.status === 'unpaid').sort((x, y) => y.fields.created_at - x.fields.created_at)[0];
    const k = key(monthOf(bill.fields.created_at), bill.fields.branch);
    const b = await openAs(ctxB, server, 'admin-maya', '/bills');
    const row = `[data-testid="bills-table"] tr[data-id="${bill.id}"]`;
    await b.click(`${row} button[aria-label="Mark ${bill.fields.number} paid"]`);
    const paid = structuredClone(start.rows);
    paid[k].paid += bill.fields.total;
    await showsReport(a, paid, `window A's report with ${bill.fields.number} paid`);
    assert.deepEqual((await expectedReport()).rows, paid, 'and the server agrees');

    // Window B deletes another unpaid bill (Edit, Delete bill, confirm): revenue and count drop.
    const gone = start.bills.filter((x) => x.fields.status === 'unpaid' && x.id !== bill.id)[0];
    const gk = key(monthOf(gone.fields.created_at), gone.fields.branch);
    await b.click(`[data-testid="bills-table"] tr[data-id="${gone.id}"] button[aria-label="Edit ${gone.fields.number}"]`);
    await b.click('[data-testid="delete-bill"]');
    await b.click('[data-testid="confirm-delete"]');
    const deleted = structuredClone(paid);
    deleted[gk].bills -= 1;
    deleted[gk].revenue -= gone.fields.total;
    if (deleted[gk].bills === 0) delete deleted[gk];
    await showsReport(a, deleted, `window A's report without ${gone.fields.number}`);
    assert.deepEqual((await expectedReport()).rows, deleted, 'and the server agrees');
    for (const p of [a, b]) assert.deepEqual(p.errors.map(String), []);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
