// Layer: tests/chaos. Chaos convergence: a real syncline-server, N Node
// clients running the real runtime (tests/chaos/client.mjs, one process each), a few chromium
// pages (tests/e2e harness), all talking through the nemesis proxy (lib/proxy.mjs). The seeded
// nemesis cuts connections and streams mid-frame, drops mutation responses, duplicates
// mutation requests, takes clients offline, SIGKILLs and restarts the server (same port, same
// database) and SIGKILLs client processes (often right after a write was issued, i.e. while
// its outbox is being written) and restarts them from their persisted localStorage.
// Then it heals everything, waits for quiet and checks:
//   - every mutation a client saw applied is in the server's change log exactly once, at the
//     seq the client was told, with the client's own tag;
//   - no (client, mid) and no mutation tag appears twice in the log;
//   - every mutation accepted locally (`.local` resolved) was applied or rejected, never lost,
//     including those of crashed clients and reloaded pages (asked of the server itself with a
//     duplicate probe after the run);
//   - outcomes the clients saw equal the outcomes the server recorded;
//   - every replica equals the server's snapshot for that client's token;
//   - every Node client's streams delivered the log's own changes, in order, with no gap and
//     no repeat, each connection resuming from a cursor the client had (lib/stream-record.mjs);
//   - counters and atomic groups: every group all-or-nothing in the log (all members at
//     consecutive seqs, or none); every counter's final value = its initial value + the sum of
//     the increments the server applied (the applied set from the log's origins, cross-checked
//     with the clients' verdicts), each log step of a counter exactly its increment; every
//     replica's counter = the server's; transfers conserve the counters' total.
// Cluster mode (option `cluster`, lib/cluster-chaos.mjs): the same clients and checks against N nodes
// on one PostgreSQL behind a real HAProxy (clients -> ChaosProxy -> HAProxy -> nodes); the
// nemesis kills random nodes with -9 instead of the one server, and crashes PostgreSQL; the
// checker's log is the database's own, compared seq by seq with the auditor's stream.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import './lib/server-bin.mjs'; // first: pins a private copy of the server binary
import { api, makeToken, metrics, SseClient, sleep, snapshotAll, startServer, testConfig } from '../server/helpers.mjs';
import { ClusterChaos } from './lib/cluster-chaos.mjs';
import { ChaosProxy } from './lib/proxy.mjs';
import { rng } from './lib/rng.mjs';
import { StreamLedger } from './lib/stream-record.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const COLLECTIONS_ADMIN = ['bills', 'products', 'bookings', 'stock_transactions'];
const COLLECTIONS_CUSTOMER = ['bills', 'products', 'bookings'];
const EXPECTED_REJECTIONS = new Set(['conflict', 'constraint']);
// The harness's own client id: it inserts the counters before any client starts.
const SETUP_CLIENT = 'chaos-setup';

export function chaosConfig({ logRetention = 0 } = {}) {
  return testConfig({
    limits: {
      heartbeat_ms: 500,
      // A small retention makes long-offline clients get `reset` and re-snapshot; the auditor
      // tails the log from the start so the checker still sees every change.
      log_retention: logRetention,
      outcome_retention: 1000000, // so a duplicate probe always finds the original outcome
      rate_limit_per_sec: 5000,
      rate_limit_burst: 10000,
    },
  });
}

class NodeClient {
  constructor(h, idx, { role, sub }) {
    this.h = h;
    this.idx = idx;
    this.role = role;
    this.sub = sub;
    this.token = makeToken(sub, role, { exp: Math.floor(Date.now() / 1000) + 24 * 3600 });
    // Half the clients use the WebSocket (mutations as frames), half SSE (mutations over POST).
    this.transport = (idx + (idx >> 2)) % 2 === 0 ? 'websocket' : 'sse';
    this.storageDir = join(h.workDir, `client-${idx}`);
    this.incarnation = 0;
    this.proc = null;
    this.clientId = null;
    this.offline = false;
    this.killOnIssue = false;
    this.reqs = new Map();
    this.reqSeq = 0;
    this.stderr = '';
  }

  get alive() {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null && this.ready;
  }

  async start() {
    this.incarnation++;
    this.ready = false;
    this.offline = false;
    this.killOnIssue = false;
    const cfg = {
      idx: this.idx, seed: this.h.seed, incarnation: this.incarnation, url: this.h.proxyUrl, token: this.token,
      sub: this.sub, role: this.role, transport: this.transport, storageDir: this.storageDir,
      collections: this.role === 'admin' ? COLLECTIONS_ADMIN : COLLECTIONS_CUSTOMER,
      customers: this.h.customers, opMinMs: this.h.opts.opMinMs, opMaxMs: this.h.opts.opMaxMs,
      counters: [...this.h.counterInit.keys()], counterShare: this.h.opts.counterShare,
    };
    const proc = fork(join(here, 'client.mjs'), [JSON.stringify(cfg)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.proc = proc;
    proc.stderr.on('data', (d) => (this.stderr = (this.stderr + d).slice(-4000)));
    const ready = new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`client ${this.idx} did not start: ${this.stderr}`)), 30000);
      proc.on('exit', (code, sig) => {
        clearTimeout(t);
        rej(new Error(`client ${this.idx} exited during start (${code} ${sig}): ${this.stderr}`));
      });
      proc.on('message', (m) => {
        if (m.t === 'ready') {
          clearTimeout(t);
          res(m);
        }
      });
    });
    ready.catch(() => {});
    proc.on('message', (m) => this.#onMessage(m));
    proc.on('exit', () => {
      for (const { rej } of this.reqs.values()) rej(new Error(`client ${this.idx} exited`));
      this.reqs.clear();
    });
    const m = await ready;
    if (this.clientId && this.clientId !== m.clientId) this.h.violation(`client ${this.idx} restarted with a different client id (${this.clientId} -> ${m.clientId}): its persisted outbox was not reloaded`);
    this.clientId = m.clientId;
    this.h.clientIds.set(m.clientId, this);
    this.ready = true;
  }

  #onMessage(m) {
    const h = this.h;
    if (m.req !== undefined && this.reqs.has(m.req)) {
      this.reqs.get(m.req).res(m);
      this.reqs.delete(m.req);
      return;
    }
    switch (m.t) {
      case 'issued':
      case 'issued_group':
        if (m.t === 'issued') h.ledgerIssue({ ...m, owner: `node-${this.idx}` });
        else h.ledgerIssueGroup({ ...m, owner: `node-${this.idx}` });
        if (this.killOnIssue) {
          this.killOnIssue = false;
          h.faults.client_kill_mid_write++;
          this.kill();
        }
        break;
      case 'local':
        h.ledgerGet(m.clientId, m.mid).local = true;
        break;
      case 'local_failed':
        h.ledgerGet(m.clientId, m.mid).localFailed = m.code;
        break;
      case 'applied':
        h.ledgerOutcome(m.clientId, m.mid, { applied: true, seq: m.seq });
        break;
      case 'rejected':
        h.ledgerOutcome(m.clientId, m.mid, { applied: false, code: m.code, message: m.message });
        if (m.failedMid !== undefined) h.ledgerGet(m.clientId, m.mid).failedMid = m.failedMid;
        break;
      case 'error':
        h.violation(`client ${this.idx} (${this.clientId}) error: ${m.message}`);
        break;
      case 'streams':
        h.streams.add(`node ${this.idx} ${this.sub}`, this.role === 'admin', m.incarnation, m.recs);
        break;
    }
  }

  request(cmd, extra = {}, timeout = 10000) {
    if (!this.alive) return Promise.reject(new Error(`client ${this.idx} not running`));
    const req = ++this.reqSeq;
    return new Promise((res, rej) => {
      const t = setTimeout(() => {
        this.reqs.delete(req);
        rej(new Error(`client ${this.idx}: ${cmd} timed out`));
      }, timeout);
      this.reqs.set(req, { res: (m) => (clearTimeout(t), res(m)), rej: (e) => (clearTimeout(t), rej(e)) });
      this.proc.send({ cmd, req, ...extra });
    });
  }

  tell(cmd, extra = {}) {
    if (this.alive) this.proc.send({ cmd, ...extra });
  }

  kill() {
    if (this.proc && this.proc.exitCode === null) this.proc.kill('SIGKILL');
    this.ready = false;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((res) => this.proc.once('exit', res));
    try {
      await this.request('exit', {}, 5000);
    } catch {
      /* kill below */
    }
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}

