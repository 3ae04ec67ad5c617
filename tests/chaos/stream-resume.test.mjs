// Layer: tests/chaos. Stream resume. A real syncline-server (temp DB, --port 0),
// concurrent writers committing over HTTP, and raw stream readers, SSE over http.request and
// WebSocket over `ws`, whose connections are cut at random byte offsets, usually mid-message:
//   - by the TCP proxy of tests/chaos/lib/proxy.mjs (closes after a random number of bytes),
//   - by the reader itself (destroys its socket after a random number of received bytes),
//   - or closed by the reader after a random time (no cut, just churn).
// After every cut the reader resumes with `cursor` / `Last-Event-ID` = the last complete seq it
// saw. Phase A (whole log retained): each reader's applied log (seq after seq, no gap, no repeat,
// content byte-equal) must equal the server's log read from cursor 0 by an admin reader. Phase B
// (tiny `limits.log_retention`): readers also go offline long enough for their cursor to expire;
// they must get `reset` {"reason":"cursor_expired"}, re-snapshot (paged GET /v1/snapshot) and
// end with exactly the server's documents, never a silent gap; then exact boundary probes
// (cursor = pruned_through - 1 resets, cursor = pruned_through resumes) on both transports.
//
// Env: STREAM_RESUME_SEED (rerun a seed), STREAM_RESUME_LONG=1 (long run), STREAM_RESUME_SECONDS /
// STREAM_RESUME_RESET_SECONDS (override the phase lengths).
import './lib/server-bin.mjs';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import test from 'node:test';
import { api, makeToken, metrics, query, sleep, snapshotAll, SseClient, startServer, WebSocket } from '../server/helpers.mjs';
import { chaosConfig } from './harness.mjs';
import { ChaosProxy } from './lib/proxy.mjs';
import { rng } from './lib/rng.mjs';

const env = process.env;
const LONG = env.STREAM_RESUME_LONG === '1';
// Fixed in the bounded (CI) run so a failure is repeatable; the long run draws a new seed.
const SEED = env.STREAM_RESUME_SEED || (LONG ? String(Date.now()) : '1795466236144');
const A_SECONDS = Number(env.STREAM_RESUME_SECONDS || (LONG ? 300 : 28));
const B_SECONDS = Number(env.STREAM_RESUME_RESET_SECONDS || (LONG ? 120 : 14));
const RETENTION = 60; // phase B log_retention (the server prunes once head - pruned > 60 + 6)
const COLLS = ['bills', 'orders', 'products', 'customers'];
// Cut budgets (bytes of the response): mostly short (a few messages, often inside the first one
// or inside the HTTP head), sometimes long enough to carry the 2-90 KB documents.
const cutBudget = (r) => (r.chance(0.85) ? r.int(0, 3000) : r.chance(0.8) ? r.int(0, 30000) : r.int(0, 120000));
const RERUN = `STREAM_RESUME_SEED=${SEED}${LONG ? ' STREAM_RESUME_LONG=1' : ''} node --test tests/chaos/stream-resume.test.mjs`;

// ---------------------------------------------------------------------------------------------
// Shared run state: violations (kept short), the writers' view of every seq they were given.

class Run {
  constructor(name, server, proxy) {
    this.name = name;
    this.server = server;
    this.proxy = proxy;
    this.violations = [];
    this.violationCount = 0;
    this.seqInfo = new Map(); // seq -> {kind, collection, id, op, client, mid} | {kind:'event', name}
    this.stopWrites = false;
    this.stopCuts = false;
    this.writes = { batches: 0, applied: 0, rejected: 0, events: 0, big_docs: 0 };
    this.pending = []; // checks that read the server after the fact
  }

  violation(msg) {
    this.violationCount++;
    if (this.violations.length < 30) this.violations.push(msg);
  }
}

const digest = (s) => createHash('sha1').update(s).digest('base64');

