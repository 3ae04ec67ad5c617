// PostgreSQL only (SYNCLINE_TEST_BACKEND=postgres): what several syncline-server nodes on one
// database and a database server that crashes must keep. Two nodes share one seq space, each
// streams every seq once and in order, unique keys, mids and client bindings hold across nodes;
// writes acknowledged before a node's kill -9, a crash of PostgreSQL, or both at once are all
// there afterwards, exactly once; the server goes on once the database is back. (A crash here is
// `pg_ctl -m immediate`: the processes die, the kernel's page cache does not, so it shows that a
// write is acknowledged only after its COMMIT, not what fsync does on a power cut.)
// On SQLite, basics.test.mjs checks that a second server on one file is refused instead;
// durability.test.mjs's kill -9 and restart runs on both backends.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pg } from '../lib/postgres.mjs';
import { api, backend, makeToken, mutate, sleep, snapshotAll, SseClient, startServer, testConfig, WsClient } from './helpers.mjs';

const pgOnly = { skip: backend() === 'postgres' ? false : 'PostgreSQL only (SYNCLINE_TEST_BACKEND=postgres)' };
const admin = makeToken('admin-1', 'admin');

// Servers and directories of one describe, removed when it ends (also on failure).
function scope() {
  const servers = [];
  const dirs = [];
  return {
    dir() {
      const d = mkdtempSync(join(tmpdir(), 'syncline-pg-test-'));
      dirs.push(d);
      return d;
    },
    async start(opts) {
      const s = await startServer(opts);
      servers.push(s);
      return s;
    },
    async cleanup() {
      for (const s of servers) await s.stop('SIGKILL');
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

// GET /v1/health every 100 ms until it answers `status` (at most `tries` times); the last answer.
async function healthUntil(server, status, tries) {
  let h;
  for (let i = 0; i < tries; i++) {
    h = await api(server, 'GET', '/v1/health');
    if (h.status === status) break;
    await sleep(100);
  }
  return h;
}

const seqsOf = (changes) => changes.map((c) => c.seq);
const oneToN = (n) => Array.from({ length: n }, (_, i) => i + 1);

// `writers` concurrent clients, each inserting orders one request at a time through
// pickServer(writer, n) until stop() is called; acknowledged writes are kept with their seq.
function writeLoad(pickServer, writers, prefix) {
  const acked = new Map(); // id -> seq
  const failed = []; // statuses other than 200 (the database was down)
  let stopped = false;
  const loops = Array.from({ length: writers }, async (_, w) => {
    let mid = 0;
    while (!stopped) {
      mid++;
      const id = `${prefix}-${w}-${mid}`;
      const batch = [{ mid, op: 'insert', collection: 'orders', id, fields: { w, mid, customer_id: 'alice' } }];
      try {
        const r = await mutate(pickServer(w, mid), admin, `${prefix}-${w}`, batch);
        if (r.status === 200 && r.json.results[0].status === 'applied') acked.set(id, r.json.results[0].seq);
        else if (r.status !== 200) {
          failed.push(r.status);
          await sleep(20);
        }
      } catch {
        await sleep(20); // the node is gone; its writer loop keeps trying until stopped
      }
    }
  });
  return {
    acked,
    failed,
    async until(pred, timeout = 60000, what = 'acknowledged writes') {
      const t0 = Date.now();
      while (!pred(acked)) {
        if (Date.now() - t0 > timeout) throw new Error(`timeout waiting for ${what}: ${acked.size} acked, failures ${failed.length}`);
        await sleep(5);
      }
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

// Every acknowledged write is in the snapshot, once, at the seq it was acknowledged with, and
// the log from 0 is 1..head without a gap or a repeat.
async function assertAllThere(server, acked, what) {
  const snap = await snapshotAll(server, admin, { collections: 'orders' });
  const byId = new Map(snap.docs.map((d) => [d.id, d]));
  assert.equal(byId.size, snap.docs.length, `${what}: each document once`);
  for (const [id, seq] of acked) {
    assert.ok(byId.has(id), `${what}: acknowledged write ${id} is there`);
    assert.equal(byId.get(id).version, seq, `${what}: ${id} kept its seq`);
  }
  const head = (await api(server, 'GET', '/v1/health')).json.seq;
  const sse = new SseClient(server, { token: admin, cursor: 0 });
  try {
    await sse.waitFor((s) => (s.changes().at(-1)?.seq ?? 0) >= head, 10000, `${what}: the log up to ${head}`);
    assert.deepEqual(seqsOf(sse.changes()), oneToN(head), `${what}: the log is 1..head, no gap, no repeat`);
  } finally {
    sse.close();
  }
  return head;
}

// First in the file: a crash restart ends with a checkpoint that fsyncs every file written since
// the cluster started, about 300 per database created (~1 s each here), so it is cheapest while
// the cluster holds few databases.
describe('PostgreSQL: the database crashes', pgOnly, () => {
  const sc = scope();
  after(() => sc.cleanup());

  test('acknowledged writes survive a PostgreSQL crash under load; the server reconnects and goes on', async () => {
    const cluster = await pg();
    const dir = sc.dir();
    const server = await sc.start({ dir });
    const sse = new SseClient(server, { token: admin, collections: 'orders', cursor: 0 });
    await sse.opened;
    const load = writeLoad(() => server, 4, 'crash');
    await load.until((acked) => acked.size >= 60);
    await cluster.restart({ mode: 'immediate' });
    const atRestart = load.acked.size;
    await load.until((acked) => acked.size >= atRestart + 60, 60000, 'writes after the database came back');
    await load.stop();
    // What the database holds, read by a node that has never seen these writes.
    const fresh = await sc.start({ dir });
    const head = await assertAllThere(fresh, load.acked, 'after the database crash');
    // The stream opened before the crash stays open and has every seq once, in order.
    await sse.waitFor((s) => s.changes().length >= head, 10000, 'the open stream catches up');
    assert.deepEqual(seqsOf(sse.changes()), oneToN(head), 'the stream across the crash: no gap, no repeat');
    sse.close();
  });

  test('the server and PostgreSQL crash together: every acknowledged write is there after both restart', async () => {
    const cluster = await pg();
    const dir = sc.dir();
    const s1 = await sc.start({ dir });
    const load = writeLoad(() => s1, 4, 'both');
    await load.until((acked) => acked.size >= 80);
    s1.proc.kill('SIGKILL');
    await cluster.stopServer({ mode: 'immediate' });
    await load.stop();
    await s1.exited;
    await cluster.start();
    const s2 = await sc.start({ dir });
    await assertAllThere(s2, load.acked, 'after both crashed');
  });

  // Each reader thread holds its own connection. After PostgreSQL restarts, a read must not
  // fail because its reader still holds the dead connection: the writer already reconnects
  // and retries in that case.
  test('reads after a PostgreSQL restart: every reader reconnects, no read fails', async () => {
    const cluster = await pg();
    const readThreads = 2;
    const server = await sc.start({ dir: sc.dir(), config: testConfig({ limits: { read_threads: readThreads } }) });
    await mutate(server, admin, 'reads', [{ mid: 1, op: 'insert', collection: 'orders', id: 'r-1', fields: { customer_id: 'alice' } }]);
    assert.equal((await api(server, 'GET', '/v1/snapshot?collections=orders', { token: admin })).status, 200);
    await cluster.restart({ mode: 'immediate' });
    const statuses = [];
    for (let i = 0; i < readThreads * 2; i++) {
      const r = await api(server, 'GET', '/v1/snapshot?collections=orders', { token: admin });
      statuses.push(r.status === 200 ? 200 : `${r.status} ${r.json?.error?.message ?? r.text}`);
    }
    assert.deepEqual(statuses, Array(readThreads * 2).fill(200), 'snapshots right after the database restarted');
    // A stream's catch-up read goes through the readers too.
    const sse = new SseClient(server, { token: admin, collections: 'orders', cursor: 0 });
    try {
      await sse.waitFor((s) => s.changes().length === 1, 5000, 'catch-up after the restart');
    } finally {
      sse.close();
    }
  });
});

describe('PostgreSQL: two nodes on one database', pgOnly, () => {
  const sc = scope();
  after(() => sc.cleanup());

  test('writes through both nodes share one seq space; each node streams every seq once, in order', async () => {
    const dir = sc.dir();
    const a = await sc.start({ dir });
    const b = await sc.start({ dir });
    const sseA = new SseClient(a, { token: admin, collections: 'orders', cursor: 0 });
    const wsB = new WsClient(b, { token: admin, collections: 'orders', cursor: 0 });
    await sseA.opened;
    await wsB.opened;
    const load = writeLoad((w, mid) => ((w + mid) % 2 ? a : b), 4, 'two');
    await load.until((acked) => acked.size >= 100);
    await load.stop();
    const seqs = [...load.acked.values()].sort((x, y) => x - y);
    assert.deepEqual(seqs, oneToN(seqs.length), 'the acknowledged seqs of both nodes are one contiguous space');
    const head = seqs.length;
    for (const s of [a, b]) assert.equal((await api(s, 'GET', '/v1/health')).json.seq, head);
    await sseA.waitFor((s) => s.changes().length >= head, 10000, 'node A streams every write');
    await wsB.waitFor((c) => c.of('change').length >= head, 10000, 'node B streams every write');
    await sleep(200); // nothing more may follow
    assert.deepEqual(seqsOf(sseA.changes()), oneToN(head), 'node A: each seq once, in order');
    assert.deepEqual(seqsOf(wsB.of('change')), oneToN(head), 'node B: each seq once, in order');
    sseA.close();
    wsB.close();
    const snapA = await snapshotAll(a, admin, { collections: 'orders' });
    const snapB = await snapshotAll(b, admin, { collections: 'orders' });
    assert.deepEqual(snapA, snapB, 'both nodes read the same snapshot');
    assert.equal(snapA.docs.length, head);
  });

  test('a unique key, a (client, mid) and a client binding hold across nodes', async () => {
    const dir = sc.dir();
    const a = await sc.start({ dir });
    const b = await sc.start({ dir });
    // One slot, 12 contenders spread over both nodes: exactly one booking.
    const slot = { hall: 'X', date: '2026-01-01', slot: '9:00' };
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        mutate(i % 2 ? a : b, admin, `slot-${i}`, [{ mid: 1, op: 'insert', collection: 'bookings', id: `bk-${i}`, fields: { ...slot, customer_id: `c${i}` } }]),
      ),
    );
    const outcomes = results.map((r) => (r.status === 200 ? r.json.results[0].code || r.json.results[0].status : `HTTP ${r.status}`));
    assert.equal(outcomes.filter((o) => o === 'applied').length, 1, JSON.stringify(outcomes));
    assert.equal(outcomes.filter((o) => o === 'constraint').length, 11, JSON.stringify(outcomes));
    // A batch applied on A and resent to B: duplicate, with A's seqs.
    const batch = [
      { mid: 1, op: 'insert', collection: 'orders', id: 'o-1', fields: { customer_id: 'alice' } },
      { mid: 2, op: 'update', collection: 'orders', id: 'o-1', fields: { n: 2 } },
    ];
    const first = await mutate(a, admin, 'roaming-client', batch);
    assert.deepEqual(first.json.results.map((r) => r.status), ['applied', 'applied']);
    const again = await mutate(b, admin, 'roaming-client', batch);
    assert.deepEqual(again.json.results.map((r) => [r.status, r.seq]), first.json.results.map((r) => ['duplicate', r.seq]));
    // The client id is bound to the subject that used it first, on every node.
    const other = await mutate(b, makeToken('admin-2', 'admin'), 'roaming-client', [{ mid: 3, op: 'insert', collection: 'orders', id: 'o-2', fields: {} }]);
    assert.equal(other.status, 403);
    assert.equal(other.json.error.field, 'client');
    const snap = await snapshotAll(b, admin, { collections: 'orders,bookings' });
    assert.deepEqual(snap.docs.map((d) => d.id).sort(), ['bk-' + outcomes.indexOf('applied'), 'o-1'].sort());
    assert.equal(snap.docs.find((d) => d.id === 'o-1').fields.n, 2);
  });

  test('four servers started at once on one empty database all start (the schema is made once)', async () => {
    const dir = sc.dir();
    const nodes = await Promise.all([0, 1, 2, 3].map(() => sc.start({ dir })));
    const r = await mutate(nodes[3], admin, 'four', [{ mid: 1, op: 'insert', collection: 'products', id: 'p', fields: {} }]);
    assert.equal(r.json.results[0].status, 'applied');
    for (const n of nodes) assert.equal((await snapshotAll(n, admin, { collections: 'products' })).docs.length, 1);
  });

  test('a prune by one node: the other answers an expired cursor with reset and resumes a recent one', async () => {
    const dir = sc.dir();
    const config = testConfig({ limits: { log_retention: 10 } });
    const a = await sc.start({ dir, config });
    const b = await sc.start({ dir, config });
    for (let k = 0; k < 3; k++) {
      const batch = Array.from({ length: 10 }, (_, i) => ({ mid: k * 10 + i + 1, op: 'insert', collection: 'products', id: `r-${k}-${i}`, fields: {} }));
      assert.equal((await mutate(a, admin, 'pruning', batch)).status, 200);
    }
    const head = (await api(a, 'GET', '/v1/health')).json.seq;
    const expired = new SseClient(b, { token: admin, lastEventId: 1 });
    await expired.waitFor((s) => s.events.some((e) => e.event === 'reset'), 5000, 'reset on the other node');
    expired.close();
    const reset = expired.events.find((e) => e.event === 'reset').json;
    assert.equal(reset.reason, 'cursor_expired');
    // B may still be bringing A's rows in from the log: those after the reset's seq arrive live
    // (the client re-snapshots and replays them as no-ops); none of the pruned range does.
    const after = seqsOf(expired.changes());
    assert.ok(after.every((s) => s > reset.seq && s > head - 10), `no change of the pruned range: reset at ${reset.seq}, then ${after}`);
    const recent = new SseClient(b, { token: admin, cursor: head - 3 });
    await recent.waitFor((s) => s.changes().length >= 3, 5000, 'a recent cursor resumes');
    recent.close();
    assert.deepEqual(seqsOf(recent.changes()), [head - 2, head - 1, head]);
    assert.equal(recent.events.filter((e) => e.event === 'reset').length, 0);
  });

  test('kill -9 of one node in the middle of writes: the other keeps serving, every acknowledged write is there once', async () => {
    const dir = sc.dir();
    const a = await sc.start({ dir });
    const b = await sc.start({ dir });
    const load = writeLoad((w) => (w % 2 ? a : b), 4, 'kill');
    await load.until((acked) => acked.size >= 60);
    a.proc.kill('SIGKILL');
    await a.exited;
    // Node B alone: its writers (0 and 2) go on.
    const throughB = (acked) => [...acked.keys()].filter((id) => /^kill-[02]-/.test(id)).length;
    const atKill = throughB(load.acked);
    await load.until((acked) => throughB(acked) >= atKill + 30, 60000, 'writes through the surviving node');
    await load.stop();
    await assertAllThere(b, load.acked, 'surviving node');
    // The killed node restarts on the same database and reads the same.
    const a2 = await sc.start({ dir });
    await assertAllThere(a2, load.acked, 'restarted node');
  });

  test('health answers 503 database_unavailable while the node cannot read PostgreSQL, ok again after', async () => {
    const dir = sc.dir();
    const a = await sc.start({ dir });
    assert.equal((await api(a, 'GET', '/v1/health')).json.status, 'ok');
    const cluster = await pg();
    await cluster.stopServer({ mode: 'immediate' });
    try {
      const h = await healthUntil(a, 503, 50);
      assert.equal(h.status, 503, h.text);
      assert.equal(h.json.status, 'database_unavailable');
    } finally {
      await cluster.start();
    }
    const h = await healthUntil(a, 200, 80);
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.status, 'ok');
  });
});
