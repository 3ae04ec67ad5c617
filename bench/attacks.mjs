// The resource attacks of the server's hardening list (docs/reliability-security.md, Server
// hardening) at full scale, against one server binary, with what they cost the server: resident
// memory before / at peak, /v1/health latency while the attack runs, and the attack's own
// figures.
//
//   SYNCLINE_SERVER_BIN=/path/to/syncline-server node bench/attacks.mjs [--only=3,4,5]
//
//   3  resume catch-up: one customer with 2,000 of its own 7 KB bookings, then 40
//      GET /v1/events?cursor=0 streams that never read; held 10 s.
//   4  fd exhaustion: the server under `ulimit -n 256`, 1,000 connection attempts (each sends one
//      GET /v1/health and stays open); over 10 s: "accept failed" log lines and the server's CPU
//      time (/proc/<pid>/stat utime + stime); then how long until /v1/health answers again.
//   5  scoped snapshot: 4,000 bookings, a customer who sees none of them; per-request latency of
//      its GET /v1/snapshot?collections=bookings (30 sequential requests), then /v1/health latency
//      while that customer sends 2 snapshot requests/s for 10 s.
//
// Health is probed every 200 ms on a fresh TCP connection with a 2 s timeout; a probe that
// times out counts as failed (its latency is not in p50/max). RSS is sampled every 50 ms from
// /proc/<pid>/status (VmRSS), and VmHWM is taken into account for the peak.
// Uses the test helpers (tests/server/helpers.mjs, tests/security/lib.mjs): real server on a
// free loopback port, temporary database, real sockets; everything it starts is stopped.
import net from 'node:net';
import { makeToken, metrics, mutate, SERVER_BIN, sleep, startServer, testConfig } from '../tests/server/helpers.mjs';
import { countLog, freshRequest, memorySampler, percentile, procCpuMs, procMemory, stalledSse, timedHealth } from '../tests/security/lib.mjs';

const args = process.argv.slice(2);
const only = (args.find((a) => a.startsWith('--only=')) ?? '').slice(7).split(',').filter(Boolean);
const want = (k) => !only.length || only.includes(k);
const MiB = 1024 * 1024;

// The deployed limits (server/config/demo.json) rather than the test suites' generous ones, so
// the rate limiter does not shape the attack differently from production. The insert phase is
// paced below them.
function benchConfig(limits = {}) {
  return testConfig({ limits: { rate_limit_per_sec: 50, rate_limit_burst: 100, heartbeat_ms: 15000, write_timeout_ms: 30000, ...limits } });
}

function healthProbe(server, everyMs = 200, timeout = 2000) {
  const samples = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      samples.push(await timedHealth(server, timeout));
      if (!stopped) await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      const ok = samples.filter((s) => s.status === 200).map((s) => s.ms);
      return { n: samples.length, failed: samples.length - ok.length, p50: percentile(ok, 50), max: ok.length ? Math.max(...ok) : NaN };
    },
  };
}

async function insertBatches(server, token, client, docs, maxBytes = 900 * 1024) {
  let mid = 0;
  let batch = [];
  let bytes = 0;
  const flush = async () => {
    if (!batch.length) return;
    for (;;) {
      const r = await mutate(server, token, client, batch);
      if (r.status === 429) {
        await sleep(1000 * (Number(r.headers.get('retry-after')) || 1));
        continue;
      }
      if (r.status !== 200) throw new Error(`insert failed: ${r.status} ${r.text.slice(0, 300)}`);
      break;
    }
    batch = [];
    bytes = 0;
  };
  for (const d of docs) {
    const m = { mid: ++mid, op: 'insert', ...d };
    const size = JSON.stringify(m).length;
    if (batch.length && (batch.length >= 500 || bytes + size > maxBytes)) await flush();
    batch.push(m);
    bytes += size;
  }
  await flush();
}

const rows = [];
function row(attack, r) {
  rows.push({ attack, ...r });
  console.log(`[attacks] ${attack}: ${JSON.stringify(r)}`);
}

