// Layer: js-wrapper/react, the entry point of `syncline/react`. A thin adapter over the client
// API (types.ts): every hook reads an immutable snapshot through useSyncExternalStore. Importing
// it has no side effects and touches no browser API, so it is safe during server rendering.
//
//   import { SyncProvider, useCollection } from 'syncline/react';
//
//   function Todos() {
//     const { data, insert } = useCollection<{ title: string }>('todos', { orderBy: 'title' });
//     return <>{data.map((d) => <p key={d.id}>{d.fields.title}</p>)}
//       <button onClick={() => insert({ title: 'New' })}>Add</button></>;
//   }
//   <SyncProvider options={{ url: 'http://localhost:8080', collections: ['todos'] }}><Todos /></SyncProvider>
export { SyncProvider } from './SyncProvider.js';
export type { SyncProviderProps, SyncProviderWithClientProps, SyncProviderWithOptionsProps } from './SyncProvider.js';
export { useSyncClient } from './useSyncClient.js';
export { useCollection } from './useCollection.js';
export type { UseCollectionOptions, UseCollectionResult } from './useCollection.js';
export { useDocument } from './useDocument.js';
export { useAggregate } from './useAggregate.js';
export type { UseAggregateOptions, UseAggregateResult } from './useAggregate.js';
export { useSyncStatus } from './useSyncStatus.js';
export type { UseSyncStatusResult } from './useSyncStatus.js';
export { useConnectionHealth } from './useConnectionHealth.js';
export type { HealthStatus, UseConnectionHealthResult } from './useConnectionHealth.js';
export { useEvents } from './useEvents.js';
export type { UseEventsOptions } from './useEvents.js';
export { useDocumentListener } from './useDocumentListener.js';
export type { DocumentTransition, UseDocumentListenerOptions } from './useDocumentListener.js';
export { useAutoRefresh } from './useAutoRefresh.js';
export type { AutoRefreshInfo, UseAutoRefreshOptions } from './useAutoRefresh.js';
export { useEventListener } from './useEventListener.js';
export type { UseEventListenerOptions } from './useEventListener.js';
export { useSyncExternalStoreWithSelector } from './useSyncExternalStoreWithSelector.js';
export { useSql } from './useSql.js';
export type { UseSqlResult } from './useSql.js';
