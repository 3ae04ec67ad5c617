// Layer: tests/chaos. One chaos client: a Node child process running the real `syncline`
// runtime (wasm engine + js-wrapper) over a real WebSocket and fetch, persisting to a
// file-backed localStorage so it can be SIGKILLed and restarted from its persisted state.
// WebSocket clients send mutations as `mutate` frames, SSE clients as POST /v1/mutations.
//
// Started by tests/chaos/harness.mjs with fork(); argv[2] is a JSON config
// {idx, seed, incarnation, url, token, sub, role, transport, storageDir, collections, customers,
// counters, counterShare, opMinMs, opMaxMs}. transport 'sse' uses lib/event-source.mjs (Node 20
// has no EventSource). It performs seeded random inserts, patches, conditional updates and deletes
// and, as an admin, counter operations on the `products` documents named in `counters`:
// increments, decrements bounded at min 0, conditional restocks (`if`), transfers (one
// client.transaction: A -= x with min 0, B += x, a stock_transactions record) and payments (one
// client.transaction: a bill marked paid `if` unpaid, a counter increment, a record). Every write
// is reported over IPC: issued / issued_group (mids assigned; a group in one message, so a kill
// right after it never leaves half a group in the parent's ledger), local (outbox durable),
// applied (seq), rejected (code; a group's members each get the group's code).
// It also reports what its streams delivered (lib/stream-record.mjs: per connection the cursor,
// the node that answered, each change's seq and digest), which the harness checks against the log.
// Commands from the parent: offline, online, write(bool), status, dump, exit.
import WebSocket from 'ws';
import { NodeEventSource } from './lib/event-source.mjs';
import { FileStorage } from './lib/file-storage.mjs';
import { rng } from './lib/rng.mjs';
import { recordStreams } from './lib/stream-record.mjs';

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
// What the streams deliver, for the harness's check against the server's log (wraps the
// WebSocket, EventSource and fetch above before the runtime is loaded).
const streams = recordStreams((recs) => send({ t: 'streams', incarnation: cfg.incarnation, recs }));

const { createClient, increment, serverTime } = await import('syncline');
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


/** Tells the parent when a write was accepted locally and what the server answered. */
function reportVerdicts(w) {
  w.local.then(
    () => send({ t: 'local', clientId, mid: w.mid }),
    (e) => send({ t: 'local_failed', clientId, mid: w.mid, code: e?.code, message: e?.message }),
  );
  w.then(
    (res) => send({ t: 'applied', clientId, mid: w.mid, seq: res.seq }),
    (e) => send({ t: 'rejected', clientId, mid: w.mid, code: e?.code, message: e?.message }),
  );
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
  reportVerdicts(w);
}

// ---------------------------------------------------------------------- counters and groups
const COUNTERS = cfg.counters ?? [];
const isCounter = (id) => COUNTERS.includes(id);

/** One increment of a counter: `inc` tells the parent what the server must add if it applies it. */
function incOf(id, by, bounds) {
  return { doc: id, field: 'stock', by, ...(bounds ?? {}) };
}

function issueCounter(kind, id, by, bounds, opts) {
  const tag = tagFor();
  let w;
  try {
    w = client.collection('products').update(id, { stock: increment(by, bounds), tag }, opts);
  } catch (e) {
    send({ t: 'error', message: `counter write threw synchronously (${kind} ${id}): ${e?.code} ${e?.message}` });
    return;
  }
  send({ t: 'issued', clientId, mid: w.mid, kind, collection: 'products', id, tag, inc: incOf(id, by, bounds) });
  reportVerdicts(w);
}

