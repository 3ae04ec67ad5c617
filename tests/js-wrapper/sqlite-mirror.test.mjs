// The SQLite mirror of the replica (js-wrapper/src/sqlite/mirror.ts) over the real
// @sqlite.org/sqlite-wasm build, in memory under Node: tables per collection, declared columns,
// the `fields` JSON column, change batches, the tables a statement reads, and what it refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sqlite3InitModule from '@sqlite.org/sqlite-wasm';
import { SqlMirror, SqlStatementError } from '../../js-wrapper/dist/sqlite/mirror.js';
import { tableSpecs } from '../../js-wrapper/dist/sqlite/schema.js';
import { SyncError } from '../../js-wrapper/dist/index.js';

const sqlite3 = await sqlite3InitModule();
const SCHEMA = { bills: { total: 'real', branch: 'text', paid: 'boolean', tags: 'json' }, customers: { name: 'text' } };

function mirror(schema = SCHEMA, collections = ['bills', 'customers', 'products']) {
  return new SqlMirror(sqlite3, new sqlite3.oo1.DB(':memory:', 'c'), tableSpecs(collections, schema));
}
const bill = (id, fields, { version = 1, pending = false } = {}) => ({ collection: 'bills', id, version, pending, fields });
const customer = (id, name) => ({ collection: 'customers', id, version: 1, pending: false, fields: { name } });

test('a join with group-by over two collections, and the tables it reads', () => {
  const m = mirror();
  m.apply([
    customer('c1', 'Ada'), customer('c2', 'Bo'),
    bill('b1', { total: 10, branch: 'north', customer: 'c1' }),
    bill('b2', { total: 5.5, branch: 'north', customer: 'c2' }),
    bill('b3', { total: 7, branch: 'south', customer: 'c1' }),
  ], true);
  const out = m.query(`SELECT c.name, sum(b.total) AS revenue, count(*) AS n FROM bills b
    JOIN customers c ON c.id = b.fields ->> '$.customer' GROUP BY c.name ORDER BY c.name`);
  assert.deepEqual(out.columns, ['name', 'revenue', 'n']);
  assert.deepEqual(out.rows, [{ name: 'Ada', revenue: 17, n: 2 }, { name: 'Bo', revenue: 5.5, n: 1 }]);
  assert.deepEqual(out.tables, ['bills', 'customers']);
  assert.deepEqual(m.query('SELECT count(*) AS n FROM products').tables, ['products'], 'count(*) reads its table');
  assert.deepEqual(m.query('WITH x AS (SELECT total FROM bills) SELECT max(total) AS t FROM x').tables, ['bills'], 'through a CTE');
  assert.deepEqual(m.query('SELECT 1 AS one').tables, [], 'no table');
  m.close();
});

test('rows carry id, version, pending, the fields as JSON and the declared columns', () => {
  const m = mirror();
  m.apply([bill('b1', { total: 3, branch: 'n', paid: true, tags: ['a', 'b'], note: 'x' }, { version: 4, pending: true })], false);
  const [r] = m.query('SELECT * FROM bills').rows;
  assert.equal(r.id, 'b1');
  assert.equal(r.version, 4);
  assert.equal(r.pending, 1);
  assert.deepEqual(JSON.parse(r.fields), { total: 3, branch: 'n', paid: true, tags: ['a', 'b'], note: 'x' });
  assert.equal(r.total, 3);
  assert.equal(r.paid, 1, 'boolean as 1/0');
  assert.equal(r.tags, '["a","b"]', 'json column holds JSON text');
  assert.deepEqual(m.query(`SELECT fields ->> '$.note' AS note, json_array_length(tags) AS n FROM bills`).rows, [{ note: 'x', n: 2 }]);
  // An undeclared collection still has its fields column.
  m.apply([{ collection: 'products', id: 'p1', version: 1, pending: false, fields: { price: 2 } }], false);
  assert.deepEqual(m.query(`SELECT sum(fields ->> '$.price') AS s FROM products`).rows, [{ s: 2 }]);
  m.close();
});

test('a batch updates, deletes (fields null), and a reset replaces every table', () => {
  const m = mirror();
  m.apply([bill('b1', { total: 1 }), bill('b2', { total: 2 }), customer('c1', 'Ada')], false);
  const touched = m.apply([bill('b1', { total: 10 }, { version: 2 }), { collection: 'bills', id: 'b2', version: 0, pending: false, fields: null }], false);
  assert.deepEqual(touched, { bills: { rows: true, columns: ['version', 'fields', 'total'] } }, 'b2 went; b1 changed these columns');
  assert.deepEqual(m.query('SELECT id, total, version FROM bills').rows, [{ id: 'b1', total: 10, version: 2 }]);
  const all = m.apply([bill('b9', { total: 9 })], true);
  assert.deepEqual(Object.keys(all).sort(), ['bills', 'customers', 'products']);
  assert.ok(Object.values(all).every((c) => c.rows), 'a reset changes every table');
  assert.deepEqual(m.query('SELECT id FROM bills').rows, [{ id: 'b9' }]);
  assert.deepEqual(m.query('SELECT count(*) AS n FROM customers').rows, [{ n: 0 }]);
  assert.deepEqual(m.apply([{ collection: 'unknown', id: 'x', version: 1, pending: false, fields: {} }], false), {}, 'a collection without a table is ignored');
  assert.deepEqual(m.apply([bill('b9', { total: 9 })], false), {}, 'a row sent as it is changes nothing');
  assert.deepEqual(m.apply([{ collection: 'bills', id: 'nope', version: 0, pending: false, fields: null }], false), {}, 'nor does deleting a row that is not there');
  m.close();
});

