// Layer: js-wrapper/react. A live query over one collection, read through
// useSyncExternalStore. Depends only on the client API (types.ts); no browser globals.
import { useMemo, useSyncExternalStore } from 'react';
import type { SyncDocument } from '../engine.js';
import type { SyncError } from '../errors.js';
import type { CollectionHandle, DeleteOptions, LiveQuery, PendingWrite, QueryOptions } from '../types.js';
import { EMPTY_DOCS, noopUnsubscribe } from './shared.js';
import { useLiveResource } from './useLiveResource.js';
import type { LiveSlot } from './useLiveResource.js';
import { useSyncClient } from './useSyncClient.js';

export type UseCollectionOptions = QueryOptions;

export interface UseCollectionResult<T = Record<string, unknown>> {
  /** The matching documents (at most `limit`), frozen; same array until the result changes. */
  readonly data: readonly SyncDocument<T>[];
  /** Number of matches ignoring `limit`. */
  readonly total: number;
  /** Always false: the replica is local, so the first render already has the data. */
  readonly isLoading: false;
  /** Set when the query could not be created (e.g. `invalid_filter`); data is then empty. */
  readonly error: SyncError | null;
  readonly insert: CollectionHandle<T>['insert'];
  readonly update: CollectionHandle<T>['update'];
  /** `collection.delete` (named `remove` because `delete` reads badly when destructured). */
  readonly remove: (id: string, options?: DeleteOptions) => PendingWrite;
}

interface QueryView<T> {
  readonly docs: readonly SyncDocument<T>[];
  readonly total: number;
}

interface QueryStore<T> {
  subscribe(onChange: () => void): () => void;
  getSnapshot(): QueryView<T>;
}

const EMPTY_VIEW: QueryView<never> = Object.freeze({ docs: EMPTY_DOCS, total: 0 });

// `total` lives on the query, not in its snapshot: the store pairs them and keeps the pair's
// identity while neither changed, so a total that moves outside the window still re-renders.
function queryStore<T>(slot: LiveSlot<LiveQuery<T>>): QueryStore<T> {
  let last: QueryView<T> = EMPTY_VIEW;
  return {
    subscribe(onChange) {
      if (slot.closed || slot.resource === null) return noopUnsubscribe;
      return slot.resource.subscribe(onChange);
    },
    getSnapshot() {
      if (slot.closed || slot.resource === null) return last;
      const docs = slot.resource.getSnapshot();
      const total = slot.resource.total;
      if (docs !== last.docs || total !== last.total) last = Object.freeze({ docs, total });
      return last;
    },
  };
}

/**
 * Live documents of `collection`, filtered, sorted and limited; re-renders only when the visible
 * result changes. The query is created once per (client, collection, where, orderBy, limit) and
 * closed on unmount.
 *
 * ```tsx
 * function OpenTodos() {
 *   const { data, total, insert, update, error } = useCollection<Todo>('todos', {
 *     where: 'done=is.false', orderBy: '-created', limit: 20,
 *   });
 *   if (error) return <p>Bad filter: {error.message}</p>;
 *   return (
 *     <ul>
 *       {data.map((d) => (
 *         <li key={d.id} onClick={() => update(d.id, { done: true })}>{d.fields.title}</li>
 *       ))}
 *       <li>{total} open</li>
 *       <button onClick={() => insert({ title: 'New', done: false, created: Date.now() })}>Add</button>
 *     </ul>
 *   );
 * }
 * ```
 */
export function useCollection<T = Record<string, unknown>>(
  collection: string,
  options: UseCollectionOptions = {},
): UseCollectionResult<T> {
  const client = useSyncClient();
  const { where, orderBy, limit } = options;

  const slot = useLiveResource(
    () => client.query<T>(collection, { where, orderBy, limit }),
    [client, collection, where, orderBy, limit],
  );
  const store = useMemo(() => queryStore(slot), [slot]);
  const view = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);

  // The handle is looked up at call time: a write names its collection, and an unknown one
  // should fail where the write is made (the event handler), not during render.
  const writes = useMemo(
    () => ({
      insert: ((fields, opts) => client.collection<T>(collection).insert(fields, opts)) as CollectionHandle<T>['insert'],
      update: ((id, patch, opts) => client.collection<T>(collection).update(id, patch, opts)) as CollectionHandle<T>['update'],
      remove: (id: string, opts?: DeleteOptions) => client.collection<T>(collection).delete(id, opts),
    }),
    [client, collection],
  );

  return useMemo(
    () => ({ data: view.docs, total: view.total, isLoading: false as const, error: slot.error, ...writes }),
    [view, slot.error, writes],
  );
}
