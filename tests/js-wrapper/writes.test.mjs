// The write path without a browser or wasm: field-operation markers split out of
// patches into the wire's `ops`, validation errors, and how write and transaction promises settle
// from the engine's verdicts. The engine is a stand-in that records what it was given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { increment, serverTime, SyncError } from '../../js-wrapper/dist/index.js';
import { isFieldOperation, splitFieldOps } from '../../js-wrapper/dist/field-ops.js';
import { Writes, wireOf } from '../../js-wrapper/dist/writes.js';

const EMPTY_OUT = { changes: [], queries: [], aggregates: [], settled: [], events: [], needSnapshot: false, cursor: 0, pending: 0, persist: true };

/** A Writes over a fake engine: mutate() hands out consecutive mids and records each call. */
function harness({ fail } = {}) {
  let nextMid = 1;
  const calls = [];
  const announced = [];
  let open = true;
  const engine = {
    mutate(batch, now, atomic = false) {
      // The same JSON the real engine gets: a misplaced marker fails here.
      const text = JSON.stringify(batch);
      if (fail) fail(batch);
      calls.push({ batch: JSON.parse(text), atomic });
      return { ...EMPTY_OUT, mids: batch.map(() => nextMid++) };
    },
  };
  const writes = new Writes({
    engine: () => engine,
    assertOpen: () => {
      if (!open) throw new SyncError('closed', 'the client is closed');
    },
    announce: (m) => announced.push(...m),
    handle: () => {},
    persist: () => Promise.resolve(),
    send: () => {},
  });
  return { writes, calls, announced, close: () => (open = false) };
}

const settledOf = (p) => p.then((v) => ({ ok: v }), (e) => ({ err: e }));
const tick = () => new Promise((r) => setImmediate(r));

test('increment and serverTime are markers split out of fields into ops; other values stay', () => {
  const inc = increment(-1, { min: 0 });
  assert.equal(isFieldOperation(inc), true);
  assert.equal(isFieldOperation({ kind: 'increment', by: 1 }), false, 'a plain object with the same shape is data');
  assert.ok(Object.isFrozen(inc));
  const patch = { name: 'Widget', stock: inc, sold_at: serverTime(), note: null };
  const split = splitFieldOps(patch);
  assert.deepEqual(split.fields, { name: 'Widget', note: null });
  assert.deepEqual(split.ops, { stock: { increment: -1, min: 0 }, sold_at: { serverTime: true } });
  assert.ok('stock' in patch, 'the caller\'s patch is not modified');
  const plain = { a: 1 };
  assert.equal(splitFieldOps(plain).fields, plain, 'without markers the patch itself is used');
  assert.equal(splitFieldOps(plain).ops, undefined);
  assert.deepEqual(splitFieldOps({ n: increment(2.5, { max: 10 }) }).ops, { n: { increment: 2.5, max: 10 } });
});

test('update/insert send ops; if and baseVersion ride along; the wire form keeps them for other tabs', () => {
  const h = harness();
  const c = h.writes.collection('products');
  const w = c.update('p1', { stock: increment(-1, { min: 0 }), label: 'x' }, { if: 'active=is.true', baseVersion: 3 });
  assert.equal(w.id, 'p1');
  assert.equal(w.mid, 1);
  assert.ok(w.local instanceof Promise);
  assert.deepEqual(h.calls[0], {
    atomic: false,
    batch: [{ op: 'update', collection: 'products', id: 'p1', fields: { label: 'x' }, ops: { stock: { increment: -1, min: 0 } }, base_version: 3, if: 'active=is.true' }],
  });
  const ins = c.insert({ name: 'new', stock: increment(5), created: serverTime() }, { id: 'p2' });
  assert.deepEqual(h.calls[1].batch[0], { op: 'insert', collection: 'products', id: 'p2', fields: { name: 'new' }, ops: { stock: { increment: 5 }, created: { serverTime: true } } });
  assert.equal(ins.id, 'p2');
  c.delete('p3', { if: 'stock=eq.0' });
  assert.deepEqual(h.calls[2].batch[0], { op: 'delete', collection: 'products', id: 'p3', if: 'stock=eq.0' });
  assert.deepEqual(h.announced.map((m) => m.mid), [1, 2, 3]);
  assert.deepEqual(h.announced[0].ops, { stock: { increment: -1, min: 0 } });
  assert.equal(h.announced[0].if, 'active=is.true');
  assert.deepEqual(h.writes.ownPending().map((m) => m.mid), [1, 2, 3]);
  // A stored outbox entry keeps its operation, condition and group in the wire form.
  const stored = { mid: 9, op: 'update', collection: 'b', id: 'x', fields: {}, ops: { n: { increment: 1 } }, if: 'a=eq.1', group: 9, group_size: 2, queuedMs: 5 };
  assert.deepEqual(wireOf(stored), { mid: 9, op: 'update', collection: 'b', id: 'x', fields: {}, ops: { n: { increment: 1 } }, if: 'a=eq.1', group: 9, group_size: 2 });
});