// Canonical JSON (sorted keys) so SSE and WebSocket bodies compare byte for byte.
function canon(v) {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

const TEXT = ['é€😀', 'naïve', 'Ωmega', '日本語', 'plain', 'a\nb', 'quote"d', 'ü'];

function pad(r, big) {
  const roll = r.next();
  let n;
  if (big && roll < 0.004) n = r.int(70000, 90000); // WebSocket 64-bit length, many TCP chunks
  else if (roll < 0.04) n = r.int(2000, 12000);
  else n = r.int(0, 200);
  // Multi-byte characters, so byte cuts also split UTF-8 sequences. Cut by code points: a lone
  // surrogate is not valid JSON for the server (400 invalid_json).
  const parts = [];
  let len = 0;
  while (len < n) {
    const t = r.pick(TEXT);
    parts.push(t, ' ');
    len += t.length + 1;
  }
  return Array.from(parts.join('')).slice(0, n).join('');
}

// One writer: seeded inserts, shallow patches (with null removals), conditional updates/deletes
// (some with a stale base_version: conflict), shared documents patched by every writer, events.
async function writer(run, k, token, { pauseMs, big }) {
  const r = rng(`${SEED}/${run.name}/writer-${k}`);
  const client = `w${k}-${run.name}`;
  const live = new Map(); // `${coll}/${id}` -> version
  let mid = 0;
  const post = async (path, body) => {
    const res = await api(run.server, 'POST', path, { token, body });
    if (res.status !== 200) run.violation(`writer ${k}: ${path} answered ${res.status} ${res.text.slice(0, 200)}`);
    return res;
  };
  if (k === 0) {
    const muts = [0, 1, 2, 3, 4].map((i) => ({ mid: ++mid, op: 'insert', collection: 'products', id: `shared-${i}`, fields: { n: 0 } }));
    const res = await post('/v1/mutations', { client, mutations: muts });
    res.json?.results.forEach((x, i) => x.status === 'applied' && run.seqInfo.set(x.seq, { kind: 'change', collection: 'products', id: muts[i].id, op: 'insert', client, mid: muts[i].mid }));
  }
  while (!run.stopWrites) {
    if (r.chance(0.08)) {
      const body = { name: `tick-${k}`, data: { k, n: r.int(0, 1e6), t: r.pick(TEXT) } };
      if (r.chance(0.5)) body.collection = r.pick(COLLS);
      const res = await post('/v1/events', body);
      if (res.status === 200) {
        run.seqInfo.set(res.json.seq, { kind: 'event', name: body.name });
        run.writes.events++;
      }
    } else {
      const muts = [];
      const used = new Set();
      for (let i = 0, n = r.int(1, 4); i < n; i++) {
        if (r.chance(0.1)) {
          muts.push({ mid: ++mid, op: 'update', collection: 'products', id: `shared-${r.int(0, 4)}`, fields: { by: k, n: r.int(0, 1e6), t: r.pick(TEXT) } });
          continue;
        }
        const collection = r.pick(COLLS);
        const id = `w${k}-${r.int(0, 29)}`;
        const key = `${collection}/${id}`;
        if (used.has(key)) continue;
        used.add(key);
        const version = live.get(key);
        const m = { mid: ++mid, collection, id };
        const roll = r.next();
        if (version === undefined) {
          if (roll < 0.85) Object.assign(m, { op: 'insert', fields: { amount: r.int(1, 999), note: r.pick(TEXT), pad: pad(r, big) } });
          else Object.assign(m, { op: 'update', fields: { amount: 1 } }); // conflict: missing
        } else if (roll < 0.6) {
          const fields = { amount: r.int(1, 999) };
          if (r.chance(0.3)) fields.note = r.chance(0.5) ? null : r.pick(TEXT);
          if (r.chance(0.2)) fields.pad = pad(r, big);
          Object.assign(m, { op: 'update', fields });
          if (r.chance(0.4)) m.base_version = r.chance(0.25) ? version - 1 : version;
        } else if (roll < 0.85) {
          Object.assign(m, { op: 'delete' });
          if (r.chance(0.3)) m.base_version = version;
        } else {
          Object.assign(m, { op: 'insert', fields: { amount: 0 } }); // conflict: live
        }
        if (m.fields?.pad?.length > 60000) run.writes.big_docs++;
        muts.push(m);
      }
      if (muts.length) {
        const res = await post('/v1/mutations', { client, mutations: muts });
        run.writes.batches++;
        if (res.status === 200) {
          res.json.results.forEach((x, i) => {
            const m = muts[i];
            if (x.status !== 'applied') {
              run.writes.rejected++;
              if (x.status !== 'rejected' || x.code !== 'conflict') run.violation(`writer ${k}: unexpected outcome ${JSON.stringify(x)}`);
              return;
            }
            run.writes.applied++;
            run.seqInfo.set(x.seq, { kind: 'change', collection: m.collection, id: m.id, op: m.op, client, mid: m.mid });
            if (!m.id.startsWith('shared-')) {
              const key = `${m.collection}/${m.id}`;
              if (m.op === 'delete') live.delete(key);
              else live.set(key, x.seq);
            }
          });
        }
      }
    }
    await sleep(r.int(pauseMs[0], pauseMs[1]));
  }
}

// ---------------------------------------------------------------------------------------------
// Raw stream connections. Each calls onMessage({type, body, sseId}) for every complete message,
// and resolves `ended` with how the connection ended.

function sseConnect({ port, token, cursor, header, bogusParam, budget, onMessage, stats }) {
  const q = { access_token: token };
  const headers = { accept: 'text/event-stream' };
  if (cursor !== null) {
    if (header) {
      headers['last-event-id'] = String(cursor);
      if (bogusParam) q.cursor = 0; // Last-Event-ID must win over cursor
    } else q.cursor = cursor;
  }
  const conn = { opened: false, bytes: 0, dead: false, endedBy: null, partial: false };
  let buf = Buffer.alloc(0);
  conn.ended = new Promise((resolve) => {
    let done = false;
    const finish = (how) => {
      if (done) return;
      done = true;
      if (buf.toString('utf8').trim().length) conn.partial = true; // cut mid-message
      resolve(conn.endedBy || how);
    };
    const req = http.get({ host: '127.0.0.1', port, path: `/v1/events${query(q)}`, headers, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          stats.refusals.push(`${res.statusCode} ${text.slice(0, 200)}`);
          finish('refused');
        });
        res.on('error', () => finish('refused'));
        return;
      }
      conn.opened = true;
      res.on('data', (chunk) => {
        if (conn.dead) return;
        conn.lastData = Date.now();
        if (budget !== null && conn.bytes + chunk.length >= budget) {
          // Client-side cut: take exactly `budget` bytes of the body, then destroy the socket.
          chunk = chunk.subarray(0, Math.max(0, budget - conn.bytes));
          conn.endedBy = 'cut_client';
          conn.dead = true;
        }
        conn.bytes += chunk.length;
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        let idx;
        while ((idx = buf.indexOf('\n\n')) >= 0) {
          const block = buf.subarray(0, idx).toString('utf8');
          buf = buf.subarray(idx + 2);
          const ev = { event: 'message', data: null, id: undefined };
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            let value = c < 0 ? '' : line.slice(c + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (field === 'event') ev.event = value;
            else if (field === 'data') ev.data = ev.data === null ? value : `${ev.data}\n${value}`;
            else if (field === 'id') ev.id = value;
          }
          if (ev.data === null) continue; // retry: / comments
          let body;
          try {
            body = JSON.parse(ev.data);
          } catch {
            body = { unparsable: ev.data };
          }
          onMessage({ type: ev.event, body, sseId: ev.id });
          if (conn.ignore) break;
        }
        if (conn.dead) req.destroy();
      });
      res.on('end', () => finish('eof'));
      res.on('close', () => finish('eof'));
      res.on('error', () => finish('eof'));
    });
    req.on('error', () => finish(conn.opened ? 'eof' : 'failed_before_open'));
    conn.close = (why) => {
      if (!conn.endedBy) conn.endedBy = why;
      conn.dead = true;
      conn.ignore = true; // nothing more from this stream is applied
      req.destroy();
    };
  });
  return conn;
}

