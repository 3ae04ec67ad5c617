// AuthGate (runtime/auth-gate.ts): consecutive token refusals; final at the limit; one accepted
// request ends it, and only the end of a final refusal calls onAccepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist } from './helpers.mjs';

const { AuthGate, REFUSALS_BEFORE_FINAL } = await import(dist('runtime/auth-gate.js'));

test('a refusal is final at the third consecutive one (default limit)', () => {
  assert.equal(REFUSALS_BEFORE_FINAL, 3);
  const g = new AuthGate();
  assert.equal(g.isFinal, false);
  assert.equal(g.refused(), false);
  assert.equal(g.refused(), false);
  assert.equal(g.isFinal, false);
  assert.equal(g.refused(), true);
  assert.equal(g.isFinal, true);
  assert.equal(g.refused(), true, 'stays final while refusals go on');
});

test('an accepted request resets the count: refusals must be consecutive', () => {
  const g = new AuthGate();
  g.refused();
  g.refused();
  g.accepted();
  assert.equal(g.refused(), false);
  assert.equal(g.refused(), false);
  assert.equal(g.isFinal, false);
});

test('onAccepted is called only when an acceptance ends a final refusal', () => {
  let calls = 0;
  const g = new AuthGate(() => calls++, 2);
  g.accepted();
  assert.equal(calls, 0, 'nothing to end');
  g.refused();
  g.accepted();
  assert.equal(calls, 0, 'one refusal was not final');
  g.refused();
  assert.equal(g.refused(), true, 'final at the custom limit of 2');
  g.accepted();
  assert.equal(calls, 1);
  assert.equal(g.isFinal, false);
  g.accepted();
  assert.equal(calls, 1, 'once per final refusal');
});
