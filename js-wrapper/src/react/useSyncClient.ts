// Layer: js-wrapper/react. The context that carries the SyncClient, and the hook to read it.
// Depends only on React and the client's types; no browser globals at import.
import { createContext, useContext } from 'react';
import { SyncError } from '../errors.js';
import type { SyncClient } from '../types.js';

export const SyncClientContext = createContext<SyncClient | null>(null);
SyncClientContext.displayName = 'SyncClientContext';

/**
 * The client of the nearest `<SyncProvider>`. Throws `SyncError('no_provider')` outside one,
 * because every other hook needs it and a silent null would only fail later and further away.
 *
 * ```tsx
 * function RetryButton() {
 *   const client = useSyncClient();
 *   return <button onClick={() => client.forceSync()}>Retry now</button>;
 * }
 * ```
 */
export function useSyncClient(): SyncClient {
  const client = useContext(SyncClientContext);
  if (client === null) {
    throw new SyncError(
      'no_provider',
      'syncline/react: this hook must be used inside <SyncProvider client={...}> or <SyncProvider options={...}>',
    );
  }
  return client;
}
