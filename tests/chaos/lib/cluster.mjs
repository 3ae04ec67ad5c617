// Layer: tests/chaos. The cluster the chaos suite runs against in cluster mode (harness.mjs
// `cluster` option): a throwaway PostgreSQL (tests/lib/postgres.mjs), N syncline-server nodes on
// one database of it, each restartable on its own port after a kill -9, and a real HAProxy in
// front with the local cluster's settings (scripts/lib/haproxy-config.mjs, which
// scripts/cluster.sh uses too). Everything on 127.0.0.1, free ports, logs in the run's work dir:
// nodeN.log (every incarnation, appended), haproxy.log; PostgreSQL's log is in its own
// temporary directory (tests/lib/postgres.mjs).
//
//   const c = new ChaosCluster({ nodes: 3, config, workDir, staticDir });
//   await c.start();              // c.balancer: { url, port } for tests/server/helpers.mjs
//   await c.nodes[1].kill9(); await c.nodes[1].start();
//   await c.restartDatabase();     // pg_ctl stop -m immediate, then start (crash recovery)
//   await c.readLog();             // the database's log, as change messages
//   await c.stop();
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { haproxyConfig } from '../../../scripts/lib/haproxy-config.mjs';
import { pg } from '../../lib/postgres.mjs';
import { freePort, SERVER_BIN, sleep } from '../../server/helpers.mjs';

const HAPROXY = process.env.SYNCLINE_HAPROXY_BIN || 'haproxy';
let databases = 0;

async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** GET url; the parsed JSON body, or null (refused, timed out, not JSON). */
async function getJson(url, timeoutMs = 2000) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return await res.json();
  } catch {
    return null;
  }
}

const running = (proc) => !!proc && proc.exitCode === null && proc.signalCode === null;
const exited = (proc) => (running(proc) ? new Promise((res) => proc.once('exit', res)) : Promise.resolve());

class ClusterNode {
  constructor(cluster, idx, port) {
    this.cluster = cluster;
    this.idx = idx;
    this.name = `node${idx + 1}`;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.logFile = join(cluster.workDir, `${this.name}.log`);
    this.proc = null;
    this.incarnation = 0;
    this.startAttempts = 0;
  }

  get alive() {
    return running(this.proc);
  }

  #mark(what) {
    const fd = openSync(this.logFile, 'a');
    writeSync(fd, `${JSON.stringify({ harness: what, node: this.name, incarnation: this.incarnation, at: new Date().toISOString() })}\n`);
    closeSync(fd);
  }

  /** Starts the node on its port and resolves once /v1/health answers ok. A start that fails
   * (the port not yet released, PostgreSQL restarting: the node exits when it cannot open the
   * database) is tried again for up to `timeoutMs`. */
  async start({ timeoutMs = 120000 } = {}) {
    const c = this.cluster;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.incarnation++;
      this.startAttempts++;
      this.#mark('start');
      const fd = openSync(this.logFile, 'a');
      const args = ['--port', String(this.port), '--db', c.dbUrl, '--config', c.configPath, ...(c.staticDir ? ['--static', c.staticDir] : [])];
      const proc = spawn(process.env.SYNCLINE_SERVER_BIN || SERVER_BIN, args, { stdio: ['ignore', fd, fd] });
      closeSync(fd);
      this.proc = proc;
      proc.on('error', () => {});
      while (running(proc) && Date.now() < deadline) {
        const h = await getJson(`${this.url}/v1/health`, 1000);
        if (h?.status === 'ok' && running(proc)) return;
        await sleep(100);
      }
      if (running(proc)) {
        proc.kill('SIGKILL');
        await exited(proc);
        throw new Error(`${this.name} (port ${this.port}) did not answer /v1/health in ${timeoutMs} ms; see ${this.logFile}`);
      }
      if (Date.now() >= deadline) throw new Error(`${this.name} (port ${this.port}) could not start in ${timeoutMs} ms (last exit ${proc.exitCode ?? proc.signalCode}); see ${this.logFile}`);
      await sleep(500);
    }
  }

  /** kill -9, and wait until the process is gone. */
  async kill9() {
    const p = this.proc;
    if (!running(p)) return;
    this.#mark('kill -9');
    p.kill('SIGKILL');
    await exited(p);
  }

  async stop() {
    const p = this.proc;
    if (!running(p)) return;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 8000);
    await exited(p);
    clearTimeout(t);
  }

  /** This node's /v1/health (its head: the last seq it has broadcast), or null. */
  health() {
    return getJson(`${this.url}/v1/health`);
  }
}

export class ChaosCluster {
  constructor({ nodes = 3, config, workDir, staticDir = null, log = () => {} }) {
    this.n = nodes;
    this.config = config;
    this.workDir = workDir;
    this.staticDir = staticDir;
    this.log = log;
    this.nodes = [];
    this.haproxy = null;
    this.dbRestarts = 0;
    this.dbRestartMs = [];
  }

