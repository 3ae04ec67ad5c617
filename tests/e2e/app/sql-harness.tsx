// SQL harness (syncline/sqlite): a real client with its SQL database attached, driven through
// window.sqlHarness by tests/e2e/sql.test.mjs, and a React component showing one live statement
// through useSql, which counts its renders and keeps what each showed.
import { createRoot } from 'react-dom/client';
import { createClient, SyncError } from 'syncline';
import type { ClientOptions, SyncClient, UpdateOptions } from 'syncline';
import { SyncProvider, useSql } from 'syncline/react';
import { attachSql } from 'syncline/sqlite';
import type { SqlDatabase, SqlOptions, SqlParams } from 'syncline/sqlite';

type Outcome = { state: 'pending' } | { state: 'applied' } | { state: 'rejected'; code: string; message: string };

let client: SyncClient | null = null;
let db: SqlDatabase | null = null;
const outcomes: Record<string, Outcome> = {};
// Every render of the live component: its rows as JSON, and its error code.
const renders: { rows: string; error: string | null; loading: boolean }[] = [];

function Live({ sql, params }: { sql: string; params?: SqlParams }) {
  const { rows, error, isLoading } = useSql(sql, params);
  renders.push({ rows: JSON.stringify(rows), error: error ? `${error.code}: ${error.message}` : null, loading: isLoading });
  return <pre id="live">{JSON.stringify(rows)}</pre>;
}

const failure = (e: unknown) => e instanceof SyncError
  ? { ok: false as const, code: e.code, message: e.message }
  : { ok: false as const, code: 'not-a-SyncError', message: String(e) };

const sqlHarness = {
  /** Creates the client, attaches SQL, and renders the live statement `live` (if given). */
  async start(options: ClientOptions, sqlOptions: SqlOptions, live?: { sql: string; params?: SqlParams }) {
    client = await createClient(options);
    db = attachSql(client, sqlOptions);
    const info = await db.ready;
    if (live) {
      createRoot(document.getElementById('root')!).render(
        <SyncProvider client={client}><Live sql={live.sql} params={live.params} /></SyncProvider>,
      );
    }
    return { info, role: client.status.role, sameDb: attachSql(client) === db };
  },
  async query(sql: string, params?: SqlParams) {
    try {
      const r = await db!.query(sql, params);
      return { ok: true as const, rows: r.rows, columns: r.columns, tables: r.tables, frozen: Object.isFrozen(r.rows) && r.rows.every((x) => Object.isFrozen(x)) };
    } catch (e) {
      return failure(e);
    }
  },
  write(op: 'insert' | 'update' | 'delete', collection: string, id: string, fields?: Record<string, unknown>, options: UpdateOptions = {}) {
    const c = client!.collection(collection);
    const w = op === 'insert' ? c.insert(fields ?? {}, { id }) : op === 'update' ? c.update(id, fields ?? {}, options) : c.delete(id, options);
    const key = `${collection}/${id}#${w.mid}`;
    outcomes[key] = { state: 'pending' };
    w.then(() => (outcomes[key] = { state: 'applied' }), (e: SyncError) => (outcomes[key] = { state: 'rejected', code: e.code, message: e.message }));
    return key;
  },
  outcome(key: string) {
    return outcomes[key];
  },
  get(collection: string, id: string) {
    return client!.collection(collection).get(id);
  },
  status() {
    return client!.status;
  },
  renders() {
    return renders;
  },
  lastRender() {
    return renders.at(-1) ?? null;
  },
  goOffline() {
    client!.goOffline();
  },
  goOnline() {
    client!.goOnline();
  },
  async close() {
    await db?.close();
    await client?.close();
  },
};

(window as unknown as Record<string, unknown>).sqlHarness = sqlHarness;
(window as unknown as Record<string, unknown>).harnessReady = true;
