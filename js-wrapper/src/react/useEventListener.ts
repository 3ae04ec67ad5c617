// Layer: js-wrapper/react. Calls a handler for custom events published with client.publish or
// POST /v1/events. Depends only on the client API (types.ts); subscribes in an effect.
import { useEffect } from 'react';
import type { PublishedEvent } from '../types.js';
import { keyToList, listKey } from './shared.js';
import { useLatest } from './useLatest.js';
import { useSyncClient } from './useSyncClient.js';

export interface UseEventListenerOptions {
  /** Only events targeting this collection. */
  collection?: string;
  /** Only events targeting this document id. */
  id?: string;
}

/**
 * Calls `handler` for each custom event named `name` (one name, a list, or "*" for all).
 * Changing `handler` between renders does not resubscribe.
 *
 * ```tsx
 * function KitchenBell() {
 *   const [count, setCount] = useState(0);
 *   useEventListener('order:stage_change', (e) => {
 *     if (e.data.stage === 'ready') setCount((n) => n + 1);
 *   });
 *   return <span>{count} orders ready</span>;
 * }
 * ```
 */
export function useEventListener(
  name: string | readonly string[],
  handler: (event: PublishedEvent) => void,
  options: UseEventListenerOptions = {},
): void {
  const client = useSyncClient();
  const latest = useLatest(handler);
  const namesKey = listKey(name);
  const { collection, id } = options;

  useEffect(() => {
    const names = keyToList(namesKey);
    const all = names === undefined || names.includes('*');
    return client.onEvent((e) => {
      if (!all && !names.includes(e.name)) return;
      if (collection !== undefined && e.collection !== collection) return;
      if (id !== undefined && e.id !== id) return;
      latest.current(e);
    });
  }, [client, namesKey, collection, id, latest]);
}
