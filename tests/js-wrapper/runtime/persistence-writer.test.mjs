// PersistenceWriter (runtime/persistence-writer.ts): writes what the engine marked dirty, in
// order; a failed batch is kept and merged; durableNextMid grows only once its outbox record is
// on disk; a follower writes only its outbox. Real MemoryPersistence, wrapped to gate and fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist, deferred, flush, sleep, until } from './helpers.mjs';

const { PersistenceWriter, mergeBatches } = await import(dist('runtime/persistence-writer.js'));
const { MemoryPersistence } = await import(dist('adapters/persistence.js'));
const { SyncError } = await import(dist('errors.js'));

const doc = (id, version) => ({ collection: 'bills', id, version, data: { v: version } });
const outbox = (nextMid, entries = []) => ({ nextMid, entries });
const empty = () => ({ putDocs: [], deleteDocs: [] });

/** An engine whose dirty batches the test queues; takePersistence hands out the oldest. */
function fakeEngine() {
  const queue = [];
  const asked = [];
  return {
    cursorValue: 0,
    queue,
    asked,
    push(b) {
      queue.push({ ...empty(), ...b });
    },
    takePersistence(withHistory) {
      asked.push(withHistory);
      return queue.shift() ?? empty();
    },
    cursor() {
      return this.cursorValue;
    },
  };
}

/** MemoryPersistence with a log of calls, optional gates (a write waits for the test) and
 * failures (the next N writes of a kind throw). */
function wrapped(mem = new MemoryPersistence()) {
  const log = [];
  const gates = { outbox: [], shared: [] };
  const fail = { outbox: 0, shared: 0, error: () => new SyncError('quota_exceeded', 'disk full') };
  const p = {
    kind: 'memory',
    mem,
    log,
    gates,
    fail,
    open: () => mem.open(),
    load: () => mem.load(),
    async writeOutbox(id, ob) {
      log.push(['outbox:start', ob.nextMid]);
      const g = gates.outbox.shift();
      if (g) await g.promise;
      if (fail.outbox > 0) {
        fail.outbox--;
        log.push(['outbox:failed', ob.nextMid]);
        throw fail.error();
      }
      await mem.writeOutbox(id, ob);
      log.push(['outbox:done', ob.nextMid]);
    },
    async writeShared(batch) {
      log.push(['shared:start', batch.putDocs.map((d) => d.id)]);
      const g = gates.shared.shift();
      if (g) await g.promise;
      if (fail.shared > 0) {
        fail.shared--;
        throw fail.error();
      }
      await mem.writeShared(batch);
      log.push(['shared:done']);
    },
    readOutbox: (id) => mem.readOutbox(id),
    deleteOutbox: (id) => mem.deleteOutbox(id),
    listOutboxes: () => mem.listOutboxes(),
    close: () => mem.close(),
  };
  return p;
}

function writer({ engine = fakeEngine(), persistence = wrapped(), shared = { value: true }, closed = { value: false } } = {}) {
  const errors = [];
  let recovered = 0;
  const w = new PersistenceWriter({
    engine: () => engine,
    persistence: () => persistence,
    clientId: () => 'tab-1',
    writesShared: () => shared.value,
    onError: (e) => errors.push(e),
    onRecovered: () => recovered++,
    isClosed: () => closed.value,
  });
  return { w, engine, persistence, shared, closed, errors, recovered: () => recovered };
}

const storedDocs = async (p) => Object.fromEntries((await p.mem.load()).docs.map((d) => [d.id, d.version]));

test('durableNextMid rises only once the outbox record holding it is written', async () => {
  const t = writer();
  const gate = deferred();
  t.persistence.gates.outbox.push(gate);
  t.engine.push({ outbox: outbox(5, [{ mid: 4 }]) });
  assert.equal(t.w.durableNextMid, 1);
  const done = t.w.flush();
  await flush();
  assert.deepEqual(t.persistence.log, [['outbox:start', 5]]);
  assert.equal(t.w.durableNextMid, 1, 'not while the write is in progress');
  gate.resolve();
  await done;
  assert.equal(t.w.durableNextMid, 5);
  assert.equal((await t.persistence.mem.readOutbox('tab-1')).outbox.nextMid, 5);

  // It never goes back: an older record (lower nextMid) written later keeps 5.
  t.engine.push({ outbox: outbox(3) });
  await t.w.flush();
  assert.equal(t.w.durableNextMid, 5);
  t.w.dispose();
});