/** members: [{ kind, collection, id, fields, opts, inc }] in order; fields may hold field ops. */
function issueGroup(kind, members) {
  for (const m of members) m.tag = tagFor();
  let t;
  try {
    t = client.transaction((tx) => {
      for (const m of members) {
        const c = tx.collection(m.collection);
        if (m.op === 'insert') m.id = c.insert({ ...m.fields, tag: m.tag }, m.id ? { id: m.id } : undefined).id;
        else c.update(m.id, { ...m.fields, tag: m.tag }, m.opts);
      }
    });
  } catch (e) {
    send({ t: 'error', message: `transaction threw synchronously (${kind}): ${e?.code} ${e?.message}` });
    return;
  }
  const mids = [...t.mids];
  send({
    t: 'issued_group', clientId, group: kind,
    members: members.map((m, i) => ({ mid: mids[i], kind: `${kind}_${m.kind}`, collection: m.collection, id: m.id, tag: m.tag, inc: m.inc })),
  });
  t.local.then(
    () => mids.forEach((mid) => send({ t: 'local', clientId, mid })),
    (e) => mids.forEach((mid) => send({ t: 'local_failed', clientId, mid, code: e?.code, message: e?.message })),
  );
  t.then(
    (res) => res.results.forEach((x, i) => send({ t: 'applied', clientId, mid: mids[i], seq: x.seq })),
    (e) => {
      // The one SyncError names the failed member; every member was refused with its code.
      if (e?.failedMid !== undefined && (!mids.includes(e.failedMid) || mids.indexOf(e.failedMid) !== e.failedIndex)) {
        send({ t: 'error', message: `group ${mids} rejected naming member mid ${e.failedMid} index ${e.failedIndex}` });
      }
      mids.forEach((mid) => send({ t: 'rejected', clientId, mid, code: e?.code, message: e?.message, failedMid: e?.failedMid, failedIndex: e?.failedIndex }));
    },
  );
}

function counterOp(bills) {
  const roll = r.next();
  const a = r.pick(COUNTERS);
  // The mix drifts down (about -0.5 per operation) and the conditional restocks push back below
  // 12, so the counters hover near 0 and the bounds refuse often.
  if (roll < 0.2) {
    // Restock; now and then against a max bound that the counters rarely reach.
    const by = r.int(1, 4);
    return issueCounter('ctr_inc', a, by, r.chance(0.15) ? { max: 40 } : undefined);
  }
  if (roll < 0.55) return issueCounter('ctr_dec', a, -r.int(1, 6), { min: 0 }); // a sale: never below 0
  if (roll < 0.6) return issueCounter('ctr_dec_free', a, -r.int(1, 3)); // unbounded (a correction)
  if (roll < 0.7) {
    // Conditional restock: only while low (`conflict` once another restock got there first).
    return issueCounter('ctr_cond_inc', a, r.int(3, 8), undefined, { if: 'stock=lt.12' });
  }
  if (roll < 0.9 || !bills.length) {
    // Transfer x from A to B with its record, all or nothing; fails on A's bound, and now and then
    // on the record's id (insert over a live record: `conflict`).
    let b = r.pick(COUNTERS);
    if (b === a) b = COUNTERS[(COUNTERS.indexOf(a) + 1) % COUNTERS.length];
    const x = r.int(1, 8);
    const recId = r.chance(0.1) ? `xfer-fixed-${r.int(1, 4)}` : undefined;
    return issueGroup('xfer', [
      { kind: 'dec', op: 'update', collection: 'products', id: a, fields: { stock: increment(-x, { min: 0 }) }, inc: incOf(a, -x, { min: 0 }) },
      { kind: 'inc', op: 'update', collection: 'products', id: b, fields: { stock: increment(x) }, inc: incOf(b, x) },
      { kind: 'rec', op: 'insert', collection: 'stock_transactions', id: recId, fields: { from: a, to: b, qty: x, at: serverTime() } },
    ]);
  }
  // Payment: the bill marked paid only if still unpaid, the till counter credited, a record.
  const bill = r.pick(bills);
  const by = 1 + ((bill.fields.amount ?? 0) % 9);
  return issueGroup('pay', [
    { kind: 'bill', op: 'update', collection: 'bills', id: bill.id, fields: { status: 'paid' }, opts: { if: 'status=eq.unpaid' } },
    { kind: 'inc', op: 'update', collection: 'products', id: a, fields: { stock: increment(by) }, inc: incOf(a, by) },
    { kind: 'rec', op: 'insert', collection: 'stock_transactions', fields: { bill: bill.id, to: a, qty: by, at: serverTime() } },
  ]);
}

function adminOp() {
  const bills = live('bills');
  if (COUNTERS.length && r.chance(cfg.counterShare ?? 0.3)) return counterOp(bills);
  const roll = r.next();
  const products = live('products').filter((d) => !isCounter(d.id)); // counters only move by increments
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
      streams.flush();
      const docs = {};
      for (const c of cfg.collections) docs[c] = client.collection(c).all().map((d) => ({ id: d.id, version: d.version, fields: d.fields, pending: !!d.pending }));
      send({ t: 'dump', req: m.req, status: client.status, docs });
      break;
    }
    case 'exit':
      await client.close().catch(() => {});
      streams.flush();
      send({ t: 'exited', req: m.req });
      process.exit(0);
  }
});

send({ t: 'ready', clientId, status: client.status });
setTimeout(loop, r.int(0, 200));