  async start() {
    // Whatever happens to the test process, no node or HAProxy outlives it (PostgreSQL has
    // its own watchdog in tests/lib/postgres.mjs).
    this.onExit = () => {
      for (const p of [this.haproxy, ...this.nodes.map((x) => x.proc)]) if (running(p)) p.kill('SIGKILL');
    };
    process.on('exit', this.onExit);
    this.pg = await pg();
    this.dbName = `chaos_${process.pid}_${++databases}`;
    this.dbUrl = await this.pg.createDatabase(this.dbName);
    // The nodes trust HAProxy's X-Forwarded-For, as scripts/cluster.sh's do.
    this.configPath = join(this.workDir, 'node-config.json');
    writeFileSync(this.configPath, JSON.stringify({ ...this.config, trusted_proxies: ['127.0.0.1'] }, null, 2));
    const [port, statsPort, ...nodePorts] = await freePorts(this.n + 2);
    this.nodes = nodePorts.map((p, i) => new ClusterNode(this, i, p));
    // One first, so the schema is created once; then the others together.
    await this.nodes[0].start();
    await Promise.all(this.nodes.slice(1).map((x) => x.start()));
    this.haproxyCfg = join(this.workDir, 'haproxy.cfg');
    writeFileSync(this.haproxyCfg, haproxyConfig({ port, statsPort, nodePorts, generatedBy: 'tests/chaos/lib/cluster.mjs' }));
    this.port = port;
    this.statsPort = statsPort;
    this.balancer = { url: `http://127.0.0.1:${port}`, port };
    await this.startHaproxy();
    await this.waitAllUp();
    this.log(`cluster: PostgreSQL ${this.dbUrl}, ${this.n} nodes on ${nodePorts.join(', ')}, HAProxy on ${port} (stats ${statsPort})`);
  }

  async startHaproxy() {
    const fd = openSync(join(this.workDir, 'haproxy.log'), 'a');
    this.haproxy = spawn(HAPROXY, ['-db', '-f', this.haproxyCfg], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.haproxy.on('error', () => {});
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      if (!running(this.haproxy)) throw new Error(`HAProxy exited (${this.haproxy.exitCode ?? this.haproxy.signalCode}); see ${join(this.workDir, 'haproxy.log')}`);
      if ((await getJson(`${this.balancer.url}/v1/health`, 1000))?.status === 'ok') return;
      await sleep(100);
    }
    throw new Error('HAProxy does not answer');
  }

  /** What HAProxy's stats say of each node: { node1: 'UP', node2: 'DOWN', ... }. */
  async haproxyStates() {
    try {
      const res = await fetch(`http://127.0.0.1:${this.statsPort}/;csv`, { signal: AbortSignal.timeout(2000) });
      const out = {};
      for (const line of (await res.text()).split('\n')) {
        const f = line.split(',');
        if (f[0] === 'nodes' && /^node\d+$/.test(f[1])) out[f[1]] = f[17];
      }
      return out;
    } catch {
      return {};
    }
  }

  /** Until HAProxy counts every node UP (after a start, or after the nemesis). */
  async waitAllUp(timeoutMs = 60000) {
    const deadline = Date.now() + timeoutMs;
    let states = {};
    while (Date.now() < deadline) {
      states = await this.haproxyStates();
      if (this.nodes.every((x) => states[x.name] === 'UP')) return states;
      await sleep(200);
    }
    throw new Error(`HAProxy does not count every node UP: ${JSON.stringify(states)}`);
  }

  /** A crash of the database server: stop -m immediate (no checkpoint), start (WAL replay). */
  async restartDatabase() {
    const t0 = Date.now();
    await this.pg.restart({ mode: 'immediate' });
    this.dbRestarts++;
    this.dbRestartMs.push(Date.now() - t0);
  }

