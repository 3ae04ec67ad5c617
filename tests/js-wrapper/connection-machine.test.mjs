// The typed face of the core's connection machine against the built wasm: each input answers a
// decoded ConnectionStep (start opens, a failure backs off within the policy, offline closes,
// back online reopens, fatal stops retrying), a reply of another shape is `internal`, and a
// disposed machine is `closed`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionMachine, decodeConnectionStep, loadSyncline, RetryBackoff, SyncError } from '../../js-wrapper/dist/internal.js';

const mod = await loadSyncline();
const POLICY = { baseMs: 500, capMs: 30000, heartbeatTimeoutMs: 45000 };

test('start opens; the open connects; messages push the heartbeat deadline', () => {
  const m = new ConnectionMachine(mod, { ...POLICY, seed: 1 });
  let s = m.start(1000);
  assert.deepEqual(s, { action: 'open', state: 'connecting', attempt: 0, lastError: '', deadlineMs: 1000 + 15000, online: true, backoffMs: 0 });
  s = m.onOpen(1100);
  assert.equal(s.action, 'none');
  assert.equal(s.state, 'connected');
  assert.equal(s.deadlineMs, 1100 + 45000);
  s = m.onMessage(2000);
  assert.equal(s.deadlineMs, 2000 + 45000);
  s = m.tick(2000 + 45000);
  assert.equal(s.action, 'close', 'silent past the heartbeat timeout: declared dead');
  assert.equal(s.state, 'backing_off');
  assert.equal(s.lastError, 'heartbeat_timeout');
  m.dispose();
});

test('a failure backs off for a delay within the policy, growing with each attempt; tick reopens', () => {
  for (let seed = 0; seed < 40; seed++) {
    const m = new ConnectionMachine(mod, { ...POLICY, seed });
    let now = 0;
    m.start(now);
    for (let attempt = 0; attempt < 8; attempt++) {
      const s = m.onFailure('refused', false, now);
      assert.equal(s.action, 'close');
      assert.equal(s.state, 'backing_off');
      assert.equal(s.attempt, attempt + 1);
      assert.equal(s.lastError, 'refused');
      const ceiling = Math.min(POLICY.capMs, POLICY.baseMs * 2 ** attempt);
      assert.ok(s.backoffMs >= 0 && s.backoffMs <= ceiling, `seed ${seed} attempt ${attempt}: ${s.backoffMs} > ${ceiling}`);
      assert.equal(s.deadlineMs, now + s.backoffMs);
      if (s.backoffMs > 0) assert.equal(m.tick(s.deadlineMs - 1).action, 'none');
      now = s.deadlineMs;
      assert.equal(m.tick(now).action, 'open');
    }
    m.dispose();
  }
});

test('its delays are the RetryBackoff delays of the same policy and seed (one computation)', () => {
  const m = new ConnectionMachine(mod, { ...POLICY, seed: 9 });
  const b = new RetryBackoff(mod, { baseMs: POLICY.baseMs, capMs: POLICY.capMs, seed: 9 });
  m.start(0);
  for (let i = 0; i < 10; i++) {
    assert.equal(m.onFailure('down', false, 0).backoffMs, b.nextDelayMs());
    m.retryNow(0);
  }
  m.dispose();
  b.dispose();
});

test('offline closes without counting a failure; online again opens at once', () => {
  const m = new ConnectionMachine(mod, { ...POLICY, seed: 3 });
  m.start(0);
  m.onOpen(10);
  let s = m.setOnline(false, 20);
  assert.equal(s.action, 'close');
  assert.equal(s.state, 'backing_off');
  assert.equal(s.online, false);
  assert.equal(s.attempt, 0);
  assert.equal(s.deadlineMs, null, 'waits for the network, not a timer');
  s = m.setOnline(true, 30);
  assert.equal(s.action, 'open');
  assert.equal(s.state, 'connecting');
  m.dispose();
});

test('a fatal failure stops retrying until retryNow; stop closes an open transport', () => {
  const m = new ConnectionMachine(mod, { ...POLICY, seed: 4 });
  m.start(0);
  let s = m.onFailure('unauthorized', true, 5);
  assert.deepEqual([s.action, s.state, s.lastError, s.deadlineMs], ['close', 'error', 'unauthorized', null]);
  assert.equal(m.tick(1e9).action, 'none');
  s = m.retryNow(100);
  assert.deepEqual([s.action, s.state], ['open', 'connecting']);
  s = m.stop(200);
  assert.deepEqual([s.action, s.state], ['close', 'disconnected']);
  m.dispose();
});

test('a reply of another shape is an internal error naming the member', () => {
  const good = { action: 'none', state: 'connected', attempt: 0, lastError: '', deadline: 5, online: true, backoffMs: 0 };
  assert.equal(decodeConnectionStep(JSON.stringify(good)).deadlineMs, 5);
  const cases = [
    ['action', { ...good, action: 'reopen' }],
    ['state', { ...good, state: 'sleeping' }],
    ['attempt', { ...good, attempt: -1 }],
    ['attempt', { ...good, attempt: 1.5 }],
    ['lastError', { ...good, lastError: null }],
    ['deadline', { ...good, deadline: 'soon' }],
    ['deadline', (({ deadline, ...rest }) => rest)(good)],
    ['online', { ...good, online: 1 }],
    ['backoffMs', { ...good, backoffMs: undefined }],
    ['reply', [good]],
  ];
  for (const [field, reply] of cases) {
    assert.throws(() => decodeConnectionStep(JSON.stringify(reply)), (e) => e instanceof SyncError && e.code === 'internal' && e.field === field, field);
  }
  assert.throws(() => decodeConnectionStep('{"action":'), (e) => e instanceof SyncError && e.code === 'internal');
  // The binding's error convention still arrives as the error it carries.
  assert.throws(() => decodeConnectionStep('{"error":{"code":"invalid_request","message":"x","field":"now"}}'),
    (e) => e instanceof SyncError && e.code === 'invalid_request' && e.field === 'now');
});

test('bad policy numbers and times are refused; a disposed machine is closed', () => {
  for (const [field, policy] of [['baseMs', { baseMs: -1 }], ['capMs', { capMs: Number.NaN }], ['heartbeatTimeoutMs', { heartbeatTimeoutMs: 1.5 }], ['seed', { seed: Infinity }]]) {
    assert.throws(() => new ConnectionMachine(mod, policy), (e) => e instanceof SyncError && e.code === 'invalid_options' && e.field === field, field);
  }
  const m = new ConnectionMachine(mod, POLICY);
  assert.throws(() => m.start(Number.NaN), (e) => e instanceof SyncError && e.code === 'invalid_request' && e.field === 'now');
  m.dispose();
  m.dispose();
  assert.throws(() => m.start(0), (e) => e instanceof SyncError && e.code === 'closed');
});
