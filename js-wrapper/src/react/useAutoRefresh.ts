// Layer: js-wrapper/react. Debounces bursts of changes into one callback: the bridge for data
// that syncline does not hold itself (a REST list, a chart fetched from elsewhere) and must be
// re-read when synced data moves. Depends only on the client API (types.ts); timers live only
// in effects and are cleared on unmount.
import { useEffect } from 'react';
import { keyToList, listKey } from './shared.js';
import { useLatest } from './useLatest.js';
import { useSyncClient } from './useSyncClient.js';

export interface UseAutoRefreshOptions {
  /** Collections to watch (default: every collection of the client). */
  collections?: readonly string[];
  /** Quiet time after the last change before the callback runs (default 250 ms). */
  delayMs?: number;
  /** Upper bound on the wait while changes keep coming (default 10 × delayMs). */
  maxWaitMs?: number;
  /** Also count custom events targeting the collections (default true). */
  includeEvents?: boolean;
  /** Also count changes that carry this client's unconfirmed writes (default true). */
  includePending?: boolean;
}

export interface AutoRefreshInfo {
  /** The collections that changed during the burst. */
  readonly collections: readonly string[];
  /** How many changes and events the burst held. */
  readonly count: number;
}

/**
 * Calls `callback` once after a burst of document changes (and custom events) in the watched
 * collections has been quiet for `delayMs`, or at the latest `maxWaitMs` after the burst began.
 *
 * ```tsx
 * function InvoiceTotals() {
 *   const [totals, setTotals] = useState<Totals | null>(null);
 *   const reload = useCallback(() => {
 *     fetch('/api/invoice-totals').then((r) => r.json()).then(setTotals);
 *   }, []);
 *   useEffect(reload, [reload]);
 *   useAutoRefresh(reload, { collections: ['invoices', 'payments'], delayMs: 500 });
 *   return totals ? <TotalsTable totals={totals} /> : <p>Loading…</p>;
 * }
 * ```
 */
export function useAutoRefresh(
  callback: (info: AutoRefreshInfo) => void,
  options: UseAutoRefreshOptions = {},
): void {
  const client = useSyncClient();
  const latest = useLatest(callback);
  const collectionsKey = listKey(options.collections);
  const delayMs = Math.max(0, options.delayMs ?? 250);
  const maxWaitMs = Math.max(delayMs, options.maxWaitMs ?? delayMs * 10);
  const includeEvents = options.includeEvents ?? true;
  const includePending = options.includePending ?? true;

  useEffect(() => {
    const watched = keyToList(collectionsKey);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let burstStart = 0;
    let changed = new Set<string>();
    let count = 0;

    const fire = () => {
      timer = undefined;
      const info: AutoRefreshInfo = { collections: Object.freeze([...changed]), count };
      changed = new Set();
      count = 0;
      latest.current(info);
    };
    const note = (collection: string) => {
      const now = Date.now();
      if (count === 0) burstStart = now;
      changed.add(collection);
      count += 1;
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(fire, Math.min(delayMs, Math.max(0, burstStart + maxWaitMs - now)));
    };

    const offChanges = client.onDocumentChange((e) => {
      if (watched !== undefined && !watched.includes(e.collection)) return;
      if (!includePending && e.pending) return;
      note(e.collection);
    });
    const offEvents = includeEvents
      ? client.onEvent((e) => {
          // Events without a collection concern everyone; count them only when watching all.
          if (watched !== undefined && (e.collection === undefined || !watched.includes(e.collection))) return;
          note(e.collection ?? '');
        })
      : undefined;

    return () => {
      offChanges();
      offEvents?.();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [client, collectionsKey, delayMs, maxWaitMs, includeEvents, includePending, latest]);
}
