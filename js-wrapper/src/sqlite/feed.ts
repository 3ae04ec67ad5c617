// Layer: js-wrapper/sqlite, page side. Feeds the SQLite mirror from the client's optimistic view:
// every visible document when it starts, then the documents each engine output changed (local
// writes, server changes, rollbacks of rejected writes, other tabs' pending writes), read back
// as they now are. Depends only on the public client API.
//
// It listens with `onChanges` (ids only), not `onDocumentChange`: the latter makes the engine
// compute before/after for every change of every collection while it is subscribed, which the
// mirror never needs, since it reads the documents back anyway: one `getMany` per collection
// and batch, not one `get` per document.
import type { SyncDocument } from '../engine.js';
import type { SyncClient } from '../types.js';
import type { MirrorRow } from './protocol.js';

export type SendBatch = (rows: MirrorRow[], reset: boolean) => void;

function rowOf(collection: string, id: string, d: SyncDocument | null | undefined): MirrorRow {
  if (!d || d.deleted) return { collection, id, version: 0, pending: false, fields: null };
  return { collection, id, version: d.version, pending: d.pending === true, fields: d.fields };
}

/**
 * Starts feeding `send`; returns the function that stops it. Changes are gathered until the
 * current task's microtasks run, so one engine output (a server frame of 500 documents, a
 * transaction, a rollback), or several in one task, cross to the worker as one batch; a
 * document changed twice in it is sent once, as it is at the end.
 */
export function startFeed(client: SyncClient, collections: readonly string[], send: SendBatch): () => void {
  const wanted = new Set(collections);
  // Per collection, the ids changed since the last flush.
  let dirty = new Map<string, Set<string>>();
  let scheduled = false;
  let stopped = false;
  const flush = () => {
    scheduled = false;
    if (stopped || dirty.size === 0) return;
    const batch = dirty;
    dirty = new Map();
    const rows: MirrorRow[] = [];
    for (const [collection, idSet] of batch) {
      const ids = [...idSet];
      const docs = client.collection(collection).getMany(ids);
      ids.forEach((id, i) => rows.push(rowOf(collection, id, docs[i])));
    }
    send(rows, false);
  };
  const off = client.onChanges((changes) => {
    for (const c of changes) {
      if (!wanted.has(c.collection)) continue;
      let ids = dirty.get(c.collection);
      if (!ids) dirty.set(c.collection, (ids = new Set()));
      ids.add(c.id);
    }
    if (!scheduled && dirty.size) {
      scheduled = true;
      queueMicrotask(flush);
    }
  });
  const all: MirrorRow[] = [];
  for (const c of collections) {
    for (const d of client.collection(c).all()) all.push(rowOf(c, d.id, d));
  }
  send(all, true);
  return () => {
    stopped = true;
    off();
  };
}
