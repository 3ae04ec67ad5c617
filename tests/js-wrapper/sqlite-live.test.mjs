// Live SQL statements over a real in-memory SQLite mirror: the page's LiveSqlQuery
// (js-wrapper/src/sqlite/live-sql.ts) runs once, then takes the answers the worker's
// BatchApplier (reruns.ts) computes with each change batch. A statement re-runs only when a batch
// changes rows or columns it reads; a burst of batches re-runs it once; its state keeps its
// identity when the answer is the same; errors are state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sqlite3InitModule from '@sqlite.org/sqlite-wasm';
import { SqlMirror, SqlStatementError } from '../../js-wrapper/dist/sqlite/mirror.js';
import { LiveSqlQuery } from '../../js-wrapper/dist/sqlite/live-sql.js';
import { BatchApplier, mergeChanges } from '../../js-wrapper/dist/sqlite/reruns.js';
import { tableSpecs } from '../../js-wrapper/dist/sqlite/schema.js';
import { SyncError } from '../../js-wrapper/dist/index.js';

const sqlite3 = await sqlite3InitModule();

/** A mirror, the worker's batch applier over it, and a runner for first runs like the worker's
 * (asynchronous, counted). `batch` applies rows as the worker does for `queries` and hands each
 * its new answer, as the page does; it returns how many statements re-ran. */
function setup() {
  const m = new SqlMirror(sqlite3, new sqlite3.oo1.DB(':memory:', 'c'), tableSpecs(['bills', 'customers'], { bills: { total: 'real' } }));
  const applier = new BatchApplier(m);
  const runner = {
    runs: 0,
    async run(sql, params) {
      this.runs++;
      await new Promise((r) => setTimeout(r, 5));
      try {
        return m.query(sql, params);
      } catch (e) {
        throw e instanceof SqlStatementError ? new SyncError('sql_error', e.message) : e;
      }
    },
  };
  const batch = (queries, rows, { reset = false, moreWaiting = false } = {}) => {
    const out = applier.apply(rows, reset, queries.map((q) => q.statement).filter(Boolean), moreWaiting);
    for (const q of queries) if (out.results[q.id]) q.deliver(out.results[q.id]);
    return Object.keys(out.results).length;
  };
  return { m, runner, batch };
}
const until = async (fn) => {
  for (let i = 0; i < 200 && !fn(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(fn(), 'condition not reached');
};
const bill = (id, total, version = 1) => ({ collection: 'bills', id, version, pending: false, fields: { total } });
const customer = (id) => ({ collection: 'customers', id, version: 1, pending: false, fields: { name: id } });

test('re-runs when a table it reads changes, not for other tables; frozen, stable snapshots', async () => {
  const { m, runner, batch } = setup();
  m.apply([bill('b1', 1)], true);
  const q = new LiveSqlQuery(runner, 'SELECT sum(total) AS s FROM bills WHERE total > ?', [0], () => {});
  assert.equal(q.getSnapshot().loading, true);
  let heard = 0;
  q.subscribe(() => heard++);
  await until(() => !q.getSnapshot().loading);
  const first = q.getSnapshot();
  assert.deepEqual(first.result.rows, [{ s: 1 }]);
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first.result.rows) && Object.isFrozen(first.result.rows[0]));
  assert.deepEqual(first.result.tables, ['bills']);

  assert.equal(batch([q], [customer('c1')]), 0, 'a change to a table it does not read runs nothing');
  assert.equal(batch([q], [bill('b2', 2)]), 1);
  assert.deepEqual(q.getSnapshot().result.rows, [{ s: 3 }]);
  assert.equal(heard, 2);

  // A change the statement filters out: it re-runs, and the state stays the same object.
  const second = q.getSnapshot();
  assert.equal(batch([q], [bill('b3', -5)]), 1);
  assert.equal(q.getSnapshot(), second);
  assert.equal(heard, 2, 'no notification for the same answer');
  q.close();
  assert.equal(q.statement, null, 'a closed statement is not re-run');
  assert.equal(runner.runs, 1, 'one run of its own; the rest came with the batches');
});

