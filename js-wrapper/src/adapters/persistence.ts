// Layer: js-wrapper adapters (browser I/O). The core decides what to persist; these adapters
// only store it. Layout (any backend):
//   docs     shared replica documents (tombstones too), written by the tab that owns the stream;
//            beside an image, what changed since it ({collection, id, erased: true}: gone)
//   images   IndexedDB only: the whole base replica as one record (SyncEngine.baseImage), so a
//            cold start reads one value, not one per document; written in place of the docs
//            records once they grow past a share of it
//   meta     cursor, the subscription the replica is built for and whether it still needs a
//            snapshot for it (shared: the leader's), schema version
//   outboxes one outbox per tab slot (client id), each written only by the tab holding the slot
//   history  the bounded event history (shared, last writer wins)
import type { HistoryState, OutboxRecord, PersistenceBatch, StoredDocument, Subscription, SyncDocument } from '../engine.js';
import { markerSeen, setMarker } from './store-marker.js';
import { historyFromStored, slotFromStored } from './stored-format.js';
import { SyncError } from '../errors.js';

export interface StoredOutbox {
  clientId: string;
  outbox: OutboxRecord;
  updatedAt: number;
}

export interface LoadedState {
  /** With an image: what changed since it. */
  docs: StoredDocument[];
  /** The base replica as one record (null: none stored; the docs are everything). */
  image: Uint8Array | null;
  cursor: number;
  /** The subscription the documents and cursor were built for; null: not stored (an older
   * version wrote them, or nothing was written yet). The engine decides what follows. */
  subscription: Subscription | null;
  /** The replica was waiting for a snapshot (a reset, or a re-base for a new subscription). */
  needSnapshot: boolean;
  history: HistoryState | null;
  outboxes: StoredOutbox[];
}

export interface Persistence {
  readonly kind: 'indexeddb' | 'localstorage' | 'memory';
  open(): Promise<void>;
  load(): Promise<LoadedState>;
  /** Writes documents/cursor/history in one transaction. */
  writeShared(batch: PersistenceBatch): Promise<void>;
  /** Writes one slot's outbox durably (strict durability where the backend has it). */
  writeOutbox(clientId: string, outbox: StoredOutbox['outbox']): Promise<void>;
  /** Both in one durable transaction, where the backend has them: an outbox that no longer
   * holds a confirmed write is never on disk without the document that write produced. */
  writeTogether?(clientId: string, outbox: StoredOutbox['outbox'], batch: PersistenceBatch): Promise<void>;
  /** Whether the next write, with `dirtyDocs` documents to write out of `storedDocs` stored,
   *  should be an image of the whole replica instead of document records: backends without
   *  images leave it out. */
  wantsImage?(dirtyDocs: number, storedDocs: number): boolean;
  /** Set by open(): the store existed on an earlier run and came back empty (the browser
   * discarded it, e.g. after a hard kill, or only it was cleared). */
  readonly discardedBeforeOpen?: boolean;
  readOutbox(clientId: string): Promise<StoredOutbox | null>;
  deleteOutbox(clientId: string): Promise<void>;
  listOutboxes(): Promise<StoredOutbox[]>;
  close(): void;
}

function docKey(d: { collection: string; id: string }): string {
  return `${d.collection}/${d.id}`;
}

function storageError(e: unknown, what: string): SyncError {
  const name = (e as { name?: string })?.name ?? '';
  const code = name === 'QuotaExceededError' ? 'quota_exceeded' : 'storage';
  const message = `${what}: ${(e as { message?: string })?.message ?? String(e)}`;
  return new SyncError(code, message, { cause: e });
}

// ---------------------------------------------------------------- IndexedDB

// 2: the `images` store.
const DB_VERSION = 2;
// An image replaces the document records once they would number more than a quarter of the
// replica (and at least this many): a cold start then reads at most that share record by
// record, and a busy replica rewrites its image at most every so many changes.
const IMAGE_MIN_RECORDS = 500;
const IMAGE_KEY = 'docs';

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new DOMException('transaction aborted', 'AbortError'));
  });
}

