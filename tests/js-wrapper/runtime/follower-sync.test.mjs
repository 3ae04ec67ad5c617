// FollowerSync (runtime/follower-sync.ts): a follower applies the leader's frames and catches up
// from the leader's recent frames or a snapshot; frames arriving meanwhile wait and follow in
// order. Fake engine, channel and snapshot; the part's real 1 s catch-up wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist, flush, sleep } from './helpers.mjs';

const { FollowerSync, CATCH_UP_WAIT_MS } = await import(dist('runtime/follower-sync.js'));
const { SyncError } = await import(dist('errors.js'));

const OWN = { collections: ['bills'], where: '' };
const OTHER = { collections: ['bills', 'notes'], where: '' };

function follower({ channel = true, online = true, own = OWN, loadSnapshot } = {}) {
  const t = {
    posts: [], applied: [], notes: [], errors: [], handled: [], followed: [], settled: 0, snapshots: 0,
    cursor: 12, needSnapshot: false, owns: false, online, closed: false, tasks: [],
  };
  t.engine = {
    cursor: () => t.cursor,
    state: () => ({ needSnapshot: t.needSnapshot }),
    followSubscription: (sub) => {
      t.followed.push(sub);
      return { tag: 'followed' };
    },
  };
  t.f = new FollowerSync({
    engine: () => t.engine,
    clientId: 'tab-1',
    post: channel ? (m) => t.posts.push(m) : null,
    isClosed: () => t.closed,
    ownsConnection: () => t.owns,
    isOnline: () => t.online,
    loadSnapshot: loadSnapshot ?? (async () => {
      t.snapshots++;
      t.applied.push('snapshot');
    }),
    apply: (frames) => t.applied.push(...frames),
    handle: (out) => t.handled.push(out.tag),
    note: (type, data) => t.notes.push({ type, data }),
    onError: (e) => t.errors.push(e),
    onSettled: () => t.settled++,
    background: (p) => t.tasks.push(p),
  }, own);
  t.answer = (frames, extra = {}) => {
    const ask = t.posts.at(-1);
    t.f.caughtUp({ t: 'caughtUp', from: 'leader', to: 'tab-1', id: ask.id, frames, ...extra });
  };
  return t;
}

test('catchUp asks the leader from the cursor; its answer is applied and noted', async () => {
  const t = follower();
  const done = t.f.catchUp();
  await flush();
  assert.deepEqual(t.posts, [{ t: 'catchUp', from: 'tab-1', id: 1, cursor: 12 }]);
  t.answer(['c1', 'c2']);
  await done;
  assert.deepEqual(t.applied, ['c1', 'c2']);
  assert.deepEqual(t.notes, [{ type: 'caught_up', data: { from: 'leader', frames: 2 } }]);
  assert.equal(t.settled, 1);
  assert.equal(t.snapshots, 0);
});

test('frames that arrive during a catch-up are buffered and applied after it, in order', async () => {
  const t = follower();
  const done = t.f.catchUp();
  await flush();
  t.f.frames(['f1'], OWN);
  t.f.frames(['f2', 'f3'], OWN);
  assert.deepEqual(t.applied, [], 'held while the catch-up runs');
  t.answer(['c1']);
  await done;
  assert.deepEqual(t.applied, ['c1', 'f1', 'f2', 'f3']);
  t.f.frames(['f4'], OWN);
  assert.deepEqual(t.applied.at(-1), 'f4', 'applied at once after the catch-up');
});

test('one catch-up at a time: a second call shares the one running', async () => {
  const t = follower();
  const a = t.f.catchUp();
  const b = t.f.catchUp();
  assert.equal(a, b);
  await flush();
  assert.equal(t.posts.length, 1);
  t.answer([]);
  await a;
});

test('answers for another tab or an unknown request are ignored', async () => {
  const t = follower();
  const done = t.f.catchUp();
  await flush();
  const id = t.posts[0].id;
  t.f.caughtUp({ t: 'caughtUp', from: 'leader', to: 'tab-2', id, frames: ['x'] });
  t.f.caughtUp({ t: 'caughtUp', from: 'leader', to: 'tab-1', id: id + 7, frames: ['y'] });
  await flush();
  assert.deepEqual(t.applied, []);
  assert.equal(t.settled, 0);
  t.answer(['z']);
  await done;
  assert.deepEqual(t.applied, ['z']);
});

test('a leader that does not keep frames that old (null) sends the follower to a snapshot at once', async () => {
  const t = follower();
  const done = t.f.catchUp();
  await flush();
  t.answer(null);
  await done;
  assert.equal(t.snapshots, 1);
  assert.deepEqual(t.notes, [{ type: 'caught_up', data: { from: 'snapshot' } }]);
});