test('malformed operations and conditions throw invalid_mutation naming the field; nothing is queued', () => {
  const h = harness();
  const c = h.writes.collection('products');
  const cases = [
    [() => c.update('p', { stock: increment(NaN) }), 'ops.stock', /finite/],
    [() => c.update('p', { stock: increment(Infinity) }), 'ops.stock', /finite/],
    [() => c.update('p', { stock: increment('1') }), 'ops.stock', /finite/],
    [() => c.update('p', { stock: increment(1, { min: 5, max: 1 }) }), 'ops.stock', /min 5 is above max 1/],
    [() => c.update('p', { stock: increment(1, { min: NaN }) }), 'ops.stock', /min/],
    [() => c.insert({ stock: increment(1, { max: 'ten' }) }), 'ops.stock', /max/],
    [() => c.delete('p', { stock: increment(-1) }), 'ops.stock', /delete takes no field operations/],
    [() => c.update('p', { nested: { stock: increment(1) } }), 'fields.stock', /top-level field/],
    [() => c.update('p', { list: [serverTime()] }), 'fields.0', /top-level field/],
    [() => c.update('p', { a: 1 }, { if: '' }), 'if', /non-empty/],
    [() => c.update('p', { a: 1 }, { if: 42 }), 'if', /non-empty/],
    [() => c.insert({ a: 1 }, { if: 'a=eq.1' }), 'if', /insert takes no condition/],
    [() => c.update('bad id!', { a: 1 }), 'id', /not valid/],
  ];
  for (const [fn, field, message] of cases) {
    assert.throws(fn, (e) => e instanceof SyncError && e.code === 'invalid_mutation' && e.field === field && message.test(e.message), `${fn}`);
  }
  assert.equal(h.calls.length, 0, 'no invalid write reached the engine');
  assert.equal(h.writes.ownPendingCount, 0);
  assert.throws(() => h.writes.collection('Bad Name'), (e) => e.code === 'invalid_mutation' && e.field === 'collection');
});

test('a single write resolves on applied and rejects with conflict carrying current', async () => {
  const h = harness();
  const c = h.writes.collection('bills');
  const ok = c.update('b1', { n: increment(1) });
  const bad = c.update('b2', { status: 'paid' }, { if: 'status=eq.unpaid' });
  const gone = c.delete('b3', { if: 'status=eq.unpaid' });
  const r = h.writes.settle([
    { mid: 1, applied: true, seq: 7, collection: 'bills', id: 'b1' },
    { mid: 2, applied: false, code: 'conflict', message: 'condition status=eq.unpaid does not hold', collection: 'bills', id: 'b2', current: { version: 5, fields: { status: 'paid' } } },
    { mid: 3, applied: false, code: 'conflict', message: 'condition does not hold', collection: 'bills', id: 'b3', current: null },
  ]);
  assert.deepEqual(r, { applied: [1], rejected: [2, 3] });
  assert.deepEqual(await ok, { mid: 1, seq: 7, id: 'b1' });
  const e = (await settledOf(bad)).err;
  assert.ok(e instanceof SyncError);
  assert.equal(e.code, 'conflict');
  assert.equal(e.collection, 'bills');
  assert.equal(e.id, 'b2');
  assert.deepEqual(e.current, { version: 5, fields: { status: 'paid' } });
  assert.equal(e.failedIndex, undefined, 'a single write is not a group member');
  assert.equal((await settledOf(gone)).err.current, null, 'null current: the document is absent on the server');
  assert.equal(h.writes.ownPendingCount, 0);
});