function wsConnect({ port, token, cursor, budget, onMessage, stats }) {
  const q = { access_token: token };
  if (cursor !== null) q.cursor = cursor;
  const conn = { opened: false, bytes: 0, dead: false, endedBy: null, partial: false };
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws${query(q)}`, { perMessageDeflate: false });
  conn.ended = new Promise((resolve) => {
    let done = false;
    const finish = (how) => {
      if (done) return;
      done = true;
      resolve(conn.endedBy || how);
    };
    ws.on('unexpected-response', (req, res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        stats.refusals.push(`${res.statusCode} ${text.slice(0, 200)}`);
        finish('refused');
      });
      res.on('error', () => finish('refused'));
    });
    ws.on('error', () => finish(conn.opened ? 'eof' : 'failed_before_open'));
    ws.on('open', () => {
      conn.opened = true;
      ws._socket.on('data', (d) => {
        conn.lastData = Date.now();
        conn.bytes += d.length;
        // Client-side cut: destroy the socket once `budget` bytes arrived (ws has already taken
        // the complete frames of this chunk; a partial frame at the end is lost with the socket).
        if (budget !== null && conn.bytes >= budget && !conn.dead) {
          conn.endedBy = 'cut_client';
          conn.dead = true;
          ws._socket.destroy();
        }
      });
    });
    ws.on('message', (data, isBinary) => {
      if (conn.ignore) return;
      let body;
      try {
        body = JSON.parse(data.toString());
      } catch {
        body = { unparsable: data.toString() };
      }
      if (isBinary) body = { binary: true, ...body };
      const { type, ...rest } = body;
      onMessage({ type, body: rest });
    });
    ws.on('close', (code) => {
      if (code >= 4000 || code === 1008 || code === 1009 || code === 1013) stats.refusals.push(`ws close ${code}`);
      finish('eof');
    });
    conn.close = (why) => {
      if (!conn.endedBy) conn.endedBy = why;
      conn.dead = true;
      conn.ignore = true;
      try {
        ws.terminate();
      } catch {
        /* closed */
      }
    };
  });
  return conn;
}

// ---------------------------------------------------------------------------------------------
// A resuming reader. Phase A keeps the applied log; phase B keeps a replica and handles reset.

class Reader {
  constructor(run, { name, kind, sseHeader = 'param', token, withReplica = false, offline = null }) {
    Object.assign(this, { run, name, kind, sseHeader, token, withReplica, offline });
    this.r = rng(`${SEED}/${run.name}/reader-${name}`);
    this.cursor = 0;
    this.log = []; // digests of the canonical messages, in the order applied (phase A)
    this.replica = new Map(); // `${coll}\0${id}` -> {version, fields?, deleted?}
    this.floor = 0; // seqs <= floor are covered by the last snapshot
    this.stop = false;
    this.stats = {
      connections: 0, cut_proxy: 0, cut_client: 0, voluntary: 0, failed_before_open: 0, refused: 0,
      server_eof_direct: 0, partial_message_cuts: 0, messages: 0, resets: 0, snapshots: 0, snapshot_pages: 0,
      offline_periods: 0, resets_mid_stream: 0, refusals: [],
    };
  }

  v(msg) {
    this.run.violation(`${this.name}: ${msg}`);
  }

  chooseMode() {
    if (this.run.stopCuts) return 'direct';
    const x = this.r.next();
    if (x < 0.47) return 'proxy';
    if (x < 0.94) return 'client';
    return 'timed';
  }

  async runLoop() {
    while (!this.stop) {
      if (this.needSnapshot) await this.snapshot();
      if (this.stop) break;
      const mode = this.chooseMode();
      const port = mode === 'proxy' ? this.run.proxy.port : this.run.server.port;
      const budget = mode === 'client' ? cutBudget(this.r) : null;
      const st = { cursorAtOpen: this.cursor, index: 0, strategy: this.r.chance(0.5) ? 'reconnect' : 'continue' };
      const onMessage = (m) => this.onMessage(conn, st, m);
      const opts = { port, token: this.token, cursor: this.cursor, budget, onMessage, stats: this.stats };
      let conn;
      if (this.kind === 'sse') {
        const header = this.sseHeader === 'header' || (this.sseHeader === 'mixed' && this.r.chance(0.5));
        conn = sseConnect({ ...opts, header, bogusParam: header && this.r.chance(0.5) });
      } else conn = wsConnect(opts);
      this.conn = conn;
      this.stats.connections++;
      let timer = null;
      if (mode === 'timed') timer = setTimeout(() => conn.close('voluntary'), this.r.int(30, 400));
      // A stream that sends nothing (not even a heartbeat, every 500 ms) for 10 s is stuck.
      conn.lastData = Date.now();
      const watchdog = setInterval(() => {
        if (Date.now() - conn.lastData > 10000) {
          this.v(`stream stalled for 10 s (mode ${mode}, cursor ${this.cursor})`);
          conn.close('stalled');
        }
      }, 1000);
      const how = await conn.ended;
      clearTimeout(timer);
      clearInterval(watchdog);
      if (conn.partial) this.stats.partial_message_cuts++;
      if (how === 'cut_client') this.stats.cut_client++;
      else if (how === 'voluntary') this.stats.voluntary++;
      else if (how === 'failed_before_open') mode === 'proxy' ? this.stats.cut_proxy++ : this.stats.failed_before_open++;
      else if (how === 'refused') this.stats.refused++;
      else if (how === 'eof') mode === 'proxy' ? this.stats.cut_proxy++ : this.stats.server_eof_direct++;
      if (this.snapshotting) await this.snapshotting;
      if (this.stop) break;
      if (this.offline && !this.run.stopCuts && this.r.chance(this.offline.p)) {
        this.stats.offline_periods++;
        await sleep(this.r.int(this.offline.ms[0], this.offline.ms[1]));
      } else if (this.r.chance(0.02) && !this.run.stopCuts) {
        await sleep(this.r.int(300, 1500)); // let a backlog build: multi-chunk catch-up
      } else if (this.r.chance(0.5)) await sleep(this.r.int(0, 5));
    }
  }

  onMessage(conn, st, { type, body, sseId }) {
    if (conn.ignore) return;
    st.index++;
    if (st.index === 1 && type !== 'hello') this.v(`first message is ${type}, not hello`);
    if (type === 'hello' || type === 'heartbeat') {
      if (st.index === 1 && body.seq < st.cursorAtOpen) this.v(`hello.seq ${body.seq} < cursor ${st.cursorAtOpen} without reset`);
      return;
    }
    if (type === 'reset') return this.onReset(conn, st, body, sseId);
    if (type !== 'change' && type !== 'event') {
      this.v(`unexpected ${type} message ${JSON.stringify(body).slice(0, 200)}`);
      return;
    }
    this.stats.messages++;
    const seq = body.seq;
    if (this.kind === 'sse' && sseId !== String(seq)) this.v(`SSE id ${sseId} != seq ${seq}`);
    if (seq <= this.cursor) {
      this.v(`repeat: seq ${seq} after cursor ${this.cursor} (opened at ${st.cursorAtOpen})`);
      return;
    }
    if (seq !== this.cursor + 1) this.v(`silent gap: cursor ${this.cursor} -> seq ${seq} (opened at ${st.cursorAtOpen}, no reset)`);
    this.cursor = seq;
    if (!this.withReplica) {
      this.log.push(digest(canon({ type, ...body })));
      return;
    }
    if (this.snapshotting) this.buffer.push({ type, body });
    else this.apply(type, body);
  }

  onReset(conn, st, body, sseId) {
    this.stats.resets++;
    if (!this.withReplica) return this.v(`reset with the whole log retained: ${JSON.stringify(body)} (cursor ${this.cursor})`);
    if (body.reason !== 'cursor_expired') this.v(`reset reason ${body.reason} (cursor ${this.cursor}, head ${body.seq})`);
    // Right after hello; later only when the log was pruned while this stream caught up (server/stream_session.cpp).
    if (st.index !== 2) this.stats.resets_mid_stream++;
    if (this.kind === 'sse' && sseId !== String(body.seq)) this.v(`reset SSE id ${sseId} != seq ${body.seq}`);
    // The reset names the head the io thread has broadcast, but the writer prunes by its own
    // head, which can be a few seqs further (seen: cursor 13, head 73, retention 60, and a cut
    // at 14), so `head - retention` can under-state the cut. Checked instead against the
    // server's pruned_through read right after: it only grows, so a cursor at or above it was
    // never expired. (The exact boundary is probed apart at the end of the phase.)
    const cursor = this.cursor;
    this.run.pending.push(metrics(this.run.server).then((m) => {
      const pruned = m.syncline_log_pruned_through;
      if (!(cursor < pruned)) this.v(`needless reset: cursor ${cursor}, pruned_through ${pruned} after it, head in the reset ${body.seq}`);
    }, (e) => this.v(`metrics after a reset: ${e.message}`)));
    if (st.strategy === 'reconnect') {
      // Drop the stream, snapshot, resume from the snapshot's seq.
      conn.close('voluntary');
      this.needSnapshot = true;
    } else {
      // Keep the stream (it continues live after body.seq), snapshot meanwhile, buffer.
      this.cursor = body.seq;
      this.resetHead = body.seq;
      this.buffer = [];
      this.snapshotting = this.snapshot({ keep: true });
    }
  }

  async snapshot({ keep = false } = {}) {
    this.stats.snapshots++;
    const limit = this.r.int(3, 25);
    let after;
    let seq;
    const docs = [];
    for (;;) {
      const res = await api(this.run.server, 'GET', `/v1/snapshot${query({ limit, after })}`, { token: this.token });
      if (res.status !== 200) {
        this.v(`snapshot answered ${res.status} ${res.text.slice(0, 200)}`);
        await sleep(50);
        continue;
      }
      this.stats.snapshot_pages++;
      if (seq === undefined) seq = res.json.seq;
      else if (res.json.seq !== seq) this.v(`snapshot page seq ${res.json.seq} != first page seq ${seq}`);
      docs.push(...res.json.docs);
      if (!res.json.next) break;
      after = res.json.next;
    }
    this.replica = new Map();
    for (const d of docs) this.replica.set(`${d.collection}\0${d.id}`, { version: d.version, fields: d.fields });
    this.floor = seq;
    if (keep) {
      if (seq < this.resetHead) this.v(`snapshot seq ${seq} older than the reset's head ${this.resetHead}`);
      const buffered = this.buffer;
      this.buffer = [];
      this.snapshotting = null;
      for (const m of buffered) this.apply(m.type, m.body);
    } else {
      this.cursor = seq;
      this.needSnapshot = false;
    }
  }

  apply(type, body) {
    if (type !== 'change' || body.seq <= this.floor) return;
    if (body.version !== body.seq) this.v(`change version ${body.version} != seq ${body.seq}`);
    const key = `${body.collection}\0${body.id}`;
    const cur = this.replica.get(key);
    if (cur && body.seq <= cur.version) return;
    if (body.op === 'delete') this.replica.set(key, { version: body.seq, deleted: true });
    else this.replica.set(key, { version: body.version, fields: body.fields });
  }

  liveDocs() {
    const out = new Map();
    for (const [k, d] of this.replica) if (!d.deleted) out.set(k, canon({ version: d.version, fields: d.fields }));
    return out;
  }
}

