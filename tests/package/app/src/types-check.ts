// Type-level checks of the package's public surface, compiled by `tsc --noEmit` with
// moduleResolution bundler and node10 (tsconfig.node10.json).
import { createClient, increment, serverTime, SyncError } from 'syncline';
import type { ClientOptions, DocumentChange, PublishedEvent, SyncClient, SyncStatus } from 'syncline';
import { SyncProvider, useCollection, useConnectionHealth } from 'syncline/react';
import type { HealthStatus, UseCollectionResult, UseSqlResult } from 'syncline/react';
import { attachSql } from 'syncline/sqlite';
import type { SqlDatabase, SqlInfo, SqlResult } from 'syncline/sqlite';

// The names that used to shadow the DOM's events are gone; the DOM's own still type-check.
// @ts-expect-error: renamed to PublishedEvent
import type { CustomEvent as _OldCustomEvent } from 'syncline';
// @ts-expect-error: renamed to DocumentChange
import type { DocumentEvent as _OldDocumentEvent } from 'syncline';
// Internals are not exported.
// @ts-expect-error: internal
import { SyncEngine as _SyncEngine } from 'syncline';
// @ts-expect-error: internal
import { loadSyncline as _loadSyncline } from 'syncline';
// @ts-expect-error: internal
import { SyncClientContext as _Ctx } from 'syncline/react';
// @ts-expect-error: internal
import { healthOf as _healthOf } from 'syncline/react';

export const domEvent: CustomEvent<number> = new CustomEvent('x', { detail: 1 });

export async function check(options: ClientOptions): Promise<void> {
  const client: SyncClient = await createClient(options);
  const db: SqlDatabase = attachSql(client, { schema: { todos: { title: 'text' } }, storage: 'auto' });
  const info: SqlInfo = await db.ready;
  const result: SqlResult<{ n: number }> = await db.query<{ n: number }>('SELECT count(*) AS n FROM todos WHERE title > ?', ['a']);
  const n: number | undefined = result.rows[0]?.n;
  const sqlHook: UseSqlResult<{ n: number }> | null = null;
  void info.storage, n, sqlHook;
  // @ts-expect-error: a column type outside the list
  attachSql(client, { schema: { todos: { title: 'varchar' } } });
  const status: SyncStatus = client.status;
  const code: string | undefined = status.lastError?.code;
  void code;
  const offA = client.onDocumentChange((e: DocumentChange) => void e.after);
  const offB = client.onEvent((e: PublishedEvent) => void e.data);
  offA();
  offB();
  await client.collection<{ n: number; at: number }>('counters').update('c', { n: increment(1), at: serverTime() });
  const err = new SyncError('network', 'x');
  void err.code;
  void SyncProvider;
  void useCollection;
  void useConnectionHealth;
  const h: HealthStatus = 'healthy';
  void h;
  const r: UseCollectionResult<{ n: number }> | null = null;
  void r;
}
