// Layer: js-wrapper/react. One document by id, read through useSyncExternalStore.
// Depends only on the client API (types.ts); no browser globals.
import { useMemo, useSyncExternalStore } from 'react';
import type { SyncDocument } from '../engine.js';
import type { Observable } from '../types.js';
import { noopUnsubscribe } from './shared.js';
import { useSyncClient } from './useSyncClient.js';

const ABSENT: Observable<null> = {
  getSnapshot: () => null,
  subscribe: () => noopUnsubscribe,
};

/**
 * The current document `id` of `collection`, or null when it does not exist (never created,
 * deleted, or rolled back). Re-renders only when that document changes. Passing a null or
 * undefined id returns null without subscribing, which suits "nothing selected yet".
 *
 * ```tsx
 * function TodoTitle({ id }: { id: string }) {
 *   const doc = useDocument<Todo>('todos', id);
 *   if (!doc) return <em>deleted</em>;
 *   return <span style={{ opacity: doc.pending ? 0.6 : 1 }}>{doc.fields.title}</span>;
 * }
 * ```
 */
export function useDocument<T = Record<string, unknown>>(
  collection: string,
  id: string | null | undefined,
): SyncDocument<T> | null {
  const client = useSyncClient();
  const store = useMemo(() => {
    if (id === null || id === undefined || id === '') return ABSENT;
    const handle = client.collection<T>(collection);
    let observable = handle.document(id);
    return {
      getSnapshot: () => observable.getSnapshot(),
      subscribe: (onChange: () => void) => {
        // Asked again on every subscribe: a client may drop its per-document state when the
        // last listener leaves, and StrictMode unsubscribes and resubscribes the same store.
        observable = handle.document(id);
        return observable.subscribe(onChange);
      },
    };
  }, [client, collection, id]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}
