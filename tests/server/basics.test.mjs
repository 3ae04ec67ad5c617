// Basics: CLI, health, metrics, CORS, demo tokens, static files, structured logs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { api, backend, databaseFor, makeToken, metrics, mutate, REPO_ROOT, SERVER_BIN, snapshotAll, SseClient, startServer, testConfig } from './helpers.mjs';

const admin = makeToken('admin-1', 'admin');

test('--help documents every flag', () => {
  const out = execFileSync(SERVER_BIN, ['--help']).toString();
  for (const flag of ['--port', '--host', '--db', '--config', '--static', '--help', 'SYNCLINE_JWT_SECRET']) {
    assert.ok(out.includes(flag), `help mentions ${flag}`);
  }
});

test('the shipped demo config loads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-demo-cfg-'));
  const { spawn } = await import('node:child_process');
  const proc = spawn(SERVER_BIN, ['--port', '0', '--db', await databaseFor(dir), '--config', join(REPO_ROOT, 'server/config/demo.json')]);
  try {
    const port = await new Promise((res, rej) => {
      let buf = '';
      proc.stdout.on('data', (c) => {
        buf += c;
        const m = buf.match(/"msg":"listening".*"port":(\d+)/);
        if (m) res(Number(m[1]));
      });
      proc.on('exit', (code) => rej(new Error(`exited ${code}: ${buf}`)));
    });
    const server = { url: `http://127.0.0.1:${port}` };
    const tok = await api(server, 'POST', '/v1/demo/token', { body: { sub: 'alice', role: 'customer' } });
    assert.equal(tok.status, 200);
    const r = await api(server, 'GET', '/v1/snapshot', { token: tok.json.token });
    assert.equal(r.status, 200, r.text);
    const denied = await mutate(server, tok.json.token, 'demo-alice', [{ mid: 1, op: 'insert', collection: 'products', id: 'p', fields: {} }]);
    assert.equal(denied.status, 403);
  } finally {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('server basics', () => {
  let server;
  let staticDir;
  before(async () => {
    staticDir = mkdtempSync(join(tmpdir(), 'syncline-static-'));
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>demo</title>');
    writeFileSync(join(staticDir, 'sw.js'), 'self.addEventListener("fetch", () => {});');
    mkdirSync(join(staticDir, 'assets'));
    writeFileSync(join(staticDir, 'assets', 'syncline.wasm'), Buffer.from([0, 97, 115, 109, 1, 0, 0, 0]));
    writeFileSync(join(staticDir, 'assets', 'app.js'), 'console.log(1)');
    server = await startServer({ args: ['--static', staticDir], config: testConfig({ allowed_origins: ['http://app.example'] }) });
  });
  after(async () => {
    await server?.cleanup();
    rmSync(staticDir, { recursive: true, force: true });
  });

  test('health reports status and seq', async () => {
    const r = await api(server, 'GET', '/v1/health');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'ok', seq: 0, revision: '1.2' });
    await mutate(server, admin, 'h', [{ mid: 1, op: 'insert', collection: 'products', id: 'p', fields: {} }]);
    assert.equal((await api(server, 'GET', '/v1/health')).json.seq, 1);
  });

  test('metrics in Prometheus text format', async () => {
    const res = await fetch(`${server.url}/metrics`);
    assert.match(res.headers.get('content-type'), /^text\/plain/);
    const text = await res.text();
    assert.match(text, /# TYPE syncline_changes_total counter/);
    const m = await metrics(server);
    for (const name of [
      'syncline_connections{transport="sse"}', 'syncline_connections{transport="websocket"}', 'syncline_changes_total',
      'syncline_changes_per_second', 'syncline_queue_drops_total', 'syncline_mutations_total{status="applied"}',
      'syncline_mutations_total{status="rejected"}', 'syncline_mutations_total{status="duplicate"}', 'syncline_head_seq',
    ]) {
      assert.ok(name in m, `metric ${name}`);
    }
    assert.ok(m['syncline_mutations_total{status="applied"}'] >= 1);
  });

  test('CORS: preflight and allowed origin echo', async () => {
    const pre = await fetch(`${server.url}/v1/mutations`, {
      method: 'OPTIONS',
      headers: { origin: 'http://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://app.example');
    assert.match(pre.headers.get('access-control-allow-headers'), /Authorization/);
    assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
    const other = await fetch(`${server.url}/v1/health`, { headers: { origin: 'http://evil.example' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });

  test('demo tokens: issued when enabled, usable, 404 when disabled', async () => {
    const r = await api(server, 'POST', '/v1/demo/token', { body: { sub: 'alice', role: 'customer' } });
    assert.equal(r.status, 200);
    const snap = await snapshotAll(server, r.json.token, { collections: 'bills' });
    assert.deepEqual(snap.docs, []);
    const bad = await api(server, 'POST', '/v1/demo/token', { body: { sub: 'a b', role: 'customer' } });
    assert.equal(bad.status, 400);
    const off = await startServer({ config: testConfig({ demo_tokens: false }) });
    try {
      const r2 = await api(off, 'POST', '/v1/demo/token', { body: { sub: 'alice', role: 'admin' } });
      assert.equal(r2.status, 404);
      assert.equal(r2.json.error.code, 'not_found');
    } finally {
      await off.cleanup();
    }
  });

  test('Expect: 100-continue gets an interim response', async () => {
    const body = JSON.stringify({ client: 'expect', mutations: [{ mid: 1, op: 'insert', collection: 'products', id: 'ex', fields: { pad: 'p'.repeat(4000) } }] });
    const started = Date.now();
    const status = await new Promise((res, rej) => {
      const req = http.request(`${server.url}/v1/mutations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' },
      }, (r) => {
        r.resume();
        r.on('end', () => res(r.statusCode));
      });
      req.on('continue', () => req.end(body));
      req.on('error', rej);
    });
    assert.equal(status, 200);
    assert.ok(Date.now() - started < 900, 'no client-side expect timeout');
  });

  test('without --config: open mode, every authenticated caller reads and writes', async () => {
    const s = await startServer({ noConfig: true, env: { SYNCLINE_JWT_SECRET: 'open-secret' } });
    try {
      const t = makeToken('anyone', 'viewer', { secret: 'open-secret' });
      const r = await mutate(s, t, 'open-c', [{ mid: 1, op: 'insert', collection: 'anything', id: 'x', fields: { a: 1 } }]);
      assert.equal(r.json.results[0].status, 'applied');
      const snap = await snapshotAll(s, t, { collections: 'anything' });
      assert.equal(snap.docs.length, 1);
      assert.ok(s.logs.some((l) => l.includes('"level":"warn"') && l.includes('no --config')));
    } finally {
      await s.cleanup();
    }
  });

  // SQLite: one node per file, held by a file lock. PostgreSQL: several nodes on one database.
  test('a second server on the same database refuses to start', { skip: backend() === 'postgres' ? 'SQLite file lock specific' : false }, async () => {
    await assert.rejects(startServer({ dir: server.dir }), /in use by another syncline-server/);
  });

  test('a second server on the same PostgreSQL database starts and serves the same log', { skip: backend() === 'postgres' ? false : 'PostgreSQL only (SQLite: one server per file)' }, async () => {
    const second = await startServer({ dir: server.dir });
    try {
      const head = (await api(server, 'GET', '/v1/health')).json.seq;
      const sse = new SseClient(server, { token: admin, collections: 'products', cursor: head });
      await sse.opened;
      const r = await mutate(second, admin, 'second-node', [{ mid: 1, op: 'insert', collection: 'products', id: 'from-second', fields: {} }]);
      assert.equal(r.json.results[0].status, 'applied');
      assert.equal(r.json.results[0].seq, head + 1, 'the second server continues the first one\'s seq space');
      // The write made through the second server reaches the first one's streams and reads.
      await sse.waitFor((s) => s.changes().some((c) => c.id === 'from-second'), 5000, 'the other node\'s write');
      sse.close();
      const snap = await snapshotAll(server, admin, { collections: 'products' });
      assert.ok(snap.docs.some((d) => d.id === 'from-second'));
    } finally {
      await second.stop('SIGKILL');
    }
  });

  test('SYNCLINE_JWT_SECRET overrides the config secret', async () => {
    const s = await startServer({ env: { SYNCLINE_JWT_SECRET: 'from-env' } });
    try {
      assert.equal((await api(s, 'GET', '/v1/snapshot?collections=bills', { token: admin })).status, 401);
      const t = makeToken('x', 'admin', { secret: 'from-env' });
      assert.equal((await api(s, 'GET', '/v1/snapshot?collections=bills', { token: t })).status, 200);
    } finally {
      await s.cleanup();
    }
  });

  test('static files: MIME types, SPA fallback, no-cache for index.html and sw.js', async () => {
    const index = await fetch(`${server.url}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type'), /^text\/html/);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    const wasm = await fetch(`${server.url}/assets/syncline.wasm`);
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    assert.equal(Buffer.from(await wasm.arrayBuffer()).length, 8);
    const js = await fetch(`${server.url}/assets/app.js`);
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
    const sw = await fetch(`${server.url}/sw.js`);
    assert.equal(sw.headers.get('cache-control'), 'no-cache');
    const spa = await fetch(`${server.url}/orders/42`);
    assert.equal(spa.status, 200);
    assert.match(await spa.text(), /<title>demo/);
    assert.equal((await fetch(`${server.url}/missing.png`)).status, 404);
    assert.equal((await fetch(`${server.url}/..%2f..%2fetc/passwd`)).status, 404);
  });

  test('one structured JSON log line per request', async () => {
    await api(server, 'GET', '/v1/health?access_token=secret-token-value');
    const lines = server.logs.map((l) => JSON.parse(l));
    const req = lines.filter((l) => l.msg === 'request' && l.path === '/v1/health');
    assert.ok(req.length >= 1);
    assert.equal(typeof req[0].status, 'number');
    assert.equal(typeof req[0].ts, 'string');
    assert.ok(!server.logs.some((l) => l.includes('secret-token-value')), 'tokens are never logged');
  });
});
