// Layer: js-wrapper. Small building blocks for immutable, subscribable values.
import type { Observable } from './types.js';

/** The subscriber list both subjects share. */
class Listeners {
  private listeners = new Set<() => void>();
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
  protected notify(): void {
    for (const l of [...this.listeners]) l();
  }
  get listenerCount(): number {
    return this.listeners.size;
  }
}

export class Subject<T> extends Listeners implements Observable<T> {
  constructor(private value: T) {
    super();
  }
  getSnapshot = (): T => this.value;
  set(value: T): void {
    if (Object.is(value, this.value)) return;
    this.value = value;
    this.notify();
  }
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/** A value worked out only when somebody reads it: `invalidate()` tells the subscribers that it
 * changed, and the next `getSnapshot()` computes it once (the same object until the next
 * invalidate). For values that are costly to build and change more often than they are read. */
export class LazySubject<T> extends Listeners implements Observable<T> {
  private stale = false;
  constructor(private value: T, private readonly compute: () => T | null) {
    super();
  }
  getSnapshot = (): T => {
    if (this.stale) {
      this.stale = false;
      this.value = this.compute() ?? this.value;
    }
    return this.value;
  };
  invalidate(): void {
    this.stale = true;
    this.notify();
  }
}