test('positional and named parameters bind', () => {
  const m = mirror();
  m.apply([bill('b1', { total: 1, branch: 'n' }), bill('b2', { total: 2, branch: 's' })], false);
  assert.deepEqual(m.query('SELECT id FROM bills WHERE total > ?', [1]).rows, [{ id: 'b2' }]);
  assert.deepEqual(m.query('SELECT id FROM bills WHERE branch = :b', { ':b': 'n' }).rows, [{ id: 'b1' }]);
  m.close();
});

test("a bad statement throws SQLite's message; a writing statement is refused", () => {
  const m = mirror();
  assert.throws(() => m.query('SELEC id FROM bills'), (e) => e instanceof SqlStatementError && e.message === 'near "SELEC": syntax error');
  assert.throws(() => m.query('SELECT nope FROM bills'), (e) => e instanceof SqlStatementError && e.message === 'no such column: nope');
  assert.throws(() => m.query('SELECT 1 FROM missing'), /no such table: missing/);
  assert.throws(() => m.query('DELETE FROM bills'), (e) => e instanceof SqlStatementError && /read-only/.test(e.message));
  assert.throws(() => m.query('DROP TABLE bills'), /read-only/);
  assert.throws(() => m.query('SELECT ?', [1, 2]), SqlStatementError, 'too many parameters');
  // Nothing was changed, and the mirror still works after the errors.
  m.apply([bill('b1', { total: 1 })], false);
  assert.deepEqual(m.query('SELECT count(*) AS n FROM bills').rows, [{ n: 1 }]);
  m.close();
});

test('the schema is checked: unknown collections, fixed column names, bad identifiers and types', () => {
  const bad = (schema, field) => assert.throws(() => tableSpecs(['bills'], schema), (e) => e instanceof SyncError && e.code === 'invalid_options' && e.field === field);
  bad({ orders: { total: 'real' } }, 'schema.orders');
  bad({ bills: { version: 'integer' } }, 'schema.bills.version');
  bad({ bills: { 'a b': 'text' } }, 'schema.bills.a b');
  bad({ bills: { total: 'money' } }, 'schema.bills.total');
  assert.deepEqual(tableSpecs(['bills'], { bills: { total: 'real' } }), [{ name: 'bills', columns: [{ name: 'total', type: 'real' }], indexes: [] }]);
  const badIndex = (indexes, field) => assert.throws(() => tableSpecs(['bills'], { bills: { total: 'real' } }, indexes), (e) => e instanceof SyncError && e.code === 'invalid_options' && e.field === field);
  badIndex({ orders: [['total']] }, 'indexes.orders');
  badIndex({ bills: [['total', 'nope']] }, 'indexes.bills[0]');
  badIndex({ bills: [['fields']] }, 'indexes.bills[0]');
  badIndex({ bills: [[]] }, 'indexes.bills[0]');
  badIndex({ bills: ['total'] }, 'indexes.bills[0]');
  assert.deepEqual(tableSpecs(['bills'], { bills: { total: 'real' } }, { bills: [['pending', 'total']] })[0].indexes, [['pending', 'total']]);
});

test('declared indexes exist and SQLite uses them; statements are prepared once per text', () => {
  const m = new SqlMirror(sqlite3, new sqlite3.oo1.DB(':memory:', 'c'), tableSpecs(['bills'], { bills: { total: 'real', branch: 'text' } }, { bills: [['branch', 'total']] }));
  m.apply([bill('b1', { total: 1, branch: 'n' }), bill('b2', { total: 2, branch: 's' })], true);
  const plan = m.query("EXPLAIN QUERY PLAN SELECT id FROM bills WHERE branch = 'n' ORDER BY total DESC").rows.map((r) => r.detail).join('; ');
  assert.match(plan, /USING INDEX bills_by_branch_total \(branch=\?\)/);
  assert.doesNotMatch(plan, /TEMP B-TREE/, 'the index gives the order');
  const sql = 'SELECT id FROM bills WHERE total > ? ORDER BY id';
  assert.deepEqual(m.query(sql, [0]).rows, [{ id: 'b1' }, { id: 'b2' }]);
  // A cached statement keeps nothing bound from the run before.
  assert.deepEqual(m.query(sql, [1]).rows, [{ id: 'b2' }]);
  assert.deepEqual(m.query(sql).rows, [], 'run without parameters: NULL, not the last run\'s value');
  m.close();
});
