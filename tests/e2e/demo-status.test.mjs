// The demo's top bar as a user reads it, in two tabs of one browser: the measured round trip,
// when data last arrived, and the pending writes of the whole browser (a tab that did not make a
// write still counts it while it is on its way).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openAs, goTo, fillMovement, snapshot, demoToken, openDemo, closeDemo } from './demo-helpers.mjs';

let server;
let chrome;

before(async () => ({ server, chrome } = await openDemo()));
after(() => closeDemo({ server, chrome }));

const text = (page, id) => page.textContent(`[data-testid="${id}"]`);

test('top bar: latency and last sync in every tab; a write made offline in one tab is pending in both until the server has it', async () => {
  const context = await chrome.browser.newContext({ viewport: { width: 1440, height: 900 } });
  try {
    const a = await openAs(context, server, 'admin-maya', '/realtime');
    // A second tab of the same browser is already signed in.
    const b = await context.newPage();
    b.errors = [];
    b.on('pageerror', (e) => b.errors.push(e));
    await b.goto(server.url + '/inventory');
    await b.waitForSelector('[data-testid="connection"][data-status="healthy"]', { timeout: 20000 });
    for (const p of [a, b]) {
      // The leader measures; the follower shows the leader's figure.
      await p.waitForSelector('[data-testid="latency"]', { timeout: 30000 });
      assert.match(await text(p, 'latency'), /^\d+ ms$/);
      assert.match(await text(p, 'last-synced'), /^Synced (just now|\d+s ago)$/);
    }

    const token = await demoToken(server, 'admin-maya', 'admin');
    const product = (await snapshot(server, token, 'products'))[0];
    const note = `status-test-${Date.now()}`;
    await a.check('[data-testid="offline-switch"]', { force: true }); // the styled track covers the input
    await a.waitForSelector('[data-testid="connection"][data-status="disconnected"]');
    assert.equal(await a.$('[data-testid="latency"]'), null, 'no latency shown while offline');
    await goTo(a, '/inventory');
    await fillMovement(a, product.id, { kind: 'purchase', qty: 2, note });
    await a.click('[data-testid="save-movement"]');

    // Both tabs count the write (a movement is two mutations in one transaction: its record and
    // the stock increment): the tab that made it and the one that only shows it.
    for (const p of [a, b]) {
      await p.waitForFunction(() => document.querySelector('[data-testid="pending-count"]')?.textContent === '2 pending', null, { timeout: 15000 });
    }

    await goTo(a, '/realtime');
    await a.uncheck('[data-testid="offline-switch"]', { force: true });
    for (const p of [a, b]) {
      await p.waitForSelector('[data-testid="pending-count"]', { state: 'detached', timeout: 20000 });
    }
    const recorded = (await snapshot(server, token, 'stock_transactions')).filter((t) => t.fields.note === note);
    assert.equal(recorded.length, 1, 'the write reached the server once');
    assert.deepEqual([...a.errors, ...b.errors], []);
  } finally {
    await context.close();
  }
});
