// Layer: demo. What the pages need to know about the signed-in workspace besides the client.
import { createContext, useContext, useSyncExternalStore } from 'react';
import type { SyncStatus, Transport } from 'syncline';
import { useSyncClient } from 'syncline/react';
import type { Session } from './session';

export interface Workspace {
  session: Session;
  branch: string;
  setBranch: (b: string) => void;
  transport: Transport;
  setTransport: (t: Transport) => void;
  signOut: () => void;
}
export const WorkspaceContext = createContext<Workspace | null>(null);
export const useWorkspace = () => useContext(WorkspaceContext)!;

/** The full client status (transport, tab role, cursor...), not just the fields useSyncStatus picks. */
export function useClientStatus(): SyncStatus {
  const client = useSyncClient();
  return useSyncExternalStore(client.statusStore.subscribe, client.statusStore.getSnapshot);
}

export const ADMIN_COLLECTIONS = ['bills', 'products', 'stock_transactions', 'bookings', 'orders', 'ledger_entries', 'customers', 'leads'];
// Customers read every product (server rule): the availability page shows its level, never cost.
export const CUSTOMER_COLLECTIONS = ['bills', 'orders', 'ledger_entries', 'bookings', 'customers', 'products'];