test('writeOutboxNow makes a slot durable before any send; a failed one leaves durableNextMid', async () => {
  const t = writer();
  t.persistence.fail.outbox = 1;
  await assert.rejects(t.w.writeOutboxNow(outbox(9)), /disk full/);
  assert.equal(t.w.durableNextMid, 1);
  await t.w.writeOutboxNow(outbox(9));
  assert.equal(t.w.durableNextMid, 9);
  t.w.dispose();
});

test('a failed write keeps the batch, reports it, merges it into the next write and recovers once', async () => {
  const t = writer();
  t.persistence.fail.outbox = 1;
  t.engine.push({ putDocs: [doc('a', 1), doc('b', 1)], outbox: outbox(3), meta: { cursor: 7, clientId: 'tab-1' } });
  await t.w.flush();
  assert.equal(t.errors.length, 1);
  assert.equal(t.errors[0].code, 'quota_exceeded', 'the SyncError code is kept');
  assert.deepEqual(t.w.error, t.errors[0]);
  assert.equal(t.w.blocksSending, true);
  assert.equal(t.w.durableNextMid, 1, 'the failed outbox is not durable');
  assert.equal(t.w.storedCursor, 0);
  assert.deepEqual(await storedDocs(t.persistence), {}, 'nothing of the batch was written');
  assert.equal(t.recovered(), 0);

  // The next batch changes a again and deletes b: newest per document wins.
  t.engine.push({ putDocs: [doc('a', 2), doc('c', 1)], deleteDocs: [{ collection: 'bills', id: 'b' }], outbox: outbox(4) });
  await t.w.flush();
  assert.deepEqual(await storedDocs(t.persistence), { a: 2, c: 1 });
  assert.equal((await t.persistence.mem.load()).cursor, 7, 'the meta of the failed batch was kept');
  assert.equal(t.w.durableNextMid, 4);
  assert.equal(t.w.storedCursor, 7);
  assert.equal(t.w.error, null);
  assert.equal(t.w.blocksSending, false);
  assert.equal(t.recovered(), 1);

  // Later successes do not call onRecovered again.
  t.engine.push({ putDocs: [doc('d', 1)] });
  await t.w.flush();
  assert.equal(t.recovered(), 1);
  assert.equal(t.errors.length, 1);
  t.w.dispose();
});

test('a write that is not a SyncError is reported as storage; the retry timer writes the kept batch by itself', async () => {
  const t = writer();
  t.persistence.fail.shared = 1;
  t.persistence.fail.error = () => new Error('boom');
  t.engine.push({ putDocs: [doc('a', 1)], outbox: outbox(2) });
  await t.w.flush();
  assert.equal(t.errors[0].code, 'storage');
  assert.match(t.errors[0].message, /boom/);
  // The outbox part went through before the documents failed, but the batch is kept whole.
  assert.equal(t.w.blocksSending, true);
  await until(() => t.recovered() === 1, 3500, 'the retry after 2 s');
  assert.deepEqual(await storedDocs(t.persistence), { a: 1 });
  assert.equal(t.w.durableNextMid, 2);
  assert.equal(t.w.blocksSending, false);
  t.w.dispose();
});

test('writes run one after another: a newer outbox is never overwritten by an older one', async () => {
  const t = writer();
  const gate = deferred();
  t.persistence.gates.outbox.push(gate);
  t.engine.push({ outbox: outbox(2) });
  t.engine.push({ outbox: outbox(3) });
  const first = t.w.flush();
  const second = t.w.flush();
  await flush();
  assert.deepEqual(t.persistence.log, [['outbox:start', 2]], 'the second waits for the first');
  gate.resolve();
  await second;
  await first;
  assert.deepEqual(t.persistence.log, [['outbox:start', 2], ['outbox:done', 2], ['outbox:start', 3], ['outbox:done', 3]]);
  assert.equal((await t.persistence.mem.readOutbox('tab-1')).outbox.nextMid, 3);
  t.w.dispose();
});

test('schedule() coalesces a burst into one write after the flush delay', async () => {
  const t = writer();
  t.engine.push({ putDocs: [doc('a', 1)], outbox: outbox(2) });
  t.w.schedule();
  t.w.schedule();
  t.w.schedule();
  assert.equal(t.engine.asked.length, 0, 'not at once');
  await sleep(60);
  assert.equal(t.engine.asked.length, 1, 'one write for the burst');
  assert.deepEqual(await storedDocs(t.persistence), { a: 1 });
  t.w.dispose();
});

