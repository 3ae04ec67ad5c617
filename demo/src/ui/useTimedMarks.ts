// Layer: demo/ui. Marks that last a moment: the state behind every flash in the demo (rows, cards,
// calendar cells). Each burst of marks clears itself after `ms`, a later burst never cancels an
// earlier one's timer, and nothing fires after the component is gone.
import { useCallback, useEffect, useRef, useState } from 'react';

export function useTimedMarks<V>(ms: number): [Readonly<Record<string, V>>, (marks: Record<string, V>) => void] {
  const [marks, setMarks] = useState<Record<string, V>>({});
  const timers = useRef(new Set<ReturnType<typeof setTimeout>>());
  useEffect(() => () => timers.current.forEach(clearTimeout), []);
  const mark = useCallback(
    (burst: Record<string, V>) => {
      const keys = Object.keys(burst);
      if (!keys.length) return;
      setMarks((m) => ({ ...m, ...burst }));
      const t = setTimeout(() => {
        timers.current.delete(t);
        setMarks((m) => {
          const rest = { ...m };
          for (const k of keys) delete rest[k];
          return rest;
        });
      }, ms);
      timers.current.add(t);
    },
    [ms],
  );
  return [marks, mark];
}
