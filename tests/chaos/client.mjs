// Layer: tests/chaos. One chaos client: a Node child process running the real `syncline`
// runtime (wasm engine + js-wrapper) over a real WebSocket and fetch, persisting to a
// file-backed localStorage so it can be SIGKILLed and restarted from its persisted state.
// WebSocket clients send mutations as `mutate` frames, SSE clients as POST /v1/mutations.
//
// Started by tests/chaos/harness.mjs with fork(); argv[2] is a JSON config
// {idx, seed, incarnation, url, token, sub, role, transport, storageDir, collections, customers,
// opMinMs, opMaxMs}. transport 'sse' uses lib/event-source.mjs (Node 20 has no EventSource).
// It performs seeded random inserts, patches, conditional updates and deletes and reports every
// write over IPC: issued (mid assigned), local (outbox durable), applied (seq), rejected (code).
// Commands from the parent: offline, online, write(bool), status, dump, exit.
import WebSocket from 'ws';
import { NodeEventSource } from './lib/event-source.mjs';
import { FileStorage } from './lib/file-storage.mjs';
import { rng } from './lib/rng.mjs';

const cfg = JSON.parse(process.argv[2]);
globalThis.WebSocket = WebSocket;
globalThis.EventSource = NodeEventSource;
globalThis.localStorage = new FileStorage(cfg.storageDir, { fsync: cfg.fsync !== false });

const send = (m) => {
  try {
    process.send?.(m);
  } catch {
    /* parent gone */
  }
};
process.on('unhandledRejection', (e) => send({ t: 'error', message: `unhandledRejection: ${e?.stack ?? e}` }));
process.on('uncaughtException', (e) => send({ t: 'error', message: `uncaughtException: ${e?.stack ?? e}` }));
process.on('disconnect', () => process.exit(0));

const { createClient } = await import('syncline');
const r = rng(`${cfg.seed}/client/${cfg.idx}/${cfg.incarnation}`);

const client = await createClient({
  url: cfg.url,
  token: cfg.token,
  transport: cfg.transport ?? 'websocket',
  collections: cfg.collections,
  persistence: 'localstorage',
  name: `chaos-${cfg.idx}`,
  backoff: { baseMs: 100, capMs: 1000, heartbeatTimeoutMs: 3000 },
});
const clientId = client.status.clientId;
let writing = !cfg.readOnly;
let n = 0;

const HALLS = ['h1', 'h2', 'h3'];
const DATES = ['2030-01-01', '2030-01-02'];
const SLOTS = ['am', 'pm', 'eve'];
const STATUSES = ['unpaid', 'paid', 'void', 'late'];

function tagFor() {
  return `${cfg.idx}.${cfg.incarnation}.${++n}`;
}

function live(collection) {
  return client.collection(collection).all();
}

function issue(kind, collection, id, make) {
  const tag = tagFor();
  let w;
  try {
    w = make(tag);
  } catch (e) {
    send({ t: 'error', message: `write threw synchronously (${kind} ${collection}/${id}): ${e?.code} ${e?.message}` });
    return;
  }
  const base = { clientId, mid: w.mid, kind, collection, id: w.id, tag };
  send({ t: 'issued', ...base });
  w.local.then(
    () => send({ t: 'local', clientId, mid: w.mid }),
    (e) => send({ t: 'local_failed', clientId, mid: w.mid, code: e?.code, message: e?.message }),
  );
  w.then(
    (res) => send({ t: 'applied', clientId, mid: w.mid, seq: res.seq }),
    (e) => send({ t: 'rejected', clientId, mid: w.mid, code: e?.code, message: e?.message }),
  );
}

