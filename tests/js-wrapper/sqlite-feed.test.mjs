// The feed of the SQLite mirror (js-wrapper/src/sqlite/feed.ts) from a real client: the syncline
// runtime in Node over a real WebSocket to a real syncline-server on loopback, feeding a real
// (in-memory) SQLite mirror in-process. Shows what crosses to the worker: every document at
// start, then one batch per engine output, each document once and as it now is: a transaction's
// pending writes, another client's changes, a refused write's rollback. Needs build/server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import sqlite3InitModule from '@sqlite.org/sqlite-wasm';
import { startServer, makeToken, testConfig, api } from '../server/helpers.mjs';
import { until } from './runtime/helpers.mjs';

globalThis.WebSocket = WebSocket;
const { createClient } = await import('../../js-wrapper/dist/index.js');
const { startFeed } = await import('../../js-wrapper/dist/sqlite/feed.js');
const { SqlMirror } = await import('../../js-wrapper/dist/sqlite/mirror.js');
const { tableSpecs } = await import('../../js-wrapper/dist/sqlite/schema.js');

const sqlite3 = await sqlite3InitModule();
const admin = makeToken('feed-admin', 'admin');
const other = makeToken('feed-other', 'admin');
const COLLECTIONS = ['bills', 'customers'];
let server;
let client;
let mirror;
let batches;
let stop;
let otherMid = 0;
const reads = { get: 0, getMany: 0 };

const byOther = (mutations) => api(server, 'POST', '/v1/mutations', {
  token: other, body: { client: 'feed-other', mutations: mutations.map((m) => ({ mid: ++otherMid, ...m })) },
});
const rows = (sql) => mirror.query(sql).rows;
const nextTask = () => new Promise((r) => setTimeout(r, 0));

before(async () => {
  // Bill numbers are unique on the server, which the client does not know: a duplicate shows
  // while pending and is rolled back when the server refuses it.
  server = await startServer({ config: testConfig({ collections: { bills: { read: { admin: 'all' }, write: { admin: 'all' }, unique: [['number']] } } }) });
  const r = await byOther([
    { op: 'insert', collection: 'bills', id: 'b1', fields: { total: 10, number: 'n1' } },
    { op: 'insert', collection: 'customers', id: 'c1', fields: { name: 'Ada' } },
  ]);
  assert.ok(r.json.results.every((x) => x.status === 'applied'));
  client = await createClient({
    url: server.url, token: admin, collections: COLLECTIONS, transport: 'websocket', persistence: 'memory', multiTab: false,
    backoff: { baseMs: 50, capMs: 500, heartbeatTimeoutMs: 5000 },
  });
  await until(() => client.status.isConnected && client.collection('bills').get('b1') && client.collection('customers').get('c1'), 10000, 'the seeded documents');
  mirror = new SqlMirror(sqlite3, new sqlite3.oo1.DB(':memory:', 'c'), tableSpecs(COLLECTIONS, { bills: { total: 'real', number: 'text' } }));
  batches = [];
  // The feed sees the client through this view, which counts how it reads documents.
  const counting = Object.create(client);
  counting.collection = (name) => {
    const h = client.collection(name);
    return { ...h, get: (id) => (reads.get++, h.get(id)), getMany: (ids) => (reads.getMany++, h.getMany(ids)) };
  };
  stop = startFeed(counting, COLLECTIONS, (rows, reset) => {
    batches.push({ rows, reset });
    mirror.apply(rows, reset);
  });
});

after(async () => {
  stop?.();
  mirror?.close();
  await client?.close();
  await server?.cleanup();
});

test('the first batch is every visible document, with reset', () => {
  assert.equal(batches.length, 1);
  assert.equal(batches[0].reset, true);
  assert.deepEqual(batches[0].rows.map((r) => `${r.collection}/${r.id}`).sort(), ['bills/b1', 'customers/c1']);
  const version = client.collection('bills').get('b1').version;
  assert.ok(version > 0);
  assert.deepEqual(rows("SELECT id, total, number, pending, version FROM bills WHERE id = 'b1'"), [{ id: 'b1', total: 10, number: 'n1', pending: 0, version }]);
});

