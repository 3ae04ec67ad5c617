// Layer: js-wrapper/sqlite, worker side. The replica's optimistic view as SQLite tables, one per
// collection, and read-only queries over them. Depends on an opened sqlite3 `Database` only (no
// worker or browser globals), so Node tests run it over an in-memory database.
//
// The tables are derived data: the page sends every visible document when it attaches, then
// each change batch. Nothing here survives a restart on purpose; the replica is the truth.
import type { BindingSpec, Database, PreparedStatement, Sqlite3Static } from '@sqlite.org/sqlite-wasm';
import { mayChange, VOLATILE_FUNCTIONS } from './dependencies.js';
import type { ChangeSummary, MirrorRow, QueryOutput, SqlParams } from './protocol.js';
import { columnValue, createIndexSql, createTableSql, quoteIdent } from './schema.js';
import type { TableSpec } from './schema.js';

/** A statement SQLite refused, with SQLite's own message (the page makes it `sql_error`). */
export class SqlStatementError extends Error {
  override name = 'SqlStatementError';
}

/** A statement prepared once per text and kept: preparing a join costs about as much as running
 * it over a small table, and a live statement runs the same text on every change. */
interface CachedStatement {
  stmt: PreparedStatement;
  /** What it reads, from the authorizer when it was prepared. */
  tables: string[];
  reads: Record<string, string[]>;
  volatile: boolean;
  columns: string[];
}

/** What the authorizer saw while one statement was prepared. */
interface Reading {
  reads: Map<string, Set<string>>;
  volatile: boolean;
}

// Enough for the live statements of a page and then some; the least recently used goes first.
const MAX_CACHED = 64;

interface TableStatements {
  spec: TableSpec;
  /** The row's columns after id, lower case, in the order upsert binds them after the id. */
  names: string[];
  upsert: PreparedStatement;
  /** The row as it is now (those columns), to say which of them a batch changed. */
  current: PreparedStatement;
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
  /** What a statement being prepared reads, collected by the authorizer; null otherwise. */
  private reading: Reading | null = null;
  /** By text, least recently used first (a Map keeps insertion order). */
  private readonly statements = new Map<string, CachedStatement>();

  constructor(private readonly sqlite3: Sqlite3Static, private readonly db: Database, specs: readonly TableSpec[]) {
    const capi = sqlite3.capi;
    // SQLITE_READ names every column a statement reads with its table (an empty column for a
    // table it only counts rows of): through joins, subqueries, CTEs and aggregates alike,
    // which a scan of the SQL text could not promise. SQLITE_FUNCTION names the functions.
    capi.sqlite3_set_authorizer(db, (_arg, action, p1, p2) => {
      const r = this.reading;
      if (!r) return capi.SQLITE_OK;
      if (action === capi.SQLITE_READ && typeof p1 === 'string' && this.tables.has(p1)) {
        let cols = r.reads.get(p1);
        if (!cols) r.reads.set(p1, (cols = new Set()));
        if (typeof p2 === 'string' && p2) cols.add(p2.toLowerCase());
      } else if (action === capi.SQLITE_FUNCTION && typeof p2 === 'string' && VOLATILE_FUNCTIONS.has(p2.toLowerCase())) {
        r.volatile = true;
      }
      return capi.SQLITE_OK;
    }, 0);
    db.exec('BEGIN');
    try {
      for (const spec of specs) {
        // A database kept in OPFS may hold another schema's tables from an earlier run.
        db.exec(`DROP TABLE IF EXISTS ${quoteIdent(spec.name)}`);
        db.exec(createTableSql(spec));
        for (const index of createIndexSql(spec)) db.exec(index);
      }
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      throw e;
    }
    for (const spec of specs) {
      const names = ['id', 'version', 'pending', 'fields', ...spec.columns.map((c) => quoteIdent(c.name))];
      // An update in place, not INSERT OR REPLACE (a delete and an insert): SQLite then rewrites
      // only the index entries whose columns changed.
      const set = names.slice(1).map((n) => `${n} = excluded.${n}`).join(', ');
      this.tables.set(spec.name, {
        spec,
        names: ['version', 'pending', 'fields', ...spec.columns.map((c) => c.name.toLowerCase())],
        current: db.prepare(`SELECT ${names.slice(1).join(', ')} FROM ${quoteIdent(spec.name)} WHERE id = ?`),
        upsert: db.prepare(`INSERT INTO ${quoteIdent(spec.name)} (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')}) ON CONFLICT (id) DO UPDATE SET ${set}`),
        remove: db.prepare(`DELETE FROM ${quoteIdent(spec.name)} WHERE id = ?`),
      });
    }
    // One transaction for the mirror's whole life, never committed; each batch is a savepoint
    // in it. The tables are derived data that the next attach rebuilds anyway, and a commit is
    // what writes SQLite's changed pages to the file: in OPFS that cost about 10 ms per batch
    // (a third of a 5,000-document live refresh). Uncommitted, pages reach the file only when
    // the page cache is full, and queries of this connection see every batch as usual.
    db.exec('BEGIN');
  }

