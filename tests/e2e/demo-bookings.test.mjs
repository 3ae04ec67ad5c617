// The demo's bookings, leads and customer product availability, end to end in chromium
// against the real server serving demo/dist, with two or three browser contexts per test (admin
// and customers, or two admins), asserting what each user sees:
// - a customer cancels her own booking (after a confirmation, with a toast); an admin window sees
//   the slot free at once (the cell's colour and text) and another customer then books it;
// - a lead moved in one admin window shows up moved in the other; two windows moving the same
//   lead from the same stage: one applies, the other says it was already moved; the branch
//   selector narrows the board;
// - converting a lead into a booking on a taken slot is refused whole (no booking, the lead stays
//   quoted); on a free slot both happen, and the other window sees the lead won and booked;
// - the customer's product availability changes level live as an admin sells stock, and the page
//   never shows a price or a cost;
// - a booking made offline looks pending ("waiting for the server"), never like a success, until
//   the server applied it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitUntil } from './helpers.mjs';
import { openAs, demoToken, snapshot, recordToasts, toasts, goTo, fillMovement, waitStock, openDemo, closeDemo, isoDay } from './demo-helpers.mjs';

const DESKTOP = { width: 1360, height: 900 };
const DAY = 86400000;
let server;
let chrome;
let adminToken;

before(async () => ({ server, chrome, adminToken } = await openDemo()));
after(() => closeDemo({ server, chrome }));


/** Opens contexts (toasts recorded), runs fn, closes them. */
async function withContexts(n, fn) {
  const ctxs = [];
  try {
    for (let i = 0; i < n; i++) {
      const c = await chrome.browser.newContext({ viewport: DESKTOP });
      await recordToasts(c);
      ctxs.push(c);
    }
    await fn(...ctxs);
  } finally {
    for (const c of ctxs) await c.close();
  }
}

const cell = (hall, date) => `[data-testid="calendar"] button[data-hall="${hall}"][data-date="${date}"]`;
const waitToast = (page, kind, what) => waitUntil(() => toasts(page, kind).then((t) => (t.length ? t : null)), { what: what ?? `a ${kind} toast` });

/** Switches the page's client offline or online through the Realtime lab, then returns to `back`. */
async function setOffline(page, offline, back) {
  await goTo(page, '/realtime');
  if (offline) {
    await page.check('[data-testid="offline-switch"]', { force: true });
    await page.waitForSelector('[data-testid="connection"][data-status="disconnected"]');
  } else {
    await page.uncheck('[data-testid="offline-switch"]', { force: true });
  }
  if (back) await goTo(page, back);
}

test('a customer cancels her booking: the admin window sees the slot free at once, and another customer books it', async () => {
  await withContexts(3, async (adminCtx, anaCtx, benCtx) => {
    // Main Hall, the day after tomorrow: morning Ana, afternoon Ben, evening Chloé (seed): full.
    const date = isoDay(Date.now() + 2 * DAY);
    const id = `bk-seed-north-main-${date}-0`;
    const admin = await openAs(adminCtx, server, 'admin-maya', '/bookings');
    await admin.click(cell('north-main', date));
    await admin.waitForSelector(`${cell('north-main', date)}[data-occ="full"]:has-text("Full")`);
    await admin.waitForSelector('.slot-panel li[data-slot-row="0"]:has-text("Menu planning")');

    const ana = await openAs(anaCtx, server, 'cust-ana', '/bookings');
    await ana.click(cell('north-main', date));
    // Ana sees only her own booking there, and may cancel it, after confirming.
    await ana.click('.slot-panel button[data-cancel-slot="0"]');
    await ana.waitForSelector('.slot-panel [data-confirm-cancel="0"]');
    assert.equal(await ana.locator('.slot-panel li[data-slot-row="0"]').textContent().then((t) => /Cancel “Menu planning”\?/.test(t)), true, 'a confirmation names the booking');
    await ana.click('.slot-panel [data-confirm-cancel="0"]');
    await ana.waitForSelector('[data-testid="booking-ok"]:has-text("Cancelled")', { timeout: 10000 });
    const cancelled = await waitToast(ana, 'booking-cancelled');
    assert.match(cancelled[0].text, /Booking cancelled.*Main Hall.*morning.*free again/);
    await ana.waitForSelector('.slot-panel button[data-slot="0"]');

    // The admin window: the cell is partly booked now (colour and text), the morning is bookable,
    // and a toast says a booking was cancelled elsewhere.
    await admin.waitForSelector(`${cell('north-main', date)}[data-occ="partly"]:has-text("2/3")`, { timeout: 10000 });
    await admin.waitForSelector('.slot-panel li[data-slot-row="0"] button[data-slot="0"]:has-text("Book")');
    const seen = await waitToast(admin, 'booking-cancelled-elsewhere');
    assert.match(seen[0].text, /Booking cancelled.*Ana Lima.*free again/);
    assert.equal((await snapshot(server, adminToken, 'bookings')).some((b) => b.id === id), false, 'gone on the server');

    // Ben books the freed morning: the server accepts it, the admin window shows the cell full again.
    const ben = await openAs(benCtx, server, 'cust-ben', '/bookings');
    await ben.click(cell('north-main', date));
    await ben.click('.slot-panel button[data-slot="0"]');
    await ben.fill('[data-testid="booking-form"] input[name="title"]', 'Okafor breakfast');
    await ben.click('[data-testid="confirm-booking"]');
    await ben.waitForSelector('[data-testid="booking-ok"]:has-text("Booked")', { timeout: 10000 });
    await admin.waitForSelector(`${cell('north-main', date)}[data-occ="full"]:has-text("Full")`, { timeout: 10000 });
    await admin.waitForSelector('.slot-panel li[data-slot-row="0"]:has-text("Okafor breakfast")');
    const holders = (await snapshot(server, adminToken, 'bookings')).filter((b) => b.fields.hall === 'north-main' && b.fields.date === date && b.fields.slot === 0);
    assert.deepEqual(holders.map((b) => b.fields.customer_id), ['cust-ben']);
    for (const p of [admin, ana, ben]) assert.deepEqual(p.errors.map(String), []);
  });
});

