// SnapshotLoader (runtime/snapshot-loader.ts): one snapshot request at a time, shared by its
// callers; a snapshot fetched as a follower never rolls back what this tab's own stream
// delivered meanwhile. Fake engine and fetch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist, deferred, flush } from './helpers.mjs';

const { SnapshotLoader } = await import(dist('runtime/snapshot-loader.js'));

const doc = (id) => ({ collection: 'bills', id, version: 1, data: {} });

function loader({ owns = false } = {}) {
  const t = { fetches: [], applied: [], outputs: [], notes: [], cursor: 10, owns, closed: false };
  t.engine = {
    cursor: () => t.cursor,
    applySnapshot: (s) => {
      t.applied.push(s);
      t.cursor = s.seq;
      return { tag: 'snapshot', cursor: s.seq };
    },
  };
  t.l = new SnapshotLoader({
    engine: () => t.engine,
    fetch: () => {
      const d = deferred();
      t.fetches.push(d);
      return d.promise;
    },
    collections: ['bills', 'notes'],
    ownsConnection: () => t.owns,
    isClosed: () => t.closed,
    applied: (out) => t.outputs.push(out),
    note: (type, data) => t.notes.push({ type, data }),
  });
  return t;
}

test('concurrent loads share one fetch; a load after it finished fetches again', async () => {
  const t = loader();
  const a = t.l.load();
  const b = t.l.load();
  assert.equal(a, b);
  await flush();
  assert.equal(t.fetches.length, 1);
  t.fetches[0].resolve({ docs: [doc('a')], seq: 20 });
  await Promise.all([a, b]);
  assert.deepEqual(t.applied, [{ collections: ['bills', 'notes'], docs: [doc('a')], seq: 20 }]);
  assert.deepEqual(t.outputs, [{ tag: 'snapshot', cursor: 20 }]);

  const c = t.l.load();
  await flush();
  assert.equal(t.fetches.length, 2);
  t.fetches[1].resolve({ docs: [], seq: 21 });
  await c;
  assert.equal(t.applied.length, 2);
});

test('a failed fetch rejects every caller, and the next load tries again', async () => {
  const t = loader();
  const a = t.l.load();
  const b = t.l.load();
  await flush();
  t.fetches[0].reject(new Error('down'));
  await assert.rejects(a, /down/);
  await assert.rejects(b, /down/);
  void t.l.load();
  await flush();
  assert.equal(t.fetches.length, 2);
  t.fetches[1].resolve({ docs: [], seq: 1 });
});

test('as owner, a cursor that moved during the fetch skips the snapshot (noted)', async () => {
  const t = loader({ owns: true });
  const a = t.l.load();
  await flush();
  t.cursor = 14; // this tab's stream delivered meanwhile
  t.fetches[0].resolve({ docs: [doc('old')], seq: 12 });
  await a;
  assert.deepEqual(t.applied, []);
  assert.deepEqual(t.outputs, []);
  assert.deepEqual(t.notes, [{ type: 'snapshot_skipped', data: { seq: 12, cursor: 14 } }]);
});

test('as owner with the cursor unchanged, and as a follower whatever the cursor did, it applies', async () => {
  const owner = loader({ owns: true });
  const a = owner.l.load();
  await flush();
  owner.fetches[0].resolve({ docs: [], seq: 30 });
  await a;
  assert.equal(owner.applied.length, 1);

  const follower = loader({ owns: false });
  const b = follower.l.load();
  await flush();
  follower.cursor = 14;
  follower.fetches[0].resolve({ docs: [], seq: 30 });
  await b;
  assert.equal(follower.applied.length, 1);
  assert.deepEqual(follower.notes, []);
});

test('nothing is applied once closed', async () => {
  const t = loader();
  const a = t.l.load();
  await flush();
  t.closed = true;
  t.fetches[0].resolve({ docs: [], seq: 30 });
  await a;
  assert.deepEqual(t.applied, []);
});
