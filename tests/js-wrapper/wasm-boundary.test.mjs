// The wasm boundary against the built module: one casing in what the engine hands to JS (the
// wire protocol's own payloads aside), outbox records and history written by the previous
// spelling still restore, and every malformed input is a SyncError with a registered code and
// the member named in `field` instead of being skipped or defaulted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { historyFromStored, loadSyncline, outboxFromStored, SyncEngine, SyncError } from '../../js-wrapper/dist/internal.js';

const mod = await loadSyncline();
const OPTS = { clientId: 'tab-1', collections: ['bills'] };
const newEngine = (extra = {}) => SyncEngine.create(mod, { ...OPTS, ...extra });

function throwsCode(fn, code, field, what = `${code} at ${field}`) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof SyncError, `${what}: not a SyncError: ${e}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    assert.equal(e.field, field, `${what}: ${e.message}`);
    return true;
  }, what);
}

const keys = (o) => Object.keys(o).sort();

test('what the engine builds for JS is camelCase; wire mutations keep the protocol spelling', () => {
  const e = newEngine({ nowMs: 1000 });
  e.mutate([{ op: 'insert', collection: 'bills', id: 'b1', fields: { n: 1 } }], 1500);
  e.mutate([
    { op: 'update', collection: 'bills', id: 'b1', fields: { n: 2 }, base_version: 0 },
    { op: 'insert', collection: 'bills', id: 'b2', fields: { n: 3 } },
  ], 1600, true);
  e.record('note', { x: 1 }, 1700);
  e.markAllDirty();
  const batch = e.takePersistence();
  assert.deepEqual(keys(batch.outbox), ['entries', 'nextMid']);
  assert.equal(batch.outbox.nextMid, 4);
  const [first, second] = batch.outbox.entries;
  assert.equal(first.queuedMs, 1500);
  assert.equal(second.base_version, 0, 'the mutation is the wire form');
  assert.equal(second.group_size, 2);
  assert.ok(!('queued_ms' in first) && !('applied_seq' in first) && !('next_mid' in batch.outbox));
  const note = batch.history.entries.find((h) => h.type === 'note');
  assert.equal(note.atMs, 1700);
  assert.ok(!('at_ms' in note));
  assert.deepEqual(keys(batch.meta), ['clientId', 'cursor', 'needSnapshot', 'subscription']);
  assert.equal(e.state().nextMid, 4);
  for (const h of e.history().entries) assert.ok('atMs' in h && !('at_ms' in h));
  e.dispose();
});

test('an outbox record and history of the previous spelling restore, and are written back in the new one', () => {
  const old = {
    client: 'tab-1',
    cursor: 4,
    docs: [{ collection: 'bills', id: 'b0', version: 4, fields: { n: 0 } }],
    outbox: {
      next_mid: 5,
      entries: [
        { mid: 2, op: 'update', collection: 'bills', id: 'b0', fields: { n: 1 }, applied_seq: 9, queued_ms: 700 },
        { mid: 4, op: 'insert', collection: 'bills', id: 'b9', fields: { n: 9 }, queued_ms: 800 },
      ],
    },
    history: { version: 1, capacity: 10, total: 1, counts: { status: 1 }, entries: [{ at_ms: 123, type: 'status', seq: 0, collection: '', id: '', data: {} }] },
    subscription: { collections: ['bills'], where: '' },
    need_snapshot: true,
  };
  const e = SyncEngine.restoreParts(mod, old, OPTS);
  const st = e.state();
  assert.equal(st.nextMid, 5);
  assert.equal(st.pending, 2);
  assert.equal(st.unacknowledged, 1, 'applied_seq was read: only mid 4 awaits a verdict');
  assert.equal(st.needSnapshot, true, 'need_snapshot was read');
  assert.equal(e.history().entries[0].atMs, 123);
  assert.equal(e.get('bills', 'b9').pending, true);
  e.markAllDirty();
  const batch = e.takePersistence();
  assert.equal(batch.outbox.nextMid, 5);
  assert.deepEqual(batch.outbox.entries.map((x) => [x.mid, x.appliedSeq, x.queuedMs]), [[2, 9, 700], [4, undefined, 800]]);
  e.dispose();

  // The storage adapters rename what they read, so the runtime never sees the old spelling.
  const renamed = outboxFromStored(old.outbox);
  assert.deepEqual(renamed, {
    nextMid: 5,
    entries: [
      { mid: 2, op: 'update', collection: 'bills', id: 'b0', fields: { n: 1 }, appliedSeq: 9, queuedMs: 700 },
      { mid: 4, op: 'insert', collection: 'bills', id: 'b9', fields: { n: 9 }, queuedMs: 800 },
    ],
  });
  assert.equal(old.outbox.next_mid, 5, 'the stored object is not modified');
  assert.equal(historyFromStored(old.history).entries[0].atMs, 123);
  assert.equal(historyFromStored(null), null);
  const current = { nextMid: 2, entries: [] };
  assert.deepEqual(outboxFromStored(current), current);
});

test('malformed restore parts are invalid_snapshot naming the member', () => {
  const good = {
    client: 'tab-1', cursor: 0, docs: [],
    outbox: { nextMid: 3, entries: [{ mid: 1, op: 'delete', collection: 'bills', id: 'b1' }] },
    history: { version: 1, capacity: 10, total: 0, counts: {}, entries: [] },
  };
  SyncEngine.restoreParts(mod, good, OPTS).dispose();
  const bad = (patch) => ({ ...good, ...patch });
  const entry = (extra) => ({ outbox: { nextMid: 3, entries: [{ mid: 1, op: 'delete', collection: 'bills', id: 'b1', ...extra }] } });
  const cases = [
    ['outbox.entries[0].appliedSeq', bad(entry({ appliedSeq: '7' }))],
    ['outbox.entries[0].queuedMs', bad(entry({ queuedMs: 1.5 }))],
    ['outbox.nextMid', bad({ outbox: { entries: [] } })],
    ['outbox.nextMid', bad({ outbox: { nextMid: '3', entries: [] } })],
    ['outbox.entries', bad({ outbox: { nextMid: 3, entries: {} } })],
    ['needSnapshot', bad({ needSnapshot: 'yes' })],
    ['subscription', bad({ subscription: 5 })],
    ['subscription.collections', bad({ subscription: { collections: [1] } })],
    ['docs[0].deleted', bad({ docs: [{ collection: 'bills', id: 'b1', version: 1, fields: {}, deleted: 'no' }] })],
    ['entries[0].atMs', bad({ history: { version: 1, capacity: 10, total: 1, counts: { a: 1 }, entries: [{ type: 'a' }] } })],
  ];
  for (const [field, state] of cases) throwsCode(() => SyncEngine.restoreParts(mod, state, OPTS), 'invalid_snapshot', field);
});

test('malformed engine options are invalid_request naming the option', () => {
  const cases = [
    ['histroyLimit', { histroyLimit: 5 }],
    ['nowMs', { nowMs: '5' }],
    ['nowMs', { nowMs: 1.5 }],
    ['maxBatch', { maxBatch: 0 }],
    ['requestTimeoutMs', { requestTimeoutMs: -1 }],
    ['historyLimit', { historyLimit: 100001 }],
    ['collections[1]', { collections: ['bills', 7] }],
    ['clientId', { clientId: '' }],
  ];
  for (const [field, extra] of cases) throwsCode(() => newEngine(extra), 'invalid_request', field);
  // null counts as absent.
  newEngine({ where: null, nowMs: null }).dispose();
});

test('a malformed snapshot is invalid_message naming the member; unknown document members pass', () => {
  const e = newEngine();
  const doc = { collection: 'bills', id: 'b1', version: 1, fields: {} };
  throwsCode(() => e.applySnapshot({ docs: [], seq: -1 }), 'invalid_message', 'seq');
  throwsCode(() => e.applySnapshot({ docs: [], seq: 1.5 }), 'invalid_message', 'seq');
  throwsCode(() => e.applySnapshot({ collections: 'bills', docs: [], seq: 1 }), 'invalid_message', 'collections');
  throwsCode(() => e.applySnapshot({ collections: ['bills', 3], docs: [], seq: 1 }), 'invalid_message', 'collections[1]');
  throwsCode(() => e.applySnapshot({ docs: [{ ...doc, deleted: 'no' }], seq: 1 }), 'invalid_message', 'docs[0].deleted');
  // A newer server's extra member in a document is the protocol's forward compatibility.
  e.applySnapshot({ collections: ['bills'], docs: [{ ...doc, updated_by: 'x' }], seq: 1 });
  assert.ok(e.get('bills', 'b1'));
  e.dispose();
});

test('malformed foreign operations are invalid_request naming the member', () => {
  const e = newEngine();
  const m = { mid: 1, op: 'insert', collection: 'bills', id: 'x1', fields: { n: 1 } };
  throwsCode(() => e.foreign([{ op: 'bogus', client: 'tab-2', mutations: [m] }]), 'invalid_request', '[0].op');
  throwsCode(() => e.foreign([{ op: 'add', mutations: [m] }]), 'invalid_request', '[0].client');
  throwsCode(() => e.foreign([{ op: 'add', client: 'tab-2' }]), 'invalid_request', '[0].mutations');
  throwsCode(() => e.foreign([{ op: 'drop', client: 'tab-2' }]), 'invalid_request', '[0].mids');
  throwsCode(() => e.foreign([{ op: 'add', client: 'tab-2', mutations: [m] }, { op: 'drop', client: 'tab-2', mids: [1, 'x'] }]), 'invalid_request', '[1].mids[1]');
  throwsCode(() => e.foreign([5]), 'invalid_request', '[0]');
  e.dispose();
});

test('a malformed announced subscription is invalid_request; null is unknown', () => {
  const e = newEngine();
  throwsCode(() => e.followSubscription({ collections: 'bills' }), 'invalid_request', 'subscription.collections');
  throwsCode(() => e.followSubscription({ collections: ['bills'], where: 3 }), 'invalid_request', 'subscription.where');
  throwsCode(() => e.followSubscription(7), 'invalid_request', 'subscription');
  e.followSubscription(null);
  assert.equal(e.state().needSnapshot, true);
  e.dispose();
});

test('malformed query and aggregate specs are invalid_query naming the option', () => {
  const e = newEngine();
  throwsCode(() => e.addQuery({ collection: 'bills', orderby: 'n' }), 'invalid_query', 'orderby');
  throwsCode(() => e.addQuery({ collection: 'bills', limit: -1 }), 'invalid_query', 'limit');
  throwsCode(() => e.addQuery({ collection: 'bills', orderBy: 5 }), 'invalid_query', 'orderBy');
  throwsCode(() => e.addAggregate({ collection: 'bills', groupby: 'n' }), 'invalid_query', 'groupby');
  throwsCode(() => e.addAggregate({ collection: 'bills', sum: 3 }), 'invalid_query', 'sum');
  e.addQuery({ collection: 'bills', where: undefined, limit: null });
  e.dispose();
});

test('history data must be an object and the type non-empty', () => {
  const e = newEngine();
  throwsCode(() => e.record('note', [1, 2]), 'invalid_request', 'data');
  throwsCode(() => e.record('note', null), 'invalid_request', 'data');
  throwsCode(() => e.record('', {}), 'invalid_request', 'type');
  e.record('note', { ok: true });
  e.dispose();
});
