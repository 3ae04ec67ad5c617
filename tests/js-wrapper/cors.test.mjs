// cors.ts with fake fetch: a refused origin, a server that is down, one that answers, offline,
// the cached diagnosis, and the stream failure codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CorsProbe, CORS_REASON_PREFIX, corsError, streamFailureCode } from '../../js-wrapper/dist/cors.js';

/** A fetch where `cors` and `no-cors` requests either answer or fail like the browser does. */
function fakeFetch({ cors, noCors }) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, mode: init.mode });
    const ok = init.mode === 'cors' ? cors : noCors;
    if (!ok) throw new TypeError('Failed to fetch');
    return { status: init.mode === 'no-cors' ? 0 : 200 };
  };
  return { f, calls };
}

test('server up, origin refused: cors', async () => {
  const { f, calls } = fakeFetch({ cors: false, noCors: true });
  const p = new CorsProbe('http://sync.test/', { fetch: f, online: () => true });
  assert.equal(await p.diagnose(), 'cors');
  assert.equal(await p.refused(), true);
  assert.deepEqual(calls.map((c) => c.mode), ['cors', 'no-cors'], 'the second call used the cached diagnosis');
  assert.equal(calls[0].url, 'http://sync.test/v1/health');
});

test('server down: unreachable; server answering: reachable (not CORS)', async () => {
  assert.equal(await new CorsProbe('http://x', { fetch: fakeFetch({ cors: false, noCors: false }).f, online: () => true }).diagnose(), 'unreachable');
  const up = fakeFetch({ cors: true, noCors: true });
  assert.equal(await new CorsProbe('http://x', { fetch: up.f, online: () => true }).diagnose(), 'reachable');
  assert.equal(up.calls.length, 1, 'an answered cors request settles it');
});

test('offline: no probe, no diagnosis', async () => {
  const { f, calls } = fakeFetch({ cors: false, noCors: true });
  assert.equal(await new CorsProbe('http://x', { fetch: f, online: () => false }).diagnose(), null);
  assert.equal(calls.length, 0);
});

test('the diagnosis is cached for cacheMs, concurrent callers share one probe', async () => {
  let t = 0;
  const { f, calls } = fakeFetch({ cors: false, noCors: true });
  const p = new CorsProbe('http://x', { fetch: f, online: () => true, now: () => t, cacheMs: 1000 });
  await Promise.all([p.diagnose(), p.diagnose(), p.diagnose()]);
  assert.equal(calls.length, 2);
  t = 999;
  await p.diagnose();
  assert.equal(calls.length, 2);
  t = 2000;
  await p.diagnose();
  assert.equal(calls.length, 4);
  p.reset();
  await p.diagnose();
  assert.equal(calls.length, 6);
});

test('a probe that hangs gives up after timeoutMs', async () => {
  const hang = (_u, init) => new Promise((_res, rej) => init.signal.addEventListener('abort', () => rej(new DOMException('aborted', 'AbortError'))));
  const p = new CorsProbe('http://x', { fetch: hang, online: () => true, timeoutMs: 20 });
  assert.equal(await p.diagnose(), 'unreachable');
});

test('error and stream failure codes', () => {
  const e = corsError('http://sync.test');
  assert.equal(e.code, 'cors');
  assert.match(e.message, /allowed_origins/);
  assert.equal(streamFailureCode(`${CORS_REASON_PREFIX}${e.message}`, false), 'cors');
  assert.equal(streamFailureCode('connect_failed', false), 'network');
  assert.equal(streamFailureCode('closed (4401)', true), 'unauthorized');
});
