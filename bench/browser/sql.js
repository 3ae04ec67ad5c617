// The page of the live SQL benchmark (bench/suites/sql.mjs), built by Vite with main.js and
// served by syncline-server --static. One client with syncline/sqlite attached; Node drives it
// through window.sqlBench. Each sample is one local write (a bill's total), timed from the write
// until one view shows it: a live SQL statement (db.watch), the engine's live query or
// aggregate, or a plain JS recomputation over plain objects.
import { createClient } from 'syncline';
import { attachSql } from 'syncline/sqlite';

const TOP_SQL = "SELECT id, total FROM bills WHERE status = 'unpaid' ORDER BY total DESC LIMIT 50";
const JOIN_SQL = `SELECT c.name AS name, count(*) AS bills, sum(b.total) AS revenue
  FROM bills b JOIN customers c ON c.id = b.customer_id GROUP BY c.name ORDER BY c.name`;
const SCHEMA = { bills: { status: 'text', total: 'real', customer_id: 'text' }, customers: { name: 'text' } };
// What the two statements filter, sort, join and group on. (customer_id, total) covers the
// join's reads of bills; (name, id) lets SQLite walk customers in group order.
const INDEXES = { bills: [['status', 'total'], ['customer_id', 'total']], customers: [['name', 'id']] };

let client = null;
let db = null;
let names = new Map();

/** Resolves with the time `observable` first shows what `ok` looks for, from now on. */
function nextShowing(observable, ok) {
  return new Promise((resolve) => {
    const off = observable.subscribe(() => {
      if (!ok(observable.getSnapshot())) return;
      const t = performance.now();
      off();
      resolve(t);
    });
  });
}

const settle = (ms) => new Promise((r) => setTimeout(r, ms));

