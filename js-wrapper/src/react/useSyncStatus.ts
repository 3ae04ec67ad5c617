// Layer: js-wrapper/react. The few status fields a UI shows, selected from client.statusStore
// so unrelated status changes (cursor, attempt counter, ...) do not re-render.
// Depends only on the client API (types.ts); no browser globals.
import { useCallback, useMemo } from 'react';
import type { ErrorCode } from '../error-codes.js';
import type { ConnectionStatus, SyncStatus } from '../types.js';
import { sameErrorInfo } from './shared.js';
import { useSyncClient } from './useSyncClient.js';
import { useSyncExternalStoreWithSelector } from './useSyncExternalStoreWithSelector.js';

export interface UseSyncStatusResult {
  /** The browser reports a network (navigator.onLine, as seen by the leader tab). */
  readonly isOnline: boolean;
  /** The change stream is open. */
  readonly isConnected: boolean;
  /** Writes not yet confirmed by the server, of every tab of this client (all tabs of the same
   * `name`, offline too): the same number in each tab. See SyncStatus.pendingOperations. */
  readonly pendingOperations: number;
  /** ms since epoch of the last server message applied, or null before the first one. */
  readonly lastSync: number | null;
  /** The connection state machine's state. */
  readonly status: ConnectionStatus;
  /** The last connection or server error, cleared when the connection recovers. */
  readonly lastError: { code: ErrorCode; message: string } | null;
  /** A persistence failure (quota, blocked database): writes are then kept in memory only. */
  readonly storageError: { code: ErrorCode; message: string } | null;
  /** Reconnect now and send pending writes (a "retry" button). Stable across renders. */
  readonly forceSync: () => void;
}

type Selected = Omit<UseSyncStatusResult, 'forceSync'>;

function selectStatus(s: SyncStatus): Selected {
  return {
    isOnline: s.isOnline,
    isConnected: s.isConnected,
    pendingOperations: s.pendingOperations,
    lastSync: s.lastSync,
    status: s.connection,
    lastError: s.lastError,
    storageError: s.storageError,
  };
}

function sameSelection(a: Selected, b: Selected): boolean {
  return (
    a.isOnline === b.isOnline &&
    a.isConnected === b.isConnected &&
    a.pendingOperations === b.pendingOperations &&
    a.lastSync === b.lastSync &&
    a.status === b.status &&
    sameErrorInfo(a.lastError, b.lastError) &&
    sameErrorInfo(a.storageError, b.storageError)
  );
}

/**
 * Connection and outbox state for badges and retry buttons. The returned object keeps its
 * identity until one of its fields changes.
 *
 * ```tsx
 * function SyncBadge() {
 *   const { isOnline, isConnected, pendingOperations, lastSync, forceSync } = useSyncStatus();
 *   if (!isOnline) return <span>Offline, {pendingOperations} changes saved on this device</span>;
 *   if (!isConnected) return <button onClick={forceSync}>Reconnect</button>;
 *   return <span>Synced {lastSync ? new Date(lastSync).toLocaleTimeString() : ''}</span>;
 * }
 * ```
 */
export function useSyncStatus(): UseSyncStatusResult {
  const client = useSyncClient();
  const store = client.statusStore;
  const subscribe = useCallback((onChange: () => void) => store.subscribe(onChange), [store]);
  const getSnapshot = useCallback(() => store.getSnapshot(), [store]);
  const selected = useSyncExternalStoreWithSelector(subscribe, getSnapshot, getSnapshot, selectStatus, sameSelection);
  const forceSync = useCallback(() => client.forceSync(), [client]);
  return useMemo(() => ({ ...selected, forceSync }), [selected, forceSync]);
}
