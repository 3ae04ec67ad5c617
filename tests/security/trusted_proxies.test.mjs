// Behind a load balancer every client shares the balancer's address. With `trusted_proxies`,
// the per-address limits (the token issuer's, failed tokens') key on the address the balancer
// saw (its X-Forwarded-For entry); from any other peer X-Forwarded-For is ignored, so a client
// cannot escape its own limit by naming another address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, testConfig } from '../server/helpers.mjs';

const limits = { rate_limit_per_sec: 1, rate_limit_burst: 3 };

async function issue(server, xff) {
  const res = await fetch(`${server.url}/v1/demo/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(xff ? { 'x-forwarded-for': xff } : {}) },
    body: JSON.stringify({ sub: 'u1', role: 'customer' }),
  });
  await res.text();
  return res.status;
}

async function badToken(server, xff) {
  const res = await fetch(`${server.url}/v1/snapshot?collections=products`, {
    headers: { authorization: 'Bearer nope', ...(xff ? { 'x-forwarded-for': xff } : {}) },
  });
  await res.text();
  return res.status;
}

test('behind a trusted proxy each forwarded client has its own address bucket', async (t) => {
  const server = await startServer({ config: testConfig({ trusted_proxies: ['127.0.0.1'], limits }) });
  t.after(() => server.cleanup());
  const a = [];
  for (let i = 0; i < 5; i++) a.push(await issue(server, '10.0.0.1'));
  assert.deepEqual(a.slice(0, 3), [200, 200, 200]);
  assert.ok(a.slice(3).includes(429), `10.0.0.1 is limited: ${a}`);
  // Another client behind the same balancer is not.
  assert.equal(await issue(server, '10.0.0.2'), 200);
  // A client-supplied entry left of the balancer's is not believed: the balancer's entry wins.
  assert.equal(await issue(server, '10.0.0.9, 10.0.0.3'), 200);
  assert.equal(await issue(server, '10.0.0.3'), 200);
  // Failed tokens are counted per forwarded address too.
  const bad = [];
  for (let i = 0; i < 6; i++) bad.push(await badToken(server, '10.0.0.4'));
  assert.ok(bad.includes(429), `10.0.0.4 is limited: ${bad}`);
  assert.equal(await badToken(server, '10.0.0.5'), 401);
});

test('from an untrusted peer X-Forwarded-For is ignored', async (t) => {
  const server = await startServer({ config: testConfig({ trusted_proxies: ['10.9.9.9'], limits }) });
  t.after(() => server.cleanup());
  const s = [];
  for (let i = 0; i < 6; i++) s.push(await issue(server, `10.0.1.${i}`));
  assert.ok(s.includes(429), `one bucket for the real peer whatever it claims: ${s}`);
});

test('trusted_proxies must be a list of addresses', async () => {
  await assert.rejects(startServer({ config: testConfig({ trusted_proxies: '127.0.0.1' }) }), /trusted_proxies/);
});
