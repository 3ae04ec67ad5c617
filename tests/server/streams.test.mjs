// Streams: SSE and WebSocket messages, heartbeats, Last-Event-ID resume under concurrent writers,
// reset on expired cursors, and read rules on every read path (snapshot, SSE, WebSocket, resume,
// deletes).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, makeToken, mutate, sleep, snapshotAll, SseClient, startServer, testConfig, WsClient } from './helpers.mjs';

const admin = makeToken('admin-1', 'admin');
const alice = makeToken('alice', 'customer');
const bob = makeToken('bob', 'customer');

function assertGapFree(seqs, from, to) {
  const sorted = [...seqs].sort((a, b) => a - b);
  assert.equal(new Set(seqs).size, seqs.length, 'no duplicates');
  assert.deepEqual(sorted, seqs, 'in order');
  assert.equal(sorted[0], from + 1);
  assert.equal(sorted[sorted.length - 1], to);
  assert.equal(sorted.length, to - from, 'no gaps');
}

describe('streams', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.cleanup();
  });

  test('SSE: hello, change with id, custom event, heartbeat', async () => {
    const h = await api(server, 'GET', '/v1/health');
    const sse = new SseClient(server, { token: admin, collections: 'products,orders' });
    await sse.opened;
    assert.equal(sse.status, 200);
    assert.match(sse.headers['content-type'], /^text\/event-stream/);
    await sse.waitFor((s) => s.events.length >= 1);
    assert.equal(sse.events[0].event, 'hello');
    assert.deepEqual(sse.events[0].json, { seq: h.json.seq });
    const r = await mutate(server, admin, 'sse-basic', [
      { mid: 1, op: 'insert', collection: 'products', id: 'p1', fields: { name: 'Tea', stock: 3 } },
      { mid: 2, op: 'update', collection: 'products', id: 'p1', fields: { stock: 2 } },
      { mid: 3, op: 'delete', collection: 'products', id: 'p1' },
    ]);
    await api(server, 'POST', '/v1/events', { token: admin, body: { name: 'order:stage_change', collection: 'orders', data: { stage: 'packed' } } });
    await sse.waitFor((s) => s.events.length >= 5);
    const [ins, upd, del, ev] = sse.events.slice(1);
    assert.equal(ins.event, 'change');
    assert.equal(ins.id, String(r.json.results[0].seq));
    assert.deepEqual(ins.json, {
      seq: r.json.results[0].seq, collection: 'products', id: 'p1', op: 'insert', version: r.json.results[0].seq,
      fields: { name: 'Tea', stock: 3 }, origin: { client: 'sse-basic', mid: 1 },
    });
    assert.equal(upd.json.op, 'update');
    assert.deepEqual(upd.json.fields, { name: 'Tea', stock: 2 }, 'full document after the change');
    assert.equal(del.json.op, 'delete');
    assert.deepEqual(del.json.fields, {});
    assert.equal(ev.event, 'event');
    assert.equal(ev.json.name, 'order:stage_change');
    assert.deepEqual(ev.json.data, { stage: 'packed' });
    assert.equal(ev.id, String(ev.json.seq));
    await sse.waitFor((s) => s.comments.includes('hb'), 3000, 'heartbeat');
    sse.close();
    // EventSource cannot see comments: ?heartbeat=event sends them as events instead.
    const hbEvents = new SseClient(server, { token: admin, collections: 'products', heartbeat: 'event' });
    await hbEvents.waitFor((s) => s.events.some((e) => e.event === 'heartbeat'), 3000, 'heartbeat event');
    const hb = hbEvents.events.find((e) => e.event === 'heartbeat');
    assert.equal(typeof hb.json.seq, 'number');
    assert.equal(hb.id, undefined, 'heartbeats carry no id');
    hbEvents.close();
  });

  test('WebSocket: same messages as typed frames; mutate and publish both ways', async () => {
    const ws = new WsClient(server, { token: admin, collections: 'products' });
    await ws.opened;
    await ws.waitFor((c) => c.of('hello').length === 1);
    ws.send({ type: 'mutate', client: 'ws-1', mutations: [{ mid: 1, op: 'insert', collection: 'products', id: 'wp1', fields: { n: 1 } }] });
    await ws.waitFor((c) => c.of('results').length === 1 && c.of('change').length === 1);
    const res = ws.of('results')[0];
    assert.equal(res.results[0].status, 'applied');
    const ch = ws.of('change')[0];
    assert.equal(ch.seq, res.results[0].seq);
    assert.deepEqual(ch.origin, { client: 'ws-1', mid: 1 });
    // Resend over WebSocket: duplicate.
    ws.send({ type: 'mutate', client: 'ws-1', mutations: [{ mid: 1, op: 'insert', collection: 'products', id: 'wp1', fields: { n: 1 } }] });
    await ws.waitFor((c) => c.of('results').length === 2);
    assert.equal(ws.of('results')[1].results[0].status, 'duplicate');
    // The token may also come in the Authorization header.
    const viaHeader = new WsClient(server, { headers: { authorization: `Bearer ${admin}` }, collections: 'products' });
    await viaHeader.waitFor((c) => c.of('hello').length >= 1);
    ws.send({ type: 'publish', name: 'ping', collection: 'products', data: { a: 1 } });
    await viaHeader.waitFor((c) => c.of('event').length === 1, 3000, 'event via header-authenticated socket');
    viaHeader.close();
    await ws.waitFor((c) => c.of('event').length === 1);
    assert.equal(ws.of('event')[0].name, 'ping');
    assert.equal(ws.of('change').length, 1, 'the duplicate produced no change');
    ws.close();
  });

  test('Last-Event-ID resume under concurrent writers: no gap, no duplicate', async () => {
    const start = (await api(server, 'GET', '/v1/health')).json.seq;
    const writers = ['w1', 'w2', 'w3'];
    let stop = false;
    const counts = {};
    const writing = writers.map(async (w) => {
      let mid = 0;
      while (!stop) {
        mid++;
        const r = await mutate(server, admin, `resume-${w}`, [
          { mid, op: 'insert', collection: 'orders', id: `${w}-${mid}`, fields: { customer_id: 'alice', n: mid } },
        ]);
        assert.equal(r.status, 200);
        counts[w] = mid;
      }
    });
    const seen = [];
    let last = start;
    // Connect / disconnect repeatedly while the writers run.
    for (let round = 0; round < 6; round++) {
      const sse = new SseClient(server, { token: admin, collections: 'orders', lastEventId: last });
      await sse.opened;
      await sse.waitFor((s) => s.changes().length >= 5, 5000, 'some changes');
      sse.close();
      const got = sse.events.filter((e) => e.event === 'change');
      for (const e of got) seen.push(e.json.seq);
      last = Number(got[got.length - 1].id);
      await sleep(30); // changes commit while we are disconnected
    }
    stop = true;
    await Promise.all(writing);
    const end = (await api(server, 'GET', '/v1/health')).json.seq;
    // Final resume picks up everything up to the end.
    const sse = new SseClient(server, { token: admin, collections: 'orders', cursor: last });
    await sse.waitFor((s) => s.changes().some((c) => c.seq === end), 5000, 'the last change');
    sse.close();
    for (const c of sse.changes()) seen.push(c.seq);
    assertGapFree(seen, start, end);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    assert.equal(seen.length, total);
  });

  test('Last-Event-ID wins over ?cursor=', async () => {
    const start = (await api(server, 'GET', '/v1/health')).json.seq;
    await mutate(server, admin, 'lei', [1, 2, 3].map((mid) => ({ mid, op: 'insert', collection: 'products', id: `lei-${mid}`, fields: {} })));
    const sse = new SseClient(server, { token: admin, collections: 'products', cursor: 0, lastEventId: start + 2 });
    await sse.waitFor((s) => s.changes().length >= 1);
    await sleep(100);
    assert.deepEqual(sse.changes().map((c) => c.seq), [start + 3]);
    sse.close();
  });

  test('WebSocket resume with cursor delivers the missed changes', async () => {
    const start = (await api(server, 'GET', '/v1/health')).json.seq;
    await mutate(server, admin, 'ws-resume', Array.from({ length: 20 }, (_, i) => ({
      mid: i + 1, op: 'insert', collection: 'products', id: `wr-${i}`, fields: { i },
    })));
    const ws = new WsClient(server, { token: admin, collections: 'products', cursor: start });
    await ws.waitFor((c) => c.of('change').length === 20);
    assertGapFree(ws.of('change').map((c) => c.seq), start, start + 20);
    ws.close();
  });

  test('an event whose name holds U+0000 is refused, naming the field (database text cannot hold it)', async () => {
    const r = await api(server, 'POST', '/v1/events', { token: admin, body: { name: 'stage\u0000packed', collection: 'orders', data: { n: 1 } } });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.field, 'name');
    assert.match(r.json.error.message, /U\+0000/);
  });

  test('customer isolation on snapshot, SSE, WebSocket, resume and deletes', async () => {
    const start = (await api(server, 'GET', '/v1/health')).json.seq;
    const aliceSse = new SseClient(server, { token: alice, collections: 'bills' });
    const aliceWs = new WsClient(server, { token: alice, collections: 'bills' });
    await aliceSse.opened;
    await aliceWs.opened;
    await aliceWs.waitFor((c) => c.of('hello').length === 1);
    await aliceSse.waitFor((c) => c.events.length >= 1);
    const r = await mutate(server, admin, 'iso', [
      { mid: 1, op: 'insert', collection: 'bills', id: 'iso-a1', fields: { customer_id: 'alice', amount: 1 } },
      { mid: 2, op: 'insert', collection: 'bills', id: 'iso-b1', fields: { customer_id: 'bob', amount: 2 } },
      { mid: 3, op: 'update', collection: 'bills', id: 'iso-b1', fields: { amount: 3 } },
      { mid: 4, op: 'delete', collection: 'bills', id: 'iso-b1' },
      { mid: 5, op: 'insert', collection: 'bills', id: 'iso-a2', fields: { customer_id: 'alice', amount: 4 } },
      { mid: 6, op: 'delete', collection: 'bills', id: 'iso-a2' },
    ]);
    assert.equal(r.status, 200);
    await api(server, 'POST', '/v1/events', { token: admin, body: { name: 'bill:reminder', collection: 'bills', id: 'iso-b1', data: {} } });
    await api(server, 'POST', '/v1/events', { token: admin, body: { name: 'bill:reminder', collection: 'bills', id: 'iso-a1', data: {} } });
    const end = (await api(server, 'GET', '/v1/health')).json.seq;
    const expectIds = ['iso-a1', 'iso-a2', 'iso-a2'];
    await aliceSse.waitFor((s) => s.changes().length === 3 && s.events.some((e) => e.event === 'event'), 3000);
    await aliceWs.waitFor((c) => c.of('change').length === 3 && c.of('event').length === 1, 3000);
    await sleep(200);
    for (const changes of [aliceSse.changes(), aliceWs.of('change')]) {
      assert.deepEqual(changes.map((c) => c.id), expectIds);
      assert.ok(changes.every((c) => c.op !== 'delete' || c.id === 'iso-a2'), 'no foreign delete');
    }
    assert.deepEqual(aliceSse.events.filter((e) => e.event === 'event').map((e) => e.json.id), ['iso-a1']);
    assert.deepEqual(aliceWs.of('event').map((e) => e.id), ['iso-a1']);
    aliceSse.close();
    aliceWs.close();
    // Resume from before the batch: same filtering, including the delete of bob's bill.
    const resumed = new SseClient(server, { token: alice, collections: 'bills', lastEventId: start });
    await resumed.waitFor((s) => s.events.filter((e) => e.event === 'event').length === 1, 3000);
    await sleep(100);
    assert.deepEqual(resumed.changes().map((c) => c.id), expectIds);
    resumed.close();
    const wsResumed = new WsClient(server, { token: alice, collections: 'bills', cursor: start });
    await wsResumed.waitFor((c) => c.of('event').length === 1, 3000);
    assert.deepEqual(wsResumed.of('change').map((c) => c.id), expectIds);
    wsResumed.close();
    // Snapshot: only alice's live bills, also with her own where filter.
    const snap = await snapshotAll(server, alice, { collections: 'bills' });
    assert.ok(snap.docs.every((d) => d.fields.customer_id === 'alice'));
    assert.ok(snap.docs.some((d) => d.id === 'iso-a1'));
    const sneaky = await snapshotAll(server, alice, { collections: 'bills', where: 'customer_id=eq.bob' });
    assert.equal(sneaky.docs.length, 0);
    // Bob sees his bill's life but nothing of alice's.
    const bobSse = new SseClient(server, { token: bob, cursor: start });
    await bobSse.waitFor((s) => s.changes().length === 3, 3000);
    await sleep(100);
    assert.deepEqual(bobSse.changes().map((c) => `${c.op}:${c.id}`), ['insert:iso-b1', 'update:iso-b1', 'delete:iso-b1']);
    bobSse.close();
    assert.ok(end > start);
  });

  // PostgreSQL's scope index holds the first 500 characters of a read-rule field (btree entries
  // stop near 2,700 bytes): the read rule, checked on every row, must still tell these apart.
  test('customers whose ids share their first 500 characters each read only their own bills', async () => {
    const base = 'c'.repeat(500);
    const subs = [`${base}A`, `${base}B`, base];
    const r = await mutate(server, admin, 'long-subs', subs.map((sub, i) => ({ mid: i + 1, op: 'insert', collection: 'bills', id: `long-sub-${i}`, fields: { customer_id: sub } })));
    assert.deepEqual(r.json.results.map((x) => x.status), ['applied', 'applied', 'applied'], r.text);
    for (const [i, sub] of subs.entries()) {
      const t = makeToken(sub, 'customer');
      const snap = await snapshotAll(server, t, { collections: 'bills' });
      assert.deepEqual(snap.docs.map((d) => d.id).filter((id) => id.startsWith('long-sub-')), [`long-sub-${i}`], `snapshot of subject ${i}`);
      const sse = new SseClient(server, { token: t, collections: 'bills', cursor: 0 });
      await sse.waitFor((s) => s.changes().some((c) => c.id === `long-sub-${i}`), 5000, `stream of subject ${i}`);
      await sleep(100);
      sse.close();
      assert.deepEqual(sse.changes().map((c) => c.id).filter((id) => id.startsWith('long-sub-')), [`long-sub-${i}`], `stream of subject ${i}`);
    }
  });

  test('an update that moves a document out of a reader\'s scope reaches it as a delete', async () => {
    const start = (await api(server, 'GET', '/v1/health')).json.seq;
    await mutate(server, admin, 'scope', [
      { mid: 1, op: 'insert', collection: 'bills', id: 'move-1', fields: { customer_id: 'alice', amount: 7 } },
    ]);
    const aliceSse = new SseClient(server, { token: alice, collections: 'bills', cursor: start });
    const bobWs = new WsClient(server, { token: bob, collections: 'bills', cursor: start });
    await aliceSse.waitFor((s) => s.changes().length === 1);
    const moved = await mutate(server, admin, 'scope', [
      { mid: 2, op: 'update', collection: 'bills', id: 'move-1', fields: { customer_id: 'bob' } },
    ]);
    const seq = moved.json.results[0].seq;
    await aliceSse.waitFor((s) => s.changes().length === 2);
    assert.deepEqual(aliceSse.changes()[1], {
      seq, collection: 'bills', id: 'move-1', op: 'delete', version: seq, fields: {}, origin: { client: 'scope', mid: 2 },
    });
    await bobWs.waitFor((c) => c.of('change').length === 1);
    assert.equal(bobWs.of('change')[0].op, 'update');
    assert.deepEqual(bobWs.of('change')[0].fields, { customer_id: 'bob', amount: 7 });
    aliceSse.close();
    bobWs.close();
    // Resume gives the same answer.
    const again = new SseClient(server, { token: alice, collections: 'bills', cursor: start });
    await again.waitFor((s) => s.changes().length === 2);
    assert.deepEqual(again.changes().map((c) => c.op), ['insert', 'delete']);
    again.close();
  });

  test('snapshot paging: opaque cursor, stable seq, limit', async () => {
    await mutate(server, admin, 'paging', Array.from({ length: 25 }, (_, i) => ({
      mid: i + 1, op: 'insert', collection: 'customers', id: `cust-${String(i).padStart(2, '0')}`, fields: { i },
    })));
    const p1 = await api(server, 'GET', '/v1/snapshot?collections=customers&limit=10', { token: admin });
    assert.equal(p1.status, 200);
    assert.equal(p1.json.docs.length, 10);
    assert.equal(typeof p1.json.next, 'string');
    assert.deepEqual(Object.keys(p1.json.docs[0]).sort(), ['collection', 'fields', 'id', 'version']);
    await mutate(server, admin, 'paging', [{ mid: 26, op: 'update', collection: 'customers', id: 'cust-24', fields: { i: 99 } }]);
    const p2 = await api(server, 'GET', `/v1/snapshot?collections=customers&limit=10&after=${encodeURIComponent(p1.json.next)}`, { token: admin });
    const p3 = await api(server, 'GET', `/v1/snapshot?collections=customers&limit=10&after=${encodeURIComponent(p2.json.next)}`, { token: admin });
    assert.equal(p2.json.seq, p1.json.seq, 'every page reports the first page seq');
    assert.equal(p3.json.docs.length, 5);
    assert.equal(p3.json.next, null);
    const ids = [...p1.json.docs, ...p2.json.docs, ...p3.json.docs].map((d) => d.id);
    assert.equal(new Set(ids).size, 25);
    assert.equal(p3.json.docs[4].fields.i, 99);
  });
});

