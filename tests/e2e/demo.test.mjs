// The realtime demo end to end in chromium against the real server serving demo/dist:
// admin and customer panels in separate browser contexts, cross-tab low-stock alerts, a double
// booking refused by the server's unique constraint, two admin windows racing for the last unit
// and paying the same bill (increments bounded at 0, conditional groups), and the PWA
// working with the server down.
// Writes docs/screenshots/*.png along the way when SYNCLINE_SHOTS=1 (npm run screenshots).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntil } from './helpers.mjs';
import { openAs, shot, demoToken, snapshot, metricValue, sleep, recordToasts, toasts, goTo, fillMovement, waitStock, startDemo, openDemo, closeDemo, isoDay } from './demo-helpers.mjs';

const DESKTOP = { width: 1440, height: 900 };
const PHONE = { width: 390, height: 844 };
let server;
let chrome;
let adminToken;

before(async () => ({ server, chrome, adminToken } = await openDemo()));
after(() => closeDemo({ server, chrome }));


test('admin creates a bill: its customer sees it live, the other customer never does', async () => {
  const adminCtx = await chrome.browser.newContext({ viewport: DESKTOP });
  const anaCtx = await chrome.browser.newContext({ viewport: DESKTOP });
  const benCtx = await chrome.browser.newContext({ viewport: DESKTOP });
  try {
    const admin = await openAs(adminCtx, server, 'admin-maya', '/bills');
    const ana = await openAs(anaCtx, server, 'cust-ana');
    const ben = await openAs(benCtx, server, 'cust-ben');
    await ana.waitForSelector('[data-testid="my-bills"] tbody tr');
    await ben.waitForSelector('[data-testid="my-bills"] tbody tr');
    const anaBefore = await ana.locator('[data-testid="my-bills"] tbody tr').count();

    // Create the bill through the form: one line item, two units.
    await admin.click('[data-testid="new-bill"]');
    await admin.selectOption('[data-testid="bill-form"] select[name="customer"]', 'cust-ana');
    await admin.selectOption('[data-testid="bill-form"] select[name="branch"]', 'north');
    await admin.selectOption('[data-testid="bill-form"] select[name="product-0"]', 'p-north-cof-esp');
    await admin.fill('[data-testid="bill-form"] input[name="qty-0"]', '2');
    await admin.click('[data-testid="save-bill"]');
    const row = admin.locator('[data-testid="bills-table"] tbody tr').first();
    const billId = await row.getAttribute('data-id');
    assert.ok(billId, 'the new bill is listed at once (optimistic)');
    await admin.waitForSelector('.toast:has-text("Bill saved on the server")');

    // Ana: the row and a toast, without reload.
    await ana.waitForSelector(`[data-testid="my-bills"] tr[data-id="${billId}"]`, { timeout: 10000 });
    await ana.waitForSelector('.toast[data-kind="new-bill"]');
    assert.equal(await ana.locator('[data-testid="my-bills"] tbody tr').count(), anaBefore + 1);

    // The server applied the whole batch: bill, stock decrement, stock transaction, ledger debit.
    const bills = await snapshot(server, adminToken, 'bills');
    const bill = bills.find((d) => d.id === billId);
    assert.equal(bill.fields.customer_id, 'cust-ana');
    assert.equal(bill.fields.total, 2 * 2450);
    const txs = await snapshot(server, adminToken, 'stock_transactions');
    assert.equal(txs.filter((t) => t.fields.bill_id === billId).length, 1);

    // Mark it paid: Ana sees the status change live.
    await admin.click(`[data-testid="bills-table"] tr[data-id="${billId}"] button:has-text("Mark paid")`);
    await ana.waitForSelector(`[data-testid="my-bills"] tr[data-id="${billId}"] .pill-good`, { timeout: 10000 });
    await ana.waitForSelector('.toast[data-kind="bill-paid"]');

    // Ben never receives it: not on screen, not in what the server lets his token read.
    await sleep(300);
    assert.equal(await ben.locator(`[data-testid="my-bills"] tr[data-id="${billId}"]`).count(), 0);
    const benToken = await demoToken(server, 'cust-ben', 'customer');
    const benBills = await snapshot(server, benToken, 'bills');
    assert.ok(benBills.length > 0 && benBills.every((b) => b.fields.customer_id === 'cust-ben'));
    assert.equal(await ben.locator('.toast[data-kind="new-bill"]').count(), 0);

    // Screenshots: the admin dashboard after the activity, the customer panel, phone widths.
    await admin.click('nav a[href="/"]');
    await admin.waitForSelector('[data-testid="activity"] li');
    await sleep(900);
    await shot(admin, 'admin-dashboard');
    await sleep(1500);
    await shot(ana, 'customer-panel');
    await ana.setViewportSize(PHONE);
    await sleep(300);
    await shot(ana, 'customer-panel-phone');
    await admin.setViewportSize(PHONE);
    await sleep(300);
    await shot(admin, 'admin-dashboard-phone');
    for (const p of [admin, ana, ben]) assert.deepEqual(p.errors.map(String), []);
  } finally {
    await adminCtx.close();
    await anaCtx.close();
    await benCtx.close();
  }
});

