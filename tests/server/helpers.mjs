// Test helpers for the syncline-server suites: start the real binary on a free loopback port
// with a temporary database, sign tokens, and talk to it over real sockets (fetch, a small SSE
// reader over http.request, and the `ws` package).
//
// The database backend: SQLite (a file under the server's dir) unless
// SYNCLINE_TEST_BACKEND=postgres, then a fresh database on the test process's throwaway
// PostgreSQL cluster (tests/lib/postgres.mjs). A dir keeps its database either way: a server
// restarted on the same dir gets the same data back.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { pg } from '../lib/postgres.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '..', '..');
export const SERVER_BIN = process.env.SYNCLINE_SERVER_BIN || join(REPO_ROOT, 'build', 'server', 'syncline-server');
export const SECRET = 'test-secret-0123456789';
export { WebSocket };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const BACKENDS = { sqlite: 'sqlite', postgres: 'postgres', postgresql: 'postgres' };

/** The database backend servers run on: 'sqlite' or 'postgres' (an explicit `backend` option
 * wins over SYNCLINE_TEST_BACKEND, which defaults to SQLite). */
export function backend(explicit) {
  const name = explicit ?? (process.env.SYNCLINE_TEST_BACKEND || 'sqlite');
  const b = BACKENDS[name];
  if (!b) throw new Error(`unknown test backend ${JSON.stringify(name)} (sqlite or postgres)`);
  return b;
}

let databases = 0;
const creating = new Map(); // dir -> promise of its database's URL, while it is being created

/** The --db argument for a server on `dir`: the SQLite file dir/db/syncline.db, or the
 * PostgreSQL database named in dir/pg-database (created, and its name written there, on first
 * use; servers started on one dir at the same time share it). */
export async function databaseFor(dir, { backend: explicit } = {}) {
  if (backend(explicit) === 'sqlite') return `sqlite:${join(dir, 'db', 'syncline.db')}`;
  const cluster = await pg();
  const file = join(dir, 'pg-database');
  if (existsSync(file)) return cluster.url(readFileSync(file, 'utf8').trim());
  if (!creating.has(dir)) {
    const name = `syncline_${process.pid}_${++databases}`;
    const made = cluster.createDatabase(name).then((url) => {
      writeFileSync(file, name);
      return url;
    });
    creating.set(dir, made);
    made.then(
      () => creating.delete(dir),
      () => creating.delete(dir),
    );
  }
  return creating.get(dir);
}

export { freePort } from '../lib/net.mjs';

const b64url = (buf) => Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

export function makeToken(sub, role, { secret = SECRET, exp = Math.floor(Date.now() / 1000) + 3600, extra = {} } = {}) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, role, exp, ...extra }));
  const sig = b64url(createHmac('sha256', secret).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}

// The test config mirrors server/config/demo.json with short timers.
export function testConfig(overrides = {}) {
  const base = {
    jwt_secret: SECRET,
    demo_tokens: true,
    allowed_origins: [],
    // Dataset-wide events: the admin publishes them, everybody receives them.
    events: { publish: { admin: 'all' }, read: { '*': 'all' } },
    limits: {
      heartbeat_ms: 300,
      rate_limit_per_sec: 1000,
      rate_limit_burst: 2000,
      write_timeout_ms: 10000,
    },
    collections: {
      bills: { read: { admin: 'all', customer: 'customer_id=eq.{sub}' }, write: { admin: 'all' } },
      orders: { read: { admin: 'all', customer: 'customer_id=eq.{sub}' }, write: { admin: 'all' } },
      products: { read: { admin: 'all', customer: 'all' }, write: { admin: 'all' } },
      stock_transactions: { read: { admin: 'all' }, write: { admin: 'all' } },
      bookings: {
        read: { admin: 'all', customer: 'customer_id=eq.{sub}' },
        write: { admin: 'all', customer: { insert: 'customer_id=eq.{sub}' } },
        unique: [['hall', 'date', 'slot']],
      },
      customers: { read: { admin: 'all', customer: 'id=eq.{sub}' }, write: { admin: 'all' } },
    },
  };
  const merged = { ...base, ...overrides, limits: { ...base.limits, ...(overrides.limits || {}) } };
  if (overrides.collections) merged.collections = { ...base.collections, ...overrides.collections };
  return merged;
}

