// Storage faults in the browser. Quota errors (injected by patching IDBObjectStore.prototype.put in
// the page) and a wiped IndexedDB database (deleted from another page of the same context, or
// cleared over CDP) must be reported to the app (status.storageError, a history entry, a rejected
// `local` promise), must not drop the pending outbox held in memory, and a wiped store must resync
// from the server.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startAppServer, launch, openHarness, openBlank, clientOptions, waitFor, waitUntil, makeToken, serverDocs,
  api, sleep, appliedCounts,
} from './helpers.mjs';

const admin = makeToken('admin-storage', 'admin');
const other = makeToken('admin-storage-writer', 'admin');
let server;
let chrome;
let extMid = 0;

before(async () => {
  server = await startAppServer();
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
  await server?.cleanup();
});

/** Another client writes straight to the server. */
async function serverInsert(id, fields = { total: 1, status: 'unpaid' }) {
  extMid++;
  const r = await api(server, 'POST', '/v1/mutations', {
    token: other, body: { client: `bf-storage-writer-${server.port}`, mutations: [{ mid: extMid, op: 'insert', collection: 'bills', id, fields }] },
  });
  assert.equal(r.json?.results?.[0]?.status, 'applied', r.text);
}

/** Makes IDBObjectStore.put throw QuotaExceededError for the stores listed in __quota.stores. */
function installQuotaPatch(ctx) {
  return ctx.addInitScript(() => {
    const q = { stores: [], hits: 0 };
    window.__quota = q;
    const orig = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function put(...args) {
      if (q.stores.includes(this.name)) {
        q.hits++;
        throw new DOMException('injected: the quota has been exceeded', 'QuotaExceededError');
      }
      return orig.apply(this, args);
    };
  });
}

/** Writes one insert and reports how its `local` promise settled. */
const writeAndSettleLocal = (page, id) => page.evaluate(async (id) => {
  try {
    await window.harness.writeDurably('insert', 'bills', id, { total: 3, status: 'unpaid' });
    return { local: 'resolved', status: window.harness.status() };
  } catch (e) {
    // The status as the app sees it when `local` rejects.
    return { local: 'rejected', code: e.code, message: e.message, status: window.harness.status() };
  }
}, id);

const storageEntries = (page) => page.evaluate(() => window.harness.events().entries.filter((e) => /storage/.test(e.type ?? e.kind ?? JSON.stringify(e))));

