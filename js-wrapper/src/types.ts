// Layer: js-wrapper. The public types of the client API (docs/api.md). Everything returned to
// the app is immutable: snapshots are frozen and replaced (never mutated) when they change, so
// React's useSyncExternalStore can compare them by identity.
import type { AggregateResult, HistoryEntry, SyncDocument } from './engine.js';
import type { ErrorCode } from './error-codes.js';
import type { FieldOperation } from './field-ops.js';

export type Transport = 'sse' | 'websocket';
export type PersistenceKind = 'indexeddb' | 'localstorage' | 'memory';
export type ConnectionStatus = 'disconnected' | 'connecting' | 'connected' | 'backing_off' | 'error';
export type TabRole = 'leader' | 'follower' | 'single';

export interface ClientOptions {
  /** Base URL of syncline-server, e.g. "http://localhost:8080", or the URLs of several nodes of
   * one cluster (same database): the client uses one at a time and moves to the next when it
   * fails (status.node says which). */
  url: string | string[];
  /** Bearer token (HS256 JWT with sub and role), or a function returning one. */
  token?: string | (() => string | Promise<string>);
  transport?: Transport;
  /** Collections this client replicates; one stream carries all of them. */
  collections: string[];
  /** Optional server-side filter on the subscription (`where` grammar: docs/protocol.md). */
  where?: string;
  persistence?: PersistenceKind;
  /** Capacity of the bounded event history (default 100). */
  historyLimit?: number;
  /** Share one connection among the tabs of this origin (Web Locks + BroadcastChannel). Default true. */
  multiTab?: boolean;
  /** A follower tab takes the connection over from a leader tab it has not heard from in this
   * long (a hung or frozen tab keeps its lock). Default 5000 ms for a visible follower; a hidden
   * one waits 15x longer, since browsers throttle the timers of hidden tabs to once a minute. */
  leaderTimeoutMs?: number;
  /** Namespace for storage and tab coordination; default derived from the (first) url + token subject. */
  name?: string;
  /** Reconnect policy. */
  backoff?: { baseMs?: number; capMs?: number; heartbeatTimeoutMs?: number };
  /** Where the .wasm lives if not next to the package's module (rarely needed). */
  wasmUrl?: string | URL;
}

export interface SyncStatus {
  readonly connection: ConnectionStatus;
  readonly transport: Transport;
  readonly role: TabRole;
  readonly isOnline: boolean;
  readonly isConnected: boolean;
  /** Writes not yet confirmed by the server, of every tab of this client (`name`): this tab's,
   * the other open tabs', and those a closed tab left for the leader to send. The same number in
   * every tab, offline too. */
  readonly pendingOperations: number;
  /** Measured round trip to the server in whole ms, smoothed over the samples (a probe when the
   * stream opens, then every 15 s: a WebSocket ping frame, or GET /v1/ping for SSE). The tab
   * holding the connection measures; the other tabs show its figure. null until the first
   * sample and whenever not connected. */
  readonly latencyMs: number | null;
  /** The last round-trip sample in whole ms, or null (see latencyMs). */
  readonly lastLatencyMs: number | null;
  /** ms since epoch of the last server message applied, or null. */
  readonly lastSync: number | null;
  /** ms since epoch when the current connection opened, or null. */
  readonly connectedSince: number | null;
  /** The server node in use, one of the `url` option's URLs: the one the change stream is
   * connected to (in a follower tab, the leader's), else the one the next attempt goes to. */
  readonly node: string;
  readonly cursor: number;
  readonly clientId: string;
  readonly attempt: number;
  readonly lastError: { code: ErrorCode; message: string } | null;
  readonly storageError: { code: ErrorCode; message: string } | null;
}

export interface EventsSnapshot {
  readonly entries: readonly HistoryEntry[];
  readonly counts: Readonly<Record<string, number>>;
  readonly total: number;
  readonly capacity: number;
}

/** A subscribable, immutable value: the shape useSyncExternalStore wants. */
export interface Observable<T> {
  getSnapshot(): T;
  subscribe(listener: () => void): () => void;
}

export interface QueryOptions {
  where?: string;
  /** "field", "field.asc", "field.desc" or "-field". */
  orderBy?: string;
  limit?: number;
}

export interface LiveQuery<T = Record<string, unknown>> extends Observable<readonly SyncDocument<T>[]> {
  /** Matches ignoring the limit. */
  readonly total: number;
  close(): void;
}

export interface AggregateOptions {
  where?: string;
  groupBy?: string;
  sum?: string;
}

export interface LiveAggregate extends Observable<AggregateResult> {
  close(): void;
}

/** The outcome of a write: the promise settles on the server's verdict. */
export interface WriteResult {
  mid: number;
  seq: number;
  id: string;
}

export interface PendingWrite extends Promise<WriteResult> {
  /** The document id (generated for inserts when not given). */
  readonly id: string;
  readonly mid: number;
  /** Settles when the write is durably queued locally (outbox persisted); the view already
   * shows it. Closing the page after this resolves cannot lose the write. */
  readonly local: Promise<void>;
}

/** A field's value in a write: the value, or a field operation where the field may be a number
 * (increment(), serverTime()). */
export type FieldInput<V> = V | (number extends V ? FieldOperation : never);

/** What insert() takes: the document's fields, where a number field may be a field operation. */
export type InsertFields<T> = { [K in keyof T]: FieldInput<T[K]> };

/** What update() takes: a shallow patch; null removes a field; number fields may take a field
 * operation (increment, serverTime). */
