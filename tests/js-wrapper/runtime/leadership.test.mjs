// Leadership (runtime/leadership.ts): the holder of the leader lock leads and beats; a follower
// that hears nothing for leaderTimeoutMs steals the lock (guarded); a leader that hears another
// asks the lock manager and steps down. Fake lock manager; the part's real 1 s timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist, flush, sleep } from './helpers.mjs';

const { Leadership, LEADER_BEAT_MS } = await import(dist('runtime/leadership.js'));

/** Lock requests the test grants or takes away by hand. */
function fakeLocks() {
  const f = {
    waits: [],
    steals: [],
    guardFree: true,
    guards: [],
    held: new Set(['leader']),
    holderId: 'doc-me',
    holderAsks: 0,
    request(kind, name, onAcquired, onLost) {
      const r = { kind, name, onAcquired, onLost, released: false, release() { r.released = true; } };
      (kind === 'wait' ? f.waits : f.steals).push(r);
      return r;
    },
    wait: (name, a, l) => f.request('wait', name, a, l),
    steal: (name, a, l) => f.request('steal', name, a, l),
    async tryAcquire(name) {
      if (!f.guardFree) return null;
      const g = { name, released: false, release() { g.released = true; } };
      f.guards.push(g);
      return g;
    },
    heldNames: async () => new Set(f.held),
    async holder() {
      f.holderAsks++;
      return f.holderId;
    },
  };
  return f;
}

function leadership({ timeoutMs = 50, hidden = false, stored = () => 42, locks = fakeLocks() } = {}) {
  const t = { locks, posts: [], notes: [], leads: 0, loses: 0, closed: false, tasks: [], clock: 0 };
  t.l = new Leadership({
    locks,
    lockName: (k) => k,
    clientId: 'tab-1',
    post: (m) => t.posts.push(m),
    storedCursor: stored,
    leaderTimeoutMs: timeoutMs,
    isHidden: () => hidden,
    isClosed: () => t.closed,
    onLead: () => t.leads++,
    onLose: () => t.loses++,
    note: (type, data) => t.notes.push({ type, data }),
    background: (p) => t.tasks.push(p),
    now: () => t.clock,
  });
  t.settle = async () => {
    await Promise.all(t.tasks);
    await flush();
  };
  t.end = () => {
    t.closed = true;
    t.l.dispose();
  };
  return t;
}

test('acquiring the lock leads: onLead, a leader message, then a beat a second with the stored cursor', async () => {
  let stored = 5;
  const t = leadership({ stored: () => stored });
  t.l.start();
  assert.equal(t.locks.waits.length, 1);
  assert.equal(t.locks.waits[0].name, 'leader');
  assert.equal(t.l.isLeader, false);
  assert.equal(t.leads, 0);
  t.locks.waits[0].onAcquired();
  assert.equal(t.l.isLeader, true);
  assert.equal(t.leads, 1);
  assert.deepEqual(t.posts, [{ t: 'leader', from: 'tab-1' }]);
  stored = 9;
  await sleep(LEADER_BEAT_MS + 80);
  assert.deepEqual(t.posts.slice(1), [{ t: 'beat', from: 'tab-1', stored: 9 }]);
  t.end();
  assert.equal(t.locks.waits[0].released, true, 'dispose releases the lock');
  await sleep(LEADER_BEAT_MS + 50);
  assert.equal(t.posts.length, 2, 'no beats after dispose');
});

test('a lock granted after close is released at once', () => {
  const t = leadership();
  t.l.start();
  t.closed = true;
  t.locks.waits[0].onAcquired();
  assert.equal(t.l.isLeader, false);
  assert.equal(t.leads, 0);
  assert.equal(t.locks.waits[0].released, true);
  t.l.dispose();
});