test('a batch that changes no row or column the statement reads does not re-run it', async () => {
  const { m, runner, batch } = setup();
  m.apply([bill('b1', 1), customer('c1')], true);
  const q = new LiveSqlQuery(runner, 'SELECT sum(total) AS s FROM bills', undefined, () => {});
  await until(() => !q.getSnapshot().loading);
  // The server confirms the write: only version changes, and the sum does not read it.
  assert.equal(batch([q], [bill('b1', 1, 2)]), 0);
  // The same document sent again as it is: nothing changes at all.
  assert.equal(batch([q], [bill('b1', 1, 2)]), 0);
  // A field without a column changes only the fields JSON, which the sum does not read.
  assert.equal(batch([q], [{ ...bill('b1', 1, 3), fields: { total: 1, note: 'x' } }]), 0);

  // A column it reads, and a row that comes and goes, do re-run it.
  assert.equal(batch([q], [bill('b1', 4, 4)]), 1);
  assert.deepEqual(q.getSnapshot().result.rows, [{ s: 4 }]);
  assert.equal(batch([q], [bill('b2', 0)]), 1);
  assert.equal(batch([q], [{ collection: 'bills', id: 'b2', version: 0, pending: false, fields: null }]), 1);

  // count(*) reads no column: only rows coming and going re-run it. random() re-runs on any change.
  const count = new LiveSqlQuery(runner, 'SELECT count(*) AS n FROM bills', undefined, () => {});
  const noisy = new LiveSqlQuery(runner, 'SELECT count(*) AS n, random() AS r FROM bills', undefined, () => {});
  await until(() => !count.getSnapshot().loading && !noisy.getSnapshot().loading);
  const changes = m.apply([bill('b1', 5, 5)], false);
  assert.deepEqual(changes, { bills: { rows: false, columns: ['version', 'fields', 'total'] } });
  assert.equal(m.mayChange('SELECT sum(total) AS s FROM bills', changes), true);
  assert.equal(m.mayChange('SELECT count(*) AS n FROM bills', changes), false);
  assert.equal(m.mayChange('SELECT count(*) AS n, random() AS r FROM bills', changes), true);
  assert.equal(batch([q, count, noisy], [bill('b1', 6, 6)]), 2, 'the sum and the random() statement re-ran, the count did not');
  assert.deepEqual(q.getSnapshot().result.rows, [{ s: 6 }]);
});

test('a burst of batches re-runs a statement once, after the last, for all of them', async () => {
  const { m, runner, batch } = setup();
  m.apply([], true);
  const q = new LiveSqlQuery(runner, 'SELECT count(*) AS n FROM bills', undefined, () => {});
  await until(() => !q.getSnapshot().loading);
  let heard = 0;
  q.subscribe(() => heard++);
  for (let i = 0; i < 4; i++) assert.equal(batch([q], [bill(`b${i}`, i)], { moreWaiting: true }), 0, 'another batch waits: no re-run yet');
  // The last batch of the burst changes only a column the count does not read, yet the rows the
  // earlier batches added are still owed a re-run.
  assert.equal(batch([q], [bill('b0', 0, 2)]), 1);
  assert.deepEqual(q.getSnapshot().result.rows, [{ n: 4 }]);
  assert.equal(heard, 1);
  assert.deepEqual(mergeChanges({ bills: { rows: false, columns: ['total'] } }, { bills: { rows: true, columns: ['version', 'total'] }, customers: { rows: false, columns: ['name'] } }),
    { bills: { rows: true, columns: ['total', 'version'] }, customers: { rows: false, columns: ['name'] } });
});

test('an error is state; a refused statement is not re-run; a closed one stops and reports its close', async () => {
  const { runner, batch } = setup();
  let closedWith = null;
  const bad = new LiveSqlQuery(runner, 'SELECT nope FROM bills', undefined, (x) => (closedWith = x));
  await until(() => !bad.getSnapshot().loading);
  const s = bad.getSnapshot();
  assert.equal(s.result, null);
  assert.equal(s.error.code, 'sql_error');
  assert.equal(s.error.message, 'no such column: nope');
  assert.equal(bad.statement, null);
  assert.equal(batch([bad], [bill('b1', 1)]), 0, 'a refused statement is not run again on changes');
  // An answer the worker could not compute arrives as an error state.
  const q = new LiveSqlQuery(runner, 'SELECT count(*) AS n FROM bills', undefined, () => {});
  await until(() => !q.getSnapshot().loading);
  q.deliver({ code: 'sql_error', message: 'integer overflow' });
  assert.equal(q.getSnapshot().error.message, 'integer overflow');
  bad.close();
  bad.close();
  assert.equal(closedWith, bad);
});
