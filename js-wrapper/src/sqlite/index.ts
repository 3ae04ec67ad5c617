// Layer: js-wrapper/sqlite, the entry point of `syncline/sqlite`. SQL over the synced replica:
// every collection of the client is a table (id, version, pending, fields JSON, and the field
// columns the schema declares), showing the same optimistic view as the rest of the API. SQLite
// (the official @sqlite.org/sqlite-wasm build) runs in a dedicated worker, in OPFS where it can,
// and is loaded only by apps that import this entry: `syncline` itself stays the same size.
//
//   import { attachSql } from 'syncline/sqlite';
//
//   const db = attachSql(client, { schema: { bills: { total: 'real', branch: 'text' } } });
//   const { rows } = await db.query('SELECT branch, sum(total) AS revenue FROM bills GROUP BY branch');
//   const live = db.watch('SELECT count(*) AS n FROM bills WHERE pending');  // or useSql() in React
import { SyncError } from '../errors.js';
import type { SyncClient } from '../types.js';
import { setSqlOf, sqlOf } from './attached.js';
import { WorkerSqlDatabase } from './database.js';
import { tableSpecs } from './schema.js';
import type { SqlDatabase, SqlOptions } from './types.js';

export type {
  LiveSql, SqlColumnType, SqlDatabase, SqlIndexes, SqlInfo, SqlOptions, SqlParams, SqlResult, SqlSchema, SqlState, SqlStorage,
} from './types.js';

/**
 * The SQL database of `client`, started now (its worker loads SQLite and the tables fill from
 * the replica; `ready` says when). One per client: a second call returns the first one.
 * Throws `invalid_options` for a schema or indexes that name unknown collections or columns.
 */
export function attachSql(client: SyncClient, options: SqlOptions = {}): SqlDatabase {
  const existing = sqlOf(client);
  if (existing) return existing;
  if (typeof Worker === 'undefined') {
    throw new SyncError('invalid_options', 'syncline/sqlite needs Web Workers (a browser page)');
  }
  // Checked here too, so a bad schema throws at the call instead of failing `ready`.
  tableSpecs(client.options.collections, options.schema, options.indexes);
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'syncline-sqlite' });
  const db = new WorkerSqlDatabase(client, options, worker, () => {
    if (sqlOf(client) === db) setSqlOf(client, null);
  });
  setSqlOf(client, db);
  return db;
}

/** The database attachSql gave `client`, or null. */
export { sqlOf } from './attached.js';
