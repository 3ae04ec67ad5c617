// Layer: js-wrapper (pure, no browser). What a follower tab keeps of the state it does not write.

import type { PersistenceBatch, SyncDocument } from './engine.js';

type DocEntry = { put?: SyncDocument; del?: { collection: string; id: string }; cursor: number };

/**
 * Documents, cursor and history are the leader's to write. A follower keeps what it received
 * (newest per document) so that it can write it if it leads: a snapshot it loaded itself may
 * be known to no leader yet. What the leader says it has stored (its durable cursor) is dropped,
 * so this holds about one leader beat of changes, not the whole dataset. Adding costs the size
 * of the batch, not of what is held (a follower flushes every few tens of milliseconds).
 */
export class FollowerShare {
  // In the order their newest version arrived, so cursors increase along the map.
  private docs = new Map<string, DocEntry>();
  private meta: { value: NonNullable<PersistenceBatch['meta']>; cursor: number } | null = null;
  private history: { value: NonNullable<PersistenceBatch['history']>; cursor: number } | null = null;

  /** The shared parts of a batch taken when this tab's replica was at `cursor`. */
  add(batch: PersistenceBatch, cursor: number): void {
    for (const d of batch.putDocs) this.set(`${d.collection}/${d.id}`, { put: d, cursor });
    for (const k of batch.deleteDocs) this.set(`${k.collection}/${k.id}`, { del: k, cursor });
    if (batch.meta) this.meta = { value: batch.meta, cursor };
    if (batch.history) this.history = { value: batch.history, cursor };
  }

  /** The leader's database holds the state at `cursor` or later: everything this tab took at
   * or below it is there (as it was then, or newer). */
  storedThrough(cursor: number): void {
    for (const [key, e] of this.docs) {
      if (e.cursor > cursor) break;
      this.docs.delete(key);
    }
    if (this.meta && this.meta.cursor <= cursor) this.meta = null;
    if (this.history && this.history.cursor <= cursor) this.history = null;
  }

  get size(): number {
    return this.docs.size + (this.meta ? 1 : 0) + (this.history ? 1 : 0);
  }

  /** Everything held, as one batch to write (and empties this). Null when nothing is held. */
  take(): PersistenceBatch | null {
    if (this.size === 0) return null;
    const out: PersistenceBatch = { putDocs: [], deleteDocs: [] };
    for (const e of this.docs.values()) {
      if (e.put) out.putDocs.push(e.put);
      else if (e.del) out.deleteDocs.push(e.del);
    }
    if (this.meta) out.meta = this.meta.value;
    if (this.history) out.history = this.history.value;
    this.docs.clear();
    this.meta = this.history = null;
    return out;
  }

  private set(key: string, e: DocEntry): void {
    this.docs.delete(key); // re-inserted at the end: the map stays ordered by cursor
    this.docs.set(key, e);
  }
}
