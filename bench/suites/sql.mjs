// Benchmark 8: live SQL (syncline/sqlite) in Chromium, via playwright-core.
// N bills and 500 customers on a real syncline-server; one page's client replicates them and
// attaches SQLite (its worker, OPFS). Each sample is one local write (an unpaid bill's total),
// timed in the page from the write until a view shows the new value:
//   - a live SQL statement (db.watch): filter + order + limit, and a join with group-by;
//   - the engine's own live query (client.query, filter + order + limit) and live aggregate
//     (client.aggregate grouped by customer_id: the engine has no join);
//   - plain JS recomputing the same two answers over plain objects (the change included).
// One view at a time, so samples do not compete; the server's confirmation of each write lands
// before the next sample.
import { chromium } from 'playwright-core';
import { fmt, ratio, summarize, target } from '../lib/common.mjs';
import { benchConfig, makeToken, postJson, startSynclineServer } from '../lib/servers.mjs';
import { PAGE_DIST } from './browser.mjs';

const CHROMIUM = process.env.SYNCLINE_CHROMIUM || '/usr/bin/chromium';
const CUSTOMERS = 500;
const FRAME_MS = 16;

/** Seeded documents: bills spread over customers, a quarter unpaid, integer totals (exact sums). */
function bill(i) {
  return { status: i % 4 === 0 ? 'unpaid' : 'paid', total: (i * 7919) % 100_000, customer_id: `c${i % CUSTOMERS}`, number: `N${i}`, note: `bill ${i}` };
}

async function seed(server, token, bills) {
  const docs = [];
  for (let i = 0; i < CUSTOMERS; i++) docs.push(['customers', `c${i}`, { name: `Customer ${String(i).padStart(3, '0')}`, tier: ['gold', 'silver', 'bronze'][i % 3] }]);
  for (let i = 0; i < bills; i++) docs.push(['bills', `b${String(i).padStart(6, '0')}`, bill(i)]);
  let mid = 0;
  for (let i = 0; i < docs.length; i += 5000) {
    const mutations = docs.slice(i, i + 5000).map(([collection, id, fields]) => ({ mid: ++mid, op: 'insert', collection, id, fields }));
    await postJson(`${server.url}/v1/mutations`, { client: 'sql-seeder', mutations }, token);
  }
}

