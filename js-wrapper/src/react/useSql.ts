// Layer: js-wrapper/react. A live SQL statement over the replica, read through
// useSyncExternalStore. Needs the database `attachSql(client)` (syncline/sqlite) gave the
// provider's client; this file does not import SQLite, so syncline/react keeps its size.
import { useMemo, useSyncExternalStore } from 'react';
import { SyncError } from '../errors.js';
import { sqlOf } from '../sqlite/attached.js';
import type { SqlParams } from '../sqlite/protocol.js';
import type { LiveSql, SqlState } from '../sqlite/types.js';
import { noopUnsubscribe } from './shared.js';
import { useLiveResource } from './useLiveResource.js';
import type { LiveSlot } from './useLiveResource.js';
import { useSyncClient } from './useSyncClient.js';

export interface UseSqlResult<Row = Record<string, unknown>> {
  /** The rows, frozen; the same array until the statement's answer changes. */
  readonly rows: readonly Readonly<Row>[];
  readonly columns: readonly string[];
  /** True until the first answer (SQLite answers from a worker, so there is one render without). */
  readonly isLoading: boolean;
  /** `sql_error` with SQLite's message for a statement it refuses; `invalid_options` when no
   * database is attached to the client. */
  readonly error: SyncError | null;
}

const EMPTY: readonly never[] = Object.freeze([]);
const LOADING: SqlState<never> = Object.freeze({ result: null, error: null, loading: true });

function sqlStore<Row>(slot: LiveSlot<LiveSql<Row>>) {
  let last = LOADING as SqlState<Row>;
  return {
    subscribe(onChange: () => void): () => void {
      if (slot.closed || slot.resource === null) return noopUnsubscribe;
      return slot.resource.subscribe(onChange);
    },
    getSnapshot(): SqlState<Row> {
      if (slot.closed || slot.resource === null) return last;
      last = slot.resource.getSnapshot();
      return last;
    },
  };
}

/**
 * Rows of a read-only statement, live: it runs again when a change touches rows or columns it reads
 * (local writes, the server's changes, other tabs' writes, rollbacks), and only then.
 *
 * ```tsx
 * // once, where the client is made: attachSql(client, { schema: { bills: { total: 'real', branch: 'text' } } });
 * function Revenue() {
 *   const { rows, error } = useSql<{ branch: string; revenue: number }>(
 *     'SELECT branch, sum(total) AS revenue FROM bills WHERE total > ? GROUP BY branch ORDER BY branch', [0]);
 *   if (error) return <p>{error.message}</p>;
 *   return <ul>{rows.map((r) => <li key={r.branch}>{r.branch}: {r.revenue}</li>)}</ul>;
 * }
 * ```
 */
export function useSql<Row = Record<string, unknown>>(sql: string, params?: SqlParams): UseSqlResult<Row> {
  const client = useSyncClient();
  // Params by content: an inline array is a new object every render.
  const paramsKey = params === undefined ? '' : JSON.stringify(params);
  const slot = useLiveResource(() => {
    const db = sqlOf(client);
    if (!db) throw new SyncError('invalid_options', 'useSql: call attachSql(client) from syncline/sqlite for this client first');
    return db.watch<Row>(sql, params);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- params by content (paramsKey)
  }, [client, sql, paramsKey]);
  const store = useMemo(() => sqlStore<Row>(slot), [slot]);
  const state = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  return useMemo(() => ({
    rows: state.result?.rows ?? EMPTY,
    columns: state.result?.columns ?? EMPTY,
    isLoading: slot.error === null && state.loading,
    error: slot.error ?? state.error,
  }), [state, slot.error]);
}
