// PendingGossip (runtime/pending-gossip.ts): the other tabs' pending writes, applied in one
// engine crossing per task; this tab's set re-sent (never twice empty); verdicts announced
// (rejected at once, applied later); the leader speaks for the slots of tabs that are gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist, sleep, until } from './helpers.mjs';

const { PendingGossip, SETTLED_DROP_DELAY_MS } = await import(dist('runtime/pending-gossip.js'));

const m = (mid, id = `d${mid}`) => ({ mid, op: 'insert', collection: 'bills', id, fields: { n: mid } });

function gossip({ owns = false, slots = [], pending = [] } = {}) {
  const t = { posts: [], foreign: [], handled: [], quiet: [], ticks: [], owns, slots, pending, closed: false, tasks: [] };
  t.engine = {
    foreign: (ops) => {
      t.foreign.push(ops);
      return { tag: 'foreign' };
    },
    tick: (now) => {
      t.ticks.push(now);
      return { tag: 'tick' };
    },
  };
  t.g = new PendingGossip({
    clientId: 'tab-1',
    post: (msg) => t.posts.push(msg),
    engine: () => t.engine,
    ownPending: () => t.pending,
    ownPendingCount: () => t.pending.length,
    ownsConnection: () => t.owns,
    orphanSlots: async () => t.slots,
    handle: (out) => t.handled.push(out.tag),
    handleQuiet: (out) => t.quiet.push(out.tag),
    isClosed: () => t.closed,
    background: (p) => t.tasks.push(p),
    now: () => 777,
  });
  return t;
}

test('several messages heard in one task become one engine.foreign call, ops in order', async () => {
  const t = gossip();
  t.g.heard({ t: 'pending', from: 'tab-2', client: 'tab-2', mutations: [m(1)] });
  t.g.heard({ t: 'pendingSet', from: 'tab-3', client: 'tab-3', mutations: [m(4), m(5)] });
  t.g.heard({ t: 'settled', from: 'tab-2', client: 'tab-2', mids: [1] });
  assert.equal(t.foreign.length, 0, 'not in the same task');
  await sleep(5);
  assert.deepEqual(t.foreign, [[
    { op: 'add', client: 'tab-2', mutations: [m(1)] },
    { op: 'replace', client: 'tab-3', mutations: [m(4), m(5)] },
    { op: 'drop', client: 'tab-2', mids: [1] },
  ]]);
  assert.deepEqual(t.handled, ['foreign'], 'handled (the views change)');

  t.g.heard({ t: 'pending', from: 'tab-2', client: 'tab-2', mutations: [m(2)] });
  await sleep(5);
  assert.equal(t.foreign.length, 2, 'a later task: a new crossing');
  assert.deepEqual(t.foreign[1], [{ op: 'add', client: 'tab-2', mutations: [m(2)] }]);
});

test('messages heard after close are not applied', async () => {
  const t = gossip();
  t.g.heard({ t: 'pending', from: 'tab-2', client: 'tab-2', mutations: [m(1)] });
  t.closed = true;
  await sleep(5);
  assert.equal(t.foreign.length, 0);
});

test('announce posts the new writes under this tab', () => {
  const t = gossip();
  t.g.announce([m(3)]);
  assert.deepEqual(t.posts, [{ t: 'pending', from: 'tab-1', client: 'tab-1', mutations: [m(3)] }]);
});

test('postSet sends the whole set; an empty set once (to clear the others\' copy), never twice in a row', () => {
  const t = gossip();
  t.g.postSet();
  assert.deepEqual(t.posts, [], 'empty from the start: nothing to clear');
  t.pending = [m(1), m(2)];
  t.g.postSet();
  t.g.postSet();
  assert.equal(t.posts.length, 2, 'a non-empty set is re-sent each time');
  assert.deepEqual(t.posts[0], { t: 'pendingSet', from: 'tab-1', client: 'tab-1', mutations: [m(1), m(2)] });
  t.pending = [];
  t.g.postSet();
  assert.equal(t.posts.length, 3);
  assert.deepEqual(t.posts[2].mutations, []);
  t.g.postSet();
  t.g.postSet();
  assert.equal(t.posts.length, 3, 'empty again: nothing more');
});

