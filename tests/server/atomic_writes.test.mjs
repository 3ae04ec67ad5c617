// The real server's field operations (increment with bounds, serverTime), conditions (`if`) and
// atomic groups, under concurrency and across kill -9. Each describe starts its own syncline-server
// on loopback with a temporary database.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { api, makeToken, mutate, snapshotAll, SseClient, sleep, startServer } from './helpers.mjs';

const admin = makeToken('admin', 'admin');

async function doc(server, collection, id) {
  const snap = await snapshotAll(server, admin, { collections: collection });
  return snap.docs.find((d) => d.id === id);
}

describe('field operations and conditions', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.cleanup();
  });

  test('20 clients x 50 concurrent increment(-1, min 0) on stock 500: exactly 500 applied, stock 0, the rest constraint', { timeout: 120000 }, async () => {
    const r0 = await mutate(server, admin, 'seed-stock', [{ mid: 1, op: 'insert', collection: 'products', id: 'p-stock', fields: { name: 'Widget', stock: 500 } }]);
    assert.equal(r0.json.results[0].status, 'applied');
    const counts = { applied: 0, rejected: 0, other: 0 };
    const codes = new Map();
    await Promise.all(
      Array.from({ length: 20 }, async (_, c) => {
        // Each client sends its 50 decrements as 50 requests in flight at once, so the writer
        // sees them interleaved with the other clients'.
        await Promise.all(
          Array.from({ length: 50 }, async (_, k) => {
            const r = await mutate(server, admin, `shop-${c}-${k}`, [
              { mid: 1, op: 'update', collection: 'products', id: 'p-stock', fields: {}, ops: { stock: { increment: -1, min: 0 } } },
            ]);
            assert.equal(r.status, 200, r.text);
            const res = r.json.results[0];
            if (res.status === 'applied') counts.applied++;
            else if (res.status === 'rejected') {
              counts.rejected++;
              codes.set(res.code, (codes.get(res.code) ?? 0) + 1);
            } else counts.other++;
          }),
        );
      }),
    );
    const d = await doc(server, 'products', 'p-stock');
    assert.equal(d.fields.stock, 0, 'stock ends at exactly 0');
    assert.equal(counts.applied, 500, 'exactly 500 decrements applied');
    assert.equal(counts.rejected, 500);
    assert.deepEqual([...codes.entries()], [['constraint', 500]], 'every refusal is a constraint');
    assert.equal(counts.other, 0);
  });

  test('increments from one client in one batch count each; serverTime is the commit time; ops on insert', async () => {
    const t0 = Date.now();
    const r = await mutate(server, admin, 'ops-client', [
      { mid: 1, op: 'insert', collection: 'products', id: 'p-ops', fields: { name: 'x' }, ops: { stock: { increment: 5 }, created_at: { serverTime: true } } },
      { mid: 2, op: 'update', collection: 'products', id: 'p-ops', fields: {}, ops: { stock: { increment: 2.5 } } },
      { mid: 3, op: 'update', collection: 'products', id: 'p-ops', fields: {}, ops: { stock: { increment: -10, min: 0 } } },
      { mid: 4, op: 'update', collection: 'products', id: 'p-ops', fields: {}, ops: { name: { increment: 1 } } },
    ]);
    const t1 = Date.now();
    assert.equal(r.status, 200, r.text);
    const [a, b, c, e] = r.json.results;
    assert.equal(a.status, 'applied');
    assert.equal(b.status, 'applied');
    assert.equal(c.status, 'rejected');
    assert.equal(c.code, 'constraint');
    assert.match(c.message, /stock/);
    assert.equal(e.status, 'rejected');
    assert.equal(e.code, 'conflict', 'incrementing a string is a conflict');
    const d = await doc(server, 'products', 'p-ops');
    assert.equal(d.fields.stock, 7.5);
    assert.ok(d.fields.created_at >= t0 - 5 && d.fields.created_at <= t1 + 5, `serverTime ${d.fields.created_at} in [${t0}, ${t1}]`);
  });

  test('a failed condition rejects with conflict and the current document; a holding one applies', async () => {
    await mutate(server, admin, 'bill-seed', [{ mid: 1, op: 'insert', collection: 'bills', id: 'bill-c', fields: { customer_id: 'cust-1', amount: 40, status: 'unpaid' } }]);
    const ok = await mutate(server, admin, 'bill-w1', [{ mid: 1, op: 'update', collection: 'bills', id: 'bill-c', fields: { status: 'paid' }, if: 'status=eq.unpaid' }]);
    assert.equal(ok.json.results[0].status, 'applied', ok.text);
    const again = await mutate(server, admin, 'bill-w2', [{ mid: 1, op: 'update', collection: 'bills', id: 'bill-c', fields: { status: 'paid', note: 'twice' }, if: 'status=eq.unpaid' }]);
    const res = again.json.results[0];
    assert.equal(res.status, 'rejected');
    assert.equal(res.code, 'conflict');
    assert.deepEqual(res.current, { version: ok.json.results[0].seq, fields: { customer_id: 'cust-1', amount: 40, status: 'paid' } });
    const gone = await mutate(server, admin, 'bill-w3', [{ mid: 1, op: 'delete', collection: 'bills', id: 'no-such-bill', if: 'status=eq.unpaid' }]);
    assert.equal(gone.json.results[0].code, 'conflict');
    assert.equal(gone.json.results[0].current, null, 'an absent document is current: null');
    assert.equal((await doc(server, 'bills', 'bill-c')).fields.note, undefined);
  });

  test('malformed operations are refused as a whole batch with the field named', async () => {
    const cases = [
      [{ mid: 1, op: 'delete', collection: 'products', id: 'x', ops: { stock: { increment: 1 } } }, /mutations\[0\]\.ops/],
      [{ mid: 1, op: 'update', collection: 'products', id: 'x', fields: { stock: 1 }, ops: { stock: { increment: 1 } } }, /mutations\[0\]\.ops\.stock/],
      [{ mid: 1, op: 'update', collection: 'products', id: 'x', fields: {}, ops: { stock: { increment: 'one' } } }, /mutations\[0\]\.ops\.stock/],
      [{ mid: 1, op: 'update', collection: 'products', id: 'x', fields: {}, ops: { stock: { increment: 1, min: 5, max: 1 } } }, /mutations\[0\]\.ops\.stock/],
      [{ mid: 1, op: 'update', collection: 'products', id: 'x', fields: {}, ops: { at: { serverTime: false } } }, /mutations\[0\]\.ops\.at/],
      [{ mid: 1, op: 'update', collection: 'products', id: 'x', fields: {}, if: 'status=zz.1' }, /mutations\[0\]\.if/],
      [{ mid: 1, op: 'insert', collection: 'products', id: 'x', fields: {}, if: 'status=eq.1' }, /mutations\[0\]\.if/],
      [{ mid: 1, op: 'update', collection: 'products', id: 'x', fields: {}, if: Array.from({ length: 33 }, (_, i) => `f${i}=eq.1`).join(',') }, /mutations\[0\]\.if/],
    ];
    for (const [m, field] of cases) {
      const r = await mutate(server, admin, 'bad-ops', [m]);
      assert.equal(r.status, 400, `${JSON.stringify(m)}: ${r.text}`);
      assert.match(r.json.error.field, field, JSON.stringify(r.json));
    }
  });
});