/** Whether a batch holds anything besides the outbox (documents, cursor, history). */
export function hasSharedParts(batch: PersistenceBatch): boolean {
  return batch.putDocs.length > 0 || batch.deleteDocs.length > 0 || !!batch.meta || !!batch.history;
}

function putShared(tx: IDBTransaction, batch: PersistenceBatch): void {
  const docs = tx.objectStore('docs');
  if (batch.image) {
    // The image holds every document: the records written before it are part of it.
    docs.clear();
    tx.objectStore('images').put(batch.image, IMAGE_KEY);
  } else {
    for (const d of batch.putDocs) docs.put(d);
    // A mark, not a delete: the document may be in the image.
    for (const k of batch.deleteDocs) docs.put({ collection: k.collection, id: k.id, erased: true });
  }
  if (batch.meta) {
    const meta = tx.objectStore('meta');
    meta.put(batch.meta.cursor, 'cursor');
    if (batch.meta.subscription) meta.put(batch.meta.subscription, 'subscription');
    meta.put(!!batch.meta.needSnapshot, 'needSnapshot');
  }
  if (batch.history) tx.objectStore('meta').put(batch.history, 'history');
}

export class IndexedDbPersistence implements Persistence {
  readonly kind = 'indexeddb' as const;
  private db: IDBDatabase | null = null;
  private reopening: Promise<void> | null = null;

  private openedOnce = false;
  private wipeNoticed = false;
  discardedBeforeOpen = false;
  private slotsWritten = new Set<string>();
  /** Keys of the document records in the store (this tab writes the shared parts alone while
   *  it owns the stream; what others wrote before is counted at load). */
  private records = new Set<string>();

  constructor(
    private readonly name: string,
    private readonly onError: (e: SyncError) => void,
    /** The database was deleted while the client ran (site data cleared, another tab). */
    private readonly onWiped: () => void = () => {},
  ) {}

