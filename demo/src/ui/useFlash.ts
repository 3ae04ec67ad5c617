// Layer: demo/ui. Highlights rows that appeared or changed since the previous render for a
// couple of seconds. Versions come from the replica, so a remote change and a local one both
// flash; the first render (initial load) never does.
import { useEffect, useRef, useState } from 'react';
import type { SyncDocument } from 'syncline';

export function useFlash(docs: readonly SyncDocument<unknown>[], ms = 2400): (id: string) => string {
  const seen = useRef<Map<string, number> | null>(null);
  const [flash, setFlash] = useState<Record<string, 'new' | 'changed'>>({});
  const timers = useRef(new Set<ReturnType<typeof setTimeout>>());
  useEffect(() => {
    const prev = seen.current;
    const next = new Map<string, number>();
    const marks: Record<string, 'new' | 'changed'> = {};
    for (const d of docs) {
      const v = d.pending ? -1 : d.version;
      next.set(d.id, v);
      if (!prev) continue;
      const old = prev.get(d.id);
      if (old === undefined) marks[d.id] = 'new';
      else if (old !== v && v !== -1 && old !== -1) marks[d.id] = 'changed';
      else if (old !== v && v === -1) marks[d.id] = 'changed';
    }
    seen.current = next;
    const ids = Object.keys(marks);
    if (!ids.length) return;
    setFlash((f) => ({ ...f, ...marks }));
    // Each burst clears itself; a later burst must not cancel an earlier one's timer.
    const t = setTimeout(() => {
      timers.current.delete(t);
      setFlash((f) => {
        const copy = { ...f };
        for (const id of ids) delete copy[id];
        return copy;
      });
    }, ms);
    timers.current.add(t);
  }, [docs, ms]);
  useEffect(() => () => timers.current.forEach(clearTimeout), []);
  return (id) => (flash[id] ? `flash-${flash[id]}` : '');
}
