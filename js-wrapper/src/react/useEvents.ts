// Layer: js-wrapper/react. A filtered view of the client's bounded event history.
// Depends only on the client API (types.ts); no browser globals.
import { useCallback } from 'react';
import type { HistoryEntry } from '../engine.js';
import type { EventsSnapshot } from '../types.js';
import { keyToList, listKey } from './shared.js';
import { useSyncClient } from './useSyncClient.js';
import { useSyncExternalStoreWithSelector } from './useSyncExternalStoreWithSelector.js';

export interface UseEventsOptions {
  /** Entry types to keep: "insert", "update", "delete", "rejected", "reset", "snapshot",
   * "status", "error", or a custom event name. One type or a list. */
  type?: string | readonly string[];
  collection?: string;
  id?: string;
  /** Keep only the newest `limit` matching entries. */
  limit?: number;
  /** Default "oldest-first", the history's own order. */
  order?: 'oldest-first' | 'newest-first';
}

const EMPTY: readonly HistoryEntry[] = Object.freeze([]);

// History entries are immutable and the client may rebuild them on each snapshot, so equality
// is by the entry's identity fields rather than by object identity.
function sameEntry(a: HistoryEntry, b: HistoryEntry): boolean {
  return (
    a === b ||
    (a.atMs === b.atMs && a.seq === b.seq && a.type === b.type && a.collection === b.collection && a.id === b.id)
  );
}

function sameEntries(a: readonly HistoryEntry[], b: readonly HistoryEntry[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameEntry(a[i]!, b[i]!)) return false;
  return true;
}

/**
 * Recent history entries matching the filter. The returned array is frozen and keeps its
 * identity while the matching entries are unchanged, so events of other collections do not
 * re-render the component.
 *
 * ```tsx
 * function OrderTimeline({ orderId }: { orderId: string }) {
 *   const entries = useEvents({ collection: 'orders', id: orderId, limit: 20, order: 'newest-first' });
 *   return (
 *     <ol>
 *       {entries.map((e) => (
 *         <li key={`${e.atMs}:${e.seq}:${e.type}`}>{new Date(e.atMs).toLocaleTimeString()} {e.type}</li>
 *       ))}
 *     </ol>
 *   );
 * }
 * ```
 */
export function useEvents(options: UseEventsOptions = {}): readonly HistoryEntry[] {
  const client = useSyncClient();
  const store = client.events;
  const typeKey = listKey(options.type);
  const { collection, id, limit } = options;
  const newestFirst = options.order === 'newest-first';

  const subscribe = useCallback((l: () => void) => store.subscribe(l), [store]);
  const getSnapshot = useCallback(() => store.getSnapshot(), [store]);
  const select = useCallback(
    (snapshot: EventsSnapshot): readonly HistoryEntry[] => {
      const types = keyToList(typeKey);
      const max = limit === undefined ? Infinity : Math.max(0, Math.floor(limit));
      const out: HistoryEntry[] = [];
      // Walk newest to oldest so `limit` can stop early.
      const entries = snapshot.entries;
      for (let i = entries.length - 1; i >= 0 && out.length < max; i--) {
        const e = entries[i]!;
        if (types !== undefined && !types.includes(e.type)) continue;
        if (collection !== undefined && e.collection !== collection) continue;
        if (id !== undefined && e.id !== id) continue;
        out.push(e);
      }
      if (out.length === 0) return EMPTY;
      if (!newestFirst) out.reverse();
      return Object.freeze(out);
    },
    [typeKey, collection, id, limit, newestFirst],
  );
  return useSyncExternalStoreWithSelector(subscribe, getSnapshot, getSnapshot, select, sameEntries);
}
