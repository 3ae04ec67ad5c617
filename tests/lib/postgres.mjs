// A throwaway PostgreSQL 15 cluster for the Node test suites: `await pg()` starts one per test
// process (lazily, on first use) in a temporary directory on a free loopback port, and it is
// stopped and removed when the process exits (normal exit, uncaught exception, SIGINT / SIGTERM
// / SIGHUP; a detached watchdog also covers a SIGKILLed test process).
//
//   const c = await pg();
//   const url = await c.createDatabase('t1');   // postgresql://postgres@127.0.0.1:PORT/t1
//   await c.query('t1', 'SELECT count(*) FROM log');   // rows as arrays of text values
//   await c.restart({ mode: 'immediate' });     // a crash of the database server, same port
//   await c.stop();
//
// PostgreSQL refuses to run as root: as root the cluster runs as `postgres` (runuser), in a
// 0777 directory that user can reach. Durability stays as in production (fsync, full page
// writes and synchronous_commit on); only what cannot lose acknowledged data is tuned for
// speed: small shared buffers, no replication WAL (wal_level=minimal), no JIT, no checkpoint
// in the middle of a test file, one syncfs instead of an fsync per file before crash recovery,
// and initdb's one-time sync of the fresh cluster skipped.
//
// Cost per test process, measured on the 2-core machine: initdb about 1.2 s idle (a copy of a
// cached data directory instead, ~0.2 s, when SYNCLINE_PG_CACHE names a directory to keep it
// in; scripts/test.sh sets it for its run), start ~0.3 s. A database costs ~0.2-0.6 s to copy
// from template1, so the next one is always made ahead in the background (createDatabase then
// renames it, ~20 ms). Questions go over a small client of the wire protocol (no psql process).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.mjs';

export const PG_BIN = process.env.SYNCLINE_PG_BIN || '/usr/lib/postgresql/15/bin';

// Server settings, appended to the cluster's postgresql.conf after initdb.
const SETTINGS = {
  listen_addresses: '127.0.0.1',
  unix_socket_permissions: '0777',
  max_connections: '300', // each syncline-server: a writer, read_threads readers, a log tailer
  shared_buffers: '32MB',
  wal_level: 'minimal',
  max_wal_senders: '0',
  checkpoint_timeout: '30min',
  max_wal_size: '1GB',
  jit: 'off',
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  recovery_init_sync_method: 'syncfs', // one syncfs(2) instead of an fsync per file before crash recovery
  log_min_messages: 'warning',
  log_line_prefix: '%m [%p] %d ',
};

const asPostgres = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];

