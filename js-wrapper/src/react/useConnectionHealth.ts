// Layer: js-wrapper/react. One summarised health value for a status light, plus uptime and
// event counters. Depends only on the client API (types.ts); timers start only in effects, so
// importing and server rendering touch no browser API.
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { ErrorCode } from '../error-codes.js';
import type { EventsSnapshot, SyncStatus } from '../types.js';
import { sameErrorInfo, shallowEqualRecords } from './shared.js';
import { useSyncClient } from './useSyncClient.js';
import { useSyncExternalStoreWithSelector } from './useSyncExternalStoreWithSelector.js';

export type HealthStatus = 'healthy' | 'connecting' | 'error' | 'disconnected';

export interface UseConnectionHealthResult {
  /**
   * `healthy`: connected and storage works. `connecting`: opening the stream, or waiting to
   * retry with no error reported. `error`: the last attempt failed (retries continue), the
   * server refused us, or persistence failed. `disconnected`: offline, or stopped by
   * `goOffline()`.
   */
  readonly status: HealthStatus;
  /** ms since the current connection opened (0 when not connected); ticks every second. */
  readonly uptime: number;
  /** Events recorded since the history was created (not bounded by its capacity). */
  readonly totalEvents: number;
  /** The same, per event type ("insert", "update", "delete", "reset", custom names, ...). */
  readonly eventCounts: Readonly<Record<string, number>>;
  /** The error behind `status: 'error'`, if any (storage errors first). */
  readonly error: { code: ErrorCode; message: string } | null;
  /** Measured round trip to the server in whole ms, smoothed (SyncStatus.latencyMs): probed
   * when the stream opens and every 15 s; null until measured and while not connected. */
  readonly latencyMs: number | null;
  /** The last round-trip sample in whole ms, or null. */
  readonly lastLatencyMs: number | null;
}

interface SelectedStatus {
  readonly health: HealthStatus;
  readonly connectedSince: number | null;
  readonly error: { code: ErrorCode; message: string } | null;
  readonly latencyMs: number | null;
  readonly lastLatencyMs: number | null;
}

export function healthOf(s: SyncStatus): HealthStatus {
  if (s.storageError !== null) return 'error';
  // isOnline is false both when the browser is offline and after goOffline().
  if (!s.isOnline) return 'disconnected';
  switch (s.connection) {
    case 'connected':
      return 'healthy';
    case 'connecting':
      return 'connecting';
    case 'backing_off':
      return s.lastError !== null ? 'error' : 'connecting';
    case 'error':
      return 'error';
    case 'disconnected':
    default:
      return 'disconnected';
  }
}

function selectStatus(s: SyncStatus): SelectedStatus {
  return {
    health: healthOf(s),
    connectedSince: s.connection === 'connected' && s.isOnline ? s.connectedSince : null,
    error: s.storageError ?? s.lastError,
    latencyMs: s.latencyMs,
    lastLatencyMs: s.lastLatencyMs,
  };
}

function sameStatus(a: SelectedStatus, b: SelectedStatus): boolean {
  return (
    a.health === b.health &&
    a.connectedSince === b.connectedSince &&
    sameErrorInfo(a.error, b.error) &&
    a.latencyMs === b.latencyMs &&
    a.lastLatencyMs === b.lastLatencyMs
  );
}

interface SelectedEvents {
  readonly total: number;
  readonly counts: Readonly<Record<string, number>>;
}

function selectEvents(e: EventsSnapshot): SelectedEvents {
  return { total: e.total, counts: e.counts };
}

function sameEvents(a: SelectedEvents, b: SelectedEvents): boolean {
  return a.total === b.total && shallowEqualRecords(a.counts, b.counts);
}

/**
 * ```tsx
 * const colors = { healthy: 'green', connecting: 'orange', error: 'red', disconnected: 'gray' };
 *
 * function HealthLight() {
 *   const { status, uptime, totalEvents, latencyMs } = useConnectionHealth();
 *   return (
 *     <span style={{ color: colors[status] }}>
 *       {status} · up {Math.floor(uptime / 1000)} s · {totalEvents} events
 *       {latencyMs !== null && ` · ${latencyMs} ms`}
 *     </span>
 *   );
 * }
 * ```
 */
export function useConnectionHealth(): UseConnectionHealthResult {
  const client = useSyncClient();

  const statusStore = client.statusStore;
  const subscribeStatus = useCallback((l: () => void) => statusStore.subscribe(l), [statusStore]);
  const getStatus = useCallback(() => statusStore.getSnapshot(), [statusStore]);
  const status = useSyncExternalStoreWithSelector(subscribeStatus, getStatus, getStatus, selectStatus, sameStatus);

  const eventsStore = client.events;
  const subscribeEvents = useCallback((l: () => void) => eventsStore.subscribe(l), [eventsStore]);
  const getEvents = useCallback(() => eventsStore.getSnapshot(), [eventsStore]);
  const events = useSyncExternalStoreWithSelector(subscribeEvents, getEvents, getEvents, selectEvents, sameEvents);

  // The clock is state, so a render is pure; the interval runs only while connected.
  const [now, setNow] = useState(() => Date.now());
  const since = status.connectedSince;
  useEffect(() => {
    if (since === null) return undefined;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [since]);
  const uptime = since === null ? 0 : Math.max(0, now - since);

  return useMemo(
    () => ({
      status: status.health,
      uptime,
      totalEvents: events.total,
      eventCounts: events.counts,
      error: status.error,
      latencyMs: status.latencyMs,
      lastLatencyMs: status.lastLatencyMs,
    }),
    [status, uptime, events],
  );
}
