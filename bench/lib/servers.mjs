// Starting and stopping the servers the benchmarks talk to (loopback only, free ports).
// Every process started here is tracked and stopped by stopAll() (also on exit/signals).
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, REPO_ROOT } from './common.mjs';

export const SERVER_BIN = process.env.SYNCLINE_SERVER_BIN || join(REPO_ROOT, 'build', 'server', 'syncline-server');
export const SECRET = 'bench-secret-0123456789abcdef';

const b64url = (buf) => Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

export function makeToken(sub, role, secret = SECRET) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, role, exp: Math.floor(Date.now() / 1000) + 3 * 3600 }));
  const sig = b64url(createHmac('sha256', secret).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}

/** Server config for benchmarks: limits raised so the bench measures fan-out, not throttling. */
export function benchConfig(limits = {}) {
  return {
    jwt_secret: SECRET,
    demo_tokens: false,
    allowed_origins: [],
    limits: {
      rate_limit_per_sec: 0,
      rate_limit_burst: 1000000,
      max_body_bytes: 16 * 1024 * 1024,
      max_batch: 5000,
      send_queue_messages: 1000000,
      send_queue_bytes: 1024 * 1024 * 1024,
      write_timeout_ms: 60000,
      heartbeat_ms: 15000,
      log_retention: 0,
      snapshot_max_limit: 5000,
      max_connections: 10000,
      // Fan-out opens thousands of streams with one subject from one address.
      max_streams_per_user: 100000,
      max_http_connections: 20000,
      idle_timeout_ms: 600000,
      ...limits,
    },
    collections: {
      bills: { read: { admin: 'all', '*': 'all' }, write: { admin: 'all' } },
      items: { read: { admin: 'all', '*': 'all' }, write: { admin: 'all' } },
    },
  };
}

const live = new Set();
function track(p) {
  live.add(p);
  p.on('exit', () => live.delete(p));
}
export function stopAllSync() {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}
process.on('exit', stopAllSync);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    stopAllSync();
    process.exit(130);
  });
}

function waitListening(proc, logs, what) {
  return new Promise((res, rej) => {
    let buf = '';
    const timer = setTimeout(() => rej(new Error(`${what} did not start: ${logs.join('\n')}`)), 15000);
    proc.stdout.on('data', (chunk) => {
      buf += chunk.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (logs.length < 200) logs.push(line);
        try {
          const j = JSON.parse(line);
          if (j.msg === 'listening') {
            clearTimeout(timer);
            res(j.port);
          }
        } catch {
          /* not JSON */
        }
      }
    });
    proc.stderr.on('data', (c) => logs.length < 200 && logs.push(c.toString()));
    proc.on('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`${what} exited with ${code}: ${logs.join('\n')}`));
    });
  });
}

function handle(proc, port, logs, cleanupDir) {
  const exited = new Promise((r) => proc.on('exit', r));
  return {
    proc,
    pid: proc.pid,
    port,
    logs,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      let t;
      const ok = await Promise.race([exited.then(() => true), new Promise((r) => (t = setTimeout(() => r(false), 5000)))]);
      clearTimeout(t);
      if (!ok) {
        proc.kill('SIGKILL');
        await exited;
      }
      if (cleanupDir) rmSync(cleanupDir, { recursive: true, force: true });
    },
  };
}

export async function startSynclineServer({ config = benchConfig(), staticDir } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-bench-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const args = ['--port', '0', '--host', '127.0.0.1', '--db', `sqlite:${join(dir, 'db', 'bench.db')}`, '--config', join(dir, 'config.json')];
  if (staticDir) args.push('--static', staticDir);
  const proc = spawn(SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(proc);
  const logs = [];
  // Keep draining the log pipes so the server never blocks on a full pipe.
  const port = await waitListening(proc, logs, 'syncline-server');
  return handle(proc, port, logs, dir);
}

export async function startNodePeer() {
  const proc = spawn(process.execPath, [join(BENCH_DIR, 'peers', 'node-fanout-server.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(proc);
  const logs = [];
  const port = await waitListening(proc, logs, 'node peer server');
  return handle(proc, port, logs, null);
}

export async function postJson(url, body, token) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${url}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}
