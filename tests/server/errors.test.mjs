// Bad input: every malformed or unauthorised request gets the JSON error of docs/protocol.md
// (Errors) with the right status, and nothing already committed is lost.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { api, makeToken, mutate, snapshotAll, startServer, testConfig, WsClient } from './helpers.mjs';

function assertError(r, status, code, field) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.ok(r.json && r.json.error, `error body: ${r.text}`);
  assert.deepEqual(Object.keys(r.json).sort(), ['error']);
  assert.equal(r.json.error.code, code, r.text);
  assert.equal(typeof r.json.error.message, 'string');
  if (field !== undefined) assert.equal(r.json.error.field, field, r.text);
}

describe('bad input', () => {
  let server;
  const admin = makeToken('admin-1', 'admin');
  const alice = makeToken('alice', 'customer');
  let committedSeq;

  before(async () => {
    server = await startServer({
      config: testConfig({ allowed_origins: ['http://good.example'], limits: { max_batch: 50, max_body_bytes: 64 * 1024 } }),
    });
    const r = await mutate(server, admin, 'seed', [
      { mid: 1, op: 'insert', collection: 'bills', id: 'keep-1', fields: { customer_id: 'alice', amount: 1 } },
      { mid: 2, op: 'insert', collection: 'products', id: 'keep-2', fields: { name: 'x' } },
    ]);
    assert.equal(r.status, 200);
    committedSeq = r.json.seq;
  });
  after(async () => {
    await server?.cleanup();
  });

  test('malformed JSON -> 400 invalid_json', async () => {
    assertError(await api(server, 'POST', '/v1/mutations', { token: admin, raw: '{"client": "c", "mutations": [' }), 400, 'invalid_json');
    assertError(await api(server, 'POST', '/v1/events', { token: admin, raw: 'nope' }), 400, 'invalid_json');
  });

  test('fields of the wrong type -> 400 invalid_request naming the field', async () => {
    const m = (x) => ({ mid: 1, op: 'insert', collection: 'bills', id: 'ok-id', fields: {}, ...x });
    assertError(await mutate(server, admin, 'c-types', [m({ mid: 'one' })]), 400, 'invalid_request', 'mutations[0].mid');
    assertError(await mutate(server, admin, 'c-types', [m({ fields: 'str' })]), 400, 'invalid_request', 'mutations[0].fields');
    assertError(await mutate(server, admin, 'c-types', [m({ op: 'upsert' })]), 400, 'invalid_request', 'mutations[0].op');
    assertError(await mutate(server, admin, 'c-types', [m({}), m({ mid: 2, base_version: 'x', op: 'update' })]), 400, 'invalid_request', 'mutations[1].base_version');
    assertError(await api(server, 'POST', '/v1/mutations', { token: admin, body: { client: 5, mutations: [] } }), 400, 'invalid_request', 'client');
    assertError(await api(server, 'POST', '/v1/mutations', { token: admin, body: [1, 2] }), 400, 'invalid_request');
    assertError(await mutate(server, admin, 'c-types', [m({ mid: 2 }), m({ mid: 2, id: 'other' })]), 400, 'invalid_request', 'mutations[1].mid');
  });

  test('ids and collection names outside the patterns -> 400', async () => {
    const m = (x) => ({ mid: 1, op: 'insert', collection: 'bills', id: 'ok', fields: {}, ...x });
    assertError(await mutate(server, admin, 'c-pat', [m({ id: 'has space' })]), 400, 'invalid_request', 'mutations[0].id');
    assertError(await mutate(server, admin, 'c-pat', [m({ id: 'x'.repeat(129) })]), 400, 'invalid_request', 'mutations[0].id');
    assertError(await mutate(server, admin, 'c-pat', [m({ collection: 'Bills' })]), 400, 'invalid_request', 'mutations[0].collection');
    assertError(await mutate(server, admin, 'c-pat', [m({ collection: '1bills' })]), 400, 'invalid_request', 'mutations[0].collection');
    assertError(await mutate(server, admin, 'bad client id!', [m({})]), 400, 'invalid_request', 'client');
    assertError(await mutate(server, admin, 'c-pat', [m({ collection: 'nosuch' })]), 404, 'not_found', 'mutations[0].collection');
    assertError(await api(server, 'GET', '/v1/snapshot?collections=Bad!', { token: admin }), 400, 'invalid_request', 'collections');
    assertError(await api(server, 'GET', '/v1/snapshot?collections=nosuch', { token: admin }), 404, 'not_found', 'collections');
    assertError(await api(server, 'GET', '/v1/snapshot?collections=bills&where=amount=zz.1', { token: admin }), 400, 'invalid_filter', 'where');
    assertError(await api(server, 'GET', '/v1/snapshot?collections=bills&limit=-1', { token: admin }), 400, 'invalid_request', 'limit');
    assertError(await api(server, 'GET', '/v1/snapshot?collections=bills&after=garbage', { token: admin }), 400, 'invalid_request', 'after');
    assertError(await api(server, 'GET', '/v1/events?cursor=abc', { token: admin }), 400, 'invalid_request', 'cursor');
  });

  test('oversized body -> 413 payload_too_large; oversized batch -> 413', async () => {
    const big = 'x'.repeat(70 * 1024);
    const r = await mutate(server, admin, 'c-big', [{ mid: 1, op: 'insert', collection: 'bills', id: 'big', fields: { big } }]);
    assertError(r, 413, 'payload_too_large');
    const many = Array.from({ length: 51 }, (_, i) => ({ mid: i + 1, op: 'insert', collection: 'products', id: `m${i}`, fields: {} }));
    assertError(await mutate(server, admin, 'c-big', many), 413, 'payload_too_large', 'mutations');
  });

  test('missing or bad token -> 401 unauthorized', async () => {
    const body = { client: 'c-auth', mutations: [{ mid: 1, op: 'insert', collection: 'bills', id: 'a', fields: {} }] };
    assertError(await api(server, 'POST', '/v1/mutations', { body }), 401, 'unauthorized');
    assertError(await api(server, 'POST', '/v1/mutations', { body, token: 'not.a.jwt' }), 401, 'unauthorized');
    assertError(await api(server, 'POST', '/v1/mutations', { body, token: makeToken('admin-1', 'admin', { secret: 'wrong' }) }), 401, 'unauthorized');
    assertError(await api(server, 'POST', '/v1/mutations', { body, token: makeToken('admin-1', 'admin', { exp: 1000 }) }), 401, 'unauthorized');
    assertError(await api(server, 'POST', '/v1/mutations', { body, headers: { authorization: 'Basic abc' } }), 401, 'unauthorized');
    assertError(await api(server, 'GET', '/v1/snapshot?collections=bills'), 401, 'unauthorized');
    assertError(await api(server, 'GET', '/v1/events'), 401, 'unauthorized');
    // WebSocket: browsers cannot read the status of a failed upgrade, so the server upgrades,
    // sends the error frame and closes with 4000 + status.
    const ws = new WsClient(server, { token: 'bad.token.here' });
    await ws.waitFor((c) => c.closeInfo !== null, 3000, 'close');
    assert.equal(ws.closeInfo.code, 4401);
    assert.equal(ws.closeInfo.reason, 'unauthorized');
    assert.equal(ws.messages[0].type, 'error');
    assert.equal(ws.messages[0].error.code, 'unauthorized');
  });

  test('wrong role -> 403 forbidden', async () => {
    assertError(await mutate(server, alice, 'alice-role', [{ mid: 1, op: 'insert', collection: 'products', id: 'p', fields: {} }]), 403, 'forbidden', 'mutations[0].collection');
    assertError(await api(server, 'GET', '/v1/snapshot?collections=stock_transactions', { token: alice }), 403, 'forbidden', 'collections');
    assertError(await api(server, 'GET', '/v1/events?collections=stock_transactions', { token: alice }), 403, 'forbidden', 'collections');
    const ws = new WsClient(server, { token: alice, collections: 'stock_transactions' });
    await ws.waitFor((c) => c.closeInfo !== null, 3000, 'close');
    assert.equal(ws.closeInfo.code, 4403);
    assert.deepEqual(ws.messages[0].error, { code: 'forbidden', message: ws.messages[0].error.message, field: 'collections' });
  });

  test('WebSocket Origin not in the allow-list -> 403 before the upgrade', async () => {
    await assert.rejects(new WsClient(server, { token: admin, origin: 'http://evil.example' }).opened, (e) => {
      assert.equal(e.status, 403);
      assert.equal(JSON.parse(e.body).error.code, 'forbidden');
      return true;
    });
    const ok = new WsClient(server, { token: admin, origin: 'http://good.example' });
    await ok.opened;
    await ok.waitFor((c) => c.of('hello').length > 0);
    ok.close();
  });

  test("a core decoder's code reaches the client as it is, HTTP or WebSocket, with the registry's status", async () => {
    // src/core/error_codes.def: invalid_mutation and invalid_filter are 400, as invalid_request.
    const del = { mid: 1, op: 'delete', collection: 'products', id: 'p-del', ops: { n: { increment: 1 } } };
    assertError(await mutate(server, admin, 'c-core', [del]), 400, 'invalid_mutation', 'mutations[0].ops');
    assertError(await api(server, 'GET', '/v1/events?collections=bills&where=amount=zz.1', { token: admin }), 400, 'invalid_filter', 'where');
    const c = new WsClient(server, { token: admin, collections: 'products' });
    await c.opened;
    c.send({ type: 'mutate', client: 'c-core', mutations: [del] });
    await c.waitFor((x) => x.of('error').length >= 1);
    const e = c.of('error')[0].error;
    assert.equal(e.code, 'invalid_mutation');
    assert.equal(e.field, 'mutations[0].ops');
    c.close();
  });

  test('invalid WebSocket frames get an error frame and the socket stays open', async () => {
    const c = new WsClient(server, { token: admin, collections: 'products' });
    await c.opened;
    c.send('{oops');
    c.send({ type: 'launch' });
    c.send({ type: 'mutate', client: 'ws-bad', mutations: [{ mid: 1, op: 'insert', collection: 'products', id: 'bad id', fields: {} }] });
    await c.waitFor((x) => x.of('error').length >= 3);
    const errs = c.of('error').map((e) => e.error);
    assert.equal(errs[0].code, 'invalid_json');
    assert.equal(errs[1].code, 'invalid_request');
    assert.equal(errs[1].field, 'type');
    assert.equal(errs[2].field, 'mutations[0].id');
    c.send({ type: 'mutate', client: 'ws-bad', mutations: [{ mid: 1, op: 'insert', collection: 'products', id: 'ws-ok', fields: {} }] });
    await c.waitFor((x) => x.of('results').length === 1);
    assert.equal(c.of('results')[0].results[0].status, 'applied');
    assert.equal(c.closeInfo, null);
    c.close();
  });

  test('a client that keeps sending garbage is disconnected with 1008', async () => {
    const c = new WsClient(server, { token: admin });
    await c.opened;
    for (let i = 0; i < 40; i++) c.send('garbage');
    await c.waitFor((x) => x.closeInfo !== null, 5000, 'close');
    assert.equal(c.closeInfo.code, 1008);
  });

  test('a WebSocket frame over max_body_bytes closes with 1009', async () => {
    const c = new WsClient(server, { token: admin });
    await c.opened;
    c.send({ type: 'publish', name: 'big', data: { x: 'y'.repeat(70 * 1024) } });
    await c.waitFor((x) => x.closeInfo !== null, 5000, 'close');
    assert.equal(c.closeInfo.code, 1009);
  });

  test('a malformed HTTP request gets 400 and the server keeps serving', async () => {
    const reply = await new Promise((res, rej) => {
      const sock = net.connect(server.port, '127.0.0.1', () => sock.write('GARBAGE \x01\x02 nonsense\r\n\r\n'));
      let data = '';
      sock.on('data', (c) => (data += c));
      sock.on('end', () => res(data));
      sock.on('error', rej);
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
    assert.match(reply, /"code":"invalid_request"/);
    assert.equal((await api(server, 'GET', '/v1/health')).status, 200);
  });

  test('unknown route -> 404 not_found; wrong method -> 405', async () => {
    assertError(await api(server, 'GET', '/v1/nope'), 404, 'not_found');
    assert.equal((await api(server, 'PUT', '/v1/mutations')).status, 405);
  });

  test('nothing committed was lost by any of the above', async () => {
    const snap = await snapshotAll(server, admin, { collections: 'bills,products' });
    const ids = snap.docs.map((d) => d.id);
    assert.ok(ids.includes('keep-1') && ids.includes('keep-2'));
    assert.ok(!ids.includes('big') && !ids.includes('p') && !ids.includes('a'));
    const h = await api(server, 'GET', '/v1/health');
    assert.equal(h.status, 200);
    assert.ok(h.json.seq >= committedSeq);
  });
});

describe('rate limit', () => {
  let server;
  before(async () => {
    server = await startServer({ config: testConfig({ limits: { rate_limit_per_sec: 5, rate_limit_burst: 5 } }) });
  });
  after(async () => {
    await server?.cleanup();
  });

  test('per-token rate limit -> 429 rate_limited with Retry-After; other tokens unaffected', async () => {
    const t = makeToken('spammer', 'admin');
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await api(server, 'GET', '/v1/snapshot?collections=bills', { token: t }));
    const limited = results.filter((r) => r.status === 429);
    assert.ok(limited.length >= 5, `statuses: ${results.map((r) => r.status)}`);
    assertError(limited[0], 429, 'rate_limited');
    assert.ok(Number(limited[0].headers.get('retry-after')) >= 1);
    const other = await api(server, 'GET', '/v1/snapshot?collections=bills', { token: makeToken('calm', 'admin') });
    assert.equal(other.status, 200);
  });
});
