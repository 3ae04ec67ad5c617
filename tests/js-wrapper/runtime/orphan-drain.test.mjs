// drainOrphans (runtime/orphan-drain.ts): the leader sends the outboxes of tabs that are gone,
// each slot under its lock, re-read once the lock is held, rewritten after every answered batch.
// Real MemoryPersistence (wrapped to log writes), fake locks and drain engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist } from './helpers.mjs';

const { drainOrphans, orphanSlots } = await import(dist('runtime/orphan-drain.js'));
const { MemoryPersistence } = await import(dist('adapters/persistence.js'));

const m = (mid) => ({ mid, op: 'insert', collection: 'bills', id: `d${mid}`, fields: {} });
const ob = (mids) => ({ nextMid: Math.max(0, ...mids) + 1, entries: mids.map(m) });

/** Takes up to 2 entries a batch; an answer removes them. */
function drainEngine(slot, log) {
  let entries = [...slot.outbox.entries];
  let inFlight = null;
  const e = {
    clientId: slot.clientId,
    ready: false,
    disposed: false,
    setTransportReady: (r) => (e.ready = r),
    takeBatch() {
      if (!e.ready || inFlight || !entries.length) return null;
      inFlight = entries.slice(0, 2);
      return JSON.stringify({ client: slot.clientId, mutations: inFlight });
    },
    receiveFrames(frames) {
      log.push(['answer', slot.clientId, frames]);
      const done = new Set(inFlight.map((x) => x.mid));
      entries = entries.filter((x) => !done.has(x.mid));
      inFlight = null;
    },
    takePersistence: () => ({ outbox: { nextMid: slot.outbox.nextMid, entries } }),
    dispose() {
      e.disposed = true;
    },
  };
  return e;
}

async function setup({ held = [], busy = [], may = () => true, post } = {}) {
  const mem = new MemoryPersistence();
  await mem.writeOutbox('tab-1', ob([1, 2])); // this tab's own
  await mem.writeOutbox('gone-a', ob([1, 2, 3]));
  await mem.writeOutbox('alive-b', ob([7]));
  await mem.writeOutbox('gone-empty', ob([]));
  const log = [];
  const writes = [];
  const persistence = Object.create(mem);
  persistence.writeOutbox = async (id, o) => {
    writes.push([id, o.entries.map((x) => x.mid)]);
    return mem.writeOutbox(id, o);
  };
  const t = { mem, log, writes, engines: [], locks: [], notes: [], posts: [] };
  t.deps = {
    persistence,
    clientId: 'tab-1',
    slotLockName: (id) => `slot:${id}`,
    heldNames: async () => new Set(['slot:tab-1', 'slot:alive-b', ...held.map((id) => `slot:${id}`)]),
    tryAcquire: async (name) => {
      if (busy.includes(name.slice(5))) return null;
      const l = { name, released: false, release() { l.released = true; } };
      t.locks.push(l);
      return l;
    },
    engineFor: (slot) => {
      const e = drainEngine(slot, log);
      t.engines.push(e);
      return e;
    },
    post: async (body) => {
      t.posts.push(body);
      if (post) return post(body);
      return JSON.stringify({ type: 'results', seq: 1, results: JSON.parse(body).mutations.map((x) => ({ mid: x.mid, status: 'applied' })) });
    },
    mayDrain: may,
    note: (type, data) => t.notes.push({ type, data }),
  };
  return t;
}

const posted = (t) => t.posts.map((b) => [JSON.parse(b).client, JSON.parse(b).mutations.map((x) => x.mid)]);

test('orphanSlots lists the slots whose lock is free, never this tab\'s', async () => {
  const t = await setup();
  const ids = (await orphanSlots(t.deps)).map((s) => s.clientId).sort();
  assert.deepEqual(ids, ['gone-a', 'gone-empty']);
});

test('drains a free slot under its own client id, rewriting the slot after each batch, then releases the lock', async () => {
  const t = await setup();
  await drainOrphans(t.deps);
  assert.deepEqual(posted(t), [['gone-a', [1, 2]], ['gone-a', [3]]]);
  assert.deepEqual(t.writes, [['gone-a', [3]], ['gone-a', []]], 'rewritten after every answered batch');
  assert.deepEqual((await t.mem.readOutbox('gone-a')).outbox.entries, []);
  assert.deepEqual((await t.mem.readOutbox('alive-b')).outbox.entries.map((x) => x.mid), [7], 'a held slot is left alone');
  assert.deepEqual((await t.mem.readOutbox('tab-1')).outbox.entries.map((x) => x.mid), [1, 2], 'this tab\'s own is left alone');
  assert.deepEqual(t.locks.map((l) => [l.name, l.released]), [['slot:gone-a', true]], 'no lock asked for an empty slot');
  assert.equal(t.engines.length, 1);
  assert.equal(t.engines[0].disposed, true);
  assert.deepEqual(t.notes, [{ type: 'adopted_outbox', data: { clientId: 'gone-a' } }]);
});

test('a slot whose lock another tab takes first is skipped', async () => {
  const t = await setup({ busy: ['gone-a'] });
  await drainOrphans(t.deps);
  assert.deepEqual(t.posts, []);
  assert.deepEqual(t.notes, []);
  assert.equal((await t.mem.readOutbox('gone-a')).outbox.entries.length, 3);
});

test('the slot is read again once its lock is held: the fresh copy is drained, not the listed one', async () => {
  const t = await setup();
  const tryAcquire = t.deps.tryAcquire;
  t.deps.tryAcquire = async (name) => {
    // The tab came back and sent mid 1 meanwhile.
    await t.mem.writeOutbox('gone-a', { nextMid: 4, entries: [m(2), m(3)] });
    return tryAcquire(name);
  };
  await drainOrphans(t.deps);
  assert.deepEqual(posted(t), [['gone-a', [2, 3]]]);
});

test('a failed post releases the lock, disposes the engine and leaves the slot as last written', async () => {
  let n = 0;
  const t = await setup({
    post: (body) => {
      if (++n === 2) throw new Error('offline');
      return JSON.stringify({ type: 'results', seq: 1, results: JSON.parse(body).mutations.map((x) => ({ mid: x.mid, status: 'applied' })) });
    },
  });
  await drainOrphans(t.deps);
  assert.equal(t.posts.length, 2);
  assert.deepEqual((await t.mem.readOutbox('gone-a')).outbox.entries.map((x) => x.mid), [3], 'the first batch is not sent again');
  assert.equal(t.locks[0].released, true);
  assert.equal(t.engines[0].disposed, true);
  assert.deepEqual(t.notes, []);
});

test('nothing is drained when the tab may not drain, or stops being allowed to', async () => {
  const t = await setup({ may: () => false });
  await drainOrphans(t.deps);
  assert.deepEqual([t.posts, t.locks], [[], []]);

  let asks = 0;
  const u = await setup({ may: () => ++asks === 1 }); // leadership lost after the listing
  await drainOrphans(u.deps);
  assert.ok(asks >= 2);
  assert.deepEqual([u.posts, u.locks], [[], []]);
});