// ---------------------------------------------------------------------------------------------

async function waitUntil(pred, ms) {
  const until = Date.now() + ms;
  while (!pred() && Date.now() < until) await sleep(50);
  return pred();
}

async function setup(name, retention) {
  const server = await startServer({ config: chaosConfig({ logRetention: retention }) });
  const proxy = new ChaosProxy({ targetPort: server.port, rng: rng(`${SEED}/${name}/proxy`) });
  // Every stream through the proxy is cut; the proxy draws int(0, streamCutMaxBytes) per stream.
  const pr = rng(`${SEED}/${name}/proxy-budget`);
  proxy.p = {
    dropResponse: 0, duplicateRequest: 0, streamCut: 1,
    get streamCutMaxBytes() {
      return pr.chance(0.85) ? 3000 : pr.chance(0.8) ? 30000 : 120000;
    },
  };
  await proxy.listen();
  return new Run(name, server, proxy);
}

function transportFigures(readers) {
  const out = {};
  for (const kind of ['sse', 'ws']) {
    const f = { readers: 0, connections: 0, cuts_proxy: 0, cuts_client: 0, cuts_total: 0, partial_message_cuts_sse: 0, voluntary_closes: 0, messages: 0, resets: 0, snapshots: 0, snapshot_pages: 0 };
    for (const r of readers.filter((x) => x.kind === kind)) {
      const s = r.stats;
      f.readers++;
      f.connections += s.connections;
      f.cuts_proxy += s.cut_proxy;
      f.cuts_client += s.cut_client;
      f.partial_message_cuts_sse += s.partial_message_cuts;
      f.voluntary_closes += s.voluntary;
      f.messages += s.messages;
      f.resets += s.resets;
      f.snapshots += s.snapshots;
      f.snapshot_pages += s.snapshot_pages;
    }
    f.cuts_total = f.cuts_proxy + f.cuts_client;
    out[kind] = f;
  }
  return out;
}

