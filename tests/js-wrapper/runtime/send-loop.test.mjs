// SendLoop (runtime/send-loop.ts): sends only the durable outbox prefix, over HTTP or as a
// frame on the stream; refusals that retrying cannot change settle the batch as rejected;
// a refused token is retried until the AuthGate calls it final. Fake engine, post and backoff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist, sleep, until } from './helpers.mjs';

const { SendLoop, rejectionFrame } = await import(dist('runtime/send-loop.js'));
const { AuthGate } = await import(dist('runtime/auth-gate.js'));
const { SyncError } = await import(dist('errors.js'));

const output = (tag) => ({ tag, changes: [], queries: [], aggregates: [], settled: [], events: [], needSnapshot: false, cursor: 0, pending: 0, persist: false });

/** An engine with an outbox of mids: takeBatch hands out up to `maxBatch` of those below the
 * durable mid (one batch in flight at a time); results settle them. */
function fakeEngine(mids, { maxBatch = 100 } = {}) {
  const e = {
    outbox: [...mids],
    inFlight: null,
    log: [],
    received: [],
    failed: 0,
    ready: [],
    tick(now) {
      e.log.push(['tick', now]);
      return output('tick');
    },
    takeBatch(now, durable) {
      e.log.push(['takeBatch', durable]);
      if (e.inFlight) return null;
      const ms = e.outbox.filter((m) => m < durable).slice(0, maxBatch);
      if (!ms.length) return null;
      e.inFlight = ms;
      return JSON.stringify({ client: 'tab-1', mutations: ms.map((mid) => ({ mid, op: 'insert', collection: 'bills', id: `d${mid}` })) });
    },
    batchFailed() {
      e.failed++;
      e.inFlight = null;
    },
    receiveFrames(frames) {
      e.received.push(...frames);
      for (const f of frames) {
        const r = JSON.parse(f);
        for (const x of r.results ?? []) e.outbox = e.outbox.filter((m) => m !== x.mid);
      }
      e.inFlight = null;
      return output('frames');
    },
    setTransportReady(r) {
      e.ready.push(r);
    },
    state: () => ({ inFlight: !!e.inFlight }),
  };
  return e;
}

const applied = (body) => JSON.stringify({ type: 'results', seq: 1, results: JSON.parse(body).mutations.map((m) => ({ mid: m.mid, status: 'applied' })) });
const midsOf = (body) => JSON.parse(body).mutations.map((m) => m.mid);

function loop({ mids = [1, 2, 3], durable = 100, route = 'http', blocked = false, post, maxBatch, streamAnswerMs = 10000, auth = new AuthGate() } = {}) {
  const engine = fakeEngine(mids, { maxBatch });
  const s = {
    engine, route, blocked, durable, closed: false, auth,
    posts: [], frames: [], errors: [], handled: [], quiet: [], flushes: 0,
    delays: 0, resets: 0, sendFrameOk: true,
  };
  s.post = post ?? (async (body) => applied(body));
  s.loop = new SendLoop({
    engine: () => engine,
    isClosed: () => s.closed,
    route: () => s.route,
    flush: async () => {
      s.flushes++;
      engine.log.push(['flush']);
    },
    blocked: () => s.blocked,
    durableNextMid: () => s.durable,
    sendFrame: (text) => {
      s.frames.push(text);
      return s.sendFrameOk;
    },
    post: (body) => {
      s.posts.push(body);
      return s.post(body);
    },
    handle: (out) => s.handled.push(out.tag),
    handleQuiet: (out) => s.quiet.push(out.tag),
    onError: (e) => s.errors.push(e),
    backoff: {
      nextDelayMs: () => {
        s.delays++;
        return 5;
      },
      reset: () => s.resets++,
    },
    auth,
    streamAnswerMs,
    now: () => 1234,
  });
  s.end = () => {
    s.closed = true;
    s.loop.dispose();
  };
  return s;
}

test("route 'wait' sends nothing and does not even flush", async () => {
  const s = loop({ route: 'wait' });
  await s.loop.run();
  assert.equal(s.flushes, 0);
  assert.equal(s.posts.length, 0);
  assert.equal(s.engine.log.length, 0);
  s.end();
});

