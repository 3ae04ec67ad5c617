// Randomised bad input: valid requests mutated at random (seeded; rerun a failure with
// SYNCLINE_SEED=<seed>). Every answer must be 200 or a 4xx with exactly the error body of
// docs/protocol.md, never a 5xx or a dead server, and WebSocket frames must get `results` or
// `error` frames.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, makeToken, startServer, testConfig, WsClient } from './helpers.mjs';

const seed = Number(process.env.SYNCLINE_SEED || Date.now() % 1e9);

function rng(s) {
  let x = s >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

const weird = [null, true, false, 0, -1, 1.5, 2 ** 63, '', 'x', 'a b', '../..', '\u0000', '😀', [], {}, [1, [2]], { a: { b: {} } }, 'x'.repeat(300)];

function mutateValue(r, v, depth = 0) {
  const pick = (a) => a[Math.floor(r() * a.length)];
  if (r() < 0.25) return pick(weird);
  if (Array.isArray(v)) {
    const out = v.map((x) => (r() < 0.3 ? mutateValue(r, x, depth + 1) : x));
    if (r() < 0.2) out.push(pick(weird));
    if (r() < 0.1) out.splice(0, 1);
    return out;
  }
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) {
      if (r() < 0.1) continue; // drop a member
      out[r() < 0.05 ? k.toUpperCase() : k] = r() < 0.3 ? mutateValue(r, x, depth + 1) : x;
    }
    if (r() < 0.1) out[pick(['extra', 'type', 'base_version', 'fields'])] = pick(weird);
    return out;
  }
  return pick(weird);
}

function validBatch(i) {
  return {
    client: `fuzz-${i % 7}`,
    mutations: [
      { mid: 1000 + i * 3, op: 'insert', collection: 'products', id: `f-${i}`, fields: { n: i, tags: ['a'] } },
      { mid: 1001 + i * 3, op: 'update', collection: 'products', id: `f-${i}`, fields: { n: null }, base_version: 1 },
      { mid: 1002 + i * 3, op: 'delete', collection: 'bookings', id: `f-${i}` },
    ],
  };
}

function assertShape(r, ctx) {
  assert.ok(r.status === 200 || (r.status >= 400 && r.status < 500), `${ctx}: status ${r.status} ${r.text}`);
  if (r.status !== 200) {
    assert.deepEqual(Object.keys(r.json).sort(), ['error'], `${ctx}: ${r.text}`);
    assert.equal(typeof r.json.error.code, 'string');
    assert.equal(typeof r.json.error.message, 'string');
  }
}

describe(`random inputs (SYNCLINE_SEED=${seed})`, () => {
  let server;
  const admin = makeToken('admin-1', 'admin');
  before(async () => {
    server = await startServer({ config: testConfig({ limits: { max_batch: 20 } }) });
  });
  after(async () => {
    await server?.cleanup();
  });

  test('HTTP mutations, events and snapshots', async () => {
    const r = rng(seed);
    for (let i = 0; i < 150; i++) {
      const body = mutateValue(r, validBatch(i));
      const res = await api(server, 'POST', '/v1/mutations', { token: admin, body });
      assertShape(res, `seed ${seed} mutation #${i} ${JSON.stringify(body).slice(0, 300)}`);
      const ev = mutateValue(r, { name: 'x:y', collection: 'orders', id: 'o-1', data: { a: 1 } });
      assertShape(await api(server, 'POST', '/v1/events', { token: admin, body: ev }), `seed ${seed} event #${i}`);
      const params = mutateValue(r, { collections: 'bills,products', where: 'n=gt.1', limit: '10', after: 'x', cursor: '1' });
      if (params && typeof params === 'object' && !Array.isArray(params)) {
        const q = new URLSearchParams();
        for (const [k, v] of Object.entries(params)) q.set(k, typeof v === 'string' ? v : JSON.stringify(v));
        assertShape(await api(server, 'GET', `/v1/snapshot?${q}`, { token: admin }), `seed ${seed} snapshot #${i} ${q}`);
      }
    }
    assert.equal((await api(server, 'GET', '/v1/health')).status, 200);
  });

  test('WebSocket frames', async () => {
    const r = rng(seed + 1);
    const ws = new WsClient(server, { token: admin, collections: 'products' });
    await ws.opened;
    let sent = 0;
    for (let i = 0; i < 60; i++) {
      const frame = mutateValue(r, { type: 'mutate', ...validBatch(500 + i) });
      ws.send(frame);
      sent++;
      // Keep under the invalid-frame limit: a valid frame resets the counter.
      if (i % 10 === 9) {
        ws.send({ type: 'publish', name: 'keepalive', data: {} });
        ws.send({ type: 'mutate', ...validBatch(900 + i) });
        sent++;
      }
    }
    await ws.waitFor((c) => c.of('results').length + c.of('error').length >= sent, 5000, 'an answer per frame');
    assert.equal(ws.closeInfo, null, `seed ${seed}: socket stayed open`);
    ws.close();
  });
});
