// React hooks in chromium against the real server: components update on remote changes, and a
// change re-renders only the components that show it. Field operations and transactions: an
// increment shows at once on the newest base, and a refused group leaves the view in one render.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAppServer, launchBrowser, clientOptions, makeToken, api, waitFor, sleep, testConfig } from './helpers.mjs';

const admin = makeToken('react-admin', 'admin');
const other = makeToken('react-writer', 'admin');
let server;
let chrome;
let mid = 0;

before(async () => {
  server = await startAppServer({ config: testConfig({ collections: { ledger_entries: { read: { admin: 'all' }, write: { admin: 'all' } } } }) });
  chrome = await launchBrowser();
});
after(async () => {
  await chrome?.close();
  await server?.cleanup();
});

const remote = (op, collection, id, fields, extra = {}) =>
  api(server, 'POST', '/v1/mutations', {
    token: other,
    body: { client: 'react-remote', mutations: [{ mid: ++mid, op, collection, id, ...(fields ? { fields } : {}), ...extra }] },
  }).then((r) => {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.results[0].status, 'applied', r.text);
  });

for (const transport of ['sse', 'websocket']) {
  test(`hooks update on remote changes and skip unrelated ones (${transport})`, async () => {
    const ctx = await chrome.browser.newContext();
    try {
      const page = await ctx.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e));
      const options = clientOptions(server, admin, { transport, name: `react-${transport}`, persistence: 'memory' });
      await page.goto(`${server.url}/react.html?options=${encodeURIComponent(JSON.stringify(options))}`);
      await page.waitForFunction(() => window.harnessReady === true);
      await page.waitForSelector('#status[data-connected="true"]', { state: 'attached' });
      await page.waitForSelector('#status[data-health="healthy"]', { state: 'attached' });
      const counts = () => page.evaluate(() => ({ ...window.renderCounts }));

      const bill = `rb-${transport}`;
      let c0 = await counts();
      await remote('insert', 'bills', bill, { total: 42 });
      await page.waitForSelector(`#bills li[data-id="${bill}"]`);
      await sleep(150);
      let c1 = await counts();
      assert.ok(c1.BillList > c0.BillList, 'the bill list re-rendered');
      assert.equal(c1.ProductList, c0.ProductList, 'the product list did not re-render for a bill');
      assert.equal(c1.OneBill, c0.OneBill, 'a single-document view of another bill did not re-render');

      await remote('insert', 'products', `rp-${transport}`, { name: 'widget' });
      await waitFor(page, (id) => !!document.querySelector('#products')?.textContent?.includes(id), `rp-${transport}`, { what: 'product shown' });
      await sleep(150);
      const c2 = await counts();
      assert.ok(c2.ProductList > c1.ProductList);
      assert.equal(c2.BillList, c1.BillList, 'the bill list did not re-render for a product');

      // useDocument + useDocumentListener follow one document through its life.
      await remote('insert', 'bills', 'watched', { total: 1 });
      await page.waitForFunction(() => document.querySelector('#one-bill')?.textContent === '1');
      await remote('update', 'bills', 'watched', { total: 2 });
      await page.waitForFunction(() => document.querySelector('#one-bill')?.textContent === '2');
      await remote('delete', 'bills', 'watched');
      await page.waitForFunction(() => document.querySelector('#one-bill')?.textContent === 'none');
      const transitions = await page.evaluate(() => window.transitions.filter((t) => t.endsWith(':watched')));
      assert.deepEqual(transitions, ['appear:watched', 'update:watched', 'disappear:watched']);
      const eventCount = Number(await page.textContent('#event-count'));
      assert.ok(eventCount >= 4, `useEvents saw the bill changes (${eventCount})`);
      assert.deepEqual(errors, []);
    } finally {
      await ctx.close();
    }
  });
}

