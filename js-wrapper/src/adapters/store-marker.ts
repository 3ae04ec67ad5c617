// Layer: js-wrapper adapters (browser I/O). Remembers, outside IndexedDB, that a database existed,
// so that one the browser discarded (chromium does after finding it damaged on a restart after a
// hard kill) is reported instead of silently starting empty.
//
// Two places, either is enough: localStorage, which chromium writes to disk seconds after a
// change (a marker set just before a kill is lost with it), and a file in the origin private
// file system, which is on disk once its creation resolved. The story:
// docs/decisions/0003-a-discarded-database-is-reported.md.

const MARKER_TIMEOUT_MS = 2000;

const localKey = (name: string) => `${name}:idb`;

function opfsName(name: string): string {
  return `syncline-store-${encodeURIComponent(name)}`;
}

async function opfsDir(): Promise<FileSystemDirectoryHandle | null> {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: () => Promise<FileSystemDirectoryHandle> } } }).navigator?.storage;
  if (!storage?.getDirectory) return null;
  return storage.getDirectory();
}

/** A storage call that never settles must not hold up the client: give up after a while. */
function bounded<T>(p: Promise<T>, fallback: T): Promise<T> {
  return Promise.race([p.catch(() => fallback), new Promise<T>((r) => setTimeout(() => r(fallback), MARKER_TIMEOUT_MS))]);
}

/** Whether a marker for `name` was left by an earlier run. */
export async function markerSeen(name: string): Promise<boolean> {
  try {
    if (localStorage.getItem(localKey(name))) return true;
  } catch {
    /* no localStorage (workers, some privacy modes) */
  }
  return bounded((async () => {
    const dir = await opfsDir();
    if (!dir) return false;
    await dir.getFileHandle(opfsName(name)); // NotFoundError: no marker
    return true;
  })(), false);
}

/** Leaves the marker; resolves once the file exists (or there is nowhere to put it). */
export async function setMarker(name: string): Promise<void> {
  try {
    localStorage.setItem(localKey(name), '1');
  } catch {
    /* nothing to keep it in */
  }
  await bounded((async () => {
    const dir = await opfsDir();
    if (dir) await dir.getFileHandle(opfsName(name), { create: true });
  })(), undefined);
}