test('a sale that crosses the threshold raises the low-stock alert in another admin tab', async () => {
  const ctx = await chrome.browser.newContext({ viewport: DESKTOP });
  try {
    const products = await snapshot(server, adminToken, 'products');
    const p = products.find((x) => x.fields.stock >= x.fields.threshold && x.fields.stock - x.fields.threshold <= 6);
    assert.ok(p, 'the seed has a product just above its threshold');
    const qty = p.fields.stock - p.fields.threshold + 1;

    const seller = await openAs(ctx, server, 'admin-maya', '/inventory');
    const watcher = await ctx.newPage(); // second tab of the same browser: follows the leader tab
    watcher.errors = [];
    watcher.on('pageerror', (e) => watcher.errors.push(e));
    await watcher.goto(server.url + '/realtime');
    await watcher.waitForSelector('[data-testid="connection"][data-status="healthy"]');

    await seller.click(`[data-testid="inventory-table"] tr[data-id="${p.id}"] button:has-text("Move stock")`);
    await seller.check('[data-testid="movement-form"] input[value="sale"]');
    await seller.fill('[data-testid="movement-form"] input[name="qty"]', String(qty));
    await seller.click('[data-testid="save-movement"]');

    const toast = await watcher.waitForSelector('.toast[data-kind="low-stock"]', { timeout: 10000 });
    assert.match(await toast.textContent(), new RegExp(p.fields.name.replace(/[()]/g, '.')));
    const roles = [await seller.textContent('.sidebar-foot'), await watcher.textContent('[data-testid="tab-role"]')];
    assert.ok(roles.some((r) => /follower/i.test(r)), `one tab follows the other: ${roles}`);
    await shot(watcher, 'realtime-lab');

    // The branch selector narrows the subscription itself: the re-created client replicates
    // only Harbour's products (8 of 24), while customers (no branch) stay.
    await seller.selectOption('[data-testid="branch-select"]', 'harbour');
    await seller.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-testid="inventory-table"] tbody tr')];
      return rows.length === 8 && rows.every((r) => r.getAttribute('data-id').startsWith('p-harbour-'));
    }, null, { timeout: 15000 });
    const replicated = await seller.evaluate(() => new Promise((res) => {
      const req = indexedDB.databases ? indexedDB.databases() : Promise.resolve([]);
      req.then((dbs) => res(dbs.map((d) => d.name)));
    }));
    assert.ok(replicated.some((n) => /harbour/.test(n)), `a separate replica for the branch: ${replicated}`);
    await seller.selectOption('[data-testid="branch-select"]', 'all');
    assert.deepEqual([...seller.errors, ...watcher.errors].map(String), []);
  } finally {
    await ctx.close();
  }
});

