// Back-pressure: a consumer that stops reading is cut off with a reason once its bounded queue
// overflows, while a fast consumer on the same server keeps receiving everything.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeToken, metrics, mutate, sleep, SseClient, startServer, testConfig, WsClient } from './helpers.mjs';

const admin = makeToken('admin-1', 'admin');

describe('slow consumers', () => {
  let server;
  before(async () => {
    server = await startServer({
      config: testConfig({ limits: { send_queue_messages: 64, send_queue_bytes: 2 * 1024 * 1024, heartbeat_ms: 60000 } }),
    });
  });
  after(async () => {
    await server?.cleanup();
  });

  test('a paused SSE and a paused WebSocket client are cut off; fast ones keep receiving', async () => {
    const fastSse = new SseClient(server, { token: admin, collections: 'products' });
    const fastWs = new WsClient(server, { token: admin, collections: 'products' });
    const slowSse = new SseClient(server, { token: admin, collections: 'products' });
    const slowWs = new WsClient(server, { token: admin, collections: 'products' });
    await Promise.all([fastSse.opened, fastWs.opened, slowSse.opened, slowWs.opened]);
    await slowSse.waitFor((s) => s.events.length >= 1);
    await slowWs.waitFor((c) => c.of('hello').length === 1);
    slowSse.pause();
    slowWs.pause();

    const payload = 'x'.repeat(60 * 1024);
    let written = 0;
    let mid = 0;
    let drops = 0;
    for (let batch = 0; batch < 200 && drops < 2; batch++) {
      const muts = [];
      for (let i = 0; i < 12; i++) {
        mid++;
        muts.push({ mid, op: 'insert', collection: 'products', id: `big-${mid}`, fields: { payload, n: mid } });
      }
      const r = await mutate(server, admin, 'flood', muts);
      assert.equal(r.status, 200);
      written += muts.length;
      drops = (await metrics(server)).syncline_queue_drops_total;
    }
    assert.equal(drops, 2, 'both slow consumers were dropped');
    // The fast consumers got every change.
    await fastSse.waitFor((s) => s.changes().length === written, 15000, 'fast SSE complete');
    await fastWs.waitFor((c) => c.of('change').length === written, 15000, 'fast WS complete');
    assert.equal(fastSse.closed, false);
    assert.equal(fastWs.closeInfo, null);
    // The slow ones learn why once they read again.
    slowSse.resume();
    slowWs.resume();
    await slowSse.waitFor((s) => s.closed, 15000, 'slow SSE closed');
    const err = slowSse.events.find((e) => e.event === 'error');
    assert.ok(err, 'slow SSE got an error event');
    assert.equal(err.json.error.code, 'slow_consumer');
    assert.ok(slowSse.changes().length < written);
    await slowWs.waitFor((c) => c.closeInfo !== null, 15000, 'slow WS closed');
    assert.equal(slowWs.closeInfo.code, 4008);
    assert.equal(slowWs.closeInfo.reason, 'slow_consumer');
    // Still serving: a fresh connection works, the fast ones are still live.
    await mutate(server, admin, 'flood', [{ mid: ++mid, op: 'insert', collection: 'products', id: 'after', fields: {} }]);
    await fastWs.waitFor((c) => c.of('change').some((m) => m.id === 'after'));
    await sleep(10);
    fastSse.close();
    fastWs.close();
  });
});
