// Layer: tests/chaos. The cluster the chaos suite runs against in cluster mode (harness.mjs
// `cluster` option): a throwaway PostgreSQL (tests/lib/postgres.mjs), N syncline-server nodes on
// one database of it, each restartable on its own port after a kill -9, and a real HAProxy in
// front with the local cluster's settings (scripts/lib/haproxy-config.mjs, which
// scripts/cluster.sh uses too). Everything on 127.0.0.1, free ports, logs in the run's work dir:
// nodeN.log (every incarnation, appended), haproxy.log; PostgreSQL's log is in its own
// temporary directory (tests/lib/postgres.mjs).
//
//   const c = new ChaosCluster({ nodes: 3, config, workDir, staticDir, dbLinks: false });
//   await c.start();              // c.balancer: { url, port } for tests/server/helpers.mjs
//   await c.nodes[1].kill9(); await c.nodes[1].start();   // same port, same database
//   c.nodes[1].pause(); c.nodes[1].resume();               // SIGSTOP / SIGCONT: a hung node
//   c.nodes[1].dbLink.partition(); ...heal();              // with dbLinks: cut off from PostgreSQL
//   await c.restartDatabase();     // pg_ctl stop -m immediate, then start (crash recovery)
//   await c.readLog();             // the database's log, as change messages
//   await c.stop();
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
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

/** A node's own way to PostgreSQL: a TCP relay the nemesis can partition (bytes held in both
 * directions, connections kept open, new ones held too, as a network that drops everything
 * for a while) and heal. */
class DbLink {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.pairs = new Set();
    this.cut = false;
    this.waiting = [];
  }

  async listen() {
    this.server = net.createServer((c) => (this.cut ? this.waiting.push(c) : this.#relay(c)));
    await new Promise((res) => this.server.listen(0, '127.0.0.1', res));
    this.port = this.server.address().port;
  }

  #relay(c) {
    const s = net.connect(this.targetPort, '127.0.0.1');
    const pair = { c, s };
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      c.destroy();
      s.destroy();
    };
    c.on('error', end).on('close', end);
    s.on('error', end).on('close', end);
    c.pipe(s);
    s.pipe(c);
    if (this.cut) this.#hold(pair);
  }

  #hold({ c, s }) {
    c.unpipe(s);
    s.unpipe(c);
    c.pause();
    s.pause();
  }

  partition() {
    this.cut = true;
    for (const p of this.pairs) this.#hold(p);
  }

  heal() {
    this.cut = false;
    for (const { c, s } of this.pairs) {
      c.pipe(s);
      s.pipe(c);
    }
    for (const c of this.waiting.splice(0)) this.#relay(c);
  }

  close() {
    for (const { c, s } of this.pairs) {
      c.destroy();
      s.destroy();
    }
    for (const c of this.waiting) c.destroy();
    return new Promise((res) => this.server.close(() => res()));
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
    this.startFailures = {}; // why a start failed (the node's last error line): count
  }

  /** The node's error lines written since byte `from` of its log. */
  #errorsSince(from) {
    const fd = openSync(this.logFile, 'r');
    try {
      const size = statSync(this.logFile).size;
      const buf = Buffer.alloc(Math.min(size - from, 1 << 20));
      readSync(fd, buf, 0, buf.length, from);
      return buf.toString('utf8').split('\n').filter((l) => l.includes('"level":"error"'));
    } finally {
      closeSync(fd);
    }
  }

  get alive() {
    return running(this.proc);
  }

  mark(what) {
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
      this.mark('start');
      const from = statSync(this.logFile).size;
      const fd = openSync(this.logFile, 'a');
      const args = ['--port', String(this.port), '--db', this.dbUrl ?? c.dbUrl, '--config', c.configPath, ...(c.staticDir ? ['--static', c.staticDir] : [])];
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
      const last = this.#errorsSince(from).pop() ?? `exit ${proc.exitCode ?? proc.signalCode}`;
      const why = /deadlock detected/.test(last) ? 'deadlock detected (schema)' : /cannot connect|not yet accepting|starting up|shutting down|terminat/.test(last) ? 'database unreachable' : /cannot listen/.test(last) ? 'port in use' : last.slice(0, 160);
      this.startFailures[why] = (this.startFailures[why] ?? 0) + 1;
      if (Date.now() >= deadline) throw new Error(`${this.name} (port ${this.port}) could not start in ${timeoutMs} ms (last exit ${proc.exitCode ?? proc.signalCode}); see ${this.logFile}`);
      await sleep(500);
    }
  }

  /** kill -9, and wait until the process is gone. */
  async kill9() {
    const p = this.proc;
    if (!running(p)) return;
    this.mark('kill -9');
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

  /** SIGSTOP: the node hangs (its sockets and its PostgreSQL sessions stay open). */
  pause() {
    if (!running(this.proc)) return;
    this.mark('SIGSTOP');
    this.proc.kill('SIGSTOP');
  }

  resume() {
    if (!running(this.proc)) return;
    this.mark('SIGCONT');
    this.proc.kill('SIGCONT');
  }

  /** This node's /v1/health (its head: the last seq it has broadcast), or null. */
  health() {
    return getJson(`${this.url}/v1/health`);
  }
}

export class ChaosCluster {
  constructor({ nodes = 3, config, workDir, staticDir = null, dbLinks = false, log = () => {} }) {
    this.dbLinks = dbLinks; // each node reaches PostgreSQL through its own DbLink
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
    if (this.dbLinks) {
      for (const n of this.nodes) {
        n.dbLink = new DbLink(this.pg.port);
        await n.dbLink.listen();
        n.dbUrl = this.dbUrl.replace(`:${this.pg.port}/`, `:${n.dbLink.port}/`);
      }
    }
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

  /** Keeps a copy of every row ever inserted into the log, in the inserting transaction (a
   * trigger), so that the whole log can be read at the end even after pruning: the test's own
   * table, unknown to the nodes. No key: a seq inserted twice would show as two rows. */
  async copyLog() {
    await this.query(`CREATE TABLE chaos_log_copy AS SELECT * FROM log WITH NO DATA;
      INSERT INTO chaos_log_copy SELECT * FROM log;
      CREATE FUNCTION chaos_copy_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO chaos_log_copy SELECT NEW.*; RETURN NULL; END $$;
      CREATE TRIGGER chaos_copy_log AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION chaos_copy_log();`);
  }

  /** The log (or its copy, table 'chaos_log_copy') after seq `after`, in seq order: change rows in the shape of the wire's
   * change message ({seq, collection, id, op, version, fields, origin}), other kinds as
   * {seq, kind, name}. */
  async readLog({ after = 0, table = 'log' } = {}) {
    const rows = await this.query(`SELECT seq, kind, collection, id, op, version, fields, origin_client, origin_mid, name FROM ${table} WHERE seq > ${Number(after)} ORDER BY seq`);
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
    await Promise.all(this.nodes.map((x) => x.dbLink?.close()));
    if (this.pg && this.dbName) await this.pg.dropDatabase(this.dbName).catch(() => {});
    if (this.onExit) process.removeListener('exit', this.onExit);
  }
}
