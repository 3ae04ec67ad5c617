// Layer: demo. The SQL database of the Reports page (syncline/sqlite): attached to the page's
// client while the page is shown. SQLite loads only when an admin opens Reports; the other
// pages never import it.
import { useEffect, useMemo } from 'react';
import type { SyncClient } from 'syncline';
import { useSyncClient } from 'syncline/react';
import { attachSql } from 'syncline/sqlite';
import type { SqlDatabase, SqlOptions } from 'syncline/sqlite';

/** The bill and customer fields the reports read get columns; the indexes serve the join
 * (customer_id) and the per-branch, per-month grouping. */
export const REPORT_SQL: SqlOptions = {
  schema: {
    bills: { branch: 'text', customer_id: 'text', total: 'integer', status: 'text', created_at: 'integer' },
    customers: { company: 'text', tier: 'text' },
  },
  indexes: { bills: [['customer_id'], ['branch', 'created_at']] },
};

// Per client, the close a just-unmounted page scheduled: StrictMode (and a quick way back to
// the page) mounts it again at once, and then the database is kept instead of rebuilt.
const closing = new WeakMap<SyncClient, ReturnType<typeof setTimeout>>();

export function useReportsDb(): SqlDatabase {
  const client = useSyncClient();
  // attachSql gives a client one database: calling it on every render is cheap and safe.
  const db = useMemo(() => attachSql(client, REPORT_SQL), [client]);
  useEffect(() => {
    clearTimeout(closing.get(client));
    return () => {
      closing.set(client, setTimeout(() => void db.close(), 1000));
    };
  }, [client, db]);
  return db;
}
