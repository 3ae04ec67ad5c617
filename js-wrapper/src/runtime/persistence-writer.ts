// Layer: js-wrapper. Writes what the engine marked dirty to the tab's Persistence, in order,
// one transaction per store. Invariants:
//  - writes run one after another (a chain): an older outbox is never written over a newer one;
//  - a batch that failed to write is kept and merged into the next one, so nothing is dropped;
//  - `durableNextMid` only grows, and only once an outbox record holding it is on disk: mids
//    below it may be sent (a crash can never make a sent mid be reused);
//  - documents, cursor and history are written by the tab that owns the stream; a follower
//    writes its outbox and keeps the rest (newest per document) for when it leads.
import type { PersistenceBatch, SyncDocument } from '../engine.js';
import { SyncError, type ErrorCode } from '../errors.js';
import { FollowerShare } from '../follower-share.js';
import { hasSharedParts } from '../adapters/persistence.js';
import type { Persistence } from '../adapters/persistence.js';

// The event history is written whole: with a long one (historyLimit in the thousands), writing
// it with every 20 ms batch kept busy tabs from their streams. At most this often, and on close
// or when the page hides.
export const HISTORY_WRITE_EVERY_MS = 1000;
const FLUSH_DELAY_MS = 20;
const RETRY_AFTER_FAILURE_MS = 2000;

export type OutboxRecord = NonNullable<PersistenceBatch['outbox']>;

/** The part of the engine this writer reads. */
export interface DirtySource {
  takePersistence(withHistory: boolean, withImage?: boolean): PersistenceBatch;
  cursor(): number;
  /** The base replica as one record, for backends that keep one (see Persistence.wantsImage). */
  baseImage?(): Uint8Array;
  dirtyDocs?(): number;
  storedDocs?(): number;
  /** Everything must be written again (an image write failed: its documents were taken). */
  markAllDirty?(): unknown;
}

export interface PersistenceWriterDeps {
  /** null once the engine is disposed (nothing is written after close). */
  engine(): DirtySource | null;
  persistence(): Persistence;
  /** This tab's outbox slot. */
  clientId(): string;
  /** True while this tab owns the stream (single tab or leader): it writes the shared parts. */
  writesShared(): boolean;
  /** A write failed (also called by reportError): the status and history show it. */
  onError(error: { code: ErrorCode; message: string }): void;
  /** The first write that succeeds after an error: sending may resume. */
  onRecovered(): void;
  isClosed(): boolean;
}

/** Combines an unsaved batch with a newer one: newer values win, per document key. */
export function mergeBatches(older: PersistenceBatch, newer: PersistenceBatch): PersistenceBatch {
  const docs = new Map<string, { put?: SyncDocument; del?: { collection: string; id: string } }>();
  for (const b of [older, newer]) {
    for (const d of b.putDocs) docs.set(`${d.collection}/${d.id}`, { put: d });
    for (const k of b.deleteDocs) docs.set(`${k.collection}/${k.id}`, { del: k });
  }
  const out: PersistenceBatch = { putDocs: [], deleteDocs: [] };
  for (const v of docs.values()) {
    if (v.put) out.putDocs.push(v.put);
    else if (v.del) out.deleteDocs.push(v.del);
  }
  const outbox = newer.outbox ?? older.outbox;
  const meta = newer.meta ?? older.meta;
  const history = newer.history ?? older.history;
  if (outbox) out.outbox = outbox;
  if (meta) out.meta = meta;
  if (history) out.history = history;
  // An image is the newest whole replica: what older batches held is in it.
  if (newer.image) out.image = newer.image;
  return out;
}

/** The next mid an outbox record promises (every mid below it was handed out). */
export function recordNextMid(outbox: OutboxRecord): number {
  return outbox.nextMid;
}

export class PersistenceWriter {
  private chain: Promise<void> = Promise.resolve();
  private queued = false;
  private historyTakenAt = -Infinity;
  private historyTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private unsaved: PersistenceBatch | null = null;
  private durable = 1;
  private stored = 0;
  private wipedAt = -Infinity;
  private storageError: { code: ErrorCode; message: string } | null = null;
  private checking = false;
  /** The engine could not make an image once: documents are written as records. */
  private imagesOff = false;
  /** What this tab received while following and the leader has not said it stored. */
  private readonly kept = new FollowerShare();