test('a transaction is one atomic engine call; its promise resolves once every member is applied', async () => {
  const h = harness();
  h.writes.collection('x').insert({ a: 1 }); // mid 1: the group starts later
  const t = h.writes.transaction((tx) => {
    const bill = tx.collection('bills').update('b1', { status: 'paid', paid_at: serverTime() }, { if: 'status=eq.unpaid' });
    assert.deepEqual(bill, { op: 'update', collection: 'bills', id: 'b1', index: 0 });
    const credit = tx.collection('ledger_entries').insert({ bill: bill.id, amount: 4200 });
    assert.equal(credit.index, 1);
    assert.ok(credit.id.length > 0, 'an insert gets its id at once');
  });
  assert.equal(h.calls.length, 2);
  assert.equal(h.calls[1].atomic, true);
  assert.deepEqual(h.calls[1].batch.map((m) => [m.op, m.collection, m.if, m.ops]), [
    ['update', 'bills', 'status=eq.unpaid', { paid_at: { serverTime: true } }],
    ['insert', 'ledger_entries', undefined, undefined],
  ]);
  assert.deepEqual(t.mids, [2, 3]);
  assert.deepEqual(t.writes.map((w) => w.index), [0, 1]);
  assert.deepEqual(h.announced.slice(1).map((m) => [m.mid, m.group, m.group_size]), [[2, 2, 2], [3, 2, 2]], 'other tabs get the group');
  let settled = false;
  t.then(() => (settled = true), () => (settled = true));
  h.writes.settle([{ mid: 2, applied: true, seq: 10, collection: 'bills', id: 'b1' }]);
  await tick();
  assert.equal(settled, false, 'one member applied is not the group');
  h.writes.settle([{ mid: 3, applied: true, seq: 11, collection: 'ledger_entries', id: t.writes[1].id }]);
  const r = await t;
  assert.deepEqual(r.results.map((x) => [x.mid, x.seq]), [[2, 10], [3, 11]]);
  assert.equal(r.results[1].id, t.writes[1].id);
});

test('a rejected group rejects once, with the failed member named and its current document', async () => {
  const h = harness();
  const t = h.writes.transaction((tx) => {
    tx.collection('ledger_entries').insert({ amount: 1 }, { id: 'l1' });
    tx.collection('bills').update('b1', { status: 'paid' }, { if: 'status=eq.unpaid' });
    tx.collection('products').update('p1', { stock: increment(-1, { min: 0 }) });
  });
  const cause = { code: 'conflict', message: 'condition status=eq.unpaid does not hold', failedMid: 2 };
  const r = h.writes.settle([
    { mid: 1, applied: false, collection: 'ledger_entries', id: 'l1', ...cause },
    { mid: 2, applied: false, collection: 'bills', id: 'b1', ...cause, current: { version: 9, fields: { status: 'paid' } } },
    { mid: 3, applied: false, collection: 'products', id: 'p1', ...cause },
  ]);
  assert.deepEqual(r.rejected, [1, 2, 3]);
  const e = (await settledOf(t)).err;
  assert.ok(e instanceof SyncError);
  assert.equal(e.code, 'conflict');
  assert.equal(e.failedMid, 2);
  assert.equal(e.failedIndex, 1);
  assert.equal(e.collection, 'bills');
  assert.equal(e.id, 'b1');
  assert.deepEqual(e.current, { version: 9, fields: { status: 'paid' } });
  // A later verdict for the same mids (a duplicate delivery) changes nothing.
  h.writes.settle([{ mid: 3, applied: true, seq: 4, collection: 'products', id: 'p1' }]);
});