  /** SQL against the run's database (rows as arrays of text); retried while PostgreSQL restarts. */
  async query(sql, { timeoutMs = 60000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await this.pg.query(this.dbName, sql);
      } catch (e) {
        if (Date.now() >= deadline) throw e;
        await sleep(300);
      }
    }
  }

  /** The committed head: meta.head_seq, and the largest seq in the log. */
  async head() {
    const [[head, max]] = await this.query(`SELECT (SELECT value FROM meta WHERE key = 'head_seq'), (SELECT coalesce(max(seq), 0) FROM log)`);
    return { head: Number(head), max: Number(max) };
  }

  /** The whole log from the database, in seq order: change rows in the shape of the wire's
   * change message ({seq, collection, id, op, version, fields, origin}), other kinds as
   * {seq, kind, name}. */
  async readLog() {
    const rows = await this.query(`SELECT seq, kind, collection, id, op, version, fields, origin_client, origin_mid, name FROM log ORDER BY seq`);
    return rows.map(([seq, kind, collection, id, op, version, fields, client, mid, name]) => {
      if (kind !== 'change') return { seq: Number(seq), kind, name };
      return {
        seq: Number(seq), collection, id, op, version: Number(version),
        fields: op === 'delete' || fields === null ? {} : JSON.parse(fields),
        origin: client === null ? null : { client, mid: Number(mid) },
      };
    });
  }

  async stop() {
    if (running(this.haproxy)) {
      this.haproxy.kill('SIGTERM');
      const t = setTimeout(() => this.haproxy.kill('SIGKILL'), 5000);
      await exited(this.haproxy);
      clearTimeout(t);
    }
    await Promise.all(this.nodes.map((x) => x.kill9()));
    if (this.pg && this.dbName) await this.pg.dropDatabase(this.dbName).catch(() => {});
    if (this.onExit) process.removeListener('exit', this.onExit);
  }
}

const canonical = (v) => JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.keys(x).sort().map((y) => [y, x[y]])) : x));
const sameChange = (a, b) =>
  a.collection === b.collection && a.id === b.id && a.op === b.op && a.version === b.version &&
  (a.origin?.client ?? null) === (b.origin?.client ?? null) && (a.origin?.mid ?? null) === (b.origin?.mid ?? null) &&
  canonical(a.fields ?? {}) === canonical(b.fields ?? {});