describe('atomic groups', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.cleanup();
  });

  test('a group whose second member fails leaves no trace in documents, log or stream', async () => {
    await mutate(server, admin, 'g-seed', [{ mid: 1, op: 'insert', collection: 'bills', id: 'bill-g', fields: { customer_id: 'cust-1', amount: 25, status: 'paid' } }]);
    const head0 = (await api(server, 'GET', '/v1/health')).json.seq;
    const stream = new SseClient(server, { token: admin, collections: 'bills,orders' });
    await stream.waitFor((c) => c.events.some((e) => e.event === 'hello'), 5000, 'hello');
    const r = await mutate(server, admin, 'g-client', [
      { mid: 10, op: 'insert', collection: 'orders', id: 'credit-g', fields: { customer_id: 'cust-1', amount: 25 }, group: 10, group_size: 2 },
      { mid: 11, op: 'update', collection: 'bills', id: 'bill-g', fields: { status: 'paid' }, if: 'status=eq.unpaid', group: 10, group_size: 2 },
      { mid: 12, op: 'insert', collection: 'orders', id: 'after-g', fields: { customer_id: 'cust-1' } },
    ]);
    assert.equal(r.status, 200, r.text);
    const [a, b, c] = r.json.results;
    assert.equal(a.status, 'rejected');
    assert.equal(b.status, 'rejected');
    assert.equal(a.code, 'conflict');
    assert.equal(b.code, 'conflict');
    assert.equal(a.failed_mid, 11);
    assert.equal(b.failed_mid, 11);
    assert.match(a.message, /11/);
    assert.equal(b.current.fields.status, 'paid');
    assert.equal(c.status, 'applied', 'a mutation after the group is independent');
    assert.equal(c.seq, head0 + 1, 'the failed group took no seq');
    await sleep(300);
    const changes = stream.changes().map((c) => c.id);
    stream.close();
    assert.deepEqual(changes, ['after-g'], 'the stream saw only the independent insert');
    assert.equal(await doc(server, 'orders', 'credit-g'), undefined, 'no credit document');
    // Resent: every member of the group is a duplicate of its rejection, never half-applied.
    const again = await mutate(server, admin, 'g-client', [
      { mid: 10, op: 'insert', collection: 'orders', id: 'credit-g', fields: { customer_id: 'cust-1', amount: 25 }, group: 10, group_size: 2 },
      { mid: 11, op: 'update', collection: 'bills', id: 'bill-g', fields: { status: 'paid' }, if: 'status=eq.unpaid', group: 10, group_size: 2 },
    ]);
    assert.deepEqual(again.json.results.map((x) => [x.status, x.code]), [['duplicate', 'conflict'], ['duplicate', 'conflict']]);
  });

  test('a group that holds applies all members in order, consecutive seqs', async () => {
    await mutate(server, admin, 'p-seed', [{ mid: 1, op: 'insert', collection: 'bills', id: 'bill-p', fields: { customer_id: 'cust-2', amount: 30, status: 'unpaid' } }]);
    const r = await mutate(server, admin, 'p-client', [
      { mid: 1, op: 'update', collection: 'bills', id: 'bill-p', fields: { status: 'paid' }, ops: { paid_at: { serverTime: true } }, if: 'status=eq.unpaid', group: 1, group_size: 2 },
      { mid: 2, op: 'insert', collection: 'orders', id: 'credit-p', fields: { customer_id: 'cust-2', amount: -30 }, group: 1, group_size: 2 },
    ]);
    const [a, b] = r.json.results;
    assert.equal(a.status, 'applied', r.text);
    assert.equal(b.status, 'applied');
    assert.equal(b.seq, a.seq + 1);
    assert.equal((await doc(server, 'bills', 'bill-p')).fields.status, 'paid');
    assert.ok((await doc(server, 'orders', 'credit-p')));
  });

  test('groups must be complete and consecutive in one batch', async () => {
    const m = (mid, group, size, id = `x${mid}`) => ({ mid, op: 'insert', collection: 'orders', id, fields: {}, group, group_size: size });
    for (const batch of [[m(1, 1, 3), m(2, 1, 3)], [m(2, 1, 2), m(3, 1, 2)], [m(1, 1, 2), { mid: 2, op: 'insert', collection: 'orders', id: 'y', fields: {} }]]) {
      const r = await mutate(server, admin, 'bad-groups', batch);
      assert.equal(r.status, 400, `${JSON.stringify(batch)}: ${r.text}`);
      assert.match(r.json.error.field, /mutations\[\d\]\.group/);
    }
  });
});