  async open(): Promise<void> {
    const reopening = this.openedOnce;
    let created = false;
    this.db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open(this.name, DB_VERSION);
      r.onupgradeneeded = (ev) => {
        created = (ev as IDBVersionChangeEvent).oldVersion === 0;
        const db = r.result;
        if (!db.objectStoreNames.contains('docs')) db.createObjectStore('docs', { keyPath: ['collection', 'id'] });
        if (!db.objectStoreNames.contains('meta')) db.createObjectStore('meta');
        if (!db.objectStoreNames.contains('outboxes')) db.createObjectStore('outboxes', { keyPath: 'clientId' });
        if (!db.objectStoreNames.contains('images')) db.createObjectStore('images');
      };
      // Another tab holds an older version open: it closes on versionchange (below), so this
      // only waits briefly; report it rather than hang silently.
      r.onblocked = () => this.onError(new SyncError('storage_blocked', 'waiting for another tab to release the database'));
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(storageError(r.error, 'opening IndexedDB'));
    });
    // A newer version of the app wants to upgrade the schema: close so it is not blocked
    // forever; the next write reopens.
    this.openedOnce = true;
    this.db.onversionchange = (ev: IDBVersionChangeEvent) => {
      this.db?.close();
      this.db = null;
      // newVersion null: the database is being deleted, not upgraded.
      if (ev.newVersion === null) {
        this.wipeNoticed = true;
        queueMicrotask(() => this.onWiped());
      }
    };
    this.db.onclose = () => {
      // Closed by the browser (storage cleared, disk error): reopen at once, which also tells
      // whether the data is gone (the database comes back empty).
      this.db = null;
      void this.database().catch((e) => this.onError(e instanceof SyncError ? e : storageError(e, 'reopening IndexedDB')));
    };
    // Reopened and found empty: it was wiped without a versionchange (e.g. storage cleared).
    if (reopening && created && !this.wipeNoticed) queueMicrotask(() => this.onWiped());
    this.wipeNoticed = false;
    // A marker outside IndexedDB says whether this database existed on an earlier run. It is
    // set before anything is written, so no accepted write is in a database nobody knew of.
    // A database that existed had its marker set when it was created: setting it again only
    // repairs a marker cleared on its own, which need not hold up the start.
    if (!reopening) {
      if (!created) void setMarker(this.name);
      else {
        if (await markerSeen(this.name)) this.discardedBeforeOpen = true;
        await setMarker(this.name);
      }
    }
  }

  private async database(): Promise<IDBDatabase> {
    if (this.db) return this.db;
    if (!this.reopening) this.reopening = this.open().finally(() => (this.reopening = null));
    await this.reopening;
    if (!this.db) throw new SyncError('storage', 'IndexedDB is not available');
    return this.db;
  }

  async load(): Promise<LoadedState> {
    try {
      const db = await this.database();
      const tx = db.transaction(['docs', 'meta', 'outboxes', 'images'], 'readonly');
      const [image, docs, cursor, history, outboxes, subscription, needSnapshot] = await Promise.all([
        req(tx.objectStore('images').get(IMAGE_KEY)) as Promise<Uint8Array | undefined>,
        req(tx.objectStore('docs').getAll()) as Promise<StoredDocument[]>,
        req(tx.objectStore('meta').get('cursor')) as Promise<number | undefined>,
        req(tx.objectStore('meta').get('history')) as Promise<HistoryState | undefined>,
        req(tx.objectStore('outboxes').getAll()) as Promise<StoredOutbox[]>,
        req(tx.objectStore('meta').get('subscription')) as Promise<Subscription | undefined>,
        req(tx.objectStore('meta').get('needSnapshot')) as Promise<boolean | undefined>,
      ]);
      this.records = new Set(docs.map((d) => docKey(d)));
      return {
        docs, image: image instanceof Uint8Array ? image : null, cursor: cursor ?? 0, history: historyFromStored(history ?? null), outboxes: outboxes.map(slotFromStored),
        subscription: subscription ?? null, needSnapshot: needSnapshot === true,
      };
    } catch (e) {
      throw e instanceof SyncError ? e : storageError(e, 'loading from IndexedDB');
    }
  }

  async writeShared(batch: PersistenceBatch): Promise<void> {
    if (!hasSharedParts(batch)) return;
    try {
      const db = await this.database();
      // Strict too: a relaxed write can be lost when the browser is killed while a later strict
      // one (an outbox that dropped the confirmed writes these documents carry) is kept.
      const tx = db.transaction(['docs', 'meta', 'images'], 'readwrite', { durability: 'strict' });
      putShared(tx, batch);
      await done(tx);
      this.written(batch);
    } catch (e) {
      throw e instanceof SyncError ? e : storageError(e, 'writing documents');
    }
  }

  async writeOutbox(clientId: string, outbox: StoredOutbox['outbox']): Promise<void> {
    try {
      const db = await this.database();
      const tx = db.transaction('outboxes', 'readwrite', { durability: 'strict' });
      const vanished = this.putOutbox(tx, clientId, outbox);
      await done(tx);
      this.outboxWritten(clientId, vanished());
    } catch (e) {
      throw e instanceof SyncError ? e : storageError(e, 'writing the outbox');
    }
  }

  async writeTogether(clientId: string, outbox: StoredOutbox['outbox'], batch: PersistenceBatch): Promise<void> {
    try {
      const db = await this.database();
      // The documents of confirmed writes go in the same transaction as the outbox that drops
      // them: one commit instead of two, and never one without the other.
      const tx = db.transaction(['docs', 'meta', 'outboxes', 'images'], 'readwrite', { durability: 'strict' });
      let vanished: () => boolean;
      try {
        putShared(tx, batch);
        vanished = this.putOutbox(tx, clientId, outbox);
      } catch (e) {
        tx.abort(); // all or nothing
        throw e;
      }
      await done(tx);
      this.written(batch);
      this.outboxWritten(clientId, vanished());
    } catch (e) {
      throw e instanceof SyncError ? e : storageError(e, 'writing documents and the outbox');
    }
  }

  wantsImage(dirtyDocs: number, storedDocs: number): boolean {
    // At most this many records would sit beside the image (some dirty ones may overwrite one).
    return this.records.size + dirtyDocs > Math.max(IMAGE_MIN_RECORDS, storedDocs / 4);
  }

  /** Keeps count of the document records beside the image (what wantsImage weighs). */
  private written(batch: PersistenceBatch): void {
    if (batch.image) {
      this.records.clear();
      return;
    }
    for (const d of batch.putDocs) this.records.add(docKey(d));
    for (const k of batch.deleteDocs) this.records.add(docKey(k));
  }

  /** Puts a slot's record; the returned function tells, once the transaction completed, whether
   * a slot this client wrote before had vanished (the store was cleared without any event
   * reaching us, e.g. site data cleared from the browser's settings). */
  private putOutbox(tx: IDBTransaction, clientId: string, outbox: StoredOutbox['outbox']): () => boolean {
    const store = tx.objectStore('outboxes');
    let vanished = false;
    if (this.slotsWritten.has(clientId)) {
      const probe = store.get(clientId);
      probe.onsuccess = () => {
        vanished = probe.result === undefined;
      };
    }
    store.put({ clientId, outbox, updatedAt: Date.now() } satisfies StoredOutbox);
    return () => vanished;
  }

  private outboxWritten(clientId: string, vanished: boolean): void {
    this.slotsWritten.add(clientId);
    if (vanished && !this.wipeNoticed) queueMicrotask(() => this.onWiped());
  }

  async readOutbox(clientId: string): Promise<StoredOutbox | null> {
    const db = await this.database();
    const tx = db.transaction('outboxes', 'readonly');
    const slot = (await req(tx.objectStore('outboxes').get(clientId))) as StoredOutbox | undefined;
    return slot ? slotFromStored(slot) : null;
  }

  async deleteOutbox(clientId: string): Promise<void> {
    const db = await this.database();
    const tx = db.transaction('outboxes', 'readwrite', { durability: 'strict' });
    tx.objectStore('outboxes').delete(clientId);
    await done(tx);
  }

  async listOutboxes(): Promise<StoredOutbox[]> {
    const db = await this.database();
    const tx = db.transaction('outboxes', 'readonly');
    return ((await req(tx.objectStore('outboxes').getAll())) as StoredOutbox[]).map(slotFromStored);
  }

  close(): void {
    this.db?.close();
    this.db = null;
  }
}

