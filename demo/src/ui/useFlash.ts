// Layer: demo/ui. Row animations for live lists: rows that appeared or changed flash for a couple
// of seconds (useFlash), rows whose document was deleted fade out before they leave the DOM
// (useLeaving).
//
// "Appeared" means appeared *because the data changed*, not because the list now shows other
// documents: switching the customer on the ledger or the filter on the bills page brings in rows
// that existed all along, and they must not flash. So a row that was not in the previous render
// flashes as new only when it is this window's own pending write, or when the server committed it
// after the previous render (its `version`, the seq of its last change, is above the cursor this
// client had then). A row present in both renders flashes as changed when its version (or pending
// state) changed. The first render, the initial load and the catch-up with the server never flash
// (useLiveOnly: changes at or below the server's head when the session began).
import { useEffect, useMemo, useRef, useState } from 'react';
import type { SyncDocument } from 'syncline';
import { useSyncClient } from 'syncline/react';
import { sessionHead } from './useLiveOnly';
import { useTimedMarks } from './useTimedMarks';

export function useFlash(docs: readonly SyncDocument<unknown>[], ms = 2400): (id: string) => string {
  const client = useSyncClient();
  const seen = useRef<{ versions: Map<string, number>; cursor: number } | null>(null);
  const [flash, mark] = useTimedMarks<'new' | 'changed'>(ms);
  useEffect(() => {
    const prev = seen.current;
    const versions = new Map<string, number>();
    const marks: Record<string, 'new' | 'changed'> = {};
    // Not news: the initial load and the catch-up with the server (useLiveOnly's rule).
    const head = sessionHead(client);
    const live = (d: SyncDocument<unknown>) => head !== null && d.version > head;
    for (const d of docs) {
      const v = d.pending ? -1 : d.version;
      versions.set(d.id, v);
      if (!prev) continue;
      const old = prev.versions.get(d.id);
      if (old === undefined) {
        // New to this list: flash only if it is new to the client since the last render.
        if (d.pending || (live(d) && d.version > prev.cursor)) marks[d.id] = 'new';
      } else if (old !== v && (v === -1 || (old !== -1 && live(d)))) marks[d.id] = 'changed';
    }
    seen.current = { versions, cursor: client.status.cursor };
    mark(marks);
  }, [docs, mark, client]);
  return (id) => (flash[id] ? `flash-${flash[id]}` : '');
}

export interface ShownRow<T> {
  doc: SyncDocument<T>;
  /** The document is gone; the row is fading out and leaves the DOM after the animation. */
  leaving: boolean;
}

const LEAVE_MS = 650;
const reducedMotion = () => typeof matchMedia === 'function' && matchMedia('(prefers-reduced-motion: reduce)').matches;

/**
 * The rows to render for `docs`, plus rows whose document was deleted (or a refused insert rolled
 * back) since the previous render, kept at their place for LEAVE_MS with `leaving: true` so they
 * can animate out (class `row-leaving`). A row that only left the list (another filter, another
 * customer, a bill that no longer matches) leaves at once: its document still exists.
 */
export function useLeaving<T>(collection: string, docs: readonly SyncDocument<T>[]): ShownRow<T>[] {
  const client = useSyncClient();
  const prev = useRef<readonly SyncDocument<T>[] | null>(null);
  const [ghosts, setGhosts] = useState<Map<string, { doc: SyncDocument<T>; after: string | null }>>(() => new Map());
  const timers = useRef(new Set<ReturnType<typeof setTimeout>>());
  useEffect(() => () => timers.current.forEach(clearTimeout), []);
  useEffect(() => {
    const before = prev.current;
    prev.current = docs;
    if (!before || reducedMotion()) return;
    const now = new Set(docs.map((d) => d.id));
    const gone = new Map<string, { doc: SyncDocument<T>; after: string | null }>();
    before.forEach((d, i) => {
      if (now.has(d.id) || client.collection(collection).get(d.id) !== null) return;
      // Remember the row it followed, to keep its place while it fades.
      gone.set(d.id, { doc: d, after: i > 0 ? before[i - 1].id : null });
    });
    if (!gone.size) return;
    setGhosts((g) => new Map([...g, ...gone]));
    const t = setTimeout(() => {
      timers.current.delete(t);
      setGhosts((g) => {
        const copy = new Map(g);
        for (const id of gone.keys()) copy.delete(id);
        return copy;
      });
    }, LEAVE_MS);
    timers.current.add(t);
  }, [docs, client, collection]);
  return useMemo(() => {
    const rows: ShownRow<T>[] = docs.map((doc) => ({ doc, leaving: false }));
    if (!ghosts.size) return rows;
    const ids = new Set(docs.map((d) => d.id));
    for (const [id, g] of ghosts) {
      if (ids.has(id)) continue; // it came back (a refused delete)
      const at = g.after === null ? 0 : rows.findIndex((r) => r.doc.id === g.after) + 1;
      rows.splice(at > 0 || g.after === null ? at : rows.length, 0, { doc: g.doc, leaving: true });
    }
    return rows;
  }, [docs, ghosts]);
}