const show = (ch) => (ch ? `${ch.op} ${ch.collection}/${ch.id} v${ch.version} by ${ch.origin ? `${ch.origin.client}#${ch.origin.mid}` : 'none'}` : 'nothing');

/** The cluster half of a ChaosRun (harness.mjs, option `cluster`): sets the cluster up, adds
 * its faults to the nemesis (kill -9 of a random node every few seconds, restarted on its port
 * after `nodeDownMs`; PostgreSQL crashed and restarted `pgRestarts` times, spread over the run;
 * the auditor's stream moved to the next node every 2-5 s), heals it, and gives the checker the
 * database's own log. Options:
 *   nodes (3), nodeKillEveryS ([3, 6]), nodeDownMs ([1000, 3000]), pgRestarts (1),
 *   minNodesUp (1: a node is killed only while more than this many run). */
export class ClusterChaos {
  constructor(run, opts = {}) {
    this.run = run;
    this.opts = { nodes: 3, nodeKillEveryS: [3, 6], nodeDownMs: [1000, 3000], pgRestarts: 1, minNodesUp: 1, ...opts };
    this.restarting = new Set();
    this.pgRestarting = null;
    this.nodeHeadsAtQuiet = null;
    this.audit = { next: 0, moves: 0, connections: {} };
  }

  /** Where the auditor's stream connects next: straight to the next node in turn (one that was
   * just killed refuses, and the auditor tries the one after). */
  auditTarget() {
    const n = this.nodes[this.audit.next++ % this.nodes.length];
    this.audit.connections[n.name] = (this.audit.connections[n.name] ?? 0) + 1;
    return n;
  }

  async setup({ config, workDir, staticDir }) {
    this.cluster = new ChaosCluster({ nodes: this.opts.nodes, config, workDir, staticDir, log: (...a) => this.run.log(...a) });
    await this.cluster.start();
    Object.assign(this.run.faults, { node_kill9: 0, pg_restart: 0 });
    return this.cluster.balancer;
  }

  get nodes() {
    return this.cluster?.nodes ?? [];
  }

  /** Plans the nemesis' cluster faults for a run of `seconds` starting now. */
  plan(r, seconds) {
    const now = Date.now();
    const [lo, hi] = this.opts.nodeKillEveryS;
    this.nextNodeKill = now + r.range(lo, hi) * 1000;
    this.nextAuditMove = now + r.range(2, 5) * 1000;
    // PostgreSQL restarts spread evenly over the run, each moved by up to a tenth of its share.
    const k = this.opts.pgRestarts;
    this.pgPlan = Array.from({ length: k }, (_, i) => now + (seconds * 1000 * (i + 1 + r.range(-0.2, 0.2))) / (k + 1));
  }

  /** One step of the nemesis loop: starts what is due, never waits for it. */
  tick(r) {
    const now = Date.now();
    if (now >= this.nextNodeKill) {
      const [lo, hi] = this.opts.nodeKillEveryS;
      this.nextNodeKill = now + r.range(lo, hi) * 1000;
      const up = this.nodes.filter((n) => n.alive && !this.restarting.has(n));
      if (up.length > this.opts.minNodesUp) {
        const n = r.pick(up);
        const down = r.int(...this.opts.nodeDownMs);
        this.restarting.add(n);
        n.restarting = this.#killAndRestart(n, down).finally(() => {
          this.restarting.delete(n);
          n.restarting = null;
        });
      }
    }
    if (now >= this.nextAuditMove) {
      // The auditor ends its stream and resumes from its cursor on the next node.
      this.nextAuditMove = now + r.range(2, 5) * 1000;
      this.audit.moves++;
      this.run.auditClose?.();
    }
    if (this.pgPlan.length && now >= this.pgPlan[0] && !this.pgRestarting) {
      this.pgPlan.shift();
      this.pgRestarting = this.#restartPg().finally(() => (this.pgRestarting = null));
    }
  }

  async #killAndRestart(n, downMs) {
    await this.run.sampleServer([n]); // its metrics start again at 0
    this.run.faults.node_kill9++;
    await n.kill9();
    await sleep(downMs);
    try {
      await n.start();
    } catch (e) {
      this.run.violation(`${n.name} did not come back after kill -9: ${e.message}`);
    }
  }

  async #restartPg() {
    this.run.faults.pg_restart++;
    try {
      await this.cluster.restartDatabase();
      this.run.log(`chaos: PostgreSQL restarted (immediate) in ${this.cluster.dbRestartMs.at(-1)} ms`);
    } catch (e) {
      this.run.violation(`PostgreSQL restart failed: ${e.message}`);
    }
  }

  /** After the nemesis: the database up, every node up and counted UP by HAProxy. */
  async heal() {
    if (this.pgRestarting) await this.pgRestarting;
    for (const n of this.nodes) if (n.restarting) await n.restarting;
    for (const n of this.nodes) {
      if (!n.alive) {
        try {
          await n.start();
        } catch (e) {
          this.run.violation(`${n.name} could not be started at heal: ${e.message}`);
        }
      }
    }
    try {
      await this.cluster.waitAllUp();
    } catch (e) {
      this.run.violation(e.message);
    }
  }

  /** The database's head; a node that has not broadcast up to it yet goes into `lagging`. */
  async head(lagging) {
    const { head, max } = await this.cluster.head();
    if (max !== head) lagging.push(`the database's head_seq is ${head} but its log ends at ${max}`);
    const heads = {};
    for (const n of this.nodes) {
      const h = await n.health();
      heads[n.name] = h?.seq ?? null;
      if (h?.seq !== head) lagging.push(`${n.name}: broadcast up to ${h?.seq ?? 'nothing (no answer)'}, the database's head is ${head}`);
    }
    this.nodeHeadsAtQuiet = heads;
    return head;
  }

  /** The checker's record: the database's log, compared seq by seq with what the auditor's
   * stream (through HAProxy, resumed across every node kill) delivered. Returns its changes. */
  async serverLog(auditorLog, head) {
    const v = (m) => this.run.violation(m);
    const db = await this.cluster.readLog();
    db.forEach((row, i) => {
      if (row.seq !== i + 1) v(`DATABASE LOG: position ${i} holds seq ${row.seq}, expected ${i + 1} (a gap or a repeat in the shared log)`);
    });
    if (db.length !== head) v(`DATABASE LOG: ${db.length} rows, head ${head}`);
    const changes = db.filter((row) => row.kind === undefined);
    this.logRows = { changes: changes.length, other: db.length - changes.length };
    const seen = new Map(auditorLog.map((ch) => [ch.seq, ch]));
    const inDb = new Set(db.map((row) => row.seq));
    for (const ch of changes) {
      const a = seen.get(ch.seq);
      if (!a) v(`AUDITOR: seq ${ch.seq} (${show(ch)}) is in the database's log but its stream never delivered it`);
      else if (!sameChange(a, ch)) v(`AUDITOR: seq ${ch.seq}: the stream delivered ${show(a)} ${canonical(a.fields)}, the database holds ${show(ch)} ${canonical(ch.fields)}`);
    }
    for (const a of auditorLog) if (!inDb.has(a.seq)) v(`AUDITOR: its stream delivered seq ${a.seq} (${show(a)}), which the database's log does not hold`);
    return changes;
  }

  figures() {
    return {
      nodes: this.opts.nodes,
      node_kill9: this.run.faults.node_kill9,
      node_starts: this.nodes.reduce((s, n) => s + n.startAttempts, 0),
      pg_restarts: this.cluster?.dbRestarts ?? 0,
      pg_restart_ms: this.cluster?.dbRestartMs ?? [],
      node_heads_at_quiet: this.nodeHeadsAtQuiet,
      auditor_moved: this.audit.moves,
      auditor_connections: this.audit.connections,
      database_log: this.logRows ?? null,
    };
  }

  async stop() {
    await this.pgRestarting?.catch(() => {});
    await Promise.all([...this.restarting].map((n) => n.restarting?.catch(() => {})));
    await this.cluster?.stop();
  }
}