// ---------------------------------------------------------------- localStorage

/** Small datasets only (localStorage is synchronous and limited to a few MiB). */
export class LocalStoragePersistence implements Persistence {
  readonly kind = 'localstorage' as const;
  constructor(private readonly prefix: string) {}

  private get<T>(key: string): T | null {
    const text = localStorage.getItem(this.prefix + key);
    return text === null ? null : (JSON.parse(text) as T);
  }

  private set(key: string, value: unknown): void {
    try {
      localStorage.setItem(this.prefix + key, JSON.stringify(value));
    } catch (e) {
      throw storageError(e, 'writing localStorage');
    }
  }

  async open(): Promise<void> {
    if (typeof localStorage === 'undefined') throw new SyncError('storage', 'localStorage is not available');
  }

  async load(): Promise<LoadedState> {
    const docs = Object.values(this.get<Record<string, SyncDocument>>('docs') ?? {});
    const outboxes = this.get<Record<string, StoredOutbox>>('outboxes') ?? {};
    return {
      docs, image: null,
      cursor: this.get<number>('cursor') ?? 0,
      history: historyFromStored(this.get<HistoryState>('history')),
      outboxes: Object.values(outboxes).map(slotFromStored),
      subscription: this.get<Subscription>('subscription'),
      needSnapshot: this.get<boolean>('needSnapshot') === true,
    };
  }

