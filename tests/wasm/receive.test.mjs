// The receive path as the runtime drives it: UTF-8 bytes written into the wasm heap
// (SyncEngine.receiveFrames -> inputBuffer/receiveInput), decoded without a DOM of the batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSyncline, SyncEngine, SyncError } from '../../js-wrapper/dist/internal.js';

const mod = await loadSyncline();

const change = (seq, id, fields, op = 'insert') =>
  JSON.stringify({ type: 'change', seq, collection: 'bills', id, op, version: seq, fields, origin: null });

function newEngine() {
  return SyncEngine.create(mod, { clientId: 'tab-1', collections: ['bills'] });
}

test('non-ASCII text and escapes arrive intact (the encodeInto retry with more room)', () => {
  const e = newEngine();
  const title = 'café € 😀 \u00e9\u0000 "quoted" \\ back';
  // All non-ASCII: needs up to 3 bytes per UTF-16 unit, more than the first attempt's room.
  const wide = '€'.repeat(5000);
  const out = e.receiveFrames([change(1, 'b1', { title }), change(2, 'b2', { wide }), '{"type":"change","seq":3,"collection":"bills","id":"b3","op":"insert","fields":{"esc":"\\u00e9\\ud83d\\ude00"}}']);
  assert.equal(out.errors.length, 0);
  assert.equal(e.get('bills', 'b1').fields.title, title);
  assert.equal(e.get('bills', 'b2').fields.wide, wide);
  assert.equal(e.get('bills', 'b3').fields.esc, 'é😀');
  e.dispose();
});

test('a batch larger than the current heap grows memory and still decodes', () => {
  const e = newEngine();
  const before = mod.HEAPU8.buffer.byteLength;
  const big = 'x'.repeat(1 << 20);
  const frames = [];
  for (let i = 0; i < 40; i++) frames.push(change(i + 1, `d${i}`, { big, i }));
  const out = e.receiveFrames(frames);
  assert.equal(out.errors.length, 0);
  assert.ok(mod.HEAPU8.buffer.byteLength > before, 'the heap grew');
  assert.equal(e.get('bills', 'd39').fields.i, 39);
  assert.equal(e.get('bills', 'd0').fields.big.length, 1 << 20);
  // A small batch right after reuses the (now larger) buffer.
  assert.equal(e.receiveFrames([change(100, 'd0', { i: -1 }, 'update')]).errors.length, 0);
  assert.equal(e.get('bills', 'd0').fields.i, -1);
  e.dispose();
});

test('errors keep their codes: per frame in errors[], a broken batch as a whole', () => {
  const e = newEngine();
  const out = e.receiveFrames([
    '{"type":"change","seq":-1,"collection":"bills","id":"b","op":"insert","fields":{}}',
    '[1]',
    '{"type":"hello","seq":4,"type":"nope"}',
    change(5, 'ok', { n: 1 }),
  ]);
  assert.deepEqual(out.errors.map((x) => [x.index, x.code, x.field]), [
    [0, 'invalid_message', 'seq'],
    [1, 'invalid_message', undefined],
    [2, 'invalid_message', 'type'],
  ]);
  assert.equal(e.get('bills', 'ok').fields.n, 1);
  for (const bad of [['{"type":"hello","seq":1'], ['{"a":"\\uD800"}'], ['{"a":1e400}'], ['{"a":"\u0001"}']]) {
    assert.throws(() => e.receiveFrames(bad), (err) => err instanceof SyncError && err.code === 'invalid_json', bad[0]);
  }
  assert.equal(e.state().cursor, 5, 'a rejected batch applies nothing');
  e.dispose();
});

test('setChangeDetail(false) reports changed keys only; true brings before/after back', () => {
  const e = newEngine();
  e.setChangeDetail(false);
  let out = e.receiveFrames([change(1, 'b1', { total: 1 })]);
  assert.deepEqual(out.changes, [{ collection: 'bills', id: 'b1' }]);
  e.setChangeDetail(true);
  out = e.receiveFrames([change(2, 'b1', { total: 2 }, 'update')]);
  assert.deepEqual(out.changes, [{ collection: 'bills', id: 'b1', before: { total: 1 }, after: { total: 2 }, pending: false }]);
  e.dispose();
});

test('_heapStats reports the allocator: live bytes grow with the replica and fall when it goes', () => {
  const before = JSON.parse(mod._heapStats());
  assert.ok(before.top > 0 && before.inUse > 0 && before.inUse <= before.top, JSON.stringify(before));
  const e = newEngine();
  const frames = [];
  for (let i = 0; i < 2000; i++) frames.push(change(i + 1, `h${i}`, { note: 'y'.repeat(200), i }));
  assert.equal(e.receiveFrames(frames).errors.length, 0);
  e.takePersistence();
  const full = JSON.parse(mod._heapStats());
  assert.ok(full.inUse - before.inUse > 2000 * 200, `2,000 documents of 200+ bytes: ${full.inUse - before.inUse} bytes`);
  assert.ok(full.top >= before.top && full.top <= mod.HEAPU8.buffer.byteLength);
  e.dispose();
  const after = JSON.parse(mod._heapStats());
  assert.ok(after.inUse < full.inUse - 2000 * 200, 'dispose frees the replica');
});

test('_decodeServerInput runs the receive decoder alone on bytes in the wasm heap', () => {
  const decode = (text) => {
    const bytes = new TextEncoder().encode(text);
    mod.HEAPU8.set(bytes, mod._decodeBuffer(bytes.length));
    return mod._decodeServerInput(bytes.length);
  };
  assert.equal(decode(`[${change(1, 'a', { t: 'é' })},${change(2, 'b', {})},{"type":"change","seq":-1}]`), 2, 'frames decoded without error');
  assert.equal(decode('{"type":"hello"}'), -1, 'not an array');
  assert.equal(decode('[1,'), -1, 'broken JSON');
  assert.equal(mod._decodeServerInput(1 << 30), -1, 'a length past the buffer is refused');
});
