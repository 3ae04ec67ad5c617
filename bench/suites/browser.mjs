// Benchmarks 4 and 5 (Chromium via playwright-core, Debian's /usr/bin/chromium).
// 4. End to end: a mutation in tab A until tab B's live query renders it (query subscription
//    -> DOM text written), p50/p99. Clock: performance.timeOrigin + performance.now() in both
//    pages of one browser. (a) through the server: A and B in two browser contexts (separate
//    storage, each tab its own connection); (b) between tabs of one browser context (shared
//    IndexedDB/BroadcastChannel/Web Locks: one leader owns the connection, the other follows).
// 5. Cold start: N documents persisted in IndexedDB by a real client; reload; time until the
//    first live-query result (where + orderBy + limit 50), from navigation start. Peer: Dexie
//    (bulkPut of the same documents) plain read of the table (toArray) after a reload.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BENCH_DIR, fmt, ratio, sleep, summarize, target } from '../lib/common.mjs';
import { makeDocs } from '../lib/data.mjs';
import { makeToken, postJson, startSynclineServer } from '../lib/servers.mjs';

export const PAGE_DIST = join(BENCH_DIR, 'browser', 'dist');
const CHROMIUM = process.env.SYNCLINE_CHROMIUM || '/usr/bin/chromium';

async function launch() {
  const userDataDir = mkdtempSync(join(tmpdir(), 'syncline-bench-chromium-'));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows'],
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

async function openPage(context, server, query = 'mode=drive') {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  page.errors = errors;
  await page.goto(`${server.url}/index.html?${query}`);
  await page.waitForFunction(() => window.bench && window.bench.ready === true);
  return page;
}

async function until(fn, timeout, what) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeout) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function latencyRun(writer, reader, samples, tag, phases = null) {
  const lat = [];
  for (let i = 0; i < samples; i++) {
    const id = `e${tag}${i}`;
    await reader.evaluate((x) => window.bench.watch(x), id);
    const t0 = await writer.evaluate(([x, n]) => window.bench.write(x, n), [id, i]);
    const seen = await until(() => reader.evaluate((x) => window.bench.seenAt(x), id), 10000, `tab B to render ${id}`);
    lat.push(seen - t0);
    await sleep(15);
    if (phases) {
      const ph = await writer.evaluate((x) => window.bench.phases(x), id);
      if (ph?.local !== undefined) phases.local.push(ph.local);
      if (ph?.ack !== undefined) phases.ack.push(ph.ack);
    }
  }
  return lat;
}

async function endToEnd(browser, server, { samples }) {
  const token = makeToken('e2e', 'admin');
  const opts = (transport) => ({ url: server.url, token, collections: ['bills'], transport, persistence: 'indexeddb' });
  const rows = [];
  // (a) through the server: two contexts, each tab its own client + connection.
  for (const transport of ['sse', 'websocket']) {
    const ca = await browser.newContext();
    const cb = await browser.newContext();
    try {
      const a = await openPage(ca, server);
      const b = await openPage(cb, server);
      await a.evaluate((o) => window.bench.start(o), opts(transport));
      await b.evaluate((o) => window.bench.start(o), opts(transport));
      await until(() => a.evaluate(() => window.bench.connected()), 10000, 'tab A connected');
      await until(() => b.evaluate(() => window.bench.connected()), 10000, 'tab B connected');
      await latencyRun(a, b, 5, `w${transport}`); // warm-up
      const ph = { local: [], ack: [] };
      const lat = await latencyRun(a, b, samples, `x${transport}`, ph);
      rows.push({ path: `through the server (${transport.toUpperCase()}), two browser contexts`, kind: 'server', ...summarize(lat) });
      rows.push({ path: `  tab A: write -> outbox durable in IndexedDB (${transport.toUpperCase()})`, kind: 'phase', ...summarize(ph.local) });
      rows.push({ path: `  tab A: write -> server ack (${transport.toUpperCase()})`, kind: 'phase', ...summarize(ph.ack) });
      if (a.errors.length || b.errors.length) throw new Error(`page error: ${a.errors[0] ?? b.errors[0]}`);
      await a.evaluate(() => window.bench.close());
      await b.evaluate(() => window.bench.close());
    } finally {
      await ca.close();
      await cb.close();
    }
  }
  // (b) between tabs of one browser context: leader + follower.
  const ctx = await browser.newContext();
  try {
    const a = await openPage(ctx, server);
    await a.evaluate((o) => window.bench.start(o), opts('sse'));
    await until(() => a.evaluate(() => window.bench.role() === 'leader' && window.bench.connected()), 10000, 'tab A to lead');
    const b = await openPage(ctx, server);
    await b.evaluate((o) => window.bench.start(o), opts('sse'));
    await sleep(500);
    await latencyRun(a, b, 5, 'wtabs');
    const lf = await latencyRun(a, b, samples, 'xlf');
    const fl = await latencyRun(b, a, samples, 'xfl');
    rows.push({ path: 'between tabs of one browser: leader writes, follower renders', kind: 'tabs', ...summarize(lf) });
    rows.push({ path: 'between tabs of one browser: follower writes, leader renders', kind: 'tabs', ...summarize(fl) });
    if (a.errors.length || b.errors.length) throw new Error(`page error: ${a.errors[0] ?? b.errors[0]}`);
    await b.evaluate(() => window.bench.close());
    await a.evaluate(() => window.bench.close());
  } finally {
    await ctx.close();
  }
  return rows;
}

