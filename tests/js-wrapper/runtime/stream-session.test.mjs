// StreamSession (runtime/stream-session.ts): carries out the connection machine's steps with a
// transport. A fake machine (steps the test controls), a fake transport (the test calls its
// handlers), a real AuthGate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist, deferred, flush, sleep } from './helpers.mjs';

const { StreamSession } = await import(dist('runtime/stream-session.js'));
const { AuthGate } = await import(dist('runtime/auth-gate.js'));
const { NodeRing } = await import(dist('runtime/nodes.js'));
const { SyncError } = await import(dist('errors.js'));

const step = (action, state, extra = {}) => ({ action, state, attempt: 0, lastError: '', deadlineMs: null, ...extra });

/** A machine with a tiny model: start/retryNow open, onOpen connects, a failure closes (error
 * when fatal). `override[method]` replaces the next answer of a method. */
function fakeMachine(log) {
  const override = {};
  const answer = (name, dflt) => {
    const o = override[name];
    delete override[name];
    return o ?? dflt;
  };
  return {
    override,
    disposed: 0,
    failures: [],
    start: (now) => (log.push('machine.start'), answer('start', step('open', 'connecting'))),
    stop: () => (log.push('machine.stop'), answer('stop', step('close', 'disconnected'))),
    onOpen: () => (log.push('machine.onOpen'), answer('onOpen', step('none', 'connected'))),
    onMessage: () => (log.push('machine.onMessage'), answer('onMessage', step('none', 'connected'))),
    onFailure(reason, fatal, now) {
      log.push('machine.onFailure');
      this.failures.push({ reason, fatal });
      return answer('onFailure', fatal ? step('close', 'error', { lastError: 'unauthorized' }) : step('close', 'backing_off', { attempt: this.failures.length }));
    },
    setOnline: (online) => (log.push(`machine.setOnline:${online}`), answer('setOnline', online ? step('open', 'connecting') : step('close', 'disconnected'))),
    retryNow: () => (log.push('machine.retryNow'), answer('retryNow', step('open', 'connecting'))),
    tick: () => (log.push('machine.tick'), answer('tick', step('none', 'backing_off'))),
    dispose() {
      log.push('machine.dispose');
      this.disposed++;
    },
  };
}

function session({ kind = 'websocket', needsSnapshot = false, online = true, framesExpire = false, ping, loadSnapshot, node, nodeFailed } = {}) {
  const log = [];
  const machine = fakeMachine(log);
  const t = {
    log, machine, auth: new AuthGate(),
    handlers: null, opened: [], closes: 0, sent: [],
    needsSnapshot, online, framesExpire, closed: false,
    applied: [], failures: [], states: [], resets: 0, snapshots: 0, pings: 0, opens: 0, closedCalls: 0,
  };
  let n = 0;
  t.transport = {
    kind,
    open: (p) => {
      log.push('transport.open');
      t.opened.push(p);
    },
    close: () => {
      log.push('transport.close');
      t.closes++;
    },
    send: (f) => {
      t.sent.push(f);
      return true;
    },
  };
  t.session = new StreamSession({
    machine,
    makeTransport: (h) => {
      t.handlers = h;
      return t.transport;
    },
    params: async () => ({ baseUrl: node ? node() : 'http://x', token: `tok${++n}`, collections: ['bills'], cursor: 7 }),
    ...(nodeFailed ? { nodeFailed } : {}),
    needsSnapshot: () => t.needsSnapshot,
    loadSnapshot: loadSnapshot ?? (async () => {
      log.push('loadSnapshot');
      t.snapshots++;
      t.needsSnapshot = false;
    }),
    ping: ping ?? (async () => {
      t.pings++;
    }),
    auth: t.auth,
    isOnline: () => t.online,
    onFrames: (frames) => {
      t.applied.push(frames);
      return t.framesExpire;
    },
    onOpen: () => t.opens++,
    onClosed: () => t.closedCalls++,
    onFailure: (e) => t.failures.push(e),
    onState: (s) => t.states.push(s.state),
    onLatency: () => {},
    onReset: () => {
      log.push('onReset');
      t.resets++;
    },
    isClosed: () => t.closed,
    now: () => 1000,
  });
  t.end = () => {
    t.session.stop();
    t.closed = true;
  };
  return t;
}

