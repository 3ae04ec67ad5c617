// Layer: js-wrapper. The engine's own face, for this repository's tests and benchmarks
// (tests/wasm, bench/): the typed wasm engine, the loader and the wire types. Not part of the
// package's API: the package's `exports` map has no entry for it, and it may change in any
// release. Apps use `createClient` from the index.
//
//   import { loadSyncline, SyncEngine } from '../../js-wrapper/dist/internal.js';
//   const engine = SyncEngine.create(await loadSyncline(), { clientId: 'tab-1', collections: ['bills'] });
export * from './index.js';
export { loadSyncline } from './wasm.js';
export type { LoadOptions, SynclineModule } from './wasm.js';
export { SyncEngine } from './engine.js';
export { ConnectionMachine, decodeConnectionStep } from './connection-machine.js';
export type { ConnectionAction, ConnectionPolicy, ConnectionStep } from './connection-machine.js';
export { RetryBackoff } from './retry-backoff.js';
export type { BackoffOptions } from './retry-backoff.js';
export { outboxFromStored, historyFromStored } from './adapters/stored-format.js';
export type {
  AggregateSpec,
  DocChange,
  EngineOptions,
  EngineOutput,
  EngineState,
  HistoryState,
  MutationInput,
  MutationOp,
  OutboxEntry,
  OutboxRecord,
  PersistedState,
  PersistenceBatch,
  QuerySpec,
  ServerEvent,
  Settled,
  WireMutation,
} from './engine.js';
export type { WireFieldOp } from './field-ops.js';
