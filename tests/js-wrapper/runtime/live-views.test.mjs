// LiveViews (runtime/live-views.ts): routes engine outputs to live queries, aggregates, document
// subjects and listeners; a snapshot stays the same object until what it shows changes. Fake engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist } from './helpers.mjs';

const { LiveViews } = await import(dist('runtime/live-views.js'));

const out = (over = {}) => ({ changes: [], queries: [], aggregates: [], settled: [], events: [], needSnapshot: false, cursor: 0, pending: 0, persist: false, ...over });

function fakeEngine() {
  const e = {
    docs: new Map(),
    getManyAsked: [],
    removed: [],
    nextId: 1,
    agg: { total: 1 },
    put(collection, id, data) {
      e.docs.set(`${collection}/${id}`, { collection, id, version: 1, data });
    },
    get: (c, id) => {
      const d = e.docs.get(`${c}/${id}`);
      return d ? structuredClone(d) : null;
    },
    documents: (c) => [...e.docs.values()].filter((d) => d.collection === c).map((d) => structuredClone(d)),
    addQuery: () => e.nextId++,
    queryIds: () => {
      const ids = [...e.docs.values()].filter((d) => d.collection === 'bills').map((d) => d.id).sort();
      return { ids, total: ids.length };
    },
    getMany: (c, ids) => {
      e.getManyAsked.push(ids);
      return ids.map((id) => e.get(c, id));
    },
    removeQuery: (id) => e.removed.push(['query', id]),
    addAggregate: () => e.nextId++,
    aggregateResult: () => structuredClone(e.agg),
    removeAggregate: (id) => e.removed.push(['aggregate', id]),
  };
  return e;
}

function views() {
  const engine = fakeEngine();
  const t = { engine, closed: false };
  t.v = new LiveViews({ engine: () => engine, isClosed: () => t.closed });
  return t;
}

test('a live query re-reads only the documents that changed; the others keep their frozen objects', () => {
  const t = views();
  t.engine.put('bills', 'a', { n: 1 });
  t.engine.put('bills', 'b', { n: 1 });
  const q = t.v.query('bills', {});
  const first = q.getSnapshot();
  assert.deepEqual(first.map((d) => d.id), ['a', 'b']);
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first[0]));
  assert.equal(q.total, 2);
  let notified = 0;
  q.subscribe(() => notified++);

  t.engine.put('bills', 'a', { n: 2 });
  t.engine.getManyAsked.length = 0;
  t.v.apply(out({ changes: [{ collection: 'bills', id: 'a' }], queries: [1] }));
  const second = q.getSnapshot();
  assert.notEqual(second, first);
  assert.equal(notified, 1);
  assert.deepEqual(t.engine.getManyAsked, [['a']]);
  assert.deepEqual(second[0].data, { n: 2 });
  assert.equal(second[1], first[1], 'b is the same object');

  t.v.apply(out({ changes: [{ collection: 'notes', id: 'b' }] }));
  assert.equal(q.getSnapshot(), second, 'no refresh unless the output names the query');

  q.close();
  q.close();
  assert.deepEqual(t.engine.removed, [['query', 1]], 'removed once');
  t.v.apply(out({ queries: [1] }));
  assert.equal(q.getSnapshot(), second);
});

test('a closed client does not ask the engine to remove views', () => {
  const t = views();
  const q = t.v.query('bills', {});
  const a = t.v.aggregate('bills', { sum: 'n' });
  t.closed = true;
  q.close();
  a.close();
  assert.deepEqual(t.engine.removed, []);
});

test('an aggregate refreshes when the output names it', () => {
  const t = views();
  const a = t.v.aggregate('bills', {});
  assert.deepEqual(a.getSnapshot(), { total: 1 });
  t.engine.agg = { total: 5 };
  t.v.apply(out());
  assert.deepEqual(a.getSnapshot(), { total: 1 });
  t.v.apply(out({ aggregates: [1] }));
  assert.deepEqual(a.getSnapshot(), { total: 5 });
});

