// End-to-end: a persisted replica belongs to its subscription. A returning browser whose app now
// subscribes to more collections, or to another `where`, re-bases its IndexedDB replica (fresh
// snapshot, outbox kept) instead of resuming the stream from a cursor that skips what the new
// subscription needs; tabs of two versions of the app (a deploy) do not corrupt each other.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startAppServer, launchBrowser, openHarness, clientOptions, waitFor, makeToken, serverDocs, metrics, metric, api, sleep,
} from './helpers.mjs';

const admin = makeToken('admin-1', 'admin');

async function reopen(page, options) {
  await page.reload();
  await page.waitForFunction(() => window.harnessReady === true);
  await page.evaluate((o) => window.harness.start(o), options);
}

async function serverWrite(server, client, mutations) {
  const r = await api(server, 'POST', '/v1/mutations', { token: admin, body: { client, mutations } });
  assert.equal(r.status, 200, r.text);
  for (const x of r.json.results) assert.equal(x.status, 'applied', JSON.stringify(x));
}

const ids = (docs) => docs.map((d) => d.id).sort();

for (const transport of ['sse', 'websocket']) {
  describe(`subscription change (${transport})`, () => {
    let server;
    let chrome;
    before(async () => {
      server = await startAppServer();
      chrome = await launchBrowser();
    });
    after(async () => {
      await chrome?.close();
      await server?.cleanup();
    });

    test('more collections fill in from a snapshot, a narrower where drops documents, the outbox is sent once', async () => {
      const ctx = await chrome.browser.newContext();
      try {
        const name = `sub-${transport}`;
        const base = { transport, name, persistence: 'indexeddb' };
        const page = await openHarness(ctx, server, clientOptions(server, admin, { ...base, collections: ['bills'] }));
        await waitFor(page, () => window.harness.status().isConnected, null, { what: 'connected' });
        // Written before the replica's cursor: the stream after it never carries them again.
        const p = `p-${transport}`;
        await serverWrite(server, `srv-${transport}`, [
          { mid: 1, op: 'insert', collection: 'products', id: `${p}-1`, fields: { name: 'tea', stock: 3 } },
          { mid: 2, op: 'insert', collection: 'products', id: `${p}-2`, fields: { name: 'cake', stock: 1 } },
          { mid: 3, op: 'insert', collection: 'bills', id: `b-${transport}-paid`, fields: { total: 7, status: 'paid' } },
          { mid: 4, op: 'insert', collection: 'bills', id: `b-${transport}-open`, fields: { total: 9, status: 'unpaid' } },
        ]);
        await waitFor(page, (id) => window.harness.get('bills', id), `b-${transport}-open`, { what: 'bills arrive' });
        assert.deepEqual(await page.evaluate(() => window.harness.docs('products')), [], 'products are not subscribed yet');
        // A write made offline, still in the outbox when the app is closed.
        const offline = `b-${transport}-offline`;
        await page.evaluate(() => window.harness.goOffline());
        const w = await page.evaluate((id) => window.harness.writeDurably('insert', 'bills', id, { total: 3, status: 'unpaid' }), offline);
        assert.equal(w.visible, true);
        await page.evaluate(() => window.harness.close());
        const appliedBefore = metric(await metrics(server), 'syncline_mutations_total{status="applied"}') ?? 0;

        // The new version of the app subscribes to products too, same name, same database.
        await reopen(page, clientOptions(server, admin, { ...base, collections: ['bills', 'products'] }));
        // (Online, it may be sent and confirmed already by the time this looks.)
        const start = await page.evaluate((id) => ({ pending: window.harness.status().pendingOperations, has: !!window.harness.get('bills', id) }), offline);
        assert.ok(start.has && start.pending <= 1, `the pending write is restored and shown: ${JSON.stringify(start)}`);
        const products = await waitFor(page, (p) => {
          const d = window.harness.docs('products').filter((x) => x.id.startsWith(p));
          return d.length === 2 ? d : null;
        }, p, { what: 'products written before the cursor arrive' });
        assert.deepEqual(products.map((d) => d.fields.name).sort(), ['cake', 'tea']);
        await waitFor(page, () => window.harness.status().pendingOperations === 0, null, { what: 'outbox drained' });
        const onServer = (await serverDocs(server, admin, 'bills')).filter((d) => d.id === offline);
        assert.equal(onServer.length, 1, 'the offline write reached the server');
        const appliedAfter = metric(await metrics(server), 'syncline_mutations_total{status="applied"}');
        assert.equal(appliedAfter - appliedBefore, 1, 'and was applied exactly once');
        const events = await page.evaluate(() => window.harness.events());
        const note = events.entries.find((e) => e.type === 'subscription_changed');
        assert.ok(note, `subscription_changed is in the history: ${JSON.stringify(events.counts)}`);
        assert.deepEqual(note.data.from, { collections: ['bills'], where: '' });
        assert.deepEqual(note.data.to, { collections: ['bills', 'products'], where: '' });
        // Live after the re-base: the stream resumed from the snapshot's seq, nothing twice.
        await serverWrite(server, `srv-${transport}`, [{ mid: 5, op: 'insert', collection: 'products', id: `${p}-3`, fields: { name: 'jam', stock: 2 } }]);
        await waitFor(page, (id) => window.harness.get('products', id), `${p}-3`, { what: 'a live product' });
        assert.equal((await page.evaluate(() => window.harness.docs('products'))).filter((d) => d.id.startsWith(p)).length, 3);
        await page.evaluate(() => window.harness.close());

        // Same name again, reopened unchanged: no re-base.
        await reopen(page, clientOptions(server, admin, { ...base, collections: ['products', 'bills'] }));
        await waitFor(page, () => window.harness.status().isConnected, null, { what: 'connected, unchanged subscription' });
        const counts = await page.evaluate(() => window.harness.events().counts);
        assert.equal(counts.subscription_changed, 1, 'the order of collections is not a change');
        await page.evaluate(() => window.harness.close());

        // Narrower: only unpaid bills. The paid one leaves the view at once, and stays gone.
        await reopen(page, clientOptions(server, admin, { ...base, collections: ['bills'], where: 'status=eq.unpaid' }));
        const narrowed = await page.evaluate(() => ({ bills: window.harness.docs('bills').map((d) => d.id), products: window.harness.docs('products').length }));
        assert.ok(!narrowed.bills.includes(`b-${transport}-paid`), 'a bill outside the where left the view at open');
        assert.ok(narrowed.bills.includes(`b-${transport}-open`));
        assert.equal(narrowed.products, 0, 'a collection no longer subscribed left the view');
        await waitFor(page, () => window.harness.status().isConnected, null, { what: 'connected, narrower' });
        await serverWrite(server, `srv-${transport}`, [{ mid: 6, op: 'update', collection: 'bills', id: `b-${transport}-open`, fields: { status: 'paid' } }]);
        await waitFor(page, (id) => !window.harness.get('bills', id), `b-${transport}-open`, { what: 'a bill paid on the server leaves the narrowed view' });
        const bills = ids(await page.evaluate(() => window.harness.docs('bills')));
        for (const id of bills) {
          const d = await page.evaluate((id) => window.harness.get('bills', id), id);
          assert.equal(d.fields.status, 'unpaid', `${id} matches the where`);
        }
        await page.evaluate(() => window.harness.close());

        // Wider again: the paid bills come back from a snapshot.
        await reopen(page, clientOptions(server, admin, { ...base, collections: ['bills'] }));
        await waitFor(page, (t) => window.harness.get('bills', `b-${t}-paid`) && window.harness.get('bills', `b-${t}-open`), transport, { what: 'paid bills back after widening' });
        assert.deepEqual([...page.errors], []);
      } finally {
        await ctx.close();
      }
    });
  });
}

