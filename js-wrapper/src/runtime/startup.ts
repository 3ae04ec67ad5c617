// Layer: js-wrapper. What a tab does before it syncs: open its storage, claim an outbox slot,
// restore the engine from what is stored. Invariants:
//  - a slot is read again once its lock is held: the copy loaded before may be older than what
//    its last owner (or the leader draining it) wrote since, and a stale next mid would reuse
//    mids the server has already seen;
//  - the engine compares the stored subscription with this one; another one re-bases the replica
//    (keeps the outbox, drops what is outside, needs a snapshot).
import { SyncEngine } from '../engine.js';
import type { EngineOptions, HistoryState } from '../engine.js';
import type { SyncError } from '../errors.js';
import { IndexedDbPersistence, LocalStoragePersistence, MemoryPersistence } from '../adapters/persistence.js';
import type { LoadedState, Persistence, StoredOutbox } from '../adapters/persistence.js';
import type { ClientOptions } from '../types.js';
import type { SynclineModule } from '../wasm.js';
import type { Lock } from './leadership.js';

export const EMPTY_HISTORY = (capacity: number): HistoryState & { version: number } => ({
  version: 1, capacity, total: 0, counts: {}, entries: [],
});

/** The adapter `options.persistence` names, or memory where the browser has no such storage. */
export function openPersistence(
  kind: ClientOptions['persistence'], dbName: string,
  onError: (e: SyncError) => void, onWiped: () => void,
): Persistence {
  const k = kind ?? 'indexeddb';
  if (k === 'indexeddb' && typeof indexedDB !== 'undefined') return new IndexedDbPersistence(dbName, onError, onWiped);
  if (k === 'localstorage' && typeof localStorage !== 'undefined') return new LocalStoragePersistence(dbName + ':');
  return new MemoryPersistence();
}

/** An outbox slot whose owner is gone (its lock is free): a reload gets its own pending writes
 * back. The fullest, then the newest, first. */
export async function claimSlot(
  persistence: Persistence, outboxes: StoredOutbox[], tryLock: (clientId: string) => Promise<Lock | null>,
): Promise<{ slot: StoredOutbox; lock: Lock } | null> {
  const candidates = [...outboxes].sort((a, b) => b.outbox.entries.length - a.outbox.entries.length || b.updatedAt - a.updatedAt);
  for (const c of candidates) {
    const lock = await tryLock(c.clientId);
    if (!lock) continue;
    return { slot: (await persistence.readOutbox(c.clientId)) ?? c, lock };
  }
  return null;
}

/** The engine restored from what is stored (or a new one when nothing is). */
export function restoreEngine(mod: SynclineModule, loaded: LoadedState, slot: StoredOutbox | null, options: EngineOptions & { historyLimit: number }): SyncEngine {
  if (!(loaded.docs.length || loaded.image || loaded.cursor || slot || loaded.history)) return SyncEngine.create(mod, options);
  return SyncEngine.restoreParts(mod, {
    client: options.clientId,
    cursor: loaded.cursor,
    docs: loaded.docs,
    outbox: slot?.outbox ?? { nextMid: 1, entries: [] },
    history: loaded.history ?? EMPTY_HISTORY(options.historyLimit),
    ...(loaded.subscription ? { subscription: loaded.subscription } : {}),
    needSnapshot: loaded.needSnapshot,
  }, options, loaded.image);
}