test('an increment shows at once on the newest base; a refused group leaves the view in one render', async () => {
  const ctx = await chrome.browser.newContext();
  try {
    await remote('insert', 'products', 'rx-product', { name: 'Widget', stock: 10 });
    await remote('insert', 'bills', 'rx-bill', { status: 'unpaid', total: 500 });
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e));
    const options = clientOptions(server, admin, { name: 'react-shop', persistence: 'memory', collections: ['bills', 'products', 'ledger_entries'] });
    await page.goto(`${server.url}/react.html?shop=1&options=${encodeURIComponent(JSON.stringify(options))}`);
    await page.waitForFunction(() => window.harnessReady === true);
    await page.waitForSelector('#status[data-connected="true"]', { state: 'attached' });
    await page.waitForSelector('#shop[data-stock="10"][data-credits="0"]', { state: 'attached' });
    const shop = () => page.evaluate(() => {
      const el = document.querySelector('#shop');
      return { stock: Number(el.dataset.stock), credits: Number(el.dataset.credits), pending: el.dataset.pending === 'true' };
    });

    // Offline, sell 3: the view shows 7 at once. Meanwhile the server receives +5 from elsewhere.
    await page.evaluate(() => window.client.goOffline());
    await page.waitForSelector('#status[data-connected="false"]', { state: 'attached' });
    const sold = await page.evaluate(() => {
      const start = window.shopLog.length;
      window.sale = window.client.collection('products').update('rx-product', { stock: window.syncline.increment(-3, { min: 0 }) });
      window.sale.then(() => (window.saleDone = 'applied'), (e) => (window.saleDone = e.code));
      return new Promise((r) => requestAnimationFrame(() => r(window.shopLog.slice(start))));
    });
    assert.deepEqual(sold.at(-1), [7, 0, true], `the increment renders at once, pending: ${JSON.stringify(sold)}`);
    await remote('update', 'products', 'rx-product', {}, { ops: { stock: { increment: 5 } } });
    const mark = await page.evaluate(() => window.shopLog.length);
    await page.evaluate(() => window.client.goOnline());
    // 15 on the server, minus this window's 3 replayed on it: 12, then confirmed.
    await page.waitForSelector('#shop[data-stock="12"][data-pending="false"]', { state: 'attached', timeout: 20000 });
    assert.equal(await page.evaluate(() => window.saleDone), 'applied');
    const afterSale = await page.evaluate((m) => window.shopLog.slice(m), mark);
    const stocks = [...new Set(afterSale.map((r) => r[0]))];
    assert.ok(stocks.every((s) => s === 7 || s === 12), `never an absolute or stale value: ${JSON.stringify(afterSale)}`);

    // A group (bill paid if unpaid, credit, stock -1) queued offline; someone else marks the bill
    // paid first. The group shows whole, then leaves whole, in one render.
    await page.evaluate(() => window.client.goOffline());
    await page.waitForSelector('#status[data-connected="false"]', { state: 'attached' });
    const shown = await page.evaluate(() => {
      const start = window.shopLog.length;
      window.pay = window.client.transaction((tx) => {
        tx.collection('bills').update('rx-bill', { status: 'paid', paid_at: window.syncline.serverTime() }, { if: 'status=eq.unpaid' });
        tx.collection('ledger_entries').insert({ bill_id: 'rx-bill', kind: 'credit', amount: 500 });
        tx.collection('products').update('rx-product', { stock: window.syncline.increment(-1, { min: 0 }) });
      });
      window.pay.then(() => (window.payDone = { state: 'applied' }), (e) => (window.payDone = { code: e.code, failedIndex: e.failedIndex, id: e.id, current: e.current }));
      return new Promise((r) => requestAnimationFrame(() => r(window.shopLog.slice(start))));
    });
    assert.deepEqual(shown, [[11, 1, true]], `the group renders at once, in one render: ${JSON.stringify(shown)}`);
    await remote('update', 'bills', 'rx-bill', { status: 'paid' });
    const mark2 = await page.evaluate(() => window.shopLog.length);
    await page.evaluate(() => window.client.goOnline());
    await waitFor(page, () => window.payDone, null, { what: 'the group verdict', timeout: 20000 });
    const payDone = await page.evaluate(() => window.payDone);
    assert.equal(payDone.code, 'conflict');
    assert.equal(payDone.failedIndex, 0);
    assert.equal(payDone.id, 'rx-bill');
    assert.equal(payDone.current?.fields?.status, 'paid');
    await page.waitForSelector('#shop[data-stock="12"][data-credits="0"][data-pending="false"]', { state: 'attached' });
    const rollback = await page.evaluate((m) => window.shopLog.slice(m), mark2);
    const half = rollback.filter(([stock, credits]) => (stock === 12) !== (credits === 0));
    assert.deepEqual(half, [], `no render shows half of the group: ${JSON.stringify(rollback)}`);
    console.log(`[e2e react] ShopView renders [stock, credits, pending]: sale ${JSON.stringify(sold)} then ${JSON.stringify(afterSale)}; group ${JSON.stringify(shown)} then ${JSON.stringify(rollback)}`);
    assert.deepEqual(await shop(), { stock: 12, credits: 0, pending: false });
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
