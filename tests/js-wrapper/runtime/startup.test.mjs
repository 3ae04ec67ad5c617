// claimSlot and openPersistence (runtime/startup.ts): a tab takes the outbox slot of a tab that
// is gone (fullest first, then newest), reads it again once its lock is held, and leaves slots
// whose lock another tab holds. Real MemoryPersistence, fake locks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist } from './helpers.mjs';

const { claimSlot, openPersistence, EMPTY_HISTORY } = await import(dist('runtime/startup.js'));
const { MemoryPersistence } = await import(dist('adapters/persistence.js'));

const m = (mid) => ({ mid, op: 'insert', collection: 'bills', id: `d${mid}`, fields: {} });
const ob = (mids) => ({ nextMid: Math.max(0, ...mids) + 1, entries: mids.map(m) });
const slot = (clientId, mids, updatedAt) => ({ clientId, outbox: ob(mids), updatedAt });

function locks(held) {
  const tried = [];
  return {
    tried,
    tryLock: async (id) => {
      tried.push(id);
      return held.has(id) ? null : { id, release() {} };
    },
  };
}

test('the fullest free slot is claimed first, then the newest; held slots are left alone', async () => {
  const p = new MemoryPersistence();
  const slots = [slot('empty-new', [], 9), slot('two', [1, 2], 1), slot('three-held', [1, 2, 3], 5), slot('two-newer', [4, 5], 3)];
  const l = locks(new Set(['three-held']));
  const claimed = await claimSlot(p, slots, l.tryLock);
  assert.deepEqual(l.tried, ['three-held', 'two-newer'], 'fullest first, newest among equals, stops at the first free');
  assert.equal(claimed.slot.clientId, 'two-newer');
  assert.equal(claimed.lock.id, 'two-newer');
});

test('the claimed slot is read again under its lock: a newer record wins over the copy loaded before', async () => {
  const p = new MemoryPersistence();
  await p.writeOutbox('gone', ob([1, 2, 3, 4]));
  const stale = slot('gone', [1, 2], 0);
  const claimed = await claimSlot(p, [stale], locks(new Set()).tryLock);
  assert.equal(claimed.slot.outbox.nextMid, 5, 'a stale next mid would reuse mids the server has seen');
  assert.equal(claimed.slot.outbox.entries.length, 4);
});

test('no free slot: null', async () => {
  const p = new MemoryPersistence();
  assert.equal(await claimSlot(p, [slot('a', [1], 0)], locks(new Set(['a'])).tryLock), null);
  assert.equal(await claimSlot(p, [], locks(new Set()).tryLock), null);
});

test('openPersistence falls back to memory where the browser storage is missing (Node)', () => {
  assert.equal(openPersistence('indexeddb', 'db', () => {}, () => {}).kind, 'memory');
  assert.equal(openPersistence('localstorage', 'db', () => {}, () => {}).kind, 'memory');
  assert.equal(openPersistence(undefined, 'db', () => {}, () => {}).kind, 'memory');
  assert.deepEqual(EMPTY_HISTORY(7), { version: 1, capacity: 7, total: 0, counts: {}, entries: [] });
});