test('a silent leader is stolen only with the steal guard, only while the leader lock is held, and only when silent long enough', async () => {
  // Four followers at once (each has its own 1 s watch timer): one test second for all.
  const steals = leadership();
  const noGuard = leadership();
  noGuard.locks.guardFree = false;
  const nobodyLeads = leadership();
  nobodyLeads.locks.held = new Set(['steal']);
  const heardRecently = leadership({ timeoutMs: 5000 });
  const hidden = leadership({ timeoutMs: 200, hidden: true }); // 15 x 200 = 3000 ms
  const all = [steals, noGuard, nobodyLeads, heardRecently, hidden];
  for (const t of all) {
    t.l.start();
    t.clock = 1000; // the leader has been silent 1000 ms
  }
  heardRecently.l.heard({ t: 'beat', from: 'other', stored: 1 });
  await sleep(LEADER_BEAT_MS + 100);
  for (const t of all) await t.settle();

  assert.equal(steals.locks.steals.length, 1);
  assert.equal(steals.locks.steals[0].name, 'leader');
  assert.equal(steals.locks.waits[0].released, true, 'it left the line');
  assert.deepEqual(steals.notes, [{ type: 'leader_stolen', data: { clientId: 'tab-1', silentMs: 1000 } }]);
  assert.equal(steals.locks.guards.length, 1);
  assert.equal(steals.locks.guards[0].released, false, 'the guard is held a moment');
  steals.locks.steals[0].onAcquired();
  assert.equal(steals.l.isLeader, true);

  assert.equal(noGuard.locks.steals.length, 0, 'another tab is stealing');
  assert.equal(nobodyLeads.locks.steals.length, 0, 'nobody leads: the line moves by itself');
  assert.equal(nobodyLeads.locks.guards.length, 1);
  assert.equal(heardRecently.locks.steals.length, 0);
  assert.equal(heardRecently.locks.guards.length, 0, 'not even the guard is asked');
  assert.equal(hidden.locks.steals.length, 0, 'a hidden tab waits 15 x the timeout');
  for (const t of [noGuard, nobodyLeads, heardRecently, hidden]) assert.deepEqual(t.notes, []);

  await sleep(LEADER_BEAT_MS);
  assert.equal(steals.locks.guards[0].released, true, 'the guard is released after a beat');
  for (const t of all) t.end();
});

test('losing the lock calls onLose, stops beating and queues again; a stale lock losing changes nothing', async () => {
  const t = leadership();
  t.l.start();
  t.locks.waits[0].onAcquired();
  t.locks.waits[0].onLost();
  assert.equal(t.l.isLeader, false);
  assert.equal(t.loses, 1);
  assert.equal(t.locks.waits.length, 2, 'back in line');
  t.locks.waits[0].onLost();
  assert.equal(t.loses, 1, 'the old request no longer counts');
  assert.equal(t.locks.waits.length, 2);
  // A lock lost while following (never granted): no onLose.
  t.locks.waits[1].onLost();
  assert.equal(t.loses, 1);
  const posted = t.posts.length;
  await sleep(LEADER_BEAT_MS + 80);
  assert.equal(t.posts.filter((m) => m.t === 'beat').length, 0, 'no beats after the loss');
  assert.equal(t.posts.length, posted);
  t.end();
});

test("a leader that hears another tab's beat asks holder() and steps down when another holds the lock", async () => {
  const t = leadership();
  t.l.start();
  t.locks.waits[0].onAcquired();
  await t.settle(); // holder() at acquire: 'doc-me'
  const asks = t.locks.holderAsks;

  t.l.heard({ t: 'beat', from: 'other', stored: 3 });
  await t.settle();
  assert.equal(t.locks.holderAsks, asks + 1);
  assert.equal(t.l.isLeader, true, 'still this tab\'s lock');

  t.l.heard({ t: 'frames', from: 'other', frames: [] });
  await t.settle();
  assert.equal(t.locks.holderAsks, asks + 1, 'only beat and leader messages are checked');

  t.locks.holderId = 'doc-other';
  t.l.heard({ t: 'leader', from: 'other' });
  await t.settle();
  assert.equal(t.l.isLeader, false);
  assert.equal(t.loses, 1);
  assert.equal(t.locks.waits.length, 2, 'queues again');
  t.end();
});

test('a follower hearing beats does not ask the lock manager', async () => {
  const t = leadership();
  t.l.start();
  t.l.heard({ t: 'beat', from: 'other', stored: 3 });
  await t.settle();
  assert.equal(t.locks.holderAsks, 0);
  t.end();
});
