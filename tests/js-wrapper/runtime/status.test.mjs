// status.ts: the SyncStatus snapshot (replaced only when a field changed), built from a tab's
// connection view; a leader's status read strictly by followers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist } from './helpers.mjs';

const { buildStatus, connectionViewOf, readConnectionView, StatusStore } = await import(dist('runtime/status.js'));

const DEFAULTS = { connection: 'connecting', isConnected: false, attempt: 0, connectedSince: null, lastSync: null, latencyMs: null, lastLatencyMs: null, node: null };

const view = (over = {}) => ({
  connection: 'connected', isConnected: true, attempt: 2, connectedSince: 100, lastSync: 150, latencyMs: 40, lastLatencyMs: 45, node: 'https://b.example', ...over,
});
const inputs = (over = {}) => ({
  view: view(), role: 'leader', transport: 'websocket', isOnline: true,
  engine: { pending: 2, foreignPending: 3, cursor: 99 }, clientId: 'tab-1', node: 'https://a.example', lastError: null, storageError: null, ...over,
});

test('readConnectionView: nothing heard yet gives the defaults', () => {
  assert.deepEqual(readConnectionView(null), DEFAULTS);
  assert.deepEqual(readConnectionView({}), DEFAULTS);
});

test('readConnectionView: mistyped or non-finite fields read as defaults, good ones pass', () => {
  const bad = {
    connection: 'exploded', isConnected: 'yes', attempt: '3', connectedSince: NaN,
    lastSync: Infinity, latencyMs: '40', lastLatencyMs: { v: 1 }, node: 42,
  };
  assert.deepEqual(readConnectionView(bad), DEFAULTS);
  assert.deepEqual(readConnectionView({ isConnected: 1 }).isConnected, false, 'only true is true');
  assert.equal(readConnectionView({ node: '' }).node, null, 'an empty node names none');
  const good = view({ connection: 'backing_off' });
  assert.deepEqual(readConnectionView(good), good);
  for (const s of ['disconnected', 'connecting', 'connected', 'backing_off', 'error']) {
    assert.equal(readConnectionView({ connection: s }).connection, s);
  }
});

test('buildStatus: latency only while connected and online; pending counts both; frozen', () => {
  const s = buildStatus(inputs());
  assert.equal(s.isConnected, true);
  assert.equal(s.latencyMs, 40);
  assert.equal(s.lastLatencyMs, 45);
  assert.equal(s.pendingOperations, 5);
  assert.equal(s.cursor, 99);
  assert.ok(Object.isFrozen(s));

  const offline = buildStatus(inputs({ isOnline: false }));
  assert.equal(offline.isConnected, false, 'offline: not connected whatever the view says');
  assert.equal(offline.latencyMs, null);
  assert.equal(offline.lastLatencyMs, null);

  const down = buildStatus(inputs({ view: view({ connection: 'backing_off', isConnected: false }) }));
  assert.equal(down.latencyMs, null);
  assert.equal(down.lastLatencyMs, null);
  assert.equal(down.connection, 'backing_off');
  assert.equal(down.lastSync, 150, 'lastSync stays');

  const noEngine = buildStatus(inputs({ engine: null, lastError: { code: 'network', message: 'x' } }));
  assert.equal(noEngine.pendingOperations, 0);
  assert.equal(noEngine.cursor, 0);
  assert.ok(Object.isFrozen(noEngine.lastError), 'frozen deeply');
});

test('buildStatus: node is the stream\'s (or the leader\'s) node, else the tab\'s current one', () => {
  assert.equal(buildStatus(inputs()).node, 'https://b.example', 'the view names the node the stream is on');
  assert.equal(buildStatus(inputs({ view: view({ node: null, isConnected: false, connection: 'backing_off' }) })).node, 'https://a.example');
});

test('connectionViewOf gives back what a follower reads', () => {
  const s = buildStatus(inputs());
  assert.deepEqual(readConnectionView(JSON.parse(JSON.stringify(connectionViewOf(s)))), view());
});

test('StatusStore.update: an equal status keeps the same object (false); a changed one replaces it (true)', () => {
  const store = new StatusStore(buildStatus(inputs()));
  const first = store.current;
  let notified = 0;
  store.subject.subscribe(() => notified++);
  assert.equal(store.update(buildStatus(inputs())), false);
  assert.equal(store.current, first, 'same object');
  assert.equal(notified, 0);
  assert.equal(store.update(buildStatus(inputs({ lastError: { code: 'network', message: 'x' } }))), true);
  assert.notEqual(store.current, first);
  assert.deepEqual(store.current.lastError, { code: 'network', message: 'x' });
  assert.equal(notified, 1);
  assert.equal(store.update(buildStatus(inputs({ lastError: { code: 'network', message: 'x' } }))), false, 'nested objects compare by value');
  assert.equal(store.update(buildStatus(inputs({ engine: { pending: 2, foreignPending: 4, cursor: 99 } }))), true);
  assert.equal(store.current.pendingOperations, 6);
});
