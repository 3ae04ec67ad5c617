// Layer: js-wrapper/sqlite (types only). The public face of `syncline/sqlite`.
import type { SyncError } from '../errors.js';
import type { Observable } from '../types.js';
import type { SqlParams, SqlStorage } from './protocol.js';
import type { SqlIndexes, SqlSchema } from './schema.js';

export type { SqlParams, SqlStorage } from './protocol.js';
export type { SqlColumnType, SqlIndexes, SqlSchema } from './schema.js';

export interface SqlOptions {
  /** Field columns per collection (the other fields stay in the `fields` JSON column). */
  schema?: SqlSchema;
  /** Indexes per collection, each a list of its columns (`id`, `version`, `pending` or declared
   * ones): what the statements filter, join, group or sort on. A live statement re-runs on every
   * change of a table it reads, so an index that lets it skip most rows pays on every change. */
  indexes?: SqlIndexes;
  /** 'auto' (default): in OPFS where this browser gives a worker synchronous access handles,
   * else in memory; 'memory': always in memory. */
  storage?: 'auto' | 'memory';
}

/** Where the tables live, known once `ready` resolved. */
export interface SqlInfo {
  readonly storage: SqlStorage;
  /** Why the tables are in memory although 'auto' was asked (no OPFS here, slots busy, ...). */
  readonly fallbackReason?: string;
  readonly sqliteVersion: string;
}

/** One run of a statement: frozen, and the same object while a live query's answer is unchanged. */
export interface SqlResult<Row = Record<string, unknown>> {
  readonly columns: readonly string[];
  readonly rows: readonly Readonly<Row>[];
  /** The collections the statement reads: a live query re-runs when one of them changes. */
  readonly tables: readonly string[];
}

export interface SqlState<Row = Record<string, unknown>> {
  /** The latest result; kept while a re-run is in flight, null before the first one. */
  readonly result: SqlResult<Row> | null;
  /** The statement failed (`sql_error` with SQLite's message); `result` is then null. */
  readonly error: SyncError | null;
  /** True until the first run answered. */
  readonly loading: boolean;
}

/** A live statement: re-runs when a collection it reads changes. */
export interface LiveSql<Row = Record<string, unknown>> extends Observable<SqlState<Row>> {
  close(): void;
}

export interface SqlDatabase {
  /** Resolves when the tables hold the replica's documents; rejects if SQLite could not start. */
  readonly ready: Promise<SqlInfo>;
  /** `ready`'s value once it resolved, else null. */
  readonly info: SqlInfo | null;
  /** Runs one read-only statement over the optimistic view (pending writes included).
   * Rejects with SyncError `sql_error` (SQLite's message) for a statement SQLite refuses. */
  query<Row = Record<string, unknown>>(sql: string, params?: SqlParams): Promise<SqlResult<Row>>;
  /** The statement as a live value (what `useSql` reads). Close it when done. */
  watch<Row = Record<string, unknown>>(sql: string, params?: SqlParams): LiveSql<Row>;
  /** Stops the feed and the worker; the client itself stays open. */
  close(): Promise<void>;
}
