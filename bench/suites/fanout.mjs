// Benchmark 3: server fan-out on loopback. N SSE + N WebSocket clients subscribe; a writer
// commits changes at increasing rates (each change its own seq); every client must receive
// every change. Reported per step: deliveries/s, p50/p99 write-to-client latency (POST sent
// -> event parsed by the client; an upper bound on commit-to-client), server CPU and RSS.
// Same clients, same writer, same steps against syncline-server and the Node peer
// (bench/peers/node-fanout-server.mjs). Clients and writer share this process (one clock);
// they parse only what they need (the "t" field) so the server, not the client, saturates first.
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import WebSocket from 'ws';
import { fmt, now, procStats, ratio, sleep, summarize, target } from '../lib/common.mjs';
import { makeToken, postJson, startNodePeer, startSynclineServer } from '../lib/servers.mjs';

const T_KEY = Buffer.from('"t":');

class Stats {
  constructor() {
    this.reset();
  }
  reset() {
    this.count = 0;
    this.lat = [];
    this.lastAt = 0;
  }
  hit(buf, from) {
    const i = buf.indexOf(T_KEY, from);
    if (i < 0) return -1;
    let j = i + 4;
    while (j < buf.length && buf[j] !== 44 && buf[j] !== 125) j++;
    const t = Number(buf.toString('latin1', i + 4, j));
    const at = performance.timeOrigin + now();
    this.count++;
    this.lastAt = at;
    // Keep at most ~2M samples per step (reservoir-free thinning: every k-th).
    if (this.count < 2_000_000 || (this.count & 7) === 0) this.lat.push(at - t);
    return j;
  }
}

