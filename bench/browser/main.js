// The page the Chromium benchmarks drive (bench/browser.mjs). Built by Vite into dist/ and
// served by syncline-server --static. Imports the packages by name, as an app would.
//   ?mode=drive      : idle; Node calls window.bench.* through page.evaluate
//   ?mode=cold       : createClient from persisted IndexedDB, time to first live-query result
//   ?mode=dexie      : open Dexie, plain read of every document (and an indexed top-50 query)
//   ?mode=dexie-top  : open Dexie, the same top 50 as the live query through its index (the
//                      idiomatic query an app makes at start)
import { createClient } from 'syncline';
import Dexie from 'dexie';

const params = new URLSearchParams(location.search);
const mode = params.get('mode') ?? 'drive';
const wall = () => performance.timeOrigin + performance.now();
const out = document.getElementById('out');

const QUERY = { where: 'status=eq.unpaid', orderBy: 'total.desc', limit: 50 };

function dexieDb() {
  const db = new Dexie('bench-dexie');
  db.version(1).stores({ bills: 'id, [status+total]' });
  return db;
}

let client = null;
const seen = {};
const phases = {};
let watching = new Set();

const bench = {
  ready: false,
  mode,
  // ---- end to end: tab A writes, tab B renders
  async start(options) {
    client = await createClient(options);
    const q = client.query('bills', { orderBy: 't.desc', limit: 20 });
    q.subscribe(() => {
      const docs = q.getSnapshot();
      let html = '';
      for (const d of docs) {
        if (watching.has(d.id) && !(d.id in seen)) seen[d.id] = wall();
        html += d.id + ' ';
      }
      out.textContent = html; // the "render"
    });
    return { role: client.status.role, clientId: client.status.clientId };
  },
  role() {
    return client?.status.role ?? null;
  },
  connected() {
    return !!client?.status.isConnected;
  },
  watch(id) {
    watching.add(id);
  },
  write(id, n) {
    const t = wall();
    const w = client.collection('bills').insert({ n, t }, { id });
    // Decomposition: outbox durable in IndexedDB (w.local) and server ack (w resolved).
    w.local.then(() => (phases[id] = { ...phases[id], local: wall() - t }));
    w.then(() => (phases[id] = { ...phases[id], ack: wall() - t }), () => {});
    return t;
  },
  phases(id) {
    return phases[id] ?? null;
  },
  seenAt(id) {
    return seen[id] ?? null;
  },
  async close() {
    await client?.close();
    client = null;
  },
  // ---- cold start seeding
  async seedSyncline(options, expected) {
    const c = await createClient(options);
    const q = c.query(options.collections[0], {});
    const t0 = performance.now();
    while (q.getSnapshot().length < expected && performance.now() - t0 < 120000) await new Promise((r) => setTimeout(r, 100));
    const n = q.getSnapshot().length;
    await c.close();
    return n;
  },
  async seedDexie(docs) {
    const db = dexieDb();
    await db.bills.clear();
    await db.bills.bulkPut(docs.map((d) => ({ id: d.id, version: d.version, ...d.fields })));
    const n = await db.bills.count();
    db.close();
    return n;
  },
  result: null,
};
window.bench = bench;

async function cold() {
  const tStart = performance.now();
  const c = await createClient({ url: location.origin, token: params.get('token'), collections: ['items'], persistence: 'indexeddb' });
  const tClient = performance.now();
  const q = c.query('items', QUERY);
  let docs = q.getSnapshot();
  if (!docs.length) {
    await new Promise((resolve) => {
      const un = q.subscribe(() => {
        if (q.getSnapshot().length) {
          un?.();
          resolve();
        }
      });
    });
    docs = q.getSnapshot();
  }
  const tFirst = performance.now();
  out.textContent = docs.map((d) => d.id).join(' ');
  bench.result = { fromNavigation: tFirst, fromScript: tFirst - tStart, createClient: tClient - tStart, docs: docs.length, first: docs[0]?.id };
  await c.close();
}

async function dexie() {
  const tStart = performance.now();
  const db = dexieDb();
  await db.open();
  const all = await db.bills.toArray();
  const tAll = performance.now();
  const top = await db.bills.where('[status+total]').between(['unpaid', Dexie.minKey], ['unpaid', Dexie.maxKey]).reverse().limit(50).toArray();
  const tTop = performance.now();
  out.textContent = top.map((d) => d.id).join(' ');
  bench.result = { fromNavigation: tAll, fromScript: tAll - tStart, count: all.length, topMs: tTop - tAll, top: top[0]?.id };
  db.close();
}

async function dexieTop() {
  const tStart = performance.now();
  const db = dexieDb();
  await db.open();
  const top = await db.bills.where('[status+total]').between(['unpaid', Dexie.minKey], ['unpaid', Dexie.maxKey]).reverse().limit(50).toArray();
  const tTop = performance.now();
  out.textContent = top.map((d) => d.id).join(' ');
  bench.result = { fromNavigation: tTop, fromScript: tTop - tStart, count: top.length, top: top[0]?.id };
  db.close();
}

if (mode === 'cold') cold().catch((e) => (bench.result = { error: String(e && e.stack ? e.stack : e) }));
else if (mode === 'dexie') dexie().catch((e) => (bench.result = { error: String(e && e.stack ? e.stack : e) }));
else if (mode === 'dexie-top') dexieTop().catch((e) => (bench.result = { error: String(e && e.stack ? e.stack : e) }));
bench.ready = true;