test('a group failed by a member whose verdict is not in the output is still named from what was queued', async () => {
  const h = harness();
  const t = h.writes.transaction((tx) => {
    tx.collection('a').insert({ v: 1 }, { id: 'a1' });
    tx.collection('b').update('b1', { n: increment(-5, { min: 0 }) });
  });
  h.writes.settle([{ mid: 1, applied: false, collection: 'a', id: 'a1', code: 'constraint', message: 'n would be -5, below min 0', failedMid: 2 }]);
  const e = (await settledOf(t)).err;
  assert.deepEqual([e.code, e.failedIndex, e.failedMid, e.collection, e.id], ['constraint', 1, 2, 'b', 'b1']);
  assert.equal(e.current, undefined);
});

test('a group refused as a whole (no failedMid) names no member; close rejects waiting transactions with closed', async () => {
  const h = harness();
  const t = h.writes.transaction((tx) => {
    tx.collection('a').insert({ v: 1 });
    tx.collection('a').insert({ v: 2 });
  });
  h.writes.settle(t.mids.map((mid) => ({ mid, applied: false, collection: 'a', id: 'x', code: 'forbidden', message: 'no' })));
  const e = (await settledOf(t)).err;
  assert.equal(e.code, 'forbidden');
  assert.equal(e.failedIndex, undefined);
  const t2 = h.writes.transaction((tx) => tx.collection('a').delete('a1'));
  const w = h.writes.collection('a').insert({ v: 3 });
  h.writes.failAll(new SyncError('closed', 'closed'));
  assert.equal((await settledOf(t2)).err.code, 'closed');
  assert.equal((await settledOf(w)).err.code, 'closed');
  h.close();
  assert.throws(() => h.writes.transaction((tx) => tx.collection('a').insert({})), (e2) => e2.code === 'closed');
});

test('transaction misuse: a throwing callback queues nothing, an async callback or a late write is refused, empty resolves', async () => {
  const h = harness();
  assert.throws(() => h.writes.transaction((tx) => {
    tx.collection('a').insert({ v: 1 });
    throw new Error('app bug');
  }), /app bug/);
  assert.throws(() => h.writes.transaction((tx) => tx.collection('a').update('a1', { n: increment(NaN) })), (e) => e.code === 'invalid_mutation' && e.field === 'ops.n');
  let kept;
  assert.throws(() => h.writes.transaction(async (tx) => {
    kept = tx;
    tx.collection('a').insert({ v: 1 });
  }), (e) => e.code === 'invalid_mutation' && /synchronous/.test(e.message));
  assert.throws(() => kept.collection('a').insert({ v: 2 }), (e) => e.code === 'invalid_mutation' && /already sent/.test(e.message));
  assert.equal(h.calls.length, 0, 'nothing reached the engine');
  const empty = h.writes.transaction(() => {});
  assert.deepEqual(await empty, { results: [] });
  assert.deepEqual(empty.mids, []);
});

test('an engine error naming mutations[i] becomes the transaction member it points at', () => {
  const h = harness({
    fail: (batch) => {
      if (batch.length > 1) throw new SyncError('invalid_mutation', 'bad filter', { field: 'mutations[1].if' });
      if (batch[0].if === 'zz') throw new SyncError('invalid_mutation', 'bad filter', { field: 'mutations[0].if' });
    },
  });
  assert.throws(() => h.writes.transaction((tx) => {
    tx.collection('a').insert({ v: 1 });
    tx.collection('b').update('b1', { v: 2 }, { if: 'status=zz.1' });
  }), (e) => e.code === 'invalid_mutation' && e.field === 'if' && e.failedIndex === 1 && e.collection === 'b' && e.id === 'b1');
  assert.throws(() => h.writes.collection('a').update('a1', { v: 1 }, { if: 'zz' }), (e) => e.field === 'if' && e.failedIndex === undefined);
  assert.equal(h.writes.ownPendingCount, 0);
});
