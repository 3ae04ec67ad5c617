// The core's retry delays through their typed face against the built wasm: full jitter within a
// ceiling that doubles per failure up to the cap, reset back to base, the same delays for the
// same seed, bad numbers refused, a disposed object closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSyncline, RetryBackoff, SyncError } from '../../js-wrapper/dist/internal.js';

const mod = await loadSyncline();

test('each delay lies within min(cap, base * 2^failures) and the mean doubles', () => {
  const sums = new Array(7).fill(0);
  const SEEDS = 400;
  for (let seed = 0; seed < SEEDS; seed++) {
    const b = new RetryBackoff(mod, { baseMs: 100, capMs: 5000, seed });
    for (let n = 0; n < 7; n++) {
      assert.equal(b.failures, n);
      const d = b.nextDelayMs();
      const ceiling = Math.min(5000, 100 * 2 ** n);
      assert.ok(Number.isInteger(d) && d >= 0 && d <= ceiling, `seed ${seed}, failure ${n}: ${d}`);
      sums[n] += d;
    }
    b.dispose();
  }
  for (let n = 0; n < 7; n++) {
    const half = Math.min(5000, 100 * 2 ** n) / 2;
    assert.ok(Math.abs(sums[n] / SEEDS - half) < half * 0.15, `mean of failure ${n}: ${sums[n] / SEEDS}, expected about ${half}`);
  }
});

test('reset starts again at base; the same seed gives the same delays', () => {
  const a = new RetryBackoff(mod, { baseMs: 500, capMs: 30000, seed: 42 });
  const b = new RetryBackoff(mod, { baseMs: 500, capMs: 30000, seed: 42 });
  const da = [], db = [];
  for (let i = 0; i < 10; i++) {
    da.push(a.nextDelayMs());
    db.push(b.nextDelayMs());
  }
  assert.deepEqual(da, db);
  a.reset();
  assert.equal(a.failures, 0);
  assert.ok(a.nextDelayMs() <= 500);
  assert.equal(a.failures, 1);
  a.dispose();
  b.dispose();
});

test('defaults, bad numbers and dispose', () => {
  const d = new RetryBackoff(mod);
  assert.ok(d.nextDelayMs() <= 500, 'default base 500 ms');
  d.dispose();
  d.dispose();
  assert.throws(() => d.nextDelayMs(), (e) => e instanceof SyncError && e.code === 'closed');
  for (const [field, o] of [['baseMs', { baseMs: -5 }], ['capMs', { capMs: 2.5 }], ['seed', { seed: -1 }], ['baseMs', { baseMs: '500' }]]) {
    assert.throws(() => new RetryBackoff(mod, o), (e) => e instanceof SyncError && e.code === 'invalid_options' && e.field === field, field);
  }
});
