// End-to-end: syncline/sqlite in real Chromium against a real server on loopback. SQLite runs
// in the page's dedicated worker, in OPFS; every collection is a table showing the optimistic
// view: a join with group-by over two collections, a live statement (useSql) that follows
// another tab's write and the rollback of a rejected pending write, in the leader tab and in a
// follower tab alike, and `sql_error` with SQLite's message for a statement it refuses.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAppServer, launchBrowser, openHarness, clientOptions, waitFor, makeToken, api, testConfig } from './helpers.mjs';

const admin = makeToken('admin-sql', 'admin');
const other = makeToken('admin-sql-other', 'admin');
const SCHEMA = { bills: { total: 'real', customer_id: 'text' }, customers: { name: 'text' } };
const REPORT = `SELECT c.name AS name, count(*) AS bills, sum(b.total) AS revenue
  FROM bills b JOIN customers c ON c.id = b.customer_id GROUP BY c.name ORDER BY c.name`;

/** Writes straight to the server as another client: what the tabs receive from the stream. */
async function seed(server, prefix) {
  const docs = [
    ['customers', `${prefix}-c1`, { name: `${prefix} Ada` }],
    ['customers', `${prefix}-c2`, { name: `${prefix} Bo` }],
    ['bills', `${prefix}-b1`, { total: 10, customer_id: `${prefix}-c1`, number: `${prefix}-1` }],
    ['bills', `${prefix}-b2`, { total: 5.5, customer_id: `${prefix}-c1`, number: `${prefix}-2` }],
    ['bills', `${prefix}-b3`, { total: 7, customer_id: `${prefix}-c2`, number: `${prefix}-3` }],
  ];
  const r = await api(server, 'POST', '/v1/mutations', {
    token: other, body: { client: `${prefix}-seed`, mutations: docs.map(([collection, id, fields], i) => ({ mid: i + 1, op: 'insert', collection, id, fields })) },
  });
  assert.ok(r.json.results.every((x) => x.status === 'applied'), JSON.stringify(r.json));
}

/** The report restricted to one test's customers (other tests' rows share the tables). */
const reportOf = (rows, prefix) => rows.filter((r) => r.name.startsWith(prefix));

async function openSql(ctx, server, prefix, live = { sql: REPORT }) {
  const page = await openHarness(ctx, server, null, 'sql.html');
  const opts = clientOptions(server, admin, { collections: ['bills', 'customers', 'products'], name: `sql-${prefix}` });
  page.started = await page.evaluate(([o, s, l]) => window.sqlHarness.start(o, s, l), [opts, { schema: SCHEMA }, live]);
  return page;
}

const liveRows = (page) => page.evaluate(() => JSON.parse(window.sqlHarness.lastRender()?.rows ?? '[]'));

