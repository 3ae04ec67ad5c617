// Layer: js-wrapper/sqlite, the dedicated worker's entry (started by database.ts). SQLite runs
// here because OPFS's synchronous access handles exist only in dedicated workers, and so a long
// query never blocks the page. Requests are handled one at a time, in arrival order: a query
// sent after a change batch sees that batch.
import sqlite3InitModule from '@sqlite.org/sqlite-wasm';
import type { Sqlite3Static } from '@sqlite.org/sqlite-wasm';
import { SyncError } from '../errors.js';
import { SqlMirror, SqlStatementError } from './mirror.js';
import { openDatabase } from './open-storage.js';
import { BatchApplier } from './reruns.js';
import type { OpenInfo, WorkerReply, WorkerRequest } from './protocol.js';
import { tableSpecs } from './schema.js';

let sqlite3: Promise<Sqlite3Static> | null = null;
let mirror: SqlMirror | null = null;
let batches: BatchApplier | null = null;
/** Change batches received and not yet applied: while one waits, the one before it leaves the
 * re-runs of live statements to it (reruns.ts). */
let appliesWaiting = 0;
/** Why `open` failed: every later request fails with it, not with a vaguer "not open". */
let openFailure: unknown = null;

async function open(req: Extract<WorkerRequest, { type: 'open' }>): Promise<OpenInfo> {
  sqlite3 ??= sqlite3InitModule();
  const s = await sqlite3;
  const specs = tableSpecs(req.collections, req.schema, req.indexes);
  const { db, info } = await openDatabase(s, req.storage);
  mirror = new SqlMirror(s, db, specs);
  batches = new BatchApplier(mirror);
  return info;
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.type) {
    case 'open':
      try {
        return await open(req);
      } catch (e) {
        openFailure = e;
        throw e;
      }
    case 'apply':
      appliesWaiting--;
      opened();
      return batches!.apply(req.rows, req.reset, req.live, appliesWaiting > 0);
    case 'query':
      return opened().query(req.sql, req.params);
    case 'close':
      mirror?.close();
      mirror = null;
      batches = null;
      return null;
  }
}

function opened(): SqlMirror {
  if (openFailure) throw openFailure;
  if (!mirror) throw new SyncError('closed', 'the SQL database is closed');
  return mirror;
}

function failure(id: number, e: unknown): WorkerReply {
  if (e instanceof SqlStatementError) return { id, ok: false, code: 'sql_error', message: e.message };
  if (e instanceof SyncError) return { id, ok: false, code: e.code, message: e.message };
  return { id, ok: false, code: 'internal', message: e instanceof Error ? e.message : String(e) };
}

let queue: Promise<void> = Promise.resolve();
self.onmessage = (ev: MessageEvent<WorkerRequest>) => {
  const req = ev.data;
  if (req.type === 'apply') appliesWaiting++;
  queue = queue.then(async () => {
    let reply: WorkerReply;
    try {
      reply = { id: req.id, ok: true, value: await handle(req) };
    } catch (e) {
      reply = failure(req.id, e);
    }
    self.postMessage(reply);
  });
};
