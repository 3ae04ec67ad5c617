// A live SQL statement (js-wrapper/src/sqlite/live-sql.ts) over a real in-memory SQLite mirror:
// it re-runs only when a batch changes rows or columns it reads (the mirror's change summary), keeps its state object when the answer
// is the same, runs once more (not once per change) for changes during a run, and holds errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sqlite3InitModule from '@sqlite.org/sqlite-wasm';
import { SqlMirror, SqlStatementError } from '../../js-wrapper/dist/sqlite/mirror.js';
import { LiveSqlQuery } from '../../js-wrapper/dist/sqlite/live-sql.js';
import { tableSpecs } from '../../js-wrapper/dist/sqlite/schema.js';
import { SyncError } from '../../js-wrapper/dist/index.js';

const sqlite3 = await sqlite3InitModule();

/** A runner like the worker's: answers asynchronously, counting runs, over a real mirror. */
function setup() {
  const m = new SqlMirror(sqlite3, new sqlite3.oo1.DB(':memory:', 'c'), tableSpecs(['bills', 'customers'], { bills: { total: 'real' } }));
  const runner = {
    runs: 0,
    async run(sql, params) {
      this.runs++;
      await new Promise((r) => setTimeout(r, 5));
      try {
        return m.query(sql, params);
      } catch (e) {
        throw e instanceof SqlStatementError ? new SyncError('invalid_query', e.message) : e;
      }
    },
  };
  return { m, runner };
}
const until = async (fn) => {
  for (let i = 0; i < 200 && !fn(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(fn(), 'condition not reached');
};
const bill = (id, total) => ({ collection: 'bills', id, version: 1, pending: false, fields: { total } });

test('re-runs when a table it reads changes, not for other tables; frozen, stable snapshots', async () => {
  const { m, runner } = setup();
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

  q.changed(m.apply([{ collection: 'customers', id: 'c1', version: 1, pending: false, fields: {} }], false));
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(runner.runs, 1, 'a change to a table it does not read runs nothing');

  q.changed(m.apply([bill('b2', 2)], false));
  await until(() => q.getSnapshot() !== first);
  assert.deepEqual(q.getSnapshot().result.rows, [{ s: 3 }]);
  assert.equal(heard, 2);

  // A change the statement filters out: it runs, and the state stays the same object.
  const second = q.getSnapshot();
  q.changed(m.apply([bill('b3', -5)], false));
  await until(() => runner.runs === 3);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(q.getSnapshot(), second);
  assert.equal(heard, 2, 'no notification for the same answer');
  q.close();
});

test('a batch that changes no row or column the statement reads does not re-run it', async () => {
  const { m, runner } = setup();
  m.apply([bill('b1', 1), { collection: 'customers', id: 'c1', version: 1, pending: false, fields: { name: 'Ada' } }], true);
  const q = new LiveSqlQuery(runner, 'SELECT sum(total) AS s FROM bills', undefined, () => {});
  await until(() => !q.getSnapshot().loading);
  assert.equal(runner.runs, 1);
  const settle = () => new Promise((r) => setTimeout(r, 30));

  // The server confirms the write: only version (and pending) change, and the sum reads neither.
  q.changed(m.apply([{ ...bill('b1', 1), version: 2 }], false));
  // The same document sent again as it is: nothing changes at all.
  q.changed(m.apply([{ ...bill('b1', 1), version: 2 }], false));
  // A field without a column changes only the fields JSON, which the sum does not read.
  q.changed(m.apply([{ ...bill('b1', 1), version: 3, fields: { total: 1, note: 'x' } }], false));
  await settle();
  assert.equal(runner.runs, 1, 'none of these can change the sum');

  // A column it reads, and a row that comes and goes, do re-run it.
  q.changed(m.apply([{ ...bill('b1', 4), version: 4 }], false));
  await until(() => q.getSnapshot().result.rows[0].s === 4);
  q.changed(m.apply([bill('b2', 0)], false));
  await until(() => runner.runs === 3);
  q.changed(m.apply([{ collection: 'bills', id: 'b2', version: 0, pending: false, fields: null }], false));
  await until(() => runner.runs === 4);

  // count(*) reads no column: only rows coming and going re-run it. random() re-runs on any change.
  const count = new LiveSqlQuery(runner, 'SELECT count(*) AS n FROM bills', undefined, () => {});
  const noisy = new LiveSqlQuery(runner, 'SELECT count(*) AS n, random() AS r FROM bills', undefined, () => {});
  await until(() => !count.getSnapshot().loading && !noisy.getSnapshot().loading);
  assert.equal(runner.runs, 6);
  const batch = m.apply([{ ...bill('b1', 5), version: 5 }], false);
  assert.deepEqual(batch, { bills: { rows: false, columns: ['version', 'fields', 'total'] } });
  for (const x of [q, count, noisy]) x.changed(batch);
  await until(() => runner.runs === 8);
  await settle();
  assert.equal(runner.runs, 8, 'the sum and the random() statement ran, the count did not');
  for (const x of [q, count, noisy]) x.close();
});

test('changes during a run cause one more run with the latest rows', async () => {
  const { m, runner } = setup();
  m.apply([], true);
  const q = new LiveSqlQuery(runner, 'SELECT count(*) AS n FROM bills', undefined, () => {});
  /** Five bills, each its own batch and change notice, then waits until the statement shows them. */
  const addFive = async (from) => {
    for (let i = from; i < from + 5; i++) {
      q.changed(m.apply([bill(`b${i}`, i)], false));
    }
    await until(() => q.getSnapshot().result?.rows[0].n === from + 5);
    await new Promise((r) => setTimeout(r, 30));
  };
  // Changes while the first run is in flight (before it knows which tables it reads).
  await addFive(0);
  assert.equal(runner.runs, 2, 'the first run and one more');
  await addFive(5);
  assert.equal(runner.runs, 4, 'one run for the first change, one for the four that came during it');
  q.close();
});

test('an error is state; a closed statement stops and reports its close', async () => {
  const { runner } = setup();
  let closedWith = null;
  const bad = new LiveSqlQuery(runner, 'SELECT nope FROM bills', undefined, (x) => (closedWith = x));
  await until(() => !bad.getSnapshot().loading);
  const s = bad.getSnapshot();
  assert.equal(s.result, null);
  assert.equal(s.error.message, 'no such column: nope');
  bad.changed({ bills: { rows: true, columns: [] } });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(runner.runs, 1, 'a failed statement is not run again on changes');
  bad.close();
  bad.close();
  assert.equal(closedWith, bad);
});
