// Group commit (server/writer.hpp): many clients' batches committed together are each applied
// exactly once, acknowledged only after the durable commit (kill -9 loses nothing acknowledged),
// keep per-client order, and streams opened or resumed while commits are in flight see every seq
// once, in order.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { api, makeToken, mutate, snapshotAll, SseClient, startServer, WsClient } from './helpers.mjs';

const admin = makeToken('admin-gc', 'admin');

// Sums a Prometheus sample (name with labels, exactly as rendered) from /metrics.
async function metric(server, sample) {
  const text = (await api(server, 'GET', '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : undefined;
}

function assertContiguous(seqs, from, what) {
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => from + 1 + i), what);
}

describe('group commit: concurrent clients, kill -9', () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-group-'));
  const servers = [];
  after(async () => {
    for (const s of servers) await s.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('every batch of 40 concurrent clients is applied once and acknowledged only when durable', async () => {
    const s1 = await startServer({ dir });
    servers.push(s1);
    const sse = new SseClient(s1, { token: admin, collections: 'orders,bookings', cursor: 0 });
    await sse.opened;
    const acked = new Map(); // id -> seq (applied and answered 200)
    const outcomes = new Map(); // `${client}/${mid}` -> result of the first answer
    const lastSent = {};
    let stop = false;
    let requests = 0;
    const clientLoop = async (c) => {
      const client = `gc-${c}`;
      let mid = 0;
      while (!stop) {
        const batch = [];
        for (let k = 0; k < 3; k++) {
          mid++;
          batch.push({ mid, op: 'insert', collection: 'orders', id: `${client}-${mid}`, fields: { c, mid } });
        }
        lastSent[client] = batch;
        // Every fourth round the same batch goes out twice at once (a resend racing its
        // original, likely in the same group): one is applied, the other answered duplicate.
        const copies = mid % 12 === 0 ? 2 : 1;
        let answers;
        try {
          requests += copies;
          answers = await Promise.all(Array.from({ length: copies }, () => mutate(s1, admin, client, batch)));
        } catch {
          return; // the server was killed
        }
        for (const r of answers) {
          if (r.status !== 200) continue;
          for (const res of r.json.results) {
            const key = `${client}/${res.mid}`;
            const first = outcomes.get(key);
            if (res.status === 'applied') {
              assert.equal(first?.status === 'applied', false, `${key} applied twice`);
              acked.set(`${client}-${res.mid}`, res.seq);
            } else {
              assert.equal(res.status, 'duplicate', `${key}: ${JSON.stringify(res)}`);
            }
            if (!first || res.status === 'applied') outcomes.set(key, res);
          }
        }
      }
    };
    const loops = Array.from({ length: 40 }, (_, c) => clientLoop(c));
    // Meanwhile, concurrent bookings of one slot: the unique constraint holds across a group.
    const booking = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        mutate(s1, admin, `booker-${i}`, [
          { mid: 1, op: 'insert', collection: 'bookings', id: `bk-${i}`, fields: { hall: 'A', date: '2026-12-01', slot: 9 } },
        ]),
      ),
    );
    const applied = booking.filter((r) => r.json.results[0].status === 'applied');
    assert.equal(applied.length, 1, 'exactly one booking of the slot');
    for (const r of booking) {
      if (r.json.results[0].status !== 'applied') assert.equal(r.json.results[0].code, 'constraint');
    }
    await new Promise((res) => {
      const t = setInterval(() => {
        if (acked.size >= 600) {
          clearInterval(t);
          res();
        }
      }, 5);
    });
    // Grouping happened: fewer commits than requests.
    const groups = await metric(s1, 'syncline_commit_group_size_count');
    const grouped = await metric(s1, 'syncline_commit_group_size_sum');
    assert.ok(groups > 0 && grouped > groups, `groups ${groups}, requests in them ${grouped}`);

    s1.proc.kill('SIGKILL');
    stop = true;
    await s1.exited;
    await Promise.all(loops);
    await sse.waitFor((s) => s.closed, 3000, 'stream end');
    const streamed = sse.changes().map((c) => c.seq);
    assertContiguous(streamed, 0, 'the live stream saw every seq once, in order');

    const s2 = await startServer({ dir });
    servers.push(s2);
    const snap = await snapshotAll(s2, admin, { collections: 'orders' });
    const byId = new Map(snap.docs.map((d) => [d.id, d]));
    for (const [id, seq] of acked) {
      assert.ok(byId.has(id), `acknowledged ${id} survived kill -9`);
      assert.equal(byId.get(id).version, seq, `${id} kept its seq`);
    }
    // Resending every client's last batch applies nothing twice.
    for (const [client, batch] of Object.entries(lastSent)) {
      const r = await mutate(s2, admin, client, batch);
      assert.equal(r.status, 200);
      for (const res of r.json.results) {
        if (acked.has(`${client}-${res.mid}`)) {
          assert.equal(res.status, 'duplicate', `${client}/${res.mid} resent`);
          assert.equal(res.seq, acked.get(`${client}-${res.mid}`));
        }
      }
    }
    // The log after restart: each (client, mid) once, seqs contiguous.
    const health = (await api(s2, 'GET', '/v1/health')).json;
    const all = new SseClient(s2, { token: admin, collections: 'orders,bookings', cursor: 0 });
    await all.waitFor((s) => (s.changes().at(-1)?.seq ?? 0) >= health.seq, 10000, 'full log');
    all.close();
    const log = all.changes();
    assertContiguous(log.map((c) => c.seq), 0, 'log seqs contiguous');
    assert.equal(new Set(log.map((c) => `${c.origin.client}/${c.origin.mid}`)).size, log.length, 'exactly once');
    assert.ok(requests > 600 / 3);
  });
});

