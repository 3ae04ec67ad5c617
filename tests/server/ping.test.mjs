// The client's round-trip probe (protocol revision 1.2): GET /v1/ping for SSE clients and
// WebSocket ping/pong frames. Cheap, authenticated, rate-limited, bounded.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, makeToken, mutate, sleep, startServer, testConfig, WsClient } from './helpers.mjs';

const admin = makeToken('ping-admin', 'admin');

describe('GET /v1/ping', () => {
  let server;
  before(async () => {
    server = await startServer({ config: testConfig({ limits: { rate_limit_per_sec: 5, rate_limit_burst: 5 } }) });
  });
  after(async () => {
    await server?.cleanup();
  });

  test('answers the head seq with no-store; needs a token; GET only', async () => {
    const r = await api(server, 'GET', '/v1/ping', { token: admin });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { seq: 0 });
    assert.equal(r.headers.get('cache-control'), 'no-store');
    await mutate(server, makeToken('ping-writer', 'admin'), 'pw', [{ mid: 1, op: 'insert', collection: 'products', id: 'p', fields: {} }]);
    assert.deepEqual((await api(server, 'GET', '/v1/ping', { token: makeToken('ping-2', 'admin') })).json, { seq: 1 });

    const anon = await api(server, 'GET', '/v1/ping');
    assert.equal(anon.status, 401);
    assert.equal(anon.json.error.code, 'unauthorized');
    const bad = await api(server, 'GET', '/v1/ping', { token: 'not.a.token' });
    assert.equal(bad.status, 401);
    const post = await api(server, 'POST', '/v1/ping', { token: admin, body: { x: 1 } });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
  });

  test("spends the subject's rate-limit bucket (429 with Retry-After), other subjects unaffected", async () => {
    const t = makeToken('ping-spammer', 'admin');
    const statuses = [];
    for (let i = 0; i < 12; i++) statuses.push((await api(server, 'GET', '/v1/ping', { token: t })).status);
    assert.ok(statuses.filter((s) => s === 429).length >= 5, `statuses: ${statuses}`);
    const limited = await api(server, 'GET', '/v1/ping', { token: t });
    assert.equal(limited.status, 429);
    assert.equal(limited.json.error.code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal((await api(server, 'GET', '/v1/ping', { token: makeToken('ping-calm', 'admin') })).status, 200);
  });

  test('requests without a valid token are limited per address', async () => {
    const statuses = [];
    for (let i = 0; i < 12; i++) statuses.push((await api(server, 'GET', '/v1/ping')).status);
    assert.ok(statuses.includes(429), `statuses: ${statuses}`);
  });
});

describe('WebSocket ping frames', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.cleanup();
  });

  test('a ping is answered by a pong with the same id (integer, string or none)', async () => {
    const c = await new WsClient(server, { token: admin, collections: 'products' }).opened;
    try {
      await c.waitFor((x) => x.of('hello').length === 1, 5000, 'hello');
      c.send({ type: 'ping', id: 7 });
      c.send({ type: 'ping', id: 'a-string-id' });
      c.send({ type: 'ping' });
      c.send({ type: 'ping', id: 9007199254740991 });
      await c.waitFor((x) => x.of('pong').length === 4, 5000, 'four pongs');
      assert.deepEqual(c.of('pong'), [
        { type: 'pong', id: 7 },
        { type: 'pong', id: 'a-string-id' },
        { type: 'pong' },
        { type: 'pong', id: 9007199254740991 },
      ]);
      assert.equal(c.of('error').length, 0);
      // The pong is a frame of its own: the type comes first (clients match it without parsing).
      const raw = await new Promise((resolve) => {
        c.ws.once('message', (d) => resolve(d.toString()));
        c.send({ type: 'ping', id: 1 });
      });
      assert.equal(raw, '{"type":"pong","id":1}');
    } finally {
      c.close();
    }
  });

  test('a bad id gets an error frame (field id) and no pong; the connection stays open', async () => {
    const c = await new WsClient(server, { token: admin, collections: 'products' }).opened;
    try {
      c.send({ type: 'ping', id: 'x'.repeat(65) });
      c.send({ type: 'ping', id: { nested: true } });
      c.send({ type: 'ping', id: 1.5 });
      await c.waitFor((x) => x.of('error').length === 3, 5000, 'three errors');
      for (const e of c.of('error')) {
        assert.equal(e.error.code, 'invalid_request');
        assert.equal(e.error.field, 'id');
      }
      assert.equal(c.of('pong').length, 0);
      c.send({ type: 'ping', id: 2 });
      await c.waitFor((x) => x.of('pong').length === 1, 5000, 'pong after errors');
      assert.equal(c.closeInfo, null);
    } finally {
      c.close();
    }
  });

  test('valid pings reset the invalid-frame count, so a long-lived idle connection is never closed for them', async () => {
    const s = await startServer({ config: testConfig({ limits: { ws_max_invalid_frames: 2 } }) });
    const c = await new WsClient(s, { token: admin, collections: 'products' }).opened;
    try {
      for (let round = 0; round < 4; round++) {
        c.send('not json');
        c.send('not json');
        c.send({ type: 'ping', id: round });
      }
      await c.waitFor((x) => x.of('pong').length === 4, 5000, 'four pongs');
      await sleep(100);
      assert.equal(c.closeInfo, null, 'still open');
    } finally {
      c.close();
      await s.cleanup();
    }
  });
});