describe('log retention', () => {
  let server;
  before(async () => {
    server = await startServer({ config: testConfig({ limits: { log_retention: 10 } }) });
  });
  after(async () => {
    await server?.cleanup();
  });

  test('a cursor older than the retained log gets reset cursor_expired', async () => {
    for (let b = 0; b < 3; b++) {
      await mutate(server, admin, 'ret', Array.from({ length: 10 }, (_, i) => ({
        mid: b * 10 + i + 1, op: 'insert', collection: 'products', id: `r-${b}-${i}`, fields: {},
      })));
    }
    const head = (await api(server, 'GET', '/v1/health')).json.seq;
    const sse = new SseClient(server, { token: admin, lastEventId: 1 });
    await sse.waitFor((s) => s.events.length >= 2);
    assert.equal(sse.events[0].event, 'hello');
    assert.equal(sse.events[1].event, 'reset');
    assert.deepEqual(sse.events[1].json, { reason: 'cursor_expired', seq: head });
    // The stream stays live after the reset.
    await mutate(server, admin, 'ret', [{ mid: 31, op: 'insert', collection: 'products', id: 'after-reset', fields: {} }]);
    await sse.waitFor((s) => s.changes().some((c) => c.id === 'after-reset'));
    sse.close();
    const ws = new WsClient(server, { token: admin, cursor: 0 });
    await ws.waitFor((c) => c.of('reset').length === 1);
    assert.equal(ws.of('reset')[0].reason, 'cursor_expired');
    ws.close();
    // A recent cursor still resumes.
    const ok = new SseClient(server, { token: admin, cursor: head - 3 });
    await ok.waitFor((s) => s.changes().length >= 4);
    assert.equal(ok.events.filter((e) => e.event === 'reset').length, 0);
    ok.close();
  });
});