describe('quota exceeded', () => {
  test('an outbox write over quota: reported, kept in memory, not sent unpersisted, sent once after recovery', async () => {
    const ctx = await chrome.browser.newContext();
    await installQuotaPatch(ctx);
    try {
      const p = await openHarness(ctx, server, clientOptions(server, admin, { name: 'quota-1' }));
      await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected' });
      const before = await appliedCounts(server);
      await p.evaluate(() => (window.__quota.stores = ['outboxes']));
      const r = await writeAndSettleLocal(p, 'quota-a');
      assert.equal(r.local, 'rejected', 'local rejects when the outbox cannot be stored');
      assert.equal(r.code, 'quota_exceeded');
      assert.equal(r.status.storageError?.code, 'quota_exceeded', 'status.storageError when local rejects');
      await sleep(200);
      const st = await p.evaluate(() => window.harness.status());
      const early = (await serverDocs(server, admin, 'bills')).some((d) => d.id === 'quota-a');
      console.log(`[storage quota] 200 ms after the failed outbox write: storageError ${JSON.stringify(st.storageError)}, pending ${st.pendingOperations}, already on server: ${early}`);
      assert.equal(early, false, 'a mutation whose outbox record was never stored must not be sent (its mid is not durable)');
      assert.equal(st.storageError?.code, 'quota_exceeded', 'status.storageError stays set while the outbox is not stored');
      assert.equal(st.pendingOperations, 1, 'the write stays pending in memory');
      assert.ok(await p.evaluate(() => !!window.harness.get('bills', 'quota-a')), 'still shown optimistically');
      assert.ok((await storageEntries(p)).length >= 1, 'a storage_error history entry');
      // Not sent while it is not durable (a crash now would otherwise reuse its mid).
      await sleep(2500);
      assert.ok(!(await serverDocs(server, admin, 'bills')).some((d) => d.id === 'quota-a'), 'not sent before it is durable');
      const hits = await p.evaluate(() => window.__quota.hits);
      await p.evaluate(() => (window.__quota.stores = []));
      const t0 = Date.now();
      await waitFor(p, () => !window.harness.status().storageError && window.harness.status().pendingOperations === 0, null, { what: 'recovered and drained', timeout: 10000 });
      const recoverMs = Date.now() - t0;
      await waitUntil(async () => (await serverDocs(server, admin, 'bills')).some((d) => d.id === 'quota-a'), { what: 'on server' });
      const afterC = await appliedCounts(server);
      console.log(`[storage quota] injected QuotaExceededError ${hits} times; recovery after quota freed: ${recoverMs} ms; applied ${afterC.applied - before.applied} (expected 1)`);
      assert.equal(afterC.applied - before.applied, 1);
      assert.deepEqual(p.errors, []);
    } finally {
      await ctx.close();
    }
  });

  test('after a failed outbox write and a recovery, the stale retry must not roll the stored outbox back (mid reuse after reload)', async () => {
    const ctx = await chrome.browser.newContext();
    await installQuotaPatch(ctx);
    try {
      const opts = clientOptions(server, admin, { name: 'quota-2' });
      let p = await openHarness(ctx, server, opts);
      await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected' });
      const before = await appliedCounts(server);
      await p.evaluate(() => (window.__quota.stores = ['outboxes']));
      assert.equal((await writeAndSettleLocal(p, 'q2-a')).local, 'rejected');
      await p.evaluate(() => (window.__quota.stores = []));
      assert.equal((await writeAndSettleLocal(p, 'q2-b')).local, 'resolved');
      await waitFor(p, () => window.harness.status().pendingOperations === 0 && !window.harness.status().storageError, null, { what: 'a and b acknowledged' });
      await sleep(2500); // the 2 s retry of the failed flush runs now
      const stored = await p.evaluate(() => new Promise((res, rej) => {
        const r = indexedDB.open('syncline:quota-2');
        r.onsuccess = () => {
          const all = r.result.transaction('outboxes').objectStore('outboxes').getAll();
          all.onsuccess = () => { res(all.result.map((o) => ({ nextMid: o.outbox.nextMid, entries: o.outbox.entries.length }))); r.result.close(); };
          all.onerror = () => rej(all.error);
        };
      }));
      const mids = await p.evaluate(() => Object.keys(window.harness.outcomes()).map((k) => Number(k.split('#')[1])));
      await p.close();
      p = await openHarness(ctx, server, opts);
      await waitFor(p, () => window.harness.status().isConnected && window.harness.status().pendingOperations === 0, null, { what: 'reloaded and drained' });
      assert.equal((await writeAndSettleLocal(p, 'q2-c')).local, 'resolved');
      const outcome = await waitFor(p, () => { const o = Object.entries(window.harness.outcomes()).find(([k]) => k.startsWith('bills/q2-c#')); return o && o[1].state !== 'pending' && { key: o[0], ...o[1] }; }, null, { what: 'c settled' });
      const onServer = (await serverDocs(server, admin, 'bills')).some((d) => d.id === 'q2-c');
      const afterC = await appliedCounts(server);
      console.log(`[storage quota] mids used before reload ${JSON.stringify(mids)}; stored outbox after the 2 s retry ${JSON.stringify(stored)}; after reload c got ${outcome.key} -> ${outcome.state}; on server: ${onServer}; applied ${afterC.applied - before.applied} (expected 3)`);
      assert.ok(onServer, `write c was told "${outcome.state}" but is not on the server: its mid was reused (stored nextMid rolled back)`);
      assert.equal(afterC.applied - before.applied, 3);
    } finally {
      await ctx.close();
    }
  });

  test('documents received while storage fails are persisted once storage recovers (no silent gap after reload)', async () => {
    const ctx = await chrome.browser.newContext();
    await installQuotaPatch(ctx);
    try {
      const opts = clientOptions(server, admin, { name: 'quota-3' });
      let p = await openHarness(ctx, server, opts);
      await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected' });
      await p.evaluate(() => (window.__quota.stores = ['docs', 'meta', 'outboxes']));
      await serverInsert('q3-during');
      await waitFor(p, () => !!window.harness.get('bills', 'q3-during'), null, { what: 'q3-during received' });
      await waitFor(p, () => !!window.harness.status().storageError, null, { what: 'storage error reported' });
      await p.evaluate(() => (window.__quota.stores = []));
      await serverInsert('q3-after');
      await waitFor(p, () => !!window.harness.get('bills', 'q3-after'), null, { what: 'q3-after received' });
      await sleep(2500);
      await p.close();
      // Reload offline so only what was stored counts.
      await ctx.setOffline(true);
      p = await openHarness(ctx, server, opts);
      const ids = await p.evaluate(() => window.harness.docs('bills').map((d) => d.id));
      await ctx.setOffline(false);
      await waitFor(p, () => window.harness.status().isConnected, null, { what: 'reconnected' });
      await sleep(500);
      const online = await p.evaluate(() => window.harness.docs('bills').map((d) => d.id));
      const fresh = (await serverDocs(server, admin, 'bills')).map((d) => d.id);
      const missing = fresh.filter((id) => !online.includes(id));
      console.log(`[storage quota] stored replica after reload has q3-during: ${ids.includes('q3-during')}, q3-after: ${ids.includes('q3-after')}; after reconnect missing vs server: ${JSON.stringify(missing)}`);
      assert.deepEqual(missing, [], 'the replica equals the server after reload and reconnect');
    } finally {
      await ctx.close();
    }
  });
});

