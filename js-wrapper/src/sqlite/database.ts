// Layer: js-wrapper/sqlite, page side. The SqlDatabase an app gets from attachSql: talks to the
// SQLite worker (one request per message, replies matched by id), feeds it the client's change
// batches with the list of live statements, and hands each statement the new answer the worker
// sends back with the batch that changed it.
import { fromWire, SyncError } from '../errors.js';
import { deepFreeze } from '../observable.js';
import type { SyncClient } from '../types.js';
import { startFeed } from './feed.js';
import { LiveSqlQuery } from './live-sql.js';
import type { ApplyOutput, LiveStatement, MirrorRow, OpenInfo, QueryOutput, SqlParams, WorkerReply, WorkerRequest } from './protocol.js';
import type { LiveSql, SqlDatabase, SqlInfo, SqlOptions, SqlResult } from './types.js';

// A request before call() numbers it (Omit over each member of the union, not the union).
type Unnumbered<R> = R extends unknown ? Omit<R, 'id'> : never;
type Request = Unnumbered<WorkerRequest>;

export class WorkerSqlDatabase implements SqlDatabase {
  readonly ready: Promise<SqlInfo>;
  info: SqlInfo | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: SyncError): void }>();
  private readonly live = new Set<LiveSqlQuery<unknown>>();
  private readonly collections: string[];
  private stopFeed: (() => void) | null = null;
  /** The first batch (every document) applied. */
  private loaded: Promise<unknown> = Promise.resolve();
  private broken: SyncError | null = null;
  private closing: Promise<void> | null = null;

  constructor(client: SyncClient, options: SqlOptions, private readonly worker: Worker, private readonly onClosed: () => void) {
    this.collections = [...client.options.collections];
    worker.onmessage = (ev: MessageEvent<WorkerReply>) => this.settle(ev.data);
    // The module failed to load or threw outside a request: nothing will answer any more.
    worker.onerror = (ev) => {
      ev.preventDefault();
      this.fail(new SyncError('internal', `the SQLite worker failed: ${ev.message || 'could not load'}`));
    };
    const opened = this.call<OpenInfo>({
      type: 'open', collections: this.collections, schema: options.schema ?? {}, indexes: options.indexes ?? {}, storage: options.storage ?? 'auto',
    });
    // Started now, in the same task as the open request: the first batch (every document)
    // follows it in the worker's queue, and no change is missed in between.
    this.stopFeed = startFeed(client, this.collections, (rows, reset) => this.send(rows, reset));
    // Ready once that first batch is in the tables, not merely once SQLite is open.
    this.ready = Promise.all([opened, this.loaded]).then(([info]) => (this.info = Object.freeze({ ...info })));
    // Unhandled when the app only uses query()/watch(): their own promises carry the failure.
    this.ready.catch(() => {});
  }

  query<Row = Record<string, unknown>>(sql: string, params?: SqlParams): Promise<SqlResult<Row>> {
    return this.run(sql, params).then((out) => deepFreeze({ columns: out.columns, rows: out.rows, tables: out.tables }) as SqlResult<Row>);
  }

  watch<Row = Record<string, unknown>>(sql: string, params?: SqlParams): LiveSql<Row> {
    const q = new LiveSqlQuery<Row>({ run: (s, p) => this.run(s, p) }, sql, params, (x) => this.live.delete(x as LiveSqlQuery<unknown>));
    this.live.add(q as LiveSqlQuery<unknown>);
    return q;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // Detached at once: an attachSql for this client from now on starts a new database
      // instead of getting this closing one (a component that unmounts and mounts again).
      this.onClosed();
      this.stopFeed?.();
      this.stopFeed = null;
      for (const q of [...this.live]) q.close();
      await this.call({ type: 'close' }).catch(() => {});
      this.worker.terminate();
      this.fail(new SyncError('closed', 'the SQL database was closed'));
    })();
    return this.closing;
  }

  private run(sql: string, params: SqlParams | undefined): Promise<QueryOutput> {
    return this.call<QueryOutput>({ type: 'query', sql, params });
  }

  private send(rows: MirrorRow[], reset: boolean): void {
    // The worker re-runs the statements the batch can change (rows came or went, or columns
    // they read changed) right after applying it, and answers with their new results.
    const live = [...this.live].map((q) => q.statement).filter((s): s is LiveStatement => s !== null);
    const applied = this.call<ApplyOutput>({ type: 'apply', rows, reset, live });
    if (reset) this.loaded = applied;
    applied.then((out) => {
      for (const q of [...this.live]) {
        const r = out.results[q.id];
        if (r) q.deliver(r);
      }
    }, (e: SyncError) => {
      // The mirror no longer matches the replica; say so on every live statement.
      if (e.code !== 'closed') this.fail(e);
    });
  }

  private call<T>(req: Request): Promise<T> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id } as WorkerRequest);
    });
  }

  private settle(reply: WorkerReply): void {
    const w = this.waiting.get(reply.id);
    if (!w) return;
    this.waiting.delete(reply.id);
    if (reply.ok) w.resolve(reply.value);
    else w.reject(fromWire(reply.code, reply.message));
  }

  private fail(error: SyncError): void {
    this.broken ??= error;
    for (const w of this.waiting.values()) w.reject(error);
    this.waiting.clear();
  }
}
