// Layer: js-wrapper/sqlite (no SQLite import). Which SQL database is attached to which client,
// so `useSql` in syncline/react finds it without importing SQLite into the React entry.
import type { SyncClient } from '../types.js';
import type { SqlDatabase } from './types.js';

const attached = new WeakMap<SyncClient, SqlDatabase>();

export function sqlOf(client: SyncClient): SqlDatabase | null {
  return attached.get(client) ?? null;
}

export function setSqlOf(client: SyncClient, db: SqlDatabase | null): void {
  if (db) attached.set(client, db);
  else attached.delete(client);
}