// 3. Resume catch-up of 40 streams that never read.
async function attack3() {
  const server = await startServer({ config: benchConfig() });
  const socks = [];
  try {
    const cust = makeToken('cust-1', 'customer');
    const pad = 'p'.repeat(7 * 1024 - 120);
    const docs = Array.from({ length: 2000 }, (_, i) => ({ collection: 'bookings', id: `bk-${i}`, fields: { customer_id: 'cust-1', hall: 'h', date: `d${i}`, slot: 'am', pad } }));
    await insertBatches(server, cust, 'cust-1-seed', docs);
    await sleep(1200); // refill the customer's bucket for the 40 stream opens
    const pid = server.proc.pid;
    const before = procMemory(pid);
    const sampler = memorySampler(pid, 50);
    const probe = healthProbe(server);
    const t0 = Date.now();
    const statuses = {};
    const opens = [];
    for (let i = 0; i < 40; i++) {
      opens.push(
        stalledSse(server, `/v1/events?cursor=0&collections=bookings&access_token=${cust}`, { timeout: 30000 }).then(
          (s) => {
            socks.push(s.sock);
            statuses[s.status] = (statuses[s.status] || 0) + 1;
          },
          () => (statuses.failed = (statuses.failed || 0) + 1),
        ),
      );
    }
    await Promise.all(opens);
    const openMs = Date.now() - t0;
    await sleep(10000);
    const mem = sampler.stop();
    const h = await probe.stop();
    const end = procMemory(pid);
    row('3 catch-up: 40 stalled resumes x 2,000 x 7 KB', {
      rss_before: before.rss,
      rss_peak: Math.max(mem.peakRss, end.hwm > before.hwm ? end.hwm : 0),
      health_p50: h.p50,
      health_max: h.max,
      health_failed: `${h.failed}/${h.n}`,
      notes: `stream answers ${JSON.stringify(statuses)}, all opened in ${openMs} ms; RSS after 10 s ${end.rss.toFixed(0)} MiB`,
    });
  } finally {
    for (const s of socks) s.destroy();
    await server.cleanup();
  }
}

