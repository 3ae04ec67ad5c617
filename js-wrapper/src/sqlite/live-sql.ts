// Layer: js-wrapper/sqlite, page side. One live statement: runs it once, keeps the answer as a
// frozen state, then takes the new answers the worker sends with the change batches that can
// change it (the worker decides and re-runs: dependencies.ts, mirror.ts), so a refresh is one
// round trip to the worker, not two.
import { fromWire, SyncError } from '../errors.js';
import { deepFreeze, Subject } from '../observable.js';
import type { LiveStatement, QueryOutput, RunFailure, SqlParams } from './protocol.js';
import type { LiveSql, SqlResult, SqlState } from './types.js';

export interface LiveSqlRunner {
  run(sql: string, params: SqlParams | undefined): Promise<QueryOutput>;
}

const LOADING: SqlState<never> = Object.freeze({ result: null, error: null, loading: true });

// BigInt (an INTEGER beyond 2^53) has no JSON form of its own.
const jsonOf = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));

let nextId = 1;

export class LiveSqlQuery<Row> implements LiveSql<Row> {
  /** Names this statement in the batches' re-run lists and their answers. */
  readonly id = nextId++;
  private readonly subject = new Subject<SqlState<Row>>(LOADING as SqlState<Row>);
  /** Its first run failed: SQLite refused it, and the tables' shape never changes, so it would
   * fail again. It is left out of the batches' re-runs. */
  private refused = false;
  private closed = false;
  private lastJson = '';

  constructor(
    runner: LiveSqlRunner,
    private readonly sql: string,
    private readonly params: SqlParams | undefined,
    private readonly onClose: (q: LiveSqlQuery<Row>) => void,
  ) {
    runner.run(sql, params).then((out) => this.deliver(out), (e: unknown) => {
      this.refused = true;
      this.fail(e instanceof SyncError ? e : new SyncError('internal', e instanceof Error ? e.message : String(e), { cause: e }));
    });
  }

  getSnapshot = (): SqlState<Row> => this.subject.getSnapshot();
  subscribe = (listener: () => void): (() => void) => this.subject.subscribe(listener);

  /** What the worker re-runs after a batch, or null while it should not (refused, closed). */
  get statement(): LiveStatement | null {
    if (this.closed || this.refused) return null;
    return { id: this.id, sql: this.sql, params: this.params };
  }

  /** A new answer: from the first run, or the worker's re-run after a batch. Answers arrive in
   * the order the worker made them (it handles one request at a time), so the last one wins. */
  deliver(out: QueryOutput | RunFailure): void {
    if (this.closed) return;
    if ('code' in out) {
      this.fail(fromWire(out.code, out.message));
      return;
    }
    // Same rows as last time (a change to a row this statement filters out, say): keep the
    // state object, so React does not re-render.
    const json = jsonOf([out.columns, out.rows]);
    if (json === this.lastJson) return;
    this.lastJson = json;
    const result = deepFreeze({ columns: out.columns, rows: out.rows, tables: out.tables }) as SqlResult<Row>;
    this.subject.set(Object.freeze({ result, error: null, loading: false }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
  }

  private fail(error: SyncError): void {
    if (this.closed) return;
    this.lastJson = '';
    this.subject.set(Object.freeze({ result: null, error, loading: false }));
  }
}
