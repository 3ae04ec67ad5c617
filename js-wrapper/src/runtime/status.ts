// Layer: js-wrapper. The SyncStatus snapshot: one immutable object, replaced only when a field
// changed (so React re-renders only then). The tab that owns the stream reports its own
// connection; a follower shows the leader's, from the leader's status messages.
import { deepFreeze, Subject } from '../observable.js';
import type { ConnectionStatus, SyncStatus, TabRole, Transport } from '../types.js';
import type { ErrorCode } from '../errors.js';

/** The connection as one tab sees it (its own stream, or the leader's as last reported). */
export interface ConnectionView {
  connection: ConnectionStatus;
  isConnected: boolean;
  attempt: number;
  connectedSince: number | null;
  lastSync: number | null;
  latencyMs: number | null;
  lastLatencyMs: number | null;
  /** The node the stream is connected to (a leader's: the node it reports); null: none. */
  node: string | null;
}

export interface StatusInputs {
  view: ConnectionView;
  /** This tab's current node (runtime/nodes.ts): shown while the view names none. */
  node: string;
  role: TabRole;
  transport: Transport;
  isOnline: boolean;
  engine: { pending: number; foreignPending: number; cursor: number } | null;
  clientId: string;
  lastError: { code: ErrorCode; message: string } | null;
  storageError: { code: ErrorCode; message: string } | null;
}

export function buildStatus(i: StatusInputs): SyncStatus {
  const connected = i.view.isConnected && i.isOnline;
  return deepFreeze({
    connection: i.view.connection,
    transport: i.transport,
    role: i.role,
    isOnline: i.isOnline,
    isConnected: connected,
    // The origin's: this tab's outbox and the other tabs' pending writes this view shows.
    pendingOperations: (i.engine?.pending ?? 0) + (i.engine?.foreignPending ?? 0),
    latencyMs: connected ? i.view.latencyMs : null,
    lastLatencyMs: connected ? i.view.lastLatencyMs : null,
    lastSync: i.view.lastSync,
    connectedSince: i.view.connectedSince,
    node: i.view.node ?? i.node,
    cursor: i.engine?.cursor ?? 0,
    clientId: i.clientId,
    attempt: i.view.attempt,
    lastError: i.lastError,
    storageError: i.storageError,
  });
}

/** What a leader tells its followers (the part of its status that is about the connection). */
export function connectionViewOf(s: SyncStatus): ConnectionView {
  return {
    connection: s.connection, isConnected: s.isConnected, attempt: s.attempt, connectedSince: s.connectedSince,
    lastSync: s.lastSync, latencyMs: s.latencyMs, lastLatencyMs: s.lastLatencyMs, node: s.node,
  };
}

/** A leader's status message, read strictly: what is missing or mistyped takes the value a tab
 * shows before it heard any leader. */
export function readConnectionView(raw: Record<string, unknown> | null): ConnectionView {
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const states: ConnectionStatus[] = ['disconnected', 'connecting', 'connected', 'backing_off', 'error'];
  const connection = states.find((s) => s === raw?.connection) ?? 'connecting';
  return {
    connection,
    isConnected: raw?.isConnected === true,
    attempt: num(raw?.attempt) ?? 0,
    connectedSince: num(raw?.connectedSince),
    lastSync: num(raw?.lastSync),
    latencyMs: num(raw?.latencyMs),
    lastLatencyMs: num(raw?.lastLatencyMs),
    node: typeof raw?.node === 'string' && raw.node ? raw.node : null,
  };
}

export class StatusStore {
  readonly subject: Subject<SyncStatus>;

  constructor(initial: SyncStatus) {
    this.subject = new Subject(initial);
  }

  get current(): SyncStatus {
    return this.subject.getSnapshot();
  }

  /** True when `next` differs from the current status (then it replaces it). */
  update(next: SyncStatus): boolean {
    const prev = this.subject.getSnapshot();
    const same = (Object.keys(next) as (keyof SyncStatus)[]).every((k) => JSON.stringify(next[k]) === JSON.stringify(prev[k]));
    if (same) return false;
    this.subject.set(next);
    return true;
  }
}
