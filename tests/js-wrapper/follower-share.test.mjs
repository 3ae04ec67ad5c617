// FollowerShare: what a follower tab keeps of the documents it does not write. Pure, no browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FollowerShare } from '../../js-wrapper/dist/follower-share.js';

const doc = (id, version) => ({ collection: 'bills', id, version, data: { v: version } });
const batch = (putDocs, deleteDocs = [], extra = {}) => ({ putDocs, deleteDocs, ...extra });

test('newest per document wins, a delete replaces a put, meta and history are the latest', () => {
  const s = new FollowerShare();
  s.add(batch([doc('a', 1), doc('b', 1)], [], { meta: { cursor: 2, clientId: 'c' } }), 2);
  s.add(batch([doc('a', 2)], [{ collection: 'bills', id: 'b' }], { meta: { cursor: 4, clientId: 'c' } }), 4);
  const out = s.take();
  assert.deepEqual(out.putDocs, [doc('a', 2)]);
  assert.deepEqual(out.deleteDocs, [{ collection: 'bills', id: 'b' }]);
  assert.equal(out.meta.cursor, 4);
  assert.equal(s.size, 0);
  assert.equal(s.take(), null, 'empty after take');
});

test('what the leader stored is dropped; what came after it is kept, including a document re-changed after', () => {
  const s = new FollowerShare();
  s.add(batch([doc('a', 1), doc('b', 1)], [], { meta: { cursor: 10, clientId: 'c' }, history: { entries: [], limit: 5 } }), 10);
  s.add(batch([doc('c', 1)], [], { meta: { cursor: 12, clientId: 'c' } }), 12);
  s.add(batch([doc('a', 2)]), 13); // a moves behind c
  s.storedThrough(11);
  assert.equal(s.size, 3, 'c, a and meta (12) stay; b and the history (10) go');
  s.storedThrough(12);
  const out = s.take();
  assert.deepEqual(out.putDocs, [doc('a', 2)], 'a changed at 13 is kept though its older version was at 10');
  assert.equal(out.meta, undefined);
  assert.equal(out.history, undefined);
});

test('holds a bounded amount when the leader keeps storing, however long it runs', () => {
  const s = new FollowerShare();
  for (let c = 1; c <= 20_000; c++) {
    s.add(batch([doc(`d${c}`, 1)], [], { meta: { cursor: c, clientId: 'c' } }), c);
    if (c % 50 === 0) s.storedThrough(c - 25);
  }
  assert.ok(s.size <= 51, `held ${s.size}`);
});
