// The local cluster of `npm run cluster` (scripts/cluster.sh, docs/scale-out.md): the script
// itself starts PostgreSQL, three syncline-server nodes and HAProxy, on free loopback ports and a
// temporary data directory (SYNCLINE_CLUSTER_* overrides; bootstrap and build already ran). The
// test does through the balancer what a user would: health, a write then a snapshot, SSE and
// WebSocket streams, kill -9 of a node while writing, then `cluster.sh stop`, a second start on
// the same data (PostgreSQL reused) and Ctrl-C; after each stop no process of the cluster is left.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { api, freePort, REPO_ROOT, sleep, SseClient, WsClient } from '../server/helpers.mjs';

const SCRIPT = join(REPO_ROOT, 'scripts', 'cluster.sh');
const STATIC = process.env.SYNCLINE_STATIC_DIR || join(REPO_ROOT, 'demo', 'dist');

/** Distinct ports that were free a moment ago. */
async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return e.code === 'EPERM';
  }
  // A zombie (exited, not yet reaped) is not running.
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Processes whose command line mentions one of `needles`. */
function processesMentioning(needles) {
  const out = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    let cmd;
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    if (cmd && needles.some((n) => cmd.includes(n))) out.push(`${p}: ${cmd}`);
  }
  return out;
}