test('leads: a move in one admin window shows in the other; two windows moving the same lead from the same stage: one wins, the other says already moved', async () => {
  await withContexts(2, async (ctxA, ctxB) => {
    const a = await openAs(ctxA, server, 'admin-maya', '/leads');
    const b = await openAs(ctxB, server, 'admin-maya', '/leads');
    const card = (id, stage) => `[data-testid="lead-board"] section[data-stage="${stage}"] li[data-id="${id}"]`;
    await a.waitForSelector(card('lead-seed-1', 'new'));
    await b.waitForSelector(card('lead-seed-1', 'new'));

    // A moves Grace Kim to contacted: B sees it there, flashed, with a toast.
    await a.click(`${card('lead-seed-1', 'new')} button[data-move="contacted"]`);
    await b.waitForSelector(card('lead-seed-1', 'contacted'), { timeout: 10000 });
    const moved = await waitToast(b, 'lead-moved');
    assert.match(moved[0].text, /Grace Kim moved to Contacted/);
    assert.equal(await b.locator(card('lead-seed-1', 'new')).count(), 0);

    // Hugo Silva (new): B, offline, marks him lost (with a reason); A moves him to contacted.
    await setOffline(b, true, '/leads');
    await b.click(`${card('lead-seed-2', 'new')} button[data-move="lost"]`);
    assert.equal(await b.isDisabled('[data-testid="confirm-lost"]'), true, 'lost needs a reason');
    await b.selectOption('[data-testid="lost-form"] select[name="reason"]', 'Over budget');
    await b.click('[data-testid="confirm-lost"]');
    await b.waitForSelector(`${card('lead-seed-2', 'lost')}:has-text("saving…")`);
    await a.click(`${card('lead-seed-2', 'new')} button[data-move="contacted"]`);
    await waitUntil(async () => (await snapshot(server, adminToken, 'leads')).find((l) => l.id === 'lead-seed-2')?.fields.stage === 'contacted', { what: "A's move applied" });

    // B reconnects: its move is refused, and it says why; the lead is where A put it.
    await setOffline(b, false, '/leads');
    const why = await waitToast(b, 'already-moved', 'the already-moved toast in B');
    assert.match(why[0].text, /Lead not moved.*Hugo Silva: Already moved: someone moved this lead first, it is now Contacted \(by Maya Chen\)/);
    await b.waitForSelector(card('lead-seed-2', 'contacted'));
    assert.equal(await b.locator(card('lead-seed-2', 'lost')).count(), 0);
    const lead = (await snapshot(server, adminToken, 'leads')).find((l) => l.id === 'lead-seed-2');
    assert.equal(lead.fields.stage, 'contacted');
    assert.equal(lead.fields.lost_reason, undefined);

    // The branch selector narrows the board like every page: Harbour's leads only.
    await b.selectOption('[data-testid="branch-select"]', 'harbour');
    await b.waitForSelector('[data-testid="lead-board"] li[data-id="lead-seed-6"]', { timeout: 15000 });
    const branches = await b.$$eval('[data-testid="lead-board"] li.lead-card', (lis) => [...new Set(lis.map((li) => li.textContent.match(/Northside|Harbour|Old Town/)?.[0]))]);
    assert.deepEqual(branches, ['Harbour']);
    for (const p of [a, b]) assert.deepEqual(p.errors.map(String), []);
  });
});