describe('group commit: ordering', () => {
  let server;
  after(async () => server?.cleanup());

  test('pipelined WebSocket batches of one client keep their order; resends answer duplicate', async () => {
    server = await startServer();
    const ws = new WsClient(server, { token: admin, collections: 'products' });
    await ws.opened;
    await ws.waitFor((c) => c.of('hello').length >= 1);
    const frames = [];
    for (let i = 0; i < 30; i++) {
      const mutations = [1, 2].map((k) => ({
        mid: i * 2 + k,
        op: 'insert',
        collection: 'products',
        id: `p-${i}-${k}`,
        fields: { i, k },
      }));
      frames.push(mutations);
    }
    // Interleave resends of earlier frames, all without waiting: same connection, so the
    // server must apply them in arrival order.
    const sent = [];
    for (let i = 0; i < frames.length; i++) {
      sent.push(frames[i]);
      if (i % 5 === 4) sent.push(frames[i - 2]);
    }
    for (const mutations of sent) ws.send({ type: 'mutate', client: 'ws-order', mutations });
    await ws.waitFor((c) => c.of('results').length >= sent.length, 10000, 'all results');
    const results = ws.of('results');
    const seqOf = new Map();
    for (let j = 0; j < sent.length; j++) {
      const r = results[j];
      assert.deepEqual(r.results.map((x) => x.mid), sent[j].map((m) => m.mid), `results ${j} in send order`);
      for (const x of r.results) {
        if (seqOf.has(x.mid)) {
          assert.equal(x.status, 'duplicate');
          assert.equal(x.seq, seqOf.get(x.mid));
        } else {
          assert.equal(x.status, 'applied');
          seqOf.set(x.mid, x.seq);
        }
      }
    }
    const seqs = [...seqOf.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'seqs follow mid order');
    // The broadcast reached this connection in seq order, each change once.
    await ws.waitFor((c) => c.of('change').length >= 60, 5000, 'changes');
    const changes = ws.of('change').map((c) => c.seq);
    assert.deepEqual(changes, [...new Set(changes)].sort((a, b) => a - b));
    ws.close();
  });

  test('streams opened and resumed during a write storm see every seq once, in order', async () => {
    const s = server;
    // Seqs before the storm belong to the previous test (products, not subscribed here).
    const base = (await api(s, 'GET', '/v1/health')).json.seq;
    let stop = false;
    const writers = Array.from({ length: 12 }, async (_, w) => {
      let mid = 0;
      while (!stop) {
        mid++;
        const m = [{ mid, op: 'insert', collection: 'orders', id: `storm-${w}-${mid}`, fields: { w } }];
        if (mid % 7 === 0) {
          await api(s, 'POST', '/v1/events', { token: admin, body: { name: 'storm:tick', data: { w, mid } } });
        }
        await mutate(s, admin, `storm-${w}`, m);
      }
    });
    const streams = [];
    for (let k = 0; k < 16; k++) {
      await new Promise((r) => setTimeout(r, 15));
      const head = (await api(s, 'GET', '/v1/health')).json.seq;
      const cursor = Math.max(base, head - 1 - (k % 4) * 20);
      const client =
        k % 2 === 0
          ? new SseClient(s, { token: admin, collections: 'orders', lastEventId: cursor })
          : new WsClient(s, { token: admin, collections: 'orders', cursor });
      streams.push({ client, cursor, sse: k % 2 === 0 });
    }
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await Promise.all(writers);
    const head = (await api(s, 'GET', '/v1/health')).json.seq;
    for (const { client, cursor, sse } of streams) {
      const seqsOf = (c) =>
        sse
          ? c.events.filter((e) => e.event === 'change' || e.event === 'event').map((e) => e.json.seq)
          : c.messages.filter((m) => m.type === 'change' || m.type === 'event').map((m) => m.seq);
      await client.waitFor((c) => (seqsOf(c).at(-1) ?? cursor) >= head, 10000, `stream from ${cursor} to ${head}`);
      assertContiguous(seqsOf(client), cursor, `${sse ? 'SSE' : 'WS'} stream from ${cursor}: nothing missed or doubled`);
      client.close();
    }
  });

  test('/metrics reports commit groups', async () => {
    const text = (await api(server, 'GET', '/metrics')).text;
    for (const name of ['syncline_commit_group_size_bucket{le="1"}', 'syncline_commit_group_size_count',
      'syncline_commit_seconds_total', 'syncline_write_queue']) {
      assert.ok(text.includes(name), `${name} in /metrics`);
    }
    assert.equal(await metric(server, 'syncline_write_queue'), 0);
  });
});

describe('group commit: SIGTERM with writes in flight', () => {
  test('queued writes are committed or refused, never acknowledged without commit', async () => {
    const server = await startServer();
    try {
      const pending = Array.from({ length: 60 }, (_, i) =>
        mutate(server, admin, `term-${i}`, [{ mid: 1, op: 'insert', collection: 'orders', id: `term-${i}`, fields: {} }])
          .then((r) => ({ i, r }))
          .catch(() => ({ i, r: null })),
      );
      await new Promise((r) => setTimeout(r, 5));
      const exit = await server.stop('SIGTERM');
      assert.deepEqual(exit, { code: 0, signal: null });
      const answers = await Promise.all(pending);
      const again = await startServer({ dir: server.dir });
      try {
        const snap = await snapshotAll(again, admin, { collections: 'orders' });
        const ids = new Set(snap.docs.map((d) => d.id));
        for (const { i, r } of answers) {
          if (r?.status === 200) assert.ok(ids.has(`term-${i}`), `acknowledged term-${i} was committed`);
          else if (r) assert.equal(r.status, 503, `term-${i}: ${r.text}`);
        }
      } finally {
        await again.stop('SIGKILL');
      }
    } finally {
      await server.cleanup();
    }
  });
});