test(`no answer within ${CATCH_UP_WAIT_MS} ms: a snapshot when online, nothing when offline`, async () => {
  const on = follower();
  const off = follower({ online: false });
  const started = Date.now();
  const done = Promise.all([on.f.catchUp(), off.f.catchUp()]);
  await sleep(CATCH_UP_WAIT_MS - 200);
  assert.equal(on.snapshots, 0, 'still waiting for the leader');
  await done;
  assert.ok(Date.now() - started >= CATCH_UP_WAIT_MS - 5);
  assert.equal(on.snapshots, 1);
  assert.deepEqual(on.notes, [{ type: 'caught_up', data: { from: 'snapshot' } }]);
  assert.equal(off.snapshots, 0);
  assert.deepEqual(off.notes, []);
  assert.equal(off.settled, 1);
  // A late answer changes nothing.
  on.answer(['late']);
  assert.deepEqual(on.applied, ['snapshot']);
});

test('without a tab channel, or when the replica needs a snapshot, or when asked to: a snapshot, no request', async () => {
  const single = follower({ channel: false });
  await single.f.catchUp();
  assert.equal(single.snapshots, 1);

  const needs = follower();
  needs.needSnapshot = true;
  await needs.f.catchUp();
  assert.deepEqual(needs.posts, []);
  assert.equal(needs.snapshots, 1);

  const reset = follower();
  await reset.f.catchUp(true);
  assert.deepEqual(reset.posts, []);
  assert.equal(reset.snapshots, 1);
});

test('a reset heard during a catch-up adds one more round, by snapshot', async () => {
  const t = follower();
  const done = t.f.catchUp();
  await flush();
  t.f.catchUp(true);
  t.answer(['c1']);
  await done;
  assert.deepEqual(t.applied, ['c1', 'snapshot']);
  assert.equal(t.posts.length, 1);
});

test('a tab that takes the stream during the catch-up stops it (and applies what it buffered)', async () => {
  const t = follower();
  const done = t.f.catchUp();
  await flush();
  t.f.frames(['f1'], OWN);
  t.owns = true;
  t.answer(['c1']);
  await done;
  assert.deepEqual(t.applied, ['f1'], 'the answer is not applied; the buffered frames are');
  assert.deepEqual(t.notes, []);
  assert.equal(t.settled, 1);
});

test('a snapshot that fails is reported; the buffered frames are still applied', async () => {
  const t = follower({
    channel: false,
    loadSnapshot: async () => {
      throw new SyncError('unavailable', 'down', { status: 503 });
    },
  });
  const run = t.f.catchUp();
  t.f.frames(['f1'], OWN);
  await run;
  assert.deepEqual(t.errors, [{ code: 'unavailable', message: 'down' }]);
  assert.deepEqual(t.applied, ['f1']);
  assert.equal(t.settled, 1);
});

test('frames of another subscription: followSubscription, and a snapshot when the engine then needs one', async () => {
  const t = follower();
  t.f.frames(['f1'], OWN);
  assert.deepEqual(t.followed, [], 'the own subscription changes nothing');
  assert.deepEqual(t.applied, ['f1']);

  t.needSnapshot = true; // what the engine says after following another subscription
  t.f.frames(['f2'], OTHER);
  assert.deepEqual(t.followed, [OTHER]);
  assert.deepEqual(t.handled, ['followed']);
  assert.deepEqual(t.applied, ['f1', 'f2']);
  assert.equal(t.tasks.length, 0, 'the catch-up starts in a later task');
  await sleep(5);
  assert.equal(t.tasks.length, 1);
  await Promise.all(t.tasks);
  assert.equal(t.snapshots, 1);
  assert.deepEqual(t.posts, [], 'by snapshot: the leader\'s frames cannot fill it');

  t.f.frames(['f3'], OTHER);
  assert.equal(t.followed.length, 1, 'followSubscription only when the upstream changes');
  t.f.frames(['f4'], undefined);
  assert.deepEqual(t.followed, [OTHER, null], 'a leader that does not say: unknown');
});

test('following another subscription as the stream owner, or with no snapshot needed, starts no catch-up', async () => {
  const t = follower();
  t.f.follow(OTHER);
  await sleep(5);
  assert.equal(t.tasks.length, 0);
  t.needSnapshot = true;
  t.owns = true;
  t.f.follow(OWN);
  await sleep(5);
  assert.deepEqual(t.followed, [OTHER, OWN]);
  assert.equal(t.tasks.length, 0);
});

test('a caughtUp answer of another subscription is followed before its frames apply', async () => {
  const t = follower();
  const done = t.f.catchUp();
  await flush();
  t.answer(['c1'], { sub: OTHER });
  await done;
  assert.deepEqual(t.followed, [OTHER]);
  assert.deepEqual(t.applied, ['c1']);
});