test('only mids below durableNextMid are sent; each round flushes before it takes a batch', async () => {
  const s = loop({ mids: [1, 2, 3], durable: 3 });
  await s.loop.run();
  assert.deepEqual(s.posts.map(midsOf), [[1, 2]], 'mid 3 is not durable yet');
  assert.deepEqual(s.engine.log.filter(([k]) => k === 'takeBatch').map(([, d]) => d), [3, 3]);
  assert.deepEqual(s.engine.log.slice(0, 3), [['flush'], ['tick', 1234], ['takeBatch', 3]]);
  assert.deepEqual(s.engine.ready, [true, true], 'HTTP: the transport is ready');
  assert.deepEqual(s.quiet, ['tick', 'tick'], 'tick output is handled quietly');
  assert.deepEqual(s.handled, ['frames'], 'the answer is handled');
  assert.deepEqual(s.engine.outbox, [3]);

  s.durable = 4;
  await s.loop.run();
  assert.deepEqual(s.posts.map(midsOf), [[1, 2], [3]]);
  assert.deepEqual(s.engine.outbox, []);
  s.end();
});

test('several batches go one after another in one run', async () => {
  const s = loop({ mids: [1, 2, 3, 4, 5], maxBatch: 2 });
  await s.loop.run();
  assert.deepEqual(s.posts.map(midsOf), [[1, 2], [3, 4], [5]]);
  assert.equal(s.resets, 3, 'each success resets the backoff');
  s.end();
});

test('blocked() stops sending (the writer could not make the outbox durable)', async () => {
  const s = loop({ blocked: true });
  await s.loop.run();
  assert.equal(s.flushes, 1, 'it tried to flush');
  assert.equal(s.posts.length, 0);
  assert.ok(!s.engine.log.some(([k]) => k === 'takeBatch'));
  s.end();
});

test("'stream' route sends one mutate frame and no HTTP request; a frame that cannot go fails the batch", async () => {
  const s = loop({ route: 'stream' });
  await s.loop.run();
  assert.equal(s.posts.length, 0);
  assert.equal(s.frames.length, 1, 'one frame; the loop waits for its results');
  assert.ok(s.frames[0].startsWith('{"type":"mutate",'), s.frames[0]);
  const f = JSON.parse(s.frames[0]);
  assert.equal(f.type, 'mutate');
  assert.equal(f.client, 'tab-1');
  assert.deepEqual(f.mutations.map((m) => m.mid), [1, 2, 3]);
  assert.deepEqual(s.engine.ready, [], 'the stream sets readiness itself');
  assert.equal(s.engine.failed, 0);
  s.end();

  const t = loop({ route: 'stream' });
  t.sendFrameOk = false;
  await t.loop.run();
  assert.equal(t.frames.length, 1);
  assert.equal(t.engine.failed, 1, 'batchFailed: the mids can go again');
  assert.equal(t.engine.inFlight, null);
  t.end();
});

test('a stream batch with no answer is looked at again after streamAnswerMs', async () => {
  const s = loop({ route: 'stream', streamAnswerMs: 30 });
  await s.loop.run();
  const takes = () => s.engine.log.filter(([k]) => k === 'takeBatch').length;
  assert.equal(takes(), 1);
  await until(() => takes() === 2, 1000, 'the second look');
  s.end();
});

for (const [status, code] of [[400, 'invalid_request'], [403, 'forbidden'], [413, 'payload_too_large']]) {
  test(`a ${status} settles the whole batch as rejected with the server's code`, async () => {
    const s = loop({ post: async () => { throw new SyncError(code, `refused ${status}`, { status }); } });
    await s.loop.run();
    assert.equal(s.posts.length, 1, 'not retried');
    assert.equal(s.engine.received.length, 1);
    const frame = JSON.parse(s.engine.received[0]);
    assert.equal(frame.type, 'results');
    assert.deepEqual(frame.results, [1, 2, 3].map((mid) => ({ mid, status: 'rejected', code, message: `refused ${status}` })));
    assert.equal(s.engine.failed, 0);
    assert.equal(s.delays, 0, 'no backoff');
    assert.deepEqual(s.engine.outbox, []);
    s.end();
  });
}

