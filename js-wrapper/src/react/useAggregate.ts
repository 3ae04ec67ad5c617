// Layer: js-wrapper/react. A live grouped count/sum over one collection.
// Depends only on the client API (types.ts); no browser globals.
import { useMemo, useSyncExternalStore } from 'react';
import type { AggregateResult } from '../engine.js';
import type { SyncError } from '../errors.js';
import type { AggregateOptions, LiveAggregate } from '../types.js';
import { EMPTY_AGGREGATE, noopUnsubscribe } from './shared.js';
import { useLiveResource } from './useLiveResource.js';
import type { LiveSlot } from './useLiveResource.js';
import { useSyncClient } from './useSyncClient.js';

export type UseAggregateOptions = AggregateOptions;

export interface UseAggregateResult {
  /**
   * Per group: count of documents and sum of the `sum` field. The key is the group field's value
   * as JSON text (`"\"paid\""`, `"42"`, `"null"`); without `groupBy` there is one group `""`.
   */
  readonly groups: AggregateResult['groups'];
  /** Over all matching documents. */
  readonly total: AggregateResult['total'];
  readonly isLoading: false;
  /** Set when the aggregate could not be created (e.g. `invalid_filter`); the result is then empty. */
  readonly error: SyncError | null;
}

function aggregateStore(slot: LiveSlot<LiveAggregate>) {
  let last: AggregateResult = EMPTY_AGGREGATE;
  return {
    subscribe(onChange: () => void): () => void {
      if (slot.closed || slot.resource === null) return noopUnsubscribe;
      return slot.resource.subscribe(onChange);
    },
    getSnapshot(): AggregateResult {
      if (slot.closed || slot.resource === null) return last;
      last = slot.resource.getSnapshot();
      return last;
    },
  };
}

/**
 * Live counts and sums, grouped by a field, over the documents matching `where`.
 *
 * ```tsx
 * function SeatsPerRoom() {
 *   const { groups, total } = useAggregate('bookings', { where: 'status=eq.confirmed', groupBy: 'room', sum: 'seats' });
 *   return (
 *     <ul>
 *       {Object.entries(groups).map(([key, g]) => (
 *         // Group keys are the field's value as JSON text: the room "A" is the key "\"A\"".
 *         <li key={key}>{String(JSON.parse(key))}: {g.sum} seats in {g.count} bookings</li>
 *       ))}
 *       <li>All rooms: {total.sum}</li>
 *     </ul>
 *   );
 * }
 * ```
 */
export function useAggregate(collection: string, options: UseAggregateOptions = {}): UseAggregateResult {
  const client = useSyncClient();
  const { where, groupBy, sum } = options;
  const slot = useLiveResource(
    () => client.aggregate(collection, { where, groupBy, sum }),
    [client, collection, where, groupBy, sum],
  );
  const store = useMemo(() => aggregateStore(slot), [slot]);
  const result = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  return useMemo(
    () => ({ groups: result.groups, total: result.total, isLoading: false as const, error: slot.error }),
    [result, slot.error],
  );
}
