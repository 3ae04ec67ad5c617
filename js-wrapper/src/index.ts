// The npm package `syncline`. Importing it has no side effects and touches no browser API,
// so it is safe during server-side rendering; the wasm loads on the first awaited call.
export { SyncError } from './errors.js';
export type { CurrentDocument, SyncErrorOptions } from './errors.js';
export { increment, serverTime } from './field-ops.js';
export type { FieldOperation, Increment, IncrementBounds, ServerTime, WireFieldOp } from './field-ops.js';
export { loadSyncline } from './wasm.js';
export type { LoadOptions, SynclineModule } from './wasm.js';
export { SyncEngine } from './engine.js';
export type {
  AggregateResult,
  AggregateSpec,
  DocChange,
  EngineOptions,
  EngineOutput,
  EngineState,
  HistoryEntry,
  HistoryState,
  MutationInput,
  MutationOp,
  PersistenceBatch,
  QuerySpec,
  ServerEvent,
  Settled,
  SyncDocument,
  WireMutation,
} from './engine.js';
export { createClient } from './client.js';
export type * from './types.js';
