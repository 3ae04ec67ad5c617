// Layer: tests/chaos. Stream resume (issue 7, suite 3), bounded: SSE and WebSocket streams cut
// by the nemesis proxy after a random number of bytes (usually mid-frame), over and over, while
// a writer commits inserts, patches and deletes. Raw protocol consumers resume with `cursor`
// (SSE also with Last-Event-ID): every one must see exactly the writer's log, seq after seq, no
// gap, no repeat. Two real runtime clients (one per transport) stream through the same proxy;
// one is taken offline until its cursor is older than log_retention: it must get `reset`,
// re-snapshot and converge (a silent gap would leave deleted documents behind). Seeded.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import './lib/server-bin.mjs';
import { api, makeToken, SseClient, sleep, snapshotAll, startServer, WsClient } from '../server/helpers.mjs';
import { chaosConfig } from './harness.mjs';
import { ChaosProxy } from './lib/proxy.mjs';
import { rng } from './lib/rng.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const env = process.env;
const SECONDS = Number(env.CHAOS_RESUME_SECONDS || 30);
const RETENTION = 300;
const COLLS = ['bills', 'products', 'bookings'];

function consumer(kind, target, token, { useLastEventId = false } = {}) {
  const c = { kind, changes: [], cursor: 0, connects: 0, gaps: [], repeats: 0, resets: 0, stop: false };
  c.done = (async () => {
    while (!c.stop) {
      c.connects++;
      const opts = { token, collections: COLLS.join(',') };
      if (useLastEventId) opts.lastEventId = c.cursor;
      else opts.cursor = c.cursor;
      const s = kind === 'sse' ? new SseClient(target, opts) : new WsClient(target, opts);
      c.close = () => s.close();
      try {
        await s.opened;
        let seen = 0;
        await new Promise((res) => {
          const check = () => {
            const list = kind === 'sse' ? s.events.map((e) => ({ type: e.event, ...(e.json ?? {}) })) : s.messages;
            for (; seen < list.length; seen++) {
              const m = list[seen];
              if (m.type === 'reset') c.resets++;
              if (m.type !== 'change') continue;
              if (m.seq <= c.cursor) c.repeats++;
              else {
                if (m.seq !== c.cursor + 1) c.gaps.push(`${c.cursor} -> ${m.seq}`);
                c.changes.push(m);
                c.cursor = m.seq;
              }
            }
            if ((kind === 'sse' ? s.closed : s.closeInfo) || c.stop) res();
          };
          s.waiters.push(check);
          check();
        });
      } catch {
        /* refused or cut before the response */
      } finally {
        s.close();
      }
      await sleep(5);
    }
  })();
  return c;
}