function anomalies(readers) {
  const out = {};
  for (const r of readers) {
    const s = r.stats;
    if (s.failed_before_open || s.refused || s.server_eof_direct) out[r.name] = { failed_before_open: s.failed_before_open, refused: s.refused, server_eof_direct: s.server_eof_direct, refusals: s.refusals.slice(0, 3) };
  }
  return out;
}

async function teardown(run, readers) {
  run.stopWrites = true;
  for (const r of readers) {
    r.stop = true;
    r.conn?.close('voluntary');
  }
  await run.proxy.close().catch(() => {});
  await run.server.cleanup();
}

function fail(run, figures) {
  const head = `stream resume (${run.name}) found ${run.violationCount} violation(s); seed ${SEED}; rerun: ${RERUN}`;
  console.error(`${head}\n  ${run.violations.join('\n  ')}\n  figures: ${JSON.stringify(figures)}`);
  assert.fail(`${head}\nfirst: ${run.violations.slice(0, 5).join(' | ')}`);
}

console.log(`stream resume: seed ${SEED}${LONG ? ' (long run)' : ''}; rerun: ${RERUN}`);

test('stream resume A: SSE and WebSocket cut at random byte offsets; every reader\'s log equals the server\'s log', { timeout: (A_SECONDS + 90) * 1000 }, async () => {
  const t0 = Date.now();
  const run = await setup('A', 0);
  const adminToken = makeToken('resume-admin', 'admin');
  const readers = [
    new Reader(run, { name: 'sse-cursor', kind: 'sse', sseHeader: 'param', token: makeToken('rd-sse-0', 'admin') }),
    new Reader(run, { name: 'sse-last-event-id', kind: 'sse', sseHeader: 'header', token: makeToken('rd-sse-1', 'admin') }),
    new Reader(run, { name: 'sse-mixed', kind: 'sse', sseHeader: 'mixed', token: makeToken('rd-sse-2', 'admin') }),
    new Reader(run, { name: 'ws-0', kind: 'ws', token: makeToken('rd-ws-0', 'admin') }),
    new Reader(run, { name: 'ws-1', kind: 'ws', token: makeToken('rd-ws-1', 'admin') }),
    new Reader(run, { name: 'ws-2', kind: 'ws', token: makeToken('rd-ws-2', 'admin') }),
    new Reader(run, { name: 'sse-mixed-2', kind: 'sse', sseHeader: 'mixed', token: makeToken('rd-sse-3', 'admin') }),
    new Reader(run, { name: 'ws-3', kind: 'ws', token: makeToken('rd-ws-3', 'admin') }),
  ];
  let figures = {};
  try {
    const loops = readers.map((r) => r.runLoop());
    const writers = [0, 1, 2].map((k) => writer(run, k, makeToken(`writer-${k}`, 'admin'), { pauseMs: [4, 30], big: true }));
    await sleep(A_SECONDS * 1000);
    run.stopWrites = true;
    await Promise.all(writers);
    const head = (await api(run.server, 'GET', '/v1/health')).json.seq;
    // Heal: no more cuts; every reader must reach the head over a plain stream.
    run.stopCuts = true;
    run.proxy.faults = false;
    const caughtUp = await waitUntil(() => readers.every((r) => r.cursor >= head), 45000);
    if (!caughtUp) for (const r of readers) if (r.cursor < head) run.violation(`${r.name} stopped at ${r.cursor}, head ${head}`);
    for (const r of readers) {
      r.stop = true;
      r.conn?.close('voluntary');
    }
    await Promise.all(loops);

    // The server's log, read once from cursor 0 by an admin reader (direct, no cuts).
    const admin = new SseClient(run.server, { token: adminToken, cursor: 0 });
    await admin.waitFor((s) => s.events.some((e) => e.json?.seq === head && e.event !== 'hello'), 30000, `admin log up to ${head}`);
    admin.close();
    const ref = admin.events.filter((e) => e.event === 'change' || e.event === 'event');
    ref.forEach((e, i) => {
      if (e.json.seq !== i + 1) run.violation(`server log from 0: position ${i} has seq ${e.json.seq}`);
    });
    // The log is what the writers were told: every applied seq with its (client, mid), every event.
    for (const e of ref) {
      const w = run.seqInfo.get(e.json.seq);
      const got = e.event === 'event' ? { kind: 'event', name: e.json.name } : { kind: 'change', collection: e.json.collection, id: e.json.id, op: e.json.op, client: e.json.origin?.client, mid: e.json.origin?.mid };
      if (!w || canon(w) !== canon(got)) run.violation(`server log seq ${e.json.seq} = ${canon(got)}, writers were told ${w ? canon(w) : 'nothing'}`);
    }
    if (run.seqInfo.size !== ref.length) run.violation(`writers were given ${run.seqInfo.size} seqs, the log has ${ref.length}`);
    // Replaying the log gives the server's documents.
    const replay = new Reader(run, { name: 'replay', kind: 'sse', token: adminToken, withReplica: true });
    for (const e of ref) replay.apply(e.event, e.json);
    const want = new Map((await snapshotAll(run.server, adminToken, { limit: 5000 })).docs.map((d) => [`${d.collection}\0${d.id}`, canon({ version: d.version, fields: d.fields })]));
    if (canon([...replay.liveDocs()].sort()) !== canon([...want].sort())) run.violation('replaying the server log does not give the server snapshot');
    const refLog = ref.map((e) => canon({ type: e.event, ...e.json }));
    const refDigests = refLog.map(digest);
    for (const r of readers) {
      if (r.log.length !== refLog.length) run.violation(`${r.name}: applied ${r.log.length} messages, server log has ${refLog.length}`);
      const i = refDigests.findIndex((x, j) => x !== r.log[j]);
      if (i >= 0) run.violation(`${r.name}: applied log differs from the server log at position ${i} (server: ${refLog[i].slice(0, 200)})`);
    }
    const m = await metrics(run.server);
    const tf = transportFigures(readers);
    figures = {
      phase: 'A (whole log retained)', seed: SEED, write_seconds: A_SECONDS, head, log_messages: refLog.length,
      writes: run.writes, per_transport: tf, cuts_total: tf.sse.cuts_total + tf.ws.cuts_total,
      proxy: { connections: run.proxy.stats.connections, cuts: run.proxy.stats.stream_cuts_mid_frame },
      server: { messages_sent: m.syncline_messages_sent_total, queue_drops: m.syncline_queue_drops_total, resets: m.syncline_resets_total, stream_connections: m.syncline_connections_total },
      anomalies: anomalies(readers), violations: run.violationCount, duration_s: (Date.now() - t0) / 1000,
    };
    console.log(`stream resume figures: ${JSON.stringify(figures)}`);
    if (run.violationCount) fail(run, figures);
    assert.ok(head >= 30 * A_SECONDS, `too few seqs to mean anything: ${head}`);
    const minCuts = 50 * A_SECONDS; // typically ~115 cuts/s on 2 cores
    assert.ok(figures.cuts_total >= minCuts, `too few cuts: ${figures.cuts_total} < ${minCuts}`);
    assert.ok(tf.sse.cuts_total >= minCuts / 4 && tf.ws.cuts_total >= minCuts / 4, 'both transports were cut');
    assert.ok(tf.sse.partial_message_cuts_sse >= 100, 'SSE streams were cut mid-message');
  } catch (e) {
    console.error(`stream resume A failed; seed ${SEED}; rerun: ${RERUN}`);
    throw e;
  } finally {
    await teardown(run, readers);
  }
});