  constructor(private readonly deps: PersistenceWriterDeps) {}

  /** Mids below this are in an outbox record on disk. */
  get durableNextMid(): number {
    return this.durable;
  }

  /** The cursor of the last completed write of documents and cursor by this tab (0: none since
   * it took the stream, or since the store was wiped). Followers drop what it covers. */
  get storedCursor(): number {
    return this.stored;
  }

  get error(): { code: ErrorCode; message: string } | null {
    return this.storageError;
  }

  /** Sending must wait: something is not durable yet, or the store refuses writes. */
  get blocksSending(): boolean {
    return this.unsaved !== null || this.storageError !== null;
  }

  /** Shared parts this follower holds for a leader that has not stored them. */
  get keptCount(): number {
    return this.kept.size;
  }

  /** Writes an outbox record at once (start-up: a new slot is made durable before any send). */
  async writeOutboxNow(outbox: OutboxRecord): Promise<void> {
    await this.deps.persistence().writeOutbox(this.deps.clientId(), outbox);
    this.durable = Math.max(this.durable, recordNextMid(outbox));
  }

  /** The leader says it stored through `cursor`: what this follower kept up to there can go. A
   * beat sent before the leader heard of a wipe speaks of a database that is gone. */
  leaderStoredThrough(cursor: number, now = Date.now(), staleMs = 2000): void {
    if (now - this.wipedAt > staleMs) this.kept.storedThrough(cursor);
  }

  /** This tab now owns the stream: nothing is known to be stored by it yet, and what it kept
   * as a follower is written with the next flush. */
  tookStream(): void {
    this.stored = 0;
    if (this.kept.size) this.schedule();
  }

  /** The browser deleted the database under us (the caller marks everything dirty again). */
  wiped(now = Date.now()): void {
    this.stored = 0;
    this.wipedAt = now;
  }

  reportError(e: SyncError): void {
    this.storageError = { code: e.code ?? 'storage', message: e.message };
    this.deps.onError(this.storageError);
  }

  /** Flushes soon, coalescing the outputs of one burst into one write. */
  schedule(): void {
    if (this.queued) return;
    this.queued = true;
    setTimeout(() => {
      this.queued = false;
      void this.flush();
    }, FLUSH_DELAY_MS);
  }

  /** Writes whatever the engine marked dirty. Resolves when this write (and those before it)
   * finished, successfully or not: a failure is kept for the next one and reported. */
  flush(withHistory = false): Promise<void> {
    this.chain = this.chain.then(() => this.writeOnce(withHistory));
    return this.chain;
  }

  /** The watchdog: storage can be cleared with no event reaching the page (site data cleared
   * from the browser's settings or devtools). True when this tab's slot is gone. */
  async slotVanished(): Promise<boolean> {
    if (this.deps.isClosed() || this.unsaved || this.checking) return false;
    this.checking = true;
    try {
      await this.chain;
      return !(await this.deps.persistence().readOutbox(this.deps.clientId()));
    } catch {
      return false; // reported by the next write
    } finally {
      this.checking = false;
    }
  }

  dispose(): void {
    for (const t of [this.historyTimer, this.retryTimer]) if (t) clearTimeout(t);
    this.historyTimer = this.retryTimer = null;
  }