async function coldStart(browser, server, { docs, reloads }) {
  const token = makeToken('cold', 'admin');
  // Seed the server (one batch = one request of up to 5,000 inserts).
  const data = makeDocs(docs, 5);
  let mid = 0;
  for (let i = 0; i < data.length; i += 5000) {
    const mutations = data.slice(i, i + 5000).map((d) => ({ mid: ++mid, op: 'insert', collection: 'items', id: d.id, fields: d.fields }));
    await postJson(`${server.url}/v1/mutations`, { client: 'seeder', mutations }, token);
  }
  const ctx = await browser.newContext();
  const out = { syncline: [], synclineFromScript: [], dexie: [], dexieTop: [], dexieIndexed: [], createClient: [] };
  try {
    // Persist through the real client: snapshot from the server, flushed to IndexedDB on close.
    const seedPage = await openPage(ctx, server);
    const n = await seedPage.evaluate(([o, expected]) => window.bench.seedSyncline(o, expected), [{ url: server.url, token, collections: ['items'], persistence: 'indexeddb' }, docs]);
    if (n !== docs) throw new Error(`seeded ${n} of ${docs} documents`);
    const nd = await seedPage.evaluate((d) => window.bench.seedDexie(d), data);
    if (nd !== docs) throw new Error(`Dexie seeded ${nd} of ${docs}`);
    await seedPage.close();
    const measure = async (query) => {
      const p = await openPage(ctx, server, query);
      const r = await until(() => p.evaluate(() => window.bench.result), 60000, `${query} result`);
      if (r.error) throw new Error(`${query}: ${r.error}`);
      if (p.errors.length) throw new Error(`page error: ${p.errors[0]}`);
      await sleep(200);
      await p.close();
      return r;
    };
    await measure(`mode=cold&token=${token}`); // warm-up (OS file cache, code cache)
    await measure('mode=dexie');
    await measure('mode=dexie-top');
    for (let i = 0; i < reloads; i++) {
      const s = await measure(`mode=cold&token=${token}`);
      if (s.docs !== 50) throw new Error(`cold start: query returned ${s.docs} docs`);
      out.syncline.push(s.fromNavigation);
      out.synclineFromScript.push(s.fromScript);
      out.createClient.push(s.createClient);
      const t = await measure('mode=dexie-top');
      if (t.count !== 50) throw new Error(`Dexie's indexed query returned ${t.count} docs`);
      out.dexieIndexed.push(t.fromNavigation);
      const d = await measure('mode=dexie');
      if (d.count !== docs) throw new Error(`Dexie read ${d.count} docs`);
      out.dexie.push(d.fromNavigation);
      out.dexieTop.push(d.topMs);
    }
  } finally {
    await ctx.close();
  }
  return out;
}

