// RecentFrames: the stretch of the log a leader tab catches followers up from. Pure, no browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecentFrames } from '../../js-wrapper/dist/recent-frames.js';

const change = (seq) => `{"collection":"bills","id":"b${seq}","op":"insert","seq":${seq},"type":"change"}`;

test('frames after a cursor inside the stretch; none after its end; null before its start', () => {
  const r = new RecentFrames();
  r.record(10, 12, [change(11), change(12)]);
  r.record(12, 13, [change(13)]);
  assert.deepEqual(r.since(12), [change(13)]);
  // A batch straddling the cursor comes whole: the engine skips what it saw.
  assert.deepEqual(r.since(11), [change(11), change(12), change(13)]);
  assert.deepEqual(r.since(10), [change(11), change(12), change(13)]);
  assert.deepEqual(r.since(13), []);
  assert.deepEqual(r.since(20), [], 'a replica ahead of this tab waits for the live frames');
  assert.equal(r.since(9), null, 'older than the stretch: the follower needs a snapshot');
});

test('a batch that does not start where the stretch ends (a snapshot in between) starts a new one', () => {
  const r = new RecentFrames();
  r.record(10, 11, [change(11)]);
  r.record(50, 51, [change(51)]);
  assert.equal(r.since(11), null, 'the gap 11..50 is not kept: never hand it out as if it were');
  assert.deepEqual(r.since(50), [change(51)]);
  r.restart(90);
  assert.equal(r.since(50), null);
  assert.deepEqual(r.since(90), []);
});

test('batches that do not move the cursor are not kept; a reset makes the stretch unusable', () => {
  const r = new RecentFrames();
  r.record(5, 5, ['{"seq":5,"type":"hello"}']);
  assert.deepEqual(r.since(5), []);
  r.record(5, 6, [change(6)]);
  r.record(6, 6, ['{"reason":"cursor_expired","seq":900,"type":"reset"}']);
  assert.equal(r.since(5), null);
  assert.equal(r.since(6), null, 'after a reset only a snapshot catches anyone up');
  r.record(900, 901, [change(901)]);
  assert.deepEqual(r.since(900), [change(901)]);
});

test('the oldest batches go when the frame or character bound is passed, and the start moves up', () => {
  const r = new RecentFrames(3, 1_000_000);
  for (let s = 1; s <= 5; s++) r.record(s - 1, s, [change(s)]);
  assert.equal(r.since(1), null);
  assert.deepEqual(r.since(2), [change(3), change(4), change(5)]);
  const bySize = new RecentFrames(1000, change(1).length * 2);
  for (let s = 1; s <= 5; s++) bySize.record(s - 1, s, [change(s)]);
  assert.equal(bySize.since(2), null);
  assert.deepEqual(bySize.since(3), [change(4), change(5)]);
});