test('verdicts: rejected posted at once, applied only after SETTLED_DROP_DELAY_MS', async () => {
  const t = gossip();
  const start = Date.now();
  t.g.settled([1, 2], [3]);
  assert.deepEqual(t.posts, [{ t: 'settled', from: 'tab-1', client: 'tab-1', mids: [3] }]);
  await sleep(100);
  assert.equal(t.posts.length, 1, 'applied writes are not dropped from the other views yet');
  await until(() => t.posts.length === 2, SETTLED_DROP_DELAY_MS + 1000, 'the applied verdict');
  assert.ok(Date.now() - start >= SETTLED_DROP_DELAY_MS - 5);
  assert.deepEqual(t.posts[1], { t: 'settled', from: 'tab-1', client: 'tab-1', mids: [1, 2] });

  const none = gossip();
  none.g.settled([], []);
  assert.deepEqual(none.posts, []);
});

test('refresh as owner re-sends the orphan slots\' unsettled writes and shows them here; then ticks', async () => {
  const slots = [
    { clientId: 'gone-a', updatedAt: 0, outbox: { nextMid: 4, entries: [{ ...m(1), appliedSeq: 9 }, m(2), m(3)] } },
    { clientId: 'gone-b', updatedAt: 0, outbox: { nextMid: 2, entries: [{ ...m(1), appliedSeq: 4 }] } },
    { clientId: 'gone-c', updatedAt: 0, outbox: { nextMid: 6, entries: [m(5)] } },
  ];
  const t = gossip({ owns: true, slots, pending: [m(8)] });
  await t.g.refresh();
  assert.deepEqual(t.posts, [
    { t: 'pendingSet', from: 'tab-1', client: 'tab-1', mutations: [m(8)] },
    { t: 'pendingSet', from: 'tab-1', client: 'gone-a', mutations: [m(2), m(3)] },
    { t: 'pendingSet', from: 'tab-1', client: 'gone-c', mutations: [m(5)] },
  ], 'gone-b has nothing unsettled');
  assert.deepEqual(t.foreign, [
    [{ op: 'replace', client: 'gone-a', mutations: [m(2), m(3)] }],
    [{ op: 'replace', client: 'gone-c', mutations: [m(5)] }],
  ]);
  assert.deepEqual(t.quiet, ['foreign', 'foreign', 'tick'], 'quietly: a refresh does not wake the send loop');
  assert.deepEqual(t.ticks, [777]);
  assert.deepEqual(t.handled, []);
});

test('refresh as a follower sends only its own set and ticks; closed: nothing', async () => {
  const slots = [{ clientId: 'gone-a', updatedAt: 0, outbox: { nextMid: 3, entries: [m(2)] } }];
  const t = gossip({ owns: false, slots, pending: [m(8)] });
  await t.g.refresh();
  assert.deepEqual(t.posts.map((p) => p.client), ['tab-1']);
  assert.deepEqual(t.foreign, []);
  assert.deepEqual(t.ticks, [777]);

  const c = gossip({ owns: true, slots });
  c.closed = true;
  await c.g.refresh();
  assert.deepEqual([c.posts, c.foreign, c.ticks], [[], [], []]);
});

test('opsForSlots: the unsettled writes of every slot but this tab\'s, empty ones left out', () => {
  const slots = [
    { clientId: 'tab-1', updatedAt: 0, outbox: { nextMid: 2, entries: [m(1)] } },
    { clientId: 'tab-2', updatedAt: 0, outbox: { nextMid: 3, entries: [{ ...m(1), appliedSeq: 1 }, m(2)] } },
    { clientId: 'tab-3', updatedAt: 0, outbox: { nextMid: 2, entries: [{ ...m(1), appliedSeq: 1 }] } },
  ];
  assert.deepEqual(PendingGossip.opsForSlots(slots, 'tab-1'), [{ op: 'replace', client: 'tab-2', mutations: [m(2)] }]);
});