const sqlBench = {
  ready: true,
  async start(options, expected, storage) {
    client = await createClient(options);
    // The replica first: attach times SQLite's load, not the download.
    for (;;) {
      const have = ['bills', 'customers'].map((c) => client.query(c, { limit: 1 }));
      const totals = have.map((q) => q.total);
      for (const q of have) q.close();
      if (totals[0] >= expected.bills && totals[1] >= expected.customers) break;
      await settle(100);
    }
    const t0 = performance.now();
    db = attachSql(client, { schema: SCHEMA, indexes: INDEXES, storage });
    const info = await db.ready;
    const readyMs = performance.now() - t0;
    // The tables hold the replica once ready; wait for the replica to hold every document.
    for (;;) {
      const r = await db.query('SELECT (SELECT count(*) FROM bills) AS bills, (SELECT count(*) FROM customers) AS customers');
      if (r.rows[0].bills >= expected.bills && r.rows[0].customers >= expected.customers) break;
      await settle(100);
    }
    for (const c of client.collection('customers').all()) names.set(c.id, c.fields.name);
    return { info, readyMs, attachMs: performance.now() - t0 };
  },
  /** An unpaid bill to change, and its customer's name (picked in Node by index). */
  pick(i) {
    const unpaid = client.query('bills', { where: 'status=eq.unpaid', orderBy: 'id', limit: 200 });
    const docs = unpaid.getSnapshot();
    unpaid.close();
    const d = docs[(i * 37) % docs.length];
    return { id: d.id, total: d.fields.total, customer: names.get(d.fields.customer_id) };
  },
  /**
   * One sample: sets bill `id`'s total to `total` and times until the view `kind` shows it.
   * Waits for the server's confirmation and a quiet moment after, so samples do not overlap.
   */
  async sample(kind, id, total) {
    const bills = client.collection('bills');
    const before = bills.get(id);
    const customer = names.get(before.fields.customer_id);
    const delta = total - before.fields.total;
    let view;
    let shows;
    if (kind === 'sql-top' || kind === 'sql-join') {
      const sql = kind === 'sql-top' ? TOP_SQL : JOIN_SQL;
      view = db.watch(sql);
      await new Promise((resolve) => {
        const off = view.subscribe(() => view.getSnapshot().result && (off(), resolve()));
        if (view.getSnapshot().result) (off(), resolve());
      });
      const was = kind === 'sql-join' ? view.getSnapshot().result.rows.find((r) => r.name === customer).revenue : 0;
      shows = kind === 'sql-top'
        ? (s) => !!s.result?.rows.some((r) => r.id === id && r.total === total)
        : (s) => !!s.result?.rows.some((r) => r.name === customer && Math.abs(r.revenue - (was + delta)) < 1e-6);
    } else if (kind === 'engine-top') {
      view = client.query('bills', { where: 'status=eq.unpaid', orderBy: 'total.desc', limit: 50 });
      shows = (docs) => docs.some((d) => d.id === id && d.fields.total === total);
    } else if (kind === 'engine-join') {
      // The engine has no join: a live sum per customer_id, named from the customers table.
      view = client.aggregate('bills', { groupBy: 'customer_id', sum: 'total' });
      const key = JSON.stringify(before.fields.customer_id);
      const was = view.getSnapshot().groups[key].sum;
      shows = (a) => Math.abs(a.groups[key].sum - (was + delta)) < 1e-6;
      const agg = view;
      // What a component would render: rows per customer name.
      view = {
        subscribe: agg.subscribe,
        getSnapshot: agg.getSnapshot,
        close: agg.close,
        render: () => Object.entries(agg.getSnapshot().groups).map(([k, g]) => ({ name: names.get(JSON.parse(k)), ...g })),
      };
    } else {
      throw new Error(`unknown kind ${kind}`);
    }
    const seen = nextShowing(view, shows);
    const t0 = performance.now();
    const w = bills.update(id, { total });
    const t1 = await seen;
    view.render?.();
    await w;
    await settle(30);
    view.close();
    return t1 - t0;
  },
  /** Plain JS over plain objects (what an app without a query engine would recompute on each
   * change): the same top 50 and the same join with group-by, timed together with the change. */
  plainSetup() {
    this.plain = client.collection('bills').all().map((d) => ({ id: d.id, ...d.fields }));
    this.plainCustomers = client.collection('customers').all().map((d) => ({ id: d.id, ...d.fields }));
    return this.plain.length;
  },
  plainSample(kind, id, total) {
    const t0 = performance.now();
    const b = this.plain.find((x) => x.id === id);
    b.total = total;
    let out;
    if (kind === 'plain-top') {
      out = this.plain.filter((x) => x.status === 'unpaid').sort((x, y) => y.total - x.total || (x.id < y.id ? -1 : 1)).slice(0, 50);
    } else {
      const byId = new Map(this.plainCustomers.map((c) => [c.id, c.name]));
      const groups = new Map();
      for (const x of this.plain) {
        const name = byId.get(x.customer_id);
        if (name === undefined) continue;
        const g = groups.get(name) ?? { name, bills: 0, revenue: 0 };
        g.bills += 1;
        g.revenue += x.total;
        groups.set(name, g);
      }
      out = [...groups.values()].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    }
    const t = performance.now() - t0;
    if (!out.length) throw new Error('plain JS found nothing');
    return t;
  },
  /** From a write until the worker has applied its batch: a trivial query sent after the
   * feed's batch (the feed sends in a microtask of the write) answers after it. */
  async applied(id, total) {
    const t0 = performance.now();
    const w = client.collection('bills').update(id, { total });
    await null;
    await db.query('SELECT 1');
    const t = performance.now() - t0;
    await w;
    await settle(30);
    return t;
  },
  /** The statement alone, run once through db.query (page -> worker -> page). */
  async queryOnce(which) {
    const t0 = performance.now();
    await db.query(which === 'top' ? TOP_SQL : JOIN_SQL);
    return performance.now() - t0;
  },
  async plan() {
    const p = async (sql) => (await db.query(`EXPLAIN QUERY PLAN ${sql}`)).rows.map((r) => r.detail).join('; ');
    return { top: await p(TOP_SQL), join: await p(JOIN_SQL) };
  },
  async close() {
    await db?.close();
    await client?.close();
  },
};
window.sqlBench = sqlBench;