export async function run({ quick }) {
  const bills = quick ? 5000 : 50_000;
  const samples = quick ? 8 : 30;
  const config = benchConfig();
  config.collections.customers = { read: { admin: 'all' }, write: { admin: 'all' } };
  const server = await startSynclineServer({ config, staticDir: PAGE_DIST });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows'],
  });
  const times = {};
  let started;
  let plan;
  try {
    const token = makeToken('sql-bench', 'admin');
    await seed(server, token, bills);
    const page = await (await browser.newContext()).newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e));
    await page.goto(`${server.url}/sql.html`);
    await page.waitForFunction(() => window.sqlBench?.ready === true);
    // SYNCLINE_BENCH_SQL_STORAGE=memory: the same with SQLite in memory instead of OPFS.
    started = await page.evaluate(([o, e, st]) => window.sqlBench.start(o, e, st), [
      { url: server.url, token, collections: ['bills', 'customers'], persistence: 'memory', multiTab: false },
      { bills, customers: CUSTOMERS },
      process.env.SYNCLINE_BENCH_SQL_STORAGE === 'memory' ? 'memory' : 'auto',
    ]);
    plan = await page.evaluate(() => window.sqlBench.plan());
    await page.evaluate(() => window.sqlBench.plainSetup());
    const kinds = ['sql-top', 'engine-top', 'plain-top', 'sql-join', 'engine-join', 'plain-join'];
    for (const k of kinds) times[k] = [];
    times['query-top'] = [];
    times['query-join'] = [];
    times.applied = [];
    // Warm-up (JIT, SQLite's page cache, the statement cache), then the samples, interleaved
    // so that a slow moment of the machine hits every view alike.
    for (let i = -3; i < samples; i++) {
      for (const k of kinds) {
        const p = await page.evaluate((n) => window.sqlBench.pick(n), i + 100);
        const total = 200_000 + (i + 10) * 1000 + kinds.indexOf(k);
        const ms = k.startsWith('plain')
          ? await page.evaluate(([kk, id, t]) => window.sqlBench.plainSample(kk, id, t), [k, p.id, total])
          : await page.evaluate(([kk, id, t]) => window.sqlBench.sample(kk, id, t), [k, p.id, total]);
        if (i >= 0) times[k].push(ms);
      }
      const p = await page.evaluate((n) => window.sqlBench.pick(n), i + 100);
      const applied = await page.evaluate(([id, t]) => window.sqlBench.applied(id, t), [p.id, 300_000 + i]);
      if (i >= 0) times.applied.push(applied);
      for (const w of ['top', 'join']) {
        const ms = await page.evaluate((x) => window.sqlBench.queryOnce(x), w);
        if (i >= 0) times[`query-${w}`].push(ms);
      }
    }
    if (errors.length) throw new Error(`page error: ${errors[0]}`);
    await page.evaluate(() => window.sqlBench.close());
  } finally {
    await browser.close().catch(() => {});
    await server.stop();
  }
  const s = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, summarize(v)]));
  const row = (label, k, vs) => [label, s[k].n, s[k].p50, s[k].p99, s[k].max, vs ? ratio(s[k].p50, s[vs].p50) : ''];
  const topOk = s['sql-top'].p50 <= FRAME_MS;
  const joinOk = s['sql-join'].p50 <= FRAME_MS;
  return {
    id: 'sql',
    title: '8. Live SQL in Chromium',
    setup: `${fmt(bills)} bills and ${CUSTOMERS} customers replicated by a real client (syncline-server on loopback), SQLite attached (syncline/sqlite, SQLite ${started.info.sqliteVersion}, storage ${started.info.storage}${started.info.fallbackReason ? ` (${started.info.fallbackReason})` : ''}; attachSql on the replicated client until \`ready\`: ${fmt(started.readyMs)} ms, until a query saw every document: ${fmt(started.attachMs)} ms). Declared columns status, total, customer_id, name; indexes bills(status, total), bills(customer_id, total), customers(name, id). ${samples} samples per view (after 3 warm-up), each one local write of an unpaid bill's total, timed in the page from the write until the view shows the new value; one view at a time. Top 50: \`${'status = unpaid ORDER BY total DESC LIMIT 50'}\` (SQL plan: ${plan.top}). Group-by join: revenue and bill count per customer name, bills JOIN customers (SQL plan: ${plan.join}); the engine has no join, so its row is a live aggregate grouped by customer_id. Plain JS: filter/sort/slice and a Map group-by over ${fmt(bills)} plain objects, change included (no rendering, no data access).`,
    tables: [{
      columns: ['view', 'samples', 'p50 ms', 'p99 ms', 'max ms', 'vs the engine'],
      rows: [
        row('live SQL: filter + order + limit 50 (write -> new result)', 'sql-top', 'engine-top'),
        row('  engine live query (client.query, same filter/order/limit)', 'engine-top', 'engine-top'),
        row('  plain JS recompute (filter + sort + slice)', 'plain-top', 'engine-top'),
        row('  the statement alone through db.query (page -> worker -> page)', 'query-top'),
        row('  write -> its batch applied in the worker (a query queued behind it answers)', 'applied'),
        row('live SQL: join + group-by (write -> new result)', 'sql-join', 'engine-join'),
        row('  engine live aggregate (group by customer_id, no join)', 'engine-join', 'engine-join'),
        row('  plain JS recompute (Map join + group-by + sort)', 'plain-join', 'engine-join'),
        row('  the statement alone through db.query (page -> worker -> page)', 'query-join'),
      ],
    }],
    metrics: { bills, samples, readyMs: started.readyMs, attachMs: started.attachMs, storage: started.info.storage, plan, ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.p50])) },
    targets: [
      target(`Live SQL filter + order + limit refreshes within one frame (${FRAME_MS} ms) of a change, ${fmt(bills)} documents (p50)`, topOk,
        `${fmt(s['sql-top'].p50)} ms p50, ${fmt(s['sql-top'].p99)} ms p99${topOk ? '' : ` (over by ${fmt(s['sql-top'].p50 - FRAME_MS)} ms)`}`),
      target(`Live SQL join + group-by refreshes within one frame (${FRAME_MS} ms) of a change, ${fmt(bills)} documents (p50)`, joinOk,
        `${fmt(s['sql-join'].p50)} ms p50, ${fmt(s['sql-join'].p99)} ms p99${joinOk ? '' : ` (over by ${fmt(s['sql-join'].p50 - FRAME_MS)} ms, ${fmt(s['sql-join'].p50 / FRAME_MS, 2)}x)`}`),
    ],
  };
}
