// Layer: js-wrapper/react. Calls a handler on document transitions (appear / update /
// disappear) instead of rendering them: toasts, sounds, analytics. Depends only on the client
// API (types.ts); subscribes in an effect, so nothing runs during server rendering.
import { useEffect } from 'react';
import type { DocumentChange } from '../types.js';
import { keyToList, listKey } from './shared.js';
import { useLatest } from './useLatest.js';
import { useSyncClient } from './useSyncClient.js';

export type DocumentTransition = DocumentChange['type'];

export interface UseDocumentListenerOptions {
  /** Only this document. */
  id?: string;
  /** Only these transitions (default: all three). */
  types?: readonly DocumentTransition[];
  /** Also report changes that carry this client's unconfirmed writes (default true). */
  includePending?: boolean;
}

/**
 * Calls `handler` for each visible change in `collection`: `appear` (inserted, or came into
 * view), `update`, `disappear` (deleted, or rolled back). Changing `handler` between renders
 * does not resubscribe; the latest one is called.
 *
 * ```tsx
 * function NewOrderToasts() {
 *   const [last, setLast] = useState<string | null>(null);
 *   useDocumentListener('orders', (e) => setLast(`New order ${e.id}`), { types: ['appear'], includePending: false });
 *   return last ? <div role="status">{last}</div> : null;
 * }
 * ```
 */
export function useDocumentListener<T = Record<string, unknown>>(
  collection: string,
  handler: (event: DocumentChange<T>) => void,
  options: UseDocumentListenerOptions = {},
): void {
  const client = useSyncClient();
  const latest = useLatest(handler);
  const { id } = options;
  const typesKey = listKey(options.types);
  const includePending = options.includePending ?? true;

  useEffect(() => {
    const types = keyToList(typesKey);
    return client.onDocumentChange((e) => {
      if (e.collection !== collection) return;
      if (id !== undefined && e.id !== id) return;
      if (types !== undefined && !types.includes(e.type)) return;
      if (!includePending && e.pending) return;
      latest.current(e as DocumentChange<T>);
    });
  }, [client, collection, id, typesKey, includePending, latest]);
}