describe('SQL over the replica (syncline/sqlite)', () => {
  let server;
  let chrome;
  before(async () => {
    // A bill number is unique on the server (the client does not know): a duplicate is shown
    // while pending, then refused with `constraint` and rolled back.
    const config = testConfig({ collections: { bills: { read: { admin: 'all' }, write: { admin: 'all' }, unique: [['number']] } } });
    server = await startAppServer({ config });
    chrome = await launchBrowser();
  });
  after(async () => {
    await chrome?.close();
    await server?.cleanup();
  });
  /** Runs `fn` in a fresh browser context (its own OPFS, storage and tabs), closed after. */
  const inContext = async (fn) => {
    const ctx = await chrome.browser.newContext();
    try {
      await fn(ctx);
    } finally {
      await ctx.close();
    }
  };

  test('a join with group-by over two collections, in OPFS; frozen results; sql_error for what SQLite refuses', () => inContext(async (ctx) => {
    await seed(server, 'q');
    const page = await openSql(ctx, server, 'q');
    assert.equal(page.started.info.storage, 'opfs', `SQLite in OPFS (${page.started.info.fallbackReason ?? ''})`);
    assert.match(page.started.info.sqliteVersion, /^3\.\d+\.\d+$/);
    assert.ok(page.started.sameDb, 'attachSql gives a client one database');
    const expected = [{ name: 'q Ada', bills: 2, revenue: 15.5 }, { name: 'q Bo', bills: 1, revenue: 7 }];
    const r = await waitFor(page, async (sql) => {
      const r = await window.sqlHarness.query(sql);
      return r.ok && r.rows.filter((x) => x.name.startsWith('q ')).length === 2 ? r : null;
    }, REPORT, { what: 'the seeded documents in SQL' });
    assert.deepEqual(reportOf(r.rows, 'q '), expected);
    assert.deepEqual(r.columns, ['name', 'bills', 'revenue']);
    assert.deepEqual(r.tables, ['bills', 'customers'], 'the tables the statement reads');
    assert.ok(r.frozen, 'result rows are frozen');
    assert.deepEqual(reportOf(await liveRows(page), 'q '), expected, 'useSql shows the same');

    // Parameters, the fixed columns, and the fields JSON column.
    const p = await page.evaluate(() => window.sqlHarness.query(
      "SELECT id, version, pending, fields ->> '$.number' AS number FROM bills WHERE total > ? AND id LIKE 'q-%' ORDER BY id", [6]));
    const version = (id) => page.evaluate((id) => window.sqlHarness.get('bills', id).version, id);
    assert.deepEqual(p.rows, [
      { id: 'q-b1', version: await version('q-b1'), pending: 0, number: 'q-1' },
      { id: 'q-b3', version: await version('q-b3'), pending: 0, number: 'q-3' },
    ]);
    assert.ok(p.rows.every((r) => r.version > 0));

    const bad = await page.evaluate(() => window.sqlHarness.query('SELECT nope FROM bills'));
    assert.deepEqual(bad, { ok: false, code: 'sql_error', message: 'no such column: nope' });
    const syntax = await page.evaluate(() => window.sqlHarness.query('SELEC 1'));
    assert.deepEqual(syntax, { ok: false, code: 'sql_error', message: 'near "SELEC": syntax error' });
    const write = await page.evaluate(() => window.sqlHarness.query("DELETE FROM bills WHERE id = 'q-b1'"));
    assert.equal(write.code, 'sql_error');
    assert.match(write.message, /read-only/);
    const still = await page.evaluate(() => window.sqlHarness.query("SELECT count(*) AS n FROM bills WHERE id LIKE 'q-%'"));
    assert.deepEqual(still.rows, [{ n: 3 }], 'the refused statement changed nothing');
    assert.deepEqual(page.errors, []);
  }));

  test("a live statement follows another tab's write and a rejected pending write's rollback, in leader and follower", () => inContext(async (ctx) => {
    await seed(server, 'l');
    const a = await openSql(ctx, server, 'l');
    await waitFor(a, () => window.sqlHarness.status().role === 'leader' && window.sqlHarness.status().isConnected, null, { what: 'a leads' });
    const b = await openSql(ctx, server, 'l');
    await waitFor(b, () => window.sqlHarness.status().role === 'follower', null, { what: 'b follows' });
    assert.equal(b.started.info.storage, 'opfs', `the follower's SQLite in OPFS too (${b.started.info.fallbackReason ?? ''})`);
    const report = (page) => liveRows(page).then((rows) => reportOf(rows, 'l '));
    const shows = async (page, expected, what) => {
      await waitFor(page, ([exp]) => {
        const rows = JSON.parse(window.sqlHarness.lastRender()?.rows ?? '[]').filter((r) => r.name.startsWith('l '));
        return JSON.stringify(rows) === JSON.stringify(exp);
      }, [expected], { what });
    };
    const start = [{ name: 'l Ada', bills: 2, revenue: 15.5 }, { name: 'l Bo', bills: 1, revenue: 7 }];
    await shows(a, start, 'the report in the leader');
    await shows(b, start, 'the report in the follower');

    // A write in the follower tab shows in the leader's live statement (and its own).
    await b.evaluate(() => window.sqlHarness.write('insert', 'bills', 'l-b4', { total: 100, customer_id: 'l-c2' }));
    const afterInsert = [{ name: 'l Ada', bills: 2, revenue: 15.5 }, { name: 'l Bo', bills: 2, revenue: 107 }];
    await shows(a, afterInsert, "the other tab's write in the leader");
    await shows(b, afterInsert, 'its own write in the follower');

    // A change to a collection the statement does not read re-renders nothing.
    const rendersBefore = await a.evaluate(() => window.sqlHarness.renders().length);
    await a.evaluate(() => window.sqlHarness.write('insert', 'products', 'l-p1', { price: 3 }));
    await waitFor(a, () => window.sqlHarness.query("SELECT count(*) AS n FROM products WHERE id = 'l-p1'").then((r) => r.rows[0].n === 1), null, { what: 'the product in SQL' });
    await a.evaluate(() => new Promise((r) => setTimeout(r, 200)));
    assert.equal(await a.evaluate(() => window.sqlHarness.renders().length), rendersBefore, 'no re-render for a table the statement does not read');

    // A pending write (offline), then the server rejects it: both tabs show it, then roll back.
    await a.evaluate(() => window.sqlHarness.goOffline());
    const key = await a.evaluate(() => window.sqlHarness.write('insert', 'bills', 'l-dup', { total: 1000, customer_id: 'l-c1', number: 'l-1' }));
    const pendingView = [{ name: 'l Ada', bills: 3, revenue: 1015.5 }, { name: 'l Bo', bills: 2, revenue: 107 }];
    await shows(a, pendingView, 'the pending write in the leader');
    await shows(b, pendingView, 'the pending write in the follower');
    for (const page of [a, b]) {
      const r = await page.evaluate(() => window.sqlHarness.query("SELECT pending, total, version FROM bills WHERE id = 'l-dup'"));
      assert.deepEqual(r.rows, [{ pending: 1, total: 1000, version: 0 }], 'pending = 1 while the server has not answered');
    }
    await a.evaluate(() => window.sqlHarness.goOnline());
    await waitFor(a, (k) => window.sqlHarness.outcome(k)?.state === 'rejected', key, { what: 'the write rejected' });
    assert.equal((await a.evaluate((k) => window.sqlHarness.outcome(k), key)).code, 'constraint');
    await shows(a, afterInsert, 'the rollback in the leader');
    await shows(b, afterInsert, 'the rollback in the follower');
    for (const page of [a, b]) {
      const r = await page.evaluate(() => window.sqlHarness.query("SELECT count(*) AS n FROM bills WHERE id = 'l-dup'"));
      assert.deepEqual(r.rows, [{ n: 0 }], 'the refused insert left the table');
    }
    // Snapshots are stable between changes: every render showed a different answer.
    const shown = await a.evaluate(() => window.sqlHarness.renders().filter((r) => !r.loading).map((r) => r.rows));
    for (let i = 1; i < shown.length; i++) assert.notEqual(shown[i], shown[i - 1], `render ${i} repeats the previous answer`);
    assert.deepEqual([...a.errors, ...b.errors], []);
  }));

  test("storage 'memory' keeps the tables in memory and says so; a bad live statement is an error state", () => inContext(async (ctx) => {
    await seed(server, 'm');
    const page = await openHarness(ctx, server, null, 'sql.html');
    const opts = clientOptions(server, admin, { collections: ['bills', 'customers'], name: 'sql-m' });
    const started = await page.evaluate(([o, s]) => window.sqlHarness.start(o, s, { sql: 'SELECT total FROM nothing_here' }), [opts, { schema: SCHEMA, storage: 'memory' }]);
    assert.equal(started.info.storage, 'memory');
    await waitFor(page, () => window.sqlHarness.lastRender()?.error, null, { what: 'the live error' });
    assert.equal(await page.evaluate(() => window.sqlHarness.lastRender().error), 'sql_error: no such table: nothing_here');
    const r = await waitFor(page, () => window.sqlHarness.query("SELECT count(*) AS n FROM bills WHERE id LIKE 'm-%'").then((r) => r.rows[0].n === 3 && r), null, { what: 'rows in memory' });
    assert.ok(r);
  }));
  test('OPFS slots: a closed tab frees its slot for the next tab; with every slot held the tables are in memory and say why', () => inContext(async (ctx) => {
    await seed(server, 's');
    const first = await openSql(ctx, server, 's');
    assert.equal(first.started.info.storage, 'opfs');
    await first.close();
    const next = await openSql(ctx, server, 's');
    assert.equal(next.started.info.storage, 'opfs', `the closed tab's slot (${next.started.info.fallbackReason ?? ''})`);
    await next.close();

    // Another page of the origin holds all 16 slot locks (as 16 open tabs would).
    const holder = await openHarness(ctx, server, null, 'sql.html');
    await holder.evaluate(async () => {
      for (let i = 0; i < 16; i++) void navigator.locks.request(`syncline-sql-slot-${i}`, () => new Promise(() => {}));
      while ((await navigator.locks.query()).held.filter((l) => l.name.startsWith('syncline-sql-slot-')).length < 16) await new Promise((r) => setTimeout(r, 10));
    });
    const page = await openSql(ctx, server, 's');
    assert.equal(page.started.info.storage, 'memory');
    assert.equal(page.started.info.fallbackReason, 'all 16 OPFS slots are in use by other tabs');
    const r = await waitFor(page, () => window.sqlHarness.query("SELECT count(*) AS n FROM bills WHERE id LIKE 's-%'").then((r) => r.rows[0].n === 3 && r), null, { what: 'rows in memory' });
    assert.ok(r.ok);
    assert.deepEqual(reportOf(await waitFor(page, () => JSON.parse(window.sqlHarness.lastRender()?.rows ?? '[]').length > 0 && JSON.parse(window.sqlHarness.lastRender().rows), null, { what: 'the live report' }), 's '),
      [{ name: 's Ada', bills: 2, revenue: 15.5 }, { name: 's Bo', bills: 1, revenue: 7 }]);
  }));
});