// Servers still running when the test process exits (an assertion or an exception before their
// cleanup) are killed with it: none outlives its test file, nor the file's PostgreSQL cluster.
const running = new Set();
process.on('exit', () => {
  for (const p of running) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

// Starts syncline-server; resolves once it printed its "listening" line.
// `wrap`: an optional command prefix the server is run under, e.g. ['prlimit', '--nofile=128:128',
// '--'] for a low fd limit. The prefix must exec the server (prlimit does), so `proc.pid` is the
// server's pid.
// `backend`: 'sqlite' or 'postgres', for this server only (default: backend()).
export async function startServer({ config = testConfig(), dir, args = [], env = {}, noConfig = false, wrap = [], backend: explicit } = {}) {
  const ownDir = !dir;
  dir = dir || mkdtempSync(join(tmpdir(), 'syncline-server-test-'));
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config));
  const db = await databaseFor(dir, { backend: explicit });
  const serverArgs = ['--port', '0', '--db', db, ...(noConfig ? [] : ['--config', configPath]), ...args];
  const proc = spawn(wrap.length ? wrap[0] : SERVER_BIN, wrap.length ? [...wrap.slice(1), SERVER_BIN, ...serverArgs] : serverArgs, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  running.add(proc);
  proc.on('exit', () => running.delete(proc));
  const logs = [];
  let buffered = '';
  let started = false;
  const exited = new Promise((res) => proc.on('exit', (code, signal) => res({ code, signal })));
  const port = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`server did not start: ${logs.join('\n')}`)), 10000);
    proc.stdout.on('data', (chunk) => {
      buffered += chunk.toString();
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        if (started) continue; // only the "listening" line is looked for (a log flood stays cheap)
        try {
          const j = JSON.parse(line);
          if (j.msg === 'listening') {
            started = true;
            clearTimeout(timer);
            res(j.port);
          }
        } catch {
          /* not JSON */
        }
      }
    });
    proc.stderr.on('data', (c) => logs.push(c.toString()));
    proc.on('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`server exited with ${code}: ${logs.join('\n')}`));
    });
  });
  const server = {
    proc,
    port,
    dir,
    db,
    backend: backend(explicit),
    logs,
    exited,
    url: `http://127.0.0.1:${port}`,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      let timer;
      const r = await Promise.race([exited, new Promise((res) => (timer = setTimeout(() => res(null), 8000)))]);
      clearTimeout(timer);
      if (!r) {
        proc.kill('SIGKILL');
        await exited;
      }
      return r;
    },
    async cleanup() {
      await server.stop('SIGKILL');
      // SYNCLINE_TEST_LOGS=1 prints the server's log lines, for debugging a failing test.
      if (process.env.SYNCLINE_TEST_LOGS) console.error(logs.join('\n'));
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

export async function api(server, method, path, { token, body, headers = {}, raw } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (raw !== undefined) payload = raw;
  else if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined && !h['content-type']) h['content-type'] = 'application/json';
  const res = await fetch(server.url + path, { method, headers: h, body: payload });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

export function mutate(server, token, client, mutations) {
  return api(server, 'POST', '/v1/mutations', { token, body: { client, mutations } });
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

// Minimal SSE client over http.request: parses events, keeps them in `events`, lets tests pause
// the socket to play a slow consumer.
export class SseClient {
  constructor(server, { token, cursor, collections, where, lastEventId, heartbeat, headers = {} } = {}) {
    this.events = [];
    this.comments = [];
    this.closed = false;
    this.status = 0;
    this.waiters = [];
    const path = '/v1/events' + query({ cursor, collections, where, heartbeat, access_token: token });
    const h = { accept: 'text/event-stream', ...headers };
    if (lastEventId !== undefined) h['last-event-id'] = String(lastEventId);
    this.opened = new Promise((res, rej) => {
      this.req = http.request(`${server.url}${path}`, { headers: h }, (res2) => {
        this.res = res2;
        this.status = res2.statusCode;
        this.headers = res2.headers;
        let buf = '';
        res2.setEncoding('utf8');
        res2.on('data', (chunk) => {
          buf += chunk;
          let idx;
          while ((idx = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, idx);
            buf = buf.slice(idx + 2);
            this.#block(block);
          }
        });
        res2.on('end', () => this.#end());
        res2.on('close', () => this.#end());
        res2.on('error', () => this.#end());
        res(this);
      });
      this.req.on('error', (e) => {
        this.#end();
        rej(e);
      });
      this.req.end();
    });
    // Tests that never await `opened` (e.g. close() before the response) must not leave an
    // unhandled rejection behind.
    this.opened.catch(() => {});
  }

  #block(block) {
    const ev = { event: 'message', data: '', id: undefined };
    let hasData = false;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments.push(line.slice(1).trim());
        continue;
      }
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') ev.event = value;
      else if (field === 'data') {
        ev.data += (hasData ? '\n' : '') + value;
        hasData = true;
      } else if (field === 'id') ev.id = value;
    }
    if (hasData) {
      try {
        ev.json = JSON.parse(ev.data);
      } catch {
        ev.json = undefined;
      }
      this.events.push(ev);
    }
    this.#wake();
  }

  #end() {
    if (this.closed) return;
    this.closed = true;
    this.#wake();
  }

  #wake() {
    for (const w of [...this.waiters]) w();
  }

  changes() {
    return this.events.filter((e) => e.event === 'change').map((e) => e.json);
  }

  // Resolves when predicate(this) is true; rejects after timeout.
  waitFor(pred, timeout = 5000, what = 'condition') {
    return new Promise((res, rej) => {
      const check = () => {
        let ok = false;
        try {
          ok = pred(this);
        } catch {
          ok = false;
        }
        if (ok) {
          cleanup();
          res(this);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        rej(new Error(`SSE timeout waiting for ${what}; got ${this.events.length} events`));
      }, timeout);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }

  pause() {
    this.res?.socket?.pause();
    this.res?.pause();
  }

  resume() {
    this.res?.socket?.resume();
    this.res?.resume();
  }

  close() {
    this.req?.destroy();
    this.res?.destroy();
  }
}

// WebSocket client collecting JSON frames.
export class WsClient {
  constructor(server, { token, cursor, collections, where, headers = {}, origin } = {}) {
    const path = '/v1/ws' + query({ cursor, collections, where, access_token: token });
    this.messages = [];
    this.waiters = [];
    this.closeInfo = null;
    this.ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, { headers, origin });
    this.opened = new Promise((res, rej) => {
      this.ws.once('open', () => res(this));
      this.ws.once('unexpected-response', (req, resp) => {
        let text = '';
        resp.on('data', (c) => (text += c));
        resp.on('end', () => {
          const err = new Error(`unexpected response ${resp.statusCode}`);
          err.status = resp.statusCode;
          err.body = text;
          rej(err);
        });
      });
      this.ws.once('error', rej);
    });
    this.opened.catch(() => {});
    this.ws.on('error', () => {});
    this.ws.on('message', (data) => {
      try {
        this.messages.push(JSON.parse(data.toString()));
      } catch {
        this.messages.push({ type: '<unparsable>', raw: data.toString() });
      }
      this.#wake();
    });
    this.ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      this.#wake();
    });
  }

  #wake() {
    for (const w of [...this.waiters]) w();
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  of(type) {
    return this.messages.filter((m) => m.type === type);
  }

  waitFor(pred, timeout = 5000, what = 'condition') {
    return new Promise((res, rej) => {
      const check = () => {
        let ok = false;
        try {
          ok = pred(this);
        } catch {
          ok = false;
        }
        if (ok) {
          cleanup();
          res(this);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        rej(new Error(`WS timeout waiting for ${what}; got ${this.messages.length} messages`));
      }, timeout);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }

  pause() {
    this.ws._socket?.pause();
  }

  resume() {
    this.ws._socket?.resume();
  }

  close() {
    try {
      this.ws.terminate();
    } catch {
      /* already closed */
    }
  }
}

export async function metrics(server) {
  const res = await fetch(`${server.url}/metrics`);
  const text = await res.text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out[line.slice(0, sp)] = Number(line.slice(sp + 1));
  }
  return out;
}

export async function snapshotAll(server, token, params = {}) {
  const docs = [];
  let after;
  let seq;
  for (;;) {
    const r = await api(server, 'GET', '/v1/snapshot' + query({ ...params, after }), { token });
    if (r.status !== 200) throw new Error(`snapshot ${r.status}: ${r.text}`);
    if (seq === undefined) seq = r.json.seq;
    docs.push(...r.json.docs);
    if (!r.json.next) break;
    after = r.json.next;
  }
  return { seq, docs };
}