test('history is asked for at most once a second unless the flush asks for it', async () => {
  const t = writer();
  t.engine.push({ history: { entries: [], limit: 5 } });
  await t.w.flush();
  t.engine.push({ putDocs: [doc('a', 1)] });
  await t.w.flush();
  await t.w.flush(true);
  assert.deepEqual(t.engine.asked, [true, false, true]);
  t.w.dispose();
});

test('a follower writes only its outbox and keeps the shared parts until it takes the stream', async () => {
  const t = writer({ shared: { value: false } });
  t.engine.cursorValue = 10;
  t.engine.push({ putDocs: [doc('a', 1)], outbox: outbox(2), meta: { cursor: 10, clientId: 'tab-1' } });
  await t.w.flush();
  assert.equal(t.w.durableNextMid, 2, 'the outbox is written');
  assert.deepEqual(await storedDocs(t.persistence), {}, 'documents are the leader\'s to write');
  assert.equal((await t.persistence.mem.load()).cursor, 0);
  assert.ok(!t.persistence.log.some(([k]) => k === 'shared:start'));
  assert.equal(t.w.keptCount, 2, 'document a and the meta are kept');
  assert.equal(t.w.storedCursor, 0);

  // A newer version of a arrives; the follower keeps the newest.
  t.engine.cursorValue = 12;
  t.engine.push({ putDocs: [doc('a', 2)], meta: { cursor: 12, clientId: 'tab-1' } });
  await t.w.flush();
  assert.equal(t.w.keptCount, 2);

  t.shared.value = true;
  t.w.tookStream();
  await until(() => t.persistence.log.some(([k]) => k === 'shared:done'), 1000, 'the flush after tookStream');
  assert.deepEqual(await storedDocs(t.persistence), { a: 2 });
  assert.equal((await t.persistence.mem.load()).cursor, 12);
  assert.equal(t.w.keptCount, 0);
  assert.equal(t.w.storedCursor, 12);
  t.w.dispose();
});

test('leaderStoredThrough drops what the leader stored; a beat from before a wipe is ignored', async () => {
  const t = writer({ shared: { value: false } });
  t.engine.cursorValue = 5;
  t.engine.push({ putDocs: [doc('a', 1)] });
  await t.w.flush();
  t.engine.cursorValue = 8;
  t.engine.push({ putDocs: [doc('b', 1)] });
  await t.w.flush();
  assert.equal(t.w.keptCount, 2);

  t.w.wiped(1000);
  t.w.leaderStoredThrough(8, 1500, 2000);
  assert.equal(t.w.keptCount, 2, 'a beat within staleMs of the wipe speaks of the old database');

  t.w.leaderStoredThrough(5, 4000, 2000);
  assert.equal(t.w.keptCount, 1, 'a (taken at 5) goes, b (at 8) stays');

  t.shared.value = true;
  t.w.tookStream();
  await until(() => t.w.keptCount === 0, 1000, 'the flush after tookStream');
  await t.w.flush();
  assert.deepEqual(await storedDocs(t.persistence), { b: 1 });
  t.w.dispose();
});

test('tookStream resets storedCursor and schedules nothing when nothing is kept', async () => {
  const t = writer();
  t.engine.push({ meta: { cursor: 4, clientId: 'tab-1' } });
  await t.w.flush();
  assert.equal(t.w.storedCursor, 4);
  t.w.tookStream();
  assert.equal(t.w.storedCursor, 0);
  await sleep(40);
  assert.equal(t.engine.asked.length, 1, 'no flush was scheduled');
  t.w.dispose();
});

test('writeTogether is used when present; when it fails the parts are written apart', async () => {
  const p = wrapped();
  let together = 0;
  let failTogether = false;
  p.writeTogether = async (id, ob, batch) => {
    together++;
    if (failTogether) throw new Error('quota on documents');
    await p.mem.writeOutbox(id, ob);
    await p.mem.writeShared(batch);
  };
  const t = writer({ persistence: p });
  t.engine.push({ putDocs: [doc('a', 1)], outbox: outbox(2) });
  await t.w.flush();
  assert.equal(together, 1);
  assert.equal(p.log.length, 0, 'not written apart');
  assert.equal(t.w.durableNextMid, 2);

  failTogether = true;
  t.engine.push({ putDocs: [doc('b', 1)], outbox: outbox(3) });
  await t.w.flush();
  assert.equal(together, 2);
  assert.deepEqual(p.log.map(([k]) => k), ['outbox:start', 'outbox:done', 'shared:start', 'shared:done']);
  assert.equal(t.w.durableNextMid, 3);
  assert.deepEqual(await storedDocs(p), { a: 1, b: 1 });
  assert.equal(t.errors.length, 0);
  t.w.dispose();
});