function run(cmd, args, { timeout = 60000, asRoot = false } = {}) {
  const [file, ...rest] = [...(asRoot ? [] : asPostgres), cmd, ...args];
  return new Promise((resolve, reject) => {
    execFile(file, rest, { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n${stdout}${stderr}`;
        reject(err);
      } else resolve(stdout);
    });
  });
}


const tail = (file, n = 40) => {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
};

// The PostgreSQL frontend/backend protocol (v3), just enough for trust authentication and the
// simple query protocol: a test asks a few questions, so no client library (and no psql
// process per question, which costs more than the question).
function simpleQuery(port, dbName, sql, { timeout = 60000 } = {}) {
  const cstr = (v) => Buffer.from(`${v}\0`, 'utf8');
  const message = (type, body) => {
    const head = Buffer.alloc(type ? 5 : 4);
    if (type) head.write(type, 0, 'latin1');
    head.writeInt32BE(body.length + 4, type ? 1 : 0);
    return Buffer.concat([head, body]);
  };
  const version = Buffer.alloc(4);
  version.writeInt32BE(196608); // 3.0
  const startup = message('', Buffer.concat([version, cstr('user'), cstr('postgres'), cstr('database'), cstr(dbName), cstr('client_encoding'), cstr('UTF8'), Buffer.from([0])]));
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let rows = [];
    let error = null;
    let sent = false;
    const finish = (err, value) => {
      clearTimeout(timer);
      sock.removeAllListeners('data');
      if (!sock.destroyed) sock.end(message('X', Buffer.alloc(0)));
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(`postgres ${dbName}: no answer within ${timeout} ms: ${sql}`)), timeout);
    sock.on('error', (e) => finish(new Error(`postgres ${dbName}: ${e.message}`)));
    sock.on('close', () => finish(new Error(`postgres ${dbName}: connection closed`)));
    sock.on('connect', () => sock.write(startup));
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5) {
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) break;
        const type = String.fromCharCode(buf[0]);
        const body = buf.subarray(5, len + 1);
        buf = buf.subarray(len + 1);
        if (type === 'R' && body.readInt32BE(0) !== 0) return finish(new Error(`postgres ${dbName}: authentication ${body.readInt32BE(0)} asked; the test cluster trusts`));
        if (type === 'E') {
          // Fields: a type byte and a C string each; 'M' is the message, 'C' the SQLSTATE.
          const f = {};
          for (let i = 0; i < body.length && body[i] !== 0; ) {
            const end = body.indexOf(0, i + 1);
            f[String.fromCharCode(body[i])] = body.toString('utf8', i + 1, end);
            i = end + 1;
          }
          error = Object.assign(new Error(`postgres ${dbName}: ${f.M} (${f.C}): ${sql}`), { code: f.C });
          if (!sent) return finish(error); // refused at connection time
        }
        if (type === 'T') rows = []; // a new result: the last one is returned
        if (type === 'D') {
          const n = body.readInt16BE(0);
          const row = [];
          for (let i = 0, at = 2; i < n; i++) {
            const l = body.readInt32BE(at);
            at += 4;
            row.push(l < 0 ? null : body.toString('utf8', at, at + l));
            if (l > 0) at += l;
          }
          rows.push(row);
        }
        if (type === 'Z') {
          if (!sent) {
            sent = true;
            sock.write(message('Q', cstr(sql)));
          } else return finish(error, rows);
        }
      }
    });
  });
}

// Database names this module creates or accepts: plain identifiers, so they need no quoting.
const NAME = /^[a-z_][a-z0-9_]{0,62}$/;

class Cluster {
  constructor(dir) {
    this.dir = dir;
    this.data = join(dir, 'pg');
    this.logFile = join(dir, 'pg.log');
    this.port = 0;
    this.running = false;
    this.watchdog = null;
    this.spare = null; // Promise of the next database's name (null: none ready)
    this.spares = 0;
    // Where the time goes (SYNCLINE_TEST_PG_TIMING=1 prints it at exit): ms and counts.
    this.stats = { initMs: 0, startMs: 0, databases: 0, createMs: 0, queries: 0, queryMs: 0, restarts: 0 };
    this.onExit = () => this.stopSync();
    this.onSignal = (sig) => {
      this.stopSync();
      process.removeListener(sig, this.onSignal);
      process.kill(process.pid, sig); // the default action, now that the cluster is gone
    };
  }

  url(dbName = 'postgres') {
    return `postgresql://postgres@127.0.0.1:${this.port}/${dbName}`;
  }

  async init() {
    const t0 = performance.now();
    if (!existsSync(join(PG_BIN, 'initdb')) || !existsSync(join(PG_BIN, 'pg_ctl'))) {
      throw new Error(`PostgreSQL 15 server binaries not found in ${PG_BIN} (scripts/bootstrap.sh installs the postgresql package)`);
    }
    process.on('exit', this.onExit);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, this.onSignal);
    await this.#initdb();
    this.#startWatchdog();
    // A port found free can be taken before postgres binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      try {
        await this.start();
        this.stats.initMs = Math.round(performance.now() - t0);
        return this;
      } catch (e) {
        if (attempt >= 3 || !/could not (bind|create)|Address already in use/i.test(tail(this.logFile))) throw e;
      }
    }
  }

  // The data directory: initdb, or a copy of the one an earlier test process made when
  // SYNCLINE_PG_CACHE names a directory to keep it in (scripts/test.sh does, for its run).
  async #initdb() {
    const conf = Object.entries(SETTINGS).map(([k, v]) => `${k} = '${v}'`).join('\n');
    const initdbArgs = ['-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C'];
    const cache = process.env.SYNCLINE_PG_CACHE;
    const key = createHash('sha256').update(JSON.stringify([PG_BIN, initdbArgs, conf])).digest('hex').slice(0, 16);
    const template = cache ? join(cache, `pgdata-${key}`) : null;
    // cp -a keeps the owner (postgres) and the 0700 mode PostgreSQL insists on.
    if (template && existsSync(join(template, 'PG_VERSION'))) {
      await run('cp', ['-a', template, this.data], { asRoot: true });
      return;
    }
    await run(join(PG_BIN, 'initdb'), ['-D', this.data, ...initdbArgs]);
    appendFileSync(join(this.data, 'postgresql.conf'), `\n# syncline tests (tests/lib/postgres.mjs)\n${conf}\n`);
    if (template) {
      // Copied aside, then renamed into place: a concurrent process sees all of it or none.
      const tmp = mkdtempSync(join(cache, 'pgdata-tmp-'));
      try {
        await run('cp', ['-a', this.data, join(tmp, 'pg')], { asRoot: true });
        renameSync(join(tmp, 'pg'), template);
      } catch {
        /* another process put it there first, or the cache is not writable: initdb next time */
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    }
  }

  async start() {
    const opts = `-p ${this.port} -k ${this.dir}`;
    const t0 = performance.now();
    try {
      await run(join(PG_BIN, 'pg_ctl'), ['-D', this.data, '-o', opts, '-l', this.logFile, '-w', '-t', '60', 'start']);
    } catch (e) {
      throw new Error(`pg_ctl start failed: ${e.message}\n${tail(this.logFile)}`);
    }
    this.running = true;
    this.stats.startMs += Math.round(performance.now() - t0);
  }

  // Stops the database server. mode 'immediate' is a crash (no shutdown checkpoint: the next
  // start replays the WAL); 'fast' is a clean shutdown.
  async stopServer({ mode = 'fast' } = {}) {
    if (!this.running) return;
    this.running = false;
    await run(join(PG_BIN, 'pg_ctl'), ['-D', this.data, '-m', mode, '-w', 'stop']);
  }

  async restart({ mode = 'fast' } = {}) {
    this.stats.restarts++;
    await this.stopServer({ mode });
    await this.start();
  }

  // One statement (or several separated by ;) on a new connection to `dbName`; the rows of
  // the last result as arrays of text values (null for SQL NULL).
  async query(dbName, sql) {
    const t0 = performance.now();
    const rows = await simpleQuery(this.port, dbName, sql);
    this.stats.queries++;
    this.stats.queryMs += Math.round(performance.now() - t0);
    return rows;
  }

  // A fresh, empty database named `name`. Copying template1 is most of the cost (its pages go
  // through the WAL), so the next database is made ahead while the test runs, and this renames
  // it (a catalog update) when it is ready.
  async createDatabase(name) {
    if (!NAME.test(name)) throw new Error(`database name must match ${NAME}: ${name}`);
    const t0 = performance.now();
    const spare = this.spare ? await this.spare : null;
    this.spare = null;
    let made = false;
    if (spare) {
      try {
        await this.query('postgres', `ALTER DATABASE ${spare} RENAME TO ${name}`);
        made = true;
      } catch (e) {
        if (e.code === '42P04') {
          this.spare = Promise.resolve(spare); // `name` exists: keep the spare for the next one
          throw e;
        }
      }
    }
    if (!made) await this.query('postgres', `CREATE DATABASE ${name}`);
    this.stats.databases++;
    this.stats.createMs += Math.round(performance.now() - t0);
    this.#makeSpare();
    return this.url(name);
  }

  #makeSpare() {
    const name = `spare_${process.pid}_${++this.spares}`;
    // A spare lost to a restart of the cluster (or any error) is made again by the next call.
    this.spare = this.query('postgres', `CREATE DATABASE ${name}`).then(
      () => name,
      () => null,
    );
  }

  async dropDatabase(name) {
    if (!NAME.test(name)) throw new Error(`database name must match ${NAME}: ${name}`);
    await this.query('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }

  async stop() {
    await this.stopServer({ mode: 'immediate' }).catch(() => {});
    this.#cleanup();
  }

  stopSync() {
    if (process.env.SYNCLINE_TEST_PG_TIMING && this.stats.initMs) {
      process.stderr.write(`[postgres] ${process.argv[1] ?? ''}: ${JSON.stringify(this.stats)}\n`);
      this.stats.initMs = 0;
    }
    // Also a cluster whose start did not finish (postmaster.pid is there while it runs).
    if (this.running || existsSync(join(this.data, 'postmaster.pid'))) {
      this.running = false;
      try {
        const [file, ...rest] = [...asPostgres, join(PG_BIN, 'pg_ctl'), '-D', this.data, '-m', 'immediate', '-w', 'stop'];
        execFileSync(file, rest, { stdio: 'ignore', timeout: 30000 });
      } catch {
        /* already down */
      }
    }
    this.#cleanup();
  }

  #cleanup() {
    process.removeListener('exit', this.onExit);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.removeListener(sig, this.onSignal);
    if (this.watchdog) {
      try {
        process.kill(-this.watchdog.pid, 'SIGKILL'); // its process group: the shell and its sleep
      } catch {
        /* gone */
      }
      this.watchdog = null;
    }
    rmSync(this.dir, { recursive: true, force: true });
    if (cluster && cluster.value === this) cluster = null;
  }

  // Outlives a test process killed with SIGKILL: once that pid is gone, it stops the cluster
  // and removes its directory. Killed by a normal stop.
  #startWatchdog() {
    const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
    const stop = [...asPostgres, join(PG_BIN, 'pg_ctl'), '-D', this.data, '-m', 'immediate', 'stop'].map(q).join(' ');
    const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${stop} >/dev/null 2>&1; rm -rf ${q(this.dir)}`;
    this.watchdog = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
    this.watchdog.unref();
  }
}

let cluster = null; // { promise, value }

/** The test process's PostgreSQL cluster, started on first use. */
export function pg() {
  if (!cluster) {
    const dir = mkdtempSync(join(tmpdir(), 'syncline-pg-'));
    chmodSync(dir, 0o777);
    const c = new Cluster(dir);
    const entry = { value: c, promise: null };
    entry.promise = c.init().catch((e) => {
      c.stopSync();
      if (cluster === entry) cluster = null;
      throw e;
    });
    cluster = entry;
  }
  return cluster.promise;
}