// 4. File descriptors: 1,000 connections against `ulimit -n 256`.
async function attack4() {
  const server = await startServer({ config: benchConfig(), wrap: ['bash', '-c', 'ulimit -n 256 && exec "$0" "$@"'] });
  const conns = [];
  try {
    const pid = server.proc.pid;
    const before = procMemory(pid);
    const sampler = memorySampler(pid, 50);
    const probe = healthProbe(server);
    const logs0 = countLog(server, 'accept failed');
    const cpu0 = procCpuMs(pid);
    const t0 = Date.now();
    for (let i = 0; i < 1000; i++) {
      const c = { sock: net.connect(server.port, '127.0.0.1'), data: '', closed: false };
      c.sock.on('data', (d) => (c.data += d.toString('latin1')));
      c.sock.on('close', () => (c.closed = true));
      c.sock.on('error', () => {});
      c.sock.on('connect', () => c.sock.write('GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
      conns.push(c);
    }
    await sleep(10000 - (Date.now() - t0));
    const cpuMs = procCpuMs(pid) - cpu0;
    const wallMs = Date.now() - t0;
    const acceptFailed = countLog(server, 'accept failed') - logs0;
    const mem = sampler.stop();
    const h = await probe.stop();
    const tally = { ok200: 0, refused503: 0, closed: 0, pending: 0 };
    for (const c of conns) {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(c.data);
      if (m?.[1] === '200') tally.ok200++;
      else if (m?.[1] === '503') tally.refused503++;
      else if (c.closed) tally.closed++;
      else tally.pending++;
    }
    for (const c of conns) c.sock.destroy();
    const tr = Date.now();
    let recovered = NaN;
    while (Date.now() - tr < 15000) {
      const r = await timedHealth(server, 2000);
      if (r.status === 200) {
        recovered = Date.now() - tr;
        break;
      }
      await sleep(100);
    }
    const end = procMemory(pid);
    row('4 fd exhaustion: 1,000 connections, ulimit -n 256', {
      rss_before: before.rss,
      rss_peak: Math.max(mem.peakRss, end.hwm > before.hwm ? end.hwm : 0),
      health_p50: h.p50,
      health_max: h.max,
      health_failed: `${h.failed}/${h.n}`,
      notes: `"accept failed" lines in ${(wallMs / 1000).toFixed(1)} s: ${acceptFailed}; server CPU ${cpuMs.toFixed(0)} ms (${((100 * cpuMs) / wallMs).toFixed(0)}% of a core); connections ${JSON.stringify(tally)}; health 200 again ${Number.isNaN(recovered) ? 'not within 15 s' : `${recovered} ms`} after closing`,
    });
  } finally {
    for (const c of conns) c.sock.destroy();
    await server.cleanup();
  }
}

// 5. A customer who sees none of 4,000 bookings takes snapshots.
async function attack5() {
  const server = await startServer({ config: benchConfig() });
  try {
    const admin = makeToken('admin', 'admin');
    const cust = makeToken('cust-1', 'customer');
    const docs = Array.from({ length: 4000 }, (_, i) => ({ collection: 'bookings', id: `bk-${String(i).padStart(5, '0')}`, fields: { customer_id: `other-${i % 50}`, hall: `h${i % 7}`, date: `d${i}`, slot: 'am', note: 'x'.repeat(200) } }));
    await insertBatches(server, admin, 'seed', docs);
    await sleep(300);
    const pid = server.proc.pid;
    const before = procMemory(pid);
    const metric = 'syncline_snapshot_rows_read_total';
    const m0 = (await metrics(server))[metric];
    const lat = [];
    for (let i = 0; i < 30; i++) {
      const r = await freshRequest(server, 'GET', '/v1/snapshot?collections=bookings', { headers: { authorization: `Bearer ${cust}` } });
      if (r.status !== 200 || r.json.docs.length !== 0) throw new Error(`snapshot: ${r.status} ${r.text.slice(0, 200)}`);
      lat.push(r.ms);
    }
    const m1 = (await metrics(server))[metric];
    const sampler = memorySampler(pid, 50);
    const probe = healthProbe(server);
    const t0 = Date.now();
    const during = [];
    let k = 0;
    const pending = [];
    while (Date.now() - t0 < 10000) {
      const at = t0 + k * 500;
      k++;
      await sleep(Math.max(0, at - Date.now()));
      pending.push(freshRequest(server, 'GET', '/v1/snapshot?collections=bookings', { headers: { authorization: `Bearer ${cust}` } }).then((r) => during.push(r.ms)));
    }
    await Promise.all(pending);
    const mem = sampler.stop();
    const h = await probe.stop();
    const end = procMemory(pid);
    const rowsRead = typeof m0 === 'number' && typeof m1 === 'number' ? `${((m1 - m0) / 30).toFixed(0)} rows read per snapshot` : `${metric} not exported`;
    row('5 scoped snapshot: customer sees 0 of 4,000', {
      rss_before: before.rss,
      rss_peak: Math.max(mem.peakRss, end.hwm > before.hwm ? end.hwm : 0),
      health_p50: h.p50,
      health_max: h.max,
      health_failed: `${h.failed}/${h.n}`,
      notes: `snapshot latency p50 ${percentile(lat, 50).toFixed(1)} ms max ${Math.max(...lat).toFixed(1)} ms (30 sequential); during 2/s x 10 s: ${during.length} snapshots p50 ${percentile(during, 50).toFixed(1)} ms max ${Math.max(...during).toFixed(1)} ms; ${rowsRead}`,
    });
  } finally {
    await server.cleanup();
  }
}

const f1 = (x) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(1) : '–');
console.log(`# bench/attacks.mjs against ${SERVER_BIN}`);
console.log(`# ${new Date().toISOString()}, node ${process.version}, ${(await import('node:os')).cpus().length} CPUs`);
if (want('3')) await attack3();
if (want('4')) await attack4();
if (want('5')) await attack5();
console.log('');
console.log('| attack | RSS before (MiB) | RSS peak (MiB) | health p50 (ms) | health max (ms) | health failed/probes | notes |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
for (const r of rows) {
  console.log(`| ${r.attack} | ${f1(r.rss_before)} | ${f1(r.rss_peak)} | ${f1(r.health_p50)} | ${f1(r.health_max)} | ${r.health_failed} | ${r.notes} |`);
}