  /** Applies one change batch, all or nothing (a savepoint); returns what it changed, per table (a live
   * statement re-runs only if that can change its answer). Rows of a collection without a
   * table are ignored; a row that is already as sent is not written again. */
  apply(rows: readonly MirrorRow[], reset: boolean): ChangeSummary {
    const summary: Record<string, { rows: boolean; columns: Set<string> }> = {};
    const changeOf = (table: string) => (summary[table] ??= { rows: false, columns: new Set() });
    this.db.exec('SAVEPOINT batch');
    try {
      if (reset) {
        for (const name of this.tables.keys()) {
          this.db.exec(`DELETE FROM ${quoteIdent(name)}`);
          changeOf(name).rows = true;
        }
      }
      for (const r of rows) {
        const t = this.tables.get(r.collection);
        if (!t) continue;
        if (r.fields === null) {
          t.remove.bind([r.id]).stepReset();
          if (this.db.changes() > 0) changeOf(r.collection).rows = true;
          continue;
        }
        const f = r.fields;
        const values = [r.version, r.pending ? 1 : 0, JSON.stringify(f), ...t.spec.columns.map((c) => columnValue(c.type, f[c.name]))];
        // After a reset every row is new: no need to look.
        const old = reset ? undefined : this.currentRow(t, r.id);
        if (!old) {
          changeOf(r.collection).rows = true;
        } else {
          let same = true;
          for (let i = 0; i < values.length; i++) {
            // Strict equality errs only one way: a value SQLite stored converted (text '5' in
            // an integer column) counts as changed, and a statement re-runs for nothing.
            if (old[i] !== values[i]) {
              changeOf(r.collection).columns.add(t.names[i]!);
              same = false;
            }
          }
          if (same) continue;
        }
        t.upsert.bind([r.id, ...values]).stepReset();
      }
      this.db.exec('RELEASE batch');
    } catch (e) {
      this.db.exec('ROLLBACK TO batch; RELEASE batch');
      throw e;
    }
    const out: ChangeSummary = {};
    for (const [table, c] of Object.entries(summary)) {
      if (c.rows || c.columns.size) out[table] = { rows: c.rows, columns: [...c.columns] };
    }
    return out;
  }

  private currentRow(t: TableStatements, id: string): unknown[] | undefined {
    try {
      t.current.bind([id]);
      return t.current.step() ? (t.current.get([]) as unknown[]) : undefined;
    } finally {
      t.current.reset(true);
    }
  }

  /** Runs one read-only statement. Throws SqlStatementError for what SQLite refuses, and for a
   * statement that would write: the tables mirror the replica, and writes go through it. */
  query(sql: string, params?: SqlParams): QueryOutput {
    if (typeof sql !== 'string') throw new SqlStatementError('the statement must be a string');
    const cached = this.prepared(sql);
    const { stmt } = cached;
    try {
      if (params !== undefined) stmt.bind(params as BindingSpec);
      const rows: Record<string, unknown>[] = [];
      while (stmt.step()) rows.push(stmt.get({}));
      return { columns: cached.columns, rows, tables: cached.tables };
    } catch (e) {
      throw new SqlStatementError(messageOf(e));
    } finally {
      // Ready for the next run, with no parameter of this one left bound.
      stmt.reset(true);
    }
  }

  /** Whether a batch that made `changes` can change the answer of `sql`, from what SQLite said
   * it reads. Throws SqlStatementError for a statement SQLite refuses. */
  mayChange(sql: string, changes: ChangeSummary): boolean {
    return mayChange(this.prepared(sql), changes);
  }

  /** The statement for `sql` from the cache, or prepared now (and its tables collected). */
  private prepared(sql: string): CachedStatement {
    const hit = this.statements.get(sql);
    if (hit) {
      this.statements.delete(sql);
      this.statements.set(sql, hit);
      return hit;
    }
    const read: Reading = { reads: new Map(), volatile: false };
    let stmt: PreparedStatement;
    this.reading = read;
    try {
      stmt = this.db.prepare(sql);
    } catch (e) {
      throw new SqlStatementError(messageOf(e));
    } finally {
      this.reading = null;
    }
    if (!this.sqlite3.capi.sqlite3_stmt_readonly(stmt)) {
      stmt.finalize();
      throw new SqlStatementError('only read-only statements run here: the tables mirror the replica, write through collection().insert/update/delete');
    }
    const reads: Record<string, string[]> = {};
    for (const [table, cols] of read.reads) reads[table] = [...cols].sort();
    const entry = { stmt, tables: Object.keys(reads).sort(), reads, volatile: read.volatile, columns: stmt.getColumnNames() };
    this.statements.set(sql, entry);
    if (this.statements.size > MAX_CACHED) {
      const [oldest, old] = this.statements.entries().next().value as [string, CachedStatement];
      this.statements.delete(oldest);
      old.stmt.finalize();
    }
    return entry;
  }

  close(): void {
    for (const s of this.statements.values()) s.stmt.finalize();
    this.statements.clear();
    for (const t of this.tables.values()) {
      t.upsert.finalize();
      t.current.finalize();
      t.remove.finalize();
    }
    this.tables.clear();
    // Nothing to keep: the next attach rebuilds the tables.
    this.db.exec('ROLLBACK');
    this.db.close();
  }
}
