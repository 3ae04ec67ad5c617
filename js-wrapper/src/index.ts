// The npm package `syncline`. Importing it has no side effects and touches no browser API,
// so it is safe during server-side rendering; the wasm loads on the first awaited call.
// Only the public API is exported here; the engine's own face (SyncEngine, loadSyncline and
// the wire types) is in internal.ts, for this repository's tests and benchmarks.
export { ERROR_CODES, isErrorCode, SyncError } from './errors.js';
export type { CurrentDocument, ErrorCode, SyncErrorOptions } from './errors.js';
export { increment, serverTime } from './field-ops.js';
export type { FieldOperation, Increment, IncrementBounds, ServerTime } from './field-ops.js';
export type { AggregateResult, HistoryEntry, SyncDocument } from './engine.js';
export { createClient } from './client.js';
export type {
  AggregateOptions,
  ClientOptions,
  CollectionHandle,
  ConnectionStatus,
  DeleteOptions,
  ChangedDocument,
  DocumentChange,
  EventsSnapshot,
  FieldInput,
  InsertFields,
  InsertOptions,
  LiveAggregate,
  LiveQuery,
  Observable,
  PendingTransaction,
  PendingWrite,
  PersistenceKind,
  PublishedEvent,
  QueryOptions,
  SyncClient,
  SyncStatus,
  TabRole,
  Transaction,
  TransactionCollection,
  TransactionResult,
  TransactionWrite,
  Transport,
  UpdateOptions,
  UpdatePatch,
  WriteResult,
} from './types.js';