test('converting a lead into a booking: a taken slot refuses both (the lead stays quoted); a free one books it and wins the lead in every window', async () => {
  await withContexts(2, async (ctxA, ctxB) => {
    const a = await openAs(ctxA, server, 'admin-maya', '/leads');
    const b = await openAs(ctxB, server, 'admin-maya', '/leads');
    const card = (stage) => `[data-testid="lead-board"] section[data-stage="${stage}"] li[data-id="lead-seed-4"]`;
    await a.waitForSelector(card('quoted'));
    const tomorrow = isoDay(Date.now() + DAY);
    const convert = async (date, slot) => {
      await a.click(`${card('quoted')} button[data-convert]`);
      await a.selectOption('[data-testid="convert-form"] select[name="hall"]', 'north-main');
      await a.selectOption('[data-testid="convert-form"] select[name="date"]', date);
      await a.selectOption('[data-testid="convert-form"] select[name="slot"]', String(slot));
      await a.click('[data-testid="confirm-convert"]');
    };

    // Main Hall tomorrow evening is Ana's (seed).
    await convert(tomorrow, 2);
    await a.waitForSelector('[data-testid="lead-error"]', { timeout: 10000 });
    assert.match(await a.textContent('[data-testid="lead-error"]'), /Jonas Berg was not converted: Main Hall, .*, evening is already booked.*stays in Quoted/);
    await a.waitForSelector(card('quoted'));
    let lead = (await snapshot(server, adminToken, 'leads')).find((l) => l.id === 'lead-seed-4');
    assert.equal(lead.fields.stage, 'quoted');
    assert.equal(lead.fields.booking_id, undefined);
    let bookings = await snapshot(server, adminToken, 'bookings');
    assert.equal(bookings.filter((bk) => bk.fields.lead_id === 'lead-seed-4').length, 0, 'no booking for the lead');
    assert.deepEqual(bookings.filter((bk) => bk.fields.hall === 'north-main' && bk.fields.date === tomorrow && bk.fields.slot === 2).map((bk) => bk.fields.customer_id), ['cust-ana']);

    // A free slot: booked and won in one step, and B sees the lead won with its booking.
    const taken = new Set(bookings.filter((bk) => bk.fields.hall === 'north-main').map((bk) => `${bk.fields.date}|${bk.fields.slot}`));
    let free = null;
    for (let d = 3; d < 14 && !free; d++) for (let s = 0; s < 3 && !free; s++) if (!taken.has(`${isoDay(Date.now() + d * DAY)}|${s}`)) free = { date: isoDay(Date.now() + d * DAY), slot: s };
    assert.ok(free, 'a free Main Hall slot in the next two weeks');
    await convert(free.date, free.slot);
    await a.waitForSelector('[data-testid="lead-ok"]:has-text("Jonas Berg is won: booked Main Hall")', { timeout: 10000 });
    await b.waitForSelector(`${card('won')} [data-testid="lead-booking"]:has-text("Booked: Main Hall")`, { timeout: 10000 });
    lead = (await snapshot(server, adminToken, 'leads')).find((l) => l.id === 'lead-seed-4');
    assert.equal(lead.fields.stage, 'won');
    bookings = await snapshot(server, adminToken, 'bookings');
    const bk = bookings.find((x) => x.id === lead.fields.booking_id);
    assert.equal(bk?.fields.lead_id, 'lead-seed-4');
    assert.deepEqual([bk.fields.hall, bk.fields.date, bk.fields.slot], ['north-main', free.date, free.slot]);
    for (const p of [a, b]) assert.deepEqual(p.errors.map(String), []);
  });
});

