// Layer: js-wrapper/sqlite (types only). The messages between the page and the SQLite worker.
// One request per message, answered by one reply with the same `id`; a change batch of the
// replica is one `apply` request, however many documents it carries.
import type { SqlIndexes, SqlSchema } from './schema.js';

/** A document as its table row holds it; `fields` null: the document is no longer visible. */
export interface MirrorRow {
  collection: string;
  id: string;
  version: number;
  pending: boolean;
  fields: Record<string, unknown> | null;
}

export type SqlParams = readonly unknown[] | Readonly<Record<string, unknown>>;

export type WorkerRequest =
  | { id: number; type: 'open'; collections: string[]; schema: SqlSchema; indexes: SqlIndexes; storage: 'auto' | 'memory' }
  /** `reset`: the rows are every visible document (the tables are emptied first). `live`: the
   * page's live statements, which the worker runs again if the batch can change their answer. */
  | { id: number; type: 'apply'; rows: MirrorRow[]; reset: boolean; live: LiveStatement[] }
  | { id: number; type: 'query'; sql: string; params: SqlParams | undefined }
  | { id: number; type: 'close' };

export type SqlStorage = 'opfs' | 'memory';

export interface OpenInfo {
  storage: SqlStorage;
  /** Why OPFS was not used (storage 'memory' when 'auto' was asked). */
  fallbackReason?: string;
  sqliteVersion: string;
}

export interface QueryOutput {
  columns: string[];
  rows: Record<string, unknown>[];
  /** The collections (tables) the statement reads. */
  tables: string[];
}

/** A live statement of the page, as an `apply` names it. */
export interface LiveStatement {
  id: number;
  sql: string;
  params: SqlParams | undefined;
}

/** A re-run that failed (SQLite's error, as a SyncError code and message). */
export interface RunFailure {
  code: string;
  message: string;
}

/** The answer to an `apply`: what it changed, and the new answers of the live statements it
 * can have changed (by LiveStatement id). None when another batch was already waiting: that
 * one re-runs them, for both. */
export interface ApplyOutput {
  changes: ChangeSummary;
  results: Record<number, QueryOutput | RunFailure>;
}

/** What one change batch did to one table: rows appeared or went (`rows`), and which columns
 * of rows that stayed changed value (lower case). */
export interface TableChange {
  rows: boolean;
  columns: string[];
}

/** The answer to an `apply`: per table the batch changed, how. Tables it left as they were
 * are absent. */
export type ChangeSummary = Record<string, TableChange>;

export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; code: string; message: string };