describe('local cluster (scripts/cluster.sh)', () => {
  let dataDir;
  let ports;
  let env;
  let cluster; // the foreground cluster.sh of the current start
  const base = () => `http://127.0.0.1:${ports.balancer}`;
  let token;

  /** Runs `cluster.sh` in the foreground; resolves once it printed its URL. */
  function startCluster() {
    const proc = spawn('bash', [SCRIPT], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const c = { proc, output: '', exited: new Promise((res) => proc.on('exit', (code, signal) => res({ code, signal }))) };
    proc.stdout.on('data', (d) => (c.output += d));
    proc.stderr.on('data', (d) => (c.output += d));
    c.ready = new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`cluster did not start in 120 s:\n${c.output}`)), 120000);
      proc.stdout.on('data', () => {
        if (c.output.includes(`syncline cluster: http://localhost:${ports.balancer}/`)) {
          clearTimeout(timer);
          res();
        }
      });
      c.exited.then(({ code }) => {
        clearTimeout(timer);
        rej(new Error(`cluster.sh exited with ${code} before it was ready:\n${c.output}`));
      });
    });
    c.ready.catch(() => {});
    return c;
  }

  /** The pids of what runs now: the script, HAProxy, the nodes, the postmaster. */
  function clusterPids() {
    const run = join(dataDir, 'cluster');
    const pids = {};
    for (const f of readdirSync(run).filter((f) => f.endsWith('.pid'))) {
      pids[f.slice(0, -4)] = Number(readFileSync(join(run, f), 'utf8').split(' ')[0]);
    }
    pids.postgres = Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pids;
  }

  async function assertNothingLeft(pids) {
    for (const [name, pid] of Object.entries(pids)) assert.ok(!isAlive(pid), `${name} (pid ${pid}) still runs`);
    assert.deepEqual(processesMentioning([dataDir, ...ports.nodes.map((p) => `--port ${p}`)]), [], 'no process of the cluster left');
    assert.deepEqual(readdirSync(join(dataDir, 'cluster')).filter((f) => f.endsWith('.pid')), [], 'pid files removed');
    assert.ok(!existsSync(join(dataDir, 'pg', 'postmaster.pid')), 'PostgreSQL stopped');
    for (const p of [ports.balancer, ...ports.nodes]) {
      await assert.rejects(fetch(`http://127.0.0.1:${p}/v1/health`), `port ${p} closed`);
    }
  }

  async function call(method, path, body) {
    const r = await api({ url: base() }, method, path, { token, body });
    return { ...r, node: r.headers.get('x-syncline-node') };
  }


  const lead = (mid, id) => ({ mid, op: 'insert', collection: 'leads', id, fields: { name: `Lead ${id}`, stage: 'new' } });
  const write = (mid, id) => call('POST', '/v1/mutations', { client: 'cluster-test', mutations: [lead(mid, id)] });
  const snapshotIds = async (where) => {
    const r = await call('GET', `/v1/snapshot?collections=leads&where=${encodeURIComponent(where)}`);
    assert.equal(r.status, 200, r.text);
    return r.json.docs.map((d) => d.id);
  };

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'syncline-cluster-test-'));
    const [balancer, stats, pg, ...nodes] = await freePorts(6);
    ports = { balancer, stats, pg, nodes };
    env = {
      ...process.env,
      SYNCLINE_CLUSTER_DATA: dataDir,
      SYNCLINE_CLUSTER_SKIP_BUILD: '1',
      SYNCLINE_CLUSTER_PORT: String(balancer),
      SYNCLINE_CLUSTER_STATS_PORT: String(stats),
      SYNCLINE_CLUSTER_PG_PORT: String(pg),
      SYNCLINE_CLUSTER_NODE_PORTS: nodes.join(' '),
    };
    cluster = startCluster();
    await cluster.ready;
  });

  after(async () => {
    // On failure too: nothing of the cluster may outlive the test.
    spawnSync('bash', [SCRIPT, 'stop'], { cwd: REPO_ROOT, env, stdio: 'ignore', timeout: 90000 });
    if (cluster && cluster.proc.exitCode === null && cluster.proc.signalCode === null) cluster.proc.kill('SIGKILL');
    if (process.env.SYNCLINE_TEST_LOGS && cluster) console.error(cluster.output);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('health through the balancer; every node answers in turn', async () => {
    const seen = new Set();
    for (let i = 0; i < 3; i++) {
      const r = await call('GET', '/v1/health');
      assert.equal(r.status, 200);
      assert.equal(r.json.status, 'ok');
      seen.add(r.node);
    }
    assert.deepEqual([...seen].sort(), ['node1', 'node2', 'node3'], 'round robin over the three nodes');
    const r = await call('POST', '/v1/demo/token', { sub: 'admin-cluster-test', role: 'admin' });
    assert.equal(r.status, 200, r.text);
    token = r.json.token;
    assert.match(cluster.output, /\[seed\] /, 'the demo was seeded');
  });

  test('the demo app loads through the balancer', { skip: !existsSync(join(STATIC, 'index.html')) && 'demo/dist not built' }, async () => {
    const r = await call('GET', '/');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.text, /<div id="root">/);
  });

  test('a write through the balancer is in a snapshot through the balancer', async () => {
    const w = await write(1, 'lead-cluster-1');
    assert.equal(w.status, 200, w.text);
    assert.equal(w.json.results[0].status, 'applied');
    // Three snapshots: one from each node (the database is shared, whoever wrote).
    for (let i = 0; i < 3; i++) assert.deepEqual(await snapshotIds('id=eq.lead-cluster-1'), ['lead-cluster-1']);
  });

  describe('streams through the balancer', () => {
    const streams = []; // { node, sse }
    let written; // the write's response

    before(async () => {
      // Three streams in a row: round robin puts one on each node.
      for (let i = 0; i < 3; i++) {
        const sse = new SseClient({ url: base() }, { token, collections: 'leads' });
        await sse.opened;
        assert.equal(sse.status, 200);
        streams.push({ node: sse.headers['x-syncline-node'], sse });
      }
      // The hello comes through at once: HAProxy does not buffer the stream.
      for (const { sse } of streams) await sse.waitFor((s) => s.events.some((e) => e.event === 'hello'), 2000, 'hello');
      assert.deepEqual(streams.map((s) => s.node).sort(), ['node1', 'node2', 'node3']);
      written = await write(2, 'lead-cluster-2');
      assert.equal(written.status, 200, written.text);
    });
    after(() => {
      for (const { sse } of streams) sse.close();
    });

    const gotIt = (sse) => sse.changes().some((c) => c.id === 'lead-cluster-2');

    test('SSE: the stream on the node that took the write gets the change at once', async () => {
      const { sse } = streams.find((s) => s.node === written.node);
      const t0 = Date.now();
      await sse.waitFor(gotIt, 5000, 'the change');
      assert.ok(Date.now() - t0 < 2000, `change after ${Date.now() - t0} ms`);
    });

    // Each node tails the shared log (LISTEN/NOTIFY): a write on one node reaches the streams
    // on the others, a moment later.
    test('SSE: the streams on the other nodes get the change within a few seconds', async () => {
      const others = streams.filter((s) => s.node !== written.node);
      assert.equal(others.length, 2);
      await Promise.all(others.map(({ node, sse }) => sse.waitFor(gotIt, 5000, `the change on ${node}`)));
    });

    test('WebSocket: upgrade, mutate and the change pass through', async () => {
      const ws = new WsClient({ port: ports.balancer }, { token, collections: 'leads' });
      let node;
      ws.ws.once('upgrade', (res) => (node = res.headers['x-syncline-node']));
      try {
        await ws.opened;
        assert.match(node, /^node[123]$/);
        await ws.waitFor((c) => c.of('hello').length > 0, 2000, 'hello');
        ws.send({ type: 'mutate', client: 'cluster-test-ws', mutations: [lead(1, 'lead-cluster-ws')] });
        await ws.waitFor((c) => c.of('results').length > 0, 5000, 'results');
        assert.equal(ws.of('results')[0].results[0].status, 'applied');
        await ws.waitFor((c) => c.of('change').some((m) => m.id === 'lead-cluster-ws'), 5000, 'the change');
      } finally {
        ws.close();
      }
    });
  });

  test('kill -9 of a node: writes through the balancer still succeed, HAProxy takes it out', async () => {
    const victim = clusterPids().node2;
    process.kill(victim, 'SIGKILL');
    const mids = [3, 4, 5, 6, 7, 8];
    for (const mid of mids) {
      const r = await write(mid, `lead-cluster-${mid}`);
      assert.equal(r.status, 200, `write ${mid}: ${r.text}`);
      assert.equal(r.json.results[0].status, 'applied');
      assert.notEqual(r.node, 'node2');
    }
    const ids = await snapshotIds(`id=in.(${mids.map((m) => `lead-cluster-${m}`).join(',')})`);
    assert.deepEqual(ids.sort(), mids.map((m) => `lead-cluster-${m}`).sort());
    // fall 2 x inter 500 ms: HAProxy marks it DOWN within about a second; `status` shows it.
    let status = '';
    for (let i = 0; i < 30 && !/node2 .*haproxy: DOWN/.test(status); i++) {
      await sleep(200);
      status = spawnSync('bash', [SCRIPT, 'status'], { cwd: REPO_ROOT, env, encoding: 'utf8' }).stdout;
    }
    assert.match(status, /node2 +not running.*haproxy: DOWN/);
    assert.match(status, /node1 +pid \d+.*healthy.*haproxy: UP/);
    await sleep(500);
    assert.match(cluster.output, /node2 \(port \d+\) exited \(killed by signal 9\)/);
  });

  test('cluster.sh stop stops everything; nothing is left', async () => {
    const pids = clusterPids();
    const r = spawnSync('bash', [SCRIPT, 'stop'], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 90000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(await cluster.exited, { code: 0, signal: null });
    await assertNothingLeft(pids);
  });

  test('a second start reuses PostgreSQL; Ctrl-C stops everything', async () => {
    cluster = startCluster();
    await cluster.ready;
    assert.match(cluster.output, /reusing the PostgreSQL cluster/);
    assert.deepEqual(await snapshotIds('id=eq.lead-cluster-1'), ['lead-cluster-1'], 'the data survived the restart');
    const pids = clusterPids();
    cluster.proc.kill('SIGINT');
    assert.deepEqual(await cluster.exited, { code: 0, signal: null });
    assert.match(cluster.output, /\[cluster\] stopped/);
    await assertNothingLeft(pids);
  });
});