function runtimeClient(idx, url, token, storageDir, transport) {
  const cfg = { idx, seed: 'resume', incarnation: 1, url, token, sub: `rt-${idx}`, role: 'admin', transport, storageDir, collections: COLLS, customers: ['c'], readOnly: true, fsync: false };
  const proc = fork(join(here, 'client.mjs'), [JSON.stringify(cfg)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const waiters = new Map();
  let req = 0;
  const errors = [];
  const ready = new Promise((res) => proc.on('message', (m) => {
    if (m.t === 'ready') res(m);
    else if (m.t === 'error') errors.push(m.message);
    else if (waiters.has(m.req)) waiters.get(m.req)(m);
  }));
  return {
    proc, ready, errors,
    tell: (cmd) => proc.send({ cmd }),
    ask: (cmd) => new Promise((res) => {
      const r = ++req;
      waiters.set(r, res);
      proc.send({ cmd, req: r });
    }),
  };
}

test('stream resume: thousands of mid-frame cuts, nothing missed or repeated; expired cursors reset', { timeout: 300000 }, async () => {
  const seed = env.CHAOS_SEED || String(Date.now());
  const r = rng(`${seed}/resume`);
  const dir = mkdtempSync(join(tmpdir(), 'syncline-resume-'));
  const server = await startServer({ config: chaosConfig({ logRetention: RETENTION }), dir: join(dir, 'srv') });
  const proxy = new ChaosProxy({ targetPort: server.port, rng: rng(`${seed}/resume-proxy`) });
  proxy.p = { dropResponse: 0, duplicateRequest: 0, streamCut: 1, streamCutMaxBytes: 8000 };
  await proxy.listen();
  const target = { url: `http://127.0.0.1:${proxy.port}`, port: proxy.port };
  const admin = makeToken('resume-admin', 'admin');
  const consumers = [consumer('sse', target, admin), consumer('sse', target, admin, { useLastEventId: true }), consumer('ws', target, admin), consumer('ws', target, admin)];
  const rts = [
    runtimeClient(0, target.url, makeToken('rt-0', 'admin'), join(dir, 'rt0'), 'websocket'),
    runtimeClient(1, target.url, makeToken('rt-1', 'admin'), join(dir, 'rt1'), 'sse'),
  ];
  const bySeq = new Map();
  let mid = 0;
  const live = [];
  try {
    await Promise.all(rts.map((c) => c.ready));
    const end = Date.now() + SECONDS * 1000;
    let offlineDone = false;
    rts[1].tell('offline');
    const offlineFrom = (await api(server, 'GET', '/v1/health')).json.seq;
    while (Date.now() < end) {
      const muts = [];
      for (let i = 0, n = r.int(1, 4); i < n; i++) {
        const roll = r.next();
        if (roll < 0.5 || live.length < 5) {
          const id = `r-${seed}-${mid + 1}`.replace(/[^A-Za-z0-9_.:-]/g, '');
          muts.push({ mid: ++mid, op: 'insert', collection: 'bills', id, fields: { customer_id: 'c', amount: r.int(1, 999), pad: 'x'.repeat(r.int(0, 400)) } });
          live.push(id);
        } else if (roll < 0.8) {
          muts.push({ mid: ++mid, op: 'update', collection: 'bills', id: r.pick(live), fields: { amount: r.int(1, 999) } });
        } else {
          const k = r.int(0, live.length - 1);
          muts.push({ mid: ++mid, op: 'delete', collection: 'bills', id: live[k] });
          live.splice(k, 1);
        }
      }
      const res = await api(server, 'POST', '/v1/mutations', { token: admin, body: { client: `resume-writer-${seed}`, mutations: muts } });
      assert.equal(res.status, 200, res.text);
      res.json.results.forEach((x, i) => {
        if (x.status === 'applied') bySeq.set(x.seq, muts[i]);
      });
      if (!offlineDone && res.json.seq > offlineFrom + RETENTION * 1.5) {
        rts[1].tell('online'); // its cursor is now older than the retained log
        offlineDone = true;
      }
      if (r.chance(0.2)) proxy.cutRandom(1);
      await sleep(r.int(20, 80));
    }
    if (!offlineDone) rts[1].tell('online');
    const head = (await api(server, 'GET', '/v1/health')).json.seq;
    proxy.faults = false;
    const deadline = Date.now() + 60000;
    while (consumers.some((c) => c.cursor < head) && Date.now() < deadline) await sleep(100);
    for (const c of consumers) {
      assert.equal(c.cursor, head, `${c.kind} consumer stopped at ${c.cursor}, head ${head}`);
      assert.deepEqual(c.gaps, [], `${c.kind} consumer saw gaps (seed ${seed})`);
      assert.equal(c.repeats, 0, `${c.kind} consumer saw repeats (seed ${seed})`);
      for (const ch of c.changes) {
        const m = bySeq.get(ch.seq);
        assert.ok(m, `seq ${ch.seq} not written by the writer`);
        assert.equal(ch.id, m.id);
        assert.equal(ch.op, m.op);
      }
    }
    // Runtime replicas converge to the server (the offline one through reset + re-snapshot).
    const server_ = await Promise.all(COLLS.map((c) => snapshotAll(server, admin, { collections: c, limit: 5000 })));
    const want = JSON.stringify(server_.map((s) => s.docs.map((d) => [d.id, d.version]).sort()));
    for (const [i, c] of rts.entries()) {
      let got;
      const until = Date.now() + 60000;
      for (;;) {
        const d = await c.ask('dump');
        got = JSON.stringify(COLLS.map((col) => d.docs[col].map((x) => [x.id, x.version]).sort()));
        if (got === want || Date.now() > until) break;
        await sleep(250);
      }
      assert.equal(got, want, `runtime client ${i} did not converge (seed ${seed})`);
      assert.deepEqual(c.errors, []);
    }
    // An expired cursor always gets reset.
    const old = new SseClient(server, { token: admin, cursor: 1, collections: COLLS.join(',') });
    await old.waitFor((s) => s.events.some((e) => e.event === 'reset'), 5000, 'reset');
    assert.equal(old.events.find((e) => e.event === 'reset').json.reason, 'cursor_expired');
    old.close();
    const m = await (await fetch(`${server.url}/metrics`)).text();
    const resets = Number(/syncline_resets_total (\d+)/.exec(m)?.[1] ?? 0);
    const cuts = consumers.reduce((a, c) => a + c.connects - 1, 0);
    console.log(`stream resume figures: ${JSON.stringify({ seed, seconds: SECONDS, head, changes_checked_per_consumer: head, consumer_reconnects_after_cuts: cuts, proxy: proxy.stats, server_resets: resets })}`);
    assert.ok(resets >= 2, 'the offline runtime client and the stale cursor were reset');
    assert.ok(cuts >= 200, `too few cuts: ${cuts}`);
  } finally {
    for (const c of consumers) {
      c.stop = true;
      c.close?.();
    }
    for (const c of rts) c.proc.kill('SIGKILL');
    await proxy.close().catch(() => {});
    await server.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
