// Mutations over HTTP: exactly-once by mid, shallow patches, conflicts, unique constraints
// (double booking, also racing), client id binding and write rules.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { api, makeToken, mutate, snapshotAll, startServer } from './helpers.mjs';

// `n` characters that do not compress (base64 of a sha256 chain), the same every run.
function incompressible(n, seed = 'syncline') {
  let out = '';
  let h = Buffer.from(seed);
  while (out.length < n) {
    h = createHash('sha256').update(h).digest();
    out += h.toString('base64').replace(/[+/=]/g, '');
  }
  return out.slice(0, n);
}

describe('mutations', () => {
  let server;
  const admin = makeToken('admin-1', 'admin');
  const alice = makeToken('alice', 'customer');
  const bob = makeToken('bob', 'customer');

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.cleanup();
  });

  test('batch results follow docs/protocol.md: applied, rejected conflict, duplicate', async () => {
    const r = await mutate(server, admin, 'admin-client-a', [
      { mid: 17, op: 'insert', collection: 'bills', id: 'bill-1', fields: { customer_id: 'alice', amount: 10, status: 'open' } },
      { mid: 18, op: 'update', collection: 'bills', id: 'bill-1', fields: { status: 'paid' }, base_version: 123 },
      { mid: 19, op: 'update', collection: 'bills', id: 'bill-1', fields: { note: 'x', amount: null } },
    ]);
    assert.equal(r.status, 200, r.text);
    const [a, b, c] = r.json.results;
    assert.deepEqual(a, { mid: 17, status: 'applied', seq: a.seq });
    assert.equal(b.status, 'rejected');
    assert.equal(b.code, 'conflict');
    assert.equal(typeof b.message, 'string');
    assert.equal(c.status, 'applied');
    assert.equal(c.seq, a.seq + 1);
    assert.equal(r.json.seq, c.seq);
    const snap = await snapshotAll(server, admin, { collections: 'bills' });
    const doc = snap.docs.find((d) => d.id === 'bill-1');
    // shallow patch: null removed amount, status untouched by the rejected update
    assert.deepEqual(doc.fields, { customer_id: 'alice', status: 'open', note: 'x' });
    assert.equal(doc.version, c.seq);
  });

  test('a resent batch is answered duplicate with the original outcome and applied once', async () => {
    const batch = [
      { mid: 1, op: 'insert', collection: 'products', id: 'p-dup', fields: { name: 'Tea', stock: 1 } },
      { mid: 2, op: 'update', collection: 'products', id: 'p-dup', fields: { stock: 2 } },
      { mid: 3, op: 'update', collection: 'products', id: 'p-dup', fields: { stock: 9 }, base_version: 1 },
    ];
    const first = await mutate(server, admin, 'admin-client-dup', batch);
    assert.equal(first.status, 200);
    assert.deepEqual(first.json.results.map((r) => r.status), ['applied', 'applied', 'rejected']);
    const health1 = await api(server, 'GET', '/v1/health');
    const again = await mutate(server, admin, 'admin-client-dup', batch);
    assert.equal(again.status, 200);
    assert.deepEqual(again.json.results.map((r) => r.status), ['duplicate', 'duplicate', 'duplicate']);
    assert.equal(again.json.results[0].seq, first.json.results[0].seq);
    assert.equal(again.json.results[1].seq, first.json.results[1].seq);
    assert.equal(again.json.results[2].code, 'conflict', 'duplicate of a rejection keeps its code');
    const health2 = await api(server, 'GET', '/v1/health');
    assert.equal(health2.json.seq, health1.json.seq, 'nothing was committed by the resend');
    // A mixed resend: old mids are duplicates, the new one is applied.
    const mixed = await mutate(server, admin, 'admin-client-dup', [
      batch[1],
      { mid: 4, op: 'update', collection: 'products', id: 'p-dup', fields: { stock: 3 } },
    ]);
    assert.deepEqual(mixed.json.results.map((r) => r.status), ['duplicate', 'applied']);
    const snap = await snapshotAll(server, admin, { collections: 'products' });
    const doc = snap.docs.find((d) => d.id === 'p-dup');
    assert.equal(doc.fields.stock, 3);
    assert.equal(doc.version, mixed.json.results[1].seq);
  });

  test('a double booking is rejected with constraint', async () => {
    const slot = { hall: 'A', date: '2025-05-01', slot: '10:00' };
    const r1 = await mutate(server, alice, 'alice-tab-1', [
      { mid: 1, op: 'insert', collection: 'bookings', id: 'bk-1', fields: { ...slot, customer_id: 'alice' } },
    ]);
    assert.equal(r1.json.results[0].status, 'applied', r1.text);
    const r2 = await mutate(server, bob, 'bob-tab-1', [
      { mid: 1, op: 'insert', collection: 'bookings', id: 'bk-2', fields: { ...slot, customer_id: 'bob' } },
      { mid: 2, op: 'insert', collection: 'bookings', id: 'bk-3', fields: { ...slot, slot: '11:00', customer_id: 'bob' } },
    ]);
    assert.equal(r2.status, 200);
    assert.equal(r2.json.results[0].status, 'rejected');
    assert.equal(r2.json.results[0].code, 'constraint');
    assert.equal(r2.json.results[1].status, 'applied', 'a rejected mutation does not abort the rest of the batch');
    // Moving a booking onto a taken slot is rejected too; freeing the slot makes it available.
    const mv = await mutate(server, admin, 'admin-bk', [
      { mid: 1, op: 'update', collection: 'bookings', id: 'bk-3', fields: { slot: '10:00' } },
      { mid: 2, op: 'delete', collection: 'bookings', id: 'bk-1' },
      { mid: 3, op: 'update', collection: 'bookings', id: 'bk-3', fields: { slot: '10:00' } },
    ]);
    assert.deepEqual(mv.json.results.map((r) => r.code || r.status), ['constraint', 'applied', 'applied']);
  });

  test('two clients racing for one slot: exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const slot = { hall: 'R', date: '2025-06-01', slot: `s${round}` };
      const contenders = ['c1', 'c2', 'c3', 'c4'].map((who) =>
        mutate(server, makeToken(`racer-${who}`, 'customer'), `racer-${who}-${round}`, [
          { mid: 1, op: 'insert', collection: 'bookings', id: `race-${round}-${who}`, fields: { ...slot, customer_id: `racer-${who}` } },
        ]),
      );
      const results = (await Promise.all(contenders)).map((r) => r.json.results[0]);
      assert.equal(results.filter((r) => r.status === 'applied').length, 1, JSON.stringify(results));
      assert.equal(results.filter((r) => r.code === 'constraint').length, 3);
    }
    const snap = await snapshotAll(server, admin, { collections: 'bookings', where: 'hall=eq.R' });
    assert.equal(snap.docs.length, 5);
  });

  test('a client id is bound to the subject that first used it', async () => {
    const r1 = await mutate(server, alice, 'shared-client', [
      { mid: 1, op: 'insert', collection: 'bookings', id: 'bind-1', fields: { hall: 'B', date: 'd', slot: '1', customer_id: 'alice' } },
    ]);
    assert.equal(r1.json.results[0].status, 'applied');
    // Bob presents Alice's client id: refused, and he learns nothing about her outcomes.
    const r2 = await mutate(server, bob, 'shared-client', [
      { mid: 1, op: 'insert', collection: 'bookings', id: 'bind-2', fields: { hall: 'B', date: 'd', slot: '2', customer_id: 'bob' } },
    ]);
    assert.equal(r2.status, 403);
    assert.equal(r2.json.error.code, 'forbidden');
    assert.equal(r2.json.error.field, 'client');
    assert.equal(r2.json.results, undefined);
    const snap = await snapshotAll(server, admin, { collections: 'bookings', where: 'hall=eq.B' });
    assert.deepEqual(snap.docs.map((d) => d.id), ['bind-1']);
  });

  test('a subject holding U+0000 is refused (database text cannot hold it), never cut into another subject', async () => {
    const owner = makeToken('carol\u0000tab', 'admin');
    const first = await mutate(server, owner, 'nul-subject-client', [{ mid: 1, op: 'insert', collection: 'products', id: 'nul-sub-1', fields: {} }]);
    assert.equal(first.status, 401, first.text);
    assert.match(first.json.error.message, /U\+0000/);
    // The subject before the U+0000 is a subject of its own and may take the client id.
    const other = await mutate(server, makeToken('carol', 'admin'), 'nul-subject-client', [{ mid: 1, op: 'insert', collection: 'products', id: 'nul-sub-2', fields: {} }]);
    assert.equal(other.status, 200, `carol: ${other.text}`);
  });

  test('write rules: role without write access gets 403, row rules reject per mutation', async () => {
    const r = await mutate(server, alice, 'alice-w', [
      { mid: 1, op: 'insert', collection: 'products', id: 'p-evil', fields: { name: 'free' } },
    ]);
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'forbidden');
    assert.equal(r.json.error.field, 'mutations[0].collection');
    // Alice may insert bookings only for herself.
    const r2 = await mutate(server, alice, 'alice-w', [
      { mid: 2, op: 'insert', collection: 'bookings', id: 'bk-forged', fields: { hall: 'Z', date: 'd', slot: '1', customer_id: 'bob' } },
      { mid: 3, op: 'insert', collection: 'bookings', id: 'bk-own', fields: { hall: 'Z', date: 'd', slot: '2', customer_id: 'alice' } },
    ]);
    assert.equal(r2.status, 200);
    assert.equal(r2.json.results[0].status, 'rejected');
    assert.equal(r2.json.results[0].code, 'forbidden');
    assert.equal(r2.json.results[1].status, 'applied');
    // Customers may not update bookings at all.
    const r3 = await mutate(server, alice, 'alice-w', [
      { mid: 4, op: 'update', collection: 'bookings', id: 'bk-own', fields: { slot: '3' } },
    ]);
    assert.equal(r3.status, 403);
  });

  test('custom events: publish returns a seq in the shared seq space', async () => {
    const h = await api(server, 'GET', '/v1/health');
    const r = await api(server, 'POST', '/v1/events', {
      token: admin,
      body: { name: 'order:stage_change', collection: 'orders', id: 'o-1', data: { stage: 'packed' } },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.seq, h.json.seq + 1);
    const bad = await api(server, 'POST', '/v1/events', { token: admin, body: { data: {} } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'invalid_request');
    // A customer cannot publish about a document it cannot read.
    const forbidden = await api(server, 'POST', '/v1/events', {
      token: alice,
      body: { name: 'poke', collection: 'bills', id: 'bill-1', data: {} },
    });
    assert.equal(forbidden.status, 200, 'bill-1 belongs to alice');
    const forbidden2 = await api(server, 'POST', '/v1/events', {
      token: bob,
      body: { name: 'poke', collection: 'bills', id: 'bill-1', data: {} },
    });
    assert.equal(forbidden2.status, 403);
  });

  // Values any JSON document may hold are stored and read back as written, whatever the
  // backend: the config above has read rules on customer_id (a scope index) and a unique key
  // on bookings.
  test('a string holding U+0000 is stored and read back as written', async () => {
    const r = await mutate(server, admin, 'values-nul', [
      { mid: 1, op: 'insert', collection: 'products', id: 'p-nul', fields: { name: 'a\u0000b' } },
      { mid: 2, op: 'insert', collection: 'orders', id: 'o-nul', fields: { customer_id: 'al\u0000ice' } },
    ]);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.results.map((x) => x.status), ['applied', 'applied']);
    const snap = await snapshotAll(server, admin, { collections: 'products,orders' });
    assert.equal(snap.docs.find((d) => d.id === 'p-nul')?.fields.name, 'a\u0000b');
    assert.equal(snap.docs.find((d) => d.id === 'o-nul')?.fields.customer_id, 'al\u0000ice');
  });

  test('a read-rule field (customer_id) of 8,000 characters is stored and read back', async () => {
    const long = incompressible(8000, 'customer');
    const r = await mutate(server, admin, 'values-long-scope', [
      { mid: 1, op: 'insert', collection: 'orders', id: 'o-long', fields: { customer_id: long } },
    ]);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.results[0].status, 'applied');
    const snap = await snapshotAll(server, admin, { collections: 'orders' });
    assert.equal(snap.docs.find((d) => d.id === 'o-long')?.fields.customer_id, long);
  });

  test('a unique key of 8,000 characters holds: the second booking of that slot is rejected with constraint', async () => {
    const hall = incompressible(8000, 'hall');
    const r = await mutate(server, admin, 'values-long-unique', [
      { mid: 1, op: 'insert', collection: 'bookings', id: 'bk-long-1', fields: { hall, date: 'd', slot: '1', customer_id: 'alice' } },
      { mid: 2, op: 'insert', collection: 'bookings', id: 'bk-long-2', fields: { hall, date: 'd', slot: '1', customer_id: 'bob' } },
    ]);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.results.map((x) => x.code || x.status), ['applied', 'constraint']);
  });
});