  private takeBatch(withHistory: boolean): PersistenceBatch | null {
    const engine = this.deps.engine();
    if (!engine) return null;
    const sinceHistory = Date.now() - this.historyTakenAt;
    let batch: PersistenceBatch;
    const asImage = this.wantsImage(engine);
    try {
      batch = engine.takePersistence(withHistory || sinceHistory >= HISTORY_WRITE_EVERY_MS, asImage);
    } catch {
      return null; // disposed while this write waited its turn
    }
    if (asImage) {
      // Taken in the same turn as the batch (nothing runs in between): the image, and the
      // cursor and subscription written with it, describe one state of the engine.
      try {
        batch.image = engine.baseImage!();
      } catch {
        // The batch holds no documents, so its cursor must not be written alone: everything is
        // marked again and written as records from now on; only the outbox goes now.
        this.imagesOff = true;
        engine.markAllDirty?.();
        return { putDocs: [], deleteDocs: [], ...(batch.outbox ? { outbox: batch.outbox } : {}) };
      }
    }
    if (batch.history) this.historyTakenAt = Date.now();
    if (batch.historyHeld && !this.historyTimer) {
      this.historyTimer = setTimeout(() => {
        this.historyTimer = null;
        void this.flush();
      }, HISTORY_WRITE_EVERY_MS - sinceHistory);
    }
    if (!this.deps.writesShared()) {
      // A snapshot a follower loaded itself may be known to no leader, and an outbox that
      // dropped confirmed writes must not be the only trace of them on disk: keep the rest.
      const { outbox, ...shared } = batch;
      if (hasSharedParts(shared)) this.kept.add(shared, engine.cursor());
      return { putDocs: [], deleteDocs: [], ...(outbox ? { outbox } : {}) };
    }
    const kept = this.kept.take();
    return kept ? mergeBatches(kept, batch) : batch;
  }

  private async writeOnce(withHistory: boolean): Promise<void> {
    let batch = this.takeBatch(withHistory);
    if (!batch) return;
    if (this.unsaved) batch = mergeBatches(this.unsaved, batch);
    if (!this.deps.writesShared() && hasSharedParts(batch)) {
      // A batch that failed while this tab owned the stream: a follower keeps its shared parts.
      const { outbox, ...shared } = batch;
      this.kept.add(shared, this.deps.engine()?.cursor() ?? 0);
      batch = { putDocs: [], deleteDocs: [], ...(outbox ? { outbox } : {}) };
    }
    if (!batch.outbox && !hasSharedParts(batch)) return;
    const persistence = this.deps.persistence();
    const clientId = this.deps.clientId();
    try {
      const shared = this.deps.writesShared() && hasSharedParts(batch);
      let together = false;
      if (batch.outbox && shared && persistence.writeTogether) {
        // One transaction, so a pruned outbox is never durable without the confirmed documents.
        // If it fails (e.g. quota on documents), the parts are written apart below: the outbox
        // must not wait for the documents.
        together = await persistence.writeTogether(clientId, batch.outbox, batch).then(() => true, () => false);
      }
      if (!together) {
        if (batch.outbox) await persistence.writeOutbox(clientId, batch.outbox);
        if (shared) await persistence.writeShared(batch);
      }
      if (batch.outbox) this.durable = Math.max(this.durable, recordNextMid(batch.outbox));
      if (shared && batch.meta) this.stored = Math.max(this.stored, batch.meta.cursor);
      this.unsaved = null;
      if (this.storageError) {
        this.storageError = null;
        this.deps.onRecovered();
      }
    } catch (e) {
      // A failed image took every document with it: they are all marked again, and whether the
      // retry is an image is decided then. The other parts are kept as for any failed batch.
      const { image, ...parts } = batch;
      if (image) this.deps.engine()?.markAllDirty?.();
      this.unsaved = parts;
      this.reportError(e instanceof SyncError ? e : new SyncError('storage', String(e)));
      this.scheduleRetry();
    }
  }

  /** Whether the next batch is an image of the whole replica: only the tab writing the shared
   * parts, with an engine and a backend that keep images. */
  private wantsImage(engine: DirtySource): boolean {
    const persistence = this.deps.persistence();
    if (this.imagesOff || !this.deps.writesShared() || !persistence.wantsImage) return false;
    if (!engine.baseImage || !engine.dirtyDocs || !engine.storedDocs) return false;
    return persistence.wantsImage(engine.dirtyDocs(), engine.storedDocs());
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.deps.isClosed()) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.deps.isClosed()) return;
      void this.flush().then(() => {
        if (this.unsaved) this.scheduleRetry();
      });
    }, RETRY_AFTER_FAILURE_MS);
  }
}