describe('subscription change across tabs', () => {
  let server;
  let chrome;
  before(async () => {
    server = await startAppServer();
    chrome = await launchBrowser();
  });
  after(async () => {
    await chrome?.close();
    await server?.cleanup();
  });

  test('an old tab leads with [bills], a new tab follows with [bills, products]; the new one re-bases when it leads', async () => {
    const ctx = await chrome.browser.newContext();
    try {
      const base = { name: 'sub-tabs', persistence: 'indexeddb' };
      await serverWrite(server, 'srv-tabs', [
        { mid: 1, op: 'insert', collection: 'products', id: 'tp-1', fields: { name: 'tea' } },
        { mid: 2, op: 'insert', collection: 'bills', id: 'tb-1', fields: { total: 1, status: 'unpaid' } },
      ]);
      const old = await openHarness(ctx, server, clientOptions(server, admin, { ...base, collections: ['bills'] }));
      await waitFor(old, () => window.harness.status().role === 'leader' && window.harness.status().isConnected, null, { what: 'old tab leads' });
      await waitFor(old, () => window.harness.get('bills', 'tb-1'), null, { what: 'old tab has the bill' });

      const fresh = await openHarness(ctx, server, clientOptions(server, admin, { ...base, collections: ['bills', 'products'] }));
      assert.equal(await fresh.evaluate(() => window.harness.status().role), 'follower');
      await waitFor(fresh, () => window.harness.get('products', 'tp-1'), null, { what: 'the new tab fills products from its own snapshot' });
      // Bills still flow through the old leader's stream.
      await serverWrite(server, 'srv-tabs', [{ mid: 3, op: 'insert', collection: 'bills', id: 'tb-2', fields: { total: 2, status: 'unpaid' } }]);
      await waitFor(fresh, () => window.harness.get('bills', 'tb-2'), null, { what: 'a live bill via the old leader' });
      await waitFor(old, () => window.harness.get('bills', 'tb-2'), null, { what: 'the old leader has it too' });
      const note = await fresh.evaluate(() => window.harness.events().counts);
      assert.ok(note.subscription_mismatch >= 1, `the follower notes the leader's other subscription: ${JSON.stringify(note)}`);
      assert.deepEqual(await old.evaluate(() => window.harness.docs('products')), [], 'the old tab is not given products');

      // The old tab goes (the user reloads it into the new version later): the new tab leads,
      // takes its own snapshot and then streams products live.
      await old.close();
      await waitFor(fresh, () => window.harness.status().role === 'leader' && window.harness.status().isConnected, null, { what: 'new tab leads', timeout: 20000 });
      await serverWrite(server, 'srv-tabs', [{ mid: 4, op: 'insert', collection: 'products', id: 'tp-2', fields: { name: 'jam' } }]);
      await waitFor(fresh, () => window.harness.get('products', 'tp-2'), null, { what: 'a live product on the new leader' });
      await sleep(300);  // its writes of the re-based replica
      await fresh.evaluate(() => window.harness.close());

      // The stored replica is now the new subscription's: a reload resumes without a re-base.
      await reopen(fresh, clientOptions(server, admin, { ...base, collections: ['bills', 'products'] }));
      const at = await fresh.evaluate(() => ({
        products: window.harness.docs('products').map((d) => d.id).sort(),
        bills: window.harness.docs('bills').map((d) => d.id).sort(),
        changed: window.harness.events().counts.subscription_changed ?? 0,
      }));
      assert.deepEqual(at.products, ['tp-1', 'tp-2'], 'products were stored by the new leader');
      assert.deepEqual(at.bills, ['tb-1', 'tb-2']);
      assert.equal(at.changed, 1, 'only the first open of the new version re-based');
      assert.deepEqual([...fresh.errors], []);
    } finally {
      await ctx.close();
    }
  });
});