describe('atomic groups across kill -9', () => {
  test('a group resent after kill -9 mid-commit is all or nothing, then duplicate', { timeout: 120000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'syncline-atomic-kill-'));
    let server = await startServer({ dir });
    const outcomes = { both: 0, none: 0 };
    try {
      for (let round = 0; round < 12; round++) {
        const batch = [
          { mid: 1, op: 'insert', collection: 'orders', id: `k-a-${round}`, fields: { n: round }, group: 1, group_size: 2 },
          { mid: 2, op: 'insert', collection: 'orders', id: `k-b-${round}`, fields: { n: round }, group: 1, group_size: 2 },
        ];
        const client = `kill-${round}`;
        const inflight = mutate(server, admin, client, batch).catch(() => null);
        await sleep(round % 4 === 0 ? 0 : round % 3);
        server.proc.kill('SIGKILL');
        await server.exited;
        await inflight;
        server = await startServer({ dir });
        const ids = (await snapshotAll(server, admin, { collections: 'orders' })).docs.map((d) => d.id);
        const a = ids.includes(`k-a-${round}`);
        const b = ids.includes(`k-b-${round}`);
        assert.equal(a, b, `round ${round}: both members or neither (a=${a}, b=${b})`);
        outcomes[a ? 'both' : 'none']++;
        const r = await mutate(server, admin, client, batch);
        const statuses = r.json.results.map((x) => x.status);
        assert.deepEqual(statuses, a ? ['duplicate', 'duplicate'] : ['applied', 'applied'], `round ${round}: ${r.text}`);
      }
    } finally {
      await server.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(`# kill -9 rounds: group committed before the kill ${outcomes.both}, not committed ${outcomes.none}`);
  });
});
