// Field operations and transactions in chromium against the real server: two browser contexts
// (two shop windows) each sell one of the same product with increment(-1, {min: 0}) and each mark
// the same bill paid in a transaction (conditional update + ledger credit). Offline then
// reconnected, and online at the same instant: stock drops by exactly 2, exactly one credit
// exists, and the losing window's transaction promise rejects with conflict naming the bill
// update and the bill as it is.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startAppServer, launchBrowser, openHarness, clientOptions, waitFor, makeToken, serverDocs, api, testConfig,
} from './helpers.mjs';

const tokenA = makeToken('shop-a', 'admin');
const tokenB = makeToken('shop-b', 'admin');
const config = testConfig({ collections: { ledger_entries: { read: { admin: 'all' }, write: { admin: 'all' } } } });
const COLLECTIONS = ['products', 'bills', 'ledger_entries'];

let seedMid = 0;
async function seed(server, mutations) {
  const r = await api(server, 'POST', '/v1/mutations', {
    token: tokenA,
    body: { client: 'atomic-seed', mutations: mutations.map((m) => ({ mid: ++seedMid, ...m })) },
  });
  assert.equal(r.status, 200, r.text);
  for (const x of r.json.results) assert.equal(x.status, 'applied', r.text);
}

const sell = (product) => ({ op: 'update', collection: 'products', id: product, spec: { stock: { $increment: [-1, { min: 0 }] } } });
const markPaid = (bill, total) => [
  { op: 'update', collection: 'bills', id: bill, fields: { status: 'paid', paid_at: { $serverTime: true } }, options: { if: 'status=eq.unpaid' } },
  { op: 'insert', collection: 'ledger_entries', fields: { bill_id: bill, kind: 'credit', amount: total } },
];

/** In one page: the sale, then the payment group. Returns their outcome keys and what the view shows. */
function act(page, product, bill, total, startAt = 0) {
  return page.evaluate(async ({ s, members, bill, startAt }) => {
    if (startAt) await window.harness.at(startAt);
    const sale = window.harness.writeOps(s.op, s.collection, s.id, s.spec);
    const tx = window.harness.transaction(members);
    const view = {
      stock: window.harness.get('products', s.id).fields.stock,
      status: window.harness.get('bills', bill).fields.status,
      credits: window.harness.docs('ledger_entries').filter((d) => d.fields.bill_id === bill).length,
    };
    await Promise.all([window.harness.localOf(sale.key), window.harness.localOf(tx.key)]);
    return { sale: sale.key, tx: tx.key, view };
  }, { s: sell(product), members: markPaid(bill, total), bill, startAt });
}

const verdict = (page, key) =>
  waitFor(page, (k) => { const o = window.harness.outcome(k); return o && o.state !== 'pending' && o; }, key, { what: `verdict of ${key}`, timeout: 20000 });

/** Both windows settled: one payment applied, the other refused with a conflict on the bill. */
async function checkOutcome(server, pages, acts, { product, bill, total }) {
  const sales = await Promise.all(pages.map((p, i) => verdict(p, acts[i].sale)));
  assert.deepEqual(sales.map((s) => s.state), ['applied', 'applied'], 'both sales count');
  const txs = await Promise.all(pages.map((p, i) => verdict(p, acts[i].tx)));
  const winner = txs.findIndex((t) => t.state === 'applied');
  assert.ok(winner >= 0, `one payment applied: ${JSON.stringify(txs)}`);
  const lost = txs[1 - winner];
  assert.equal(lost.state, 'rejected', `the other payment is refused: ${JSON.stringify(txs)}`);
  assert.equal(lost.code, 'conflict');
  assert.equal(lost.failedIndex, 0, 'the failed member is the bill update');
  assert.equal(lost.collection, 'bills');
  assert.equal(lost.id, bill);
  assert.equal(typeof lost.failedMid, 'number');
  assert.match(lost.message, /status=eq\.unpaid/);
  assert.equal(lost.current?.fields?.status, 'paid', `the losing window sees why: ${JSON.stringify(lost.current)}`);

  const products = await serverDocs(server, tokenA, 'products');
  assert.equal(products.find((d) => d.id === product).fields.stock, 8, 'stock dropped by exactly 2');
  const credits = (await serverDocs(server, tokenA, 'ledger_entries')).filter((d) => d.fields.bill_id === bill);
  assert.equal(credits.length, 1, 'exactly one payment credit');
  assert.equal(credits[0].fields.amount, total);
  const b = (await serverDocs(server, tokenA, 'bills')).find((d) => d.id === bill);
  assert.equal(b.fields.status, 'paid');
  assert.equal(typeof b.fields.paid_at, 'number', 'paid_at is the server commit time');

  // Every window converges on the server's state: the loser's group left its view whole.
  for (const p of pages) {
    await waitFor(p, ({ product, bill }) => {
      const stock = window.harness.get('products', product)?.fields.stock;
      const credits = window.harness.docs('ledger_entries').filter((d) => d.fields.bill_id === bill);
      return stock === 8 && credits.length === 1 && !credits[0].pending && window.harness.status().pendingOperations === 0;
    }, { product, bill }, { what: 'window shows stock 8 and one credit' });
  }
  return { winner, lost };
}

