// Drives the built syncline.wasm from JS through the package's typed wrapper (node:test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSyncline, SyncEngine, SyncError } from '../../js-wrapper/dist/internal.js';

const mod = await loadSyncline();

const change = (seq, id, op, fields, origin = null) =>
  JSON.stringify({ type: 'change', seq, collection: 'bills', id, op, version: seq, fields, origin });

function newEngine(extra = {}) {
  return SyncEngine.create(mod, { clientId: 'tab-1', collections: ['bills'], ...extra });
}

test('scenario: local writes, server changes, acks, a rejection and a live query', () => {
  const e = newEngine();
  const q = e.addQuery({ collection: 'bills', where: 'status=eq.unpaid', orderBy: 'total.desc', limit: 2 });
  let out = e.receiveFrames([
    change(1, 'b1', 'insert', { total: 10, status: 'unpaid' }),
    change(2, 'b2', 'insert', { total: 30, status: 'unpaid' }),
    change(3, 'b3', 'insert', { total: 20, status: 'paid' }),
  ]);
  assert.equal(out.cursor, 3);
  assert.deepEqual(out.queries, [q]);
  assert.deepEqual(e.queryResult(q).docs.map((d) => d.id), ['b2', 'b1']);

  e.setTransportReady(true);
  out = e.mutate([
    { op: 'insert', collection: 'bills', id: 'b4', fields: { total: 99, status: 'unpaid' } },
    { op: 'update', collection: 'bills', id: 'b2', fields: { status: 'paid' } },
  ]);
  assert.deepEqual(out.mids, [1, 2]);
  assert.equal(out.pending, 2);
  assert.deepEqual(out.queries, [q], 'the live query sees local writes synchronously');
  assert.deepEqual(e.queryResult(q).docs.map((d) => d.id), ['b4', 'b1']);
  assert.equal(e.get('bills', 'b4').pending, true);

  const body = JSON.parse(e.takeBatch());
  assert.equal(body.client, 'tab-1');
  assert.deepEqual(body.mutations.map((m) => m.mid), [1, 2]);
  assert.equal(e.takeBatch(), null, 'one batch in flight');

  // mid 1 applied, mid 2 rejected: b2 rolls back to unpaid and re-enters the query.
  out = e.receiveFrames([
    JSON.stringify({ type: 'results', seq: 4, results: [
      { mid: 1, status: 'applied', seq: 4 },
      { mid: 2, status: 'rejected', code: 'forbidden', message: 'customers cannot mark bills paid' },
    ] }),
  ]);
  assert.equal(out.settled.length, 2);
  assert.equal(out.settled[0].applied, true);
  assert.equal(out.settled[1].code, 'forbidden');
  assert.equal(e.get('bills', 'b2').fields.status, 'unpaid');
  assert.deepEqual(e.queryResult(q).docs.map((d) => d.id), ['b4', 'b2']);
  assert.equal(out.changes.some((c) => c.id === 'b4'), false, 'ack must not flicker the view');

  out = e.receiveFrames([change(4, 'b4', 'insert', { total: 99, status: 'unpaid' }, { client: 'tab-1', mid: 1 })]);
  assert.equal(out.pending, 0);
  assert.equal(e.get('bills', 'b4').pending, false);
  assert.equal(e.history().counts.rejected, 1);

  const agg = e.addAggregate({ collection: 'bills', groupBy: 'status', sum: 'total' });
  const totals = e.aggregateResult(agg);
  assert.deepEqual(totals.groups['"unpaid"'], { count: 3, sum: 139 });
  assert.deepEqual(totals.groups['"paid"'], { count: 1, sum: 20 });
  e.dispose();
});

test('a malformed server message is a typed error and the module keeps working', () => {
  const e = newEngine();
  const out = e.receiveFrames([
    '{"type":"change","seq":"not a number"}',
    change(1, 'ok', 'insert', { a: 1 }),
    '{"type":"teleport"}',
  ]);
  assert.equal(out.errors.length, 2);
  assert.equal(out.errors[0].index, 0);
  assert.equal(out.errors[0].code, 'invalid_message');
  assert.equal(out.errors[0].field, 'seq');
  assert.equal(out.errors[1].field, 'type');
  assert.equal(e.get('bills', 'ok').fields.a, 1, 'valid messages in the same batch still apply');

  assert.throws(() => e.receiveFrames(['{not json']), (err) => err instanceof SyncError && err.code === 'invalid_json');
  assert.throws(
    () => e.mutate([{ op: 'insert', collection: 'Bad Name', id: 'x', fields: {} }]),
    (err) => err instanceof SyncError && err.code === 'invalid_mutation' && err.field === 'mutations[0].collection',
  );
  assert.throws(() => e.addQuery({ collection: 'bills', where: 'total=zz.3' }), (err) => err.code === 'invalid_filter');
  assert.throws(() => SyncEngine.create(mod, { clientId: '' }), (err) => err.code === 'invalid_request' && err.field === 'clientId');
  // Still alive after all of that.
  const after = e.mutate([{ op: 'insert', collection: 'bills', id: 'y', fields: { a: 2 } }]);
  assert.deepEqual(after.mids, [1]);
  e.dispose();
});

test('SSE messages are spliced into frames without re-parsing', () => {
  const e = newEngine();
  const out = e.receiveSse([
    { type: 'hello', data: '{"seq":7}' },
    { type: 'change', data: '{"seq":8,"collection":"bills","id":"s1","op":"insert","version":8,"fields":{"x":1},"origin":null}' },
    { type: 'event', data: '{"seq":9,"name":"order:stage_change","collection":"orders","id":"o1","data":{"stage":"paid"}}' },
  ]);
  assert.equal(out.errors.length, 0);
  assert.equal(out.cursor, 9);
  assert.equal(out.events[0].name, 'order:stage_change');
  assert.equal(e.history().counts['order:stage_change'], 1);
});

