// Tenant isolation, as a seeded property test.
//
// Several customers and an admin drive a real syncline-server one operation at a time (so the
// test's model knows the server's truth after every step; the model is checked against the
// admin's snapshot and the admin's full stream at the end). Documents change owner, get deleted
// and re-inserted; customers open broad subscriptions (all collections, no where), ask for
// collections/where they may not read, resume with forged Last-Event-ID / cursors (far ahead,
// negative, non-numeric, older than retention), reuse other customers' client ids, and try writes
// outside their rules. Everything every customer receives (snapshot, SSE, WebSocket, resume,
// mutation responses) is checked against the scope computed from the model and the rules of the
// config below. Expected: zero violations.
//
// Env: SECURITY_SEED=<n> reruns one seed; SECURITY_LONG=1 runs more seeds and steps;
// SYNCLINE_TEST_CLUSTER=1 runs every test against three nodes on one PostgreSQL database behind
// HAProxy (tests/chaos/lib/cluster.mjs), each request and stream going to whichever node the
// balancer picks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { api, makeToken, metrics, mutate, query, snapshotAll, SseClient, sleep, startServer, testConfig } from '../server/helpers.mjs';
import { LONG, b64url, rawWs, rng, withTimeout } from './lib.mjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// One server, or with SYNCLINE_TEST_CLUSTER=1 a cluster behind a balancer: an object with the
// `url` and `cleanup()` the tests use.
async function startTarget({ config }) {
  if (process.env.SYNCLINE_TEST_CLUSTER !== '1') return startServer({ config });
  const { ChaosCluster } = await import('../chaos/lib/cluster.mjs');
  const workDir = mkdtempSync(join(tmpdir(), 'syncline-isolation-cluster-'));
  const cluster = new ChaosCluster({ nodes: 3, config, workDir });
  await cluster.start();
  return {
    url: cluster.balancer.url,
    port: cluster.balancer.port,
    async cleanup() {
      await cluster.stop();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

const CUSTOMERS = ['cust-1', 'cust-2', 'cust-3', 'cust-4'];
const ADMIN = 'admin-1';
const RETENTION = 120;
const STEPS = Number(process.env.SECURITY_STEPS) || (LONG ? 2000 : 450);
const SEEDS = process.env.SECURITY_SEED
  ? [Number(process.env.SECURITY_SEED)]
  : LONG
    ? Array.from({ length: 10 }, (_, i) => ((Date.now() % 1e9) + i * 7919) >>> 0)
    : [463056745, 463064664, 465431576]; // fixed in CI so a run is repeatable; the long run draws new ones

const isolationConfig = () =>
  testConfig({
    demo_tokens: false,
    limits: { log_retention: RETENTION, heartbeat_ms: 500 },
    collections: {
      // Customers read and write their own notes (filter write rule on every op).
      notes: { read: { admin: 'all', customer: 'customer_id=eq.{sub}' }, write: { admin: 'all', customer: 'customer_id=eq.{sub}' } },
    },
  });

// ---- the rules of isolationConfig(), in JS ----
const OWNED = new Set(['bills', 'orders', 'bookings', 'notes']);
const COLLECTIONS = ['bills', 'orders', 'products', 'stock_transactions', 'bookings', 'customers', 'notes'];
function readRule(role, sub, c) {
  if (role === 'admin') return { kind: 'all' };
  if (OWNED.has(c)) return { kind: 'filter', fn: (id, f) => f.customer_id === sub };
  if (c === 'products') return { kind: 'all' };
  if (c === 'customers') return { kind: 'filter', fn: (id) => id === sub };
  return { kind: 'none' };
}
function writeRule(role, sub, c, op) {
  if (role === 'admin') return { kind: 'all' };
  if (c === 'notes') return { kind: 'filter', fn: (id, f) => f.customer_id === sub };
  if (c === 'bookings' && op === 'insert') return { kind: 'filter', fn: (id, f) => f.customer_id === sub };
  return { kind: 'none' };
}
const readable = (role, sub) => COLLECTIONS.filter((c) => readRule(role, sub, c).kind !== 'none');

// A subscriber: who, which collections (null = all readable), which where ({text, fn} or null).
function access(subr, c) {
  const r = readRule(subr.role, subr.sub, c);
  if (r.kind === 'none') return r;
  if (!subr.where) return r;
  if (r.kind === 'all') return { kind: 'filter', fn: subr.where.fn };
  return { kind: 'filter', fn: (id, f) => r.fn(id, f) && subr.where.fn(id, f) };
}
function visibility(row, subr) {
  if (row.kind === 'event' && !row.collection) return 'show';
  const cols = subr.collections || readable(subr.role, subr.sub);
  if (!cols.includes(row.collection)) return 'hidden';
  const a = access(subr, row.collection);
  if (a.kind === 'none') return 'hidden';
  if (a.kind === 'all') return 'show';
  if (row.kind === 'event') return row.visibility && a.fn(row.id, row.visibility) ? 'show' : 'hidden';
  const vf = row.op === 'delete' ? row.before : row.after;
  if (a.fn(row.id, vf || {})) return 'show';
  if (row.op === 'update' && row.before && a.fn(row.id, row.before)) return 'leave';
  return 'hidden';
}
const canonical = (v) => JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x));

class Model {
  constructor() {
    this.docs = new Map(); // "c/id" -> {collection,id,version,fields,deleted}
    this.log = new Map(); // seq -> row
    this.head = 0;
  }
  get(c, id) {
    return this.docs.get(`${c}/${id}`);
  }
  live(c) {
    return [...this.docs.values()].filter((d) => !d.deleted && (!c || d.collection === c));
  }
  // Emulates the write check's before half, apply_mutation, the after half and unique
  // constraints, in server/store.cpp's order.
  predict(m, role, sub) {
    const cur = this.get(m.collection, m.id);
    const exists = cur && !cur.deleted;
    const wr = writeRule(role, sub, m.collection, m.op);
    if (wr.kind === 'none') return { batch403: true };
    // The write rule's "before" half comes first, so a foreign document's existence or version
    // never shows through a conflict; tombstones count as absent.
    if (wr.kind === 'filter' && exists && !wr.fn(m.id, cur.fields)) return { status: 'rejected', code: 'forbidden' };
    if (m.base_version !== undefined && (!exists || cur.version !== m.base_version)) return { status: 'rejected', code: 'conflict' };
    let after = null;
    if (m.op === 'insert') {
      if (exists) return { status: 'rejected', code: 'conflict' };
      after = Object.fromEntries(Object.entries(m.fields).filter(([, v]) => v !== null));
    } else if (m.op === 'update') {
      if (!exists) return { status: 'rejected', code: 'conflict' };
      after = { ...cur.fields };
      for (const [k, v] of Object.entries(m.fields)) if (v === null) delete after[k];
      else after[k] = v;
    } else if (!exists) return { status: 'rejected', code: 'conflict' };
    if (wr.kind === 'filter') {
      if (exists && !wr.fn(m.id, cur.fields)) return { status: 'rejected', code: 'forbidden' };
      if (after && !wr.fn(m.id, after)) return { status: 'rejected', code: 'forbidden' };
    }
    if (after && m.collection === 'bookings' && after.hall != null && after.date != null && after.slot != null) {
      const clash = this.live('bookings').some((d) => d.id !== m.id && d.fields.hall === after.hall && d.fields.date === after.date && d.fields.slot === after.slot);
      if (clash) return { status: 'rejected', code: 'constraint' };
    }
    return { status: 'applied', after, before: exists ? cur.fields : null };
  }
  applyChange(seq, m, p, origin) {
    const op = m.op;
    this.log.set(seq, { seq, kind: 'change', collection: m.collection, id: m.id, op, after: p.after, before: p.before, origin });
    this.docs.set(`${m.collection}/${m.id}`, { collection: m.collection, id: m.id, version: seq, fields: p.after || {}, deleted: op === 'delete' });
    this.head = seq;
  }
  applyEvent(seq, body) {
    const d = body.collection && body.id ? this.get(body.collection, body.id) : null;
    this.log.set(seq, { seq, kind: 'event', collection: body.collection || '', id: body.id || '', name: body.name, data: body.data || {}, visibility: d && !d.deleted ? d.fields : null });
    this.head = seq;
  }
}

async function runSeed(seed, figures) {
  const R = rng(seed);
  const server = await startTarget({ config: isolationConfig() });
  const model = new Model();
  const violations = [];
  const violate = (kind, detail) => {
    if (violations.length < 200) violations.push({ ...detail, kind });
    else violations.push({ kind });
  };
  const tokens = Object.fromEntries([...CUSTOMERS, ADMIN].map((s) => [s, makeToken(s, s === ADMIN ? 'admin' : 'customer')]));
  const role = (s) => (s === ADMIN ? 'admin' : 'customer');
  const clientOf = (s) => `c-${s}`;
  const mids = Object.fromEntries([...CUSTOMERS, ADMIN].map((s) => [s, 0]));
  const bound = new Set();
  const observed = Object.fromEntries(CUSTOMERS.map((s) => [s, 0]));
  const ops = {};
  const count = (k) => (ops[k] = (ops[k] || 0) + 1);
  const streams = []; // long-lived {subr, kind, client}
  const cleanups = [];
  try {
    // Long-lived streams, opened before any data: per customer one broad SSE (all collections,
    // no where) and one WebSocket with a random subscription; one admin SSE for the truth.
    const whereFor = (sub) =>
      R.pick([
        null,
        { text: 'status=eq.open', fn: (id, f) => f.status === 'open' },
        { text: `customer_id=eq.${R.pick(CUSTOMERS)}`, fn: null },
      ]);
    const mkWhere = (w) => {
      if (!w || w.fn) return w;
      const v = w.text.split('eq.')[1];
      return { text: w.text, fn: (id, f) => f.customer_id === v };
    };
    const adminSse = new SseClient(server, { token: tokens[ADMIN] });
    cleanups.push(() => adminSse.close());
    await adminSse.waitFor((s) => s.events.some((e) => e.event === 'hello'), 5000, 'admin hello');
    for (const sub of CUSTOMERS) {
      const sse = new SseClient(server, { token: tokens[sub] });
      cleanups.push(() => sse.close());
      await sse.waitFor((s) => s.events.some((e) => e.event === 'hello'), 5000, 'hello');
      streams.push({ subr: { sub, role: 'customer', collections: null, where: null }, kind: 'sse', get msgs() { return sse.events.filter((e) => e.json && e.event !== 'hello').map((e) => ({ type: e.event, ...e.json })); } });
      const cols = R.chance(0.5) ? null : readable('customer', sub).filter(() => R.chance(0.6));
      const where = mkWhere(whereFor(sub));
      const ws = rawWs(server, { params: { access_token: tokens[sub], collections: cols && cols.length ? cols.join(',') : undefined, where: where?.text } });
      cleanups.push(() => ws.terminate());
      await ws.waitFor((o) => o.messages.some((m) => m.type === 'hello'), 5000, 'ws hello');
      streams.push({ subr: { sub, role: 'customer', collections: cols && cols.length ? cols : null, where }, kind: 'ws', ws, // results / error frames are this client's private answers (checked in send()).
        get msgs() { return ws.messages.filter((m) => m.type !== 'hello' && m.type !== 'results' && m.type !== 'error'); } });
    }
    const wsOf = (sub) => streams.find((s) => s.kind === 'ws' && s.subr.sub === sub).ws;

    // Checks one customer-visible change/event message against the model.
    const checkMsg = (subr, m, where) => {
      if (subr.role !== 'admin') observed[subr.sub]++;
      if (m.type === 'reset' || m.type === 'heartbeat') return;
      if (m.type === 'error') return violate('unexpected_error_frame', { where, sub: subr.sub, m });
      const row = model.log.get(m.seq);
      if (!row) return violate('unknown_seq', { where, sub: subr.sub, seq: m.seq });
      const v = visibility(row, subr);
      if (v === 'hidden') return violate('leak', { where, sub: subr.sub, seq: m.seq, collection: row.collection, id: row.id, op: row.op ?? 'event' });
      if (m.type === 'change') {
        if (m.collection !== row.collection || m.id !== row.id) violate('mismatch', { where, seq: m.seq, m, row });
        if (v === 'leave' || row.op === 'delete') {
          if (m.op !== 'delete' || Object.keys(m.fields).length) violate(v === 'leave' ? 'leave_not_delete' : 'delete_with_fields', { where, sub: subr.sub, seq: m.seq, m });
        } else if (m.op !== row.op || canonical(m.fields) !== canonical(row.after)) violate('mismatch', { where, seq: m.seq, m, row });
        if (m.origin && subr.role !== 'admin') {
          const owner = CUSTOMERS.find((c) => clientOf(c) === m.origin.client);
          if (owner && owner !== subr.sub) violate('foreign_client_id_in_origin', { where, sub: subr.sub, seq: m.seq, origin: m.origin });
        }
      } else if (m.type !== 'event') violate('unexpected_message', { where, m });
    };
    const expectedSeqs = (subr, after, upTo = model.head) => {
      const out = [];
      for (let s = after + 1; s <= upTo; s++) {
        const row = model.log.get(s);
        if (row && visibility(row, subr) !== 'hidden') out.push(s);
      }
      return out;
    };

    // ---- operations ----
    const randomDoc = (pred = () => true) => {
      const all = [...model.docs.values()].filter(pred);
      return all.length ? R.pick(all) : null;
    };
    const newId = (c) => `${c.slice(0, 2)}-${R.int(40)}`; // small id space: collisions and re-inserts over tombstones
    const fieldsFor = (c, owner) => {
      const f = { status: R.pick(['open', 'closed']), n: R.int(1000) };
      if (OWNED.has(c)) f.customer_id = owner;
      if (c === 'bookings') Object.assign(f, { hall: R.pick(['h1', 'h2']), date: R.pick(['d1', 'd2']), slot: R.pick(['s1', 's2', 's3']) });
      return f;
    };

    // Sends one batch for `who` (HTTP or its WebSocket) and checks the answer against the model.
    const send = async (who, muts, { client = clientOf(who), transport = 'http', expectForged = false, intent = 'legit' } = {}) => {
      const rl = role(who);
      let status;
      let body;
      if (transport === 'ws' && who !== ADMIN) {
        const ws = wsOf(who);
        const before = ws.messages.length;
        ws.send({ type: 'mutate', client, mutations: muts });
        await ws.waitFor((o) => o.messages.slice(before).some((m) => m.type === 'results' || m.type === 'error'), 5000, 'ws answer');
        const ans = ws.messages.slice(before).find((m) => m.type === 'results' || m.type === 'error');
        status = ans.type === 'results' ? 200 : { forbidden: 403, not_found: 404, unauthorized: 401 }[ans.error.code] || 400;
        body = ans.type === 'results' ? ans : { error: ans.error };
      } else {
        const r = await mutate(server, tokens[who], client, muts);
        status = r.status;
        body = r.json;
      }
      if (who !== ADMIN) observed[who]++;
      if (expectForged) {
        if (status === 200) {
          const anyApplied = body.results.some((x) => x.status === 'applied');
          violate(anyApplied ? 'foreign_mutation_accepted' : 'foreign_ack_read', { who, client, results: body.results });
          // Keep the model in step if the server did apply something.
          for (const x of body.results) if (x.status === 'applied') {
            const m = muts.find((y) => y.mid === x.mid);
            model.applyChange(x.seq, m, model.predict(m, 'admin', who), { client, mid: m.mid });
          }
        } else if (status !== 403 || body?.error?.field !== 'client') violate('forged_client_wrong_refusal', { who, client, status, body });
        return;
      }
      const preds = [];
      let batch403 = false;
      // Predict sequentially (later mutations see earlier applied ones), like the server.
      const shadow = new Model();
      shadow.docs = new Map([...model.docs].map(([k, v]) => [k, { ...v }]));
      for (const m of muts) {
        const p = shadow.predict(m, rl, who);
        if (p.batch403) batch403 = true;
        preds.push(p);
        if (p.status === 'applied') shadow.docs.set(`${m.collection}/${m.id}`, { collection: m.collection, id: m.id, version: 0, fields: p.after || {}, deleted: m.op === 'delete' });
      }
      if (batch403) {
        if (status === 200) {
          violate('foreign_mutation_accepted', { who, intent, results: body.results, muts });
          return;
        }
        if (status !== 403) violate('mismatch', { who, what: 'expected 403', status, body });
        return;
      }
      if (status !== 200) return violate('mismatch', { who, what: 'expected 200', status, body, muts });
      if (!bound.has(client)) bound.add(client);
      for (let i = 0; i < muts.length; i++) {
        const m = muts[i];
        const res = body.results[i];
        const p = model.predict(m, rl, who);
        if (res.status === 'applied') {
          if (p.status !== 'applied') {
            violate(rl === 'admin' ? 'mismatch' : 'foreign_mutation_accepted', { who, m, predicted: p, res });
            model.applyChange(res.seq, m, model.predict(m, 'admin', who), { client, mid: m.mid });
            continue;
          }
          if (res.seq !== model.head + 1) violate('mismatch', { what: 'seq', res, head: model.head });
          model.applyChange(res.seq, m, p, { client, mid: m.mid });
        } else {
          if (p.status === 'applied' || res.code !== p.code) violate('mismatch', { who, m, predicted: p, res });
          // A rejection must not disclose anything about a document outside the caller's scope.
          // (The document's own name is in the caller's request, so digits in it don't count.)
          const cur = model.get(m.collection, m.id);
          const rr = readRule(rl, who, m.collection);
          const foreign = cur && rl !== 'admin' && (rr.kind === 'none' || (rr.kind === 'filter' && !rr.fn(m.id, cur.fields)));
          if (foreign && res.message && new RegExp(`\\b${cur.version}\\b`).test(res.message.replace(/^base_version \d+/, '').split(`${m.collection}/${m.id}`).join(''))) {
            violate('foreign_version_disclosed', { who, m, message: res.message, version: cur.version });
          }
        }
      }
    };

    const steps = {
      adminInsert: async () => {
        const c = R.pick(['bills', 'orders', 'notes', 'bookings', 'products', 'stock_transactions', 'customers']);
        const id = c === 'customers' && R.chance(0.6) ? R.pick(CUSTOMERS) : newId(c);
        await send(ADMIN, [{ mid: ++mids[ADMIN], op: 'insert', collection: c, id, fields: fieldsFor(c, R.pick(CUSTOMERS)) }]);
      },
      adminChangeOwner: async () => {
        const d = randomDoc((x) => !x.deleted && OWNED.has(x.collection));
        if (!d) return;
        const patch = R.chance(0.7) ? { customer_id: R.pick(CUSTOMERS) } : { customer_id: null };
        if (R.chance(0.3)) patch.status = R.pick(['open', 'closed']);
        await send(ADMIN, [{ mid: ++mids[ADMIN], op: 'update', collection: d.collection, id: d.id, fields: patch, ...(R.chance(0.3) ? { base_version: d.version } : {}) }]);
      },
      adminUpdate: async () => {
        const d = randomDoc((x) => !x.deleted);
        if (!d) return;
        await send(ADMIN, [{ mid: ++mids[ADMIN], op: 'update', collection: d.collection, id: d.id, fields: { status: R.pick(['open', 'closed']), n: R.int(1000) } }]);
      },
      adminDelete: async () => {
        const d = randomDoc((x) => !x.deleted);
        if (!d) return;
        await send(ADMIN, [{ mid: ++mids[ADMIN], op: 'delete', collection: d.collection, id: d.id }]);
      },
      adminEvent: async () => {
        const d = randomDoc();
        const body = R.chance(0.15) ? { name: 'broadcast', data: { k: R.int(9) } } : d ? { name: 'doc:ping', collection: d.collection, id: d.id, data: { k: R.int(9) } } : { name: 'x' };
        const r = await api(server, 'POST', '/v1/events', { token: tokens[ADMIN], body });
        if (r.status !== 200) return violate('mismatch', { what: 'admin publish', r: r.text });
        model.applyEvent(r.json.seq, body);
      },
      customerLegit: async () => {
        const who = R.pick(CUSTOMERS);
        const transport = R.chance(0.35) ? 'ws' : 'http';
        const own = randomDoc((x) => !x.deleted && x.collection === 'notes' && x.fields.customer_id === who);
        const k = R.int(4);
        let m;
        if (k === 0 || !own) {
          const c = R.chance(0.7) ? 'notes' : 'bookings';
          m = { op: 'insert', collection: c, id: newId(c), fields: fieldsFor(c, who) };
        } else if (k === 1) m = { op: 'update', collection: 'notes', id: own.id, fields: { status: R.pick(['open', 'closed']) }, ...(R.chance(0.5) ? { base_version: own.version } : {}) };
        else if (k === 2) m = { op: 'delete', collection: 'notes', id: own.id };
        else m = { op: 'update', collection: 'notes', id: own.id, fields: { n: R.int(1000) } };
        await send(who, [{ mid: ++mids[who], ...m }], { transport });
      },
      customerForeignWrite: async () => {
        const who = R.pick(CUSTOMERS);
        const other = R.pick(CUSTOMERS.filter((c) => c !== who));
        const transport = R.chance(0.35) ? 'ws' : 'http';
        const foreignNote = randomDoc((x) => x.collection === 'notes' && x.fields.customer_id !== who);
        const ownNote = randomDoc((x) => !x.deleted && x.collection === 'notes' && x.fields.customer_id === who);
        const foreignBooking = randomDoc((x) => !x.deleted && x.collection === 'bookings' && x.fields.customer_id !== who);
        const choices = [
          () => ({ op: 'insert', collection: 'bills', id: newId('bills'), fields: fieldsFor('bills', other) }),
          () => ({ op: 'insert', collection: 'notes', id: newId('notes'), fields: fieldsFor('notes', other) }),
          () => ({ op: 'insert', collection: 'bookings', id: newId('bookings'), fields: fieldsFor('bookings', other) }),
          () => ({ op: 'update', collection: 'products', id: newId('products'), fields: { n: 1 } }),
          () => ({ op: 'insert', collection: 'stock_transactions', id: newId('stock_transactions'), fields: { n: 1 } }),
          () => ({ op: 'update', collection: 'customers', id: who, fields: { status: 'vip' } }),
        ];
        if (foreignNote) {
          choices.push(() => ({ op: 'update', collection: 'notes', id: foreignNote.id, fields: { status: 'hijacked' } }));
          choices.push(() => ({ op: 'update', collection: 'notes', id: foreignNote.id, fields: { customer_id: who } }));
          choices.push(() => ({ op: 'update', collection: 'notes', id: foreignNote.id, fields: { status: 'x' }, base_version: foreignNote.version }));
          choices.push(() => ({ op: 'update', collection: 'notes', id: foreignNote.id, fields: { status: 'x' }, base_version: Math.max(1, foreignNote.version - 1 - R.int(3)) }));
          choices.push(() => ({ op: 'delete', collection: 'notes', id: foreignNote.id }));
          choices.push(() => ({ op: 'delete', collection: 'notes', id: foreignNote.id, base_version: 1 }));
        }
        if (ownNote) choices.push(() => ({ op: 'update', collection: 'notes', id: ownNote.id, fields: { customer_id: other } }));
        if (foreignBooking) choices.push(() => ({ op: 'update', collection: 'bookings', id: foreignBooking.id, fields: { customer_id: who } }));
        const m = R.pick(choices)();
        count(`foreign_${m.op}_${m.collection}`);
        await send(who, [{ mid: ++mids[who], ...m }], { transport, intent: 'foreign' });
      },
      forgedClientId: async () => {
        const victims = CUSTOMERS.filter((c) => bound.has(clientOf(c)));
        const who = R.pick(CUSTOMERS);
        const victim = R.chance(0.2) || !victims.length ? ADMIN : R.pick(victims.filter((v) => v !== who).length ? victims.filter((v) => v !== who) : [ADMIN]);
        const client = clientOf(victim);
        if (!bound.has(client)) return;
        // mid <= the victim's last mid: asking for the victim's acknowledgements; above: pushing as it.
        const mid = R.chance(0.5) ? 1 + R.int(Math.max(1, mids[victim])) : mids[victim] + 1 + R.int(5);
        const m = { mid, op: 'insert', collection: 'notes', id: newId('notes'), fields: fieldsFor('notes', who) };
        await send(who, [m], { client, expectForged: true, transport: R.chance(0.3) ? 'ws' : 'http' });
      },
      snapshot: async () => {
        const who = R.pick(CUSTOMERS);
        const cols = R.chance(0.4) ? null : readable('customer', who).filter(() => R.chance(0.5));
        const where = R.chance(0.5) ? null : mkWhere(whereFor(who));
        const subr = { sub: who, role: 'customer', collections: cols && cols.length ? cols : null, where };
        const limit = R.chance(0.5) ? 1 + R.int(5) : undefined;
        const params = { collections: subr.collections?.join(','), where: where?.text, limit };
        let docs;
        try {
          docs = (await snapshotAll(server, tokens[who], params)).docs;
        } catch (e) {
          return violate('mismatch', { what: 'snapshot failed', e: String(e) });
        }
        observed[who] += docs.length;
        const expected = new Map();
        for (const d of model.live()) if (visibility({ kind: 'change', op: 'insert', collection: d.collection, id: d.id, after: d.fields }, subr) === 'show') expected.set(`${d.collection}/${d.id}`, d);
        for (const d of docs) {
          const e = expected.get(`${d.collection}/${d.id}`);
          if (!e) violate('leak', { where: 'snapshot', sub: who, collection: d.collection, id: d.id, params });
          else if (e.version !== d.version || canonical(e.fields) !== canonical(d.fields)) violate('mismatch', { where: 'snapshot', d, e });
        }
        if (docs.length !== expected.size) violate('mismatch', { where: 'snapshot', what: 'count', got: docs.length, expected: expected.size, params });
        // A forged `after` cursor (crafted, not issued by the server) still returns only scope.
        const forged = b64url(JSON.stringify({ c: R.pick(COLLECTIONS), i: '', s: R.int(100) }));
        const r = await api(server, 'GET', '/v1/snapshot' + query({ ...params, after: forged }), { token: tokens[who] });
        if (r.status === 200) for (const d of r.json.docs) if (!expected.has(`${d.collection}/${d.id}`)) violate('leak', { where: 'snapshot forged after', sub: who, d });
      },
      forbiddenSubscription: async () => {
        const who = R.pick(CUSTOMERS);
        const cols = R.pick([['stock_transactions'], ['bills', 'stock_transactions'], ['stock_transactions', 'products']]).join(',');
        const t = R.int(3);
        if (t === 0) {
          const r = await api(server, 'GET', `/v1/snapshot?collections=${cols}`, { token: tokens[who] });
          if (r.status !== 403) violate('forbidden_collection_served', { where: 'snapshot', who, status: r.status });
        } else if (t === 1) {
          const r = await api(server, 'GET', `/v1/events?collections=${cols}&cursor=0`, { token: tokens[who], headers: { accept: 'text/event-stream' } });
          if (r.status !== 403) violate('forbidden_collection_served', { where: 'sse', who, status: r.status });
        } else {
          const w = rawWs(server, { params: { access_token: tokens[who], collections: cols, cursor: 0 } });
          await withTimeout(w.done, 5000, 'ws refusal');
          if (w.close?.code !== 4403 || w.messages.some((m) => m.type === 'change' || m.type === 'event')) violate('forbidden_collection_served', { where: 'ws', who, close: w.close });
        }
      },
      resume: async () => {
        const who = R.pick(CUSTOMERS);
        const mx = await metrics(server);
        const pruned = mx.syncline_log_pruned_through;
        const head = model.head;
        const kind = R.pick(['valid', 'valid', 'valid', 'zero', 'expired', 'ahead', 'negative', 'nonnumeric', 'float', 'huge', 'space']);
        const value = {
          valid: String(Math.max(pruned, head - R.int(RETENTION))),
          zero: '0',
          expired: String(Math.max(0, pruned - 1 - R.int(5))),
          ahead: String(head + 1 + R.int(1e6)),
          negative: String(-1 - R.int(100)),
          nonnumeric: R.pick(['abc', '0x10', 'NaN', '']),
          float: '1e3',
          huge: '99999999999999999999',
          space: ` ${head}`,
        }[kind];
        // HTTP trims leading whitespace (OWS) from header values, so ' N' is only a forgery in the query.
        const viaHeader = kind !== 'space' && R.chance(0.5);
        const transport = R.chance(0.5) ? 'sse' : 'ws';
        const cols = R.chance(0.5) ? null : readable('customer', who).filter(() => R.chance(0.6));
        const where = R.chance(0.6) ? null : mkWhere(whereFor(who));
        const subr = { sub: who, role: 'customer', collections: cols && cols.length ? cols : null, where };
        const invalid = !/^[0-9]{1,18}$/.test(value);
        if (value === '' && kind === 'nonnumeric') return; // empty cursor = no cursor
        const n = Number(value);
        const exp = invalid ? 'invalid' : n < pruned ? 'cursor_expired' : n > head ? 'cursor_ahead' : 'backlog';
        count(`resume_${transport}_${kind}`);
        let msgs;
        if (transport === 'sse') {
          const s = new SseClient(server, { token: tokens[who], collections: subr.collections?.join(','), where: where?.text, ...(viaHeader ? { lastEventId: value } : { cursor: value }) });
          try {
            await s.opened;
            if (exp === 'invalid') {
              if (s.status !== 400) violate('forged_cursor_accepted', { who, cursorKind: kind, value, status: s.status });
              await s.waitFor((x) => x.closed, 3000).catch(() => {});
              if (s.changes().length) violate('leak', { where: 'resume invalid cursor', who });
              return;
            }
            const want = exp === 'backlog' ? expectedSeqs(subr, n, head) : [];
            await s.waitFor((x) => (exp === 'backlog' ? (want.length === 0 ? x.events.some((e) => e.event === 'hello') : x.events.some((e) => Number(e.id) === want[want.length - 1])) : x.events.some((e) => e.event === 'reset')), 5000, `resume ${kind}`).catch(() => {});
            await sleep(want.length === 0 ? 100 : 0);
            msgs = s.events.filter((e) => e.json && e.event !== 'hello').map((e) => ({ type: e.event, ...e.json }));
          } finally {
            s.close();
          }
        } else {
          const w = rawWs(server, { params: { access_token: tokens[who], collections: subr.collections?.join(','), where: where?.text, ...(viaHeader ? {} : { cursor: value }) }, headers: viaHeader ? { 'last-event-id': value } : {} });
          try {
            if (exp === 'invalid') {
              await withTimeout(w.done, 3000, 'ws refusal').catch(() => {});
              if (w.close?.code !== 4400) violate('forged_cursor_accepted', { who, cursorKind: kind, value, close: w.close });
              if (w.messages.some((m) => m.type === 'change')) violate('leak', { where: 'resume invalid cursor ws', who });
              return;
            }
            const want = exp === 'backlog' ? expectedSeqs(subr, n, head) : [];
            await w.waitFor((o) => (exp === 'backlog' ? (want.length === 0 ? o.messages.some((m) => m.type === 'hello') : o.messages.some((m) => m.seq === want[want.length - 1] && m.type !== 'hello')) : o.messages.some((m) => m.type === 'reset')), 5000, `resume ${kind}`).catch(() => {});
            await sleep(want.length === 0 ? 100 : 0);
            msgs = w.messages.filter((m) => m.type !== 'hello');
          } finally {
            w.terminate();
          }
        }
        for (const m of msgs) checkMsg(subr, m, `resume-${transport}`);
        const got = msgs.filter((m) => m.type === 'change' || m.type === 'event').map((m) => m.seq);
        if (exp === 'backlog') {
          const want = expectedSeqs(subr, n, head);
          const gotUpTo = got.filter((s) => s <= head);
          if (canonical(gotUpTo) !== canonical(want)) violate('resume_mismatch', { who, cursorKind: kind, cursor: n, pruned, head, want: want.slice(0, 20), got: gotUpTo.slice(0, 20) });
        } else {
          const reset = msgs.find((m) => m.type === 'reset');
          if (!reset || reset.reason !== exp) violate('resume_mismatch', { who, cursorKind: kind, expected: exp, reset, cursor: n, pruned, head });
          // Nothing up to the reset's seq (no backlog). On one node that is the head; a node of a
          // cluster still bringing other nodes' rows in resets at its own head and delivers the
          // rest live after it.
          const upTo = reset ? Math.min(reset.seq, head) : head;
          if (got.some((s) => s <= upTo)) violate('resume_mismatch', { who, cursorKind: kind, what: 'backlog sent with a reset', got, reset });
        }
      },
      customerPublish: async () => {
        const who = R.pick(CUSTOMERS);
        const d = randomDoc((x) => x.collection !== 'products');
        if (!d) return;
        const body = { name: 'cust:ping', collection: d.collection, id: d.id, data: { from: who } };
        const r = await api(server, 'POST', '/v1/events', { token: tokens[who], body });
        observed[who]++;
        const rr = readRule('customer', who, d.collection);
        const allowed = !d.deleted && rr.kind !== 'none' && (rr.kind === 'all' || rr.fn(d.id, d.fields));
        if (r.status === 200) {
          if (!allowed) violate('foreign_publish_accepted', { who, body });
          model.applyEvent(r.json.seq, body);
        } else if (allowed || r.status !== 403) violate('mismatch', { what: 'customer publish', who, status: r.status, allowed, body });
      },
    };
    const weights = [
      ['adminInsert', 14], ['adminChangeOwner', 12], ['adminUpdate', 6], ['adminDelete', 7], ['adminEvent', 4],
      ['customerLegit', 14], ['customerForeignWrite', 14], ['forgedClientId', 6], ['snapshot', 6],
      ['forbiddenSubscription', 2], ['resume', 6], ['customerPublish', 3],
    ];
    const total = weights.reduce((a, [, w]) => a + w, 0);
    for (let i = 0; i < STEPS; i++) {
      let x = R.int(total);
      const [name] = weights.find(([, w]) => (x -= w) < 0);
      count(name);
      await steps[name]();
    }

    // ---- end: the long-lived streams must have received exactly their scope ----
    const lastFor = (st) => expectedSeqs(st.subr, 0).at(-1);
    for (const st of streams) {
      const last = lastFor(st);
      if (last === undefined) continue;
      const src = st.kind === 'ws' ? st.ws : null;
      const done = () => st.msgs.some((m) => m.seq === last);
      const deadline = Date.now() + 8000;
      while (!done() && Date.now() < deadline) await sleep(50);
      void src;
    }
    await sleep(200);
    for (const st of streams) {
      for (const m of st.msgs) checkMsg(st.subr, m, `live-${st.kind}`);
      const got = st.msgs.filter((m) => m.type === 'change' || m.type === 'event').map((m) => m.seq);
      const want = expectedSeqs(st.subr, 0);
      if (canonical(got) !== canonical(want)) {
        const gs = new Set(got);
        const ws = new Set(want);
        violate('live_mismatch', { sub: st.subr.sub, transport: st.kind, missing: want.filter((s) => !gs.has(s)).slice(0, 10), extra: got.filter((s) => !ws.has(s)).slice(0, 10) });
      }
    }
    // Truth: the model equals what the admin sees (full stream and snapshot).
    await adminSse.waitFor((s) => s.events.some((e) => Number(e.id) === model.head), 8000, 'admin head').catch(() => {});
    const adminSubr = { sub: ADMIN, role: 'admin', collections: null, where: null };
    const adminGot = adminSse.events.filter((e) => e.event === 'change' || e.event === 'event').map((e) => ({ type: e.event, ...e.json }));
    for (const m of adminGot) checkMsg(adminSubr, m, 'admin');
    if (adminGot.length !== model.log.size) violate('truth_mismatch', { what: 'admin stream', got: adminGot.length, want: model.log.size });
    const snap = await snapshotAll(server, tokens[ADMIN]);
    const live = model.live();
    if (snap.docs.length !== live.length) violate('truth_mismatch', { what: 'admin snapshot', got: snap.docs.length, want: live.length });
    for (const d of snap.docs) {
      const e = model.get(d.collection, d.id);
      if (!e || e.deleted || e.version !== d.version || canonical(e.fields) !== canonical(d.fields)) violate('truth_mismatch', { d, e });
    }
  } finally {
    for (const c of cleanups) c();
    await server.cleanup();
  }
  const messagesObserved = Object.values(observed).reduce((a, b) => a + b, 0);
  figures.push({ seed, steps: STEPS, head: model.head, ops, observed, messagesObserved, violations });
  return violations;
}

describe('tenant isolation (property test)', () => {
  for (const seed of SEEDS) {
    test(`seed ${seed}: no document, change, delete or ack outside the caller's scope; no foreign mutation accepted`, async () => {
      const figures = [];
      let violations;
      try {
        violations = await runSeed(seed, figures);
      } catch (e) {
        console.log(`# tenant_isolation seed ${seed} crashed; rerun: SECURITY_SEED=${seed} node --test tests/security/tenant_isolation.test.mjs`);
        throw e;
      }
      const f = figures[0];
      const byKind = {};
      for (const v of violations) byKind[v.kind] = (byKind[v.kind] || 0) + 1;
      const foreign = Object.entries(f.ops).filter(([k]) => k.startsWith('foreign_')).reduce((a, [, n]) => a + n, 0);
      console.log(
        `# tenant_isolation seed ${seed}: ${f.steps} operations (head seq ${f.head}; ${foreign} foreign writes, ${f.ops.forgedClientId || 0} forged client ids, ${f.ops.resume || 0} resumes, ${f.ops.snapshot || 0} snapshots), ` +
          `messages observed per customer ${JSON.stringify(f.observed)}, violations = ${violations.length} ${JSON.stringify(byKind)}`,
      );
      if (violations.length) {
        console.log(`# tenant_isolation first violations: ${JSON.stringify(violations.slice(0, 5))}`);
        console.log(`# rerun: SECURITY_SEED=${seed} node --test tests/security/tenant_isolation.test.mjs`);
      }
      assert.equal(violations.length, 0, `seed ${seed}: ${violations.length} violations ${JSON.stringify(byKind)}; rerun with SECURITY_SEED=${seed}`);
    });
  }

  // The smallest reproduction of finding F2 (see docs/reliability-security.md): a customer learns
  // the version of another customer's document from a conflict message.
  test('a rejected write on a foreign document does not disclose that document (version / existence detail)', async () => {
    const server = await startTarget({ config: isolationConfig() });
    try {
      const alice = makeToken('cust-1', 'customer');
      const bob = makeToken('cust-2', 'customer');
      let r = await mutate(server, alice, 'alice-tab', [{ mid: 1, op: 'insert', collection: 'notes', id: 'n-secret', fields: { customer_id: 'cust-1', text: 'private' } }]);
      assert.equal(r.json.results[0].status, 'applied');
      const version = r.json.results[0].seq;
      // Bob guesses the id and probes it with a conditional update/delete.
      const probes = [
        { mid: 1, op: 'update', collection: 'notes', id: 'n-secret', fields: { text: 'x' }, base_version: 999999 },
        { mid: 2, op: 'delete', collection: 'notes', id: 'n-secret', base_version: 1 },
      ];
      r = await mutate(server, bob, 'bob-tab', probes);
      assert.equal(r.status, 200);
      for (const res of r.json.results) {
        assert.equal(res.status, 'rejected');
        assert.ok(!/does not match \d+/.test(String(res.message)) && !String(res.message).replace(/^base_version \d+/, '').includes(String(version)), `rejection of a write on a foreign document discloses its version: ${JSON.stringify(res)}`);
        assert.equal(res.code, 'forbidden', `a write on a foreign document is 'forbidden' whatever its base_version: ${JSON.stringify(res)}`);
      }
    } finally {
      await server.cleanup();
    }
  });

  test('forged client id: another subject can neither push as a client nor read its acknowledgements (HTTP and WebSocket)', async () => {
    const server = await startTarget({ config: isolationConfig() });
    try {
      const alice = makeToken('cust-1', 'customer');
      const bob = makeToken('cust-2', 'customer');
      const r = await mutate(server, alice, 'tab-a', [
        { mid: 1, op: 'insert', collection: 'notes', id: 'a1', fields: { customer_id: 'cust-1', secret: 's1' } },
        { mid: 2, op: 'insert', collection: 'notes', id: 'a2', fields: { customer_id: 'cust-2' } },
      ]);
      assert.deepEqual(r.json.results.map((x) => x.status), ['applied', 'rejected']);
      const head = (await api(server, 'GET', '/v1/health')).json.seq;
      for (const mids of [[1], [2], [1, 2], [3]]) {
        const f = await mutate(server, bob, 'tab-a', mids.map((mid) => ({ mid, op: 'insert', collection: 'notes', id: `b${mid}`, fields: { customer_id: 'cust-2' } })));
        assert.equal(f.status, 403, f.text);
        assert.equal(f.json.error.field, 'client');
        assert.ok(!f.text.includes('applied') && !f.text.includes('"seq"'), f.text);
      }
      const w = rawWs(server, { params: { access_token: bob, collections: 'notes' } });
      await w.waitFor((o) => o.messages.some((m) => m.type === 'hello'));
      w.send({ type: 'mutate', client: 'tab-a', mutations: [{ mid: 1, op: 'insert', collection: 'notes', id: 'b9', fields: { customer_id: 'cust-2' } }] });
      await w.waitFor((o) => o.messages.some((m) => m.type === 'error' || m.type === 'results'));
      assert.equal(w.messages.find((m) => m.type === 'results'), undefined, JSON.stringify(w.messages));
      assert.equal(w.messages.find((m) => m.type === 'error').error.code, 'forbidden');
      w.terminate();
      assert.equal((await api(server, 'GET', '/v1/health')).json.seq, head, 'nothing was committed');
    } finally {
      await server.cleanup();
    }
  });
});