test('stream resume B: tiny log_retention; an expired cursor always gets reset, then snapshot + resume converge', { timeout: (B_SECONDS + 90) * 1000 }, async () => {
  const t0 = Date.now();
  const run = await setup('B', RETENTION);
  const adminToken = makeToken('resume-admin', 'admin');
  const off = { p: 0.12, ms: [200, 1500] };
  const readers = [
    new Reader(run, { name: 'sse-cursor', kind: 'sse', sseHeader: 'param', token: makeToken('rb-sse-0', 'admin'), withReplica: true, offline: off }),
    new Reader(run, { name: 'sse-last-event-id', kind: 'sse', sseHeader: 'mixed', token: makeToken('rb-sse-1', 'admin'), withReplica: true, offline: off }),
    new Reader(run, { name: 'ws-0', kind: 'ws', token: makeToken('rb-ws-0', 'admin'), withReplica: true, offline: off }),
    new Reader(run, { name: 'ws-1', kind: 'ws', token: makeToken('rb-ws-1', 'admin'), withReplica: true, offline: off }),
  ];
  let figures = {};
  try {
    const loops = readers.map((r) => r.runLoop());
    const writers = [0, 1].map((k) => writer(run, k, makeToken(`writer-${k}`, 'admin'), { pauseMs: [10, 40], big: false }));
    await sleep(B_SECONDS * 1000);
    run.stopWrites = true;
    await Promise.all(writers);
    const head = (await api(run.server, 'GET', '/v1/health')).json.seq;
    run.stopCuts = true;
    run.proxy.faults = false;
    const caughtUp = await waitUntil(() => readers.every((r) => r.cursor >= head && !r.needSnapshot && !r.snapshotting), 45000);
    if (!caughtUp) for (const r of readers) if (r.cursor < head) run.violation(`${r.name} stopped at ${r.cursor}, head ${head}`);
    for (const r of readers) {
      r.stop = true;
      r.conn?.close('voluntary');
    }
    await Promise.all(loops);
    await Promise.all(run.pending);
    // Every replica equals the server's documents (a silent gap would leave stale or deleted docs).
    const want = new Map((await snapshotAll(run.server, adminToken, { limit: 5000 })).docs.map((d) => [`${d.collection}\0${d.id}`, canon({ version: d.version, fields: d.fields })]));
    for (const r of readers) {
      const got = r.liveDocs();
      const diff = [];
      for (const [k, v] of want) if (got.get(k) !== v) diff.push(`${k.replace('\0', '/')}: ${got.has(k) ? 'stale' : 'missing'}`);
      for (const k of got.keys()) if (!want.has(k)) diff.push(`${k.replace('\0', '/')}: deleted on the server, kept`);
      if (diff.length) run.violation(`${r.name}: replica != server (${diff.length} docs): ${diff.slice(0, 5).join(', ')}`);
    }
    // Exact boundary, both transports: pruned_through - 1 and 0 reset; pruned_through resumes.
    let m = await metrics(run.server);
    const pruned = m.syncline_log_pruned_through;
    if (!(pruned > 0)) run.violation(`nothing was pruned (pruned_through ${pruned})`);
    const probes = [];
    for (const kind of ['sse', 'sse-header', 'ws']) {
      for (const cursor of [0, 1, pruned - 1, pruned, pruned + 1, head]) {
        if (cursor < 0) continue;
        const msgs = [];
        const stats = { refusals: [] };
        const onMessage = (x) => msgs.push(x);
        const o = { port: run.server.port, token: adminToken, cursor, budget: null, onMessage, stats };
        const conn = kind === 'ws' ? wsConnect(o) : sseConnect({ ...o, header: kind === 'sse-header', bogusParam: kind === 'sse-header' });
        const expired = cursor < pruned;
        const wantCount = expired ? 2 : 1 + (head - cursor);
        await waitUntil(() => msgs.length >= wantCount, 5000);
        await sleep(100);
        conn.close('voluntary');
        await conn.ended;
        const types = msgs.filter((x) => x.type !== 'hello' || msgs.indexOf(x) === 0);
        const label = `probe ${kind} cursor ${cursor} (pruned_through ${pruned}, head ${head})`;
        probes.push(`${kind}@${cursor}:${types.map((x) => x.type).join(',')}`);
        if (types[0]?.type !== 'hello') run.violation(`${label}: no hello`);
        if (expired) {
          const rs = types[1];
          if (rs?.type !== 'reset' || rs.body.reason !== 'cursor_expired' || rs.body.seq !== head) run.violation(`${label}: expected reset cursor_expired seq ${head}, got ${JSON.stringify(types.slice(1, 3))}`);
          else if (kind !== 'ws' && rs.sseId !== String(head)) run.violation(`${label}: reset id ${rs.sseId}`);
          if (types.length > 2) run.violation(`${label}: ${types.length - 2} messages after the reset`);
        } else {
          const seqs = types.slice(1).map((x) => x.body.seq);
          const exp = [];
          for (let s = cursor + 1; s <= head; s++) exp.push(s);
          if (types.slice(1).some((x) => x.type === 'reset')) run.violation(`${label}: reset for a retained cursor`);
          else if (canon(seqs) !== canon(exp)) run.violation(`${label}: got seqs ${canon(seqs).slice(0, 120)}`);
        }
      }
    }
    m = await metrics(run.server);
    const tf = transportFigures(readers);
    figures = {
      phase: `B (log_retention ${RETENTION})`, seed: SEED, write_seconds: B_SECONDS, head, pruned_through: pruned,
      writes: run.writes, per_transport: tf, cuts_total: tf.sse.cuts_total + tf.ws.cuts_total,
      offline_periods: readers.reduce((a, r) => a + r.stats.offline_periods, 0),
      resets_mid_catch_up: readers.reduce((a, r) => a + r.stats.resets_mid_stream, 0),
      docs: want.size, probes: probes.length,
      proxy: { connections: run.proxy.stats.connections, cuts: run.proxy.stats.stream_cuts_mid_frame },
      server: { resets: m.syncline_resets_total, queue_drops: m.syncline_queue_drops_total },
      anomalies: anomalies(readers), violations: run.violationCount, duration_s: (Date.now() - t0) / 1000,
    };
    console.log(`stream resume figures: ${JSON.stringify(figures)}`);
    if (run.violationCount) fail(run, figures);
    for (const r of readers) assert.ok(r.stats.resets >= 1, `${r.name} was never reset`);
    assert.ok(figures.cuts_total >= 10 * B_SECONDS, `too few cuts: ${figures.cuts_total}`); // typically ~20/s
  } catch (e) {
    console.error(`stream resume B failed; seed ${SEED}; rerun: ${RERUN}`);
    throw e;
  } finally {
    await teardown(run, readers);
  }
});