test('state survives snapshotBytes/restore with the same mids, and garbage is refused', () => {
  const e = newEngine({ historyLimit: 3 });
  e.receiveFrames([change(5, 'b1', 'insert', { a: 1 })]);
  e.mutate([{ op: 'update', collection: 'bills', id: 'b1', fields: { a: 2 } }]);
  const bytes = e.snapshotBytes();
  assert.ok(bytes instanceof Uint8Array && bytes.length > 0);
  const r = SyncEngine.restore(mod, bytes, { clientId: 'ignored', collections: ['bills'], historyLimit: 3 });
  assert.equal(r.state().clientId, 'tab-1');
  assert.equal(r.state().cursor, 5);
  assert.equal(r.get('bills', 'b1').fields.a, 2);
  r.setTransportReady(true);
  assert.deepEqual(JSON.parse(r.takeBatch()).mutations.map((m) => m.mid), [1]);
  assert.throws(() => SyncEngine.restore(mod, new Uint8Array([1, 2, 3]), { clientId: 'x' }), (err) => err.code === 'invalid_snapshot');
});

test('persistence batches carry dirty documents, outbox and cursor', () => {
  const e = newEngine();
  e.receiveFrames([change(1, 'p1', 'insert', { a: 1 }), change(2, 'p2', 'insert', { a: 2 }), change(3, 'p1', 'delete', {})]);
  e.mutate([{ op: 'insert', collection: 'bills', id: 'p3', fields: { a: 3 } }]);
  const p = e.takePersistence();
  assert.deepEqual(p.putDocs.map((d) => [d.id, !!d.deleted]).sort(), [['p1', true], ['p2', false]]);
  assert.equal(p.outbox.entries.length, 1);
  assert.equal(p.meta.cursor, 3);
  const again = e.takePersistence();
  assert.equal(again.putDocs.length, 0, 'taken once');
});

test('a batch taken without the history leaves it pending for the next one', () => {
  const e = newEngine();
  e.receiveFrames([change(1, 'h1', 'insert', { a: 1 })]);
  const held = e.takePersistence(false);
  assert.equal(held.history, undefined);
  assert.equal(held.historyHeld, true);
  assert.equal(held.putDocs.length, 1);
  const next = e.takePersistence(false);
  assert.equal(next.historyHeld, true, 'still pending');
  assert.equal(next.putDocs.length, 0);
  const withIt = e.takePersistence(true);
  assert.ok(withIt.history.entries.some((x) => x.type === 'insert' && x.id === 'h1'));
  assert.equal(withIt.historyHeld, undefined);
  assert.equal(e.takePersistence(true).history, undefined, 'taken once');
});

test('the connection state machine backs off with jitter and retries when online', () => {
  const c = new mod.Connection(500, 30000, 45000, 42);
  let s = JSON.parse(c.start(0));
  assert.equal(s.action, 'open');
  s = JSON.parse(c.onFailure(10, 'refused', false));
  assert.equal(s.state, 'backing_off');
  assert.ok(s.backoffMs >= 0 && s.backoffMs <= 500);
  s = JSON.parse(c.setOnline(false, 11));
  s = JSON.parse(c.setOnline(true, 12));
  assert.equal(s.action, 'open', 'coming online short-circuits the backoff');
  s = JSON.parse(c.onOpen(20));
  assert.equal(s.state, 'connected');
  s = JSON.parse(c.tick(20 + 45000));
  assert.equal(s.action, 'close', 'heartbeat timeout');
  c.delete();
});

test('one boundary crossing per batch handles 10k messages', () => {
  const e = newEngine();
  const frames = [];
  for (let i = 1; i <= 10000; i++) frames.push(change(i, `d${i % 1000}`, i <= 1000 ? 'insert' : 'update', { n: i }));
  const out = e.receiveFrames(frames);
  assert.equal(out.errors.length, 0);
  assert.equal(out.cursor, 10000);
  assert.equal(e.documents('bills').length, 1000);
  assert.equal(e.get('bills', 'd0').fields.n, 10000);
});

test('a write confirmed with the fields already shown reports one change and refreshes the query; queryIds + getMany read a result in two calls', () => {
  const e = newEngine();
  const q = e.addQuery({ collection: 'bills', orderBy: 'total.desc' });
  e.setTransportReady(true);
  e.receiveFrames([change(1, 'b1', 'insert', { total: 5 })]);
  e.mutate([{ op: 'insert', collection: 'bills', id: 'b2', fields: { total: 9 } }]);
  assert.equal(JSON.parse(e.takeBatch(0, 2)).mutations.length, 1);
  const out = e.receiveFrames([
    change(2, 'b2', 'insert', { total: 9 }, { client: 'tab-1', mid: 1 }),
    JSON.stringify({ type: 'results', client: 'tab-1', results: [{ mid: 1, status: 'applied', seq: 2 }] }),
  ]);
  assert.deepEqual(out.changes.map((c) => c.id), ['b2'], 'pending and version moved: one change, no field change');
  assert.deepEqual(out.queries, [q]);
  const ids = e.queryIds(q);
  assert.deepEqual(ids, { ids: ['b2', 'b1'], total: 2 });
  const docs = e.getMany('bills', [...ids.ids, 'gone']);
  assert.deepEqual(docs.map((d) => d && [d.id, d.version, d.pending]), [['b2', 2, false], ['b1', 1, false], null]);
  assert.throws(() => e.getMany('bills', [1]), (err) => err instanceof SyncError && err.code === 'invalid_json');
});