test('slotVanished: false while the record is there, true once it was deleted, false while a batch is unsaved', async () => {
  const t = writer();
  t.engine.push({ outbox: outbox(2) });
  await t.w.flush();
  assert.equal(await t.w.slotVanished(), false);
  await t.persistence.mem.deleteOutbox('tab-1');
  assert.equal(await t.w.slotVanished(), true);

  t.persistence.fail.outbox = 1;
  t.engine.push({ outbox: outbox(3) });
  await t.w.flush();
  assert.equal(t.w.blocksSending, true);
  assert.equal(await t.w.slotVanished(), false, 'an unsaved batch: the next write tells');
  t.closed.value = true;
  t.w.dispose();
});

test('slotVanished waits for the write in progress', async () => {
  const t = writer();
  const gate = deferred();
  t.persistence.gates.outbox.push(gate);
  t.engine.push({ outbox: outbox(2) });
  void t.w.flush();
  let answer = null;
  const asked = t.w.slotVanished().then((v) => (answer = v));
  await flush();
  assert.equal(answer, null);
  gate.resolve();
  await asked;
  assert.equal(answer, false, 'the record written meanwhile is found');
  t.w.dispose();
});

test('nothing is written once the engine is gone', async () => {
  const p = wrapped();
  const w = new PersistenceWriter({
    engine: () => null, persistence: () => p, clientId: () => 'tab-1', writesShared: () => true,
    onError: () => assert.fail('no error'), onRecovered: () => {}, isClosed: () => true,
  });
  await w.flush();
  assert.equal(p.log.length, 0);
});

test('mergeBatches: newer wins per document (a delete replaces a put and back), outbox/meta/history the newest present', () => {
  const older = {
    putDocs: [doc('a', 1), doc('b', 1)], deleteDocs: [{ collection: 'bills', id: 'c' }],
    outbox: outbox(2), meta: { cursor: 1, clientId: 'x' }, history: { entries: [], limit: 1 },
  };
  const newer = { putDocs: [doc('c', 3)], deleteDocs: [{ collection: 'bills', id: 'a' }], outbox: outbox(5) };
  const m = mergeBatches(older, newer);
  assert.deepEqual(m.putDocs, [doc('b', 1), doc('c', 3)]);
  assert.deepEqual(m.deleteDocs, [{ collection: 'bills', id: 'a' }]);
  assert.equal(m.outbox.nextMid, 5);
  assert.equal(m.meta.cursor, 1, 'kept from the older when the newer has none');
  assert.deepEqual(m.history, { entries: [], limit: 1 });
  // Same id in another collection is another document.
  const m2 = mergeBatches({ ...empty(), putDocs: [doc('a', 1)] }, { ...empty(), putDocs: [{ ...doc('a', 9), collection: 'notes' }] });
  assert.equal(m2.putDocs.length, 2);
});

test('documents of a failed write made while leading are not dropped when the tab follows by the next write', async () => {
  const t = writer();
  t.persistence.fail.outbox = 1;
  t.engine.cursorValue = 6;
  t.engine.push({ putDocs: [doc('a', 1)], outbox: outbox(2), meta: { cursor: 6, clientId: 'tab-1' } });
  await t.w.flush();
  assert.equal(t.w.blocksSending, true);

  // Leadership lost: the next write is a follower's (outbox only).
  t.shared.value = false;
  t.engine.push({ outbox: outbox(3) });
  await t.w.flush();
  assert.equal(t.w.durableNextMid, 3);
  assert.deepEqual(await storedDocs(t.persistence), {}, 'a follower does not write documents');
  assert.ok(t.w.keptCount >= 1, 'the documents of the failed batch are kept for when it leads');

  t.shared.value = true;
  t.w.tookStream();
  await until(() => t.w.keptCount === 0, 1000, 'the flush after tookStream');
  await t.w.flush();
  assert.deepEqual(await storedDocs(t.persistence), { a: 1 });
  t.w.dispose();
});

