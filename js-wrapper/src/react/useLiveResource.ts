// Layer: js-wrapper/react (internal). Owns one closeable live resource (a LiveQuery or a
// LiveAggregate) for as long as a component shows it.
//
// The resource is created during render, so the first render already has data (the replica is
// local: no loading state). Rendering may be thrown away before commit (concurrent rendering,
// Suspense, StrictMode's double render), so a resource nobody claims from an effect within
// UNCLAIMED_MS is closed by a timer. Unmounting closes it one macrotask later, which lets
// StrictMode's unmount/remount cycle keep the same resource instead of re-creating it. If an
// effect finds its resource already reaped (a commit slower than the grace period), it asks for
// a fresh one by re-rendering.
import { useEffect, useMemo, useReducer } from 'react';
import type { DependencyList } from 'react';
import type { SyncError } from '../errors.js';
import { toSyncError } from './shared.js';

const UNCLAIMED_MS = 5_000;

export interface LiveSlot<R> {
  /** The resource, or null when creating it failed. */
  readonly resource: R | null;
  readonly error: SyncError | null;
  /** True once closed; stores built on the slot stop touching the resource then. */
  closed: boolean;
  claims: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

function openSlot<R extends { close(): void }>(open: () => R): LiveSlot<R> {
  let resource: R | null = null;
  let error: SyncError | null = null;
  try {
    resource = open();
  } catch (e) {
    error = toSyncError(e);
  }
  const slot: LiveSlot<R> = { resource, error, closed: resource === null, claims: 0, timer: undefined };
  if (resource !== null) {
    slot.timer = setTimeout(() => closeSlot(slot), UNCLAIMED_MS);
    // In Node (server rendering, tests) the reaper must not keep the process alive.
    (slot.timer as { unref?: () => void }).unref?.();
  }
  return slot;
}

function closeSlot<R extends { close(): void }>(slot: LiveSlot<R>): void {
  if (slot.claims > 0 || slot.resource === null || slot.closed) return;
  slot.closed = true;
  try {
    slot.resource.close();
  } catch {
    // Closing twice or after client.close() is harmless; nothing to report.
  }
}

/**
 * Returns a slot holding `open()`'s result, re-created when `deps` change. `open` may throw:
 * the error is kept in the slot (`error`) instead of escaping the render.
 */
export function useLiveResource<R extends { close(): void }>(open: () => R, deps: DependencyList): LiveSlot<R> {
  const [generation, renew] = useReducer((n: number) => n + 1, 0);
  // eslint-disable-next-line react-hooks/exhaustive-deps -- deps are the caller's key for `open`
  const slot = useMemo(() => openSlot(open), [...deps, generation]);

  useEffect(() => {
    if (slot.resource === null) return undefined;
    if (slot.closed) {
      renew();
      return undefined;
    }
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.claims += 1;
    return () => {
      slot.claims -= 1;
      clearTimeout(slot.timer);
      slot.timer = setTimeout(() => closeSlot(slot), 0);
    };
  }, [slot]);

  return slot;
}
