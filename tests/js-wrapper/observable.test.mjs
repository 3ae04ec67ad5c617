// LazySubject: the events snapshot is built when read, once per change. Pure, no browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LazySubject } from '../../js-wrapper/dist/observable.js';

test('computes on the first read after an invalidate, and hands out the same object until the next', () => {
  let builds = 0;
  let source = 1;
  const s = new LazySubject({ v: 0 }, () => {
    builds++;
    return { v: source };
  });
  let heard = 0;
  const off = s.subscribe(() => heard++);
  assert.deepEqual(s.getSnapshot(), { v: 0 });
  assert.equal(builds, 0, 'nothing built before a change');
  for (let i = 0; i < 5; i++) s.invalidate();
  assert.equal(heard, 5, 'every change is heard');
  assert.equal(builds, 0, 'changes nobody read cost nothing');
  const a = s.getSnapshot();
  assert.deepEqual(a, { v: 1 });
  assert.equal(s.getSnapshot(), a, 'stable between changes');
  assert.equal(builds, 1);
  source = 2;
  s.invalidate();
  assert.notEqual(s.getSnapshot(), a);
  assert.deepEqual(s.getSnapshot(), { v: 2 });
  off();
  s.invalidate();
  assert.equal(heard, 6, 'an unsubscribed listener hears no more');
});

test('keeps the last value when the source is gone (compute returns null)', () => {
  const s = new LazySubject({ v: 0 }, () => null);
  s.invalidate();
  assert.deepEqual(s.getSnapshot(), { v: 0 });
});
