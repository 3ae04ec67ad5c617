// NodeRing (runtime/nodes.ts): the nodes of one cluster a client talks to, round robin on
// failure; which failures move it; and, with the send loop and the real engine (wasm), that a
// write whose request failed on one node is sent again to the next with the same client id and
// mids, so a cluster that already applied it answers `duplicate` and applies it once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist, until } from './helpers.mjs';

const { NodeRing, nodeUrls, sameNode, isNodeFailure } = await import(dist('runtime/nodes.js'));
const { SendLoop } = await import(dist('runtime/send-loop.js'));
const { AuthGate } = await import(dist('runtime/auth-gate.js'));
const { SyncError } = await import(dist('errors.js'));
const { loadSyncline, SyncEngine } = await import(dist('internal.js'));

const A = 'https://a.example';
const B = 'https://b.example';
const C = 'https://c.example';

const down = () => new SyncError('network', 'POST /v1/mutations failed: fetch failed', { cause: new TypeError('fetch failed') });

test('nodeUrls: a string is one node; a list keeps its order; sameNode ignores a trailing slash', () => {
  assert.deepEqual(nodeUrls(A), [A]);
  assert.deepEqual(nodeUrls([B, A, C]), [B, A, C]);
  assert.ok(sameNode(`${A}/`, A));
  assert.ok(!sameNode(A, B));
});

test('a failure of the current node moves to the next, round robin: the node that just failed comes last', () => {
  const moves = [];
  const ring = new NodeRing([A, B, C], { onChange: (to, from, reason) => moves.push([from, to, reason]) });
  assert.equal(ring.current, A, 'starts on the first URL');
  assert.equal(ring.failed(A, 'connect_failed'), true);
  assert.equal(ring.current, B);
  assert.equal(ring.failed(B, 'stream_closed'), true);
  assert.equal(ring.current, C);
  assert.equal(ring.failed(C, 'HTTP 503'), true);
  assert.equal(ring.current, A, 'back to the first after every other node was tried');
  assert.deepEqual(moves, [[A, B, 'connect_failed'], [B, C, 'stream_closed'], [C, A, 'HTTP 503']]);
});

test('only a failure of the current node moves the ring (a late failure from a node already left does not skip one)', () => {
  const ring = new NodeRing([A, B, C]);
  ring.failed(A);
  assert.equal(ring.failed(A, 'a request that was in flight to A'), false);
  assert.equal(ring.current, B, 'B has not been tried: it stays current');
  assert.equal(ring.failed(`${B}/`), true, 'the same node with a trailing slash');
  assert.equal(ring.current, C);
});

test('one URL never moves; nothing moves while offline', () => {
  const one = new NodeRing([A]);
  assert.equal(one.failed(A), false);
  assert.equal(one.current, A);
  let online = false;
  const ring = new NodeRing([A, B], { online: () => online });
  assert.equal(ring.failed(A), false, 'offline every node looks down');
  assert.equal(ring.current, A);
  online = true;
  assert.equal(ring.failed(A), true);
  assert.equal(ring.current, B);
  assert.throws(() => new NodeRing([]));
});

test('isNodeFailure: no answer, a timeout, cors or a 5xx move on; an answer below 500 or an abort of our own do not', () => {
  const moves = [
    down(),
    new SyncError('network', 'timed out', { cause: new DOMException('request timed out', 'TimeoutError') }),
    new SyncError('cors', 'refuses this origin'),
    new SyncError('unavailable', 'shutting down', { status: 503 }),
    new SyncError('unavailable', 'bad gateway', { status: 502 }),
    new SyncError('internal', 'database error', { status: 500 }),
  ];
  for (const e of moves) assert.equal(isNodeFailure(e), true, `${e.code} ${e.status ?? ''} ${e.message}`);
  const stays = [
    new SyncError('network', 'connection lost', { cause: new DOMException('connection lost', 'AbortError') }),
    new SyncError('unauthorized', 'expired', { status: 401 }),
    new SyncError('forbidden', 'no', { status: 403 }),
    new SyncError('not_found', 'no route', { status: 404 }),
    new SyncError('rate_limited', 'slow down', { status: 429 }),
    new SyncError('invalid_request', 'bad body', { status: 400 }),
    null,
    'network',
  ];
  for (const e of stays) assert.equal(isNodeFailure(e), false, String(e?.message ?? e));
});

test('run: a request goes to the current node (or the pinned one); a node failure moves the ring and is rethrown', async () => {
  const ring = new NodeRing([A, B, C]);
  const asked = [];
  assert.equal(await ring.run(async (url) => (asked.push(url), 'ok')), 'ok');
  assert.equal(await ring.run(async (url) => (asked.push(url), 'ok'), C), 'ok');
  assert.deepEqual(asked, [A, C]);

  const e = down();
  await assert.rejects(ring.run(async () => { throw e; }), (x) => x === e, 'the same error');
  assert.equal(ring.current, B);
  await assert.rejects(ring.run(async () => { throw new SyncError('conflict', 'x', { status: 409 }); }));
  assert.equal(ring.current, B, 'an answer from the node keeps it');

  // Two requests in flight to B when it dies: B is left once, C is not skipped.
  const both = [ring.run(async () => { throw down(); }), ring.run(async () => { throw down(); })];
  await Promise.allSettled(both);
  assert.equal(ring.current, C);
});