test('start asks the machine; an open step with no cursor loads the snapshot before transport.open(params)', async () => {
  const t = session({ needsSnapshot: true });
  t.session.start();
  assert.equal(t.log[0], 'machine.start');
  assert.equal(t.session.state, 'connecting');
  assert.deepEqual(t.states, ['connecting']);
  await flush();
  assert.deepEqual(t.log, ['machine.start', 'loadSnapshot', 'transport.open']);
  assert.deepEqual(t.opened, [{ baseUrl: 'http://x', token: 'tok1', collections: ['bills'], cursor: 7 }]);

  t.handlers.onOpen();
  assert.equal(t.session.state, 'connected');
  assert.equal(t.session.connectedSince, 1000);
  assert.equal(t.opens, 1);
  assert.deepEqual(t.states, ['connecting', 'connected']);
  t.end();
});

test('a replica with a cursor opens without a snapshot; an offline start tells the machine first', async () => {
  const t = session({ online: false });
  t.machine.override.start = step('none', 'disconnected');
  t.session.start();
  await flush();
  assert.deepEqual(t.log, ['machine.setOnline:false', 'machine.start']);
  assert.equal(t.opened.length, 0, 'offline: the machine did not ask to open');
  t.session.setOnline(true);
  await flush();
  assert.equal(t.snapshots, 0);
  assert.equal(t.opened.length, 1);
  t.end();
});

test('the stream does not open when the machine left connecting while the snapshot loaded', async () => {
  const gate = deferred();
  const t = session({ needsSnapshot: true, loadSnapshot: () => gate.promise });
  t.session.start();
  await flush();
  t.session.setOnline(false); // close step, state disconnected
  gate.resolve();
  await flush();
  assert.equal(t.opened.length, 0);
  t.end();
});

test('frames go to onFrames; a cursor that expired resets, closes, snapshots and reopens with fresh params', async () => {
  const t = session();
  t.session.start();
  await flush();
  t.handlers.onOpen();
  t.handlers.onFrames(['{"type":"change"}']);
  assert.deepEqual(t.applied, [['{"type":"change"}']]);
  assert.equal(t.resets, 0);
  assert.equal(t.closes, 0);

  t.framesExpire = true;
  t.log.length = 0;
  t.handlers.onFrames(['{"type":"reset"}']);
  await flush();
  assert.deepEqual(t.log, ['onReset', 'transport.close', 'loadSnapshot', 'transport.open']);
  assert.equal(t.opened.length, 2);
  assert.equal(t.opened[1].token, 'tok2', 'params asked again');
  t.end();
});

test('after an expired cursor, a stream no longer connected does not reopen by itself', async () => {
  const gate = deferred();
  let loads = 0;
  const t = session({
    loadSnapshot: () => {
      loads++;
      return gate.promise;
    },
  });
  t.session.start();
  await flush();
  t.handlers.onOpen();
  t.framesExpire = true;
  t.handlers.onFrames(['{"type":"reset"}']);
  t.handlers.onFailure('socket closed', false); // the machine backs off meanwhile
  gate.resolve();
  await flush();
  assert.equal(loads, 1);
  assert.equal(t.opened.length, 1, 'the machine reopens it when its backoff ends');
  t.end();
});

test('a refused open counts on the AuthGate: fatal only at the third, reported as unauthorized each time', async () => {
  const t = session();
  t.session.start();
  await flush();
  for (let i = 0; i < 3; i++) t.handlers.onFailure('4401', true);
  assert.deepEqual(t.machine.failures.map((f) => f.fatal), [false, false, true]);
  assert.deepEqual(t.failures.map((f) => f.code), ['unauthorized', 'unauthorized', 'unauthorized']);
  assert.match(t.failures[0].message, /refused the token/);
  assert.equal(t.auth.isFinal, true);
  assert.equal(t.session.state, 'error');
  assert.ok(t.closedCalls >= 1, 'close steps are carried out');

  // restart() after the refusal ended: the machine starts again.
  t.auth.accepted();
  t.log.length = 0;
  t.session.restart();
  assert.equal(t.log[0], 'machine.start');
  t.end();
});

test('a transport failure that is not a refusal is network (not counted on the AuthGate)', async () => {
  const t = session();
  t.session.start();
  await flush();
  t.handlers.onFailure('socket closed', false);
  assert.deepEqual(t.failures, [{ code: 'network', message: 'socket closed' }]);
  assert.deepEqual(t.machine.failures, [{ reason: 'socket closed', fatal: false }]);
  assert.equal(t.auth.isFinal, false);
  t.handlers.onFailure('x', true);
  t.handlers.onFailure('x', true);
  assert.equal(t.auth.isFinal, false, 'the network failure did not count as a refusal');
  t.end();
});

test('an open accepted after refusals resets the AuthGate', async () => {
  const t = session();
  t.session.start();
  await flush();
  t.handlers.onFailure('4401', true);
  t.handlers.onFailure('4401', true);
  t.handlers.onOpen();
  t.handlers.onFailure('4401', true);
  assert.deepEqual(t.machine.failures.map((f) => f.fatal), [false, false, false]);
  t.end();
});