for (const transport of ['sse', 'websocket']) {
  describe(`atomic writes in two windows (${transport})`, () => {
    let server;
    let chrome;
    before(async () => {
      server = await startAppServer({ config });
      chrome = await launchBrowser();
    });
    after(async () => {
      await chrome?.close();
      await server?.cleanup();
    });

    async function twoWindows(name, product, bill, total) {
      await seed(server, [
        { op: 'insert', collection: 'products', id: product, fields: { name: 'Widget', stock: 10 } },
        { op: 'insert', collection: 'bills', id: bill, fields: { number: 1001, status: 'unpaid', total } },
      ]);
      const ctxs = [await chrome.browser.newContext(), await chrome.browser.newContext()];
      const pages = [];
      for (const [i, ctx] of ctxs.entries()) {
        const token = i === 0 ? tokenA : tokenB;
        pages.push(await openHarness(ctx, server, clientOptions(server, token, { transport, collections: COLLECTIONS, name: `${name}-${i}` })));
      }
      for (const p of pages) {
        await waitFor(p, ({ product, bill }) => window.harness.status().isConnected && !!window.harness.get('products', product) && !!window.harness.get('bills', bill),
          { product, bill }, { what: 'connected with the product and the bill' });
      }
      return { ctxs, pages };
    }

    test('both offline: each sells one and marks the bill paid, then both reconnect', async () => {
      const product = `p-off-${transport}`;
      const bill = `b-off-${transport}`;
      const total = 4200;
      const { ctxs, pages } = await twoWindows(`atomic-off-${transport}`, product, bill, total);
      try {
        for (const ctx of ctxs) await ctx.setOffline(true);
        for (const p of pages) await waitFor(p, () => !window.harness.status().isConnected, null, { what: 'offline noticed' });
        const acts = [];
        for (const p of pages) acts.push(await act(p, product, bill, total));
        for (const a of acts) {
          // Each window shows its own sale and payment at once: the increment on the newest
          // base it knows, the bill paid, its one credit.
          assert.deepEqual(a.view, { stock: 9, status: 'paid', credits: 1 });
        }
        await Promise.all(ctxs.map((ctx) => ctx.setOffline(false)));
        const { lost } = await checkOutcome(server, pages, acts, { product, bill, total });
        console.log(`[e2e atomic ${transport} offline] losing window: ${lost.code} at member ${lost.failedIndex} (${lost.collection}/${lost.id}): ${lost.message}`);
        assert.deepEqual(pages.flatMap((p) => p.errors), []);
      } finally {
        for (const ctx of ctxs) await ctx.close();
      }
    });

    test('two tabs: a group made in one shows whole in the other at once, and a refused one leaves both whole', async () => {
      const product = `p-tabs-${transport}`;
      const bill = `b-tabs-${transport}`;
      await seed(server, [
        { op: 'insert', collection: 'products', id: product, fields: { name: 'Widget', stock: 10 } },
        { op: 'insert', collection: 'bills', id: bill, fields: { number: 1002, status: 'unpaid', total: 300 } },
      ]);
      const ctx = await chrome.browser.newContext();
      try {
        const opts = clientOptions(server, tokenA, { transport, collections: COLLECTIONS, name: `atomic-tabs-${transport}` });
        const a = await openHarness(ctx, server, opts);
        const b = await openHarness(ctx, server, opts);
        for (const p of [a, b]) {
          await waitFor(p, ({ product, bill }) => !!window.harness.get('products', product) && !!window.harness.get('bills', bill), { product, bill }, { what: 'seeded documents' });
        }
        await b.evaluate(() => window.harness.traceChanges());
        await ctx.setOffline(true);
        await waitFor(a, () => !window.harness.status().isOnline, null, { what: 'offline noticed' });
        const tx = await a.evaluate(({ product, bill }) => window.harness.transaction([
          { op: 'update', collection: 'bills', id: bill, fields: { status: 'paid' }, options: { if: 'status=eq.unpaid' } },
          { op: 'insert', collection: 'ledger_entries', fields: { bill_id: bill, kind: 'credit', amount: 300 } },
          { op: 'update', collection: 'products', id: product, fields: { stock: { $increment: [-1, { min: 0 }] } } },
        ]), { product, bill });
        const view = (p) => p.evaluate(({ product, bill, credit }) => ({
          stock: window.harness.get('products', product)?.fields.stock,
          status: window.harness.get('bills', bill)?.fields.status,
          credit: !!window.harness.get('ledger_entries', credit),
        }), { product, bill, credit: tx.ids[1] });
        await waitFor(b, (credit) => !!window.harness.get('ledger_entries', credit), tx.ids[1], { what: 'the group in the other tab', timeout: 3000 });
        assert.deepEqual(await view(b), { stock: 9, status: 'paid', credit: true }, 'the other tab shows every member');
        // Someone else marks the bill paid on the server; the group is refused when it arrives.
        const r = await api(server, 'POST', '/v1/mutations', {
          token: tokenB, body: { client: `tabs-rival-${transport}`, mutations: [{ mid: 1, op: 'update', collection: 'bills', id: bill, fields: { status: 'paid', by: 'rival' } }] },
        });
        assert.equal(r.json.results[0].status, 'applied');
        await ctx.setOffline(false);
        const outcome = await verdict(a, tx.key);
        assert.deepEqual([outcome.state, outcome.code, outcome.failedIndex, outcome.id], ['rejected', 'conflict', 0, bill]);
        assert.equal(outcome.current?.fields?.by, 'rival');
        for (const p of [a, b]) {
          await waitFor(p, ({ product, bill, credit }) => window.harness.get('products', product)?.fields.stock === 10
            && window.harness.get('bills', bill)?.fields.by === 'rival' && !window.harness.get('ledger_entries', credit),
          { product, bill, credit: tx.ids[1] }, { what: 'the group gone, the rival payment shown' });
        }
        // In the other tab the group arrived in one step and left in one step.
        const trace = await b.evaluate(() => window.harness.changeTrace());
        const ofGroup = trace.filter((c) => c.id === tx.ids[1] || c.id === product);
        const appear = ofGroup.filter((c) => c.pending && (c.type === 'appear' || c.id === product));
        const leave = ofGroup.filter((c) => !c.pending);
        assert.equal(new Set(appear.map((c) => c.turn)).size, 1, `shown in one step: ${JSON.stringify(trace)}`);
        assert.equal(new Set(leave.map((c) => c.turn)).size, 1, `taken back in one step: ${JSON.stringify(trace)}`);
        assert.deepEqual(leave.map((c) => [c.id, c.type]).sort(), [[product, 'update'], [tx.ids[1], 'disappear']].sort());
        console.log(`[e2e atomic ${transport} tabs] other tab's changes of the group (turn, id, type, pending): ${ofGroup.map((c) => `${c.turn} ${c.id} ${c.type} ${c.pending}`).join('; ')}`);
        assert.deepEqual([...a.errors, ...b.errors], []);
      } finally {
        await ctx.close();
      }
    });

    test('both online at the same instant', async () => {
      const product = `p-on-${transport}`;
      const bill = `b-on-${transport}`;
      const total = 990;
      const { ctxs, pages } = await twoWindows(`atomic-on-${transport}`, product, bill, total);
      try {
        const startAt = Date.now() + 300;
        const acts = await Promise.all(pages.map((p) => act(p, product, bill, total, startAt)));
        for (const a of acts) assert.equal(a.view.credits, 1, 'each window shows its payment at once');
        const { lost } = await checkOutcome(server, pages, acts, { product, bill, total });
        console.log(`[e2e atomic ${transport} online] losing window: ${lost.code} at member ${lost.failedIndex}: ${lost.message}`);
        assert.deepEqual(pages.flatMap((p) => p.errors), []);
      } finally {
        for (const ctx of ctxs) await ctx.close();
      }
    });
  });
}