test('an image is decided before the batch is taken: no records, the meta, and after a failed one everything is marked again', async () => {
  const engine = fakeEngine();
  const calls = [];
  let dirty = 1;
  engine.takePersistence = function (withHistory, image = false) {
    calls.push(image ? 'take:image' : 'take');
    if (image) {
      this.queue.shift();
      return { ...empty(), meta: { cursor: 42, clientId: 'tab-1' } };
    }
    return this.queue.shift() ?? empty();
  };
  engine.dirtyDocs = () => dirty;
  engine.storedDocs = () => 10;
  engine.baseImage = () => {
    calls.push('image');
    return new TextEncoder().encode('[{"collection":"bills","id":"a","version":1,"fields":{}}]');
  };
  engine.markAllDirty = () => calls.push('markAllDirty');
  const persistence = wrapped();
  const weighed = [];
  persistence.wantsImage = (d, stored) => {
    weighed.push([d, stored]);
    return d >= 2;
  };
  const images = [];
  const plainWrite = persistence.writeShared;
  persistence.writeShared = async (batch) => {
    if (batch.image) images.push({ bytes: batch.image.length, meta: batch.meta, docs: batch.putDocs.length });
    return plainWrite(batch);
  };
  const t = writer({ engine, persistence });

  t.engine.push({ putDocs: [doc('a', 1)] });
  await t.w.flush();
  assert.deepEqual(images, [], 'below what the backend wants: document records');
  assert.deepEqual(calls, ['take']);
  assert.equal((await storedDocs(persistence)).a, 1);

  dirty = 2;
  t.engine.push({ putDocs: [doc('a', 2), doc('b', 1)] });
  await t.w.flush();
  assert.deepEqual(weighed.at(-1), [2, 10], 'the backend weighs the dirty documents against the stored ones');
  assert.deepEqual(calls.slice(1), ['take:image', 'image'], 'the image is read right after its batch');
  assert.deepEqual(images, [{ bytes: images[0].bytes, meta: { cursor: 42, clientId: 'tab-1' }, docs: 0 }], 'no records, the meta');

  // The image write fails: the engine marks everything again, and the parts are kept.
  persistence.fail.shared = 1;
  t.engine.push({});
  await t.w.flush();
  assert.equal(t.errors.length, 1);
  assert.equal(t.w.blocksSending, true);
  assert.equal(calls.at(-1), 'markAllDirty');
  dirty = 0;
  await t.w.flush();
  assert.equal(t.w.blocksSending, false, 'the retry wrote the kept parts');
  t.w.dispose();
});

test('mergeBatches keeps the newer batch\'s image', () => {
  const image = new Uint8Array([91, 93]);
  const merged = mergeBatches({ ...empty(), putDocs: [doc('a', 1)] }, { ...empty(), image, meta: { cursor: 3, clientId: 'x' } });
  assert.equal(merged.image, image);
  assert.equal(merged.meta.cursor, 3);
  assert.equal(mergeBatches({ ...empty(), image }, empty()).image, undefined, 'an older image is never carried: it failed');
});

test('an image the engine cannot make: nothing but the outbox goes, everything is marked again and written as records', async () => {
  const engine = fakeEngine();
  let marked = 0;
  let asked = 0;
  engine.takePersistence = function (withHistory, image = false) {
    if (image) return { ...empty(), outbox: outbox(4), meta: { cursor: 9, clientId: 'tab-1' } };
    return this.queue.shift() ?? empty();
  };
  engine.dirtyDocs = () => 1000;
  engine.storedDocs = () => 1000;
  engine.baseImage = () => {
    asked++;
    throw new Error('internal');
  };
  engine.markAllDirty = () => marked++;
  const persistence = wrapped();
  persistence.wantsImage = () => true;
  const t = writer({ engine, persistence });
  await t.w.flush();
  assert.equal(marked, 1);
  assert.equal(t.w.durableNextMid, 4, 'the outbox was written');
  assert.equal((await persistence.mem.load()).cursor, 0, 'no cursor without its documents');
  // Next: records, not another image.
  t.engine.push({ putDocs: [doc('a', 1)], meta: { cursor: 9, clientId: 'tab-1' } });
  await t.w.flush();
  assert.equal(asked, 1, 'no second attempt at an image');
  assert.equal((await storedDocs(persistence)).a, 1);
  assert.equal((await persistence.mem.load()).cursor, 9);
  t.w.dispose();
});