export type UpdatePatch<T> = { [K in keyof T]?: FieldInput<T[K]> | null };

export interface InsertOptions {
  /** The document id; generated (time-sortable) when absent. */
  id?: string;
}

export interface UpdateOptions {
  /** Refuse with `conflict` unless the document's version on the server is this one. */
  baseVersion?: number;
  /** Refuse with `conflict` unless the document, as the server holds it at commit, matches this
   * filter (the `where` grammar, e.g. 'status=eq.unpaid'). The SyncError carries `current`. */
  if?: string;
}

export type DeleteOptions = UpdateOptions;

export interface CollectionHandle<T = Record<string, unknown>> {
  readonly name: string;
  insert(fields: InsertFields<T>, options?: InsertOptions): PendingWrite;
  update(id: string, patch: UpdatePatch<T>, options?: UpdateOptions): PendingWrite;
  delete(id: string, options?: DeleteOptions): PendingWrite;
  get(id: string): SyncDocument<T> | null;
  /** Several documents in one call, in the order asked (null where none is visible). */
  getMany(ids: readonly string[]): readonly (SyncDocument<T> | null)[];
  all(): readonly SyncDocument<T>[];
  /** Observable of one document (null when absent). */
  document(id: string): Observable<SyncDocument<T> | null>;
  /** Observable of the whole collection. */
  observe(): Observable<readonly SyncDocument<T>[]>;
}

/** One write queued in a transaction (known at once, before anything is sent). */
export interface TransactionWrite {
  readonly op: 'insert' | 'update' | 'delete';
  readonly collection: string;
  /** The document id (generated for inserts when not given). */
  readonly id: string;
  /** Its position in the transaction (SyncError.failedIndex names it when it fails the group). */
  readonly index: number;
}

/** The writes of one collection inside client.transaction(): queued, sent when the callback returns. */
export interface TransactionCollection<T = Record<string, unknown>> {
  readonly name: string;
  insert(fields: InsertFields<T>, options?: InsertOptions): TransactionWrite;
  update(id: string, patch: UpdatePatch<T>, options?: UpdateOptions): TransactionWrite;
  delete(id: string, options?: DeleteOptions): TransactionWrite;
}

export interface Transaction {
  collection<T = Record<string, unknown>>(name: string): TransactionCollection<T>;
}

/** A transaction the server applied: every member, in order. */
export interface TransactionResult {
  readonly results: readonly WriteResult[];
}

export interface PendingTransaction extends Promise<TransactionResult> {
  /** The queued writes, in order (ids of inserts included). */
  readonly writes: readonly TransactionWrite[];
  /** The mutation numbers of the members, in order. */
  readonly mids: readonly number[];
  /** Settles when the whole group is durably queued locally (see PendingWrite.local). */
  readonly local: Promise<void>;
}

/** A visible change of one document (local or remote, rollbacks included): what
 * `onDocumentChange` and `useDocumentListener` deliver. */
export interface DocumentChange<T = Record<string, unknown>> {
  type: 'appear' | 'update' | 'disappear';
  collection: string;
  id: string;
  before: T | null;
  after: T | null;
  pending: boolean;
}

/** A document that one change of the view touched: which one, not how (read it with
 * `collection(c).get(id)` or `getMany(ids)`). What `onChanges` delivers. */
export interface ChangedDocument {
  readonly collection: string;
  readonly id: string;
}

/** An application event published through the server (`client.publish`, or the server's
 * `POST /v1/events`): what `onEvent` and `useEventListener` deliver. Not a document change. */
export interface PublishedEvent {
  seq: number;
  name: string;
  collection?: string;
  id?: string;
  data: Record<string, unknown>;
}

export interface SyncClient {
  readonly ready: true;
  readonly options: Readonly<ClientOptions>;
  collection<T = Record<string, unknown>>(name: string): CollectionHandle<T>;
  /**
   * Writes applied all or nothing: the callback queues writes (synchronously) and they are sent
   * as one atomic group. The view shows them at once and rolls them back together. The promise
   * resolves when the server applied every member and rejects with the SyncError of the member
   * that failed (`failedIndex`, `failedMid`, `collection`, `id`, and `current` on a conflict).
   */
  transaction(fn: (tx: Transaction) => void): PendingTransaction;
  query<T = Record<string, unknown>>(collection: string, options?: QueryOptions): LiveQuery<T>;
  aggregate(collection: string, options?: AggregateOptions): LiveAggregate;
  readonly status: SyncStatus;
  readonly statusStore: Observable<SyncStatus>;
  readonly events: Observable<EventsSnapshot>;
  /** Called for every visible document change (local or remote). */
  onDocumentChange(listener: (e: DocumentChange) => void): () => void;
  /** Called once per change of the view (a local write, a transaction, a server frame, a
   * rollback) with the documents it touched, ids only. Cheaper than onDocumentChange, which
   * makes the engine compute before/after for every change while a listener exists. */
  onChanges(listener: (changes: readonly ChangedDocument[]) => void): () => void;
  /** Called for every custom event from the server. */
  onEvent(listener: (e: PublishedEvent) => void): () => void;
  publish(name: string, data?: Record<string, unknown>, target?: { collection?: string; id?: string }): Promise<{ seq: number }>;
  /** Reconnect now and send pending writes (the "retry" button). */
  forceSync(): void;
  /** Cut this client's connection (tests, "offline mode" switches) until goOnline(). */
  goOffline(): void;
  goOnline(): void;
  close(): Promise<void>;
}
