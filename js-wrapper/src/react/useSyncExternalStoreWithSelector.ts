// Layer: js-wrapper/react (internal). useSyncExternalStore plus a selector whose result keeps
// its identity while `isEqual` says it is unchanged, so a component that reads two fields of a
// large snapshot does not re-render when a third field changes. Same contract as the
// `use-sync-external-store/with-selector` shim, written here to keep the package free of
// runtime dependencies besides React.
import { useEffect, useMemo, useRef, useSyncExternalStore } from 'react';

export function useSyncExternalStoreWithSelector<Snapshot, Selection>(
  subscribe: (onStoreChange: () => void) => () => void,
  getSnapshot: () => Snapshot,
  getServerSnapshot: (() => Snapshot) | undefined,
  selector: (snapshot: Snapshot) => Selection,
  isEqual?: (a: Selection, b: Selection) => boolean,
): Selection {
  // The last selection this component committed. Survives selector changes, so switching to an
  // equivalent selector (an inline function) still returns the previous object.
  const committed = useRef<{ has: boolean; value: Selection }>({ has: false, value: undefined as Selection });

  const [getSelection, getServerSelection] = useMemo(() => {
    let memoized = false;
    let lastSnapshot: Snapshot;
    let lastSelection: Selection;
    const select = (snapshot: Snapshot): Selection => {
      if (!memoized) {
        memoized = true;
        lastSnapshot = snapshot;
        const next = selector(snapshot);
        const prev = committed.current;
        lastSelection = isEqual !== undefined && prev.has && isEqual(prev.value, next) ? prev.value : next;
        return lastSelection;
      }
      // The snapshot is immutable: the same object means the same selection.
      if (Object.is(lastSnapshot, snapshot)) return lastSelection;
      const next = selector(snapshot);
      lastSnapshot = snapshot;
      if (isEqual !== undefined && isEqual(lastSelection, next)) return lastSelection;
      lastSelection = next;
      return next;
    };
    return [
      () => select(getSnapshot()),
      getServerSnapshot === undefined ? undefined : () => select(getServerSnapshot()),
    ] as const;
  }, [getSnapshot, getServerSnapshot, selector, isEqual]);

  const value = useSyncExternalStore(subscribe, getSelection, getServerSelection);

  useEffect(() => {
    committed.current = { has: true, value };
  }, [value]);

  return value;
}