describe('wiped IndexedDB store', () => {
  async function setup(name) {
    const ctx = await chrome.browser.newContext();
    const opts = clientOptions(server, admin, { name });
    const p = await openHarness(ctx, server, opts);
    await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected' });
    for (let i = 0; i < 3; i++) await serverInsert(`${name}-seed-${i}`);
    await waitFor(p, (n) => !!window.harness.get('bills', `${n}-seed-2`), name, { what: 'seed received' });
    await sleep(100); // seeds stored
    return { ctx, opts, p };
  }

  async function pendingWrites(p, name, n = 3) {
    await p.evaluate(() => window.harness.goOffline());
    const ids = [];
    for (let i = 0; i < n; i++) {
      const id = `${name}-pending-${i}`;
      assert.equal((await writeAndSettleLocal(p, id)).local, 'resolved');
      ids.push(id);
    }
    return ids;
  }

  async function wipe(ctx, how, name) {
    const t0 = Date.now();
    if (how === 'deleteDatabase') {
      const other = await openBlank(ctx, server);
      const r = await other.evaluate((db) => new Promise((res) => {
        const q = indexedDB.deleteDatabase(db);
        let blocked = false;
        q.onblocked = () => (blocked = true);
        q.onsuccess = () => res({ ok: true, blocked });
        q.onerror = () => res({ ok: false, blocked, error: String(q.error) });
      }), `syncline:${name}`);
      await other.close();
      assert.ok(r.ok, JSON.stringify(r));
      return { ...r, ms: Date.now() - t0 };
    }
    const p = ctx.pages()[0];
    const s = await ctx.newCDPSession(p);
    await s.send('Storage.clearDataForOrigin', { origin: server.url, storageTypes: 'indexeddb' });
    await s.detach();
    return { ok: true, ms: Date.now() - t0 };
  }

  for (const how of ['deleteDatabase', 'cdp-clear']) {
    test(`wipe by ${how}: detected and reported to the app`, async () => {
      const name = `wipe-rep-${how}`;
      const { ctx, p } = await setup(name);
      try {
        const w = await wipe(ctx, how, name);
        await sleep(300);
        // The app keeps working: a write after the wipe.
        const r = await writeAndSettleLocal(p, `${name}-after`);
        let reported = null;
        try {
          reported = await waitFor(p, () => {
            const st = window.harness.status();
            const h = window.harness.events().entries.filter((e) => JSON.stringify(e).includes('storage'));
            return (st.storageError || h.length) ? { storageError: st.storageError, history: h.length } : null;
          }, null, { what: 'wipe reported', timeout: 3000 });
        } catch { /* asserted below */ }
        console.log(`[storage wipe ${how}] wiped in ${w.ms} ms (blocked: ${!!w.blocked}); write after wipe: local ${r.local}; reported to app: ${JSON.stringify(reported)}`);
        assert.ok(reported, 'a wiped store must be reported (status.storageError or a history entry)');
      } finally {
        await ctx.close();
      }
    });

    test(`wipe by ${how}: the pending outbox in memory is kept, sent exactly once, and stored again`, async () => {
      const name = `wipe-outbox-${how}`;
      const { ctx, opts, p } = await setup(name);
      try {
        const before = await appliedCounts(server);
        const ids = await pendingWrites(p, name);
        await wipe(ctx, how, name);
        await sleep(300);
        const st = await p.evaluate(() => window.harness.status());
        assert.equal(st.pendingOperations, ids.length, 'still pending in memory');
        for (const id of ids) assert.ok(await p.evaluate((id) => !!window.harness.get('bills', id), id), `${id} still shown`);
        // Durability: the outbox that was wiped must be written again (a crash now must not
        // lose writes whose `local` promise resolved). Give the runtime 3 s, then reload offline.
        await sleep(3000);
        await p.close();
        await ctx.setOffline(true);
        const p2 = await openHarness(ctx, server, opts);
        const restored = await p2.evaluate(() => window.harness.status().pendingOperations);
        await ctx.setOffline(false);
        await waitFor(p2, () => window.harness.status().isConnected && window.harness.status().pendingOperations === 0, null, { what: 'drained', timeout: 20000 });
        const docs = await serverDocs(server, admin, 'bills');
        const lost = ids.filter((id) => !docs.some((d) => d.id === id));
        const afterC = await appliedCounts(server);
        console.log(`[storage wipe ${how}] pending before wipe ${ids.length}; pending restored after reload ${restored}; lost ${lost.length}; applied ${afterC.applied - before.applied}`);
        assert.equal(restored, ids.length, 'the in-memory outbox was stored again after the wipe');
        assert.deepEqual(lost, []);
        assert.equal(afterC.applied - before.applied, ids.length);
      } finally {
        await ctx.close();
      }
    });

    test(`wipe by ${how}: pending writes held in memory still reach the server once (no reload)`, async () => {
      const name = `wipe-live-${how}`;
      const { ctx, p } = await setup(name);
      try {
        const before = await appliedCounts(server);
        const ids = await pendingWrites(p, name);
        await wipe(ctx, how, name);
        await sleep(300);
        await p.evaluate(() => window.harness.goOnline());
        await waitFor(p, () => window.harness.status().isConnected && window.harness.status().pendingOperations === 0, null, { what: 'drained', timeout: 20000 });
        const docs = await serverDocs(server, admin, 'bills');
        const afterC = await appliedCounts(server);
        console.log(`[storage wipe ${how}] live: pending ${ids.length}, on server ${ids.filter((id) => docs.some((d) => d.id === id)).length}, applied ${afterC.applied - before.applied}`);
        for (const id of ids) assert.ok(docs.some((d) => d.id === id), `${id} on the server`);
        assert.equal(afterC.applied - before.applied, ids.length);
      } finally {
        await ctx.close();
      }
    });

    test(`wipe by ${how}: after a reload the replica resyncs from the server`, async () => {
      const name = `wipe-resync-${how}`;
      const { ctx, opts, p } = await setup(name);
      try {
        await wipe(ctx, how, name);
        await sleep(300);
        // Life goes on after the wipe: a new change arrives and is stored (with its cursor).
        await serverInsert(`${name}-later`);
        await waitFor(p, (id) => !!window.harness.get('bills', id), `${name}-later`, { what: 'later change' });
        await sleep(300);
        await p.close();
        // Reopen offline (an app started without network shows what it stored), then reconnect.
        await ctx.setOffline(true);
        const p2 = await openHarness(ctx, server, opts);
        const stored = await p2.evaluate(() => window.harness.docs('bills').length);
        await ctx.setOffline(false);
        await waitFor(p2, () => window.harness.status().isConnected, null, { what: 'connected' });
        console.log(`[storage wipe ${how}] replica restored from the wiped+rewritten store: ${stored} docs`);
        const fresh = (await serverDocs(server, admin, 'bills')).map((d) => d.id).sort();
        let mine = [];
        await waitUntil(async () => {
          mine = (await p2.evaluate(() => window.harness.docs('bills').map((d) => d.id))).sort();
          return fresh.every((id) => mine.includes(id));
        }, { what: 'resync', timeout: 8000 }).catch(() => {});
        const missing = fresh.filter((id) => !mine.includes(id));
        console.log(`[storage wipe ${how}] after reload: server ${fresh.length} docs, replica ${mine.length}, missing ${missing.length} ${JSON.stringify(missing.slice(0, 5))}`);
        assert.deepEqual(missing, [], 'a wiped store resyncs from the server');
      } finally {
        await ctx.close();
      }
    });
  }

  // What chromium does after a hard kill that damaged its IndexedDB files: at the next start it
  // discards the origin's whole database. The localStorage marker can be gone too (chromium
  // writes localStorage to disk seconds after a change), so this removes both, while no page is
  // open, and starts the app again: the discard must be reported, and a first start must not be
  // (docs/decisions/0003-a-discarded-database-is-reported.md).
  test('a database discarded while the app was not running, localStorage marker and all: reported at the next start', async () => {
    const name = 'wipe-between-runs';
    const ctx = await chrome.browser.newContext();
    try {
      const opts = clientOptions(server, admin, { name });
      const wipedAtStart = (p) => p.evaluate(() => window.harness.events().entries
        .some((e) => e.type === 'storage_error' && e.data?.code === 'storage_wiped'));
      const p = await openHarness(ctx, server, opts);
      const first = await wipedAtStart(p);
      await p.evaluate(() => window.harness.close());
      await p.close();
      const blank = await openBlank(ctx, server);
      const r = await blank.evaluate((db) => new Promise((res) => {
        localStorage.removeItem(`${db}:idb`);
        const q = indexedDB.deleteDatabase(db);
        q.onsuccess = () => res('deleted');
        q.onerror = () => res(String(q.error));
      }), `syncline:${name}`);
      await blank.close();
      assert.equal(r, 'deleted');
      const p2 = await openHarness(ctx, server, opts);
      const second = await wipedAtStart(p2);
      const status = await p2.evaluate(() => window.harness.status().storageError);
      console.log(`[storage discard between runs] first start reported a wipe: ${first}; start after the discard: ${second} (status ${JSON.stringify(status)})`);
      assert.equal(first, false, 'a first start is not a wipe');
      assert.equal(second, true, 'the discarded database is reported as storage_wiped');
    } finally {
      await ctx.close();
    }
  });
});