test("a transaction is one batch of pending rows; the server's answer clears pending", async () => {
  const n = batches.length;
  const tx = client.transaction((t) => {
    for (const i of [2, 3, 4]) t.collection('bills').insert({ total: i, number: `n${i}` }, { id: `b${i}` });
  });
  await nextTask();
  assert.equal(batches.length, n + 1, 'one batch for the three writes');
  assert.deepEqual(batches[n].rows.map((r) => [r.id, r.pending, r.version]), [['b2', true, 0], ['b3', true, 0], ['b4', true, 0]]);
  assert.deepEqual(rows('SELECT count(*) AS n, sum(total) AS s FROM bills WHERE pending'), [{ n: 3, s: 9 }]);
  await tx;
  await until(() => rows('SELECT count(*) AS n FROM bills WHERE pending')[0].n === 0, 5000, 'confirmed');
  assert.ok(rows("SELECT min(version) AS v FROM bills WHERE id IN ('b2', 'b3', 'b4')")[0].v > 0, 'server versions');
});

test('the feed leaves change detail off and reads a batch with one getMany per collection', async () => {
  // The client's private state, read here only to show the engine is not asked for before/after.
  assert.equal(client.views.wantsChangeDetail, false);
  reads.get = 0;
  reads.getMany = 0;
  const n = batches.length;
  client.transaction((t) => {
    t.collection('bills').update('b2', { total: 20 });
    t.collection('bills').update('b3', { total: 30 });
    t.collection('customers').update('c1', { name: 'Ada L' });
  }).catch(() => {});
  await nextTask();
  assert.equal(batches.length, n + 1);
  assert.deepEqual(reads, { get: 0, getMany: 2 }, 'one getMany for bills, one for customers');
  assert.deepEqual(rows("SELECT id, total FROM bills WHERE id IN ('b2', 'b3') ORDER BY id"), [{ id: 'b2', total: 20 }, { id: 'b3', total: 30 }]);
  assert.deepEqual(rows("SELECT fields ->> '$.name' AS name FROM customers WHERE id = 'c1'"), [{ name: 'Ada L' }]);
  await until(() => rows('SELECT count(*) AS n FROM bills WHERE pending')[0].n === 0, 5000, 'confirmed');
  client.transaction((t) => {
    t.collection('bills').update('b2', { total: 2 });
    t.collection('bills').update('b3', { total: 3 });
  }).catch(() => {});
  await until(() => rows('SELECT count(*) AS n FROM bills WHERE pending')[0].n === 0 && rows("SELECT total FROM bills WHERE id = 'b3'")[0].total === 3, 5000, 'put back');
});

test('a document written twice in one task crosses once, as it ends', async () => {
  const n = batches.length;
  const bills = client.collection('bills');
  bills.update('b1', { total: 11 });
  bills.update('b1', { total: 12 });
  await nextTask();
  assert.equal(batches.length, n + 1);
  assert.deepEqual(batches[n].rows.map((r) => [r.id, r.fields.total]), [['b1', 12]]);
  assert.deepEqual(rows("SELECT total FROM bills WHERE id = 'b1'"), [{ total: 12 }]);
});

test("another client's changes arrive in batches, not a batch per document", async () => {
  const n = batches.length;
  const r = await byOther(Array.from({ length: 40 }, (_, i) => ({ op: 'insert', collection: 'customers', id: `k${i}`, fields: { name: `K${i}` } })));
  assert.ok(r.json.results.every((x) => x.status === 'applied'));
  await until(() => rows("SELECT count(*) AS n FROM customers WHERE id LIKE 'k%'")[0].n === 40, 10000, "the other client's customers");
  const used = batches.length - n;
  assert.ok(used >= 1 && used < 40, `${used} batches for 40 documents`);
  await byOther([{ op: 'delete', collection: 'customers', id: 'k0' }]);
  await until(() => rows("SELECT count(*) AS n FROM customers WHERE id = 'k0'")[0].n === 0, 10000, 'the delete');
});

test('a refused pending write is rolled back in the mirror', async () => {
  client.goOffline();
  const w = client.collection('bills').insert({ total: 1000, number: 'n1' }, { id: 'dup' });
  w.catch(() => {});
  await nextTask();
  assert.deepEqual(rows("SELECT total, pending, version FROM bills WHERE id = 'dup'"), [{ total: 1000, pending: 1, version: 0 }]);
  client.goOnline();
  await assert.rejects(w, (e) => e.code === 'constraint');
  await until(() => rows("SELECT count(*) AS n FROM bills WHERE id = 'dup'")[0].n === 0, 5000, 'the rollback');
  assert.deepEqual(rows('SELECT sum(total) AS s FROM bills'), [{ s: 12 + 2 + 3 + 4 }]);
});

test('after stop, nothing more is sent', async () => {
  stop();
  const n = batches.length;
  await client.collection('bills').update('b1', { total: 13 });
  await nextTask();
  assert.equal(batches.length, n);
});
