// End-to-end: the real client in Debian's chromium against a real syncline-server on
// loopback, over both transports: cross-context rendering, pending and confirmed writes, tab
// hand-over, rollback of a rejected write, reconnect after a server kill, offline writes.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startAppServer, launchBrowser, openHarness, clientOptions, waitFor, waitUntil, makeToken,
  serverDocs, metrics, metric, sleep, api,
} from './helpers.mjs';

const admin = makeToken('admin-1', 'admin');
const admin2 = makeToken('admin-2', 'admin');

for (const transport of ['sse', 'websocket']) {
  describe(`transport ${transport}`, () => {
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

    test('an insert in one browser context renders in another', async () => {
      const ctxA = await chrome.browser.newContext();
      const ctxB = await chrome.browser.newContext();
      try {
        const a = await openHarness(ctxA, server, clientOptions(server, admin, { transport }));
        const b = await openHarness(ctxB, server, clientOptions(server, admin2, { transport }));
        for (const p of [a, b]) await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected' });
        const latencies = [];
        for (let i = 0; i < 5; i++) {
          const id = `lat-${transport}-${i}`;
          const w = await a.evaluate(([id, i]) => window.harness.write('insert', 'bills', id, { total: 10 + i, status: 'unpaid' }), [id, i]);
          assert.equal(w.visible, true, 'the writer sees its insert synchronously');
          const seen = await waitFor(b, (id) => window.harness.seenAt(id), id, { what: `${id} in context B` });
          latencies.push(seen - w.at);
        }
        latencies.sort((x, y) => x - y);
        console.log(`[e2e ${transport}] insert -> render in another context: p50 ${latencies[2]} ms, max ${latencies[4]} ms`);
        const docs = await b.evaluate(() => window.harness.docs('bills'));
        assert.equal(docs.filter((d) => d.id.startsWith(`lat-${transport}`)).length, 5);
        assert.deepEqual([...a.errors, ...b.errors], []);
      } finally {
        await ctxA.close();
        await ctxB.close();
      }
    });

    test('a live query shows a write pending, then confirmed with its version; unchanged documents keep their objects', async () => {
      const ctx = await chrome.browser.newContext();
      try {
        const p = await openHarness(ctx, server, clientOptions(server, admin, { transport, name: `confirm-${transport}` }));
        await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected' });
        const keep = `keep-${transport}`;
        const k = await p.evaluate((id) => window.harness.write('insert', 'bills', id, { total: 1, status: 'unpaid' }).key, keep);
        await waitFor(p, (key) => window.harness.outcome(key)?.state === 'applied', k, { what: 'first write applied' });
        await waitFor(p, (id) => window.harness.queryDocs().find((d) => d.id === id)?.pending === false, keep, { what: 'first write confirmed in the query' });
        await p.evaluate(() => window.harness.keepQuery());
        // Written, then confirmed by the server with exactly the fields the view already shows.
        const id = `confirm-${transport}`;
        const shown = await p.evaluate((id) => {
          const w = window.harness.write('insert', 'bills', id, { total: 2, status: 'unpaid' });
          return { key: w.key, doc: window.harness.queryDocs().find((d) => d.id === id) };
        }, id);
        assert.deepEqual(shown.doc, { id, version: 0, pending: true }, 'the query shows the write at once, pending');
        await waitFor(p, (key) => window.harness.outcome(key)?.state === 'applied', shown.key, { what: 'second write applied' });
        const seq = await p.evaluate((key) => window.harness.outcome(key).seq, shown.key);
        const confirmed = await waitFor(p, (id) => {
          const d = window.harness.queryDocs().find((x) => x.id === id);
          return d && !d.pending ? d : null;
        }, id, { what: 'the query shows the write confirmed' });
        assert.equal(confirmed.version, seq, 'the confirmed document carries the version the server gave it');
        const same = await p.evaluate(() => window.harness.sameObjects());
        assert.ok(same.kept >= 1, `the kept snapshot holds the first write: ${JSON.stringify(same)}`);
        assert.deepEqual(same, { kept: same.kept, same: same.kept, other: 0, frozen: true }, 'unchanged documents are the same frozen objects in the new snapshot');
        assert.deepEqual(p.errors, []);
      } finally {
        await ctx.close();
      }
    });

    test('two tabs share one stream; leader hand-over loses and duplicates nothing', async () => {
      const ctx = await chrome.browser.newContext();
      try {
        const before = metric(await metrics(server), 'syncline_mutations_total{status="applied"}') ?? 0;
        const opts = clientOptions(server, admin, { transport, name: `tabs-${transport}` });
        const t1 = await openHarness(ctx, server, opts);
        const t2 = await openHarness(ctx, server, opts);
        for (const p of [t1, t2]) await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected' });
        const roles = await Promise.all([t1, t2].map((p) => p.evaluate(() => window.harness.status().role)));
        assert.deepEqual([...roles].sort(), ['follower', 'leader']);
        const label = transport === 'sse' ? 'sse' : 'websocket';
        await waitUntil(async () => metric(await metrics(server), `syncline_connections{transport="${label}"}`) === 1, { what: 'exactly one stream' });

        const written = [];
        for (let i = 0; i < 4; i++) {
          for (const [n, p] of [[1, t1], [2, t2]]) {
            const id = `tab${n}-${transport}-${i}`;
            // Resolves once the write is durable locally: the contract that makes closing safe.
            await p.evaluate((id) => window.harness.writeDurably('insert', 'bills', id, { total: 1, status: 'unpaid' }), id);
            written.push(id);
          }
        }
        // Close the leader right after writing, then keep writing in the survivor.
        const [leader, follower] = roles[0] === 'leader' ? [t1, t2] : [t2, t1];
        await leader.close();
        await waitFor(follower, () => window.harness.status().role === 'leader', null, { what: 'follower takes over' });
        for (let i = 0; i < 3; i++) {
          const id = `after-${transport}-${i}`;
          await follower.evaluate((id) => window.harness.write('insert', 'bills', id, { total: 2, status: 'unpaid' }), id);
          written.push(id);
        }
        let missing = written;
        await waitUntil(async () => {
          const docs = await serverDocs(server, admin, 'bills');
          missing = written.filter((id) => !docs.some((d) => d.id === id));
          return missing.length === 0;
        }, { what: 'every write on the server', timeout: 20000 }).catch((e) => {
          throw new Error(`${e.message}; missing ${missing.join(',')}`);
        });
        await waitFor(follower, () => window.harness.status().pendingOperations === 0, null, { what: 'outbox drained' });
        const after = metric(await metrics(server), 'syncline_mutations_total{status="applied"}');
        assert.equal(after - before, written.length, 'each mutation applied exactly once');
        const visible = await follower.evaluate(() => window.harness.docs('bills').map((d) => d.id));
        for (const id of written) assert.ok(visible.includes(id), `${id} visible in the surviving tab`);
        await waitUntil(async () => metric(await metrics(server), `syncline_connections{transport="${label}"}`) === 1, { what: 'still one stream' });
        assert.deepEqual(follower.errors, []);
      } finally {
        await ctx.close();
      }
    });

    test('a rejected double booking rolls back and reports its code', async () => {
      const ctx = await chrome.browser.newContext();
      try {
        const p = await openHarness(ctx, server, clientOptions(server, admin, { transport }));
        await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected' });
        const slot = { hall: `hall-${transport}`, date: '2026-12-01', slot: 'evening' };
        const r = await api(server, 'POST', '/v1/mutations', {
          token: admin2,
          body: { client: `other-${transport}`, mutations: [{ mid: 1, op: 'insert', collection: 'bookings', id: `first-${transport}`, fields: slot }] },
        });
        assert.equal(r.json.results[0].status, 'applied');
        await waitFor(p, (id) => !!window.harness.get('bookings', id), `first-${transport}`, { what: 'first booking' });
        const w = await p.evaluate((f) => window.harness.write('insert', 'bookings', f.id, f.fields), { id: `second-${transport}`, fields: slot });
        assert.equal(w.visible, true, 'optimistically shown');
        const outcome = await waitFor(p, (k) => { const o = window.harness.outcome(k); return o.state !== 'pending' && o; }, w.key, { what: 'verdict' });
        assert.equal(outcome.state, 'rejected');
        assert.equal(outcome.code, 'constraint');
        assert.equal(await p.evaluate((id) => window.harness.get('bookings', id), `second-${transport}`), null, 'rolled back');
        const events = await p.evaluate(() => window.harness.events());
        assert.ok(events.counts.rejected >= 1);
      } finally {
        await ctx.close();
      }
    });

    test('server killed mid-stream: the client reconnects and equals a fresh snapshot', async () => {
      const ctx = await chrome.browser.newContext();
      try {
        const p = await openHarness(ctx, server, clientOptions(server, admin, { transport }));
        await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected' });
        const writer = (async () => {
          for (let i = 0; i < 30; i++) {
            await api(server, 'POST', '/v1/mutations', {
              token: admin2,
              body: { client: `kill-writer-${transport}-${server.port}`, mutations: [{ mid: i + 1, op: 'insert', collection: 'bills', id: `k-${transport}-${server.port}-${i}`, fields: { total: i } }] },
            }).catch(() => null);
            await sleep(10);
          }
        })();
        await sleep(100);
        const port = server.port;
        server.proc.kill('SIGKILL');
        await server.exited;
        await writer;
        await waitFor(p, () => !window.harness.status().isConnected, null, { what: 'disconnect noticed' });
        const dir = server.dir;
        const restarted = await startAppServer({ dir, args: ['--port', String(port)] });
        server = restarted;
        // More changes after the restart, while the client is reconnecting.
        await api(server, 'POST', '/v1/mutations', {
          token: admin2,
          body: { client: `post-restart-${transport}`, mutations: [{ mid: 1, op: 'insert', collection: 'bills', id: `post-${transport}`, fields: { total: 7 } }] },
        });
        await waitFor(p, () => window.harness.status().isConnected, null, { what: 'reconnected by itself', timeout: 20000 });
        const fresh = await serverDocs(server, admin, 'bills');
        await waitFor(p, (n) => window.harness.docs('bills').length === n, fresh.length, { what: 'replica catches up' });
        const mine = await p.evaluate(() => window.harness.docs('bills'));
        const norm = (list) => list.map((d) => [d.id, d.version, JSON.stringify(d.fields)]).sort();
        assert.deepEqual(norm(mine), norm(fresh));
      } finally {
        await ctx.close();
      }
    });
  });
}