/** A chromium page running the e2e harness (real runtime, SSE transport, IndexedDB). */
class PageClient {
  constructor(h, idx, context) {
    this.h = h;
    this.idx = idx;
    this.context = context;
    this.sub = `page-${idx}`;
    this.role = 'admin';
    this.token = makeToken(this.sub, 'admin', { exp: Math.floor(Date.now() / 1000) + 24 * 3600 });
    this.n = 0;
    this.busy = false;
    this.offline = false;
    this.clientId = null;
  }

  options() {
    return {
      url: this.h.proxyUrl, token: this.token, collections: COLLECTIONS_ADMIN, transport: 'sse', persistence: 'indexeddb',
      backoff: { baseMs: 100, capMs: 1000, heartbeatTimeoutMs: 3000 },
    };
  }

  async open() {
    if (!this.page) {
      this.page = await this.context.newPage();
      this.page.on('pageerror', (e) => this.h.violation(`page ${this.idx} error: ${e.message}`));
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this.page.goto(`${this.h.proxyUrl}/harness.html`, { timeout: 10000 });
        await this.page.waitForFunction(() => window.harnessReady === true, null, { timeout: 10000 });
        const r = await this.page.evaluate((o) => window.harness.start(o), this.options());
        this.clientIds = this.clientIds ?? new Set();
        this.clientId = r.clientId;
        this.h.clientIds.set(r.clientId, this);
        this.offline = false;
        return;
      } catch (e) {
        if (attempt >= 8) throw e;
        await sleep(500);
      }
    }
  }

  /** Collects the outcomes this incarnation of the page saw (lost on reload: probed later). */
  async harvest() {
    const out = await this.page.evaluate(() => window.harness.outcomes());
    for (const [key, o] of Object.entries(out)) {
      const e = this.keys?.get(key);
      if (!e) continue;
      if (e.mids) {
        // A transaction: one outcome for its members (every member is refused with the group's code).
        e.mids.forEach((mid, i) => {
          if (o.state === 'applied') this.h.ledgerOutcome(e.clientId, mid, { applied: true, seq: o.seqs?.[i] });
          else if (o.state === 'rejected') {
            this.h.ledgerOutcome(e.clientId, mid, { applied: false, code: o.code, message: o.message });
            if (o.failedMid !== undefined) this.h.ledgerGet(e.clientId, mid).failedMid = o.failedMid;
          }
        });
        continue;
      }
      if (o.state === 'applied') this.h.ledgerOutcome(e.clientId, e.mid, { applied: true, seq: o.seq });
      else if (o.state === 'rejected') this.h.ledgerOutcome(e.clientId, e.mid, { applied: false, code: o.code, message: o.message });
    }
  }

  async reload() {
    await this.harvest().catch(() => {});
    this.keys = new Map();
    await this.open();
  }

  async writeOnce() {
    const r = this.h.r;
    const rolls = [r.next(), r.next(), r.next(), r.next(), r.next(), r.next()];
    const tag = `p${this.idx}.${++this.n}`;
    if (await this.counterWrite(rolls, tag)) return;
    const res = await this.page.evaluate(
      async ({ rolls, tag, customers }) => {
        const h = window.harness;
        const bills = h.docs('bills');
        const pick = (arr, x) => arr[Math.floor(x * arr.length)];
        const clientId = h.status().clientId;
        if (rolls[0] < 0.35 || bills.length < 3) {
          const id = `pg-${tag.replace(/\./g, '-')}-${Math.floor(rolls[4] * 1e9)}`;
          const w = await h.writeDurably('insert', 'bills', id, { customer_id: pick(customers, rolls[1]), amount: Math.floor(rolls[2] * 500), status: 'unpaid', tag });
          return { ...w, kind: 'insert', collection: 'bills', id, clientId, local: true };
        }
        const doc = pick(bills, rolls[1]);
        if (rolls[0] < 0.65) {
          const w = await h.writeDurably('update', 'bills', doc.id, { status: pick(['paid', 'void', 'late'], rolls[2]), amount: Math.floor(rolls[3] * 500), tag });
          return { ...w, kind: 'patch', collection: 'bills', id: doc.id, clientId, local: true };
        }
        if (rolls[0] < 0.85) {
          // Conditional update: harness.write has no durable variant with a base version.
          const w = h.write('update', 'bills', doc.id, { status: 'paid', tag }, rolls[2] < 0.2 ? Math.max(1, doc.version - 1) : doc.version);
          return { ...w, kind: 'cond_update', collection: 'bills', id: doc.id, clientId, local: false };
        }
        const w = await h.writeDurably('delete', 'bills', doc.id);
        return { ...w, kind: 'delete', collection: 'bills', id: doc.id, clientId, local: true };
      },
      { rolls, tag, customers: this.h.customers },
    );
    this.keys = this.keys ?? new Map();
    this.keys.set(res.key, { clientId: res.clientId, mid: res.mid });
    const e = this.h.ledgerIssue({ clientId: res.clientId, mid: res.mid, kind: res.kind, collection: res.collection, id: res.id, tag: res.kind === 'delete' ? undefined : tag, owner: `page-${this.idx}` });
    e.local = res.local;
  }

  /** Counter writes from a page whose harness has writeOps/transaction: bounded
   * sales, restocks and transfers, with the same meaning as the Node clients'. The write is
   * issued in one synchronous evaluate (so a reload cannot lose its record here) and marked
   * durable by a second. Returns false when this roll is not a counter write. */
  async counterWrite(rolls, tag) {
    const counters = [...this.h.counterInit.keys()];
    if (!counters.length || rolls[5] >= this.h.opts.counterShare) return false;
    if (this.hasOps === undefined) this.hasOps = await this.page.evaluate(() => typeof window.harness.transaction === 'function' && typeof window.harness.writeOps === 'function');
    if (!this.hasOps) return false;
    const a = counters[Math.floor(rolls[1] * counters.length)];
    let b = counters[Math.floor(rolls[2] * counters.length)];
    if (b === a) b = counters[(counters.indexOf(a) + 1) % counters.length];
    const x = 1 + Math.floor(rolls[3] * 6);
    const res = await this.page.evaluate(
      ({ a, b, x, roll, tag }) => {
        const h = window.harness;
        const clientId = h.status().clientId;
        if (roll < 0.6) {
          const by = roll < 0.35 ? -x : x;
          const bounds = by < 0 ? { min: 0 } : undefined;
          const w = h.writeOps('update', 'products', a, { stock: { $increment: [by, bounds] }, tag });
          return { clientId, key: w.key, mid: w.mid, kind: by < 0 ? 'ctr_dec' : 'ctr_inc', inc: { doc: a, field: 'stock', by, ...(bounds ?? {}) } };
        }
        const t = h.transaction([
          { op: 'update', collection: 'products', id: a, fields: { stock: { $increment: [-x, { min: 0 }] }, tag: `${tag}.a` } },
          { op: 'update', collection: 'products', id: b, fields: { stock: { $increment: [x] }, tag: `${tag}.b` } },
          { op: 'insert', collection: 'stock_transactions', fields: { from: a, to: b, qty: x, at: { $serverTime: true }, tag: `${tag}.c` } },
        ]);
        return { clientId, key: t.key, mids: t.mids, ids: t.ids };
      },
      { a, b, x, roll: rolls[4], tag },
    );
    this.keys = this.keys ?? new Map();
    const owner = `page-${this.idx}`;
    if (res.mids) {
      this.keys.set(res.key, { clientId: res.clientId, mids: res.mids });
      this.h.ledgerIssueGroup({
        clientId: res.clientId, group: 'xfer', owner,
        members: [
          { mid: res.mids[0], kind: 'xfer_dec', collection: 'products', id: a, tag: `${tag}.a`, inc: { doc: a, field: 'stock', by: -x, min: 0 } },
          { mid: res.mids[1], kind: 'xfer_inc', collection: 'products', id: b, tag: `${tag}.b`, inc: { doc: b, field: 'stock', by: x } },
          { mid: res.mids[2], kind: 'xfer_rec', collection: 'stock_transactions', id: res.ids[2], tag: `${tag}.c` },
        ],
      });
    } else {
      this.keys.set(res.key, { clientId: res.clientId, mid: res.mid });
      this.h.ledgerIssue({ clientId: res.clientId, mid: res.mid, kind: res.kind, collection: 'products', id: a, tag, inc: res.inc, owner });
    }
    const durable = await this.page.evaluate((key) => window.harness.localOf(key)?.then(() => true), res.key).catch(() => false);
    if (durable) for (const mid of res.mids ?? [res.mid]) this.h.ledgerGet(res.clientId, mid).local = true;
    return true;
  }

  evaluate(fn, arg) {
    return this.page.evaluate(fn, arg);
  }
}

