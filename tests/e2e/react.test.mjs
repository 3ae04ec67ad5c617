// React hooks in chromium against the real server (issue 4, item 7): components update on
// remote changes, and a change re-renders only the components that show it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAppServer, launchBrowser, clientOptions, makeToken, api, waitFor, sleep } from './helpers.mjs';

const admin = makeToken('react-admin', 'admin');
const other = makeToken('react-writer', 'admin');
let server;
let chrome;
let mid = 0;

before(async () => {
  server = await startAppServer();
  chrome = await launchBrowser();
});
after(async () => {
  await chrome?.close();
  await server?.cleanup();
});

const remote = (op, collection, id, fields) =>
  api(server, 'POST', '/v1/mutations', {
    token: other,
    body: { client: 'react-remote', mutations: [{ mid: ++mid, op, collection, id, ...(fields ? { fields } : {}) }] },
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
