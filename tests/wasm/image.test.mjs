// The replica as one image through the wasm boundary (SyncEngine.baseImage / restoreParts), and
// large inputs and replies: a snapshot bigger than the kept input buffer, replies bigger than
// the kept reply, each followed by more calls on the same engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSyncline, SyncEngine, SyncError } from '../../js-wrapper/dist/internal.js';

const mod = await loadSyncline();
const DOCS = 6000; // about 1.3 MiB of snapshot JSON: past the 1 MiB input kept between calls

const docs = Array.from({ length: DOCS }, (_, i) => ({
  collection: 'bills', id: `b${String(i).padStart(5, '0')}`, version: i + 1,
  fields: { total: i, status: i % 2 ? 'paid' : 'unpaid', title: `bill ${i} — café` },
}));
const history = { version: 1, capacity: 10, total: 0, counts: {}, entries: [] };

test('a large snapshot applies from the input buffer, and the engine goes on receiving and answering', () => {
  const e = SyncEngine.create(mod, { clientId: 'tab-1', collections: ['bills'] });
  e.setChangeDetail(false);
  const out = e.applySnapshot({ collections: ['bills'], docs, seq: DOCS });
  assert.equal(out.cursor, DOCS);
  assert.equal(out.changes.length, DOCS);
  const all = e.documents('bills'); // a reply of over 1 MiB, freed once decoded
  assert.equal(all.length, DOCS);
  assert.equal(all[7].fields.title, 'bill 7 — café', 'UTF-8 both ways');
  const next = e.receiveFrames([JSON.stringify({ type: 'change', seq: DOCS + 1, collection: 'bills', id: 'b00001', op: 'update', version: DOCS + 1, fields: { total: -1 }, origin: null })]);
  assert.equal(next.cursor, DOCS + 1);
  assert.equal(e.get('bills', 'b00001').fields.total, -1);
  assert.equal(e.documents('bills').length, DOCS, 'a second large reply');
  e.dispose();
});

test('baseImage + restoreParts: the replica comes back from one image, the documents stored since win', () => {
  const e = SyncEngine.create(mod, { clientId: 'tab-1', collections: ['bills'] });
  e.applySnapshot({ collections: ['bills'], docs, seq: DOCS });
  e.takePersistence(true);
  assert.equal(e.storedDocs(), DOCS);
  assert.equal(e.dirtyDocs(), 0);
  const image = e.baseImage();
  assert.ok(image instanceof Uint8Array && image.length > 64 * 1024, "past the reply kept between calls");
  const withImage = e.takePersistence(true, true);
  assert.deepEqual(withImage.putDocs, [], 'an image batch holds no document records');
  assert.equal(withImage.meta.cursor, DOCS, 'and always the meta');
  const state = {
    client: 'tab-1', cursor: DOCS + 1, outbox: { nextMid: 1, entries: [] }, history, subscription: e.subscription(),
    docs: [{ collection: 'bills', id: 'b00002', version: DOCS + 1, fields: { total: 2000 } }, { collection: 'bills', id: 'b00003', erased: true }],
  };
  const r = SyncEngine.restoreParts(mod, state, { clientId: 'tab-1', collections: ['bills'] }, image);
  assert.equal(r.documents('bills').length, DOCS - 1);
  assert.equal(r.get('bills', 'b00002').fields.total, 2000);
  assert.equal(r.get('bills', 'b00003'), null);
  assert.deepEqual(r.get('bills', 'b00004').fields, docs[4].fields);
  assert.equal(r.cursor(), DOCS + 1);
  r.dispose();
  e.dispose();
});

test('a damaged image is refused with invalid_snapshot naming the document', () => {
  const state = { client: 'tab-1', cursor: 1, outbox: { nextMid: 1, entries: [] }, history, docs: [] };
  const bad = new TextEncoder().encode('[{"collection":"bills","id":"b1","version":"x","fields":{}}]');
  assert.throws(() => SyncEngine.restoreParts(mod, state, { clientId: 'tab-1', collections: ['bills'] }, bad),
    (err) => err instanceof SyncError && err.code === 'invalid_snapshot' && err.field === 'image[0].version');
});