export class ChaosRun {
  constructor(opts) {
    this.opts = {
      seconds: 60, clients: 20, customers: 5, pages: 2, opMinMs: 100, opMaxMs: 700,
      serverKillEveryS: [10, 20], clientKillEveryS: [2, 5], quietTimeoutS: 90, logRetention: 0, offlineMaxMs: 12000, log: (...a) => console.log(...a),
      counters: 4, counterStart: 20, counterShare: 0.3, cluster: null, ...opts,
    };
    this.seed = String(this.opts.seed ?? Date.now());
    this.r = rng(`${this.seed}/nemesis`);
    this.customers = Array.from({ length: this.opts.customers }, (_, i) => `cust-${i}`);
    this.ledger = new Map();
    this.groups = new Map(); // `${clientId}#${first mid}` -> {kind, clientId, mids, owner}
    this.counterInit = new Map(Array.from({ length: this.opts.counters }, (_, i) => [`ctr-${i}`, this.opts.counterStart]));
    this.clientIds = new Map();
    this.streams = new StreamLedger(); // what the Node clients' streams delivered
    this.violations = [];
    this.faults = {
      server_kill9: 0, client_kill9: 0, client_kill_mid_write: 0, client_offline_periods: 0,
      page_reloads: 0, page_offline_periods: 0, connections_cut_by_nemesis: 0,
    };
    this.timers = new Set();
    this.stopping = false;
  }

  log(...a) {
    this.opts.log(...a);
  }

  violation(msg) {
    if (this.violations.length < 200) this.violations.push(msg);
  }

  key(clientId, mid) {
    return `${clientId}#${mid}`;
  }

  ledgerIssue(m) {
    const k = this.key(m.clientId, m.mid);
    const prev = this.ledger.get(k);
    // A mid whose write never became durable may be reused after a crash; a durable one never.
    if (prev && prev.kind !== undefined && prev.local) this.violation(`mid reused: ${k} was ${prev.tag} (${prev.kind}, accepted locally) and now ${m.tag} (${m.kind})`);
    if (prev && prev.kind !== undefined && !prev.local) this.midsReusedAfterCrash = (this.midsReusedAfterCrash ?? 0) + 1;
    // A group whose mid is reused was never sent (a group is sent only once durable to its last member).
    if (prev?.group && this.groups.get(prev.group)?.mids.includes(m.mid)) {
      this.groups.delete(prev.group);
      this.groupsDroppedAfterCrash = (this.groupsDroppedAfterCrash ?? 0) + 1;
    }
    const e = { ...(prev && prev.kind === undefined ? prev : {}), clientId: m.clientId, mid: m.mid, kind: m.kind, collection: m.collection, id: m.id, tag: m.tag, owner: m.owner, local: prev?.local ?? false, outcome: prev?.outcome ?? null, inc: m.inc, group: m.group };
    this.ledger.set(k, e);
    return e;
  }

  /** The members of one client.transaction, issued together: {clientId, group (kind), members, owner}. */
  ledgerIssueGroup(m) {
    const gk = this.key(m.clientId, m.members[0].mid);
    const entries = m.members.map((x) => this.ledgerIssue({ ...x, clientId: m.clientId, owner: m.owner, group: gk }));
    this.groups.set(gk, { key: gk, kind: m.group, clientId: m.clientId, mids: m.members.map((x) => x.mid), owner: m.owner });
    return entries;
  }

  ledgerGet(clientId, mid) {
    const k = this.key(clientId, mid);
    let e = this.ledger.get(k);
    if (!e) {
      e = { clientId, mid, local: false, outcome: null };
      this.ledger.set(k, e);
    }
    return e;
  }

  ledgerOutcome(clientId, mid, o) {
    const e = this.ledgerGet(clientId, mid);
    if (e.outcome && (e.outcome.applied !== o.applied || e.outcome.seq !== o.seq || e.outcome.code !== o.code)) {
      this.violation(`${this.key(clientId, mid)} settled twice differently: ${JSON.stringify(e.outcome)} then ${JSON.stringify(o)}`);
    }
    e.outcome = o;
  }