test('a document subject follows its document; after its last listener leaves a new one still gets updates', () => {
  const t = views();
  t.engine.put('bills', 'a', { n: 1 });
  const doc = t.v.document('bills', 'a');
  assert.deepEqual(doc.getSnapshot().data, { n: 1 });
  let seen = 0;
  const off = doc.subscribe(() => seen++);
  t.engine.put('bills', 'a', { n: 2 });
  t.v.apply(out({ changes: [{ collection: 'bills', id: 'a' }] }));
  assert.equal(seen, 1);
  assert.deepEqual(doc.getSnapshot().data, { n: 2 });
  off();
  t.engine.put('bills', 'a', { n: 3 });
  t.v.apply(out({ changes: [{ collection: 'bills', id: 'a' }] }));
  doc.subscribe(() => seen++);
  assert.deepEqual(doc.getSnapshot().data, { n: 3 }, 're-read when subscribed again');
  t.engine.put('bills', 'a', { n: 4 });
  t.v.apply(out({ changes: [{ collection: 'bills', id: 'a' }] }));
  assert.deepEqual(doc.getSnapshot().data, { n: 4 });
});

test('document listeners get appear/update/disappear only for changes that carry before/after', () => {
  const t = views();
  assert.equal(t.v.wantsChangeDetail, false);
  const seen = [];
  const off = t.v.onDocumentChange((e) => seen.push([e.type, e.id, e.pending]));
  assert.equal(t.v.wantsChangeDetail, true);
  t.v.apply(out({ changes: [
    { collection: 'bills', id: 'a', before: null, after: { n: 1 }, pending: true },
    { collection: 'bills', id: 'b', before: { n: 1 }, after: { n: 2 } },
    { collection: 'bills', id: 'c', before: { n: 1 }, after: null },
    { collection: 'bills', id: 'd' },
  ] }));
  assert.deepEqual(seen, [['appear', 'a', true], ['update', 'b', false], ['disappear', 'c', false]]);
  assert.equal(off(), true);
  assert.equal(t.v.wantsChangeDetail, false);
});

test('events go to event listeners, frozen', () => {
  const t = views();
  const seen = [];
  t.v.onEvent((e) => seen.push(e));
  t.v.apply(out({ events: [{ topic: 'x', data: { a: 1 } }] }));
  assert.equal(seen.length, 1);
  assert.ok(Object.isFrozen(seen[0].data));
});

test('change listeners get the ids of each output once, frozen, without turning change detail on', () => {
  const t = views();
  const seen = [];
  const off = t.v.onChanges((changes) => seen.push(changes));
  assert.equal(t.v.wantsChangeDetail, false, 'ids only: the engine need not compute before/after');
  t.v.apply(out({ changes: [{ collection: 'bills', id: 'a' }, { collection: 'notes', id: 'n' }] }));
  t.v.apply(out({ queries: [7] }));
  t.v.apply(out({ changes: [{ collection: 'bills', id: 'b', before: null, after: { n: 1 }, pending: true }] }));
  assert.deepEqual(seen, [
    [{ collection: 'bills', id: 'a' }, { collection: 'notes', id: 'n' }],
    [{ collection: 'bills', id: 'b' }],
  ], 'one call per output that changed documents; before/after are not passed on');
  assert.ok(Object.isFrozen(seen[0]) && Object.isFrozen(seen[0][0]));
  assert.equal(off(), true);
  t.v.apply(out({ changes: [{ collection: 'bills', id: 'c' }] }));
  assert.equal(seen.length, 2, 'not called after off');
});

test('frozenMany reads several documents in one engine call, in order, null where none is', () => {
  const t = views();
  t.engine.put('bills', 'a', { n: 1 });
  t.engine.put('bills', 'b', { n: 2 });
  const docs = t.v.frozenMany('bills', ['b', 'x', 'a']);
  assert.deepEqual(t.engine.getManyAsked, [['b', 'x', 'a']]);
  assert.deepEqual(docs.map((d) => d?.id ?? null), ['b', null, 'a']);
  assert.ok(Object.isFrozen(docs) && Object.isFrozen(docs[0].data));
  assert.deepEqual(t.v.frozenMany('bills', []), []);
  assert.equal(t.engine.getManyAsked.length, 1, 'no engine call for no ids');
});
