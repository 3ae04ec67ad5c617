// Layer: js-wrapper/sqlite, worker side. The replica's optimistic view as SQLite tables, one per
// collection, and read-only queries over them. Depends on an opened sqlite3 `Database` only (no
// worker or browser globals), so Node tests run it over an in-memory database.
//
// The tables are derived data: the page sends every visible document when it attaches, then
// each change batch. Nothing here survives a restart on purpose; the replica is the truth.
import type { BindingSpec, Database, PreparedStatement, Sqlite3Static } from '@sqlite.org/sqlite-wasm';
import type { MirrorRow, QueryOutput, SqlParams } from './protocol.js';
import { columnValue, createTableSql, quoteIdent } from './schema.js';
import type { TableSpec } from './schema.js';

/** A statement SQLite refused, with SQLite's own message (the page makes it `sql_error`). */
export class SqlStatementError extends Error {
  override name = 'SqlStatementError';
}

interface TableStatements {
  spec: TableSpec;
  upsert: PreparedStatement;
  remove: PreparedStatement;
}

// oo1 prefixes SQLite's message with the result code's name and number; the app wants the message.
const OO1_PREFIX = /^SQLITE_[A-Z_]+: sqlite3 result code \d+: /;

function messageOf(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.replace(OO1_PREFIX, '');
}

export class SqlMirror {
  private readonly tables = new Map<string, TableStatements>();
  /** The tables a statement being prepared reads, collected by the authorizer; null otherwise. */
  private reading: Set<string> | null = null;

  constructor(private readonly sqlite3: Sqlite3Static, private readonly db: Database, specs: readonly TableSpec[]) {
    const capi = sqlite3.capi;
    // SQLITE_READ names the table of every column a statement reads: through joins, subqueries,
    // CTEs and aggregates alike, which a scan of the SQL text could not promise.
    capi.sqlite3_set_authorizer(db, (_arg, action, table) => {
      if (this.reading && action === capi.SQLITE_READ && typeof table === 'string' && this.tables.has(table)) {
        this.reading.add(table);
      }
      return capi.SQLITE_OK;
    }, 0);
    db.exec('BEGIN');
    try {
      for (const spec of specs) {
        // A database kept in OPFS may hold another schema's tables from an earlier run.
        db.exec(`DROP TABLE IF EXISTS ${quoteIdent(spec.name)}`);
        db.exec(createTableSql(spec));
      }
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      throw e;
    }
    for (const spec of specs) {
      const names = ['id', 'version', 'pending', 'fields', ...spec.columns.map((c) => quoteIdent(c.name))];
      this.tables.set(spec.name, {
        spec,
        upsert: db.prepare(`INSERT OR REPLACE INTO ${quoteIdent(spec.name)} (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')})`),
        remove: db.prepare(`DELETE FROM ${quoteIdent(spec.name)} WHERE id = ?`),
      });
    }
  }

  /** Applies one change batch in one transaction; returns the tables it touched. Rows of a
   * collection without a table are ignored. */
  apply(rows: readonly MirrorRow[], reset: boolean): string[] {
    const touched = new Set<string>();
    this.db.exec('BEGIN');
    try {
      if (reset) {
        for (const name of this.tables.keys()) {
          this.db.exec(`DELETE FROM ${quoteIdent(name)}`);
          touched.add(name);
        }
      }
      for (const r of rows) {
        const t = this.tables.get(r.collection);
        if (!t) continue;
        touched.add(r.collection);
        if (r.fields === null) {
          t.remove.bind([r.id]).stepReset();
          continue;
        }
        const f = r.fields;
        const values = [r.id, r.version, r.pending ? 1 : 0, JSON.stringify(f), ...t.spec.columns.map((c) => columnValue(c.type, f[c.name]))];
        t.upsert.bind(values).stepReset();
      }
      this.db.exec('COMMIT');
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
    return [...touched];
  }

  /** Runs one read-only statement. Throws SqlStatementError for what SQLite refuses, and for a
   * statement that would write: the tables mirror the replica, and writes go through it. */
  query(sql: string, params?: SqlParams): QueryOutput {
    if (typeof sql !== 'string') throw new SqlStatementError('the statement must be a string');
    const read = new Set<string>();
    let stmt: PreparedStatement;
    this.reading = read;
    try {
      stmt = this.db.prepare(sql);
    } catch (e) {
      throw new SqlStatementError(messageOf(e));
    } finally {
      this.reading = null;
    }
    try {
      if (!this.sqlite3.capi.sqlite3_stmt_readonly(stmt)) {
        throw new SqlStatementError('only read-only statements run here: the tables mirror the replica, write through collection().insert/update/delete');
      }
      if (params !== undefined) stmt.bind(params as BindingSpec);
      const columns = stmt.getColumnNames();
      const rows: Record<string, unknown>[] = [];
      while (stmt.step()) rows.push(stmt.get({}));
      return { columns, rows, tables: [...read].sort() };
    } catch (e) {
      if (e instanceof SqlStatementError) throw e;
      throw new SqlStatementError(messageOf(e));
    } finally {
      stmt.finalize();
    }
  }

  close(): void {
    for (const t of this.tables.values()) {
      t.upsert.finalize();
      t.remove.finalize();
    }
    this.tables.clear();
    this.db.close();
  }
}
