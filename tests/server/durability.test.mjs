// Durability and lifecycle: kill -9 in the middle of a stream of acknowledged writes, restart on
// the same database, every acknowledged write is there exactly once and streams resume; SIGTERM
// closes streams with a reason and exits 0.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { api, makeToken, mutate, sleep, snapshotAll, SseClient, startServer, WsClient } from './helpers.mjs';

const admin = makeToken('admin-1', 'admin');

describe('kill -9 and restart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-durability-'));
  const servers = [];
  after(async () => {
    for (const s of servers) await s.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('every acknowledged write survives exactly once and streams resume', async () => {
    const s1 = await startServer({ dir });
    servers.push(s1);
    const sse = new SseClient(s1, { token: admin, collections: 'orders', cursor: 0 });
    await sse.opened;
    const acked = new Map(); // id -> seq
    const lastSent = {}; // writer -> last batch sent (acknowledged or not)
    let killed = false;
    const writer = async (w) => {
      let mid = 0;
      while (!killed) {
        mid++;
        const id = `${w}-${mid}`;
        const batch = [{ mid, op: 'insert', collection: 'orders', id, fields: { w, mid, customer_id: 'alice' } }];
        lastSent[w] = { mid, batch };
        try {
          const r = await mutate(s1, admin, `dur-${w}`, batch);
          if (r.status === 200 && r.json.results[0].status === 'applied') acked.set(id, r.json.results[0].seq);
        } catch {
          return; // connection died with the server
        }
      }
    };
    const writing = ['a', 'b', 'c'].map(writer);
    await new Promise((res) => {
      const t = setInterval(() => {
        if (acked.size >= 60) {
          clearInterval(t);
          res();
        }
      }, 5);
    });
    s1.proc.kill('SIGKILL');
    killed = true;
    await s1.exited;
    await Promise.all(writing);
    await sse.waitFor((s) => s.closed, 3000, 'stream end');
    const streamed = sse.changes().map((c) => c.seq);
    const lastId = Number(sse.events.filter((e) => e.id).at(-1)?.id ?? 0);
    assert.ok(acked.size >= 60);

    const s2 = await startServer({ dir });
    servers.push(s2);
    const snap = await snapshotAll(s2, admin, { collections: 'orders' });
    const byId = new Map(snap.docs.map((d) => [d.id, d]));
    for (const [id, seq] of acked) {
      assert.ok(byId.has(id), `acknowledged write ${id} survived`);
      assert.equal(byId.get(id).version, seq, `${id} kept its seq`);
    }
    assert.equal(snap.docs.length, byId.size, 'each document once');
    // Resending each writer's last batch (acked or not) never applies anything twice.
    for (const [w, { batch }] of Object.entries(lastSent)) {
      const r = await mutate(s2, admin, `dur-${w}`, batch);
      assert.equal(r.status, 200);
      const status = r.json.results[0].status;
      if (acked.has(batch[0].id)) assert.equal(status, 'duplicate');
      else assert.ok(status === 'duplicate' || status === 'applied');
    }
    // The stream resumes where it stopped: the union of both streams is the whole log, once.
    const health = (await api(s2, 'GET', '/v1/health')).json;
    const resumed = new SseClient(s2, { token: admin, collections: 'orders', lastEventId: lastId });
    await resumed.waitFor((s) => (s.changes().at(-1)?.seq ?? lastId) >= health.seq, 5000, 'catch up');
    resumed.close();
    const all = [...streamed, ...resumed.changes().map((c) => c.seq)];
    assert.equal(new Set(all).size, all.length, 'no duplicates across the restart');
    assert.deepEqual(all, Array.from({ length: health.seq }, (_, i) => i + 1), 'no gaps across the restart');
    const orders = resumed.changes().concat(sse.changes());
    assert.equal(new Set(orders.map((c) => `${c.origin.client}/${c.origin.mid}`)).size, orders.length,
      'each mutation was applied exactly once');
  });
});

describe('graceful shutdown', () => {
  test('SIGTERM closes streams with a reason and exits 0', async () => {
    const server = await startServer();
    try {
      const sse = new SseClient(server, { token: admin });
      const ws = new WsClient(server, { token: admin });
      await sse.opened;
      await ws.opened;
      await ws.waitFor((c) => c.of('hello').length === 1);
      await mutate(server, admin, 'bye', [{ mid: 1, op: 'insert', collection: 'products', id: 'last', fields: {} }]);
      await sse.waitFor((s) => s.changes().length === 1);
      const r = await server.stop('SIGTERM');
      assert.deepEqual(r, { code: 0, signal: null });
      await sse.waitFor((s) => s.closed, 3000, 'sse closed');
      assert.ok(sse.comments.some((c) => c.includes('server_shutdown')), `comments: ${sse.comments}`);
      await ws.waitFor((c) => c.closeInfo !== null, 3000, 'ws closed');
      assert.equal(ws.closeInfo.code, 1001);
      assert.equal(ws.closeInfo.reason, 'server_shutdown');
      assert.ok(server.logs.some((l) => l.includes('"msg":"stopped"')));
      // The data is still there after a restart on the same database.
      const again = await startServer({ dir: server.dir });
      try {
        const snap = await snapshotAll(again, admin, { collections: 'products' });
        assert.deepEqual(snap.docs.map((d) => d.id), ['last']);
      } finally {
        await again.stop('SIGKILL');
      }
    } finally {
      await server.cleanup();
    }
  });
});