  later(ms, fn) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopping) fn();
    }, ms);
    this.timers.add(t);
  }

  staticDir() {
    return this.opts.staticDir ?? join(here, '..', 'e2e', 'app', 'dist');
  }

  async startServer() {
    const args = this.port ? ['--port', String(this.port)] : [];
    for (let attempt = 0; ; attempt++) {
      try {
        this.server = await startServer({ config: this.config, dir: this.workDir, args: [...args, '--static', this.staticDir()] });
        this.port = this.server.port;
        return;
      } catch (e) {
        if (attempt >= 10) throw e;
        await sleep(300);
      }
    }
  }

  async setup() {
    // Safety net: if the test process dies without teardown, take our children with it.
    process.once('exit', () => {
      for (const c of this.nodes ?? []) if (c.proc && c.proc.exitCode === null) c.proc.kill('SIGKILL');
      if (this.server?.proc?.exitCode === null) this.server.proc.kill('SIGKILL');
    });
    this.workDir = mkdtempSync(join(tmpdir(), 'syncline-chaos-'));
    this.config = chaosConfig({ logRetention: this.opts.logRetention });
    if (this.opts.cluster) {
      // The balancer stands in for the server: every request and stream of the harness goes through it.
      this.clusterMode = new ClusterChaos(this, this.opts.cluster);
      this.server = await this.clusterMode.setup({ config: this.config, workDir: this.workDir, staticDir: this.staticDir() });
      this.port = this.server.port;
    } else await this.startServer();
    this.proxy = new ChaosProxy({ targetPort: this.port, rng: rng(`${this.seed}/proxy`) });
    this.proxy.faults = false;
    await this.proxy.listen();
    this.proxyUrl = `http://127.0.0.1:${this.proxy.port}`;
    this.adminToken = makeToken('chaos-auditor', 'admin', { exp: Math.floor(Date.now() / 1000) + 24 * 3600 });
    // Before any client starts: the auditor must see the log from seq 1, and with a small
    // log_retention the first seqs are pruned while 20 clients are still starting (and writing).
    this.startAuditor();
    await this.createCounters();

    const roles = [];
    for (let i = 0; i < this.opts.clients; i++) {
      // About a quarter are customers (filtered reads, booking inserts under a unique constraint).
      const isCustomer = i % 4 === 3;
      roles.push(isCustomer ? { role: 'customer', sub: this.customers[(i >> 2) % this.customers.length] } : { role: 'admin', sub: `admin-${i}` });
    }
    this.nodes = roles.map((ro, i) => new NodeClient(this, i, ro));
    // Start in small groups: 20 wasm instantiations at once would starve 2 cores.
    for (let i = 0; i < this.nodes.length; i += 4) await Promise.all(this.nodes.slice(i, i + 4).map((c) => c.start()));

    this.pages = [];
    if (this.opts.pages > 0) {
      const { launchBrowser } = await import('../e2e/helpers.mjs');
      this.browser = await launchBrowser();
      for (let i = 0; i < this.opts.pages; i++) {
        // One context per page: its own IndexedDB, so each page is a separate client (leader of itself).
        const context = await this.browser.browser.newContext();
        const p = new PageClient(this, i, context);
        await p.open();
        this.pages.push(p);
      }
    }
    this.proxy.faults = true;
  }

  /** The counters (`products` documents that only ever move by increments), inserted by the
   * harness before any client starts, with their initial values. */
  async createCounters() {
    if (!this.counterInit.size) return;
    const mutations = [...this.counterInit].map(([id, v], i) => ({ mid: i + 1, op: 'insert', collection: 'products', id, fields: { name: `counter ${id}`, price: 1, stock: v, kind: 'counter' } }));
    const r = await api(this.server, 'POST', '/v1/mutations', { token: this.adminToken, body: { client: SETUP_CLIENT, mutations } });
    if (r.status !== 200 || r.json.results.some((x) => x.status !== 'applied')) throw new Error(`creating the counters failed: ${r.status} ${r.text}`);
  }

  /** Tails the whole change log over SSE straight from the server (not through the proxy),
   * resuming with its cursor after every server kill: the record the checker compares against
   * (in cluster mode, with the database's log; it is moved to another node every few seconds).
   * Every seq of this dataset is a change an admin may read, so the seqs must be 1..head with
   * no gap and no repeat (an SSE resume check across kill -9 of its own). */
  startAuditor() {
    this.audit = { changes: new Map(), cursor: 0, reconnects: 0, resets: 0, gaps: 0, repeats: 0, resetHoles: [] };
    const a = this.audit;
    const loop = async () => {
      while (!this.auditStop) {
        let sse;
        try {
          // In cluster mode straight to one node after another (lib/cluster-chaos.mjs auditTarget).
          sse = new SseClient(this.clusterMode?.auditTarget() ?? this.server, { token: this.adminToken, cursor: a.cursor, collections: COLLECTIONS_ADMIN.join(',') });
          const current = sse;
          this.auditClose = () => current.close();
          a.activity = Date.now(); // when it last got a change (cluster mode moves it on a silence)
          await sse.opened;
          let seen = 0;
          await new Promise((res) => {
            const check = () => {
              if (seen < sse.events.length) a.activity = Date.now();
              for (; seen < sse.events.length; seen++) {
                const ev = sse.events[seen];
                if (ev.event === 'reset') {
                  a.resets++;
                  // In cluster mode the checker has the database's whole log (lib/cluster.mjs
                  // copyLog): a reset of a stream that fell behind a log_retention is legitimate, and leaves a hole.
                  if (this.clusterMode && this.config.limits.log_retention > 0) a.afterReset = true;
                  else this.violation(`auditor got reset ${ev.data} at cursor ${a.cursor}: it fell behind log_retention, the check is incomplete`);
                } else if (ev.event === 'change') {
                  const ch = ev.json;
                  if (a.changes.has(ch.seq)) a.repeats++;
                  else if (a.afterReset) {
                    a.afterReset = false;
                    if (ch.seq > a.cursor + 1) a.resetHoles.push([a.cursor + 1, ch.seq - 1]);
                  } else if (ch.seq !== a.cursor + 1) {
                    a.gaps++;
                    this.violation(`auditor stream gap: resumed after ${a.cursor}, next change was ${ch.seq}`);
                  }
                  a.changes.set(ch.seq, ch);
                  if (ch.seq > a.cursor) a.cursor = ch.seq;
                }
              }
              if (sse.closed || this.auditStop) res();
            };
            sse.waiters.push(check);
            check();
          });
        } catch {
          /* server down */
        } finally {
          sse?.close();
        }
        if (!this.auditStop) {
          a.reconnects++;
          await sleep(50);
        }
      }
    };
    this.auditDone = loop();
  }

  async stopAuditor(head) {
    const deadline = Date.now() + 30000;
    while (this.audit.cursor < head && Date.now() < deadline) await sleep(50);
    if (this.audit.cursor < head) this.violation(`auditor stopped at ${this.audit.cursor}, head is ${head}`);
    this.auditStop = true;
    this.auditClose?.();
    await this.auditDone;
    return [...this.audit.changes.values()].sort((x, y) => x.seq - y.seq);
  }

  // ------------------------------------------------------------------ nemesis

  async nemesis(seconds) {
    const r = this.r;
    const end = Date.now() + seconds * 1000;
    const [skLo, skHi] = this.opts.serverKillEveryS;
    const [ckLo, ckHi] = this.opts.clientKillEveryS;
    let nextServerKill = Date.now() + r.range(skLo, skHi) * 1000;
    let nextClientKill = Date.now() + r.range(ckLo, ckHi) * 1000;
    let nextPageFault = Date.now() + r.range(5, 12) * 1000;
    this.clusterMode?.plan(r, seconds);
    const pageLoops = this.pages.map((p) => this.pageWriter(p, end));
    while (Date.now() < end) {
      await sleep(r.int(100, 400));
      if (r.chance(0.35)) this.faults.connections_cut_by_nemesis += this.proxy.cutRandom(r.int(1, 3));
      if (r.chance(0.07)) {
        const c = r.pick(this.nodes.filter((n) => n.alive && !n.offline));
        if (c) {
          c.offline = true;
          c.tell('offline');
          this.faults.client_offline_periods++;
          this.later(r.chance(0.8) ? r.int(300, 4000) : r.int(4000, this.opts.offlineMaxMs), () => {
            c.offline = false;
            c.tell('online');
          });
        }
      }
      if (Date.now() >= nextClientKill) {
        nextClientKill = Date.now() + r.range(ckLo, ckHi) * 1000;
        const c = r.pick(this.nodes.filter((n) => n.alive));
        if (c) {
          this.faults.client_kill9++;
          if (r.chance(0.6)) c.killOnIssue = true; // killed right after its next write was issued
          else c.kill();
          this.later(r.int(300, 2500), () => this.restartNode(c));
        }
      }
      if (this.clusterMode) this.clusterMode.tick(r);
      else if (Date.now() >= nextServerKill) {
        nextServerKill = Date.now() + r.range(skLo, skHi) * 1000;
        await this.killServer(r.int(100, 2500));
      }
      if (this.pages.length && Date.now() >= nextPageFault) {
        nextPageFault = Date.now() + r.range(5, 12) * 1000;
        const p = r.pick(this.pages);
        if (r.chance(0.5)) {
          p.busy = true;
          this.faults.page_reloads++;
          try {
            await p.reload();
          } catch (e) {
            this.violation(`page ${p.idx} reload failed: ${e.message}`);
          }
          p.busy = false;
        } else if (!p.offline) {
          p.offline = true;
          this.faults.page_offline_periods++;
          await p.evaluate(() => window.harness.goOffline()).catch(() => {});
          this.later(r.int(500, 5000), () => {
            p.offline = false;
            p.evaluate(() => window.harness.goOnline()).catch(() => {});
          });
        }
      }
    }
    await Promise.all(pageLoops);
  }

  async pageWriter(p, end) {
    const r = rng(`${this.seed}/page/${p.idx}`);
    while (Date.now() < end && !this.stopping) {
      await sleep(r.int(this.opts.opMinMs, this.opts.opMaxMs));
      if (p.busy) continue;
      try {
        await p.writeOnce();
      } catch (e) {
        if (!p.busy) this.log(`page ${p.idx} write failed: ${e.message.split('\n')[0]}`);
      }
    }
  }

  restartNode(c) {
    if (!c.restarting) c.restarting = this.#restartNode(c).finally(() => (c.restarting = null));
    return c.restarting;
  }

  async #restartNode(c) {
    if (c.proc && c.proc.exitCode === null && c.proc.signalCode === null) c.kill();
    await new Promise((res) => (c.proc.exitCode !== null || c.proc.signalCode !== null ? res() : c.proc.once('exit', res)));
    try {
      await c.start();
    } catch (e) {
      this.violation(`client ${c.idx} failed to restart from its persisted state: ${e.message}`);
    }
  }

  /** Adds up counters of the server incarnation about to die (metrics restart at 0); in
   * cluster mode of each node given (by default every node that runs). */
  async sampleServer(targets = this.clusterMode ? this.clusterMode.nodes.filter((n) => n.alive) : [this.server]) {
    for (const t of targets) {
      try {
        const m = await Promise.race([metrics(t), sleep(3000).then(() => Promise.reject(new Error('no answer')))]);
        this.serverCounters = this.serverCounters ?? {};
        for (const k of ['syncline_resets_total', 'syncline_mutations_total{status="duplicate"}', 'syncline_mutations_total{status="applied"}']) {
          this.serverCounters[k] = (this.serverCounters[k] ?? 0) + (m[k] ?? 0);
        }
      } catch {
        /* best effort */
      }
    }
  }

  async killServer(downMs) {
    this.faults.server_kill9++;
    await this.sampleServer();
    await this.server.stop('SIGKILL');
    await sleep(downMs);
    await this.startServer();
  }

  // ------------------------------------------------------------------ heal + check

  async heal() {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.proxy.faults = false;
    await this.clusterMode?.heal();
    for (const c of this.nodes) {
      c.killOnIssue = false;
      if (c.restarting) await c.restarting;
      if (!c.alive) await this.restartNode(c);
      c.tell('write', { on: false });
      c.tell('online');
      c.offline = false;
    }
    for (const p of this.pages) {
      while (p.busy) await sleep(50);
      await p.evaluate(() => window.harness.goOnline()).catch(() => {});
      p.offline = false;
    }
    // Let delayed duplicate replays land (at most 1.5 s + their round trip).
    await sleep(2000);
  }

  async replicaOf(c) {
    if (c instanceof PageClient) {
      return c.evaluate((colls) => {
        const docs = {};
        for (const col of colls) docs[col] = window.harness.docs(col);
        return { status: window.harness.status(), docs };
      }, COLLECTIONS_ADMIN);
    }
    const m = await c.request('dump');
    return { status: m.status, docs: m.docs };
  }

  async serverView(c) {
    const colls = c.role === 'admin' ? COLLECTIONS_ADMIN : COLLECTIONS_CUSTOMER;
    const out = {};
    for (const col of colls) out[col] = (await snapshotAll(this.server, c.token, { collections: col, limit: 5000 })).docs;
    return out;
  }

  diff(replica, server) {
    const problems = [];
    for (const col of Object.keys(server)) {
      const mine = new Map((replica.docs[col] ?? []).map((d) => [d.id, d]));
      const theirs = new Map(server[col].map((d) => [d.id, d]));
      for (const [id, d] of theirs) {
        const m = mine.get(id);
        if (!m) problems.push(`${col}/${id} missing (server v${d.version})`);
        else if (m.version !== d.version || JSON.stringify(sortKeys(m.fields)) !== JSON.stringify(sortKeys(d.fields))) {
          problems.push(`${col}/${id} differs: replica v${m.version} ${JSON.stringify(m.fields)} vs server v${d.version} ${JSON.stringify(d.fields)}`);
        } else if (m.pending) problems.push(`${col}/${id} still pending`);
      }
      for (const [id, m] of mine) if (!theirs.has(id)) problems.push(`${col}/${id} extra in replica (v${m.version}${m.pending ? ', pending' : ''})`);
    }
    return problems;
  }

  async waitQuiet() {
    const t0 = Date.now();
    const deadline = t0 + this.opts.quietTimeoutS * 1000;
    let last = [];
    for (;;) {
      last = [];
      const head = this.clusterMode ? await this.clusterMode.head(last) : (await api(this.server, 'GET', '/v1/health')).json.seq;
      for (const c of [...this.nodes, ...this.pages]) {
        let rep;
        try {
          rep = await this.replicaOf(c);
        } catch (e) {
          last.push(`${c.role} ${c.sub} (${c.clientId}): ${e.message}`);
          continue;
        }
        const who = `${c instanceof PageClient ? 'page' : 'node'} ${c.idx} ${c.role}/${c.sub} ${c.transport ?? 'sse'} (${rep.status.clientId})`;
        if (rep.status.pendingOperations > 0) {
          last.push(`${who}: ${rep.status.pendingOperations} pending, connection ${rep.status.connection}, lastError ${JSON.stringify(rep.status.lastError)}`);
          continue;
        }
        if (c.role === 'admin' && rep.status.cursor !== head) {
          last.push(`${who}: cursor ${rep.status.cursor} != head ${head} (connection ${rep.status.connection})`);
          continue;
        }
        const problems = this.diff(rep, await this.serverView(c));
        if (problems.length) last.push(`${who}: ${problems.length} differences, e.g. ${problems.slice(0, 3).join('; ')}`);
      }
      if (!last.length) return { ms: Date.now() - t0, head };
      if (Date.now() > deadline) {
        for (const l of last) this.violation(`not converged after ${this.opts.quietTimeoutS} s: ${l}`);
        return { ms: null, head };
      }
      await sleep(500);
    }
  }

  async readLog(head) {
    const sse = new SseClient(this.server, { token: this.adminToken, cursor: 0, collections: COLLECTIONS_ADMIN.join(',') });
    await sse.opened;
    try {
      await sse.waitFor((s) => s.changes().some((c) => c.seq >= head) || head === 0, 30000, `log up to ${head}`);
      return sse.changes();
    } finally {
      sse.close();
    }
  }

  /** Asks the server for the recorded outcome of each mid (a resend is answered `duplicate`
   * with the original outcome). A mid the server never saw is applied or rejected afresh:
   * that mutation was lost. Runs after every other check: a fresh probe changes state. */
  async probe(clientId, mids, token, sub) {
    const out = new Map();
    const sorted = [...mids].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length; i += 400) {
      const chunk = sorted.slice(i, i + 400);
      const r = await api(this.server, 'POST', '/v1/mutations', {
        token,
        body: {
          client: clientId,
          mutations: chunk.map((mid) => ({ mid, op: 'insert', collection: 'bookings', id: `probe-${mid}-${clientId}`.slice(0, 120), fields: { customer_id: sub, hall: 'probe', date: 'probe', slot: `${clientId}-${mid}` } })),
        },
      });
      if (r.status !== 200) throw new Error(`probe for ${clientId} failed: ${r.status} ${r.text}`);
      for (const res of r.json.results) out.set(res.mid, res);
    }
    return out;
  }

  async check(head) {
    let log = await this.stopAuditor(head);
    if (this.clusterMode) log = await this.clusterMode.serverLog(log, head);
    const streams = this.streams.check(log, (m) => this.violation(m));
    const counterValues = await this.counterValues();
    const byOrigin = new Map();
    const byTag = new Map();
    let duplicated = 0;
    for (const ch of log) {
      if (ch.origin) {
        const k = this.key(ch.origin.client, ch.origin.mid);
        if (byOrigin.has(k)) {
          duplicated++;
          this.violation(`(client, mid) ${k} applied twice: seq ${byOrigin.get(k).seq} and ${ch.seq}`);
        } else byOrigin.set(k, ch);
      }
      const tag = ch.fields?.tag;
      if (ch.op !== 'delete' && tag !== undefined && ch.origin) {
        const e = this.ledger.get(this.key(ch.origin.client, ch.origin.mid));
        if (e && e.tag !== undefined && e.tag !== tag) this.violation(`seq ${ch.seq} (origin ${ch.origin.client}#${ch.origin.mid}) carries tag ${tag}, expected ${e.tag}`);
        if (e && e.tag === tag) {
          if (byTag.has(tag)) {
            duplicated++;
            this.violation(`mutation ${tag} applied twice: seq ${byTag.get(tag)} and ${ch.seq}`);
          } else byTag.set(tag, ch.seq);
        }
      }
    }

    // Ask the server about every mid any client issued.
    const perClient = new Map();
    for (const e of this.ledger.values()) {
      if (e.kind === undefined) continue;
      if (!perClient.has(e.clientId)) perClient.set(e.clientId, []);
      perClient.get(e.clientId).push(e.mid);
    }
    const probes = new Map();
    for (const [clientId, mids] of perClient) {
      const owner = this.clientIds.get(clientId);
      if (!owner) {
        this.violation(`no owner known for client id ${clientId}`);
        continue;
      }
      const res = await this.probe(clientId, mids, owner.token, owner.sub);
      for (const [mid, r] of res) probes.set(this.key(clientId, mid), r);
    }

    const counts = { issued: 0, accepted_locally: 0, applied: 0, rejected: {}, unknown_to_client: 0, lost: 0, lost_not_local: 0, acked_but_missing: 0 };
    const recorded = new Map(); // (client, mid) -> what the server recorded, from the probes
    for (const [k, e] of this.ledger) {
      if (e.kind === undefined) continue;
      counts.issued++;
      if (e.local) counts.accepted_locally++;
      const p = probes.get(k);
      const inLog = byOrigin.get(k);
      let server = null; // what the server recorded
      if (p && p.status === 'duplicate' && p.seq > 0) server = { applied: true, seq: p.seq };
      else if (p && p.status === 'duplicate' && p.code) server = { applied: false, code: p.code };
      recorded.set(k, server);
      if (!server) {
        if (e.local) {
          counts.lost++;
          this.violation(`LOST: ${k} (${e.owner} ${e.kind} ${e.collection}/${e.id} tag ${e.tag}) was accepted locally but the server has no outcome for it (probe: ${JSON.stringify(p)}); client saw ${JSON.stringify(e.outcome)}`);
        } else {
          counts.lost_not_local++;
        }
        continue;
      }
      if (server.applied) {
        counts.applied++;
        if (!inLog || inLog.seq !== server.seq) {
          counts.acked_but_missing++;
          this.violation(`${k} recorded applied at seq ${server.seq} but the log has ${inLog ? `it at ${inLog.seq}` : 'no change with that origin'}`);
        }
      } else {
        counts.rejected[server.code] = (counts.rejected[server.code] ?? 0) + 1;
        if (inLog) this.violation(`${k} recorded rejected (${server.code}) but the log has it applied at seq ${inLog.seq}`);
        if (!EXPECTED_REJECTIONS.has(server.code)) this.violation(`${k} (${e.owner} ${e.kind} ${e.collection}/${e.id}) rejected with unexpected code ${server.code}`);
      }
      if (!e.outcome) counts.unknown_to_client++;
      else if (e.outcome.applied !== server.applied || (server.applied && e.outcome.seq !== server.seq) || (!server.applied && e.outcome.code !== server.code)) {
        this.violation(`${k} (${e.owner} ${e.kind}): client was told ${JSON.stringify(e.outcome)} but the server recorded ${JSON.stringify(server)}`);
      }
    }
    for (const [k, ch] of byOrigin) {
      const e = this.ledger.get(k);
      if (ch.origin.client !== SETUP_CLIENT && (!e || e.kind === undefined)) counts.unknown_to_client++;
    }
    const groups = this.checkGroups(byOrigin, recorded);
    const counters = await this.checkCounters(log, byOrigin, recorded, counterValues);
    return { counts, duplicated, logChanges: log.length, groups, counters, streams };
  }

  /** The counters' values on the server and in every replica, right after quiet (before the probes). */
  async counterValues() {
    const ids = [...this.counterInit.keys()];
    const snap = (await snapshotAll(this.server, this.adminToken, { collections: 'products', limit: 5000 })).docs;
    const server = new Map(ids.map((id) => [id, snap.find((d) => d.id === id)?.fields.stock]));
    const replicas = [];
    for (const c of [...this.nodes, ...this.pages]) {
      const who = `${c instanceof PageClient ? 'page' : 'node'} ${c.idx} ${c.role}/${c.sub}`;
      try {
        const rep = await this.replicaOf(c);
        replicas.push({ who, values: new Map(ids.map((id) => [id, (rep.docs.products ?? []).find((d) => d.id === id)?.fields.stock])) });
      } catch (e) {
        this.violation(`COUNTER REPLICA: ${who} could not be read: ${e.message}`);
      }
    }
    return { server, replicas };
  }

  /** Check (1): every atomic group is all or nothing, in the log (all members at consecutive
   * seqs, in order, or none), in what the server recorded and in what its client was told. */
  checkGroups(byOrigin, recorded) {
    const f = { issued: 0, issued_by_pages: 0, applied: 0, rejected: {}, never_reached_server: 0, dropped_before_durable: this.groupsDroppedAfterCrash ?? 0, by_kind: {} };
    for (const g of this.groups.values()) {
      f.issued++;
      if (g.owner?.startsWith('page-')) f.issued_by_pages++;
      const kind = (f.by_kind[g.kind] ??= { issued: 0, applied: 0, rejected: {} });
      kind.issued++;
      const keys = g.mids.map((mid) => this.key(g.clientId, mid));
      const what = `GROUP ${g.key} (${g.owner} ${g.kind}, mids ${g.mids.join(',')})`;
      const inLog = keys.map((k) => byOrigin.get(k));
      const present = inLog.filter(Boolean).length;
      if (present > 0 && present < keys.length) {
        this.violation(`${what} half applied: ${present} of ${keys.length} members in the log (${inLog.map((ch, i) => `mid ${g.mids[i]}: ${ch ? `seq ${ch.seq}` : 'absent'}`).join(', ')})`);
      } else if (present === keys.length && inLog.some((ch, i) => ch.seq !== inLog[0].seq + i)) {
        this.violation(`${what} applied at seqs ${inLog.map((ch) => ch.seq).join(',')}, not consecutive in member order`);
      }
      const srv = keys.map((k) => recorded.get(k));
      const sig = (o) => (!o ? 'none' : o.applied ? 'applied' : `rejected ${o.code}`);
      if (new Set(srv.map(sig)).size > 1) this.violation(`${what}: the server recorded members differently: ${srv.map(sig).join(' / ')}`);
      const told = keys.map((k) => this.ledger.get(k)?.outcome).filter(Boolean);
      if (new Set(told.map(sig)).size > 1) this.violation(`${what}: its client was told members differently: ${told.map(sig).join(' / ')}`);
      const failed = new Set(keys.map((k) => this.ledger.get(k)?.failedMid).filter((x) => x !== undefined));
      if (failed.size > 1 || [...failed].some((mid) => !g.mids.includes(mid))) this.violation(`${what}: rejected naming failed member(s) ${[...failed].join(',')}`);
      if (!srv[0]) f.never_reached_server++;
      else if (srv[0].applied) {
        f.applied++;
        kind.applied++;
      } else {
        f.rejected[srv[0].code] = (f.rejected[srv[0].code] ?? 0) + 1;
        kind.rejected[srv[0].code] = (kind.rejected[srv[0].code] ?? 0) + 1;
      }
    }
    return f;
  }

  /** Checks (2)-(4) on the counters: the exact sum, every step, every replica, conservation. */
  async checkCounters(log, byOrigin, recorded, values) {
    const f = { counters: {}, increments: { issued: 0, issued_by_pages: 0, applied: 0, rejected: {}, never_reached_server: 0, applied_unknown_to_client: 0 }, transfers_moved: 0, non_transfer_sum: 0 };
    if (!this.counterInit.size) return f;
    const value = new Map(); // the counter's value after the last log change seen
    const applied = new Map([...this.counterInit.keys()].map((id) => [id, { n: 0, sum: 0 }]));
    const counted = new Set();
    for (const ch of log) {
      if (ch.collection !== 'products' || !this.counterInit.has(ch.id)) continue;
      const after = ch.op === 'delete' ? undefined : ch.fields.stock;
      const k = ch.origin ? this.key(ch.origin.client, ch.origin.mid) : null;
      if (ch.origin?.client === SETUP_CLIENT) {
        value.set(ch.id, after);
        continue;
      }
      const e = k ? this.ledger.get(k) : undefined;
      if (!e?.inc || e.inc.doc !== ch.id) {
        this.violation(`COUNTER ${ch.id} changed at seq ${ch.seq} (${ch.op}, stock ${after}) by ${k ?? 'no origin'}, which is no increment of it (${e?.kind ?? 'not issued by any client'})`);
        value.set(ch.id, after);
        continue;
      }
      const before = value.get(ch.id);
      if (after - before !== e.inc.by) this.violation(`COUNTER STEP ${ch.id} at seq ${ch.seq}: ${k} (${e.owner} ${e.kind}, increment ${e.inc.by}) moved it from ${before} to ${after}`);
      if ((e.inc.min !== undefined && after < e.inc.min) || (e.inc.max !== undefined && after > e.inc.max)) {
        this.violation(`COUNTER BOUND ${ch.id} at seq ${ch.seq}: ${k} (${e.kind}) left it at ${after} outside [${e.inc.min ?? '-inf'}, ${e.inc.max ?? 'inf'}]`);
      }
      value.set(ch.id, after);
      if (counted.has(k)) continue; // applied twice: already a violation; each (client, mid) counts once
      counted.add(k);
      const a = applied.get(ch.id);
      a.n++;
      a.sum += e.inc.by;
      const g = e.group ? this.groups.get(e.group) : null;
      if (g?.kind === 'xfer') f.transfers_moved += Math.max(0, e.inc.by);
      else f.non_transfer_sum += e.inc.by;
      if (e.outcome && !e.outcome.applied) this.violation(`COUNTER ${ch.id}: ${k} (${e.owner} ${e.kind}) is applied in the log at seq ${ch.seq} but its client was told rejected (${e.outcome.code})`);
      if (!e.outcome) f.increments.applied_unknown_to_client++;
    }
    // The clients' side: every increment a client was told applied must be one the log applied.
    for (const [k, e] of this.ledger) {
      if (!e.inc || e.kind === undefined) continue;
      f.increments.issued++;
      if (e.owner?.startsWith('page-')) f.increments.issued_by_pages++;
      const srv = recorded.get(k);
      if (!srv) f.increments.never_reached_server++;
      else if (srv.applied) f.increments.applied++;
      else f.increments.rejected[srv.code] = (f.increments.rejected[srv.code] ?? 0) + 1;
      if (e.outcome?.applied && !counted.has(k)) this.violation(`COUNTER ${e.inc.doc}: ${k} (${e.owner} ${e.kind}, increment ${e.inc.by}) was told applied at seq ${e.outcome.seq} but the log has no such change of it`);
    }
    if (f.increments.applied !== counted.size) this.violation(`COUNTER: the server recorded ${f.increments.applied} increments applied, the log holds ${counted.size}`);
    let total0 = 0;
    let total1 = 0;
    for (const [id, v0] of this.counterInit) {
      const fin = values.server.get(id);
      const a = applied.get(id);
      total0 += v0;
      total1 += fin;
      f.counters[id] = { initial: v0, applied: a.n, applied_sum: a.sum, final: fin };
      if (fin !== v0 + a.sum) this.violation(`COUNTER SUM ${id}: the server holds ${fin}, but initial ${v0} + the ${a.n} increments it applied (sum ${a.sum}) = ${v0 + a.sum}`);
      if (value.get(id) !== fin) this.violation(`COUNTER ${id}: the log ends at ${value.get(id)}, the server's snapshot holds ${fin}`);
      for (const r of values.replicas) {
        if (r.values.get(id) !== fin) this.violation(`COUNTER REPLICA ${id}: ${r.who} holds ${r.values.get(id)}, the server ${fin}`);
      }
    }
    if (total1 - total0 !== f.non_transfer_sum) this.violation(`TRANSFER: the counters' total moved by ${total1 - total0}, but the applied increments outside transfers sum to ${f.non_transfer_sum} (transfers did not conserve it)`);
    // Every applied transfer moved as much out of one counter as into the other.
    for (const g of this.groups.values()) {
      if (g.kind !== 'xfer') continue;
      const es = g.mids.map((mid) => this.ledger.get(this.key(g.clientId, mid)));
      const incs = es.filter((e) => e?.inc);
      const inLog = incs.filter((e) => counted.has(this.key(e.clientId, e.mid)));
      if (inLog.length && (inLog.length !== incs.length || inLog.reduce((s, e) => s + e.inc.by, 0) !== 0)) {
        this.violation(`TRANSFER ${g.key} (${g.owner}): ${inLog.length} of ${incs.length} counter members applied, net ${inLog.reduce((s, e) => s + e.inc.by, 0)}`);
      }
    }
    f.total = { initial: total0, final: total1 };
    return f;
  }

  async run() {
    const started = Date.now();
    let result;
    try {
      await this.setup();
      this.log(`chaos: seed ${this.seed}, ${this.nodes.length} node clients + ${this.pages.length} chromium pages, ${this.opts.seconds} s of chaos`);
      await this.nemesis(this.opts.seconds);
      await this.heal();
      for (const p of this.pages) await p.harvest().catch(() => {});
      const quiet = await this.waitQuiet();
      for (const p of this.pages) await p.harvest().catch(() => {});
      const checked = await this.check(quiet.head);
      await this.sampleServer();
      result = this.figures(quiet, checked, Date.now() - started);
    } catch (e) {
      this.violation(`harness error: ${e.stack ?? e}`);
      result = { seed: this.seed, error: String(e) };
    } finally {
      await this.teardown();
    }
    result.violations = this.violations;
    result.seed = this.seed;
    return result;
  }

  figures(quiet, checked, ms) {
    const f = {
      seed: this.seed,
      clients: { node: this.nodes.length, chromium: this.pages.length, customers: this.nodes.filter((n) => n.role === 'customer').length, client_ids: this.clientIds.size },
      chaos_seconds: this.opts.seconds,
      operations: checked.counts,
      increments: checked.counters.increments,
      groups: checked.groups,
      counters: checked.counters.counters,
      counter_total: checked.counters.total,
      transfers_moved: checked.counters.transfers_moved,
      server_head_seq: quiet.head,
      log_changes: checked.logChanges,
      log_retention: this.config.limits.log_retention,
      server_counters: this.serverCounters,
      client_streams: checked.streams,
      auditor: { reconnect_attempts: this.audit.reconnects, gaps: this.audit.gaps, repeats: this.audit.repeats, resets: this.audit.resets, reset_holes: this.audit.resetHoles.length },
      mids_reused_after_crash_before_durable: this.midsReusedAfterCrash ?? 0,
      ...(this.clusterMode ? { cluster: this.clusterMode.figures() } : {}),
      faults: { ...this.faults, ...Object.fromEntries(Object.entries(this.proxy.stats).map(([k, v]) => [`proxy_${k}`, v])) },
      convergence_ms: quiet.ms,
      lost: checked.counts.lost,
      duplicated: checked.duplicated,
      total_ms: ms,
    };
    return f;
  }

  async teardown() {
    this.stopping = true;
    this.auditStop = true;
    this.auditClose?.();
    for (const t of this.timers) clearTimeout(t);
    await Promise.all((this.nodes ?? []).map((c) => c.stop().catch(() => c.kill())));
    if (this.browser) await this.browser.close();
    if (this.proxy) await this.proxy.close().catch(() => {});
    if (this.clusterMode) await this.clusterMode.stop().catch((e) => this.log(`chaos: cluster stop: ${e.message}`));
    else if (this.server) await this.server.stop('SIGKILL').catch(() => {});
    if ((this.violations.length && process.env.CHAOS_KEEP) || process.env.CHAOS_KEEP === 'always') this.log(`chaos: work dir kept at ${this.workDir}`);
    else rmSync(this.workDir, { recursive: true, force: true });
  }
}

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

