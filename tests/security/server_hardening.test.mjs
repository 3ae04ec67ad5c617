// Server hardening. One test (or a few) per item of the hardening list
// (docs/reliability-security.md, Server hardening): static files stay inside --static, JSON nesting
// depth, catch-up memory of stalled resumes, fd exhaustion, scoped snapshots read by index,
// per-address rate limits (demo tokens, bad tokens), claims compared as exact strings, and who may
// publish / receive dataset-wide events.
// Each test starts its own syncline-server (--port 0, temporary DB) on loopback and always stops
// it; no mocks. Timing thresholds are generous (the figures are printed; bench/attacks.mjs
// measures them at full scale).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { api, makeToken, metrics, mutate, sleep, snapshotAll, SseClient, startServer, testConfig } from '../server/helpers.mjs';
import {
  countLog,
  freshRequest,
  healthProbe,
  memorySampler,
  nowS,
  parseRawResponse,
  percentile,
  procMemory,
  rawHttp,
  rawWs,
  stalledSse,
  timedHealth,
  withTimeout,
} from './lib.mjs';

const admin = makeToken('admin', 'admin');
const INDEX_HTML = '<!doctype html><title>INDEX-MARKER</title>';
const MiB = 1024 * 1024;

async function withServer(opts, fn) {
  const server = await startServer(opts);
  try {
    return await fn(server);
  } finally {
    await server.cleanup();
  }
}