// ---------------------------------------------------------------- writes on another node

const mod = await loadSyncline();

/** Two nodes of one cluster sharing one store: per client id, the outcome of each mid (the
 * server's exactly-once). `a` says what node A does with a request. */
function cluster({ a }) {
  const log = [];
  const outcomes = new Map(); // `${client}:${mid}` -> seq
  const requests = [];
  const commit = (body) => {
    const { client, mutations } = JSON.parse(body);
    const results = mutations.map((m) => {
      const key = `${client}:${m.mid}`;
      if (outcomes.has(key)) return { mid: m.mid, status: 'duplicate', seq: outcomes.get(key) };
      log.push({ client, mid: m.mid, id: m.id });
      outcomes.set(key, log.length);
      return { mid: m.mid, status: 'applied', seq: log.length };
    });
    return JSON.stringify({ type: 'results', seq: log.length, results });
  };
  const post = async (url, body) => {
    requests.push({ url, body: JSON.parse(body) });
    if (url === A) {
      if (a === 'down') throw down();
      if (a === 'shutting_down') throw new SyncError('unavailable', 'the server is shutting down', { status: 503 });
      if (a === 'dies_after_commit') {
        commit(body);
        throw down(); // committed, but the answer never came
      }
    }
    return commit(body);
  };
  return { log, requests, post };
}

function sender(engine, ring, c) {
  const errors = [];
  const settled = [];
  const loop = new SendLoop({
    engine: () => engine,
    isClosed: () => false,
    route: () => 'http',
    flush: async () => {},
    blocked: () => false,
    durableNextMid: () => engine.state().nextMid,
    sendFrame: () => false,
    post: (body) => ring.run((url) => c.post(url, body)),
    handle: (out) => settled.push(...out.settled),
    handleQuiet: () => {},
    onError: (e) => errors.push(e),
    backoff: { nextDelayMs: () => 5, reset: () => {} },
    auth: new AuthGate(),
    streamAnswerMs: 1000,
  });
  return { loop, errors, settled };
}

for (const a of ['down', 'shutting_down', 'dies_after_commit']) {
  test(`a write whose request to node A failed (${a}) is retried on node B with the same client id and mids, applied once`, async () => {
    const engine = SyncEngine.create(mod, { clientId: 'tab-7', collections: ['bills'] });
    const ring = new NodeRing([A, B]);
    const c = cluster({ a });
    const first = engine.mutate([{ op: 'insert', collection: 'bills', id: 'b1', fields: { n: 1 } }]);
    const second = engine.mutate([{ op: 'insert', collection: 'bills', id: 'b2', fields: { n: 2 } }]);
    const mids = [...first.mids, ...second.mids];
    assert.deepEqual(mids, [1, 2]);
    const { loop, errors, settled } = sender(engine, ring, c);
    try {
      await loop.run();
      await until(() => engine.state().unacknowledged === 0, 2000, 'every write acknowledged');
    } finally {
      loop.dispose();
    }
    assert.deepEqual(c.requests.map((r) => r.url), [A, B], 'one try on A, the retry on B');
    const [onA, onB] = c.requests.map((r) => r.body);
    assert.equal(onB.client, onA.client, 'the same client id');
    assert.equal(onB.client, 'tab-7');
    assert.deepEqual(onB.mutations.map((m) => m.mid), onA.mutations.map((m) => m.mid), 'the same mids');
    assert.deepEqual(onB.mutations.map((m) => m.mid), mids);
    assert.deepEqual(onB.mutations, onA.mutations, 'the same mutations, byte for byte');
    assert.deepEqual(c.log.map((x) => `${x.client}:${x.mid}:${x.id}`), ['tab-7:1:b1', 'tab-7:2:b2'], 'each applied exactly once');
    assert.deepEqual(settled.map((x) => [x.mid, x.applied, x.seq]), [[1, true, 1], [2, true, 2]], 'settled with the seqs of their one application');
    assert.equal(ring.current, B, 'later requests stay on B');
    assert.equal(errors.length, 1, 'the failure on A was reported');
    assert.equal(errors[0].code, a === 'shutting_down' ? 'unavailable' : 'network');
    engine.dispose();
  });
}

test('a write refused by a node that answered (4xx) is not sent to another node', async () => {
  const engine = SyncEngine.create(mod, { clientId: 'tab-8', collections: ['bills'] });
  const ring = new NodeRing([A, B]);
  const requests = [];
  const c = {
    post: async (url, body) => {
      requests.push(url);
      throw new SyncError('forbidden', 'not yours', { status: 403 });
    },
  };
  engine.mutate([{ op: 'insert', collection: 'bills', id: 'b1', fields: { n: 1 } }]);
  const { loop } = sender(engine, ring, c);
  await loop.run();
  loop.dispose();
  assert.deepEqual(requests, [A]);
  assert.equal(ring.current, A);
  assert.equal(engine.state().pending, 0, 'settled as rejected');
  engine.dispose();
});