test('customer product availability follows admin sales live (in stock → low → out) and never shows a price or a cost', async () => {
  await withContexts(2, async (adminCtx, anaCtx) => {
    const pid = 'p-north-bak-cro';
    const p = (await snapshot(server, adminToken, 'products')).find((d) => d.id === pid).fields;
    assert.ok(p.stock >= p.threshold, `${pid} starts in stock (${p.stock}, threshold ${p.threshold})`);
    const ana = await openAs(anaCtx, server, 'cust-ana', '/products');
    const item = `[data-testid="availability"] li[data-id="${pid}"]`;
    await ana.waitForSelector(`${item}[data-level="in"]:has-text("In stock")`);
    const text = await ana.textContent('main');
    assert.doesNotMatch(text, /€|EUR|price|cost|value/i, 'no money on the page');
    assert.doesNotMatch(await ana.textContent(item), /\d+ (box|boxes)|\b\d+ left/, 'no exact count');

    const admin = await openAs(adminCtx, server, 'admin-maya', '/inventory');
    // Sell down to one below the threshold: Ana's page says Low stock.
    const low = p.threshold - 1;
    await fillMovement(admin, pid, { kind: 'sale', qty: p.stock - low });
    await admin.click('[data-testid="save-movement"]');
    await ana.waitForSelector(`${item}[data-level="low"]:has-text("Low stock")`, { timeout: 10000 });
    await waitStock(admin, pid, low);
    // The admin's low-stock toast says it with the unit's plural.
    const warned = await waitToast(admin, 'low-stock');
    assert.match(warned[0].text, new RegExp(`has ${low} boxes left`));

    // Sell the rest: Out of stock.
    await fillMovement(admin, pid, { kind: 'sale', qty: low });
    await admin.click('[data-testid="save-movement"]');
    await ana.waitForSelector(`${item}[data-level="out"]:has-text("Out of stock")`, { timeout: 10000 });
    assert.doesNotMatch(await ana.textContent('main'), /€|EUR|price|cost|value/i);
    for (const pg of [admin, ana]) assert.deepEqual(pg.errors.map(String), []);
  });
});

test('a booking made offline looks pending (waiting for the server), not like a success, until the server applied it', async () => {
  await withContexts(2, async (benCtx, adminCtx) => {
    const ben = await openAs(benCtx, server, 'cust-ben', '/realtime');
    const admin = await openAs(adminCtx, server, 'admin-maya', '/bookings');
    const bookings = await snapshot(server, adminToken, 'bookings');
    const taken = new Set(bookings.filter((b) => b.fields.hall === 'harbour-studio').map((b) => `${b.fields.date}|${b.fields.slot}`));
    let free = null;
    for (let d = 13; d > 2 && !free; d--) for (let s = 2; s >= 0 && !free; s--) if (!taken.has(`${isoDay(Date.now() + d * DAY)}|${s}`)) free = { date: isoDay(Date.now() + d * DAY), slot: s };
    assert.ok(free, 'a free Studio slot');

    await setOffline(ben, true, '/bookings');
    await ben.click(cell('harbour-studio', free.date));
    await ben.click(`.slot-panel button[data-slot="${free.slot}"]`);
    await ben.fill('[data-testid="booking-form"] input[name="title"]', 'Offline rehearsal');
    await ben.click('[data-testid="confirm-booking"]');
    const pending = await ben.waitForSelector('[data-testid="booking-pending"]');
    assert.match(await pending.textContent(), /Waiting for the server to confirm Studio, .*offline: it is sent when the connection is back/);
    assert.equal(await pending.evaluate((el) => el.className), 'form-pending');
    assert.equal(await ben.locator('[data-testid="booking-ok"]').count(), 0, 'no success before the server answered');
    assert.equal(await ben.locator('.toast[data-kind="booking-confirmed"]').count(), 0);
    await ben.waitForSelector(`.slot-panel li[data-slot-row="${free.slot}"] [data-testid="slot-pending"]:has-text("waiting for server")`);
    // Still pending a moment later: nothing reached the server.
    await ben.waitForTimeout(500);
    assert.equal(await ben.locator('[data-testid="booking-ok"]').count(), 0);
    assert.equal(bookings.length, (await snapshot(server, adminToken, 'bookings')).length);

    // Back online: applied, now it says Booked, and the admin window sees it.
    await setOffline(ben, false);
    await ben.waitForSelector('[data-testid="pending-count"]', { state: 'detached', timeout: 20000 });
    await waitToast(ben, 'booking-confirmed');
    await goTo(ben, '/bookings');
    await admin.click(cell('harbour-studio', free.date));
    await admin.waitForSelector(`.slot-panel li[data-slot-row="${free.slot}"]:has-text("Offline rehearsal")`, { timeout: 10000 });
    for (const p of [ben, admin]) assert.deepEqual(p.errors.map(String), []);
  });
});