function assertError(r, status, code, what, field) {
  const body = r.text ?? r.body;
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status}: ${String(body).slice(0, 300)}`);
  assert.ok(r.json && r.json.error, `${what}: error body missing: ${String(body).slice(0, 300)}`);
  assert.equal(r.json.error.code, code, `${what}: ${JSON.stringify(r.json).slice(0, 300)}`);
  assert.equal(typeof r.json.error.message, 'string', what);
  if (field !== undefined) assert.equal(r.json.error.field, field, `${what}: ${JSON.stringify(r.json)}`);
}

function alive(server, what) {
  assert.equal(server.proc.exitCode, null, `${what}: server exited with ${server.proc.exitCode} (${server.proc.signalCode})`);
  assert.equal(server.proc.signalCode, null, `${what}: server killed by ${server.proc.signalCode}`);
}

async function health(server, what) {
  alive(server, what);
  const r = await timedHealth(server);
  assert.equal(r.status, 200, `${what}: /v1/health ${r.status} ${r.error ?? ''}`);
  return r;
}

// Health on a fresh connection, retried for up to `ms` (the server may need a moment to notice
// closed sockets).
async function healthEventually(server, ms, what) {
  const until = Date.now() + ms;
  let r;
  do {
    r = await timedHealth(server, 2000);
    if (r.status === 200) return r;
    await sleep(100);
  } while (Date.now() < until);
  assert.equal(r.status, 200, `${what}: /v1/health did not answer 200 within ${ms} ms (${r.status} ${r.error ?? ''})`);
  return r;
}

// A request that failed at the socket: report whether the server died (and by which signal).
async function crashed(server, e) {
  await sleep(200);
  return { status: 0, text: `${e.message}; server exit ${server.proc.exitCode} signal ${server.proc.signalCode}` };
}

// Opens `n` plain TCP connections that send nothing (each holds a connection slot).
async function openIdle(server, n) {
  const socks = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect(server.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((res) => s.once('connect', res));
    socks.push(s);
  }
  return socks;
}

const deep = (n, leaf = '') => '['.repeat(n) + leaf + ']'.repeat(n);

function assertDepthRefusal(r, what) {
  assertError(r, 400, 'invalid_json', what);
  assert.match(r.json.error.message, /max_json_depth/, `${what}: message names the limit: ${r.json.error.message}`);
  assert.equal(r.json.error.field, 'body', `${what}: field`);
}

// ---------------------------------------------------------------------------------------------

describe('server hardening', () => {
  // 1. Static route: only files whose canonical path is under canonical(--static DIR).
  test('1. --static serves only files under the static root (absolute paths, %2F, .., symlinks -> 404)', { timeout: 60000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), 'syncline-static-'));
    const www = join(root, 'www');
    const outside = join(root, 'outside');
    mkdirSync(join(www, 'assets'), { recursive: true });
    mkdirSync(outside);
    const secret = `OUTSIDE-SECRET-${randomBytes(8).toString('hex')}`;
    const envMarker = `ENVMARKER${randomBytes(8).toString('hex')}`;
    writeFileSync(join(www, 'index.html'), INDEX_HTML);
    writeFileSync(join(www, 'assets', 'x.js'), 'console.log("ASSET-MARKER");');
    writeFileSync(join(outside, 'secret.txt'), secret);
    symlinkSync('/etc/passwd', join(www, 'passwd.txt')); // file symlink out of the root
    symlinkSync(join(outside, 'secret.txt'), join(www, 'leak.txt')); // file symlink out of the root
    symlinkSync(outside, join(www, 'outside')); // directory symlink out of the root
    try {
      await withServer({ args: ['--static', www], env: { SYNCLINE_TEST_ENV_MARKER: envMarker } }, async (server) => {
        const enc = (p) => p.split('/').map(encodeURIComponent).join('%2F');
        const attacks = [
          '//etc/passwd',
          '/%2Fetc%2Fpasswd',
          '/%2Fproc%2Fself%2Fenviron',
          '//proc/self/environ',
          '/..%2F..%2Fetc%2Fpasswd',
          '/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd',
          '/%2E%2E/%2E%2E/etc/passwd',
          `/${join(outside, 'secret.txt')}`, // "//tmp/.../secret.txt"
          `/${enc(join(outside, 'secret.txt'))}`,
          '/passwd.txt',
          '/leak.txt',
          '/outside/secret.txt',
          '/assets/../outside/secret.txt',
        ];
        const leaks = [];
        const spa = [];
        for (const target of attacks) {
          const r = await rawHttp(server, target);
          const leaked = /root:.*:0:0:/.test(r.body) || r.body.includes(secret) || r.body.includes(envMarker);
          // The SPA fallback (index.html for a last segment without a dot) is not a leak: the
          // spec asks for 404, but an app route answered with exactly index.html is tolerated.
          const last = decodeURIComponent(target.split('?')[0]).split('/').pop();
          if (!leaked && r.status === 200 && r.body === INDEX_HTML && !last.includes('.')) {
            spa.push(target);
            continue;
          }
          if (leaked || r.status !== 404 || r.json?.error?.code !== 'not_found') {
            // A leaked body is not echoed (it may be the process environment).
            leaks.push(`${target} -> ${r.status} ${leaked ? `LEAKED FILE CONTENT (${r.body.length} bytes)` : r.body.slice(0, 80).replace(/\n/g, '\\n')}`);
          }
        }
        console.log(`# static: ${attacks.length} traversal targets; answered with the SPA index.html: ${spa.length ? spa.join(' ') : 'none'}; answered otherwise than 404 not_found: ${leaks.length}`);
        assert.deepEqual(leaks, [], `every traversal target is 404 not_found with no file content:\n${leaks.join('\n')}`);
        // Normal files and the SPA fallback still work.
        for (const [target, marker] of [
          ['/', 'INDEX-MARKER'],
          ['/index.html', 'INDEX-MARKER'],
          ['/assets/x.js', 'ASSET-MARKER'],
          ['/app/route', 'INDEX-MARKER'],
        ]) {
          const r = await rawHttp(server, target);
          assert.equal(r.status, 200, `${target}: ${r.status} ${r.body.slice(0, 200)}`);
          assert.ok(r.body.includes(marker), `${target} serves its file`);
        }
        await health(server, 'after static attacks');
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  // 2. JSON nesting depth (limits.max_json_depth, default 64) on every parsed client text.
  const mutBody = (id, fieldsJson) =>
    `{"client":"deep","mutations":[{"mid":1,"op":"insert","collection":"products","id":"${id}","fields":{"x":${fieldsJson}}}]}`;

  test('2a. JSON nested 200,000 deep over HTTP (mutation, event, demo token): 400 invalid_json, server stays up', { timeout: 60000 }, async () => {
    await withServer({}, async (server) => {
      const seq0 = (await api(server, 'GET', '/v1/health')).json.seq;
      const outcomes = [];
      for (const [what, path, opts] of [
        ['mutation fields', '/v1/mutations', { token: admin, raw: mutBody('deep-200k', deep(200000)) }],
        ['POST /v1/events data', '/v1/events', { token: admin, raw: `{"name":"deep","data":{"x":${deep(200000)}}}` }],
        ['/v1/demo/token body', '/v1/demo/token', { raw: `{"sub":"a","role":"customer","x":${deep(200000)}}` }],
      ]) {
        const r = await api(server, 'POST', path, opts).catch((e) => crashed(server, e));
        outcomes.push(`${what}: ${r.status} ${r.json?.error?.code ?? r.text?.slice(0, 80) ?? ''}`);
        console.log(`# json depth 200k: ${outcomes.at(-1)}`);
        assertDepthRefusal(r, `${what} nested 200,000 deep`);
        await health(server, `after ${what} nested 200,000 deep`);
      }
      assert.equal((await api(server, 'GET', '/v1/health')).json.seq, seq0, 'nothing committed');
    });
  });

  test('2b. JSON nested 50,000 deep is refused and not stored; deep tokens / cursors refused; shallow JSON still accepted', { timeout: 60000 }, async () => {
    await withServer({}, async (server) => {
      const seq0 = (await api(server, 'GET', '/v1/health')).json.seq;
      const outcomes = [];
      const note = (what, r) => outcomes.push(`${what}: ${r.status} ${r.json?.error?.code ?? ''}`);
      let r = await api(server, 'POST', '/v1/mutations', { token: admin, raw: mutBody('deep-50k', deep(50000, '1')) }).catch((e) => crashed(server, e));
      note('mutation 50k', r);
      r.status === 400 || console.log(`# json depth 50k mutation: ${r.status} ${r.text?.slice(0, 120)}`);
      assertDepthRefusal(r, 'mutation fields nested 50,000 deep');
      r = await api(server, 'POST', '/v1/events', { token: admin, raw: `{"name":"deep50k","data":{"x":${deep(50000)}}}` }).catch((e) => crashed(server, e));
      note('event 50k', r);
      assertDepthRefusal(r, 'POST /v1/events data nested 50,000 deep');

      // A token whose payload nests deep (as deep as the 32 KiB header limit allows) and a
      // snapshot `after` cursor that nests deep: refused, server up.
      const b64 = (s) => Buffer.from(s).toString('base64url');
      const deepTok = `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64(`{"sub":"a","role":"admin","exp":${nowS() + 3600},"x":${deep(8000)}}`)}.AAAA`;
      r = await api(server, 'GET', '/v1/snapshot?collections=products', { headers: { authorization: `Bearer ${deepTok}` } });
      note('token 8k', r);
      assert.equal(r.status, 401, 'a token nesting deep is refused');
      r = await api(server, 'GET', `/v1/snapshot?collections=products&after=${b64(`{"c":"products","i":"a","s":1,"x":${deep(8000)}}`)}`, { token: admin });
      note('after cursor 8k', r);
      assert.equal(r.status, 400, 'a snapshot cursor nesting deep is refused');

      // A normally nested document is still accepted (control).
      r = await api(server, 'POST', '/v1/mutations', { token: admin, raw: mutBody('shallow', deep(10, '1')) });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.results[0].status, 'applied');

      console.log(`# json depth: ${outcomes.join('; ')}`);
      const snap = await snapshotAll(server, admin, { collections: 'products' });
      assert.deepEqual(snap.docs.map((d) => d.id), ['shallow'], 'only the shallow document was stored');
      assert.equal((await api(server, 'GET', '/v1/health')).json.seq, seq0 + 1, 'nothing but the control mutation committed');
    });
  });

  test('2c. WebSocket frames nested deep (mutate 200,000, publish 50,000): invalid_json error frames, server stays up', { timeout: 60000 }, async () => {
    await withServer({}, async (server) => {
      const seq0 = (await api(server, 'GET', '/v1/health')).json.seq;
      const ws = rawWs(server, { params: { access_token: admin, collections: 'products' } });
      try {
        await ws.waitFor((o) => o.messages.some((m) => m.type === 'hello'), 5000, 'hello');
        ws.send(`{"type":"mutate","client":"deep-ws","mutations":[{"mid":1,"op":"insert","collection":"products","id":"deep-ws","fields":{"x":${deep(200000)}}}]}`);
        await ws.waitFor((o) => o.close || o.messages.some((m) => m.type === 'error' || m.type === 'results'), 10000, 'answer to the deep mutate frame');
        const e1 = ws.messages.find((m) => m.type === 'error' || m.type === 'results');
        if (!e1) await sleep(200); // a crash shows as close 1006; let the exit be seen
        console.log(`# json depth, ws mutate 200k: ${JSON.stringify(e1 ?? ws.close).slice(0, 160)}; server exit ${server.proc.exitCode} ${server.proc.signalCode}`);
        assert.equal(e1?.type, 'error', `deep WS mutate frame answered with an error frame: ${JSON.stringify(e1 ?? ws.close).slice(0, 200)}`);
        assert.equal(e1.error.code, 'invalid_json', JSON.stringify(e1));
        await health(server, 'after the deep WS mutate frame');
        const n = ws.messages.length;
        ws.send(`{"type":"publish","name":"deep-ws","data":{"x":${deep(50000)}}}`);
        await ws.waitFor((o) => o.close || o.messages.slice(n).some((m) => m.type === 'error' || m.type === 'event'), 10000, 'answer to the deep publish frame');
        const e2 = ws.messages.slice(n).find((m) => m.type === 'error' || m.type === 'event');
        assert.equal(e2?.type, 'error', `deep WS publish frame answered with an error frame: ${JSON.stringify(e2).slice(0, 200)}`);
        assert.equal(e2.error.code, 'invalid_json');
        assert.equal(ws.close, null, 'two refused frames do not close the socket');
      } finally {
        ws.terminate();
      }
      await health(server, 'after the deep WS frames');
      assert.equal((await api(server, 'GET', '/v1/health')).json.seq, seq0, 'nothing committed');
    });
  });

  // 3. Resume catch-up of streams that never read is bounded by limits.catchup_memory_bytes.
  test('3. 40 stalled SSE resumes from cursor 0 hold bounded memory; /v1/health keeps answering', { timeout: 90000 }, async () => {
    // Smaller than the full-scale 2,000 x 7 KB (bench/attacks.mjs runs that) but the same per-stream
    // volume order: 400 bookings of 32 KB = 12.5 MiB of catch-up per stream, 40 streams.
    const ROWS = 400;
    const ROW_BYTES = 32 * 1024;
    const STREAMS = 40;
    const budget = 32 * MiB;
    const config = testConfig({ limits: { heartbeat_ms: 5000, catchup_memory_bytes: budget } });
    await withServer({ config }, async (server) => {
      const cust = makeToken('cust-1', 'customer');
      const pad = 'p'.repeat(ROW_BYTES);
      const perBatch = Math.floor((900 * 1024) / (ROW_BYTES + 200));
      let mid = 0;
      for (let i = 0; i < ROWS; i += perBatch) {
        const muts = [];
        for (let k = i; k < Math.min(ROWS, i + perBatch); k++) {
          muts.push({ mid: ++mid, op: 'insert', collection: 'bookings', id: `bk-${k}`, fields: { customer_id: 'cust-1', hall: 'h', date: 'd', slot: `s${k}`, pad } });
        }
        const r = await mutate(server, cust, 'cust-1-seed', muts);
        assert.equal(r.status, 200, r.text);
      }
      await sleep(300);
      const pid = server.proc.pid;
      const base = procMemory(pid);
      const sampler = memorySampler(pid, 50);
      const probe = healthProbe(server, 150);
      const socks = [];
      const statuses = [];
      try {
        const t0 = Date.now();
        for (let i = 0; i < STREAMS; i++) {
          const s = await stalledSse(server, `/v1/events?cursor=0&collections=bookings&access_token=${cust}`);
          socks.push(s.sock);
          statuses.push(s.status);
        }
        const openMs = Date.now() - t0;
        await sleep(3000);
        const mem = sampler.stop();
        const samples = await probe.stop();
        const end = procMemory(pid);
        const peak = Math.max(mem.peakRss, end.hwm > base.hwm ? end.hwm : 0);
        const growth = peak - base.rss;
        const lat = samples.map((x) => x.ms);
        const bad = samples.filter((x) => x.status !== 200);
        console.log(
          `# catch-up: ${STREAMS} stalled streams x ${ROWS} rows x ${ROW_BYTES / 1024} KB (${((ROWS * ROW_BYTES) / MiB).toFixed(1)} MiB each), opened in ${openMs} ms; ` +
            `RSS before ${base.rss.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB (growth ${growth.toFixed(1)} MiB, bound ${(budget / MiB + 64).toFixed(0)} MiB), end ${end.rss.toFixed(1)} MiB; ` +
            `health n=${lat.length} p50 ${percentile(lat, 50).toFixed(1)} ms max ${Math.max(...lat).toFixed(1)} ms, non-200 ${bad.length}`,
        );
        assert.deepEqual(statuses.filter((s) => s !== 200), [], 'all 40 streams were accepted (max_streams_per_user is 64)');
        assert.ok(growth < budget / MiB + 64, `server RSS grew by ${growth.toFixed(1)} MiB; the catch-up budget is ${budget / MiB} MiB (+64 MiB slack)`);
        assert.equal(bad.length, 0, `every health probe answered 200: ${JSON.stringify(bad.slice(0, 3))}`);
        assert.ok(lat.length >= 5, 'health was probed during the attack');
        assert.ok(Math.max(...lat) < 1000, `health answered within 1 s each (max ${Math.max(...lat).toFixed(0)} ms)`);
        alive(server, 'after the stalled resumes');
      } finally {
        sampler.stop();
        await probe.stop();
        for (const s of socks) s.destroy();
      }
    });
  });

  // 3b. limits.max_streams_per_user (default 64): concurrent SSE + WS streams per token subject.
  test('3b. max_streams_per_user (default 64): the 65th stream of one subject is refused (SSE 429, WS 4429); another subject is not', { timeout: 60000 }, async () => {
    await withServer({}, async (server) => {
      const cust = makeToken('cust-1', 'customer');
      const socks = [];
      try {
        for (let i = 0; i < 64; i++) {
          const s = await stalledSse(server, `/v1/events?collections=bookings&access_token=${cust}`);
          socks.push(s.sock);
          assert.equal(s.status, 200, `stream ${i + 1} of 64 is accepted`);
        }
        await sleep(100);
        const sse = await rawHttp(server, `/v1/events?collections=bookings&access_token=${cust}`, { headers: { accept: 'text/event-stream' }, timeout: 1500 });
        const ws = rawWs(server, { params: { access_token: cust, collections: 'bookings' } });
        await withTimeout(ws.waitFor((o) => o.close || o.status || o.messages.some((m) => m.type === 'hello'), 5000, 'ws answer'), 6000, 'ws answer');
        const other = await rawHttp(server, `/v1/events?collections=bookings&access_token=${makeToken('cust-2', 'customer')}`, { headers: { accept: 'text/event-stream' }, timeout: 1000 });
        console.log(`# max_streams_per_user: 65th SSE -> ${sse.status} ${sse.json?.error?.code ?? ''}; 65th WS -> ${ws.close ? `close ${ws.close.code} ${ws.close.reason}` : ws.status || 'open'}; other subject -> ${other.status}`);
        ws.terminate();
        assertError({ status: sse.status, json: sse.json, text: sse.body }, 429, 'rate_limited', '65th SSE stream of one subject', 'sub');
        assert.equal(ws.close?.code, 4429, `65th WS stream: ${JSON.stringify(ws.close)} status ${ws.status}`);
        assert.equal(other.status, 200, 'another subject still opens a stream');
      } finally {
        for (const s of socks) s.destroy();
      }
    });
  });

  // 4. File descriptors: every accepted connection counts (limits.max_http_connections), the
  // excess is refused with 503, accept errors back off and are logged at most once a second.
  const PRLIMIT = ['prlimit', '--nofile=128:128', '--'];

  // Opens `n` connections, each sending one keep-alive GET /v1/health, and sorts them after
  // `waitMs`: answered (status), closed without an answer, or still waiting.
  async function flood(server, n, waitMs) {
    const conns = [];
    for (let i = 0; i < n; i++) {
      const c = { sock: net.connect(server.port, '127.0.0.1'), data: '', closed: false, error: null };
      c.sock.on('data', (d) => (c.data += d.toString('latin1')));
      c.sock.on('close', () => (c.closed = true));
      c.sock.on('error', (e) => (c.error = e.code));
      c.sock.on('connect', () => c.sock.write(`GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
      conns.push(c);
    }
    await sleep(waitMs);
    const tally = { ok200: 0, refused503: 0, closed: 0, pending: 0, other: 0 };
    for (const c of conns) {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(c.data);
      if (m && m[1] === '200') tally.ok200++;
      else if (m && m[1] === '503') tally.refused503++;
      else if (m) tally.other++;
      else if (c.closed || c.error) tally.closed++;
      else tally.pending++;
    }
    return { conns, tally, close: () => conns.forEach((c) => c.sock.destroy()) };
  }

  test('4a. under RLIMIT_NOFILE 128: 300 connections -> the excess refused or closed, no accept-error storm, health recovers', { timeout: 60000 }, async () => {
    await withServer({ wrap: PRLIMIT }, async (server) => {
      const logs0 = countLog(server, 'accept failed');
      const f = await flood(server, 300, 5000);
      const acceptFailedLines = countLog(server, 'accept failed') - logs0;
      console.log(`# fd exhaustion (nofile 128, 300 connections, 5 s): ${JSON.stringify(f.tally)}; "accept failed" log lines: ${acceptFailedLines}`);
      try {
        assert.ok(acceptFailedLines < 20, `"accept failed" logged ${acceptFailedLines} times in 5 s (must back off and rate-limit the log)`);
        assert.ok(f.tally.refused503 + f.tally.closed >= 300 - 128, `the connections over the limit are refused (503) or closed, not left hanging: ${JSON.stringify(f.tally)}`);
        for (const c of f.conns) {
          if (/^HTTP\/1\.[01] 503/.test(c.data)) {
            const j = JSON.parse(c.data.slice(c.data.indexOf('\r\n\r\n') + 4));
            assert.equal(j.error.code, 'unavailable');
            assert.match(c.data, /\r\nRetry-After: \d+/i);
            break;
          }
        }
        alive(server, 'during the connection flood');
      } finally {
        f.close();
      }
      await healthEventually(server, 5000, 'after the idle connections closed');
    });
  });

  test('4b. limits.max_http_connections 20: the 21st concurrent connection reads 503 unavailable', { timeout: 30000 }, async () => {
    const config = testConfig({ limits: { max_http_connections: 20 } });
    await withServer({ config }, async (server) => {
      const idle = await openIdle(server, 20);
      try {
        await sleep(300);
        // The 21st: the refusal may come at once (before any request) or after the request.
        const r = await new Promise((resolve) => {
          const s = net.connect(server.port, '127.0.0.1');
          const chunks = [];
          const done = (error) => {
            clearTimeout(t1);
            clearTimeout(t2);
            s.destroy();
            resolve(parseRawResponse(Buffer.concat(chunks), error));
          };
          const t1 = setTimeout(() => {
            if (!chunks.length) {
              s.write('GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
            }
          }, 300);
          const t2 = setTimeout(() => done('timeout'), 4000);
          s.on('data', (c) => chunks.push(c));
          s.on('end', () => done());
          s.on('close', () => done());
          s.on('error', (e) => done(e.code));
        });
        console.log(`# max_http_connections 20: 21st connection -> ${r.status} ${r.body.slice(0, 160)} ${r.error ?? ''}`);
        assert.equal(r.status, 503, `the 21st connection is refused with 503: ${JSON.stringify(r).slice(0, 300)}`);
        assert.ok(r.json?.error, r.body);
        assert.equal(r.json.error.code, 'unavailable');
        assert.match(r.json.error.message, /too many connections/);
        assert.ok(Number(r.headers['retry-after']) >= 1, `Retry-After: ${r.headers['retry-after']}`);
      } finally {
        for (const s of idle) s.destroy();
      }
      await healthEventually(server, 5000, 'after the idle connections closed');
    });
  });

  test('4c. accept errors (EMFILE) back off: at most a few "accept failed" lines, health recovers', { timeout: 60000 }, async () => {
    // A connection cap above the fd limit, so accept itself runs out of descriptors.
    const config = testConfig({ limits: { max_http_connections: 1000 } });
    await withServer({ config, wrap: PRLIMIT }, async (server) => {
      const logs0 = countLog(server, 'accept failed');
      const f = await flood(server, 300, 5000);
      const lines = server.logs.filter((l) => l.includes('"msg":"accept failed"'));
      const n = lines.length - logs0;
      console.log(`# EMFILE (nofile 128, cap 1000, 300 connections, 5 s): ${JSON.stringify(f.tally)}; "accept failed" lines ${n}; last: ${lines.at(-1)?.slice(0, 200)}`);
      try {
        assert.ok(n < 20, `"accept failed" logged ${n} times in 5 s (at most once a second)`);
        // (A server that caps connections below the fd limit anyway never hits EMFILE: n = 0.)
        if (n > 0) assert.ok(lines.some((l) => /"count":\d+/.test(l)), 'the log line carries the failure count');
        alive(server, 'during EMFILE');
      } finally {
        f.close();
      }
      await healthEventually(server, 5000, 'after the connections closed');
    });
  });

  // 5. A scoped snapshot reads by index: syncline_snapshot_rows_read_total.
  test('5. a customer who sees 0 of 4,000 bookings: its snapshot reads < 10 rows (syncline_snapshot_rows_read_total)', { timeout: 60000 }, async () => {
    await withServer({}, async (server) => {
      let mid = 0;
      for (let b = 0; b < 8; b++) {
        const muts = [];
        for (let i = b * 500; i < (b + 1) * 500; i++) {
          muts.push({ mid: ++mid, op: 'insert', collection: 'bookings', id: `bk-${String(i).padStart(5, '0')}`, fields: { customer_id: `other-${i % 50}`, hall: `h${i % 7}`, date: `d${i}`, slot: 'am' } });
        }
        const r = await mutate(server, admin, 'seed', muts);
        assert.equal(r.status, 200, r.text);
      }
      const name = 'syncline_snapshot_rows_read_total';
      const m0 = (await metrics(server))[name];
      assert.equal(typeof m0, 'number', `/metrics has ${name}`);
      const cust = makeToken('cust-1', 'customer');
      const t0 = performance.now();
      const r = await api(server, 'GET', '/v1/snapshot?collections=bookings', { token: cust });
      const ms = performance.now() - t0;
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.docs, []);
      const m1 = (await metrics(server))[name];
      // Control: it counts rows (the admin reads all 4,000), and a customer with 3 own bookings
      // reads about 3.
      await api(server, 'GET', '/v1/snapshot?collections=bookings&limit=5000', { token: admin });
      const m2 = (await metrics(server))[name];
      const own = [1, 2, 3].map((i) => ({ mid: ++mid, op: 'insert', collection: 'bookings', id: `own-${i}`, fields: { customer_id: 'cust-1', hall: 'own', date: 'x', slot: `${i}` } }));
      assert.equal((await mutate(server, admin, 'seed', own)).status, 200);
      const r3 = await api(server, 'GET', '/v1/snapshot?collections=bookings', { token: cust });
      assert.equal(r3.json.docs.length, 3);
      const m3 = (await metrics(server))[name];
      console.log(`# scoped snapshot: customer with 0 of 4,000 read ${m1 - m0} rows (${ms.toFixed(1)} ms); admin read ${m2 - m1}; customer with 3 read ${m3 - m2}`);
      assert.ok(m1 - m0 < 10, `the customer's snapshot read ${m1 - m0} rows`);
      assert.ok(m2 - m1 >= 4000, `the admin's snapshot read ${m2 - m1} rows`);
      assert.ok(m3 - m2 < 13, `3 own bookings read ${m3 - m2} rows`);
    });
  });

  // 6. /v1/demo/token: rate limited per address, not per address:port.
  test('6. /v1/demo/token is rate limited per address (new TCP connection per request)', { timeout: 30000 }, async () => {
    const config = testConfig({ limits: { rate_limit_per_sec: 1, rate_limit_burst: 3 } });
    await withServer({ config }, async (server) => {
      const out = [];
      for (let i = 0; i < 10; i++) {
        out.push(await freshRequest(server, 'POST', '/v1/demo/token', { body: JSON.stringify({ sub: `u${i}`, role: 'customer' }) }));
      }
      const statuses = out.map((r) => r.status);
      console.log(`# demo token, 10 requests on fresh connections (1/s, burst 3): ${statuses.join(' ')}`);
      const limited = out.filter((r) => r.status === 429);
      assert.ok(limited.length >= 1, `at least one 429: ${statuses.join(' ')}`);
      assert.ok(statuses.filter((s) => s === 200).length <= 5, `at most burst + refill served: ${statuses.join(' ')}`);
      for (const r of limited) {
        assertError(r, 429, 'rate_limited', 'demo token over the limit');
        assert.ok(Number(r.headers['retry-after']) >= 1, 'Retry-After');
      }
    });
  });

  // 7. A claim in a rule compares as the exact string.
  test('7. customer_id=eq.{sub}: a claim matches only the same string (snapshot, stream, resume, writes)', { timeout: 60000 }, async () => {
    await withServer({}, async (server) => {
      const subs = ['4242', '04242', '4.242e3'];
      const tok = Object.fromEntries(subs.map((s) => [s, makeToken(s, 'customer')]));
      const seq0 = (await api(server, 'GET', '/v1/health')).json.seq;
      const bk = (mid, id, customer_id, slot) => ({ mid, op: 'insert', collection: 'bookings', id, fields: { customer_id, hall: 'h', date: 'd', slot } });
      let r = await mutate(server, admin, 'seed', [bk(1, 'b-num', 4242, '1'), bk(2, 'b-str', '4242', '2')]);
      assert.equal(r.status, 200, r.text);
      const want = { 4242: ['b-str'], '04242': [], '4.242e3': [] };
      const seen = {};
      for (const s of subs) {
        const snap = await snapshotAll(server, tok[s], { collections: 'bookings' });
        seen[`snapshot ${s}`] = snap.docs.map((d) => d.id).sort();
      }
      // Streams: a resume from before the inserts (catch-up) and a live one.
      const streams = [];
      for (const s of subs) {
        const resume = new SseClient(server, { token: tok[s], collections: 'bookings,products', cursor: seq0 });
        const live = new SseClient(server, { token: tok[s], collections: 'bookings,products' });
        streams.push({ s, resume, live });
      }
      try {
        for (const { resume, live } of streams) {
          await resume.opened;
          await live.opened;
          await live.waitFor((c) => c.events.some((e) => e.event === 'hello'), 5000, 'hello');
        }
        r = await mutate(server, admin, 'seed', [bk(3, 'b-num2', 4242, '3'), bk(4, 'b-str2', '4242', '4'), { mid: 5, op: 'insert', collection: 'products', id: 'marker', fields: {} }]);
        assert.equal(r.status, 200, r.text);
        for (const { s, resume, live } of streams) {
          for (const [kind, c] of [['resume', resume], ['live', live]]) {
            await c.waitFor((x) => x.changes().some((m) => m.id === 'marker'), 5000, `${kind} ${s} marker`);
            seen[`${kind} ${s}`] = c.changes().filter((m) => m.collection === 'bookings').map((m) => m.id).sort();
          }
        }
      } finally {
        for (const { resume, live } of streams) {
          resume.close();
          live.close();
        }
      }
      // Writes are judged the same way.
      const writes = {};
      let wm = 0;
      for (const [s, id, cid] of [
        ['4242', 'w-num', 4242],
        ['04242', 'w-num0', 4242],
        ['4.242e3', 'w-exp', 4242],
        ['4242', 'w-str', '4242'],
      ]) {
        const w = await mutate(server, tok[s], `c-${s}`, [bk(++wm, id, cid, `w${wm}`)]);
        writes[`${s} inserts customer_id ${JSON.stringify(cid)}`] =
          w.status === 200 ? (w.json.results[0].status === 'applied' ? 'applied' : `rejected ${w.json.results[0].code}`) : `${w.status} ${w.json?.error?.code}`;
      }
      console.log(`# exact-string claims: ${JSON.stringify(seen)}; writes ${JSON.stringify(writes)}`);
      assert.deepEqual(seen, {
        'snapshot 4242': want[4242],
        'snapshot 04242': [],
        'snapshot 4.242e3': [],
        'resume 4242': ['b-str', 'b-str2'],
        'live 4242': ['b-str2'],
        'resume 04242': [],
        'live 04242': [],
        'resume 4.242e3': [],
        'live 4.242e3': [],
      });
      const forbidden = (v) => v === '403 forbidden' || v === 'rejected forbidden';
      assert.ok(forbidden(writes['4242 inserts customer_id 4242']), `sub "4242" may not insert customer_id 4242 (number): ${writes['4242 inserts customer_id 4242']}`);
      assert.ok(forbidden(writes['04242 inserts customer_id 4242']), `sub "04242": ${writes['04242 inserts customer_id 4242']}`);
      assert.ok(forbidden(writes['4.242e3 inserts customer_id 4242']), `sub "4.242e3": ${writes['4.242e3 inserts customer_id 4242']}`);
      assert.equal(writes['4242 inserts customer_id "4242"'], 'applied');
    });
  });

  // 8a. Dataset-wide events (no collection): who may publish / receive them ("events" config).
  test('8a. publish: events.publish decides who may publish dataset-wide events (default nobody; open mode anyone)', { timeout: 60000 }, async () => {
    const cust = makeToken('cust-1', 'customer');
    // The test config lets only the admin publish dataset-wide events.
    await withServer({}, async (server) => {
      const seq0 = (await api(server, 'GET', '/v1/health')).json.seq;
      const r = await api(server, 'POST', '/v1/events', { token: cust, body: { name: 'announce', data: { text: 'from a customer' } } });
      assertError(r, 403, 'forbidden', 'customer dataset-wide POST /v1/events', 'collection');
      // Over WebSocket: an error frame, nothing broadcast.
      const ws = rawWs(server, { params: { access_token: cust, collections: 'bookings' } });
      await ws.waitFor((o) => o.messages.some((m) => m.type === 'hello'), 5000, 'hello');
      ws.send({ type: 'publish', name: 'announce-ws' });
      await ws.waitFor((o) => o.messages.some((m) => m.type === 'error' || m.type === 'event'), 5000, 'answer to the customer publish frame');
      const ans = ws.messages.find((m) => m.type === 'error' || m.type === 'event');
      ws.terminate();
      assert.equal(ans.type, 'error', `customer WS dataset-wide publish: ${JSON.stringify(ans)}`);
      assert.equal(ans.error.code, 'forbidden');
      assert.equal((await api(server, 'GET', '/v1/health')).json.seq, seq0, 'no refused event got a seq');
      // Scoped events about a document the customer can read still work.
      assert.equal((await mutate(server, admin, 'seed', [{ mid: 1, op: 'insert', collection: 'bookings', id: 'b1', fields: { customer_id: 'cust-1', hall: 'h', date: 'd', slot: '1' } }])).status, 200);
      const scoped = await api(server, 'POST', '/v1/events', { token: cust, body: { name: 'ping', collection: 'bookings', id: 'b1' } });
      assert.equal(scoped.status, 200, scoped.text);
      // An admin's dataset-wide publish is accepted under the same test config.
      const adminPub = await api(server, 'POST', '/v1/events', { token: admin, body: { name: 'announce' } });
      assert.equal(adminPub.status, 200, `admin dataset-wide publish: ${adminPub.text}`);
    });
    // A config without an "events" key: nobody may publish dataset-wide events, not even an admin.
    const { events: _unused, ...noEvents } = testConfig();
    await withServer({ config: noEvents }, async (server) => {
      for (const token of [cust, admin]) {
        const r = await api(server, 'POST', '/v1/events', { token, body: { name: 'announce' } });
        assertError(r, 403, 'forbidden', 'dataset-wide publish without an "events" key', 'collection');
      }
    });
    // Open mode (no --config): anyone may publish a dataset-wide event.
    await withServer({ noConfig: true, env: { SYNCLINE_JWT_SECRET: 'test-secret-0123456789' } }, async (server) => {
      const r = await api(server, 'POST', '/v1/events', { token: cust, body: { name: 'open-mode' } });
      assert.equal(r.status, 200, `open mode: ${r.text}`);
    });
  });

  test('8a. read: dataset-wide events with events.read {admin: all} customer streams (live, resume, WS) do not receive them', { timeout: 60000 }, async () => {
    const cust = makeToken('cust-1', 'customer');
    // events.read: admins only. A customer's live and resumed streams never carry the admin's
    // dataset-wide event; an admin stream does.
    const config = testConfig({ events: { publish: { admin: 'all' }, read: { admin: 'all' } } });
    await withServer({ config }, async (server) => {
      const seq0 = (await api(server, 'GET', '/v1/health')).json.seq;
      const custLive = new SseClient(server, { token: cust, collections: 'bookings' });
      const adminLive = new SseClient(server, { token: admin, collections: 'bookings' });
      const custWs = rawWs(server, { params: { access_token: cust, collections: 'bookings' } });
      try {
        await custLive.opened;
        await adminLive.opened;
        await custLive.waitFor((c) => c.events.some((e) => e.event === 'hello'), 5000, 'hello');
        await adminLive.waitFor((c) => c.events.some((e) => e.event === 'hello'), 5000, 'hello');
        await custWs.waitFor((o) => o.messages.some((m) => m.type === 'hello'), 5000, 'ws hello');
        const p = await api(server, 'POST', '/v1/events', { token: admin, body: { name: 'admins-only', data: { secret: 1 } } });
        assert.equal(p.status, 200, p.text);
        const m = await mutate(server, admin, 'seed', [{ mid: 1, op: 'insert', collection: 'bookings', id: 'marker', fields: { customer_id: 'cust-1', hall: 'h', date: 'd', slot: 'm' } }]);
        assert.equal(m.status, 200, m.text);
        const custResume = new SseClient(server, { token: cust, collections: 'bookings', cursor: seq0 });
        try {
          for (const [what, c] of [['customer live', custLive], ['admin live', adminLive], ['customer resume', custResume]]) {
            await c.waitFor((x) => x.changes().some((ch) => ch.id === 'marker'), 5000, `${what} marker`);
          }
          await custWs.waitFor((o) => o.messages.some((x) => x.type === 'change' && x.id === 'marker'), 5000, 'ws marker');
          const got = (c) => c.events.filter((e) => e.event === 'event').map((e) => e.json.name);
          const seen = {
            'customer live': got(custLive),
            'customer resume': got(custResume),
            'customer ws': custWs.messages.filter((x) => x.type === 'event').map((x) => x.name),
            'admin live': got(adminLive),
          };
          console.log(`# dataset-wide events with read {admin: all}: ${JSON.stringify(seen)}`);
          assert.deepEqual(seen, { 'customer live': [], 'customer resume': [], 'customer ws': [], 'admin live': ['admins-only'] });
        } finally {
          custResume.close();
        }
      } finally {
        custLive.close();
        adminLive.close();
        custWs.terminate();
      }
    });
  });

  // 8b. Requests with a missing / invalid / expired token are rate limited per address.
  test('8b. bad-token requests are rate limited per address (429 after the burst); valid tokens keep working', { timeout: 30000 }, async () => {
    const config = testConfig({ demo_tokens: false, limits: { rate_limit_per_sec: 1, rate_limit_burst: 5 } });
    await withServer({ config }, async (server) => {
      const bad = [undefined, 'not-a-jwt', makeToken('x', 'admin', { exp: nowS() - 60 }), makeToken('x', 'admin', { secret: 'wrong-secret-0123456789' })];
      const out = [];
      for (let i = 0; i < 20; i++) {
        const t = bad[i % bad.length];
        const headers = t ? { authorization: `Bearer ${t}` } : {};
        out.push(
          i % 2 === 0
            ? await freshRequest(server, 'GET', '/v1/snapshot?collections=bills', { headers })
            : await freshRequest(server, 'POST', '/v1/mutations', { headers, body: JSON.stringify({ client: 'x', mutations: [] }) }),
        );
      }
      const statuses = out.map((r) => r.status);
      const ok = await freshRequest(server, 'GET', '/v1/snapshot?collections=bills', { headers: { authorization: `Bearer ${admin}` } });
      const okCust = await freshRequest(server, 'GET', '/v1/snapshot?collections=bills', { headers: { authorization: `Bearer ${makeToken('cust-1', 'customer')}` } });
      console.log(`# bad tokens, 20 requests on fresh connections (1/s, burst 5): ${statuses.join(' ')}; then valid admin ${ok.status}, valid customer ${okCust.status}`);
      assert.equal(statuses[0], 401, 'the first bad-token request is answered 401');
      const limited = out.filter((r) => r.status === 429);
      assert.ok(limited.length >= 10, `after the burst bad-token requests get 429: ${statuses.join(' ')}`);
      assert.deepEqual([...new Set(statuses)].sort(), [401, 429], statuses.join(' '));
      for (const r of limited) {
        assertError(r, 429, 'rate_limited', 'bad token over the limit');
        assert.ok(Number(r.headers['retry-after']) >= 1, 'Retry-After');
      }
      assert.equal(ok.status, 200, `a valid token from the same address is served: ${ok.text}`);
      assert.equal(okCust.status, 200, `a valid customer token from the same address is served: ${okCust.text}`);
    });
  });

  // 9. Found in the review of every route: a snapshot page is bounded in bytes as well as in
  // documents, a `where` in conditions, and connections per address when configured.
  test('9a. a snapshot page stops at limits.snapshot_max_bytes and pages on; nothing is lost', { timeout: 30000 }, async () => {
    const config = testConfig({ limits: { snapshot_max_bytes: 8000 } });
    await withServer({ config }, async (server) => {
      const pad = 'x'.repeat(2000);
      const muts = Array.from({ length: 12 }, (_, i) => ({ mid: i + 1, op: 'insert', collection: 'products', id: `p${String(i).padStart(2, '0')}`, fields: { pad } }));
      assert.equal((await mutate(server, admin, 'seed', muts)).status, 200);
      const first = await api(server, 'GET', '/v1/snapshot?collections=products&limit=1000', { token: admin });
      assert.equal(first.status, 200, first.text);
      assert.ok(first.json.docs.length >= 1 && first.json.docs.length <= 4, `page of ${first.json.docs.length} docs under 8000 bytes`);
      assert.ok(first.json.next, 'a next cursor while documents remain');
      const all = await snapshotAll(server, admin, { collections: 'products', limit: 1000 });
      const ids = (all.docs ?? all).map((d) => d.id);
      assert.deepEqual(ids, muts.map((m) => m.id), 'paging returns every document once, in order');
    });
  });

  test('9b. a where with more than limits.max_where_conditions conditions is refused (snapshot 400, SSE 400, WS 4400)', { timeout: 30000 }, async () => {
    await withServer({}, async (server) => {
      const where = Array.from({ length: 33 }, (_, i) => `f${i}=eq.${i}`).join(',');
      const snap = await api(server, 'GET', `/v1/snapshot?collections=products&where=${encodeURIComponent(where)}`, { token: admin });
      assertError(snap, 400, 'invalid_request', 'snapshot where with 33 conditions', 'where');
      const sse = await api(server, 'GET', `/v1/events?collections=products&where=${encodeURIComponent(where)}&access_token=${admin}`);
      assertError(sse, 400, 'invalid_request', 'SSE where with 33 conditions', 'where');
      const ws = rawWs(server, { params: { access_token: admin, collections: 'products', where } });
      await ws.waitFor((o) => o.close, 5000, 'close of the refused WebSocket');
      assert.equal(ws.close.code, 4400);
      const ok = await api(server, 'GET', `/v1/snapshot?collections=products&where=${encodeURIComponent(where.split(',').slice(0, 32).join(','))}`, { token: admin });
      assert.equal(ok.status, 200, `32 conditions are fine: ${ok.text}`);
    });
  });

  test('9c. limits.max_connections_per_address 3: the 4th connection from one address reads 503', { timeout: 30000 }, async () => {
    const config = testConfig({ limits: { max_connections_per_address: 3 } });
    await withServer({ config }, async (server) => {
      const idle = await openIdle(server, 3);
      try {
        await sleep(200);
        const r = await rawHttp(server, '/v1/health');
        assert.equal(r.status, 503, JSON.stringify(r).slice(0, 300));
        assert.match(r.json.error.message, /from this address/);
      } finally {
        for (const s of idle) s.destroy();
      }
      await healthEventually(server, 5000, 'after the idle connections closed');
    });
  });
});