for (const transport of ['sse', 'websocket']) {
  describe(`offline (${transport})`, () => {
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

    test('offline writes survive a reload and reach the server exactly once', async () => {
      const ctx = await chrome.browser.newContext();
      try {
        const opts = clientOptions(server, admin, { transport, name: `offline-${transport}` });
        const page = await ctx.newPage();
        await page.goto(`${server.url}/harness.html?sw=1`);
        await waitFor(page, () => window.harness?.swReady(), null, { what: 'service worker in control' });
        await page.reload();  // every asset now passes through the worker and is cached
        await page.waitForFunction(() => window.harnessReady === true);
        await page.evaluate((o) => window.harness.start(o), opts);
        await waitFor(page, () => window.harness.status().isConnected, null, { what: 'connected' });
        const before = metric(await metrics(server), 'syncline_mutations_total{status="applied"}') ?? 0;

        await ctx.setOffline(true);
        await waitFor(page, () => !window.harness.status().isConnected, null, { what: 'offline noticed' });
        const ids = [0, 1, 2, 3, 4].map((i) => `off-${transport}-${i}`);
        const shown = await page.evaluate(async (ids) => {
          const seen = [];
          for (const id of ids) {
            const w = window.harness.write('insert', 'bills', id, { total: 5, status: 'unpaid' });
            seen.push(w.visible);
          }
          await Promise.all(Object.values(window.harness.outcomes()).length ? [] : []);
          return { seen, pending: window.harness.status().pendingOperations };
        }, ids);
        assert.deepEqual(shown.seen, [true, true, true, true, true], 'shown at once');
        assert.equal(shown.pending, 5);
        // Let the outbox reach IndexedDB, then reload while still offline.
        await page.evaluate(() => new Promise((r) => setTimeout(r, 200)));
        await page.reload();
        await page.waitForFunction(() => window.harnessReady === true);
        await page.evaluate((o) => window.harness.start(o), opts);
        const after = await page.evaluate(() => ({ docs: window.harness.docs('bills'), status: window.harness.status() }));
        for (const id of ids) assert.ok(after.docs.some((d) => d.id === id && d.pending), `${id} restored from IndexedDB as pending`);
        assert.equal(after.status.pendingOperations, 5);
        assert.equal(after.status.isConnected, false);

        await ctx.setOffline(false);
        await waitFor(page, () => window.harness.status().isConnected && window.harness.status().pendingOperations === 0, null, { what: 'synced after coming back', timeout: 20000 });
        const docs = await serverDocs(server, admin, 'bills');
        for (const id of ids) assert.equal(docs.filter((d) => d.id === id).length, 1, `${id} on the server once`);
        const applied = metric(await metrics(server), 'syncline_mutations_total{status="applied"}');
        assert.equal(applied - before, 5, 'each offline mutation applied exactly once');
      } finally {
        await ctx.close();
      }
    });
  });
}
