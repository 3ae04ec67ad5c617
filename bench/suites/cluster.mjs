// Benchmark 6: scale-out. Three syncline-server nodes on one PostgreSQL database (a throwaway
// cluster this suite starts, fsync and synchronous_commit on) against one node on SQLite, in
// the same run, with the same load generator:
//
// - Throughput: W writers per node POST batches of B inserts back to back for a fixed time;
//   group commit merges what arrives while a commit is in flight. Reported: changes committed
//   per second, and that a stream on every node received every change (delivered / expected).
// - Latency: one writer on node A inserts at a steady rate, a stream on node B (on SQLite: the
//   same node) receives; each change carries its send time, so "write -> B" is POST sent on A
//   -> change parsed on B, an upper bound on commit-on-A -> delivery-on-B. The POST round trip
//   (the commit, fsync included) is reported beside it.
//
// The load generator shares the machine's two cores with the servers and PostgreSQL.
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, now, procStats, ratio, sleep, summarize, target } from '../lib/common.mjs';
import { benchConfig, makeToken, postJson, SERVER_BIN, startSynclineServer } from '../lib/servers.mjs';
import { pg } from '../../tests/lib/postgres.mjs';

const T_KEY = Buffer.from('"t":');

// An SSE stream counting changes and, for those with a "t" field, the latency since t.
function openStream(base, token) {
  const s = { count: 0, lat: [], closed: false };
  s.ready = new Promise((resolve, reject) => {
    const req = http.get(`${base}/v1/events?collections=bills&access_token=${encodeURIComponent(token)}`, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE status ${res.statusCode}`));
      res.socket.setNoDelay(true);
      let carry = '';
      res.setEncoding('latin1');
      res.on('data', (chunk) => {
        const buf = carry + chunk;
        const end = buf.lastIndexOf('\n\n');
        if (end < 0) {
          carry = buf;
          return;
        }
        carry = buf.slice(end + 2);
        const at = performance.timeOrigin + now();
        let pos = 0;
        for (;;) {
          const d = buf.indexOf('event: change', pos);
          if (d < 0 || d > end) break;
          s.count++;
          const i = buf.indexOf('"t":', d);
          const stop = buf.indexOf('\n\n', d);
          // Only the current latency phase's changes (a late one of the previous phase is not).
          const mine = s.tagKey && buf.indexOf(s.tagKey, d);
          if (i > 0 && i < stop && mine > 0 && mine < stop) {
            let j = i + 4;
            while (j < buf.length && buf[j] !== ',' && buf[j] !== '}') j++;
            const t = Number(buf.slice(i + 4, j));
            if (t > 0) s.lat.push(at - t);
          }
          pos = stop + 2;
        }
      });
      res.on('close', () => (s.closed = true));
      resolve();
    });
    req.on('error', reject);
    s.close = () => req.destroy();
  });
  return s;
}

async function startPgNode(url, config) {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-bench-node-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const proc = spawn(SERVER_BIN, ['--port', '0', '--db', url, '--config', join(dir, 'config.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise((res, rej) => {
    let buf = '';
    const timer = setTimeout(() => rej(new Error('node did not start')), 15000);
    proc.stdout.on('data', (c) => {
      buf += c;
      const m = buf.match(/"msg":"listening".*?"port":(\d+)/);
      if (m) {
        clearTimeout(timer);
        res(Number(m[1]));
      }
      if (buf.length > 65536) buf = buf.slice(-4096);
    });
    proc.stderr.resume();
    proc.on('exit', (code) => rej(new Error(`node exited with ${code}`)));
  });
  return {
    pid: proc.pid,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.on('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Writers POST back to back for `ms`; returns committed changes/s and the POST latencies.
async function throughput(nodes, token, { writersPerNode, batch, ms, tag }) {
  let committed = 0;
  const rtt = [];
  const t0 = now();
  let seq = 0;
  const writers = [];
  nodes.forEach((node, ni) => {
    for (let w = 0; w < writersPerNode; w++) {
      writers.push(
        (async () => {
          const client = `tp-${tag}-${ni}-${w}`;
          let mid = 0;
          while (now() - t0 < ms) {
            const mutations = [];
            for (let k = 0; k < batch; k++) mutations.push({ mid: ++mid, op: 'insert', collection: 'bills', id: `${tag}-${ni}-${w}-${++seq}`, fields: { n: seq, amount: 1 } });
            const s = now();
            const r = await postJson(`${node.url}/v1/mutations`, { client, mutations }, token);
            rtt.push(now() - s);
            committed += r.results.filter((x) => x.status === 'applied').length;
          }
        })(),
      );
    }
  });
  await Promise.all(writers);
  const seconds = (now() - t0) / 1000;
  return { perSec: committed / seconds, committed, rtt: summarize(rtt) };
}

// One writer on `a` at `rate` single-insert POSTs per second for `ms`; the stream on `b` measures.
async function latency(a, stream, token, { rate, ms, tag }) {
  stream.tagKey = `"lat-${tag}-`;
  stream.lat = [];
  const rtt = [];
  const t0 = now();
  let sent = 0;
  const inflight = new Set();
  while (now() - t0 < ms) {
    const due = Math.floor(((now() - t0) / 1000) * rate) + 1 - sent;
    for (let k = 0; k < due; k++) {
      sent++;
      const t = performance.timeOrigin + now();
      const s = now();
      const p = postJson(`${a.url}/v1/mutations`, { client: `lat-${tag}-${sent}`, mutations: [{ mid: 1, op: 'insert', collection: 'bills', id: `lat-${tag}-${sent}`, fields: { t, amount: 1 } }] }, token)
        .then(() => rtt.push(now() - s))
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await sleep(2);
  }
  await Promise.all(inflight);
  const deadline = now() + 5000;
  while (stream.lat.length < sent && now() < deadline) await sleep(10);
  return { sent, received: stream.lat.length, lat: summarize(stream.lat), rtt: summarize(rtt) };
}

export async function run({ quick }) {
  const ms = quick ? 2000 : 6000;
  const latMs = quick ? 2000 : 6000;
  const rate = 200;
  const config = benchConfig();
  const token = makeToken('bench-admin', 'admin');
  const rows = [];
  const latRows = [];
  const results = {};

  // --- SQLite, one node ---
  {
    const server = await startSynclineServer({ config });
    const stream = openStream(server.url, token);
    await stream.ready;
    await sleep(200);
    const tput = {};
    for (const batch of [1, 20]) {
      const before = stream.count;
      const cpu0 = procStats(server.pid);
      const r = await throughput([server], token, { writersPerNode: 24, batch, ms, tag: `s${batch}` });
      const cpu1 = procStats(server.pid);
      const deadline = now() + 10000;
      while (stream.count - before < r.committed && now() < deadline) await sleep(20);
      tput[batch] = r.perSec;
      rows.push(['SQLite, 1 node', batch, fmt(r.perSec), `${fmt(stream.count - before)} / ${fmt(r.committed)}`, `${fmt(r.rtt.p50, 1)} / ${fmt(r.rtt.p99, 1)}`, `${fmt((100 * (cpu1.cpuSec - cpu0.cpuSec)) / (ms / 1000))}%`]);
    }
    const l = await latency(server, stream, token, { rate, ms: latMs, tag: 'sqlite' });
    latRows.push(['SQLite, 1 node (A = B)', `${fmt(l.received)} / ${fmt(l.sent)}`, fmt(l.lat.p50, 1), fmt(l.lat.p99, 1), `${fmt(l.rtt.p50, 1)} / ${fmt(l.rtt.p99, 1)}`]);
    results.sqlite = { tput, lat: l };
    stream.close();
    await server.stop();
  }

  // --- PostgreSQL, three nodes ---
  {
    const cluster = await pg();
    const url = await cluster.createDatabase(`bench_${process.pid}`);
    const nodes = [];
    for (let i = 0; i < 3; i++) nodes.push(await startPgNode(url, config));
    const streams = nodes.map((n) => openStream(n.url, token));
    await Promise.all(streams.map((s) => s.ready));
    await sleep(200);
    const tput = {};
    for (const batch of [1, 20]) {
      const before = streams.map((s) => s.count);
      const r = await throughput(nodes, token, { writersPerNode: 8, batch, ms, tag: `p${batch}` });
      const deadline = now() + 10000;
      while (streams.some((s, i) => s.count - before[i] < r.committed) && now() < deadline) await sleep(20);
      const got = Math.min(...streams.map((s, i) => s.count - before[i]));
      tput[batch] = r.perSec;
      rows.push(['PostgreSQL, 3 nodes', batch, fmt(r.perSec), `${fmt(got)} / ${fmt(r.committed)} (each node)`, `${fmt(r.rtt.p50, 1)} / ${fmt(r.rtt.p99, 1)}`, '–']);
    }
    const same = await latency(nodes[0], streams[0], token, { rate, ms: latMs, tag: 'pg-a' });
    latRows.push(['PostgreSQL, A = B', `${fmt(same.received)} / ${fmt(same.sent)}`, fmt(same.lat.p50, 1), fmt(same.lat.p99, 1), `${fmt(same.rtt.p50, 1)} / ${fmt(same.rtt.p99, 1)}`]);
    const cross = await latency(nodes[0], streams[1], token, { rate, ms: latMs, tag: 'pg-b' });
    latRows.push(['PostgreSQL, A -> B (other node)', `${fmt(cross.received)} / ${fmt(cross.sent)}`, fmt(cross.lat.p50, 1), fmt(cross.lat.p99, 1), `${fmt(cross.rtt.p50, 1)} / ${fmt(cross.rtt.p99, 1)}`]);
    results.pg = { tput, same, cross };
    streams.forEach((s) => s.close());
    for (const n of nodes) await n.stop();
    await cluster.dropDatabase?.(`bench_${process.pid}`);
  }

  const best = Math.max(...Object.values(results.pg.tput));
  const cross = results.pg.cross;
  return {
    id: 'cluster',
    title: '7. Scale-out: three nodes on PostgreSQL vs one node on SQLite',
    setup: `Throughput: writers POST batches of 1 or 20 inserts back to back for ${ms / 1000} s (24 writers on the SQLite node, 8 per PostgreSQL node), group commit on; a stream on every node must receive every change. Latency: one writer on node A, ${rate} single-insert POSTs/s for ${latMs / 1000} s, a stream on node B; write -> B is POST sent on A -> change parsed on B (an upper bound on commit -> delivery). PostgreSQL 15 started by the suite (fsync, synchronous_commit on); load generator, servers and database share the machine's two cores.`,
    tables: [
      { columns: ['backend', 'inserts per POST', 'changes/s committed', 'delivered / committed', 'POST p50 / p99 ms', 'server CPU'], rows },
      { columns: ['path', 'received / sent', 'write -> B p50 ms', 'write -> B p99 ms', 'POST p50 / p99 ms'], rows: latRows },
    ],
    targets: [
      target('Scale-out: >= 5,000 changes/s sustained through the 3-node cluster', best >= 5000, `${fmt(best)} changes/s (batches of 1: ${fmt(results.pg.tput[1])}/s, of 20: ${fmt(results.pg.tput[20])}/s); ${ratio(best, Math.max(...Object.values(results.sqlite.tput)))} the SQLite node's best`),
      target('Scale-out: write on A -> client on B p50 <= 10 ms and p99 <= 50 ms', cross.lat.p50 <= 10 && cross.lat.p99 <= 50 && cross.received === cross.sent, `p50 ${fmt(cross.lat.p50, 1)} ms, p99 ${fmt(cross.lat.p99, 1)} ms (${fmt(cross.received)} / ${fmt(cross.sent)} received)`),
    ],
  };
}