test("an SSE 'connect_failed' asks ping(): a 401 counts as a refusal, an answer as a network failure", async () => {
  let refuse = true;
  let pings = 0;
  const t = session({
    kind: 'sse',
    ping: async () => {
      pings++;
      if (refuse) throw new SyncError('unauthorized', 'no', { status: 401 });
    },
  });
  t.session.start();
  await flush();
  t.handlers.onFailure('connect_failed', false);
  assert.equal(t.failures.length, 0, 'waits for the ping');
  await flush();
  assert.equal(pings, 1);
  assert.deepEqual(t.failures.map((f) => f.code), ['unauthorized']);
  assert.deepEqual(t.machine.failures, [{ reason: 'connect_failed', fatal: false }]);

  refuse = false;
  t.handlers.onFailure('connect_failed', false);
  await flush();
  assert.equal(pings, 2);
  assert.equal(t.failures[1].code, 'network');

  // The ping that went through accepted the token: the refusals are counted afresh.
  refuse = true;
  t.handlers.onFailure('connect_failed', false);
  await flush();
  t.handlers.onFailure('connect_failed', false);
  await flush();
  assert.deepEqual(t.machine.failures.map((f) => f.fatal), [false, false, false, false]);
  t.handlers.onFailure('connect_failed', false);
  await flush();
  assert.deepEqual(t.machine.failures.map((f) => f.fatal), [false, false, false, false, true], 'three in a row: final');
  t.end();
});

test("a WebSocket 'connect_failed' does not ping", async () => {
  const t = session({ kind: 'websocket' });
  t.session.start();
  await flush();
  t.handlers.onFailure('connect_failed', false);
  await flush();
  assert.equal(t.pings, 0);
  assert.equal(t.failures[0].code, 'network');
  t.end();
});

test('a snapshot refused with 401 before opening counts as a refused token', async () => {
  const t = session({
    needsSnapshot: true,
    loadSnapshot: async () => {
      throw new SyncError('unauthorized', 'expired', { status: 401 });
    },
  });
  t.session.start();
  await flush();
  assert.equal(t.opened.length, 0);
  assert.deepEqual(t.failures.map((f) => f.code), ['unauthorized']);
  assert.match(t.machine.failures[0].reason, /^snapshot: expired/);
  t.end();
});

test('a snapshot that fails otherwise keeps its own code', async () => {
  const t = session({
    needsSnapshot: true,
    loadSnapshot: async () => {
      throw new SyncError('invalid_snapshot', 'garbled', { status: 200 });
    },
  });
  t.session.start();
  await flush();
  assert.deepEqual(t.failures, [{ code: 'invalid_snapshot', message: 'snapshot: garbled' }]);
  assert.equal(t.auth.isFinal, false);
  t.end();
});

test('over WebSocket the open stream is probed with ping frames on the transport', async () => {
  const t = session({ kind: 'websocket' });
  t.session.start();
  await flush();
  t.handlers.onOpen();
  await flush();
  assert.ok(t.sent.some((f) => /^\{"type":"ping","id":\d+\}$/.test(f)), JSON.stringify(t.sent));
  assert.equal(t.handlers.intercept('{"type":"pong","id":1}'), true, 'the pong is kept from the engine');
  assert.equal(t.handlers.intercept('{"type":"change"}'), false);
  assert.equal(t.session.send('{"type":"mutate"}'), true);
  t.end();
});

test('a step with a deadline ticks the machine when it falls due', async () => {
  const t = session();
  t.machine.override.start = step('none', 'backing_off', { deadlineMs: 1010 }); // now() is 1000
  t.session.start();
  await sleep(40);
  assert.ok(t.log.includes('machine.tick'));
  t.end();
});

test('stop() stops and disposes the machine, closes the transport and ignores later transport callbacks', async () => {
  const t = session();
  t.session.start();
  await flush();
  t.handlers.onOpen();
  t.session.stop();
  assert.ok(t.log.includes('machine.stop'));
  assert.ok(t.log.indexOf('transport.close') > t.log.indexOf('machine.stop'));
  assert.equal(t.log.at(-1), 'machine.dispose');
  assert.equal(t.machine.disposed, 1);
  assert.equal(t.session.connectedSince, null);
  assert.equal(t.session.kind, null);
  assert.equal(t.session.send('{}'), false);

  const before = t.log.length;
  const opens = t.opens;
  t.handlers.onFrames(['{"type":"change"}']);
  t.handlers.onFailure('4401', true);
  t.handlers.onActivity();
  t.handlers.onOpen();
  await flush();
  assert.equal(t.applied.length, 0);
  assert.equal(t.failures.length, 0);
  assert.equal(t.auth.isFinal, false);
  assert.equal(t.log.length, before, 'the machine is not asked again');
  assert.equal(t.opens, opens, 'a late open is not reported');
  assert.equal(t.session.connectedSince, null);

  t.session.stop();
  assert.equal(t.machine.disposed, 1, 'stop is idempotent');
  t.closed = true;
});

