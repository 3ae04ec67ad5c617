// Field operations, conditions and atomic groups through the built syncline.wasm: the
// mutate binding takes "ops" and "if" per mutation and {"mutations", "atomic"} for a group, and a
// rejected group comes back as settled entries naming the member that failed (failedMid) and,
// for a conflict, the server's document (current).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSyncline, SyncEngine, SyncError } from '../../js-wrapper/dist/internal.js';

const mod = await loadSyncline();

const change = (seq, collection, id, op, fields, origin = null) =>
  JSON.stringify({ type: 'change', seq, collection, id, op, version: seq, fields, origin });

function newEngine() {
  return SyncEngine.create(mod, { clientId: 'tab-1', collections: ['products', 'bills', 'ledger'] });
}

test('an increment replays on the newest base and goes on the wire as an op', () => {
  const e = newEngine();
  e.setTransportReady(true);
  e.receiveFrames([change(1, 'products', 'p1', 'insert', { stock: 10 })]);
  const out = e.mutate([{ op: 'update', collection: 'products', id: 'p1', ops: { stock: { increment: -1, min: 0 } } }]);
  assert.deepEqual(out.mids, [1]);
  assert.equal(e.get('products', 'p1').fields.stock, 9);
  // Someone else sold 3: the pending increment adds to the new base, never restores 9.
  e.receiveFrames([change(2, 'products', 'p1', 'update', { stock: 7 })]);
  assert.equal(e.get('products', 'p1').fields.stock, 6);
  const body = JSON.parse(e.takeBatch());
  assert.deepEqual(body.mutations[0].ops, { stock: { increment: -1, min: 0 } });
  assert.equal(body.mutations[0].group, undefined);
  e.receiveFrames([change(3, 'products', 'p1', 'update', { stock: 6 }, { client: 'tab-1', mid: 1 })]);
  assert.equal(e.get('products', 'p1').fields.stock, 6);
  assert.equal(e.get('products', 'p1').pending, false);
  e.dispose();
});

test('an atomic group shows as one, is sent whole, and a rejection rolls it back in one step', () => {
  const e = newEngine();
  e.setTransportReady(true);
  e.receiveFrames([change(1, 'bills', 'b1', 'insert', { status: 'unpaid', total: 10 })]);
  const q = e.addQuery({ collection: 'ledger' });
  const out = e.mutate({
    atomic: true,
    mutations: [
      { op: 'update', collection: 'bills', id: 'b1', fields: { status: 'paid' }, if: 'status=eq.unpaid', ops: { paid_at: { serverTime: true } } },
      { op: 'insert', collection: 'ledger', id: 'l1', fields: { bill: 'b1', amount: 10 } },
    ],
  }, 5000);
  assert.deepEqual(out.mids, [1, 2]);
  assert.equal(out.changes.length, 2, 'one change per document');
  assert.equal(e.get('bills', 'b1').fields.status, 'paid');
  assert.equal(e.get('bills', 'b1').fields.paid_at, 5000, 'serverTime shows the local time until the server answers');
  assert.equal(e.queryResult(q).docs.length, 1);

  const body = JSON.parse(e.takeBatch());
  assert.deepEqual(body.mutations.map((m) => [m.mid, m.group, m.group_size]), [[1, 1, 2], [2, 1, 2]]);
  assert.equal(body.mutations[0].if, 'status=eq.unpaid');

  // Another window paid first: the condition failed, so neither member applied.
  const current = { version: 7, fields: { status: 'paid', total: 10, paid_at: 4000 } };
  const settled = e.receiveFrames([
    change(7, 'bills', 'b1', 'update', current.fields),
    JSON.stringify({ type: 'results', seq: 7, results: [
      { mid: 1, status: 'rejected', code: 'conflict', message: 'condition status=eq.unpaid does not hold', failed_mid: 1, current },
      { mid: 2, status: 'rejected', code: 'conflict', message: 'condition status=eq.unpaid does not hold', failed_mid: 1 },
    ] }),
  ]);
  assert.deepEqual(settled.settled.map((s) => [s.mid, s.applied, s.code, s.failedMid]), [[1, false, 'conflict', 1], [2, false, 'conflict', 1]]);
  assert.deepEqual(settled.settled[0].current, current);
  assert.equal(settled.settled[1].current, undefined);
  assert.equal(settled.pending, 0);
  assert.equal(e.get('ledger', 'l1'), null, 'the credit rolled back with the bill');
  assert.equal(e.get('bills', 'b1').fields.paid_at, 4000);
  assert.equal(e.queryResult(q).docs.length, 0);
  e.dispose();
});

test('bad ops, conditions and atomic flags are typed errors naming the member', () => {
  const e = newEngine();
  const fails = (batch, field) =>
    assert.throws(() => e.mutate(batch), (err) => err instanceof SyncError && err.code === 'invalid_mutation' && err.field === field);
  fails([{ op: 'update', collection: 'products', id: 'p1', ops: { stock: { increment: '1' } } }], 'mutations[0].ops.stock.increment');
  fails([{ op: 'update', collection: 'products', id: 'p1', ops: { stock: { multiply: 2 } } }], 'mutations[0].ops.stock.multiply');
  fails([{ op: 'update', collection: 'products', id: 'p1', ops: [1] }], 'mutations[0].ops');
  fails([{ op: 'update', collection: 'products', id: 'p1', fields: {}, ops: { stock: { increment: 1 } } },
    { op: 'delete', collection: 'products', id: 'p2', ops: { stock: { increment: 1 } } }], 'mutations[1].ops');
  fails([{ op: 'update', collection: 'products', id: 'p1', fields: { stock: 1 }, ops: { stock: { increment: 1 } } }], 'mutations[0].ops.stock');
  fails([{ op: 'update', collection: 'bills', id: 'b1', fields: {}, if: 'status=zz.x' }], 'mutations[0].if');
  fails([{ op: 'update', collection: 'bills', id: 'b1', fields: {}, if: 5 }], 'mutations[0].if');
  fails([{ op: 'insert', collection: 'bills', id: 'b1', fields: {}, if: 'status=eq.x' }], 'mutations[0].if');
  fails({ atomic: 'yes', mutations: [] }, 'atomic');
  fails({ atomic: true }, 'mutations');
  assert.equal(e.state().nextMid, 1, 'nothing refused took a mid');
  e.dispose();
});
