// Crash during persistence, shown deterministically: a mutation must never leave the
// tab before its outbox record is durable, or a crash at that moment makes the next owner of
// the slot reuse its mid (the server answers `duplicate` and the write is lost). The race: the
// send path flushes, and a write made while that flush is in progress is already in the
// engine's outbox when the flush returns. Outbox transactions are slowed down here (kept open
// for 250 ms) while the page writes every 40 ms, so that window is hit on every round; every
// mutation that goes out (fetch body or WebSocket frame) is checked against the moment its
// outbox transaction that covered it completed (an outbox record with nextMid above it).
// Background: docs/decisions/0001-send-only-the-durable-outbox-prefix.md.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startAppServer, launch, openHarness, clientOptions, waitFor, waitUntil, makeToken, serverDocs,
} from './helpers.mjs';

const admin = makeToken('admin-durable-send', 'admin');
let server;
let chrome;
before(async () => {
  server = await startAppServer();
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
  await server?.cleanup();
});

/** Keeps every readwrite transaction on the outbox store open for __slow.ms after its put, and
 * records when each mutation is sent (HTTP body or WebSocket frame). */
function instrument(ctx) {
  return ctx.addInitScript(() => {
    const slow = { ms: 0 };
    const sent = [];
    window.__slow = slow;
    window.__sent = sent;
    const durable = [];
    window.__durable = durable;
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function patchedPut(...args) {
      const r = put.apply(this, args);
      const rec = args[0];
      if (this.name === 'outboxes' && rec?.outbox) {
        const tx = this.transaction;
        tx.addEventListener('complete', () => durable.push({ at: performance.now(), client: rec.clientId, nextMid: rec.outbox.nextMid }));
      }
      if (slow.ms > 0 && this.name === 'outboxes') {
        const until = performance.now() + slow.ms;
        const store = this;
        const spin = () => {
          if (performance.now() < until) store.count().onsuccess = spin;
        };
        spin();
      }
      return r;
    };
    const record = (text) => {
      try {
        const body = JSON.parse(text);
        if (Array.isArray(body.mutations)) sent.push({ at: performance.now(), client: body.client, mids: body.mutations.map((m) => m.mid) });
      } catch {
        /* not a mutation batch */
      }
    };
    const origFetch = window.fetch;
    window.fetch = function patchedFetch(input, init) {
      if (String(input).includes('/v1/mutations') && typeof init?.body === 'string') record(init.body);
      return origFetch.call(this, input, init);
    };
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function patchedSend(data) {
      if (typeof data === 'string') record(data);
      return send.call(this, data);
    };
  });
}

for (const transport of ['sse', 'websocket']) {
  test(`no mutation is sent before its outbox record is durable (${transport}, writes during slow outbox flushes)`, { timeout: 120_000 }, async () => {
    const ctx = await chrome.browser.newContext();
    await instrument(ctx);
    try {
      const p = await openHarness(ctx, server, clientOptions(server, admin, { transport, name: `durable-${transport}` }));
      await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected' });
      const prefix = `durable-${transport}-`;
      const clientId = await p.evaluate(async (prefix) => {
        window.__slow.ms = 250;
        const writes = [];
        for (let i = 0; i < 50; i++) {
          const w = window.harness.write('insert', 'bills', `${prefix}${i}`, { total: i, status: 'unpaid' });
          writes.push(window.harness.localOf(w.key));
          await new Promise((r) => setTimeout(r, 40));
        }
        await Promise.all(writes);
        window.__slow.ms = 0;
        return window.harness.status().clientId;
      }, prefix);
      const ids = Array.from({ length: 50 }, (_, i) => `${prefix}${i}`);
      await waitUntil(async () => {
        const have = new Set((await serverDocs(server, admin, 'bills')).map((d) => d.id));
        return ids.every((id) => have.has(id));
      }, { what: 'all 50 writes on the server', timeout: 30000 });
      const sent = (await p.evaluate(() => window.__sent)).filter((s) => s.client === clientId);
      const durable = (await p.evaluate(() => window.__durable)).filter((d) => d.client === clientId);
      const durableAt = (mid) => durable.find((d) => d.nextMid > mid)?.at;
      const early = [];
      for (const s of sent) {
        for (const mid of s.mids) {
          const at = durableAt(mid);
          if (at === undefined || s.at < at) early.push({ mid, sentAt: Math.round(s.at), durableAt: at && Math.round(at) });
        }
      }
      console.log(`[durable-send ${transport}] 50 writes every 40 ms, outbox transactions held 250 ms: ${sent.length} batches sent, ` +
        `mids per batch max ${Math.max(...sent.map((s) => s.mids.length))}, sent before durable ${early.length}`);
      assert.ok(sent.length > 0, 'batches were observed');
      assert.deepEqual(early.slice(0, 5), [], 'a mutation was sent before its outbox record was durable');
      assert.deepEqual(p.errors, []);
    } finally {
      await ctx.close();
    }
  });
}