for (const [what, err] of [
  ['a 503', new SyncError('unavailable', 'down', { status: 503 })],
  ['a network failure', new SyncError('network', 'offline')],
  ['a 429', new SyncError('rate_limited', 'slow down', { status: 429 })],
  ['a 408', new SyncError('network', 'timeout', { status: 408 })],
]) {
  test(`${what} backs off (batchFailed, nextDelayMs) and the next success resets the backoff`, async () => {
    let fails = 1;
    const s = loop({
      post: async (body) => {
        if (fails-- > 0) throw err;
        return applied(body);
      },
    });
    await s.loop.run();
    assert.equal(s.engine.failed, 1);
    assert.equal(s.delays, 1);
    assert.equal(s.resets, 0);
    assert.deepEqual(s.errors, [{ code: err.code, message: err.message }]);
    assert.equal(s.engine.received.length, 0, 'nothing settled');
    assert.deepEqual(s.engine.outbox, [1, 2, 3]);
    await until(() => s.engine.outbox.length === 0, 1000, 'the retry after the backoff delay');
    assert.equal(s.posts.length, 2);
    assert.equal(s.resets, 1);
    s.end();
  });
}

test('a 401 is retried; three consecutive refusals settle the batch as unauthorized', async () => {
  const auth = new AuthGate();
  const s = loop({ auth, post: async () => { throw new SyncError('unauthorized', 'bad token', { status: 401 }); } });
  await s.loop.run();
  assert.equal(s.posts.length, 1);
  assert.equal(s.engine.failed, 1, 'first refusal: retried');
  assert.equal(auth.isFinal, false);
  await until(() => s.posts.length === 3, 1000, 'two retries');
  await until(() => s.engine.received.length === 1, 1000, 'the settlement');
  assert.equal(s.engine.failed, 2, 'the third is not a failure to retry');
  assert.equal(auth.isFinal, true);
  const frame = JSON.parse(s.engine.received[0]);
  assert.deepEqual(frame.results.map((r) => [r.mid, r.status, r.code]), [[1, 'rejected', 'unauthorized'], [2, 'rejected', 'unauthorized'], [3, 'rejected', 'unauthorized']]);
  assert.equal(s.errors.at(-1).code, 'unauthorized');
  assert.equal(s.delays, 2);
  await sleep(30);
  assert.equal(s.posts.length, 3, 'nothing left to send');
  s.end();
});

test('a success resets the backoff and ends a final refusal (AuthGate.accepted)', async () => {
  let accepted = 0;
  const auth = new AuthGate(() => accepted++);
  auth.refused();
  auth.refused();
  auth.refused();
  const s = loop({ auth });
  await s.loop.run();
  assert.equal(auth.isFinal, false);
  assert.equal(accepted, 1);
  assert.equal(s.resets, 1);
  s.end();
});

test('a batch in flight with no batch to take rechecks later; schedule() does nothing once closed', async () => {
  const s = loop({ route: 'stream' });
  await s.loop.run();
  s.engine.log.length = 0;
  await s.loop.run(); // batch still in flight
  assert.equal(s.frames.length, 1);
  assert.ok(s.engine.log.some(([k]) => k === 'takeBatch'));
  s.closed = true;
  s.loop.schedule(0);
  await sleep(20);
  assert.equal(s.engine.log.filter(([k]) => k === 'takeBatch').length, 1, 'closed: no run');
  s.end();
});

test('rejectionFrame settles every mutation of a body', () => {
  const body = JSON.stringify({ client: 'c', mutations: [{ mid: 7 }, { mid: 9 }] });
  assert.deepEqual(JSON.parse(rejectionFrame(body, 'forbidden', 'no')), {
    type: 'results', seq: 0,
    results: [{ mid: 7, status: 'rejected', code: 'forbidden', message: 'no' }, { mid: 9, status: 'rejected', code: 'forbidden', message: 'no' }],
  });
});