test('a double booking is refused by the server and the user sees why', async () => {
  const ctx = await chrome.browser.newContext({ viewport: DESKTOP });
  try {
    // Ana holds tomorrow evening in the Main Hall (seed). Ben cannot see her booking: the slot
    // looks free to him, so only the server's unique constraint can stop him.
    const date = isoDay(Date.now() + 86400000);
    const ben = await openAs(ctx, server, 'cust-ben', '/bookings');
    await ben.click(`[data-testid="calendar"] button[data-hall="north-main"][data-date="${date}"]`);
    await ben.click('.slot-panel button[data-slot="2"]');
    await ben.fill('[data-testid="booking-form"] input[name="title"]', 'Okafor launch party');
    await ben.click('[data-testid="confirm-booking"]');
    const err = await ben.waitForSelector('[data-testid="booking-error"]', { timeout: 10000 });
    const text = await err.textContent();
    assert.match(text, /already holds this slot/);
    assert.match(text, /one booking per hall, date and slot/);
    // The optimistic booking was rolled back; the server still has Ana's.
    await ben.waitForSelector('.slot-panel li:nth-child(3) button[data-slot="2"]');
    const bookings = await snapshot(server, adminToken, 'bookings');
    const holders = bookings.filter((b) => b.fields.hall === 'north-main' && b.fields.date === date && b.fields.slot === 2);
    assert.deepEqual(holders.map((b) => b.fields.customer_id), ['cust-ana']);
    assert.deepEqual(ben.errors.map(String), []);
  } finally {
    await ctx.close();
  }
});

