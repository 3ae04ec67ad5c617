// Layer: js-wrapper/sqlite (types only). The messages between the page and the SQLite worker.
// One request per message, answered by one reply with the same `id`; a change batch of the
// replica is one `apply` request, however many documents it carries.
import type { SqlSchema } from './schema.js';

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
  | { id: number; type: 'open'; collections: string[]; schema: SqlSchema; storage: 'auto' | 'memory' }
  /** `reset`: the rows are every visible document (the tables are emptied first). */
  | { id: number; type: 'apply'; rows: MirrorRow[]; reset: boolean }
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

export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; code: string; message: string };