export function report(result, rerun) {
  const lines = [];
  lines.push(`chaos figures: ${JSON.stringify(result, (k, v) => (k === 'violations' ? undefined : v), 2)}`);
  if (result.violations.length) {
    lines.push(`chaos: ${result.violations.length} violation(s):`);
    for (const v of result.violations.slice(0, 40)) lines.push(`  - ${v}`);
    lines.push(`rerun with: ${rerun}`);
  } else {
    lines.push(`chaos: OK (lost = ${result.lost}, duplicated = ${result.duplicated}); seed ${result.seed}`);
  }
  const inc = result.increments;
  const g = result.groups;
  if (inc && g) {
    const codes = (o) => Object.entries(o).map(([k, v]) => `${v} ${k}`).join(', ') || 'none';
    lines.push(`chaos counters: ${inc.issued} increments issued (${inc.issued_by_pages} by pages), ${inc.applied} applied, rejected ${codes(inc.rejected)}, ${inc.never_reached_server} never reached the server; ` +
      `${g.issued} groups issued (${g.issued_by_pages} by pages), ${g.applied} applied, rejected ${codes(g.rejected)}, ${g.never_reached_server} never reached the server; ` +
      `counters ${Object.entries(result.counters ?? {}).map(([id, c]) => `${id} ${c.initial}->${c.final}`).join(', ')}; ` +
      `faults: ${result.cluster ? `${result.faults.node_kill9} node kill -9 (${result.cluster.nodes} nodes), ${result.faults.pg_restart} PostgreSQL restarts` : `${result.faults?.server_kill9} server kill -9`}, ${result.faults?.client_kill9} client kills (${result.faults?.client_kill_mid_write} mid write)`);
  }
  return lines.join('\n');
}