// ---------------------------------------------------------------- several nodes (nodes.ts)

const A = 'https://a.example';
const B = 'https://b.example';
const C = 'https://c.example';

/** A session whose params() name the ring's current node and whose node failures move it. */
function onRing(urls, extra = {}) {
  const ring = new NodeRing(urls);
  const left = [];
  const t = session({
    node: () => ring.current,
    nodeFailed: (n, reason) => {
      left.push([n, reason]);
      ring.failed(n, reason);
    },
    ...extra,
  });
  return { t, ring, left };
}

test('each attempt goes to the current node; a failed open, a drop and a silent stream leave it, and the next attempt resumes on the next node from the same cursor', async () => {
  const { t, ring, left } = onRing([A, B, C]);
  t.session.start();
  await flush();
  assert.equal(t.opened[0].baseUrl, A);
  assert.equal(t.session.node, null, 'not connected yet');

  t.handlers.onFailure('closed (1006)', false); // A does not answer
  assert.deepEqual(left, [[A, 'closed (1006)']]);
  assert.equal(ring.current, B);
  t.session.retryNow(); // the machine's backoff ended
  await flush();
  assert.equal(t.opened[1].baseUrl, B);
  t.handlers.onOpen();
  assert.equal(t.session.node, B, 'connected to B');

  t.handlers.onFailure('stream_closed', false); // B drops the stream (say, shutting down)
  assert.equal(t.session.node, null);
  t.session.retryNow();
  await flush();
  assert.equal(t.opened[2].baseUrl, C);

  // C goes silent: the machine's heartbeat timeout is a failure of C too.
  t.machine.override.onOpen = step('none', 'connected', { deadlineMs: 1000 });
  t.machine.override.tick = step('close', 'backing_off', { lastError: 'heartbeat_timeout', attempt: 1 });
  t.handlers.onOpen();
  await sleep(20);
  assert.deepEqual(left, [[A, 'closed (1006)'], [B, 'stream_closed'], [C, 'heartbeat_timeout']]);
  assert.equal(ring.current, A, 'round robin: A again after B and C');
  t.session.retryNow();
  await flush();
  assert.deepEqual(t.opened.map((p) => [p.baseUrl, p.cursor]), [[A, 7], [B, 7], [C, 7], [A, 7]], 'the same cursor on every node');
  t.end();
});

test('a refused token, going offline and stop() keep the node', async () => {
  const { t, ring, left } = onRing([A, B]);
  t.session.start();
  await flush();
  t.handlers.onFailure('4401', true);
  assert.deepEqual(left, [], 'the node answered: every node checks the same token');
  t.session.retryNow();
  await flush();
  t.handlers.onOpen();
  t.session.setOnline(false);
  t.session.stop();
  assert.deepEqual(left, []);
  assert.equal(ring.current, A);
  t.closed = true;
});

test("SSE: 'connect_failed' pings the node it tried, the latency probe the node it is connected to", async () => {
  const pinged = [];
  const { t, ring, left } = onRing([A, B], {
    kind: 'sse',
    ping: async (n) => {
      pinged.push(n);
    },
  });
  t.session.start();
  await flush();
  t.handlers.onFailure('connect_failed', false);
  await flush();
  assert.deepEqual(pinged, [A], 'the diagnosis asks A');
  assert.deepEqual(left, [[A, 'connect_failed']], 'A answered the ping: the stream failed for another reason, still on A');
  t.session.retryNow();
  await flush();
  t.handlers.onOpen();
  await flush();
  assert.ok(pinged.length >= 2, 'the latency probe pings');
  assert.deepEqual(new Set(pinged.slice(1)), new Set([B]), 'the latency probes go to B');
  assert.equal(ring.current, B);
  t.end();
});

test('a snapshot that fails after an expired cursor is not blamed on the stream\'s node', async () => {
  const { t, left } = onRing([A, B], {
    loadSnapshot: async () => {
      throw new SyncError('invalid_request', 'bad where', { status: 400 });
    },
  });
  t.session.start();
  await flush();
  t.handlers.onOpen();
  t.framesExpire = true;
  t.handlers.onFrames(['{"type":"reset"}']);
  await flush();
  assert.deepEqual(t.failures.map((f) => f.code), ['invalid_request']);
  assert.deepEqual(left, [], 'a snapshot request moves the ring itself when its node fails (nodes.ts run)');
  t.end();
});