function openSse(base, token, stats, onClose) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/v1/events?collections=bills&access_token=${encodeURIComponent(token)}`, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE status ${res.statusCode}`));
      res.socket.setNoDelay(true);
      let carry = null;
      res.on('data', (chunk) => {
        let buf = carry ? Buffer.concat([carry, chunk]) : chunk;
        // Only complete events (ending in a blank line) are counted.
        const end = buf.lastIndexOf('\n\n');
        if (end < 0) {
          carry = buf;
          return;
        }
        carry = end + 2 < buf.length ? buf.subarray(end + 2) : null;
        buf = buf.subarray(0, end + 2);
        let pos = 0;
        for (;;) {
          const d = buf.indexOf('event: change', pos);
          if (d < 0) break;
          const j = stats.hit(buf, d);
          pos = j < 0 ? d + 13 : j;
        }
      });
      res.on('close', onClose);
      resolve({ close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

function openWs(port, token, stats, onClose) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws?collections=bills&access_token=${encodeURIComponent(token)}`, { perMessageDeflate: false });
    ws.on('open', () => {
      ws._socket.setNoDelay(true);
      resolve({ close: () => ws.terminate() });
    });
    ws.on('error', reject);
    ws.on('message', (data) => {
      if (data.indexOf('"change"') >= 0) stats.hit(data, 0);
    });
    ws.on('close', onClose);
  });
}

// Every thread of `pid` on CPU `cpu` (taskset -a). False when the machine cannot pin (one CPU).
function pin(pid, cpu) {
  try {
    execFileSync('taskset', ['-a', '-pc', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// Each step's latency condition: a step counts for the peak only below this p99.
const P99_LIMIT_MS = 50;
const WARM_UP_MS = 1000;

async function runServer(kind, { clients, rates, stepMs }) {
  const server = kind === 'syncline' ? await startSynclineServer() : await startNodePeer();
  // The server on one core, this process (clients and writer) on the other: both servers alike.
  const pinned = pin(server.pid, 0) && pin(process.pid, 1);
  const token = makeToken('writer', 'admin');
  const readerToken = makeToken('reader', 'admin');
  const sseStats = new Stats();
  const wsStats = new Stats();
  let closed = 0;
  const conns = [];
  try {
    const onClose = () => closed++;
    for (let i = 0; i < clients; i += 50) {
      const batch = [];
      for (let k = i; k < Math.min(clients, i + 50); k++) {
        batch.push(openSse(server.url, readerToken, sseStats, onClose));
        batch.push(openWs(server.port, readerToken, wsStats, onClose));
      }
      conns.push(...(await Promise.all(batch)));
    }
    await sleep(500);
    const rows = [];
    let posts = 0;
    let n = 0;
    const idleCpu = procStats(server.pid);
    // A warm-up step at the first rate (JIT, caches, connection buffers), not reported.
    for (const { rate, warm } of [{ rate: rates[0], warm: true }, ...rates.map((r) => ({ rate: r }))]) {
      sseStats.reset();
      wsStats.reset();
      closed = 0;
      const before = procStats(server.pid);
      const t0 = now();
      let sent = 0;
      const inflight = new Set();
      const commitLat = [];
      // Writer: one POST per 10 ms tick carrying the mutations due by then.
      while (now() - t0 < (warm ? WARM_UP_MS : stepMs)) {
        const due = Math.floor(((now() - t0) / 1000) * rate) + 1 - sent;
        if (due > 0) {
          const t = performance.timeOrigin + now();
          const mutations = [];
          for (let k = 0; k < due; k++) mutations.push({ mid: k + 1, op: 'insert', collection: 'bills', id: `f${kind}${++n}`, fields: { t, n } });
          sent += due;
          // Overlapping POSTs may reach the server in any order: each gets its own client id,
          // or a later mid arriving first would make an earlier one a `duplicate` (never applied).
          const p = postJson(`${server.url}/v1/mutations`, { client: `bench-writer-${kind}-${++posts}`, mutations }, token)
            .then(() => commitLat.push(performance.timeOrigin + now() - t))
            .finally(() => inflight.delete(p));
          inflight.add(p);
        }
        await sleep(10);
      }
      await Promise.all(inflight);
      const expected = sent * 2 * clients;
      const deadline = now() + 10_000;
      while (sseStats.count + wsStats.count < expected && now() < deadline && closed === 0) await sleep(20);
      await sleep(50);
      const after = procStats(server.pid);
      const wall = (Math.max(sseStats.lastAt, wsStats.lastAt) - (performance.timeOrigin + t0)) / 1000;
      const delivered = sseStats.count + wsStats.count;
      const lat = summarize(sseStats.lat.concat(wsStats.lat));
      const sseLat = summarize(sseStats.lat);
      const wsLat = summarize(wsStats.lat);
      if (warm) continue;
      rows.push({
        rate,
        commits: sent,
        expected,
        delivered,
        perSec: delivered / wall,
        p50: lat.p50,
        p99: lat.p99,
        sseP99: sseLat.p99,
        wsP99: wsLat.p99,
        cpu: ((after.cpuSec - before.cpuSec) / ((now() - t0) / 1000)) * 100,
        rss: after.rss,
        commit: summarize(commitLat),
        dropped: closed,
      });
    }
    return { rows, idleRss: idleCpu.rss, pinned };
  } finally {
    for (const c of conns) c.close();
    await server.stop();
  }
}

export async function run({ quick }) {
  const clients = quick ? 100 : 1000;
  const rates = quick ? [20, 100] : [10, 50, 100, 200, 400];
  const stepMs = quick ? 1500 : 4000;
  const res = {};
  for (const kind of ['syncline', 'node']) res[kind] = await runServer(kind, { clients, rates, stepMs });

  const names = { syncline: 'syncline-server (C++)', node: 'Node peer (http + ws)' };
  const rows = [];
  for (let i = 0; i < rates.length; i++) {
    for (const kind of ['syncline', 'node']) {
      const r = res[kind].rows[i];
      rows.push([
        names[kind],
        rates[i],
        `${fmt(r.delivered)} / ${fmt(r.expected)}`,
        r.perSec,
        r.p50,
        r.p99,
        `${fmt(r.commit.p50)} / ${fmt(r.commit.p99)}`,
        `${fmt(r.sseP99)} / ${fmt(r.wsP99)}`,
        `${fmt(r.cpu, 0)}%`,
        `${fmt(r.rss / 2 ** 20, 1)}`,
        r.dropped,
        kind === 'syncline' ? ratio(r.perSec, res.node.rows[i].perSec) : '',
      ]);
    }
  }
  // Peak: the step with the most deliveries/s that lost nothing, cut no client off and kept its
  // p99 under the limit; null when no step did.
  const peak = (kind) => {
    const ok = res[kind].rows.filter((r) => r.delivered >= r.expected && r.dropped === 0 && r.p99 < P99_LIMIT_MS);
    return ok.length ? ok.reduce((b, r) => (r.perSec > b.perSec ? r : b)) : null;
  };
  const s = peak('syncline');
  const nd = peak('node');
  const top = res.syncline.rows[res.syncline.rows.length - 1];
  const tp = s && nd ? s.perSec / nd.perSec : s ? Infinity : 0;
  const describe = (name, r) => (r ? `${name} ${fmt(r.perSec)} deliveries/s at ${fmt(r.rate)} changes/s (p99 ${fmt(r.p99)} ms)` : `${name}: no step under ${P99_LIMIT_MS} ms p99`);
  const pinned = res.syncline.pinned && res.node.pinned;
  const maxP99 = Math.max(...res.syncline.rows.map((r) => r.p99));
  return {
    id: 'fanout',
    title: '3. Server fan-out (loopback)',
    setup: `${pinned ? 'Server pinned to CPU 0 and the clients + writer to CPU 1 (taskset), both servers alike. ' : 'Not pinned (taskset failed). '}A ${WARM_UP_MS / 1000} s warm-up step at the first rate is not reported. Peak = the step with the most deliveries/s that delivered everything with p99 < ${P99_LIMIT_MS} ms. ${fmt(clients)} SSE + ${fmt(clients)} WebSocket clients (${fmt(2 * clients)} connections) in one Node process; a writer in the same process POSTs /v1/mutations every 10 ms at the offered rate; each change is delivered to every client. Each step runs ${stepMs / 1000} s, then waits (<= 10 s) for the stragglers. Latency is write-to-client (POST sent -> event received, same clock). Server CPU = process CPU time / step wall time (100% = one core; the machine has 2, shared with the clients). Server limits raised (rate limit off, send queues 1M messages). syncline-server commits every change to SQLite before broadcasting; the Node peer keeps nothing.`,
    tables: [{ columns: ['server', 'offered changes/s', 'delivered / expected', 'deliveries/s', 'p50 ms', 'p99 ms', 'POST round trip p50 / p99 ms', 'p99 SSE / WS ms', 'server CPU', 'RSS MiB', 'conns closed', 'vs Node'], rows }],
    metrics: {
      synclinePeak: s ? s.perSec : 0,
      nodePeak: nd ? nd.perSec : 0,
      synclineP99: s ? s.p99 : null,
      nodeP99: nd ? nd.p99 : null,
      pinned,
      steps: res,
    },
    targets: [
      target(`Fan-out: >= 2x the Node peer in deliveries/s at p99 < ${P99_LIMIT_MS} ms`, tp >= 2,
        `peak: ${describe('syncline', s)} vs ${describe('Node', nd)}${s && nd ? `: ${fmt(tp, 2)}x` : ''}`),
      target(`Fan-out: p99 < 50 ms at ${fmt(clients)} clients (every step)`, maxP99 < 50, `worst step p99 ${fmt(maxP99)} ms (at ${fmt(top.rate)} changes/s: ${fmt(top.p99)} ms)`),
    ],
  };
}
