// Layer: js-wrapper/sqlite (pure data, no imports but the error class). How a synced collection
// looks as a SQLite table: the columns every table has, the field columns the app declares, and
// how a document's field value becomes a column value. Shared by the page and the worker.
import { SyncError } from '../errors.js';

/** The SQLite type of a declared field column. `json` stores objects and arrays as JSON text
 * (read them with SQLite's JSON functions); `boolean` stores 1/0. */
export type SqlColumnType = 'text' | 'integer' | 'real' | 'boolean' | 'json';

/** Per collection, the fields that get a column of their own, e.g.
 * `{ bills: { total: 'real', branch: 'text' } }`. Every other field stays reachable through the
 * `fields` JSON column: `fields ->> '$.note'`. */
export type SqlSchema = Readonly<Record<string, Readonly<Record<string, SqlColumnType>>>>;

/** Per collection, the indexes to create, each a list of columns (fixed or declared), e.g.
 * `{ bills: [['status', 'total'], ['customer_id', 'total']] }`. */
export type SqlIndexes = Readonly<Record<string, readonly (readonly string[])[]>>;

export interface TableSpec {
  readonly name: string;
  readonly columns: readonly { readonly name: string; readonly type: SqlColumnType }[];
  /** Each index's columns, in order. */
  readonly indexes: readonly (readonly string[])[];
}

/** Columns every table has, in this order, before the declared ones. */
export const FIXED_COLUMNS = Object.freeze(['id', 'version', 'pending', 'fields'] as const);

const TYPES: ReadonlySet<string> = new Set(['text', 'integer', 'real', 'boolean', 'json']);
// Plain identifiers only: they are written into DDL (quoted), and an app querying them should
// not need quotes either.
const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

const SQL_TYPE: Readonly<Record<SqlColumnType, string>> = {
  text: 'TEXT', integer: 'INTEGER', real: 'REAL', boolean: 'INTEGER', json: 'TEXT',
};

function checkCollections(option: string, value: object, collections: readonly string[]): void {
  if (!value || typeof value !== 'object') throw new SyncError('invalid_options', `sqlite ${option} must be an object`, { field: option });
  for (const name of Object.keys(value)) {
    if (!collections.includes(name)) {
      throw new SyncError('invalid_options', `sqlite ${option} names "${name}", which is not one of the client's collections`, { field: `${option}.${name}` });
    }
  }
}

/** Checks one collection's indexes name only columns its table has. */
function indexesOf(name: string, declared: readonly string[], indexes: readonly (readonly string[])[] | undefined): string[][] {
  if (indexes === undefined) return [];
  if (!Array.isArray(indexes)) throw new SyncError('invalid_options', 'an index list must be an array of column lists', { field: `indexes.${name}` });
  const known = new Set<string>([...FIXED_COLUMNS.filter((c) => c !== 'fields'), ...declared]);
  return indexes.map((cols, i) => {
    const field = `indexes.${name}[${i}]`;
    if (!Array.isArray(cols) || cols.length === 0) throw new SyncError('invalid_options', 'an index is a non-empty array of column names', { field });
    for (const c of cols) {
      if (typeof c !== 'string' || !known.has(c)) {
        throw new SyncError('invalid_options', `index column "${String(c)}" is not a column of ${name} (${[...known].join(', ')})`, { field });
      }
    }
    return [...cols];
  });
}

/** The tables for `collections`, checking the schema and the indexes name only those, only
 * plain identifiers and only columns the tables have (`invalid_options` otherwise). */
export function tableSpecs(collections: readonly string[], schema: SqlSchema = {}, indexes: SqlIndexes = {}): TableSpec[] {
  checkCollections('schema', schema, collections);
  checkCollections('indexes', indexes, collections);
  // Collection names are already plain identifiers (createClient checks them).
  return collections.map((name) => {
    const declared = schema[name] ?? {};
    const columns = Object.entries(declared).map(([col, type]) => {
      const field = `schema.${name}.${col}`;
      if (!IDENT.test(col)) throw new SyncError('invalid_options', `column "${col}" is not a plain identifier`, { field });
      if ((FIXED_COLUMNS as readonly string[]).includes(col.toLowerCase())) {
        throw new SyncError('invalid_options', `column "${col}" is one every table already has (${FIXED_COLUMNS.join(', ')})`, { field });
      }
      if (!TYPES.has(type)) throw new SyncError('invalid_options', `column type "${String(type)}" is not one of ${[...TYPES].join(', ')}`, { field });
      return { name: col, type };
    });
    return { name, columns, indexes: indexesOf(name, columns.map((c) => c.name), indexes[name]) };
  });
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function createTableSql(t: TableSpec): string {
  const cols = [
    'id TEXT PRIMARY KEY NOT NULL', 'version INTEGER NOT NULL', 'pending INTEGER NOT NULL', 'fields TEXT NOT NULL',
    ...t.columns.map((c) => `${quoteIdent(c.name)} ${SQL_TYPE[c.type]}`),
  ];
  return `CREATE TABLE ${quoteIdent(t.name)} (${cols.join(', ')})`;
}

/** The statements that create `t`'s indexes. Named after their columns, so a name says what
 * EXPLAIN QUERY PLAN used. */
export function createIndexSql(t: TableSpec): string[] {
  return t.indexes.map((cols) => {
    const name = quoteIdent(`${t.name}_by_${cols.join('_')}`);
    return `CREATE INDEX IF NOT EXISTS ${name} ON ${quoteIdent(t.name)} (${cols.map(quoteIdent).join(', ')})`;
  });
}

export type ColumnValue = string | number | bigint | null;

/** A field's value as its declared column holds it. A value of another JSON type than declared
 * is kept (SQLite's type affinity converts what it can), except objects and arrays, which only
 * a `json` column takes whole: elsewhere they are JSON text too, never "[object Object]". */
export function columnValue(type: SqlColumnType, value: unknown): ColumnValue {
  if (value === undefined || value === null) return null;
  if (type === 'json') return JSON.stringify(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number' || typeof value === 'string' || typeof value === 'bigint') return value;
  return JSON.stringify(value);
}