  async writeShared(batch: PersistenceBatch): Promise<void> {
    if (batch.putDocs.length || batch.deleteDocs.length) {
      const docs = this.get<Record<string, SyncDocument>>('docs') ?? {};
      for (const d of batch.putDocs) docs[`${d.collection}/${d.id}`] = d;
      for (const k of batch.deleteDocs) delete docs[`${k.collection}/${k.id}`];
      this.set('docs', docs);
    }
    if (batch.meta) {
      this.set('cursor', batch.meta.cursor);
      if (batch.meta.subscription) this.set('subscription', batch.meta.subscription);
      this.set('needSnapshot', !!batch.meta.needSnapshot);
    }
    if (batch.history) this.set('history', batch.history);
  }

  async writeOutbox(clientId: string, outbox: StoredOutbox['outbox']): Promise<void> {
    const all = this.get<Record<string, StoredOutbox>>('outboxes') ?? {};
    all[clientId] = { clientId, outbox, updatedAt: Date.now() };
    this.set('outboxes', all);
  }

  async readOutbox(clientId: string): Promise<StoredOutbox | null> {
    const slot = (this.get<Record<string, StoredOutbox>>('outboxes') ?? {})[clientId];
    return slot ? slotFromStored(slot) : null;
  }

  async deleteOutbox(clientId: string): Promise<void> {
    const all = this.get<Record<string, StoredOutbox>>('outboxes') ?? {};
    delete all[clientId];
    this.set('outboxes', all);
  }

  async listOutboxes(): Promise<StoredOutbox[]> {
    return Object.values(this.get<Record<string, StoredOutbox>>('outboxes') ?? {}).map(slotFromStored);
  }

  close(): void {}
}

// ---------------------------------------------------------------- memory

/** Nothing survives a reload; for tests and server-side rendering. */
export class MemoryPersistence implements Persistence {
  readonly kind = 'memory' as const;
  private docs = new Map<string, SyncDocument>();
  private cursor = 0;
  private subscription: Subscription | null = null;
  private needSnapshot = false;
  private history: HistoryState | null = null;
  private outboxes = new Map<string, StoredOutbox>();

  async open(): Promise<void> {}
  async load(): Promise<LoadedState> {
    return {
      docs: [...this.docs.values()], image: null, cursor: this.cursor, history: this.history, outboxes: [...this.outboxes.values()],
      subscription: this.subscription, needSnapshot: this.needSnapshot,
    };
  }
  async writeShared(batch: PersistenceBatch): Promise<void> {
    for (const d of batch.putDocs) this.docs.set(`${d.collection}/${d.id}`, d);
    for (const k of batch.deleteDocs) this.docs.delete(`${k.collection}/${k.id}`);
    if (batch.meta) {
      this.cursor = batch.meta.cursor;
      if (batch.meta.subscription) this.subscription = batch.meta.subscription;
      this.needSnapshot = !!batch.meta.needSnapshot;
    }
    if (batch.history) this.history = batch.history;
  }
  async writeOutbox(clientId: string, outbox: StoredOutbox['outbox']): Promise<void> {
    this.outboxes.set(clientId, { clientId, outbox, updatedAt: Date.now() });
  }
  async readOutbox(clientId: string): Promise<StoredOutbox | null> {
    return this.outboxes.get(clientId) ?? null;
  }
  async deleteOutbox(clientId: string): Promise<void> {
    this.outboxes.delete(clientId);
  }
  async listOutboxes(): Promise<StoredOutbox[]> {
    return [...this.outboxes.values()];
  }
  close(): void {}
}
