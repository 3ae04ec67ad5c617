// Layer: js-wrapper/sqlite, page side. Feeds the SQLite mirror from the client's optimistic view:
// every visible document when it starts, then the documents each engine output changed (local
// writes, server changes, rollbacks of rejected writes, other tabs' pending writes), read back
// as they now are. Depends only on the public client API.
import type { SyncClient } from '../types.js';
import type { MirrorRow } from './protocol.js';

export type SendBatch = (rows: MirrorRow[], reset: boolean) => void;

function rowOf(client: SyncClient, collection: string, id: string): MirrorRow {
  const d = client.collection(collection).get(id);
  if (!d || d.deleted) return { collection, id, version: 0, pending: false, fields: null };
  return { collection, id, version: d.version, pending: d.pending === true, fields: d.fields };
}

/**
 * Starts feeding `send`; returns the function that stops it. Changes are gathered until the
 * current task's microtasks run, so one engine output (a server frame of 500 documents, a
 * transaction, a rollback) crosses to the worker as one batch; a document changed twice in it
 * is sent once, as it is at the end.
 */
export function startFeed(client: SyncClient, collections: readonly string[], send: SendBatch): () => void {
  const wanted = new Set(collections);
  let dirty = new Map<string, { collection: string; id: string }>();
  let scheduled = false;
  let stopped = false;
  const flush = () => {
    scheduled = false;
    if (stopped || dirty.size === 0) return;
    const batch = dirty;
    dirty = new Map();
    send([...batch.values()].map((k) => rowOf(client, k.collection, k.id)), false);
  };
  const off = client.onDocumentChange((e) => {
    if (!wanted.has(e.collection)) return;
    dirty.set(`${e.collection}/${e.id}`, { collection: e.collection, id: e.id });
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  });
  const all: MirrorRow[] = [];
  for (const c of collections) {
    for (const d of client.collection(c).all()) {
      all.push({ collection: c, id: d.id, version: d.version, pending: d.pending === true, fields: d.fields });
    }
  }
  send(all, true);
  return () => {
    stopped = true;
    off();
  };
}