test('two admin windows sell the last unit at the same moment: stock ends at 0, one sale recorded, the other window says it is out of stock', async () => {
  const ctxA = await chrome.browser.newContext({ viewport: DESKTOP });
  const ctxB = await chrome.browser.newContext({ viewport: DESKTOP });
  try {
    await recordToasts(ctxA);
    await recordToasts(ctxB);
    const product = 'p-harbour-syr-cha';
    const start = (await snapshot(server, adminToken, 'products')).find((p) => p.id === product).fields.stock;
    const a = await openAs(ctxA, server, 'admin-maya', '/inventory');
    const b = await openAs(ctxB, server, 'admin-maya', '/inventory');

    // Bring the product to its last unit with a count correction made in window A.
    if (start !== 1) {
      await fillMovement(a, product, { kind: 'adjustment', qty: 1 - start, note: 'race setup' });
      await a.click('[data-testid="save-movement"]');
    }
    await waitStock(a, product, 1);
    await waitStock(b, product, 1);

    // Both windows fill a sale of 1 and submit at the same moment.
    const note = `last-unit-${Date.now()}`;
    await fillMovement(a, product, { kind: 'sale', qty: 1, note });
    await fillMovement(b, product, { kind: 'sale', qty: 1, note });
    await Promise.all([a.click('[data-testid="save-movement"]'), b.click('[data-testid="save-movement"]')]);

    // One window is told its sale went through (with the stock the server committed after it),
    // the other that the product is out of stock.
    const verdicts = await waitUntil(async () => {
      const v = await Promise.all(
        [a, b].map(async (p) => ({ ok: (await toasts(p, 'stock-recorded')).filter((t) => /Sale of 1 ×/.test(t.text)), out: await toasts(p, 'out-of-stock') })),
      );
      return v.every((x) => x.ok.length + x.out.length > 0) ? v : null;
    }, { what: 'a verdict toast in both windows' }).catch(async (e) => {
      throw new Error(`${e.message}; toasts: ${JSON.stringify(await Promise.all([a, b].map((p) => toasts(p))))}`);
    });
    const winner = verdicts.findIndex((v) => v.ok.length === 1);
    const loser = 1 - winner;
    assert.ok(winner >= 0, `one window recorded the sale: ${JSON.stringify(verdicts)}`);
    assert.equal(verdicts[winner].out.length, 0);
    assert.equal(verdicts[loser].ok.length, 0, 'the other sale was refused');
    assert.equal(verdicts[loser].out.length, 1);
    assert.match(verdicts[loser].out[0].text, /Out of stock: Chai syrup/);
    assert.match(verdicts[loser].out[0].text, /below 0/);
    assert.match(verdicts[winner].ok[0].text, /(?<!\d)0 bottles in stock after it/);

    // The server: stock 0 (not −1), and exactly one sale in the history.
    const stock = (await snapshot(server, adminToken, 'products')).find((p) => p.id === product).fields.stock;
    assert.equal(stock, 0);
    const sales = (await snapshot(server, adminToken, 'stock_transactions')).filter((t) => t.fields.note === note);
    assert.equal(sales.length, 1, 'exactly one sale recorded; the refused one left no history entry');
    assert.equal(sales[0].fields.qty, -1);
    assert.equal(sales[0].fields.kind, 'sale');
    assert.equal(sales[0].fields.stock_after, undefined, 'no stock-after computed on a client');

    // Both windows converge on 0; the loser's optimistic sale is gone from its view.
    await waitStock(a, product, 0);
    await waitStock(b, product, 0);

    // The stock history shows the stock-after the server committed, in both windows.
    for (const p of [a, b]) {
      await goTo(p, '/stock');
      await p.waitForFunction(
        (id) => document.querySelector(`[data-testid="stock-table"] tr[data-id="${id}"] [data-testid="stock-after"]`)?.textContent === '0',
        sales[0].id,
        { timeout: 10000 },
      );
      assert.equal(await p.locator('[data-testid="stock-table"] tbody tr', { hasText: note }).count(), 1);
    }
    for (const p of [a, b]) assert.deepEqual(p.errors.map(String), []);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test('two admin windows offline each sell 1 and mark the same bill paid, then reconnect: stock drops by exactly 2, one payment credit, the late window says why', async () => {
  const ctxA = await chrome.browser.newContext({ viewport: DESKTOP });
  const ctxB = await chrome.browser.newContext({ viewport: DESKTOP });
  try {
    await recordToasts(ctxA);
    await recordToasts(ctxB);
    const product = 'p-north-cup-12';
    const start = (await snapshot(server, adminToken, 'products')).find((p) => p.id === product).fields.stock;
    assert.ok(start >= 2, `the seed has at least 2 of ${product}`);
    const bill = (await snapshot(server, adminToken, 'bills')).find((b) => b.fields.status === 'unpaid' && b.id.startsWith('bill-seed-'));
    assert.ok(bill, 'the seed has an unpaid bill');
    const creditsOf = async () =>
      (await snapshot(server, adminToken, 'ledger_entries')).filter((e) => e.fields.bill_id === bill.id && e.fields.kind === 'credit');
    assert.equal((await creditsOf()).length, 0);

    const pages = [];
    for (const [i, ctx] of [ctxA, ctxB].entries()) {
      const p = await openAs(ctx, server, 'admin-maya', '/realtime');
      await p.check('[data-testid="offline-switch"]', { force: true }); // the styled track covers the input
      await p.waitForSelector('[data-testid="connection"][data-status="disconnected"]');
      await goTo(p, '/inventory');
      await waitStock(p, product, start);
      await fillMovement(p, product, { kind: 'sale', qty: 1, note: `offline-sale-${i}-${Date.now()}` });
      await p.click('[data-testid="save-movement"]');
      await goTo(p, '/bills');
      await p.click(`[data-testid="bills-table"] tr[data-id="${bill.id}"] button:has-text("Mark paid")`);
      await p.waitForSelector(`[data-testid="bills-table"] tr[data-id="${bill.id}"] .pill-good`);
      await p.waitForSelector('[data-testid="pending-count"]');
      pages.push(p);
    }
    const [a, b] = pages;

    // A reconnects first and has its writes applied; then B.
    for (const p of [a, b]) {
      await goTo(p, '/realtime');
      await p.uncheck('[data-testid="offline-switch"]', { force: true });
      await p.waitForSelector('[data-testid="connection"][data-status="healthy"]', { timeout: 20000 });
      await p.waitForSelector('[data-testid="pending-count"]', { state: 'detached', timeout: 20000 });
    }

    // B's payment was refused whole (the bill was no longer unpaid) and it says why; its sale counted.
    const why = await waitUntil(() => toasts(b, 'already-paid').then((t) => (t.length ? t : null)), { what: 'the already-paid toast in B' });
    assert.equal(why.length, 1);
    assert.match(why[0].text, new RegExp(`${bill.fields.number} was already paid`));
    assert.match(why[0].text, /credited once/);
    assert.equal((await toasts(a, 'already-paid')).length, 0);

    // The server: one credit for the bill, the bill paid (at the server's commit time), stock − 2.
    const credits = await creditsOf();
    assert.equal(credits.length, 1, 'exactly one payment credit');
    assert.equal(credits[0].fields.amount, bill.fields.total);
    const paid = (await snapshot(server, adminToken, 'bills')).find((x) => x.id === bill.id);
    assert.equal(paid.fields.status, 'paid');
    assert.equal(typeof paid.fields.paid_at, 'number');
    const stock = (await snapshot(server, adminToken, 'products')).find((p) => p.id === product).fields.stock;
    assert.equal(stock, start - 2, 'both offline sales counted');

    // Each window was told the stock the server committed after its own sale, in commit order.
    const recorded = await waitUntil(async () => {
      const r = await Promise.all([a, b].map((p) => toasts(p, 'stock-recorded')));
      return r.every((x) => x.length === 1) ? r : null;
    }, { what: 'both sales confirmed' });
    assert.match(recorded[0][0].text, new RegExp(`(?<!\\d)${start - 1} sleeves in stock after it`));
    assert.match(recorded[1][0].text, new RegExp(`(?<!\\d)${start - 2} sleeves in stock after it`));

    // Both windows converge: the stock, and one credit in the customer's ledger.
    for (const p of [a, b]) {
      await goTo(p, '/inventory');
      await waitStock(p, product, start - 2);
      await goTo(p, '/ledger');
      await p.click(`nav[aria-label="Customers"] button:has-text("${bill.fields.customer_name}")`);
      await p.waitForSelector('[data-testid="ledger-table"] tbody tr');
      assert.equal(await p.locator('[data-testid="ledger-table"] tbody tr', { hasText: `Payment for ${bill.fields.number}` }).count(), 1);
    }
    for (const p of [a, b]) assert.deepEqual(p.errors.map(String), []);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test('a booking cancelled in two admin windows (one offline) is cancelled once; the late window says it was already cancelled', async () => {
  const ctxA = await chrome.browser.newContext({ viewport: DESKTOP });
  const ctxB = await chrome.browser.newContext({ viewport: DESKTOP });
  try {
    await recordToasts(ctxB);
    const date = isoDay(Date.now() + 2 * 86400000);
    const id = `bk-seed-north-main-${date}-1`;
    assert.ok((await snapshot(server, adminToken, 'bookings')).some((bk) => bk.id === id), 'the seed booking exists');
    const openSlot = async (p) => {
      await goTo(p, '/bookings');
      await p.click(`[data-testid="calendar"] button[data-hall="north-main"][data-date="${date}"]`);
      await p.click('.slot-panel button[data-cancel-slot="1"]');
      await p.click('.slot-panel button[data-confirm-cancel="1"]'); // the confirmation
    };

    // B cancels while offline (queued), A cancels online (applied).
    const b = await openAs(ctxB, server, 'admin-maya', '/realtime');
    await b.check('[data-testid="offline-switch"]', { force: true });
    await b.waitForSelector('[data-testid="connection"][data-status="disconnected"]');
    await openSlot(b);
    await b.waitForSelector('[data-testid="pending-count"]');
    const a = await openAs(ctxA, server, 'admin-maya', '/realtime');
    await openSlot(a);
    await a.waitForSelector('[data-testid="booking-ok"]:has-text("Cancelled")', { timeout: 10000 });

    await goTo(b, '/realtime');
    await b.uncheck('[data-testid="offline-switch"]', { force: true });
    await b.waitForSelector('[data-testid="pending-count"]', { state: 'detached', timeout: 20000 });
    const why = await waitUntil(() => toasts(b, 'already-cancelled').then((t) => (t.length ? t : null)), { what: 'the already-cancelled toast in B' });
    assert.match(why[0].text, /already cancelled; nothing changed/);
    const left = (await snapshot(server, adminToken, 'bookings')).filter((bk) => bk.fields.hall === 'north-main' && bk.fields.date === date && bk.fields.slot === 1);
    assert.deepEqual(left, [], 'the slot is free');
    for (const p of [a, b]) assert.deepEqual(p.errors.map(String), []);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test('offline: with the server stopped the app reloads from the service worker, shows data, accepts a write; it reaches the server exactly once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-demo-offline-'));
  let srv = await startDemo({ dir });
  const port = srv.port;
  const ctx = await chrome.browser.newContext({ viewport: DESKTOP });
  try {
    const token = await demoToken(srv, 'admin-maya', 'admin');
    const page = await openAs(ctx, srv, 'admin-maya', '/inventory');
    await page.waitForSelector('[data-testid="inventory-table"] tbody tr');
    // The service worker controls the page and has the shell, the assets and the wasm cached.
    await page.waitForFunction(async () => {
      if (!navigator.serviceWorker.controller) return false;
      const keys = await caches.keys();
      for (const k of keys) {
        const c = await caches.open(k);
        const reqs = await c.keys();
        if (reqs.some((r) => r.url.endsWith('.wasm')) && reqs.some((r) => r.url.endsWith('/index.html'))) return true;
      }
      return false;
    }, null, { timeout: 15000 });
    const product = 'p-oldtown-cof-keg';
    const before = (await snapshot(srv, token, 'products')).find((p) => p.id === product).fields.stock;

    await srv.stop();
    await page.reload();
    await page.waitForSelector(`[data-testid="inventory-table"] tr[data-id="${product}"]`, { timeout: 15000 });
    await page.waitForSelector('[data-testid="offline-banner"]', { timeout: 15000 });

    const note = `offline-delivery-${Date.now()}`;
    await page.click(`[data-testid="inventory-table"] tr[data-id="${product}"] button:has-text("Move stock")`);
    await page.check('[data-testid="movement-form"] input[value="purchase"]');
    await page.fill('[data-testid="movement-form"] input[name="qty"]', '5');
    await page.fill('[data-testid="movement-form"] input[name="note"]', note);
    await page.click('[data-testid="save-movement"]');
    await page.waitForFunction(
      ([id, n]) => document.querySelector(`[data-testid="inventory-table"] tr[data-id="${id}"] [data-testid="stock"]`)?.textContent === String(n),
      [product, before + 5],
    );
    await page.waitForSelector('[data-testid="pending-count"]');
    await shot(page, 'offline-pending');

    srv = await startDemo({ dir, port, seedData: false });
    await page.waitForSelector('[data-testid="connection"][data-status="healthy"]', { timeout: 20000 });
    await page.waitForSelector('[data-testid="pending-count"]', { state: 'detached', timeout: 20000 });
    await sleep(500);
    const after = (await snapshot(srv, token, 'products')).find((p) => p.id === product).fields.stock;
    assert.equal(after, before + 5, 'the purchase reached the server');
    const txs = (await snapshot(srv, token, 'stock_transactions')).filter((t) => t.fields.note === note);
    assert.equal(txs.length, 1, 'exactly one stock transaction');
    // The restarted server applied exactly the two queued writes (product update + transaction).
    assert.equal(await metricValue(srv, 'syncline_mutations_total{status="applied"}'), 2);
    assert.deepEqual(page.errors.map(String), []);
  } finally {
    await ctx.close();
    await srv.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