function adminOp() {
  const roll = r.next();
  const bills = live('bills');
  const products = live('products');
  const bookings = live('bookings');
  if (roll < 0.25 || bills.length < 3) {
    return issue('insert', 'bills', null, (tag) =>
      client.collection('bills').insert({ customer_id: r.pick(cfg.customers), amount: r.int(1, 500), status: 'unpaid', tag }));
  }
  if (roll < 0.32) {
    return issue('insert', 'products', null, (tag) =>
      client.collection('products').insert({ name: `p${r.int(1, 99)}`, price: r.int(1, 99), stock: r.int(0, 20), tag }));
  }
  if (roll < 0.40) {
    const booking = { customer_id: r.pick(cfg.customers), hall: r.pick(HALLS), date: r.pick(DATES), slot: r.pick(SLOTS) };
    return issue('insert', 'bookings', null, (tag) => client.collection('bookings').insert({ ...booking, tag }));
  }
  if (roll < 0.62) {
    // Shallow patch: several fields, sometimes a removal (null), sometimes a scope move.
    const coll = r.chance(0.8) || !products.length ? 'bills' : 'products';
    const doc = r.pick(coll === 'bills' ? bills : products);
    if (!doc) return;
    const patch = {};
    if (coll === 'bills') {
      if (r.chance(0.6)) patch.status = r.pick(STATUSES);
      if (r.chance(0.5)) patch.amount = r.int(1, 500);
      if (r.chance(0.15)) patch.customer_id = r.pick(cfg.customers);
    } else {
      if (r.chance(0.7)) patch.stock = r.int(0, 20);
      if (r.chance(0.3)) patch.price = r.int(1, 99);
    }
    if (r.chance(0.2)) patch.note = r.chance(0.5) ? null : `n${r.int(1, 9)}`;
    return issue('patch', coll, doc.id, (tag) => client.collection(coll).update(doc.id, { ...patch, tag }));
  }
  if (roll < 0.78) {
    // Conditional update; sometimes with a stale base version (must be a conflict).
    const doc = r.pick(bills);
    if (!doc) return;
    const base = r.chance(0.2) ? Math.max(1, doc.version - 1) : doc.version;
    return issue('cond_update', 'bills', doc.id, (tag) =>
      client.collection('bills').update(doc.id, { status: r.pick(STATUSES), amount: r.int(1, 500), tag }, { baseVersion: base }));
  }
  if (roll < 0.93) {
    const coll = r.chance(0.7) ? 'bills' : r.chance(0.5) ? 'bookings' : 'products';
    const pool = coll === 'bills' ? bills : coll === 'bookings' ? bookings : products;
    const doc = r.pick(pool);
    if (!doc) return;
    const opts = r.chance(0.5) ? { baseVersion: doc.version } : undefined;
    return issue(opts ? 'cond_delete' : 'delete', coll, doc.id, () => client.collection(coll).delete(doc.id, opts));
  }
  // Doomed writes: update of a missing document (conflict) or insert over a live id (conflict).
  if (r.chance(0.5) || !bills.length) {
    const id = `missing-${cfg.idx}-${r.int(1, 1e9)}`;
    return issue('patch_missing', 'bills', id, (tag) => client.collection('bills').update(id, { status: 'paid', tag }));
  }
  const doc = r.pick(bills);
  return issue('insert_dup', 'bills', doc.id, (tag) =>
    client.collection('bills').insert({ customer_id: r.pick(cfg.customers), amount: 1, status: 'unpaid', tag }, { id: doc.id }));
}

function customerOp() {
  const booking = { customer_id: cfg.sub, hall: r.pick(HALLS), date: r.pick(DATES), slot: r.pick(SLOTS) };
  return issue('insert', 'bookings', null, (tag) => client.collection('bookings').insert({ ...booking, tag }));
}

function loop() {
  if (writing) {
    try {
      if (cfg.role === 'admin') adminOp();
      else customerOp();
    } catch (e) {
      send({ t: 'error', message: `op failed: ${e?.stack ?? e}` });
    }
  }
  setTimeout(loop, r.int(cfg.opMinMs ?? 50, cfg.opMaxMs ?? 400));
}

process.on('message', async (m) => {
  switch (m.cmd) {
    case 'offline':
      client.goOffline();
      break;
    case 'online':
      client.goOnline();
      client.forceSync();
      break;
    case 'write':
      writing = !!m.on;
      break;
    case 'status':
      send({ t: 'status', req: m.req, status: client.status });
      break;
    case 'dump': {
      const docs = {};
      for (const c of cfg.collections) docs[c] = client.collection(c).all().map((d) => ({ id: d.id, version: d.version, fields: d.fields, pending: !!d.pending }));
      send({ t: 'dump', req: m.req, status: client.status, docs });
      break;
    }
    case 'exit':
      await client.close().catch(() => {});
      send({ t: 'exited', req: m.req });
      process.exit(0);
  }
});

send({ t: 'ready', clientId, status: client.status });
setTimeout(loop, r.int(0, 200));
