// Layer: js-wrapper/sqlite, worker side (browser worker globals only). Opens the database the
// mirror lives in: in OPFS through the `opfs-sahpool` VFS when this worker can create
// synchronous access handles, else in memory, saying why.
//
// Why opfs-sahpool and not the `opfs` VFS: it needs no SharedArrayBuffer, so no COOP/COEP
// headers on the app's pages. Its price is exclusive access: one pool directory serves one
// worker at a time, so each tab claims a numbered slot with a Web Lock it holds for its life
// and uses that slot's directory. Slots are reused, so OPFS holds at most MAX_SLOTS pools.
import type { Database, Sqlite3Static } from '@sqlite.org/sqlite-wasm';
import type { OpenInfo } from './protocol.js';

const MAX_SLOTS = 16;
const FILE = '/mirror.sqlite3';

export interface OpenedDatabase {
  db: Database;
  info: OpenInfo;
}

function inMemory(sqlite3: Sqlite3Static, fallbackReason?: string): OpenedDatabase {
  const info: OpenInfo = { storage: 'memory', sqliteVersion: sqlite3.version.libVersion };
  if (fallbackReason) info.fallbackReason = fallbackReason;
  return { db: new sqlite3.oo1.DB(':memory:', 'c'), info };
}

function opfsReason(): string | null {
  const g = globalThis as { navigator?: { storage?: { getDirectory?: unknown }; locks?: unknown }; FileSystemFileHandle?: { prototype?: { createSyncAccessHandle?: unknown } } };
  if (typeof g.navigator?.storage?.getDirectory !== 'function') return 'OPFS is not available (navigator.storage.getDirectory)';
  if (typeof g.FileSystemFileHandle?.prototype?.createSyncAccessHandle !== 'function') return 'OPFS synchronous access handles are not available in this worker';
  if (!g.navigator?.locks) return 'Web Locks are not available to claim an OPFS slot';
  return null;
}

/** Resolves with the first free slot number from `from` on (its lock then held until the
 * worker ends), or null when none is free. */
async function claimSlot(from: number): Promise<number | null> {
  for (let slot = from; slot < MAX_SLOTS; slot++) {
    const got = await new Promise<boolean>((resolve) => {
      void navigator.locks.request(`syncline-sql-slot-${slot}`, { ifAvailable: true }, (lock) => {
        resolve(lock !== null);
        // Held while this promise is pending: for the worker's life.
        return lock ? new Promise<void>(() => {}) : undefined;
      });
    });
    if (got) return slot;
  }
  return null;
}

export async function openDatabase(sqlite3: Sqlite3Static, storage: 'auto' | 'memory'): Promise<OpenedDatabase> {
  if (storage === 'memory') return inMemory(sqlite3);
  const missing = opfsReason();
  if (missing) return inMemory(sqlite3, missing);
  let failure = '';
  for (let from = 0; ;) {
    const slot = await claimSlot(from);
    if (slot === null) {
      return inMemory(sqlite3, failure ? `OPFS could not be opened: ${failure}` : `all ${MAX_SLOTS} OPFS slots are in use by other tabs`);
    }
    try {
      const pool = await sqlite3.installOpfsSAHPoolVfs({
        name: `syncline-sql-${slot}`,
        directory: `.syncline-sql/${slot}`,
        // The mirror is rebuilt from the replica on every attach: an earlier run's file is stale.
        clearOnInit: true,
        preserveOnInitFailure: true,
      });
      const db = new pool.OpfsSAHPoolDb(FILE);
      // Derived data: a crash loses nothing the replica does not have, so skip the fsyncs.
      db.exec('PRAGMA synchronous = OFF; PRAGMA journal_mode = MEMORY');
      return { db, info: { storage: 'opfs', sqliteVersion: sqlite3.version.libVersion } };
    } catch (e) {
      // e.g. the worker of a tab that just closed still holds this slot's handles, or the quota
      // is used up. The next free slot may do; this one stays claimed, so no other tab tries it.
      failure = e instanceof Error ? e.message : String(e);
      from = slot + 1;
    }
  }
}