export async function run({ quick }) {
  if (!existsSync(join(PAGE_DIST, 'index.html'))) throw new Error(`bench page not built: ${PAGE_DIST}`);
  const samples = quick ? 20 : 200;
  const docs = quick ? 5000 : 50_000;
  const reloads = quick ? 2 : 5;
  const server = await startSynclineServer({ staticDir: PAGE_DIST });
  const { browser, close } = await launch();
  let e2e;
  let cold;
  try {
    e2e = await endToEnd(browser, server, { samples });
    cold = await coldStart(browser, server, { docs, reloads });
  } finally {
    await close();
    await server.stop();
  }
  const med = (xs) => summarize(xs).p50;
  const sCold = med(cold.syncline);
  const dCold = med(cold.dexie);
  const dTop = med(cold.dexieIndexed);
  const sScript = med(cold.synclineFromScript);
  const sReady = med(cold.createClient);
  const srv = e2e.filter((r) => r.kind === 'server');
  const tabs = e2e.filter((r) => r.kind === 'tabs');
  const worstSrvP50 = Math.max(...srv.map((r) => r.p50));
  const worstSrvP99 = Math.max(...srv.map((r) => r.p99));
  const worstTabs = Math.max(...tabs.map((r) => r.p50));
  return [
    {
      id: 'e2e',
      title: '4. End to end in Chromium',
      setup: `${samples} sequential inserts in tab A (15 ms apart, after 5 warm-up), each timed until tab B's live query subscription has written it into the DOM. Real client (createClient, IndexedDB persistence), real syncline-server on loopback serving the page. Headless Chromium, one machine.`,
      tables: [{ columns: ['path', 'samples', 'p50 ms', 'p99 ms', 'max ms'], rows: e2e.map((r) => [r.path, r.n, r.p50, r.p99, r.max]) }],
      metrics: { rows: e2e },
      targets: [
        target('End to end through the server: p50 < 5 ms', worstSrvP50 < 5, `worst transport p50 ${fmt(worstSrvP50)} ms${worstSrvP50 < 5 ? '' : ` (over by ${fmt(worstSrvP50 - 5)} ms)`}`),
        target('End to end through the server: p99 < 20 ms', worstSrvP99 < 20, `worst transport p99 ${fmt(worstSrvP99)} ms${worstSrvP99 < 20 ? '' : ` (over by ${fmt(worstSrvP99 - 20)} ms)`}`),
        target('Between tabs: < 2 ms (p50)', worstTabs < 2, `worst direction p50 ${fmt(worstTabs)} ms${worstTabs < 2 ? '' : ` (over by ${fmt(worstTabs - 2)} ms, ${fmt(worstTabs / 2, 1)}x)`}`),
      ],
    },
    {
      id: 'cold',
      title: '5. Cold start in Chromium',
      setup: `${fmt(docs)} documents persisted in IndexedDB by a real client (snapshot from the server, flushed on close); each measurement is a fresh page load (same origin, warm OS cache), median of ${reloads}. syncline: navigation start -> first result of the live query \`status=eq.unpaid\` order \`total.desc\` limit 50 (includes loading the wasm, reading IndexedDB, restoring the replica); "from page script" counts from the page's script start instead. Dexie, the same ${fmt(docs)} documents in their own database: navigation start -> the same top 50 through its \`[status+total]\` index (what an app does at start), and -> \`db.bills.toArray()\` of everything (informative).`,
      tables: [
        {
          columns: ['peer', 'median ms', 'min ms', 'max ms', 'vs Dexie indexed top 50'],
          rows: [
            ['syncline: first live-query result (from navigation)', sCold, Math.min(...cold.syncline), Math.max(...cold.syncline), ratio(sCold, dTop)],
            ['  the same, from page script', sScript, Math.min(...cold.synclineFromScript), Math.max(...cold.synclineFromScript), ''],
            ['  of which createClient() (whole replica ready: IndexedDB load + restore)', sReady, Math.min(...cold.createClient), Math.max(...cold.createClient), ''],
            ['Dexie: indexed top-50 query (from navigation)', dTop, Math.min(...cold.dexieIndexed), Math.max(...cold.dexieIndexed), '1.00x'],
            ['Dexie: plain read of all documents (from navigation, informative)', dCold, Math.min(...cold.dexie), Math.max(...cold.dexie), ratio(dCold, dTop)],
            ['Dexie: indexed top-50 query after that read (informative)', med(cold.dexieTop), Math.min(...cold.dexieTop), Math.max(...cold.dexieTop), ''],
          ],
        },
      ],
      metrics: cold,
      targets: [
        target('Cold start: first live-query result <= page load + 50 ms', sScript <= 50, `${fmt(sScript)} ms after the page's script started${sScript <= 50 ? '' : ` (over by ${fmt(sScript - 50)} ms)`}`),
        target("Cold start: first live-query result within 1.2x of Dexie's indexed top 50", sCold <= 1.2 * dTop, `${fmt(sCold)} ms vs ${fmt(dTop)} ms (${ratio(sCold, dTop)})`),
        target(`Cold start: whole replica ready < 300 ms (${fmt(docs)} documents)`, sReady < 300, `${fmt(sReady)} ms${sReady < 300 ? '' : ` (over by ${fmt(sReady - 300)} ms, ${fmt(sReady / 300, 2)}x)`}`),
      ],
    },
  ];
}
