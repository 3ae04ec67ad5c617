// Layer: js-wrapper/sqlite, page side. One live statement: runs it, keeps the answer as a frozen
// state, and runs it again only when a change batch can change its answer (a row of a table it
// reads came or went, or a column it reads changed: dependencies.ts). One run is in flight at a
// time; changes meanwhile make one more run after it, not one per change.
import { SyncError } from '../errors.js';
import { deepFreeze, Subject } from '../observable.js';
import { mayChange } from './dependencies.js';
import type { StatementReads } from './dependencies.js';
import type { ChangeSummary, QueryOutput, SqlParams } from './protocol.js';
import type { LiveSql, SqlResult, SqlState } from './types.js';

export interface LiveSqlRunner {
  run(sql: string, params: SqlParams | undefined): Promise<QueryOutput>;
}

const LOADING: SqlState<never> = Object.freeze({ result: null, error: null, loading: true });

// BigInt (an INTEGER beyond 2^53) has no JSON form of its own.
const jsonOf = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));

export class LiveSqlQuery<Row> implements LiveSql<Row> {
  private readonly subject = new Subject<SqlState<Row>>(LOADING as SqlState<Row>);
  /** What the statement reads, known after its first successful run. */
  private reads: StatementReads | null = null;
  private running = false;
  private again = false;
  private closed = false;
  private lastJson = '';

  constructor(
    private readonly runner: LiveSqlRunner,
    private readonly sql: string,
    private readonly params: SqlParams | undefined,
    private readonly onClose: (q: LiveSqlQuery<Row>) => void,
  ) {
    void this.rerun();
  }

  getSnapshot = (): SqlState<Row> => this.subject.getSnapshot();
  subscribe = (listener: () => void): (() => void) => this.subject.subscribe(listener);

  /** A batch the worker applied. A statement that failed is not run again: the tables' shape
   * never changes, so neither would its error. */
  changed(batch: ChangeSummary): void {
    if (this.closed) return;
    if (!this.reads) {
      // The first run is in flight and may have been sent before this change: run once more.
      if (this.running) this.again = true;
      return;
    }
    if (mayChange(this.reads, batch)) void this.rerun();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
  }

  private async rerun(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        await this.runOnce();
      } while (this.again && !this.closed);
    } finally {
      this.running = false;
    }
  }

  private async runOnce(): Promise<void> {
    let out: QueryOutput;
    try {
      out = await this.runner.run(this.sql, this.params);
    } catch (e) {
      if (this.closed) return;
      const error = e instanceof SyncError ? e : new SyncError('internal', e instanceof Error ? e.message : String(e), { cause: e });
      this.reads = null;
      this.lastJson = '';
      this.subject.set(Object.freeze({ result: null, error, loading: false }));
      return;
    }
    if (this.closed) return;
    this.reads = { reads: out.reads, volatile: out.volatile };
    // Same rows as last time (a change to a row this statement filters out, say): keep the
    // state object, so React does not re-render.
    const json = jsonOf([out.columns, out.rows]);
    if (json === this.lastJson) return;
    this.lastJson = json;
    const result = deepFreeze({ columns: out.columns, rows: out.rows, tables: out.tables }) as SqlResult<Row>;
    this.subject.set(Object.freeze({ result, error: null, loading: false }));
  }
}
